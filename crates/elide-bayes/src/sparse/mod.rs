//! A sparse network that runs fast: the posterior's network (weights with `phi > 0.5`, at their
//! means) exported to CSR layers and run by `elide-kernels`' sparse-weight kernel
//! ([`elide_kernels::csr`]), with the dense layer of the same shape (a `gemm` call) as the
//! baseline and reference. `elide bayes export` writes it as an ONNX model
//! (Gemm and Relu nodes), which the graph engine runs on the same kernel.
pub mod net;

pub use elide_kernels::csr::{kernel, CsrLinear as SparseLayer, CsrMatrix};
pub use net::{DenseLayer, SparseNet};
