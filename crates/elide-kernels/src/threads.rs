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
