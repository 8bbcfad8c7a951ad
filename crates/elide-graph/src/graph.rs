//! The graph IR: values by index, nodes with typed ops, in topological order.
use crate::arena::Arena;
use crate::ops::Op;
use crate::Value;
use std::collections::HashMap;

/// Index of a value (a tensor edge) in [`Graph::names`].
pub type ValueId = usize;

/// One op application.
#[derive(Clone, Debug)]
pub struct Node {
    /// Node name from the model (or its first output's name when the model left it empty).
    pub name: String,
    /// The ONNX op type it came from (kept for messages and `inspect`).
    pub op_type: String,
    /// What it computes, with validated attributes.
    pub op: Op,
    /// Inputs; `None` for an omitted optional input.
    pub inputs: Vec<Option<ValueId>>,
    /// Outputs.
    pub outputs: Vec<ValueId>,
}

/// A graph input: its name, declared shape (`None` for a symbolic dimension) and element type.
#[derive(Clone, Debug)]
pub struct Input {
    /// The value it feeds.
    pub id: ValueId,
    /// Declared dimensions.
    pub shape: Vec<Option<usize>>,
    /// Declared element type, as the engine holds it (`None`: undeclared, any is taken).
    pub dtype: Option<DType>,
}

pub use crate::dtype::DType;

/// A network ready to run: constants resolved, nodes sorted so every input is produced
/// before it is read.
#[derive(Clone, Debug, Default)]
pub struct Graph {
    /// Name of every value.
    pub names: Vec<String>,
    /// Values known at load time (initializers, Constant nodes, folded subgraphs).
    pub constants: HashMap<ValueId, Value>,
    /// Runtime inputs, in the model's order.
    pub inputs: Vec<Input>,
    /// Outputs, in the model's order.
    pub outputs: Vec<ValueId>,
    /// Nodes in execution order.
    pub nodes: Vec<Node>,
    /// Buffers freed by earlier nodes and runs, reused for op outputs.
    pub arena: Arena,
    /// Whether f32 inputs may hold NaN or infinities (`false`, the default: such an input is
    /// refused, since a camera frame or a feature map never should; ONNX's own semantics,
    /// which the conformance runner uses, let them through).
    pub accept_non_finite: bool,
}

impl Graph {
    /// The value called `name`, if any.
    pub fn value(&self, name: &str) -> Option<ValueId> {
        self.names.iter().position(|n| n == name)
    }

    /// How many nodes read each value (graph outputs count as one more reader).
    pub fn readers(&self) -> Vec<usize> {
        let mut r = vec![0; self.names.len()];
        for n in &self.nodes {
            for i in n.inputs.iter().flatten() {
                r[*i] += 1;
            }
        }
        for &o in &self.outputs {
            r[o] += 1;
        }
        r
    }

    /// The index of the last node reading each value (`None`: never read by a node).
    pub fn last_use(&self) -> Vec<Option<usize>> {
        let mut last = vec![None; self.names.len()];
        for (k, n) in self.nodes.iter().enumerate() {
            for i in n.inputs.iter().flatten() {
                last[*i] = Some(k);
            }
        }
        last
    }
}
