//! Dropout at inference: the output is the input and the optional mask is all ones (bool
//! from opset 10, the input's type before). Training mode (`training_mode` true) is refused,
//! at import when it is a constant and at run time otherwise, never silently ignored.
use super::operator::Operator;
use super::{Ctx, Op};
use crate::onnx::registry::{NodeCtx, Registry};
use crate::{DType, Result, Value};
use std::sync::Arc;

/// Dropout with a mask output or a run-time `training_mode`.
#[derive(Clone, Debug)]
pub struct Dropout {
    /// The mask's element type (`None`: the input's).
    mask: Option<DType>,
    /// Whether the node has a mask output.
    with_mask: bool,
}

impl Operator for Dropout {
    fn name(&self) -> &'static str {
        "Dropout"
    }

    fn run(&self, inputs: &[Option<&Value>], ctx: Ctx) -> Result<Vec<Value>> {
        let x = ctx.input(inputs, 0)?;
        if let Some(t) = inputs.get(2).copied().flatten() {
            if t.to_i64_vec().first().is_some_and(|&v| v != 0) {
                return Err(ctx.err("training_mode is true: elide runs Dropout for inference only"));
            }
        }
        let mut out = vec![x.clone()];
        if self.with_mask {
            let ones = Value::from_vec(x.shape(), vec![1.0f32; x.len()])?;
            out.push(ones.cast(self.mask.unwrap_or(x.dtype())));
        }
        Ok(out)
    }

    fn pointwise(&self) -> bool {
        true
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

fn build(n: &NodeCtx) -> Result<Op> {
    n.attrs(&["seed", "ratio"])?;
    n.arity((1, 3), (1, 2))?;
    if let Some(t) = n.constant(2) {
        if t.to_i64_vec().first().is_some_and(|&v| v != 0) {
            return Err(n.err("training_mode is true: elide runs Dropout for inference only"));
        }
    }
    let with_mask = n.node.output.get(1).is_some_and(|o| !o.is_empty());
    let runtime_mode = n.has_input(2) && n.constant(2).is_none();
    if !with_mask && !runtime_mode {
        return Ok(Op::Identity); // passes its input on without a copy
    }
    Ok(Op::Dyn(Arc::new(Dropout {
        mask: (n.opset >= 10).then_some(DType::Bool),
        with_mask,
    })))
}

/// Registers Dropout.
pub(crate) fn register(r: &mut Registry) {
    r.add("", "Dropout", 7, build);
}
