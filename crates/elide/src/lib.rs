//! elide: neural-network inference and training that skip the work that does not matter.
//!
//! - [`sbnet`]: SBNet block-sparse convolution and residual units driven by a computation mask,
//!   with automatic block sizes and a dense fallback.
//! - [`train`]: candle custom ops (gather / scatter with their own backward) and a trainable
//!   block-sparse convolution. Candle stays off the inference path.
//!
//! The compute kernels live in [`elide_kernels`], re-exported as [`kernels`].
#![deny(missing_docs)]

mod error;
pub mod sbnet;
pub mod train;

pub use elide_kernels as kernels;
pub use error::{Error, Result};
