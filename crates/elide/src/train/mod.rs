//! Training block-sparse layers with candle.
//!
//! candle provides autograd and optimizers (`candle_nn::AdamW`, `candle_nn::SGD`); this module
//! adds what it lacks for SBNet:
//!
//! - [`gather`] and [`scatter`]: the block primitives as candle custom ops (`CustomOp1` /
//!   `CustomOp2`) with their own backward: gather's gradient is a scatter-*add* (overlapping
//!   windows accumulate), scatter's is a gather (plus, for the base, the upstream gradient with
//!   the written windows zeroed). Backward passes apply the same ops, so they are differentiable
//!   again. One generic loop per primitive serves `f32` (training) and `f64` (gradient checks).
//!   candle's own `scatter_add` has a broken backward; these ops do not use it.
//! - [`TrainableSparseConv2d`]: gather, candle's VALID conv2d, bias, activation, scatter, with
//!   its weights as candle [`candle_core::Var`]s.
//!
//! The pattern for a new trainable layer: express it with differentiable candle ops around
//! [`gather`] / [`scatter`]; where candle has no suitable op, write a custom op whose backward
//! is built from custom ops.
//!
//! candle stays off the inference path: [`TrainableSparseConv2d::to_kernels_conv`] hands the
//! trained weights to [`elide_kernels::conv::Conv2d`], which the `sbnet` layers run.
//!
//! ```
//! use candle_core::{DType, Device, Tensor};
//! use elide::kernels::sparse::BlockIndex;
//! use elide::kernels::{conv::{Activation, Conv2dParams}, sparse::ConvBlocks};
//! use elide::train::TrainableSparseConv2d;
//! # fn main() -> elide::Result<()> {
//! let p = Conv2dParams::same(3);
//! let conv = TrainableSparseConv2d::init(2, 4, p, Activation::Relu, DType::F32, &Device::Cpu, 7)?;
//! let x = Tensor::ones((1, 2, 8, 8), DType::F32, &Device::Cpu)?;
//! let cb = ConvBlocks::new(&p, [8, 8], [4, 4])?;
//! let base = Tensor::zeros((1, 4, 8, 8), DType::F32, &Device::Cpu)?;
//! let y = conv.forward(&x, &[BlockIndex { n: 0, by: 1, bx: 0 }], &cb, &base)?;
//! let grads = y.sum_all()?.backward()?;
//! assert!(grads.get(conv.weight()).is_some());
//! # Ok(()) }
//! ```
mod blocks;
mod ops;
mod sparse_conv;

pub use elide_kernels::sparse::ScatterMode;
pub use ops::{gather, scatter};
pub use sparse_conv::TrainableSparseConv2d;

#[cfg(test)]
mod tests;
