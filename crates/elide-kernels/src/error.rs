//! Typed errors for every kernel entry point.
use thiserror::Error;

/// What went wrong in a kernel call. Kernels validate before they compute, so a bad call
/// returns one of these instead of panicking or writing garbage.
#[derive(Debug, Error, Clone, PartialEq)]
#[non_exhaustive]
pub enum KernelError {
    /// A tensor's shape does not fit the operation.
    #[error("shape mismatch in {op}: {detail}")]
    Shape {
        /// The operation that rejected the shape.
        op: &'static str,
        /// What was expected and what was given.
        detail: String,
    },
    /// A parameter (stride, groups, block size, ...) is invalid.
    #[error("invalid parameter in {op}: {detail}")]
    Param {
        /// The operation that rejected the parameter.
        op: &'static str,
        /// Which parameter and why.
        detail: String,
    },
    /// An input holds NaN or infinity where finite values are required.
    #[error("non-finite value in {op}: {detail}")]
    NonFinite {
        /// The operation that found the value.
        op: &'static str,
        /// Where it was found.
        detail: String,
    },
    /// A thread pool could not be built.
    #[error("thread pool: {0}")]
    Threads(String),
}

/// Result alias for kernel calls.
pub type Result<T> = std::result::Result<T, KernelError>;

pub(crate) fn shape_err<T>(op: &'static str, detail: impl Into<String>) -> Result<T> {
    Err(KernelError::Shape {
        op,
        detail: detail.into(),
    })
}

pub(crate) fn param_err<T>(op: &'static str, detail: impl Into<String>) -> Result<T> {
    Err(KernelError::Param {
        op,
        detail: detail.into(),
    })
}
