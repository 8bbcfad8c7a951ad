//! SBNet's block primitives (Ren et al., CVPR 2018), NCHW.
//!
//! A [`BlockGrid`] places windows on an image: window `(by, bx)` covers rows
//! `by*stride + offset .. + size` (columns alike), possibly reaching past the border.
//! - [`reduce_mask`]: pools a computation mask over the windows and lists the active ones;
//! - [`sparse_gather`]: copies the active windows into a `[B, C, th, tw]` stack, zeros outside
//!   the image;
//! - [`sparse_scatter`]: writes or adds a stack of windows back into a base tensor, clipped to
//!   the image, with an optional activation applied to what it writes.
//!
//! - [`blockwise`]: the three fused per block (gather a window into per-thread scratch, run a
//!   computation, combine the result), so tiles never go through memory.
//!
//! [`ConvBlocks`] derives the input and output grids of a convolution from its geometry.
mod blockwise;
mod gather;
mod grid;
mod mask;
mod scatter;

pub use blockwise::{block_runs, blockwise, for_each_run, BlockSink, TileLayout};
pub use gather::{sparse_gather, sparse_gather_into};
pub use grid::{BlockGrid, BlockIndex, ConvBlocks};
pub use mask::{reduce_mask, Mask, Pooling};
pub use scatter::{sparse_scatter, ScatterMode};

#[cfg(test)]
mod tests;
