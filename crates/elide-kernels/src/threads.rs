//! Runs work on a fixed number of rayon threads, so benchmarks and the CLI can state and
//! control the thread count.
use crate::error::{KernelError, Result};

/// Runs `f` inside a dedicated rayon pool of `threads` threads (`0` = rayon's default pool).
pub fn with_threads<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> Result<R> {
    if threads == 0 {
        return Ok(f());
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| KernelError::Threads(e.to_string()))?;
    Ok(pool.install(f))
}

/// Threads of the pool the caller runs in.
pub fn current_threads() -> usize {
    rayon::current_num_threads()
}

/// Keeps the current pool's other workers awake while it lives, so the parallel sections of a
/// run with sequential stretches between them (a network's layers) do not each wait for a
/// sleeping worker. rayon parks an idle worker within tens of microseconds; waking it costs
/// ~13 us here, during which the caller runs the section alone (2 x 5 us tasks after 20-1000 us
/// idle: 19 us instead of 6; example `probes -- wake`). Each other worker runs a job that
/// executes pending pool work (`rayon::yield_now`) and otherwise spins until the guard drops,
/// as ONNX Runtime's pool spins by default. A spinning job that lands on the creating thread
/// returns at once, so the caller never waits on itself.
pub struct Spinner {
    done: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Spinning jobs still in their loop.
    active: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Spinner {
    /// Starts spinning the pool's other workers (none for a one-thread pool).
    pub fn start() -> Option<Self> {
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        let threads = rayon::current_num_threads();
        if threads < 2 {
            return None;
        }
        let done = std::sync::Arc::new(AtomicBool::new(false));
        let active = std::sync::Arc::new(AtomicUsize::new(0));
        let owner = rayon::current_thread_index();
        for _ in 0..threads - 1 {
            let (done, active) = (done.clone(), active.clone());
            rayon::spawn(move || {
                if owner.is_some() && rayon::current_thread_index() == owner {
                    return;
                }
                active.fetch_add(1, Ordering::AcqRel);
                while !done.load(Ordering::Acquire) {
                    if rayon::yield_now() != Some(rayon::Yield::Executed) {
                        std::hint::spin_loop();
                    }
                }
                active.fetch_sub(1, Ordering::AcqRel);
            });
        }
        Some(Self { done, active })
    }
}

impl Spinner {
    /// How many workers are spinning now (they start when the pool picks up their jobs).
    pub fn spinning(&self) -> usize {
        self.active.load(std::sync::atomic::Ordering::Acquire)
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        self.done.store(true, std::sync::atomic::Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rayon::prelude::*;
    use std::sync::atomic::Ordering;
    use std::time::{Duration, Instant};

    fn parallel_sum() -> u64 {
        (0..10_000u64).into_par_iter().map(|i| i * i).sum()
    }

    /// Parallel work under a spinner gives the same result, in a pool and from outside one,
    /// run after run (a spinner that landed on its own creator would hang here), and every
    /// spinning job leaves its loop once the guard drops.
    #[test]
    fn spinner_helps_and_stops() {
        let want: u64 = (0..10_000u64).map(|i| i * i).sum();
        with_threads(2, || {
            for _ in 0..200 {
                let s = Spinner::start().expect("two threads");
                let active = s.active.clone();
                assert_eq!(parallel_sum(), want);
                assert!(s.spinning() <= 1);
                drop(s);
                let t = Instant::now();
                while active.load(Ordering::Acquire) > 0 {
                    assert!(
                        t.elapsed() < Duration::from_secs(5),
                        "a spinner did not stop"
                    );
                    std::hint::spin_loop();
                }
            }
        })
        .unwrap();
        // From a thread outside any pool (the global pool spins).
        let s = Spinner::start();
        assert_eq!(parallel_sum(), want);
        drop(s);
        assert!(with_threads(1, Spinner::start).unwrap().is_none());
    }
}
