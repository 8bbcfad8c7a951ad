//! Repeated timing with a median: the machine is noisy, so one run means nothing.
use std::time::Instant;

/// Runs `f` once to warm up, then `reps` times; returns the median wall time in milliseconds.
pub fn median_ms<E>(reps: usize, mut f: impl FnMut() -> Result<(), E>) -> Result<f64, E> {
    f()?;
    let mut t = Vec::with_capacity(reps);
    for _ in 0..reps.max(1) {
        let s = Instant::now();
        f()?;
        t.push(s.elapsed().as_secs_f64() * 1e3);
    }
    t.sort_by(f64::total_cmp);
    Ok(t[t.len() / 2])
}

/// Like [`median_ms`], but each run gets a fresh value from `setup`, which is not timed
/// (for in-place layers that consume their input).
pub fn median_ms_setup<S, E>(
    reps: usize,
    mut setup: impl FnMut() -> S,
    mut f: impl FnMut(S) -> Result<(), E>,
) -> Result<f64, E> {
    f(setup())?;
    let mut t = Vec::with_capacity(reps);
    for _ in 0..reps.max(1) {
        let s = setup();
        let start = Instant::now();
        f(s)?;
        t.push(start.elapsed().as_secs_f64() * 1e3);
    }
    t.sort_by(f64::total_cmp);
    Ok(t[t.len() / 2])
}
