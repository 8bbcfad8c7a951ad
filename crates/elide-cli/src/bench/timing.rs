//! Repeated timing with a median: the machine is noisy, so one run means nothing.
use std::time::Instant;

/// Runs `f` once to warm up, then `reps` times; returns the median wall time in milliseconds.
pub fn median_ms<E>(reps: usize, mut f: impl FnMut() -> Result<(), E>) -> Result<f64, E> {
    median_ms_setup(reps, || (), |()| f())
}

/// [`median_ms`] where each run consumes a fresh value from `setup`, which is not timed (a
/// graph's input, which the executor takes by value).
pub fn median_ms_setup<S, E>(
    reps: usize,
    mut setup: impl FnMut() -> S,
    mut f: impl FnMut(S) -> Result<(), E>,
) -> Result<f64, E> {
    f(setup())?;
    let mut t = Vec::with_capacity(reps);
    for _ in 0..reps.max(1) {
        let v = setup();
        let s = Instant::now();
        f(v)?;
        t.push(s.elapsed().as_secs_f64() * 1e3);
    }
    Ok(median(t))
}

/// Times `a` and `b` alternately, `reps` times each after one warm-up each, so both see the
/// same machine state (this VM's speed drifts between seconds); returns both medians in ms.
/// Each run gets a fresh value from `setup`, which is not timed (for in-place layers that
/// consume their input).
pub fn paired_median_ms<S, E>(
    reps: usize,
    mut setup: impl FnMut() -> S,
    mut a: impl FnMut(S) -> Result<(), E>,
    mut b: impl FnMut(S) -> Result<(), E>,
) -> Result<(f64, f64), E> {
    a(setup())?;
    b(setup())?;
    let (mut ta, mut tb) = (Vec::with_capacity(reps), Vec::with_capacity(reps));
    for _ in 0..reps.max(1) {
        let s = setup();
        let start = Instant::now();
        a(s)?;
        ta.push(start.elapsed().as_secs_f64() * 1e3);
        let s = setup();
        let start = Instant::now();
        b(s)?;
        tb.push(start.elapsed().as_secs_f64() * 1e3);
    }
    Ok((median(ta), median(tb)))
}

/// The median of `t` (the upper one for an even count; 0 for none).
pub fn median(mut t: Vec<f64>) -> f64 {
    if t.is_empty() {
        return 0.0;
    }
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}
