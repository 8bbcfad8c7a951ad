//! Ops computed only on the pixels a masked run needs ([`Runs`] of their 4-D output), zeros
//! elsewhere: element-wise functions, broadcasting arithmetic, channel concatenation,
//! batch-norm, pooling, resizing and transposed convolution. Each computes, on the marked
//! pixels, what its dense version computes there, up to rounding (ConvTranspose adds its bias
//! after the taps, the dense path before); tested against it.
use super::runs::{fill_row, Runs};
use super::{Binary, ConvTranspose, Ctx, Op, Pool, Resize, ResizeMode, Unary};
use crate::{Result, Value};
use ndarray::{ArrayD, IxDyn};
use rayon::prelude::*;

/// Evaluates `op` on the pixels `runs` marks of its (4-D) output; `None` when the op or these
/// inputs have no masked form (the caller runs it densely).
pub fn eval_runs(
    op: &Op,
    inputs: &[Option<&Value>],
    runs: &Runs,
    ctx: Ctx,
) -> Result<Option<Vec<Value>>> {
    let out = match op {
        Op::Unary(u) => unary(*u, ctx.f32(inputs, 0)?, runs, ctx)?,
        Op::BatchNorm { eps } => batch_norm(inputs, *eps, runs, ctx)?,
        Op::Binary(b) => match (ctx.input(inputs, 0)?, ctx.input(inputs, 1)?) {
            (Value::F32(x), Value::F32(y)) => binary(*b, x, y, runs, ctx)?,
            _ => None,
        },
        Op::Concat { axis } if *axis == 1 || *axis == -3 => concat_channels(inputs, runs, ctx)?,
        Op::Pool(p) => pool(p, ctx.f32(inputs, 0)?, runs, ctx)?,
        Op::Resize(r) => resize(r, inputs, runs, ctx)?,
        Op::ConvTranspose(t) => conv_transpose(t, ctx.f32(inputs, 0)?, runs, ctx)?,
        _ => None,
    };
    Ok(out.map(|a| vec![Value::F32(a)]))
}

/// Largest fraction of the output's pixels for which an op that writes a new buffer is run on
/// its runs rather than densely: below it, skipping the work outweighs the zeros written
/// between the runs. Measured on one core with blocky random masks (example `masked_ops`):
/// a same-shape Add on `[1, 32, 480, 480]` wins below ~5% of the pixels (writing the zeros
/// costs about what the op does), a nearest 2x Resize below ~20%, a stride-1 max pool (whose
/// dense path is separable, the masked one window by window) below ~3%; other pools run window
/// by window both ways. ConvTranspose decides by the input rows it can skip (see
/// `conv_transpose`).
pub fn worth_masking(op: &Op, fraction: f64) -> bool {
    let limit = match op {
        Op::ConvTranspose(_) => 1.0,
        Op::Resize(_) => 0.2,
        Op::Pool(p) if p.separable() => 0.03,
        Op::Pool(_) => 1.0,
        _ => 0.05,
    };
    fraction <= limit
}

