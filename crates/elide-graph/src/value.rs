//! Values flowing through a graph: n-dimensional f32 or i64 arrays (standard layout).
use crate::{GraphError, Result};
use ndarray::{ArrayD, IxDyn};

/// A tensor value. Shape arithmetic (Shape, Gather, Concat of shapes) runs on `I64`; every
/// other op on `F32`. Both are kept in standard (C) layout so they convert to and from the
/// kernels' NCHW buffers without copies.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// Floating point data.
    F32(ArrayD<f32>),
    /// Integers (shapes, indices); bools and int32 are widened to this.
    I64(ArrayD<i64>),
}

impl Value {
    /// The shape.
    pub fn shape(&self) -> &[usize] {
        match self {
            Value::F32(a) => a.shape(),
            Value::I64(a) => a.shape(),
        }
    }

    /// Element type name, for messages.
    pub fn dtype(&self) -> &'static str {
        match self {
            Value::F32(_) => "f32",
            Value::I64(_) => "i64",
        }
    }

    /// An f32 value from a shape and data.
    pub fn f32(shape: &[usize], data: Vec<f32>) -> Result<Self> {
        ArrayD::from_shape_vec(IxDyn(shape), data)
            .map(Value::F32)
            .map_err(|e| GraphError::Model(format!("tensor of shape {shape:?}: {e}")))
    }

    /// An i64 value from a shape and data.
    pub fn i64(shape: &[usize], data: Vec<i64>) -> Result<Self> {
        ArrayD::from_shape_vec(IxDyn(shape), data)
            .map(Value::I64)
            .map_err(|e| GraphError::Model(format!("tensor of shape {shape:?}: {e}")))
    }

    /// The f32 array, or None.
    pub fn as_f32(&self) -> Option<&ArrayD<f32>> {
        match self {
            Value::F32(a) => Some(a),
            Value::I64(_) => None,
        }
    }

    /// Integer view of the data (f32 values are truncated), for shape-like inputs.
    pub fn to_i64_vec(&self) -> Vec<i64> {
        match self {
            Value::F32(a) => a.iter().map(|&v| v as i64).collect(),
            Value::I64(a) => a.iter().copied().collect(),
        }
    }
}
