//! Shape manipulation: the ops exporters emit around reshapes and shape arithmetic.
use super::Ctx;
use crate::{map_array, Result, Value};
use ndarray::{ArrayD, Axis, IxDyn, Slice};

/// `v` reshaped to `shape` (any element type).
fn reshape_value(v: &Value, shape: &[usize]) -> Result<Value> {
    Ok(map_array!(v, a => reshaped(a, shape)?))
}

fn reshaped<T: Clone>(a: &ArrayD<T>, shape: &[usize]) -> Result<ArrayD<T>> {
    Ok(a.as_standard_layout()
        .into_owned()
        .into_shape_with_order(IxDyn(shape))?)
}

/// To 2-D: dims before `axis` multiply into the rows.
pub fn flatten(v: &Value, axis: i64, ctx: Ctx) -> Result<Value> {
    let s = v.shape();
    let ax = if axis == s.len() as i64 {
        s.len()
    } else {
        ctx.axis(axis, s.len().max(1))?
    };
    let rows: usize = s[..ax].iter().product();
    let cols: usize = s[ax..].iter().product();
    reshape_value(v, &[rows, cols])
}

/// Reshape to input 1's shape (0 copies, -1 infers).
pub fn reshape(inputs: &[Option<&Value>], allowzero: bool, ctx: Ctx) -> Result<Value> {
    let v = ctx.input(inputs, 0)?;
    let shape = reshape_target(inputs, allowzero, ctx)?;
    reshape_value(v, &shape)
}

/// The shape Reshape produces (the executor reshapes a dying input without copying).
pub fn reshape_target(inputs: &[Option<&Value>], allowzero: bool, ctx: Ctx) -> Result<Vec<usize>> {
    let s = ctx.input(inputs, 0)?.shape();
    let want = ctx.input(inputs, 1)?.to_i64_vec();
    let total: usize = s.iter().product();
    let mut shape = Vec::with_capacity(want.len());
    let mut infer = None;
    for (i, &d) in want.iter().enumerate() {
        match d {
            -1 if infer.is_none() => {
                infer = Some(i);
                shape.push(1);
            }
            0 if !allowzero => shape.push(
                *s.get(i)
                    .ok_or_else(|| ctx.err(format!("shape {want:?}: no input dim {i} to copy")))?,
            ),
            d if d >= 0 => shape.push(d as usize),
            _ => return Err(ctx.err(format!("invalid target shape {want:?}"))),
        }
    }
    // Checked: dims from the model could wrap to the input's size.
    let product = |s: &[usize]| s.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
    if let Some(i) = infer {
        match product(&shape) {
            Some(known) if known != 0 && total.is_multiple_of(known) => shape[i] = total / known,
            _ => return Err(ctx.err(format!("cannot reshape {s:?} to {want:?}"))),
        }
    }
    if product(&shape) != Some(total) {
        return Err(ctx.err(format!(
            "cannot reshape {s:?} ({total} values) to {shape:?}"
        )));
    }
    Ok(shape)
}

/// Permutes axes (empty `perm` reverses them).
pub fn transpose(v: &Value, perm: &[usize], ctx: Ctx) -> Result<Value> {
    let rank = v.shape().len();
    let perm: Vec<usize> = if perm.is_empty() {
        (0..rank).rev().collect()
    } else {
        perm.to_vec()
    };
    let mut seen = perm.clone();
    seen.sort_unstable();
    if seen != (0..rank).collect::<Vec<_>>() {
        return Err(ctx.err(format!("perm {perm:?} is not a permutation of {rank} axes")));
    }
    if let Some(src) = v.as_f32().and_then(|a| a.as_slice()) {
        return Ok(Value::F32(transpose_f32(src, v.shape(), &perm, ctx)?));
    }
    Ok(map_array!(v, a => a
        .view()
        .permuted_axes(IxDyn(&perm))
        .as_standard_layout()
        .into_owned()))
}

/// A contiguous f32 array permuted into a buffer from the arena: output rows in order, each a
/// strided gather along the input axis that becomes the last (ndarray's dynamic-rank element
/// iterator ran ~7x slower).
fn transpose_f32(src: &[f32], shape: &[usize], perm: &[usize], ctx: Ctx) -> Result<ArrayD<f32>> {
    let rank = shape.len();
    let out_shape: Vec<usize> = perm.iter().map(|&p| shape[p]).collect();
    let mut in_strides = vec![1usize; rank];
    for i in (0..rank.saturating_sub(1)).rev() {
        in_strides[i] = in_strides[i + 1] * shape[i + 1];
    }
    // Input stride of each output axis.
    let st: Vec<usize> = perm.iter().map(|&p| in_strides[p]).collect();
    let mut out = ctx.alloc(src.len());
    if rank == 0 || src.is_empty() {
        out.copy_from_slice(src);
        return Ok(ArrayD::from_shape_vec(IxDyn(&out_shape), out)?);
    }
    let (last, last_stride) = (out_shape[rank - 1], st[rank - 1]);
    let mut idx = vec![0usize; rank - 1];
    for row in out.chunks_exact_mut(last) {
        let base: usize = idx.iter().zip(&st).map(|(i, s)| i * s).sum();
        for (j, o) in row.iter_mut().enumerate() {
            *o = src[base + j * last_stride];
        }
        // Odometer over the leading output axes.
        for a in (0..rank - 1).rev() {
            idx[a] += 1;
            if idx[a] < out_shape[a] {
                break;
            }
            idx[a] = 0;
        }
    }
    Ok(ArrayD::from_shape_vec(IxDyn(&out_shape), out)?)
}

