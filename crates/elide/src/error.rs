//! The library's error type.
use thiserror::Error;

/// Errors from elide's layers and training ops.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// A kernel rejected its input (shape, parameter, NaN).
    #[error(transparent)]
    Kernel(#[from] elide_kernels::KernelError),
    /// candle reported an error during training.
    #[error("candle: {0}")]
    Candle(#[from] candle_core::Error),
    /// A layer was built or called inconsistently.
    #[error("{0}")]
    Invalid(String),
}

/// Result alias for elide.
pub type Result<T> = std::result::Result<T, Error>;
