//! elide's network graph: import trained models, optimise them, run them densely.
//!
//! - [`onnx`]: ONNX protobuf (read with `prost`, no `protoc`) to a [`Graph`]; unsupported ops
//!   and attributes are errors naming the node.
//! - [`graph`]: the IR (values by index, nodes with typed [`ops::Op`]s in execution order).
//! - [`optimize`]: constant folding, batch-norm folding and activation fusion into convs.
//! - [`ops`]: the op implementations (convs on elide-kernels, the rest on `ndarray`).
//! - `exec`: [`Graph::run`], freeing each value after its last reader into the graph's
//!   [`arena`], from which op outputs are taken; element-wise ops run in place on dying inputs.
//! - [`sparse`]: [`Graph::run_masked`], convs computed only where a mask asks (exact or fast).
//! - [`weights`]: PyTorch `.pth` and safetensors state dicts; [`zoo`]: networks defined in code
//!   that take them (the MNIST CNN).
#![deny(missing_docs)]

pub mod arena;
pub mod conformance;
pub mod dtype;
mod error;
mod exec;
pub mod graph;
pub mod onnx;
pub mod ops;
pub mod optimize;
#[cfg(test)]
mod optimize_tests;
pub mod small_floats;
pub mod sparse;
mod value;
pub mod weights;
pub mod zoo;

pub use dtype::DType;
pub use error::{GraphError, Result};
pub use graph::Graph;
pub use value::{Elem, Value};