/// Evaluates a Unary or Binary node in place on `x`, its dying input (of the output's
/// shape), on the runs only; the pixels between them keep `x`'s values. `other` is a
/// Binary's other operand, `x_left` whether `x` is its left one. False when the node or the
/// shapes do not allow it (nothing is changed).
pub fn eval_runs_in_place(
    op: &Op,
    x: &mut ArrayD<f32>,
    other: Option<&ArrayD<f32>>,
    x_left: bool,
    runs: &Runs,
) -> bool {
    let Some(s @ [_, c, h, w]) = nchw(x, runs) else {
        return false;
    };
    let xs = x.as_slice_mut().expect("standard layout");
    match (op, other) {
        (Op::Unary(u), None) => {
            let act = u.as_activation();
            xs.par_chunks_mut((h * w).max(1))
                .enumerate()
                .for_each(|(p, plane)| {
                    for y in 0..h {
                        for span in runs.row(p / c, y) {
                            let v = &mut plane[y * w + span.start..y * w + span.end];
                            match act {
                                Some(a) => a.bias_apply(v, 0.0),
                                None => v.iter_mut().for_each(|e| *e = u.eval(*e)),
                            }
                        }
                    }
                });
            true
        }
        (Op::Binary(b), Some(o)) => {
            let Some(so) = broadcast_strides(o, s) else {
                return false;
            };
            let os = o.as_slice().expect("standard layout");
            match (b, x_left) {
                (Binary::Add, _) => in_place(xs, os, so, s, runs, |x, y| x + y),
                (Binary::Mul, _) => in_place(xs, os, so, s, runs, |x, y| x * y),
                (Binary::Sub, true) => in_place(xs, os, so, s, runs, |x, y| x - y),
                (Binary::Sub, false) => in_place(xs, os, so, s, runs, |x, y| y - x),
                (Binary::Div, true) => in_place(xs, os, so, s, runs, |x, y| x / y),
                (Binary::Div, false) => in_place(xs, os, so, s, runs, |x, y| y / x),
            }
            true
        }
        _ => false,
    }
}

/// `x = f(x, o)` on the runs, `o` read through broadcast strides `so`.
fn in_place(
    xs: &mut [f32],
    os: &[f32],
    so: [usize; 4],
    [_, c, h, w]: [usize; 4],
    runs: &Runs,
    f: impl Fn(f32, f32) -> f32 + Sync + Send,
) {
    xs.par_chunks_mut((h * w).max(1))
        .enumerate()
        .for_each(|(p, plane)| {
            let (img, ch) = (p / c, p % c);
            for y in 0..h {
                let base = img * so[0] + ch * so[1] + y * so[2];
                for span in runs.row(img, y) {
                    let v = &mut plane[y * w + span.start..y * w + span.end];
                    if so[3] == 1 {
                        let o = &os[base + span.start..base + span.end];
                        v.iter_mut().zip(o).for_each(|(x, &y)| *x = f(*x, y));
                    } else {
                        let y = os[base];
                        v.iter_mut().for_each(|x| *x = f(*x, y));
                    }
                }
            }
        });
}

/// `[n, c, h, w]` of a 4-D standard-layout array whose `[n, h, w]` is the runs' shape.
fn nchw(x: &ArrayD<f32>, runs: &Runs) -> Option<[usize; 4]> {
    match *x.shape() {
        [n, c, h, w] if [n, h, w] == runs.shape() && x.is_standard_layout() => Some([n, c, h, w]),
        _ => None,
    }
}

/// An output of `[n, c, h, w]` from the arena, each `h x w` plane (image `p / c`, channel
/// `p % c`) filled in parallel by `plane(p, plane_buffer)`.
fn per_plane(
    [n, c, h, w]: [usize; 4],
    ctx: Ctx,
    plane: impl Fn(usize, &mut [f32]) + Sync + Send,
) -> Result<ArrayD<f32>> {
    let len = ctx.sized("output", &[n, c, h, w])?;
    let mut out = ctx.alloc(len);
    out.par_chunks_mut((h * w).max(1))
        .enumerate()
        .for_each(|(p, o)| plane(p, o));
    Ok(ArrayD::from_shape_vec(IxDyn(&[n, c, h, w]), out)?)
}

/// Rows of one plane of image `img`: zeros outside the runs, `f(y, span, out)` on them.
fn plane_rows(
    o: &mut [f32],
    w: usize,
    img: usize,
    runs: &Runs,
    mut f: impl FnMut(usize, std::ops::Range<usize>, &mut [f32]),
) {
    for (y, row) in o.chunks_exact_mut(w.max(1)).enumerate() {
        fill_row(row, runs.row(img, y), |s, out| f(y, s, out));
    }
}

