//! SBNet (Ren et al., CVPR 2018): convolution and residual units that compute only the blocks a
//! computation mask asks for.
//!
//! Every layer follows the paper's recipe: reduce the mask to active blocks, gather each block's
//! receptive field into a dense stack, run the dense kernels on the stack without padding, and
//! scatter the result into the output (for residual units, add it onto the shortcut in place).
//! [`plan`] chooses the block size from the layer shape and the mask with a cost model, or
//! falls back to the dense layer when the mask is so full that dense is faster.
//!
//! Exactness: inside every active block the output equals the dense layer's (intermediate
//! activations of residual branches are zeroed outside the image, as the dense layer's zero
//! padding implies); outside, the output is the base the caller passed in.
mod backbone;
mod branch;
mod conv;
pub mod plan;
mod residual;

pub use backbone::{Backbone, NetMode};
pub use conv::SparseConv2d;
pub use plan::{BlockSize, MaskPolicy, MaskWindow, Plan};
pub use residual::SparseResidual;

#[cfg(test)]
mod tests;