/// f32 concatenation into a buffer from the arena: per index of the axes before `ax`, each
/// input's contiguous block in turn.
fn concat_f32(
    views: &[ndarray::ArrayViewD<f32>],
    ax: usize,
    ctx: Ctx,
) -> std::result::Result<ArrayD<f32>, ndarray::ShapeError> {
    let incompatible = || ndarray::ShapeError::from_kind(ndarray::ErrorKind::IncompatibleShape);
    let first = views[0].shape();
    let mut shape = first.to_vec();
    shape[ax] = 0;
    for v in views {
        let s = v.shape();
        let fits = s.len() == first.len()
            && s.iter()
                .zip(first)
                .enumerate()
                .all(|(i, (a, b))| i == ax || a == b);
        if !fits {
            return Err(incompatible());
        }
        shape[ax] += s[ax];
    }
    let outer: usize = first[..ax].iter().product();
    let total: usize = shape.iter().product();
    let mut out = ctx.alloc(total);
    let blocks: Vec<_> = views.iter().map(|v| v.as_standard_layout()).collect();
    let mut at = 0;
    for o in 0..outer {
        for b in &blocks {
            let s = b.as_slice().expect("standard layout");
            let len = s.len() / outer.max(1);
            out[at..at + len].copy_from_slice(&s[o * len..(o + 1) * len]);
            at += len;
        }
    }
    ArrayD::from_shape_vec(IxDyn(&shape), out)
}

/// Joins the present inputs along `axis` (all of one element type).
pub fn concat(inputs: &[Option<&Value>], axis: i64, ctx: Ctx) -> Result<Value> {
    let vals: Vec<&Value> = inputs.iter().flatten().copied().collect();
    let first = vals.first().ok_or_else(|| ctx.err("no inputs"))?;
    let ax = ctx.axis(axis, first.shape().len())?;
    // Many inputs may together pass the cap (ranks that differ fail below).
    let mut dims: Vec<u128> = first.shape().iter().map(|&d| d as u128).collect();
    dims[ax] = vals
        .iter()
        .map(|v| v.shape().get(ax).map_or(0, |&d| d as u128))
        .sum();
    ctx.sized_wide("output", &dims)?;
    let err = |e: ndarray::ShapeError| {
        let shapes: Vec<_> = vals.iter().map(|v| v.shape().to_vec()).collect();
        ctx.err(format!("cannot concatenate {shapes:?} on axis {ax}: {e}"))
    };
    if let Some(d) = vals.iter().find(|v| v.dtype() != first.dtype()) {
        return Err(ctx.err(format!(
            "mixed element types: {} and {}",
            first.dtype(),
            d.dtype()
        )));
    }
    if let Value::F32(_) = first {
        let views: Vec<_> = vals
            .iter()
            .filter_map(|v| v.as_f32())
            .map(|a| a.view())
            .collect();
        return Ok(Value::F32(concat_f32(&views, ax, ctx).map_err(err)?));
    }
    fn join<T: crate::Elem>(
        vals: &[&Value],
        ax: usize,
    ) -> std::result::Result<ArrayD<T>, ndarray::ShapeError> {
        let views: Vec<_> = vals
            .iter()
            .filter_map(|v| T::view(v))
            .map(|a| a.view())
            .collect();
        ndarray::concatenate(Axis(ax), &views)
    }
    Ok(map_array!(first, _a => join(&vals, ax).map_err(err)?))
}

