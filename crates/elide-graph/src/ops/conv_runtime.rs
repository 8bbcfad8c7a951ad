//! Conv whose weights (or bias) are not known at import: computed by a constant subgraph
//! (`DequantizeLinear` of int8 weights, `ConstantOfShape`, ...) or fed at run time.
//!
//! At import such a node keeps its attributes (checked then) and becomes a [`RuntimeConv`],
//! which builds the kernels' layer from the weights it is given on every run. The lowering
//! pass [`lower_convs`], run by `optimize` after constant folding, turns every one whose
//! weights have become constants into an ordinary prepared conv, so a quantized model's
//! convs run on the same fast path as a float model's.
use super::operator::Operator;
use super::{Ctx, Op};
use crate::graph::Graph;
use crate::onnx::proto::NodeProto;
use crate::{GraphError, Result, Value};

/// A Conv node prepared per run from its weight and bias inputs.
#[derive(Clone, Debug)]
pub struct RuntimeConv {
    node: NodeProto,
    name: String,
}

impl RuntimeConv {
    /// Wraps the node (attributes already validated at import).
    pub fn new(node: NodeProto, name: &str) -> Self {
        Self {
            node,
            name: name.to_string(),
        }
    }

    /// The prepared conv for these weights and bias.
    fn layer(&self, w: &Value, bias: Option<&Value>) -> Result<Op> {
        let invalid = |detail: String| GraphError::Invalid {
            node: self.name.clone(),
            op: "Conv".into(),
            detail,
        };
        crate::onnx::conv_layer(&self.node, &self.name, w, bias, &invalid)
    }
}

impl Operator for RuntimeConv {
    fn name(&self) -> &'static str {
        "Conv"
    }

    fn run(&self, inputs: &[Option<&Value>], ctx: Ctx) -> Result<Vec<Value>> {
        let w = ctx.input(inputs, 1)?;
        let bias = inputs.get(2).copied().flatten();
        match self.layer(w, bias)? {
            Op::Conv(c) => Ok(vec![c.run_borrowed(ctx.f32(inputs, 0)?, ctx)?]),
            _ => Err(ctx.err("not a 2-D convolution")),
        }
    }

    fn macs(&self, inputs: &[&[usize]], outputs: &[&[usize]]) -> u64 {
        // Every output element reads cin/group * kh * kw weights.
        match (inputs.get(1), outputs.first()) {
            (Some(w), Some(o)) if w.len() == 4 => {
                let per = (w[1] * w[2] * w[3]) as u64;
                o.iter().product::<usize>() as u64 * per
            }
            _ => 0,
        }
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// Replaces every [`RuntimeConv`] whose weights and bias are constants by a prepared conv;
/// returns how many.
pub fn lower_convs(g: &mut Graph) -> Result<usize> {
    let mut n = 0;
    for k in 0..g.nodes.len() {
        let node = &g.nodes[k];
        let Op::Dyn(d) = &node.op else { continue };
        let Some(rc) = d.as_any().downcast_ref::<RuntimeConv>() else {
            continue;
        };
        let constant = |i: usize| {
            node.inputs
                .get(i)
                .copied()
                .flatten()
                .and_then(|id| g.constants.get(&id))
        };
        let Some(w) = constant(1) else { continue };
        let has_bias = node.inputs.get(2).copied().flatten().is_some();
        if has_bias && constant(2).is_none() {
            continue;
        }
        let op = rc.layer(w, constant(2))?;
        g.nodes[k].op = op;
        n += 1;
    }
    Ok(n)
}
