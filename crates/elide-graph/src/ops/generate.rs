//! Ops that split, broadcast, pad or generate tensors: Split, Expand, Range, ConstantOfShape,
//! Pad (constant mode).
use super::Ctx;
use crate::{map_array, Result, Value};
use ndarray::{ArrayD, Axis, IxDyn, Slice};

/// Splits along `axis` into the sizes of input 1 (or `split`), or equally into `parts`.
pub fn split(
    inputs: &[Option<&Value>],
    axis: i64,
    attr: Option<&[i64]>,
    parts: usize,
    ctx: Ctx,
) -> Result<Vec<Value>> {
    let v = ctx.input(inputs, 0)?;
    let ax = ctx.axis(axis, v.shape().len())?;
    let dim = v.shape()[ax];
    let sizes: Vec<usize> = match attr
        .map(<[i64]>::to_vec)
        .or_else(|| inputs.get(1).copied().flatten().map(Value::to_i64_vec))
    {
        Some(s) => s.iter().map(|&x| x.max(0) as usize).collect(),
        None => {
            let each = dim.div_ceil(parts.max(1));
            (0..parts)
                .map(|i| each.min(dim.saturating_sub(i * each)))
                .collect()
        }
    };
    if sizes.iter().sum::<usize>() != dim {
        return Err(ctx.err(format!("split sizes {sizes:?} do not add up to {dim}")));
    }
    if let Value::F32(a) = v {
        if let Some(src) = a.as_slice() {
            return Ok(split_f32(src, a.shape(), ax, &sizes, ctx));
        }
    }
    let mut out = Vec::with_capacity(sizes.len());
    let mut at = 0;
    for s in sizes {
        let sl = Slice::from(at..at + s);
        out.push(map_array!(v, a => a.slice_axis(Axis(ax), sl).as_standard_layout().into_owned()));
        at += s;
    }
    Ok(out)
}

/// Split of a contiguous f32 array: per index of the axes before `ax`, each part's block is
/// one contiguous copy (a strided view's `as_standard_layout` walked it element by element).
fn split_f32(src: &[f32], shape: &[usize], ax: usize, sizes: &[usize], ctx: Ctx) -> Vec<Value> {
    let outer: usize = shape[..ax].iter().product();
    let inner: usize = shape[ax + 1..].iter().product();
    let dim = shape[ax];
    let mut at = 0;
    sizes
        .iter()
        .map(|&s| {
            let mut out = ctx.alloc(outer * s * inner);
            for o in 0..outer {
                let from = (o * dim + at) * inner;
                out[o * s * inner..(o + 1) * s * inner]
                    .copy_from_slice(&src[from..from + s * inner]);
            }
            at += s;
            let mut sh = shape.to_vec();
            sh[ax] = s;
            Value::F32(ArrayD::from_shape_vec(IxDyn(&sh), out).expect("sizes match"))
        })
        .collect()
}

/// Broadcasts input 0 to the shape of input 1 (numpy rules, either side may be 1).
pub fn expand(inputs: &[Option<&Value>], ctx: Ctx) -> Result<Value> {
    let v = ctx.input(inputs, 0)?;
    let want = ctx.input(inputs, 1)?.to_i64_vec();
    let s = v.shape();
    let rank = s.len().max(want.len());
    let mut shape = vec![0usize; rank];
    for (i, d) in shape.iter_mut().enumerate() {
        let a = if i + s.len() >= rank {
            s[i + s.len() - rank]
        } else {
            1
        };
        let b = if i + want.len() >= rank {
            usize::try_from(want[i + want.len() - rank])
                .map_err(|_| ctx.err(format!("cannot expand to {want:?}: negative dim")))?
        } else {
            1
        };
        if a != b && a != 1 && b != 1 {
            return Err(ctx.err(format!("cannot expand {s:?} to {want:?}")));
        }
        *d = a.max(b);
    }
    ctx.sized("output", &shape)?;
    let bad = || ctx.err(format!("cannot expand {s:?} to {shape:?}"));
    Ok(map_array!(v, a => a.broadcast(IxDyn(&shape)).ok_or_else(bad)?.to_owned()))
}

/// `start, start + delta, ...` below `limit` (scalars; f32 or i64 like the start).
pub fn range(inputs: &[Option<&Value>], ctx: Ctx) -> Result<Value> {
    let start = ctx.input(inputs, 0)?;
    let scalar = |i: usize| -> Result<f64> {
        let v = ctx.input(inputs, i)?;
        Ok(v.to_f64_vec().first().copied().unwrap_or(0.0))
    };
    let (s, l, d) = (scalar(0)?, scalar(1)?, scalar(2)?);
    if d == 0.0 {
        return Err(ctx.err("Range delta 0"));
    }
    if ![s, l, d].iter().all(|v| v.is_finite()) {
        return Err(ctx.err(format!("Range({s}, {l}, {d}) is not finite")));
    }
    // Finite, so the count saturates (never NaN) on its way to u128.
    let n = ctx.sized_wide("output", &[((l - s) / d).ceil().max(0.0) as u128])?[0];
    // In f64, then to the start's type (integer ranges are exact below 2^53).
    let seq = Value::from_vec(&[n], (0..n).map(|i| s + i as f64 * d).collect::<Vec<f64>>())?;
    Ok(seq.cast(start.dtype()))
}

/// A tensor of the shape in input 0 filled with `value`.
pub fn constant_of_shape(inputs: &[Option<&Value>], value: &Value, ctx: Ctx) -> Result<Value> {
    let want = ctx.input(inputs, 0)?.to_i64_vec();
    let wide: Vec<u128> = want
        .iter()
        .map(|&d| u128::try_from(d))
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| ctx.err(format!("shape {want:?} has a negative dim")))?;
    let shape = ctx.sized_wide("output", &wide)?;
    Ok(map_array!(value, a => ArrayD::from_elem(
        IxDyn(&shape),
        a.iter().next().copied().unwrap_or_default(),
    )))
}

/// Constant-mode Pad with pads from input 1 (`[begin..., end...]`), value from input 2.
pub fn pad(inputs: &[Option<&Value>], ctx: Ctx) -> Result<Value> {
    let x = ctx.f32(inputs, 0)?;
    let pads = ctx.input(inputs, 1)?.to_i64_vec();
    let r = x.ndim();
    if pads.len() != 2 * r || pads.iter().any(|&p| p < 0) {
        return Err(ctx.err(format!(
            "pads {pads:?} for rank {r} (negative pads are not supported)"
        )));
    }
    let value = match inputs.get(2).copied().flatten() {
        Some(Value::F32(v)) => v.iter().next().copied().unwrap_or(0.0),
        _ => 0.0,
    };
    let wide: Vec<u128> = (0..r)
        .map(|i| x.shape()[i] as u128 + pads[i] as u128 + pads[i + r] as u128)
        .collect();
    let shape = ctx.sized_wide("output", &wide)?;
    let mut out = ArrayD::from_elem(IxDyn(&shape), value);
    let mut view = out.view_mut();
    for (i, (&b, &len)) in pads.iter().zip(x.shape()).enumerate() {
        let b = b as usize;
        view.slice_axis_inplace(Axis(i), Slice::from(b..b + len));
    }
    view.assign(x);
    Ok(Value::F32(out))
}
