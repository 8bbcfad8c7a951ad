//! ONNX import: protobuf to [`Graph`], every op and attribute validated, constants resolved;
//! and [`write::ModelWriter`] to build and encode a model.
//!
//! Supported: default-domain opsets 11-21. Weights may sit in initializers or in Constant
//! nodes. An op, attribute or data type elide does not implement is an error that names the
//! node and the op.
mod attrs;
mod node;
pub mod proto;
mod tensor;
pub mod write;

use crate::graph::{Graph, Input, ValueId};
use crate::{GraphError, Result};
use prost::Message;
use proto::ModelProto;
use std::collections::HashMap;
use std::path::Path;

/// Oldest and newest default-domain opset accepted.
pub const OPSETS: (i64, i64) = (11, 21);

/// Reads an ONNX file.
pub fn load(path: impl AsRef<Path>) -> Result<Graph> {
    let bytes = std::fs::read(path.as_ref())
        .map_err(|e| GraphError::Model(format!("cannot read {}: {e}", path.as_ref().display())))?;
    from_bytes(&bytes)
}

/// Parses an ONNX model from memory.
pub fn from_bytes(bytes: &[u8]) -> Result<Graph> {
    let model = ModelProto::decode(bytes)?;
    let opset = model
        .opset_import
        .iter()
        .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
        .map(|o| o.version)
        .ok_or_else(|| GraphError::Model("the model imports no default-domain opset".into()))?;
    if !(OPSETS.0..=OPSETS.1).contains(&opset) {
        return Err(GraphError::Model(format!(
            "opset {opset} is not supported (elide reads {}-{})",
            OPSETS.0, OPSETS.1
        )));
    }
    let g = model
        .graph
        .ok_or_else(|| GraphError::Model("the model has no graph".into()))?;
    let mut b = Builder::default();
    for t in &g.initializer {
        let id = b.id(&t.name);
        b.graph.constants.insert(id, tensor::to_value(t, &t.name)?);
    }
    for i in &g.input {
        let id = b.id(&i.name);
        if b.graph.constants.contains_key(&id) {
            continue; // an initializer listed as input (IR < 4): a constant with a default
        }
        let shape = i
            .r#type
            .as_ref()
            .and_then(|t| t.tensor_type.as_ref())
            .and_then(|t| t.shape.as_ref())
            .map(|s| {
                s.dim
                    .iter()
                    .map(|d| d.dim_value.filter(|&v| v > 0).map(|v| v as usize))
                    .collect()
            })
            .unwrap_or_default();
        b.graph.inputs.push(Input { id, shape });
    }
    for (k, n) in g.node.iter().enumerate() {
        let name = if n.name.is_empty() {
            n.output
                .first()
                .cloned()
                .unwrap_or_else(|| format!("node{k}"))
        } else {
            n.name.clone()
        };
        if !(n.domain.is_empty() || n.domain == "ai.onnx") {
            return Err(GraphError::Unsupported {
                what: "op domain",
                node: name,
                op: n.op_type.clone(),
                detail: format!("domain '{}'", n.domain),
            });
        }
        node::import(&mut b, n, &name, opset)?;
    }
    for o in &g.output {
        let id = b.graph.value(&o.name).ok_or_else(|| {
            GraphError::Model(format!("graph output '{}' is never produced", o.name))
        })?;
        b.graph.outputs.push(id);
    }
    b.check_defined()?;
    Ok(b.graph)
}

/// Graph under construction: names to ids.
#[derive(Default)]
pub(crate) struct Builder {
    pub graph: Graph,
    ids: HashMap<String, ValueId>,
}

impl Builder {
    /// The id of a name, creating it.
    pub fn id(&mut self, name: &str) -> ValueId {
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        let id = self.graph.names.len();
        self.graph.names.push(name.to_string());
        self.ids.insert(name.to_string(), id);
        id
    }

    /// Every node input is an initializer, a graph input or an earlier node's output.
    fn check_defined(&self) -> Result<()> {
        let mut ok = vec![false; self.graph.names.len()];
        for &id in self.graph.constants.keys() {
            ok[id] = true;
        }
        for i in &self.graph.inputs {
            ok[i.id] = true;
        }
        for n in &self.graph.nodes {
            if let Some(&i) = n.inputs.iter().flatten().find(|&&i| !ok[i]) {
                return Err(GraphError::Invalid {
                    node: n.name.clone(),
                    op: n.op_type.clone(),
                    detail: format!(
                        "input '{}' is not produced before it is used (graph not in topological order?)",
                        self.graph.names[i]
                    ),
                });
            }
            for &o in &n.outputs {
                ok[o] = true;
            }
        }
        Ok(())
    }
}
