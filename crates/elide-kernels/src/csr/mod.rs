//! Sparse weights: matrices in compressed sparse rows ([`CsrMatrix`]) and the fully connected
//! layer that runs them ([`CsrLinear`]), for networks whose weights are mostly zero (a pruned
//! or spike-and-slab posterior network).
//!
//! Activations are kept feature-major, `[features, batch]`, so each nonzero weight `w[o, k]`
//! adds `w * x[k, :]` (a contiguous row) into output row `o`: the kernel is a per-row stencil
//! over the batch, kept in registers ([`kernel`]); at batch 1 it is a gathered dot product.
pub mod kernel;
mod linear;
mod matrix;

pub use linear::{transpose, transpose_into, CsrLinear};
pub use matrix::CsrMatrix;

#[cfg(test)]
mod tests;
