//! [`ModelWriter`]: builds an ONNX model (float tensors, default-domain ops) and encodes it, for
//! networks made outside ONNX (e.g. a spike-and-slab posterior) that `elide run` or any ONNX
//! runtime should load.
use super::proto::{
    attr_type, data_type, AttributeProto, Dimension, GraphProto, ModelProto, NodeProto,
    OperatorSetIdProto, TensorProto, TensorShapeProto, TypeProto, TypeProtoTensor, ValueInfoProto,
};
use crate::{GraphError, Result};
use prost::Message;
use std::path::Path;

/// ONNX IR version written (ONNX 1.10+, read by every current runtime).
const IR_VERSION: i64 = 8;

/// An ONNX model under construction: inputs, initializers, nodes and outputs, in order.
#[derive(Clone, Debug)]
pub struct ModelWriter {
    graph: GraphProto,
    opset: i64,
}

/// A dimension: fixed, or symbolic under a name (e.g. the batch).
#[derive(Clone, Debug)]
pub enum Dim {
    /// A fixed size.
    Fixed(usize),
    /// A symbolic size.
    Named(String),
}

/// An integer attribute.
pub fn attr_int(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: attr_type::INT,
        i: v,
        ..Default::default()
    }
}

/// An integer-list attribute.
pub fn attr_ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: attr_type::INTS,
        ints: v.to_vec(),
        ..Default::default()
    }
}

/// A float attribute.
pub fn attr_float(name: &str, v: f32) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: attr_type::FLOAT,
        f: v,
        ..Default::default()
    }
}

fn value_info(name: &str, dims: &[Dim]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| match d {
            Dim::Fixed(v) => Dimension {
                dim_value: Some(*v as i64),
                dim_param: None,
            },
            Dim::Named(s) => Dimension {
                dim_value: None,
                dim_param: Some(s.clone()),
            },
        })
        .collect();
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            tensor_type: Some(TypeProtoTensor {
                elem_type: data_type::FLOAT,
                shape: Some(TensorShapeProto { dim }),
            }),
            ..Default::default()
        }),
    }
}

impl ModelWriter {
    /// An empty graph called `name` on default-domain opset `opset`.
    pub fn new(name: &str, opset: i64) -> Self {
        Self {
            graph: GraphProto {
                name: name.into(),
                ..Default::default()
            },
            opset,
        }
    }

    /// A float graph input.
    pub fn input(&mut self, name: &str, dims: &[Dim]) -> &mut Self {
        self.graph.input.push(value_info(name, dims));
        self
    }

    /// A float graph output (produced by some node); `&[]` declares a scalar.
    pub fn output(&mut self, name: &str, dims: &[Dim]) -> &mut Self {
        self.graph.output.push(value_info(name, dims));
        self
    }

    /// A float graph output whose shape is not declared (left to the runtime's inference).
    pub fn output_unshaped(&mut self, name: &str) -> &mut Self {
        let mut v = value_info(name, &[]);
        if let Some(t) = v.r#type.as_mut().and_then(|t| t.tensor_type.as_mut()) {
            t.shape = None;
        }
        self.graph.output.push(v);
        self
    }

    /// A float constant; `data` must hold the product of `dims` values, all finite.
    pub fn initializer(&mut self, name: &str, dims: &[usize], data: &[f32]) -> Result<&mut Self> {
        if let Some(i) = data.iter().position(|v| !v.is_finite()) {
            return Err(GraphError::Model(format!(
                "initializer {name}: value {i} is {}",
                data[i]
            )));
        }
        let raw = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.tensor(name, dims, data.len(), data_type::FLOAT, raw)
    }

    /// An int64 constant (shapes, axes); `data` must hold the product of `dims` values.
    pub fn initializer_i64(
        &mut self,
        name: &str,
        dims: &[usize],
        data: &[i64],
    ) -> Result<&mut Self> {
        let raw = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.tensor(name, dims, data.len(), data_type::INT64, raw)
    }

    /// An initializer of `len` little-endian values of type `dt` in `raw`, checked against
    /// `dims`.
    fn tensor(
        &mut self,
        name: &str,
        dims: &[usize],
        len: usize,
        dt: i32,
        raw: Vec<u8>,
    ) -> Result<&mut Self> {
        if len != dims.iter().product::<usize>() {
            return Err(GraphError::Model(format!(
                "initializer {name}: {len} values for shape {dims:?}"
            )));
        }
        self.graph.initializer.push(TensorProto {
            name: name.into(),
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: dt,
            raw_data: raw,
            ..Default::default()
        });
        Ok(self)
    }

    /// A node; its name is its first output's.
    pub fn node(
        &mut self,
        op_type: &str,
        inputs: &[&str],
        outputs: &[&str],
        attrs: Vec<AttributeProto>,
    ) -> &mut Self {
        self.graph.node.push(NodeProto {
            name: outputs.first().copied().unwrap_or(op_type).into(),
            op_type: op_type.into(),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs.iter().map(|s| s.to_string()).collect(),
            attribute: attrs,
            domain: String::new(),
        });
        self
    }

    /// The encoded model.
    pub fn to_bytes(&self) -> Vec<u8> {
        ModelProto {
            ir_version: IR_VERSION,
            opset_import: vec![OperatorSetIdProto {
                domain: String::new(),
                version: self.opset,
            }],
            producer_name: "elide".into(),
            producer_version: env!("CARGO_PKG_VERSION").into(),
            graph: Some(self.graph.clone()),
        }
        .encode_to_vec()
    }

    /// Writes the encoded model to `path`.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        std::fs::write(path.as_ref(), self.to_bytes()).map_err(|e| {
            GraphError::Model(format!("cannot write {}: {e}", path.as_ref().display()))
        })
    }
}
