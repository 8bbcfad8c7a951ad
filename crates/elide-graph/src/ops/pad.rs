//! Pad on every element type: modes constant, reflect, edge and wrap; negative pads crop;
//! the opset 2-10 form (pads and value as attributes), the opset 11 form (pads and
//! constant_value as inputs, read at run time) and opset 18's `axes` input.
use super::operator::Operator;
use super::{Ctx, Op};
use crate::onnx::registry::{NodeCtx, Registry};
use crate::{map_array, Elem, Result, Value};
use ndarray::{ArrayD, Axis, IxDyn, Slice};
use std::sync::Arc;

/// How values beyond the input's edges are made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PadMode {
    /// A constant.
    Constant,
    /// Mirrored about the edge element (which is not repeated).
    Reflect,
    /// The edge element repeated.
    Edge,
    /// The input repeated periodically.
    Wrap,
}

/// The Pad op.
#[derive(Clone, Debug)]
pub struct Pad {
    mode: PadMode,
    /// Opset 2-10: pads and the constant from attributes.
    attr: Option<(Vec<i64>, f32)>,
}

/// The source index along one axis of length `d` for output index `o` less the leading pad
/// `b`, or `None` for the constant.
fn source(mode: PadMode, i: i64, d: i64) -> Option<usize> {
    if (0..d).contains(&i) {
        return Some(i as usize);
    }
    if d == 0 {
        return None;
    }
    let j = match mode {
        PadMode::Constant => return None,
        PadMode::Edge => i.clamp(0, d - 1),
        PadMode::Wrap => i.rem_euclid(d),
        PadMode::Reflect => {
            if d == 1 {
                0
            } else {
                let p = 2 * (d - 1);
                let j = i.rem_euclid(p);
                if j >= d {
                    p - j
                } else {
                    j
                }
            }
        }
    };
    Some(j as usize)
}

