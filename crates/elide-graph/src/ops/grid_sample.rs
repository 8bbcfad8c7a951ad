//! ONNX GridSample (opset 16: 4-D, bilinear/nearest/bicubic; opset 20+: any spatial rank,
//! linear/nearest/cubic) with zeros/border/reflection padding and align_corners, and
//! AffineGrid (opset 20), the sampling grid of a batch of 2-D or 3-D affine transforms.
//! Both computed in f64 and rounded once to the output type.
use super::operator::Operator;
use super::typed::{input, FLOATS, NUMERIC};
use super::{Ctx, Op};
use crate::onnx::registry::{NodeCtx, Registry};
use crate::{DType, Result, Value};
use std::sync::Arc;

/// Interpolation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Nearest,
    Linear,
    Cubic,
}

/// Out-of-range handling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Padding {
    Zeros,
    Border,
    Reflection,
}

/// The GridSample op's attributes.
#[derive(Clone, Debug)]
pub struct GridSample {
    mode: Mode,
    padding: Padding,
    align_corners: bool,
}

/// Reflects `x` by the borders until it lies in `[lo, hi]`.
fn reflect(x: f64, lo: f64, hi: f64) -> f64 {
    let rng = hi - lo;
    if rng <= 0.0 || !x.is_finite() {
        return lo;
    }
    if x < lo {
        let dx = lo - x;
        let n = (dx / rng).floor();
        let r = dx - n * rng;
        if n % 2.0 == 0.0 {
            lo + r
        } else {
            hi - r
        }
    } else if x > hi {
        let dx = x - hi;
        let n = (dx / rng).floor();
        let r = dx - n * rng;
        if n % 2.0 == 0.0 {
            hi - r
        } else {
            lo + r
        }
    } else {
        x
    }
}

/// Keys' cubic convolution weights (alpha = -0.75) of the taps at -1, 0, 1, 2 for offset `t`.
fn cubic(t: f64) -> [f64; 4] {
    let a = -0.75;
    let w_far = |x: f64| ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a;
    let w_near = |x: f64| ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
    [w_far(t + 1.0), w_near(t), w_near(1.0 - t), w_far(2.0 - t)]
}

impl GridSample {
    /// The tap index `i` of a dim of size `d` after padding (`None`: a zero).
    fn tap(&self, i: i64, d: usize, lo: f64, hi: f64) -> Option<usize> {
        let last = d as i64 - 1;
        let j = match self.padding {
            Padding::Zeros => i,
            Padding::Border => i.clamp(0, last),
            Padding::Reflection => reflect(i as f64, lo, hi) as i64,
        };
        (0..=last).contains(&j).then_some(j as usize)
    }
}