/// ONNX Slice (opset 10+): starts, ends, optional axes and steps as inputs.
pub fn slice(inputs: &[Option<&Value>], ctx: Ctx) -> Result<Value> {
    let v = ctx.input(inputs, 0)?;
    let starts = ctx.input(inputs, 1)?.to_i64_vec();
    let ends = ctx.input(inputs, 2)?.to_i64_vec();
    let rank = v.shape().len();
    let axes = match inputs.get(3).copied().flatten() {
        Some(a) => a.to_i64_vec(),
        None => (0..starts.len() as i64).collect(),
    };
    let steps = match inputs.get(4).copied().flatten() {
        Some(s) => s.to_i64_vec(),
        None => vec![1; starts.len()],
    };
    if [ends.len(), axes.len(), steps.len()] != [starts.len(); 3] {
        return Err(ctx.err("starts, ends, axes and steps differ in length"));
    }
    let mut slices = Vec::with_capacity(starts.len());
    for i in 0..starts.len() {
        let ax = ctx.axis(axes[i], rank)?;
        let dim = v.shape()[ax] as i64;
        let step = steps[i];
        if step == 0 {
            return Err(ctx.err("slice step 0"));
        }
        let clamp = |x: i64, lo: i64, hi: i64| {
            let x = if x < 0 { x + dim } else { x };
            x.clamp(lo, hi)
        };
        let (s, e) = if step > 0 {
            (clamp(starts[i], 0, dim), clamp(ends[i], 0, dim))
        } else {
            (clamp(starts[i], -1, dim - 1), clamp(ends[i], -1, dim - 1))
        };
        let sl = if step > 0 {
            Slice::new(s as isize, Some(e.max(s) as isize), step as isize)
        } else {
            // ndarray slices run start..end then step backwards from the end.
            let lo = e + 1;
            let hi = s + 1;
            if hi <= lo {
                Slice::new(0, Some(0), 1)
            } else {
                let n = (hi - lo + (-step) - 1) / (-step);
                let first = s - (n - 1) * (-step);
                Slice::new(first as isize, Some(hi as isize), step as isize)
            }
        };
        slices.push((ax, sl));
    }
    Ok(map_array!(v, a => {
        let mut view = a.view();
        for &(ax, sl) in &slices {
            view.slice_axis_inplace(Axis(ax), sl);
        }
        view.as_standard_layout().into_owned()
    }))
}

/// The shape as a 1-D i64 tensor, dims `start..end`.
pub fn shape_of(v: &Value, start: i64, end: Option<i64>) -> Result<Value> {
    let s: Vec<i64> = v.shape().iter().map(|&d| d as i64).collect();
    let r = s.len() as i64;
    let norm = |x: i64| (if x < 0 { x + r } else { x }).clamp(0, r) as usize;
    let (a, b) = (norm(start), norm(end.unwrap_or(r)));
    let part = s[a..b.max(a)].to_vec();
    Value::i64(&[part.len()], part)
}

/// Gather along `axis` with indices from input 1 (negative indices count from the end).
pub fn gather(inputs: &[Option<&Value>], axis: i64, ctx: Ctx) -> Result<Value> {
    let v = ctx.input(inputs, 0)?;
    let idx_v = ctx.input(inputs, 1)?;
    let idx = idx_v.to_i64_vec();
    let ax = ctx.axis(axis, v.shape().len())?;
    let dim = v.shape()[ax] as i64;
    let idx: Vec<usize> = idx
        .iter()
        .map(|&i| {
            let j = if i < 0 { i + dim } else { i };
            if j < 0 || j >= dim {
                Err(ctx.err(format!("index {i} out of range for a dimension of {dim}")))
            } else {
                Ok(j as usize)
            }
        })
        .collect::<Result<_>>()?;
    let mut out_shape = v.shape()[..ax].to_vec();
    out_shape.extend_from_slice(idx_v.shape());
    out_shape.extend_from_slice(&v.shape()[ax + 1..]);
    // Many indices into a large axis multiply the data.
    ctx.sized("output", &out_shape)?;
    Ok(map_array!(v, a => reshaped(&a.select(Axis(ax), &idx), &out_shape)?))
}

fn axes_from(inputs: &[Option<&Value>], attr: Option<&[i64]>) -> Option<Vec<i64>> {
    attr.map(<[i64]>::to_vec)
        .or_else(|| inputs.get(1).copied().flatten().map(Value::to_i64_vec))
}

/// Inserts size-1 axes.
pub fn unsqueeze(inputs: &[Option<&Value>], attr: Option<&[i64]>, ctx: Ctx) -> Result<Value> {
    let v = ctx.input(inputs, 0)?;
    let axes = axes_from(inputs, attr).ok_or_else(|| ctx.err("no axes"))?;
    let rank = v.shape().len() + axes.len();
    let mut axes: Vec<usize> = axes
        .iter()
        .map(|&a| ctx.axis(a, rank))
        .collect::<Result<_>>()?;
    axes.sort_unstable();
    let mut shape = v.shape().to_vec();
    for a in axes {
        shape.insert(a, 1);
    }
    reshape_value(v, &shape)
}

/// Removes size-1 axes (the given ones, or all).
pub fn squeeze(inputs: &[Option<&Value>], attr: Option<&[i64]>, ctx: Ctx) -> Result<Value> {
    let v = ctx.input(inputs, 0)?;
    let s = v.shape();
    let drop: Vec<usize> = match axes_from(inputs, attr) {
        Some(axes) => axes
            .iter()
            .map(|&a| ctx.axis(a, s.len()))
            .collect::<Result<_>>()?,
        None => (0..s.len()).filter(|&i| s[i] == 1).collect(),
    };
    if let Some(&a) = drop.iter().find(|&&a| s[a] != 1) {
        return Err(ctx.err(format!("axis {a} of {s:?} is not 1")));
    }
    let shape: Vec<usize> = (0..s.len())
        .filter(|i| !drop.contains(i))
        .map(|i| s[i])
        .collect();
    reshape_value(v, &shape)
}