fn unary(u: Unary, x: &ArrayD<f32>, runs: &Runs, ctx: Ctx) -> Result<Option<ArrayD<f32>>> {
    let Some(s @ [_, c, h, w]) = nchw(x, runs) else {
        return Ok(None);
    };
    let src = x.as_slice().expect("standard layout");
    let act = u.as_activation();
    Ok(Some(per_plane(s, ctx, |p, o| {
        let xin = &src[p * h * w..(p + 1) * h * w];
        plane_rows(o, w, p / c, runs, |y, span, out| {
            out.copy_from_slice(&xin[y * w + span.start..y * w + span.end]);
            match act {
                Some(a) => a.bias_apply(out, 0.0),
                None => out.iter_mut().for_each(|v| *v = u.eval(*v)),
            }
        });
    })?))
}

fn batch_norm(
    inputs: &[Option<&Value>],
    eps: f32,
    runs: &Runs,
    ctx: Ctx,
) -> Result<Option<ArrayD<f32>>> {
    let x = ctx.f32(inputs, 0)?;
    let Some(s @ [_, c, h, w]) = nchw(x, runs) else {
        return Ok(None);
    };
    let (scale, shift) = super::elementwise::batch_norm_inputs(inputs, c, eps, ctx)?;
    let src = x.as_slice().expect("standard layout");
    Ok(Some(per_plane(s, ctx, |p, o| {
        let xin = &src[p * h * w..(p + 1) * h * w];
        let (sc, sh) = (scale[p % c], shift[p % c]);
        plane_rows(o, w, p / c, runs, |y, span, out| {
            let xs = &xin[y * w + span.start..y * w + span.end];
            out.iter_mut().zip(xs).for_each(|(o, &v)| *o = v * sc + sh);
        });
    })?))
}

/// Element strides of an operand broadcast to a 4-D output (0 along broadcast axes); `None`
/// when it does not broadcast to `out` or is not in standard layout.
fn broadcast_strides(x: &ArrayD<f32>, out: [usize; 4]) -> Option<[usize; 4]> {
    if x.ndim() > 4 || !x.is_standard_layout() {
        return None;
    }
    let mut dims = [1usize; 4];
    dims[4 - x.ndim()..].copy_from_slice(x.shape());
    let mut strides = [0usize; 4];
    let mut acc = 1;
    for a in (0..4).rev() {
        if dims[a] == out[a] && dims[a] != 1 {
            strides[a] = acc;
        } else if dims[a] != 1 {
            return None;
        }
        acc *= dims[a];
    }
    Some(strides)
}

fn binary(
    op: Binary,
    a: &ArrayD<f32>,
    b: &ArrayD<f32>,
    runs: &Runs,
    ctx: Ctx,
) -> Result<Option<ArrayD<f32>>> {
    // One loop per operator, so each compiles to a vectorised loop.
    match op {
        Binary::Add => binary_with(|x, y| x + y, a, b, runs, ctx),
        Binary::Sub => binary_with(|x, y| x - y, a, b, runs, ctx),
        Binary::Mul => binary_with(|x, y| x * y, a, b, runs, ctx),
        Binary::Div => binary_with(|x, y| x / y, a, b, runs, ctx),
    }
}

