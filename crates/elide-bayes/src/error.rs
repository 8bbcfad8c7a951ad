//! The crate's error type: every bad input is one of these, never a panic.
use std::path::PathBuf;

/// Errors of building, training, saving and running spike-and-slab networks.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BayesError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// An error from candle (autograd, tensors, safetensors).
    #[error("candle: {0}")]
    Candle(#[from] candle_core::Error),
    /// A configuration that cannot be used (zero width, temperature <= 0, ...).
    #[error("bad configuration: {0}")]
    Config(String),
    /// Data that cannot be used: wrong shapes, NaN, labels out of range, missing columns.
    #[error("bad data: {0}")]
    Data(String),
    /// A saved model whose description or tensors do not agree.
    #[error("bad model file: {0}")]
    Model(String),
    /// A sparse kernel refused its buffers (wrong sizes, indices out of range).
    #[error("kernel: {0}")]
    Kernel(#[from] elide_kernels::KernelError),
    /// Training diverged (the loss became NaN or infinite).
    #[error("training diverged at epoch {epoch}: loss {loss}")]
    Diverged {
        /// The epoch (0-based).
        epoch: usize,
        /// The loss seen.
        loss: f64,
    },
}

/// The crate's result type.
pub type Result<T> = std::result::Result<T, BayesError>;
