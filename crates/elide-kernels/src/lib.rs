//! Compute kernels for elide, independent of graphs, importers and training.
//!
//! - [`Tensor`]: a thin owned NCHW `f32` buffer.
//! - [`conv`]: dense 2-D convolution (tiled im2col + `gemm`, a 1x1 fast path and a direct
//!   depthwise kernel) with folded batch-norm and fused activations, plus a naive reference.
//! - [`matmul`]: the `gemm` crate behind one strided-product call.
//! - [`csr`]: sparse weights in compressed sparse rows and the fully connected layer on them.
//! - [`softmax`]: softmax along an axis, vectorised and in parallel.
//! - [`sparse`]: SBNet's block primitives: `reduce_mask`, `sparse_gather`, `sparse_scatter`.
//! - [`threads`]: run work on a fixed number of rayon threads; [`with_scratch`]: per-thread
//!   scratch tensors for allocation-free per-block pipelines.
//!
//! ```
//! use elide_kernels::{conv::{Conv2d, Conv2dParams, Activation}, Tensor};
//! let w = Tensor::zeros([8, 3, 3, 3]);
//! let conv = Conv2d::new(&w, None, Conv2dParams::same(3), Activation::Relu).unwrap();
//! let y = conv.forward(&Tensor::zeros([1, 3, 10, 12])).unwrap();
//! assert_eq!(y.shape(), [1, 8, 10, 12]);
//! ```
#![deny(missing_docs)]

mod axpy;
pub mod conv;
mod copy;
pub mod csr;
mod error;
pub mod matmul;
mod par;
pub mod rng;
mod scratch;
pub mod softmax;
pub mod sparse;
mod tensor;
pub mod threads;

pub use copy::first_non_finite;
pub use error::{KernelError, Result};
pub use scratch::with_scratch;
pub use tensor::{rel_err, Tensor};