fn binary_with(
    op: impl Fn(f32, f32) -> f32 + Copy + Sync + Send,
    a: &ArrayD<f32>,
    b: &ArrayD<f32>,
    runs: &Runs,
    ctx: Ctx,
) -> Result<Option<ArrayD<f32>>> {
    // The output is the operands' broadcast shape; it must be 4-D over the runs' pixels.
    let rank = a.ndim().max(b.ndim());
    if rank != 4 {
        return Ok(None);
    }
    let dim = |x: &ArrayD<f32>, i: usize| {
        let off = 4 - x.ndim();
        if i < off {
            1
        } else {
            x.shape()[i - off]
        }
    };
    let shape: [usize; 4] = std::array::from_fn(|i| dim(a, i).max(dim(b, i)));
    let [n, c, h, w] = shape;
    if [n, h, w] != runs.shape() {
        return Ok(None);
    }
    let (Some(sa), Some(sb)) = (broadcast_strides(a, shape), broadcast_strides(b, shape)) else {
        return Ok(None);
    };
    let (pa, pb) = (
        a.as_slice().expect("standard layout"),
        b.as_slice().expect("standard layout"),
    );
    Ok(Some(per_plane(shape, ctx, |p, o| {
        let (img, ch) = (p / c, p % c);
        let (oa, ob) = (img * sa[0] + ch * sa[1], img * sb[0] + ch * sb[1]);
        plane_rows(o, w, img, runs, |y, span, out| {
            let (ra, rb) = (oa + y * sa[2], ob + y * sb[2]);
            let xs = |base: usize, s: usize| (base + span.start * s, s);
            let ((a0, da), (b0, db)) = (xs(ra, sa[3]), xs(rb, sb[3]));
            let len = out.len();
            match (da, db) {
                (1, 1) => {
                    let (xa, xb) = (&pa[a0..a0 + len], &pb[b0..b0 + len]);
                    for ((o, &x), &y) in out.iter_mut().zip(xa).zip(xb) {
                        *o = op(x, y);
                    }
                }
                (1, _) => {
                    let y = pb[b0];
                    for (o, &x) in out.iter_mut().zip(&pa[a0..a0 + len]) {
                        *o = op(x, y);
                    }
                }
                (_, 1) => {
                    let x = pa[a0];
                    for (o, &y) in out.iter_mut().zip(&pb[b0..b0 + len]) {
                        *o = op(x, y);
                    }
                }
                _ => out.fill(op(pa[a0], pb[b0])),
            }
        });
    })?))
}

fn concat_channels(
    inputs: &[Option<&Value>],
    runs: &Runs,
    ctx: Ctx,
) -> Result<Option<ArrayD<f32>>> {
    let mut parts = Vec::new();
    for v in inputs.iter().flatten() {
        let Some(x) = v.as_f32() else {
            return Ok(None);
        };
        let Some([_, c, _, _]) = nchw(x, runs) else {
            return Ok(None);
        };
        parts.push((x.as_slice().expect("standard layout"), c));
    }
    let [n, h, w] = runs.shape();
    let c: usize = parts.iter().map(|p| p.1).sum();
    // Output channel -> (part, its channel).
    let owner: Vec<(usize, usize)> = parts
        .iter()
        .enumerate()
        .flat_map(|(k, &(_, ck))| (0..ck).map(move |ch| (k, ch)))
        .collect();
    Ok(Some(per_plane([n, c, h, w], ctx, |p, o| {
        let (img, (k, ch)) = (p / c, owner[p % c]);
        let (src, ck) = parts[k];
        let xin = &src[(img * ck + ch) * h * w..][..h * w];
        plane_rows(o, w, img, runs, |y, span, out| {
            out.copy_from_slice(&xin[y * w + span.start..y * w + span.end]);
        });
    })?))
}

fn pool(p: &Pool, x: &ArrayD<f32>, runs: &Runs, ctx: Ctx) -> Result<Option<ArrayD<f32>>> {
    let &[n, c, h, w] = x.shape() else {
        return Ok(None);
    };
    let (Some(ho), Some(wo)) = (p.out_len(h, 0), p.out_len(w, 1)) else {
        return Ok(None);
    };
    if [n, ho as usize, wo as usize] != runs.shape() || h == 0 || w == 0 {
        return Ok(None);
    }
    let (ho, wo) = (ho as usize, wo as usize);
    let x = x.as_standard_layout();
    let src = x.as_slice().expect("standard layout");
    let ty: Vec<_> = (0..ho).map(|o| p.taps(o, h, 0)).collect();
    let tx: Vec<_> = (0..wo).map(|o| p.taps(o, w, 1)).collect();
    Ok(Some(per_plane([n, c, ho, wo], ctx, |pl, o| {
        let xin = &src[pl * h * w..(pl + 1) * h * w];
        plane_rows(o, wo, pl / c, runs, |oy, span, out| {
            for (v, ox) in out.iter_mut().zip(span) {
                *v = p.window(xin, w, [oy, ox], &ty[oy], &tx[ox]);
            }
        });
    })?))
}