impl Operator for GridSample {
    fn name(&self) -> &'static str {
        "GridSample"
    }

    fn run(&self, inputs: &[Option<&Value>], ctx: Ctx) -> Result<Vec<Value>> {
        let x = input(inputs, 0, &NUMERIC, ctx)?;
        let g = input(inputs, 1, &FLOATS, ctx)?;
        let (xs, gs) = (x.shape(), g.shape());
        let r = xs.len().saturating_sub(2);
        if r == 0 || gs.len() != xs.len() || gs[0] != xs[0] || gs[gs.len() - 1] != r {
            return Err(ctx.err(format!(
                "X {xs:?} and grid {gs:?}: grid must be [N, out..., {r}] for X [N, C, in...]"
            )));
        }
        let (n, c) = (xs[0], xs[1]);
        let dims = &xs[2..];
        let out_sp = &gs[1..gs.len() - 1];
        let mut oshape = vec![n, c];
        oshape.extend_from_slice(out_sp);
        ctx.sized("output", &oshape)?;
        let taps = match self.mode {
            Mode::Nearest => 1,
            Mode::Linear => 2,
            Mode::Cubic => 4,
        };
        ctx.sized("taps", &vec![taps; r])?;
        let xd = x.to_f64_vec();
        let gd = g.to_f64_vec();
        let in_len: usize = dims.iter().product();
        let npts: usize = out_sp.iter().product();
        let bounds: Vec<(f64, f64)> = dims
            .iter()
            .map(|&d| {
                if self.align_corners {
                    (0.0, d as f64 - 1.0)
                } else {
                    (-0.5, d as f64 - 0.5)
                }
            })
            .collect();
        let mut out = vec![0.0; n * c * npts];
        // Per point: for each dim, its taps (index or None) and weights.
        let mut idx: Vec<Vec<(Option<usize>, f64)>> = vec![Vec::new(); r];
        for ni in 0..n {
            for p in 0..npts {
                let gp = &gd[(ni * npts + p) * r..(ni * npts + p + 1) * r];
                for (i, taps_i) in idx.iter_mut().enumerate() {
                    let d = dims[i];
                    let (lo, hi) = bounds[i];
                    let v = gp[r - 1 - i];
                    let mut v = if self.align_corners {
                        (v + 1.0) / 2.0 * (d as f64 - 1.0)
                    } else {
                        ((v + 1.0) * d as f64 - 1.0) / 2.0
                    };
                    if self.mode == Mode::Nearest {
                        v = v.round_ties_even();
                    }
                    if v < lo || v > hi {
                        match self.padding {
                            Padding::Border => v = v.clamp(0.0, (d as f64 - 1.0).max(0.0)),
                            Padding::Reflection => v = reflect(v, lo, hi),
                            Padding::Zeros => {}
                        }
                    }
                    taps_i.clear();
                    if !v.is_finite() {
                        taps_i.push((None, 0.0));
                        continue;
                    }
                    match self.mode {
                        Mode::Nearest => taps_i.push((self.tap(v.trunc() as i64, d, lo, hi), 1.0)),
                        Mode::Linear => {
                            let f = v.floor();
                            let t = v - f;
                            taps_i.push((self.tap(f as i64, d, lo, hi), 1.0 - t));
                            taps_i.push((self.tap(f as i64 + 1, d, lo, hi), t));
                        }
                        Mode::Cubic => {
                            let f = v.floor();
                            for (k, w) in cubic(v - f).into_iter().enumerate() {
                                taps_i.push((self.tap(f as i64 - 1 + k as i64, d, lo, hi), w));
                            }
                        }
                    }
                }
                // Sum over every combination of taps.
                let combos = idx.iter().map(|t| t.len()).product::<usize>();
                for ci in 0..c {
                    let base = (ni * c + ci) * in_len;
                    let mut acc = 0.0;
                    for combo in 0..combos {
                        let (mut rem, mut off, mut w) = (combo, 0usize, 1.0);
                        let mut zero = false;
                        for (i, t) in idx.iter().enumerate().rev() {
                            let (j, wi) = t[rem % t.len()];
                            rem /= t.len();
                            let stride: usize = dims[i + 1..].iter().product();
                            match j {
                                Some(j) => off += j * stride,
                                None => zero = true,
                            }
                            w *= wi;
                        }
                        if !zero {
                            acc += w * xd[base + off];
                        }
                    }
                    out[(ni * c + ci) * npts + p] = acc;
                }
            }
        }
        Ok(vec![Value::from_vec(&oshape, out)?.cast(x.dtype())])
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// The AffineGrid op's attributes.
#[derive(Clone, Debug)]
pub struct AffineGrid {
    align_corners: bool,
}

impl Operator for AffineGrid {
    fn name(&self) -> &'static str {
        "AffineGrid"
    }

    fn run(&self, inputs: &[Option<&Value>], ctx: Ctx) -> Result<Vec<Value>> {
        let theta = input(inputs, 0, &FLOATS, ctx)?;
        let size = input(inputs, 1, &[DType::I64], ctx)?;
        let sz = size.to_i64_vec();
        let sp: Vec<usize> = sz
            .iter()
            .skip(2)
            .map(|&v| usize::try_from(v).map_err(|_| ctx.err(format!("size {sz:?} is negative"))))
            .collect::<Result<_>>()?;
        let r = sp.len();
        let ts = theta.shape();
        if !(r == 2 || r == 3) || sz.len() != r + 2 || ts != [sz[0] as usize, r, r + 1] {
            return Err(ctx.err(format!(
                "theta {ts:?} and size {sz:?}: expected [N, 2, 3] with [N, C, H, W] or [N, 3, 4] with [N, C, D, H, W]"
            )));
        }
        let n = ts[0];
        let mut oshape = vec![n];
        oshape.extend_from_slice(&sp);
        oshape.push(r);
        ctx.sized("output", &oshape)?;
        let coord = |i: usize, d: usize| -> f64 {
            if self.align_corners {
                if d <= 1 {
                    -1.0
                } else {
                    -1.0 + 2.0 * i as f64 / (d - 1) as f64
                }
            } else {
                -1.0 + (2 * i + 1) as f64 / d as f64
            }
        };
        let th = theta.to_f64_vec();
        let npts: usize = sp.iter().product();
        let mut out = Vec::with_capacity(n * npts * r);
        let mut homo = vec![1.0; r + 1];
        for ni in 0..n {
            let t = &th[ni * r * (r + 1)..(ni + 1) * r * (r + 1)];
            for p in 0..npts {
                // homo = [x, y, (z), 1]: the last spatial dim (width) first.
                let mut rem = p;
                for (i, &d) in sp.iter().enumerate().rev() {
                    homo[r - 1 - i] = coord(rem % d, d);
                    rem /= d;
                }
                for k in 0..r {
                    out.push((0..=r).map(|j| t[k * (r + 1) + j] * homo[j]).sum::<f64>());
                }
            }
        }
        Ok(vec![Value::from_vec(&oshape, out)?.cast(theta.dtype())])
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

fn build_grid_sample(n: &NodeCtx) -> Result<Op> {
    let a = n.attrs(&["mode", "padding_mode", "align_corners"])?;
    n.arity((2, 2), (1, 1))?;
    let new = n.opset >= 20;
    let m = a.string("mode", if new { "linear" } else { "bilinear" });
    let mode = match (m.as_str(), new) {
        ("nearest", _) => Mode::Nearest,
        ("linear", true) | ("bilinear", false) => Mode::Linear,
        ("cubic", true) | ("bicubic", false) => Mode::Cubic,
        _ => return Err(a.unsupported(format!("mode = {m} at opset {}", n.opset))),
    };
    let pm = a.string("padding_mode", "zeros");
    let padding = match pm.as_str() {
        "zeros" => Padding::Zeros,
        "border" => Padding::Border,
        "reflection" => Padding::Reflection,
        _ => return Err(a.unsupported(format!("padding_mode = {pm}"))),
    };
    Ok(Op::Dyn(Arc::new(GridSample {
        mode,
        padding,
        align_corners: a.int("align_corners", 0) != 0,
    })))
}

fn build_affine_grid(n: &NodeCtx) -> Result<Op> {
    let a = n.attrs(&["align_corners"])?;
    n.arity((2, 2), (1, 1))?;
    Ok(Op::Dyn(Arc::new(AffineGrid {
        align_corners: a.int("align_corners", 0) != 0,
    })))
}

/// Registers GridSample and AffineGrid.
pub(crate) fn register(r: &mut Registry) {
    r.add("", "GridSample", 16, build_grid_sample);
    r.add("", "AffineGrid", 20, build_affine_grid);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Ctx<'static> {
        Ctx {
            node: "n",
            op: "GridSample",
            arena: None,
        }
    }

    fn gs(mode: Mode, padding: Padding, align_corners: bool) -> GridSample {
        GridSample {
            mode,
            padding,
            align_corners,
        }
    }

    #[test]
    fn identity_grid_reproduces_the_input() {
        // AffineGrid of the identity, then sampling: the input again, for every mode.
        let x = Value::f32(&[1, 2, 2, 3], (0..12).map(|v| v as f32).collect()).unwrap();
        let theta = Value::f32(&[1, 2, 3], vec![1., 0., 0., 0., 1., 0.]).unwrap();
        let size = Value::i64(&[4], vec![1, 2, 2, 3]).unwrap();
        for ac in [false, true] {
            let grid = AffineGrid { align_corners: ac }
                .run(&[Some(&theta), Some(&size)], ctx())
                .unwrap()
                .remove(0);
            assert_eq!(grid.shape(), &[1, 2, 3, 2]);
            for mode in [Mode::Nearest, Mode::Linear, Mode::Cubic] {
                for pad in [Padding::Zeros, Padding::Border, Padding::Reflection] {
                    let y = gs(mode, pad, ac)
                        .run(&[Some(&x), Some(&grid)], ctx())
                        .unwrap();
                    let got = y[0].to_f64_vec();
                    for (a, b) in got.iter().zip(x.to_f64_vec()) {
                        assert!((a - b).abs() < 1e-5, "{mode:?} {pad:?} {ac}: {got:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn padding_modes_outside_and_errors() {
        let x = Value::f32(&[1, 1, 1, 2], vec![1., 3.]).unwrap();
        // x = 3.0 in normalized coords: one width past the right edge.
        let g = Value::f32(&[1, 1, 1, 2], vec![3.0, 0.0]).unwrap();
        let run = |p| {
            gs(Mode::Linear, p, true)
                .run(&[Some(&x), Some(&g)], ctx())
                .unwrap()[0]
                .to_f64_vec()
        };
        assert_eq!(run(Padding::Zeros), vec![0.0]);
        assert_eq!(run(Padding::Border), vec![3.0]);
        // Pixel 2.0, reflected about the right edge (pixel 1) back to pixel 0.
        assert_eq!(run(Padding::Reflection), vec![1.0]);
        let bad = Value::f32(&[1, 1, 1, 3], vec![0.; 3]).unwrap();
        assert!(gs(Mode::Linear, Padding::Zeros, false)
            .run(&[Some(&x), Some(&bad)], ctx())
            .is_err());
        let empty = Value::f32(&[1, 0, 1, 2], vec![]).unwrap();
        assert_eq!(
            gs(Mode::Cubic, Padding::Zeros, false)
                .run(&[Some(&x), Some(&empty)], ctx())
                .unwrap()[0]
                .shape(),
            &[1, 1, 0, 1]
        );
        let size = Value::i64(&[4], vec![1, 1, -2, 3]).unwrap();
        let theta = Value::f32(&[1, 2, 3], vec![0.; 6]).unwrap();
        assert!(AffineGrid {
            align_corners: false
        }
        .run(&[Some(&theta), Some(&size)], ctx())
        .is_err());
    }
}
