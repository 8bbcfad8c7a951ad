//! Clip: bounds from attributes (opsets 6-10) or inputs (11+). Constant f32 bounds become the
//! fused [`Unary::Clip`] (foldable into a conv's epilogue); bounds computed at run time, or
//! of an integer type, run as [`RuntimeClip`] on any numeric type.
use super::operator::Operator;
use super::typed::{input, NUMERIC};
use super::{Ctx, Op, Unary};
use crate::onnx::registry::{NodeCtx, Registry};
use crate::{map_array, Elem, Result, Value};
use std::sync::Arc;

/// Clip with bounds read from inputs 1 and 2 on every run.
#[derive(Clone, Debug)]
pub struct RuntimeClip;

impl Operator for RuntimeClip {
    fn name(&self) -> &'static str {
        "Clip"
    }

    fn run(&self, inputs: &[Option<&Value>], ctx: Ctx) -> Result<Vec<Value>> {
        let x = input(inputs, 0, &NUMERIC, ctx)?;
        let bound = |i: usize| -> Result<Option<f64>> {
            match inputs.get(i).copied().flatten() {
                None => Ok(None),
                Some(b) if b.dtype() != x.dtype() => Err(ctx.err(format!(
                    "bound {i} is {}, the input {}",
                    b.dtype(),
                    x.dtype()
                ))),
                Some(b) if b.len() != 1 => {
                    Err(ctx.err(format!("bound {i} has shape {:?}, not a scalar", b.shape())))
                }
                Some(b) => Ok(Some(b.to_f64_vec()[0])),
            }
        };
        let (lo, hi) = (bound(1)?, bound(2)?);
        if lo.is_some_and(f64::is_nan) || hi.is_some_and(f64::is_nan) {
            return Err(ctx.err("a bound is NaN"));
        }
        // Integers clamp exactly in i64 (bounds of the input's own type fit it).
        let int = x.dtype().is_int();
        let out = map_array!(x, a => a.mapv(|v| {
            if int {
                let mut i = v.to_i64();
                if let Some(l) = lo { i = i.max(l as i64); }
                if let Some(h) = hi { i = i.min(h as i64); }
                Elem::from_i64(i)
            } else {
                let mut f = v.to_f64();
                if let Some(l) = lo { f = f.max(l); }
                if let Some(h) = hi { f = f.min(h); }
                Elem::from_f64(f)
            }
        }));
        Ok(vec![out])
    }

    fn pointwise(&self) -> bool {
        true
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// Opsets 6-10: bounds are attributes.
fn build_attrs(n: &NodeCtx) -> Result<Op> {
    let a = n.attrs(&["min", "max"])?;
    n.arity((1, 1), (1, 1))?;
    let (min, max) = (a.float("min", f32::MIN), a.float("max", f32::MAX));
    if min.is_nan() || max.is_nan() {
        return Err(n.err(format!("Clip bounds [{min}, {max}] hold NaN")));
    }
    Ok(Op::Unary(Unary::Clip { min, max }))
}

/// Opset 11+: bounds are optional inputs of the input's type.
fn build_inputs(n: &NodeCtx) -> Result<Op> {
    n.attrs(&[])?;
    n.arity((1, 3), (1, 1))?;
    let bound = |i: usize, default: f32| -> Option<f32> {
        if !n.has_input(i) {
            return Some(default);
        }
        match n.constant(i) {
            Some(Value::F32(v)) if v.len() == 1 => v.iter().next().copied(),
            _ => None,
        }
    };
    match (bound(1, f32::NEG_INFINITY), bound(2, f32::INFINITY)) {
        (Some(min), Some(max)) if n.has_input(1) || n.has_input(2) => {
            if min.is_nan() || max.is_nan() {
                return Err(n.err(format!("Clip bounds [{min}, {max}] hold NaN")));
            }
            Ok(Op::Unary(Unary::Clip { min, max }))
        }
        _ => Ok(Op::Dyn(Arc::new(RuntimeClip))),
    }
}

/// Registers Clip.
pub(crate) fn register(r: &mut Registry) {
    r.add("", "Clip", 6, build_attrs);
    r.add("", "Clip", 11, build_inputs);
}
