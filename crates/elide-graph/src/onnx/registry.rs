//! Which builder imports each ONNX op: one line per (domain, op type, first opset).
//!
//! A node is imported by the entry with the newest `since` at or below the model's opset for
//! the node's domain; an op with no entry is an error naming the node, the op, the domain and
//! the opset. Ops whose meaning changed between opsets (Pad's pads moving from an attribute
//! to an input, say) have one entry per form. Adding an op: write its file under `ops/` (the
//! attribute struct, its [`crate::ops::Operator`] impl, a `build` function and tests), then
//! add its line here; `docs/adding-an-op.md` is the checklist.
use super::attrs::Attrs;
use super::proto::NodeProto;
use crate::graph::ValueId;
use crate::ops::{self, Op};
use crate::{GraphError, Result, Value};
use std::collections::HashMap;
use std::sync::OnceLock;

/// What a builder sees of the node it imports.
pub struct NodeCtx<'a> {
    /// The node.
    pub node: &'a NodeProto,
    /// Its name (or first output's name when the model left it empty).
    pub name: &'a str,
    /// The model's opset for the node's domain.
    pub opset: i64,
    /// Every opset the model imports (for subgraphs).
    pub opsets: &'a [super::proto::OperatorSetIdProto],
    /// Values of enclosing graphs that the node's subgraphs read, appended to its inputs.
    pub captures: &'a [String],
    pub(super) inputs: &'a [Option<ValueId>],
    pub(super) constants: &'a HashMap<ValueId, Value>,
}

impl<'a> NodeCtx<'a> {
    /// The node's attributes; an attribute not in `known` is an error.
    pub fn attrs(&self, known: &[&str]) -> Result<Attrs<'a>> {
        Attrs::new(self.node, self.name, known)
    }

    /// Input `i` when it is present and known at load time.
    pub fn constant(&self, i: usize) -> Option<&'a Value> {
        self.inputs
            .get(i)
            .copied()
            .flatten()
            .and_then(|id| self.constants.get(&id))
    }

    /// Whether input `i` is present (not omitted).
    pub fn has_input(&self, i: usize) -> bool {
        self.inputs.get(i).copied().flatten().is_some()
    }

    /// An "invalid node" error.
    pub fn err(&self, detail: impl Into<String>) -> GraphError {
        GraphError::Invalid {
            node: self.name.to_string(),
            op: self.node.op_type.clone(),
            detail: detail.into(),
        }
    }

    /// Checks the node's input and output counts against the op's signature (trailing
    /// omitted inputs count as absent), as `onnx.checker` does.
    pub fn arity(&self, inputs: (usize, usize), outputs: (usize, usize)) -> Result<()> {
        let given = self.node.input.len();
        let n_out = self.node.output.len();
        let required_missing = (0..inputs.0).find(|&i| !self.has_input(i));
        if given > inputs.1 || n_out > outputs.1 || n_out < outputs.0 {
            return Err(self.err(format!(
                "{given} inputs and {n_out} outputs; the op takes {}-{} inputs and {}-{} outputs",
                inputs.0, inputs.1, outputs.0, outputs.1
            )));
        }
        if let Some(i) = required_missing {
            return Err(self.err(format!("required input {i} is missing")));
        }
        Ok(())
    }
}

/// Builds a node's op from its attributes and constant inputs.
pub type Build = fn(&NodeCtx) -> Result<Op>;

/// How an op is imported.
#[derive(Clone, Copy)]
pub enum Import {
    /// By the older per-op code in `onnx/node.rs` (ops not yet moved to their own builder).
    Legacy,
    /// By a builder.
    Op(Build),
}

struct Entry {
    since: i64,
    import: Import,
}

/// The table of importable ops.
#[derive(Default)]
pub struct Registry {
    map: HashMap<(&'static str, &'static str), Vec<Entry>>,
}

impl Registry {
    /// Registers `build` for `op` in `domain` ("" is the default domain) from opset `since`.
    pub fn add(&mut self, domain: &'static str, op: &'static str, since: i64, build: Build) {
        self.insert(domain, op, since, Import::Op(build));
    }

    fn legacy(&mut self, op: &'static str, since: i64) {
        self.insert("", op, since, Import::Legacy);
    }

    fn insert(&mut self, domain: &'static str, op: &'static str, since: i64, import: Import) {
        let v = self.map.entry((domain, op)).or_default();
        v.push(Entry { since, import });
        v.sort_by_key(|e| e.since);
    }

    /// The importer of `op` at `opset`, if any.
    pub fn find(&self, domain: &str, op: &str, opset: i64) -> Option<Import> {
        let domain = if domain == "ai.onnx" { "" } else { domain };
        self.map
            .get(&(domain, op))?
            .iter()
            .rev()
            .find(|e| e.since <= opset)
            .map(|e| e.import)
    }

    /// Every registered (domain, op type), sorted.
    pub fn ops(&self) -> Vec<(&'static str, &'static str)> {
        let mut v: Vec<_> = self.map.keys().copied().collect();
        v.sort_unstable();
        v
    }
}

/// The registry every import uses.
pub fn registry() -> &'static Registry {
    static R: OnceLock<Registry> = OnceLock::new();
    R.get_or_init(|| {
        let mut r = Registry::default();
        for &(op, since) in LEGACY {
            r.legacy(op, since);
        }
        ops::register(&mut r);
        r
    })
}

/// Ops imported by `onnx/node.rs`, with the first opset whose form it reads (forms before
/// opset 7 cannot reach it: older models are refused at load).
const LEGACY: &[(&str, i64)] = &[
    ("Constant", 1),
    ("Conv", 1),
    ("BatchNormalization", 1),
    ("Relu", 1),
    ("Sigmoid", 1),
    ("Tanh", 1),
    ("HardSwish", 1),
    ("HardSigmoid", 1),
    ("LeakyRelu", 1),
    ("Add", 1),
    ("Sub", 1),
    ("Mul", 1),
    ("Div", 1),
    ("MaxPool", 1),
    ("AveragePool", 1),
    ("GlobalAveragePool", 1),
    ("MatMul", 1),
    ("Gemm", 1),
    ("Softmax", 1),
    ("Flatten", 1),
    ("Reshape", 1),
    ("Transpose", 1),
    ("Concat", 1),
    ("Shape", 1),
    ("Gather", 1),
    ("Unsqueeze", 1),
    ("Squeeze", 1),
    ("Cast", 1),
    ("Identity", 1),
    ("ConvTranspose", 1),
    ("Split", 1),
    ("Expand", 1),
    ("Range", 1),
    ("ConstantOfShape", 1),
    ("Slice", 10),  // inputs starts/ends/axes/steps (attributes before 10)
    ("Resize", 11), // scales at input 2 (input 1 in opset 10)
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_entry_at_or_below_the_opset_wins() {
        let mut r = Registry::default();
        fn a(_: &NodeCtx) -> Result<Op> {
            Ok(Op::Identity)
        }
        fn b(_: &NodeCtx) -> Result<Op> {
            Ok(Op::MatMul)
        }
        r.add("", "X", 7, a);
        r.add("", "X", 13, b);
        let is = |i: Option<Import>, f: Build| matches!(i, Some(Import::Op(g)) if g as usize == f as usize);
        assert!(r.find("", "X", 6).is_none());
        assert!(is(r.find("", "X", 7), a));
        assert!(is(r.find("ai.onnx", "X", 12), a));
        assert!(is(r.find("", "X", 24), b));
        assert!(r.find("com.microsoft", "X", 24).is_none());
    }
}
