//! ONNX import: protobuf to [`Graph`], every op and attribute validated, constants resolved;
//! and [`write::ModelWriter`] to build and encode a model.
//!
//! Supported: default-domain opsets 7-24 (each op imported by the form its [`registry`]
//! entry gives for the model's opset), IR versions 3 and up. Weights may sit in initializers
//! or in Constant nodes. An op, attribute or data type elide does not implement is an error
//! that names the node, the op, its domain and the opset.
pub mod attrs;
pub mod control;
mod node;
pub mod proto;
pub mod registry;
pub mod tensor;
pub mod write;

pub(crate) use node::conv_layer;

use crate::graph::{DType, Graph, Input, ValueId};
use crate::ops::MAX_ELEMENTS;
use crate::{GraphError, Result};
use prost::Message;
use proto::ModelProto;
use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::path::Path;

/// Oldest and newest default-domain opset accepted.
pub const OPSETS: (i64, i64) = (7, 24);

/// Reads an ONNX file.
pub fn load(path: impl AsRef<Path>) -> Result<Graph> {
    let bytes = std::fs::read(path.as_ref())
        .map_err(|e| GraphError::Model(format!("cannot read {}: {e}", path.as_ref().display())))?;
    from_bytes(&bytes)
}

/// Parses an ONNX model from memory.
pub fn from_bytes(bytes: &[u8]) -> Result<Graph> {
    if bytes.is_empty() {
        return Err(GraphError::Model(
            "the model file is empty (0 bytes): not an ONNX model".into(),
        ));
    }
    let model = ModelProto::decode(bytes)?;
    // Protobuf decodes many byte strings (a text file, say) as unknown fields only.
    if model.graph.is_none() && model.opset_import.is_empty() {
        return Err(GraphError::Model(
            "not an ONNX model (no graph and no opset imports)".into(),
        ));
    }
    let opset = model
        .opset_import
        .iter()
        .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
        .map(|o| o.version)
        .ok_or_else(|| GraphError::Model("the model imports no default-domain opset".into()))?;
    if !(OPSETS.0..=OPSETS.1).contains(&opset) {
        return Err(GraphError::NotSupported(format!(
            "default-domain opset {opset} (elide reads {}-{})",
            OPSETS.0, OPSETS.1
        )));
    }
    let g = model
        .graph
        .ok_or_else(|| GraphError::Model("the model has no graph".into()))?;
    if g.output.is_empty() {
        return Err(GraphError::Model(
            "the graph declares no outputs: running it would compute nothing".into(),
        ));
    }
    import_graph(&g, &model.opset_import, &[])
}