/// `x` padded by `pads` (`[begin..., end...]` over all of its axes) with `fill`.
fn pad_array<T: Elem>(
    x: &ArrayD<T>,
    pads: &[i64],
    mode: PadMode,
    fill: T,
    ctx: Ctx,
) -> Result<ArrayD<T>> {
    let r = x.ndim();
    let wide: Vec<i128> = (0..r)
        .map(|i| x.shape()[i] as i128 + pads[i] as i128 + pads[i + r] as i128)
        .collect();
    if let Some(i) = wide.iter().position(|&d| d < 0) {
        return Err(ctx.err(format!(
            "pads {pads:?} crop more than axis {i}'s {} elements",
            x.shape()[i]
        )));
    }
    let dims: Vec<u128> = wide.iter().map(|&d| d as u128).collect();
    let shape = ctx.sized_wide("output", &dims)?;
    let total: usize = shape.iter().product();
    if mode == PadMode::Constant && pads.iter().all(|&p| p >= 0) {
        // The common case (convs' padding) as a fill and one block copy.
        let mut out = ArrayD::from_elem(IxDyn(&shape), fill);
        let mut view = out.view_mut();
        for (i, &len) in x.shape().iter().enumerate() {
            let b = pads[i] as usize;
            view.slice_axis_inplace(Axis(i), Slice::from(b..b + len));
        }
        view.assign(x);
        return Ok(out);
    }
    // Per axis: each output index's source index.
    let mut maps = Vec::with_capacity(r);
    for (ax, &len) in shape.iter().enumerate() {
        let d = x.shape()[ax] as i64;
        if mode != PadMode::Constant && d == 0 && len > 0 {
            return Err(ctx.err(format!("cannot pad the empty axis {ax} in this mode")));
        }
        let m: Vec<Option<usize>> = (0..len as i64)
            .map(|o| source(mode, o - pads[ax], d))
            .collect();
        maps.push(m);
    }
    let x = x.as_standard_layout();
    let data: Vec<T> = x.iter().copied().collect();
    let mut strides = vec![1usize; r];
    for i in (0..r.saturating_sub(1)).rev() {
        strides[i] = strides[i + 1] * x.shape()[i + 1];
    }
    let mut out = Vec::with_capacity(total);
    let mut idx = vec![0usize; r];
    for _ in 0..total {
        let mut off = Some(0usize);
        for ax in 0..r {
            off = match (off, maps[ax].get(idx[ax]).copied().flatten()) {
                (Some(o), Some(s)) => Some(o + s * strides[ax]),
                _ => None,
            };
        }
        out.push(off.and_then(|o| data.get(o).copied()).unwrap_or(fill));
        for d in (0..r).rev() {
            idx[d] += 1;
            if idx[d] < shape[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    Ok(ArrayD::from_shape_vec(IxDyn(&shape), out)?)
}

impl Pad {
    /// Pads over all of `x`'s axes, from the attributes or inputs 1-3.
    fn full_pads(&self, inputs: &[Option<&Value>], r: usize, ctx: Ctx) -> Result<Vec<i64>> {
        let raw = match &self.attr {
            Some((p, _)) => p.clone(),
            None => {
                let p = ctx.input(inputs, 1)?;
                if !matches!(p.dtype(), crate::DType::I64) {
                    return Err(ctx.err(format!("pads are {}, expected i64", p.dtype())));
                }
                p.to_i64_vec()
            }
        };
        let axes: Vec<usize> = match inputs.get(3).copied().flatten() {
            Some(a) if self.attr.is_none() => {
                if !a.dtype().is_int() {
                    return Err(ctx.err(format!("axes are {}, expected integers", a.dtype())));
                }
                let axes = a
                    .to_i64_vec()
                    .into_iter()
                    .map(|v| ctx.axis(v, r))
                    .collect::<Result<Vec<_>>>()?;
                let mut seen = vec![false; r];
                for &a in &axes {
                    if std::mem::replace(&mut seen[a], true) {
                        return Err(ctx.err(format!("axis {a} repeats in axes")));
                    }
                }
                axes
            }
            _ => (0..r).collect(),
        };
        let n = axes.len();
        if raw.len() != 2 * n {
            return Err(ctx.err(format!("pads {raw:?}: needs {} values for {n} axes", 2 * n)));
        }
        let mut pads = vec![0i64; 2 * r];
        for (i, &a) in axes.iter().enumerate() {
            pads[a] = raw[i];
            pads[a + r] = raw[i + n];
        }
        Ok(pads)
    }
}

impl Operator for Pad {
    fn name(&self) -> &'static str {
        "Pad"
    }

    fn run(&self, inputs: &[Option<&Value>], ctx: Ctx) -> Result<Vec<Value>> {
        let x = ctx.input(inputs, 0)?;
        let pads = self.full_pads(inputs, x.shape().len(), ctx)?;
        let fill: Value = match (&self.attr, inputs.get(2).copied().flatten()) {
            (Some((_, v)), _) => Value::f32(&[], vec![*v])?.cast(x.dtype()),
            (None, Some(c)) => {
                if c.dtype() != x.dtype() {
                    return Err(ctx.err(format!(
                        "constant_value is {} but the data is {}",
                        c.dtype(),
                        x.dtype()
                    )));
                }
                if c.len() > 1 {
                    return Err(ctx.err(format!("constant_value {:?} is not a scalar", c.shape())));
                }
                c.clone()
            }
            (None, None) => Value::zeros(x.dtype(), &[]),
        };
        let mode = self.mode;
        let out = map_array!(x, a => {
            let f = Elem::view(&fill).and_then(|f: &ArrayD<_>| f.iter().next().copied()).unwrap_or_default();
            pad_array(a, &pads, mode, f, ctx)?
        });
        Ok(vec![out])
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

fn mode(a: &crate::onnx::attrs::Attrs) -> Result<PadMode> {
    Ok(match a.string("mode", "constant").as_str() {
        "constant" => PadMode::Constant,
        "reflect" => PadMode::Reflect,
        "edge" => PadMode::Edge,
        "wrap" => PadMode::Wrap,
        other => return Err(a.unsupported(format!("Pad mode {other}"))),
    })
}

/// Opset 2-10: pads and value are attributes.
fn build_pad_v2(n: &NodeCtx) -> Result<Op> {
    let a = n.attrs(&["mode", "pads", "value"])?;
    n.arity((1, 1), (1, 1))?;
    let pads = a
        .ints("pads")
        .ok_or_else(|| n.err("pads attribute is missing"))?;
    let mode = mode(&a)?;
    if mode == PadMode::Wrap {
        return Err(a.unsupported("Pad mode wrap before opset 19"));
    }
    Ok(Op::Dyn(Arc::new(Pad {
        mode,
        attr: Some((pads, a.float("value", 0.0))),
    })))
}

/// Opset 11+: pads, constant_value and (18+) axes are inputs.
fn build_pad(n: &NodeCtx) -> Result<Op> {
    let a = n.attrs(&["mode"])?;
    let max_in = if n.opset >= 18 { 4 } else { 3 };
    n.arity((2, max_in), (1, 1))?;
    Ok(Op::Dyn(Arc::new(Pad {
        mode: mode(&a)?,
        attr: None,
    })))
}

/// Registers the ops of this file.
pub(crate) fn register(r: &mut Registry) {
    r.add("", "Pad", 2, build_pad_v2);
    r.add("", "Pad", 11, build_pad);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Ctx<'static> {
        Ctx {
            node: "n",
            op: "Pad",
            arena: None,
        }
    }

    fn pad(mode: PadMode, ins: &[Option<&Value>]) -> Result<Value> {
        Ok(Pad { mode, attr: None }.run(ins, ctx())?.remove(0))
    }

    fn i64s(v: &[i64]) -> Value {
        Value::i64(&[v.len()], v.to_vec()).unwrap()
    }

    /// numpy.pad on one axis, for reference.
    fn naive_1d(x: &[i64], b: usize, e: usize, mode: PadMode) -> Vec<i64> {
        let d = x.len() as i64;
        (0..(x.len() + b + e) as i64)
            .map(|o| {
                let i = o - b as i64;
                if (0..d).contains(&i) {
                    return x[i as usize];
                }
                match mode {
                    PadMode::Constant => -1,
                    PadMode::Edge => x[i.clamp(0, d - 1) as usize],
                    PadMode::Wrap => x[i.rem_euclid(d) as usize],
                    PadMode::Reflect => {
                        // Reflect step by step, as numpy does for wide pads.
                        let mut j = i;
                        while !(0..d).contains(&j) {
                            j = if j < 0 { -j } else { 2 * (d - 1) - j };
                        }
                        x[j as usize]
                    }
                }
            })
            .collect()
    }

    #[test]
    fn modes_match_numpy_on_one_axis() {
        let x = [1i64, 2, 3];
        let v = Value::from_vec(&[3], x.iter().map(|&v| v as i32).collect()).unwrap();
        let c = Value::from_vec(&[], vec![-1i32]).unwrap();
        for mode in [
            PadMode::Constant,
            PadMode::Reflect,
            PadMode::Edge,
            PadMode::Wrap,
        ] {
            for (b, e) in [(0, 0), (2, 1), (5, 4), (1, 0)] {
                let y = pad(mode, &[Some(&v), Some(&i64s(&[b, e])), Some(&c)]).unwrap();
                assert_eq!(y.dtype(), crate::DType::I32);
                assert_eq!(
                    y.to_i64_vec(),
                    naive_1d(&x, b as usize, e as usize, mode),
                    "{mode:?} {b} {e}"
                );
            }
        }
    }

    #[test]
    fn axes_input_negative_pads_and_two_dims() {
        let x = Value::f32(&[2, 3], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
        let axes = i64s(&[-1]);
        let y = pad(
            PadMode::Edge,
            &[Some(&x), Some(&i64s(&[1, -2])), None, Some(&axes)],
        )
        .unwrap();
        assert_eq!(y.shape(), &[2, 2]);
        assert_eq!(y.to_f64_vec(), vec![1.0, 1.0, 4.0, 4.0]);
        let y = pad(PadMode::Reflect, &[Some(&x), Some(&i64s(&[1, 0, 0, 0]))]).unwrap();
        assert_eq!(
            y.to_f64_vec(),
            vec![4.0, 5.0, 6.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
        );
        // Over-cropping, wrong pads length, repeated axes, wrong constant type.
        assert!(pad(PadMode::Constant, &[Some(&x), Some(&i64s(&[0, -2, 0, -2]))]).is_err());
        assert!(pad(PadMode::Constant, &[Some(&x), Some(&i64s(&[1, 1]))]).is_err());
        let rep = i64s(&[0, -2]);
        assert!(pad(
            PadMode::Constant,
            &[Some(&x), Some(&i64s(&[0; 4])), None, Some(&rep)]
        )
        .is_err());
        let c = Value::from_vec(&[], vec![1i64]).unwrap();
        assert!(pad(
            PadMode::Constant,
            &[Some(&x), Some(&i64s(&[0; 4])), Some(&c)]
        )
        .is_err());
    }

    #[test]
    fn empty_inputs_and_the_attribute_form() {
        let e = Value::f32(&[0, 2], vec![]).unwrap();
        let y = pad(PadMode::Constant, &[Some(&e), Some(&i64s(&[1, 0, 0, 1]))]).unwrap();
        assert_eq!(y.shape(), &[1, 3]);
        assert_eq!(y.to_f64_vec(), vec![0.0; 3]);
        assert!(pad(PadMode::Edge, &[Some(&e), Some(&i64s(&[1, 0, 0, 0]))]).is_err());
        let p = Pad {
            mode: PadMode::Constant,
            attr: Some((vec![1, 1], 7.5)),
        };
        let x = Value::f32(&[1], vec![1.0]).unwrap();
        let y = p.run(&[Some(&x)], ctx()).unwrap().remove(0);
        assert_eq!(y.to_f64_vec(), vec![7.5, 1.0, 7.5]);
    }
}