fn resize(
    r: &Resize,
    inputs: &[Option<&Value>],
    runs: &Runs,
    ctx: Ctx,
) -> Result<Option<ArrayD<f32>>> {
    let x = ctx.f32(inputs, 0)?;
    let &[n, c, h, w] = x.shape() else {
        return Ok(None);
    };
    let ([ho, wo], scales) = super::resize_target(inputs, ctx)?;
    if [n, ho, wo] != runs.shape() || h == 0 || w == 0 {
        return Ok(None);
    }
    let ty = r.taps(ho, h, scales[0]);
    let tx = r.taps(wo, w, scales[1]);
    let nearest = matches!(r.mode, ResizeMode::Nearest(_));
    let x = x.as_standard_layout();
    let src = x.as_slice().expect("standard layout");
    Ok(Some(per_plane([n, c, ho, wo], ctx, |p, o| {
        let plane = &src[p * h * w..(p + 1) * h * w];
        plane_rows(o, wo, p / c, runs, |oy, span, out| {
            let (y0, y1, fy) = ty[oy];
            let (r0, r1) = (&plane[y0 * w..(y0 + 1) * w], &plane[y1 * w..(y1 + 1) * w]);
            for (v, &(x0, x1, fx)) in out.iter_mut().zip(&tx[span]) {
                *v = if nearest {
                    r0[x0]
                } else {
                    let top = r0[x0] + (r0[x1] - r0[x0]) * fx;
                    let bot = r1[x0] + (r1[x1] - r1[x0]) * fx;
                    top + (bot - top) * fy
                };
            }
        });
    })?))
}

/// The input rows whose windows reach a marked output row, in bands of consecutive rows:
/// each band one product and one col2im pass (the dense path's, on fewer rows); bias and
/// activation then run on the marked pixels only.
fn conv_transpose(
    t: &ConvTranspose,
    x: &ArrayD<f32>,
    runs: &Runs,
    ctx: Ctx,
) -> Result<Option<ArrayD<f32>>> {
    let ([n, h, _], [ho, wo]) = t.geometry(x, ctx)?;
    if [n, ho, wo] != runs.shape() {
        return Ok(None);
    }
    let [_, cout, kh, _] = t.shape;
    // Input rows (per image) whose windows reach a marked output row.
    let needed: Vec<bool> = (0..n * h)
        .map(|r| {
            let (b, iy) = (r / h, r % h);
            (0..kh).any(|ky| {
                let oy = (iy * t.stride[0] + ky * t.dilation[0]) as isize - t.pads[0] as isize;
                (0..ho as isize).contains(&oy) && runs.row_marked(b, oy as usize)
            })
        })
        .collect();
    // The zeros and the separate bias pass cost ~20% of the dense op (example `masked_ops`):
    // worth it only when at least half the rows drop out.
    if 2 * needed.iter().filter(|&&r| r).count() > n * h {
        return Ok(None);
    }
    let mut out = ctx.alloc(n * cout * ho * wo);
    out.fill(0.0);
    for (b, planes) in out.chunks_exact_mut(cout * ho * wo).enumerate() {
        let needed = &needed[b * h..(b + 1) * h];
        let mut iy = 0;
        while iy < h {
            if !needed[iy] {
                iy += 1;
                continue;
            }
            let y0 = iy;
            while iy < h && needed[iy] {
                iy += 1;
            }
            t.add_rows(x, b, y0..iy, planes, false, ctx);
        }
        planes
            .par_chunks_mut(ho * wo)
            .enumerate()
            .for_each(|(co, o)| {
                plane_rows(o, wo, b, runs, |_, _, v| t.act.bias_apply(v, t.bias[co]));
            });
    }
    Ok(Some(ArrayD::from_shape_vec(
        IxDyn(&[n, cout, ho, wo]),
        out,
    )?))
}
