//! A sparse network that runs fast: the posterior's network (weights with `phi > 0.5`, at their
//! means) exported to CSR layers and run by a sparse-weight kernel, with the dense layer of the
//! same shape (a `gemm` call) as the baseline and reference.
//!
//! Activations are kept feature-major, `[features, batch]`, so each nonzero weight `w[o, k]`
//! adds `w * x[k, :]` (a contiguous row) into output row `o`: the kernel is a per-row stencil
//! over the batch, kept in registers ([`kernel`]).
pub mod csr;
pub mod kernel;
pub mod net;

pub use csr::CsrMatrix;
pub use net::{DenseLayer, SparseLayer, SparseNet};