/// Imports a graph (the model's, or a control-flow op's subgraph): its initializers, inputs,
/// then `captures` (values of enclosing graphs it reads, fed as extra inputs after its own),
/// nodes and outputs.
pub(crate) fn import_graph(
    g: &proto::GraphProto,
    opsets: &[proto::OperatorSetIdProto],
    captures: &[String],
) -> Result<Graph> {
    let opset = opsets
        .iter()
        .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
        .map_or(OPSETS.1, |o| o.version);
    let mut b = Builder::default();
    for t in &g.initializer {
        let id = b.id(&t.name);
        b.produce(id, format!("initializer '{}'", t.name))
            .map_err(|first| GraphError::Model(format!("{first} is defined twice")))?;
        b.graph.constants.insert(id, tensor::to_value(t, &t.name)?);
    }
    for i in &g.input {
        let id = b.id(&i.name);
        if b.graph.constants.contains_key(&id) {
            continue; // an initializer listed as input (IR < 4): a constant with a default
        }
        b.produce(id, format!("graph input '{}'", i.name))
            .map_err(|first| GraphError::Model(format!("{first} is declared twice")))?;
        b.graph.inputs.push(input(id, i)?);
    }
    for c in captures {
        let id = b.id(c);
        if b.produce(id, format!("captured value '{c}'")).is_ok() {
            b.graph.inputs.push(Input {
                id,
                shape: vec![],
                dtype: None,
            });
        }
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
        let default = n.domain.is_empty() || n.domain == "ai.onnx";
        let version = if default {
            Some(opset)
        } else {
            opsets
                .iter()
                .find(|o| o.domain == n.domain)
                .map(|o| o.version)
        };
        // A node with subgraphs reads, besides its inputs, the enclosing values they use:
        // they become extra inputs, so liveness and the executor see them.
        let free = control::free_names(n);
        let with_captures;
        let n = if free.is_empty() {
            n
        } else {
            with_captures = proto::NodeProto {
                input: n.input.iter().chain(&free).cloned().collect(),
                ..n.clone()
            };
            &with_captures
        };
        let found = version.and_then(|v| registry::registry().find(&n.domain, &n.op_type, v));
        match found {
            Some(registry::Import::Legacy) => node::import(&mut b, n, &name, opset)?,
            Some(registry::Import::Op(build)) => {
                node::build(&mut b, n, &name, opset, opsets, &free, build)?
            }
            None => {
                let domain = if default {
                    "ai.onnx"
                } else {
                    n.domain.as_str()
                };
                return Err(GraphError::Unsupported {
                    what: "op",
                    node: name,
                    op: n.op_type.clone(),
                    detail: match version {
                        Some(v) => format!("not implemented for domain '{domain}', opset {v}"),
                        None => format!("domain '{domain}' is not imported by the model"),
                    },
                });
            }
        }
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

/// A graph input from its declaration: element type (one the engine holds, or an error) and
/// static dims (refused above [`MAX_ELEMENTS`]: a caller would allocate them).
fn input(id: ValueId, i: &proto::ValueInfoProto) -> Result<Input> {
    let ty = i.r#type.as_ref();
    if let Some(kind) = ty.and_then(|t| {
        (t.sequence_type.is_some().then_some("a sequence"))
            .or(t.map_type.is_some().then_some("a map"))
            .or(t.optional_type.is_some().then_some("an optional"))
    }) {
        return Err(GraphError::NotSupported(format!(
            "input '{}' is {kind}; elide takes tensors only",
            i.name
        )));
    }
    let tensor = ty.and_then(|t| t.tensor_type.as_ref());
    let dtype = match tensor.map_or(0, |t| t.elem_type) {
        0 => None, // undeclared
        code => Some(DType::from_onnx(code).ok_or_else(|| {
            GraphError::NotSupported(format!(
                "input '{}' has ONNX element type {} ({code}), which elide does not hold",
                i.name,
                DType::onnx_name(code)
            ))
        })?),
    };
    let shape: Vec<Option<usize>> = tensor
        .and_then(|t| t.shape.as_ref())
        .map(|s| {
            s.dim
                .iter()
                .map(|d| d.dim_value.filter(|&v| v > 0).map(|v| v as usize))
                .collect()
        })
        .unwrap_or_default();
    let fixed = shape
        .iter()
        .flatten()
        .try_fold(1usize, |n, &d| n.checked_mul(d));
    if fixed.is_none_or(|n| n > MAX_ELEMENTS) {
        return Err(GraphError::Model(format!(
            "input '{}' declares shape {shape:?} (None = any), more than the {MAX_ELEMENTS} \
             elements elide allows per value",
            i.name
        )));
    }
    Ok(Input { id, shape, dtype })
}

/// Graph under construction: names to ids.
#[derive(Default)]
pub(crate) struct Builder {
    pub graph: Graph,
    ids: HashMap<String, ValueId>,
    /// Who defines each value (initializer, graph input or node), for duplicate errors.
    producers: HashMap<ValueId, String>,
}

impl Builder {
    /// Records `by` as the one producer of `id` (ONNX graphs assign each name once);
    /// `Err(first producer)` when it already has one.
    pub fn produce(&mut self, id: ValueId, by: String) -> std::result::Result<(), String> {
        match self.producers.entry(id) {
            Entry::Occupied(e) => Err(e.get().clone()),
            Entry::Vacant(e) => {
                e.insert(by);
                Ok(())
            }
        }
    }

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
