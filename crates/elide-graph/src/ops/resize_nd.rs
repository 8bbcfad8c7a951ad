//! General N-d Resize (opsets 10 and 11+): separable per-axis interpolation over any axes
//! (`axes` attribute), every mode (nearest with its four roundings, linear, cubic with
//! `cubic_coeff_a` and `exclude_outside`), antialiased linear and cubic downsampling, every
//! coordinate transformation (tf_crop_and_resize with its roi input and extrapolation value,
//! half_pixel_symmetric included) and `keep_aspect_ratio_policy`, on every numeric type
//! (computed in f64, integers rounded and saturated back). The 4-D f32 H/W fast path stays
//! [`super::Resize`]: the builder picks it when it applies.
use super::operator::Operator;
use super::resize::{CoordMode, NearestMode, Resize, ResizeMode};
use super::typed::{input, NUMERIC};
use super::{Ctx, Op};
use crate::onnx::registry::{NodeCtx, Registry};
use crate::{DType, Result, Value};
use std::sync::Arc;

/// Interpolation kind.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Interp {
    /// Nearest neighbour with its rounding.
    Nearest(NearestMode),
    /// Linear.
    Linear,
    /// Cubic with coefficient `a`.
    Cubic(f64),
}

/// Coordinate transformation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Coord {
    /// `(x + 0.5) / scale - 0.5`.
    HalfPixel,
    /// Half-pixel centred on the input's centre.
    HalfPixelSymmetric,
    /// Half-pixel, `-0.5` for a length-1 output.
    PytorchHalfPixel,
    /// Corners aligned.
    AlignCorners,
    /// `x / scale`.
    Asymmetric,
    /// Crop to roi then resize; outside the input gives the extrapolation value.
    TfCropAndResize,
}

/// A general Resize node.
#[derive(Clone, Debug)]
pub struct ResizeNd {
    interp: Interp,
    coord: Coord,
    exclude_outside: bool,
    antialias: bool,
    extrapolation: f64,
    axes: Option<Vec<i64>>,
    /// 0 stretch, 1 not_larger, 2 not_smaller.
    policy: u8,
    /// Opset-10 form: inputs (X, scales).
    v10: bool,
}

/// One output position along an axis: the extrapolation value, or weighted input taps.
enum Tap {
    Extrap,
    Taps(Vec<(usize, f64)>),
}

fn cubic(x: f64, a: f64) -> f64 {
    let x = x.abs();
    if x <= 1.0 {
        ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a
    } else {
        0.0
    }
}

impl ResizeNd {
    /// The taps of every output index along one axis of length `inp`, resized to `out` by
    /// `scale`, with `roi` `(start, end)`.
    fn taps(&self, out: usize, inp: usize, scale: f64, roi: (f64, f64)) -> Vec<Tap> {
        let inw = inp as f64;
        let outw = scale * inw;
        (0..out)
            .map(|o| {
                let x = o as f64;
                let xo = match self.coord {
                    Coord::AlignCorners => {
                        if outw == 1.0 {
                            0.0
                        } else {
                            x * (inw - 1.0) / (outw - 1.0)
                        }
                    }
                    Coord::Asymmetric => x / scale,
                    Coord::TfCropAndResize => {
                        let v = if outw == 1.0 {
                            (roi.1 - roi.0) * (inw - 1.0) / 2.0
                        } else {
                            x * (roi.1 - roi.0) * (inw - 1.0) / (outw - 1.0)
                        } + roi.0 * (inw - 1.0);
                        if v < 0.0 || v > inw - 1.0 || v.is_nan() {
                            return Tap::Extrap;
                        }
                        v
                    }
                    Coord::PytorchHalfPixel => {
                        if outw == 1.0 {
                            -0.5
                        } else {
                            (x + 0.5) / scale - 0.5
                        }
                    }
                    Coord::HalfPixel => (x + 0.5) / scale - 0.5,
                    Coord::HalfPixelSymmetric => {
                        let adj = out as f64 / outw;
                        let offset = inw / 2.0 * (1.0 - adj);
                        offset + (x + 0.5) / scale - 0.5
                    }
                };
                let xo = if xo.is_finite() { xo } else { 0.0 };
                // Ratio in (0, 1]: an integer position takes the pixel on its left as base.
                let (base, ratio) = if xo.fract() == 0.0 {
                    (xo - 1.0, 1.0)
                } else {
                    (xo.floor(), xo - xo.floor())
                };
                let s = scale.min(1.0);
                let (start, coeffs): (i64, Vec<f64>) = match self.interp {
                    Interp::Nearest(m) => {
                        let up = if ratio == 1.0 {
                            true
                        } else {
                            match m {
                                NearestMode::RoundPreferFloor => ratio > 0.5,
                                NearestMode::RoundPreferCeil => ratio >= 0.5,
                                NearestMode::Floor => false,
                                NearestMode::Ceil => true,
                            }
                        };
                        (0, if up { vec![0.0, 1.0] } else { vec![1.0, 0.0] })
                    }
                    Interp::Linear if self.antialias => {
                        let start = (-1.0 / s).floor() as i64 + 1;
                        let n = 2 - 2 * start;
                        let c: Vec<f64> = (start..start + n)
                            .map(|i| (1.0 - ((i as f64 - ratio) * s).abs()).clamp(0.0, 1.0))
                            .collect();
                        (start, c)
                    }
                    Interp::Linear => (0, vec![1.0 - ratio, ratio]),
                    Interp::Cubic(a) if self.antialias => {
                        let start = (-2.0 / s).floor() as i64 + 1;
                        let c: Vec<f64> = (start..2 - start)
                            .map(|i| cubic(s * (i as f64 - ratio), a))
                            .collect();
                        (start, c)
                    }
                    Interp::Cubic(a) => (
                        -1,
                        vec![
                            cubic(ratio + 1.0, a),
                            cubic(ratio, a),
                            cubic(1.0 - ratio, a),
                            cubic(2.0 - ratio, a),
                        ],
                    ),
                };
                let mut taps: Vec<(i64, f64)> = coeffs
                    .iter()
                    .enumerate()
                    .map(|(k, &c)| (base as i64 + start + k as i64, c))
                    .collect();
                let normalize = self.antialias && !matches!(self.interp, Interp::Nearest(_));
                if self.exclude_outside {
                    for t in &mut taps {
                        if t.0 < 0 || t.0 >= inp as i64 {
                            t.1 = 0.0;
                        }
                    }
                }
                if normalize || self.exclude_outside {
                    let sum: f64 = taps.iter().map(|t| t.1).sum();
                    if sum != 0.0 {
                        for t in &mut taps {
                            t.1 /= sum;
                        }
                    }
                }
                let last = inp.saturating_sub(1) as i64;
                Tap::Taps(
                    taps.into_iter()
                        .filter(|t| t.1 != 0.0)
                        .map(|(i, c)| (i.clamp(0, last) as usize, c))
                        .collect(),
                )
            })
            .collect()
    }
}

/// `data` of `shape` resized along `axis` to `out` by `taps`.
fn apply_axis(
    data: &[f64],
    shape: &[usize],
    axis: usize,
    out: usize,
    taps: &[Tap],
    extrap: f64,
) -> Vec<f64> {
    let outer: usize = shape[..axis].iter().product();
    let inner: usize = shape[axis + 1..].iter().product();
    let inp = shape[axis];
    let mut res = vec![0.0; outer * out * inner];
    for b in 0..outer {
        for (o, tap) in taps.iter().enumerate() {
            let dst = &mut res[(b * out + o) * inner..(b * out + o + 1) * inner];
            match tap {
                Tap::Extrap => dst.iter_mut().for_each(|v| *v = extrap),
                Tap::Taps(t) => {
                    for &(i, c) in t {
                        let src = &data[(b * inp + i) * inner..(b * inp + i + 1) * inner];
                        for (d, s) in dst.iter_mut().zip(src) {
                            *d += c * s;
                        }
                    }
                }
            }
        }
    }
    res
}

impl Operator for ResizeNd {
    fn name(&self) -> &'static str {
        "Resize"
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn run(&self, inputs: &[Option<&Value>], ctx: Ctx) -> Result<Vec<Value>> {
        let x = input(inputs, 0, &NUMERIC, ctx)?;
        let shape = x.shape().to_vec();
        let r = shape.len();
        let present = |i: usize| {
            inputs
                .get(i)
                .copied()
                .flatten()
                .filter(|v| !v.shape().contains(&0))
        };
        let (roi_in, scales_in, sizes_in) = if self.v10 {
            (None, present(1), None)
        } else {
            (present(1), present(2), present(3))
        };
        let axes: Vec<usize> = match &self.axes {
            Some(a) => {
                let v = a
                    .iter()
                    .map(|&d| ctx.axis(d, r))
                    .collect::<Result<Vec<_>>>()?;
                let mut s = v.clone();
                s.sort_unstable();
                s.dedup();
                if s.len() != v.len() {
                    return Err(ctx.err(format!("axes {a:?} repeat an axis")));
                }
                v
            }
            None => (0..r).collect(),
        };
        let n = axes.len();
        let mut scales = vec![1.0f64; r];
        let mut out: Vec<u128> = shape.iter().map(|&d| d as u128).collect();
        if let Some(sz) = sizes_in {
            if scales_in.is_some() {
                return Err(ctx.err("both scales and sizes given"));
            }
            let s = sz.to_i64_vec();
            if s.len() != n || s.iter().any(|&v| v < 0) {
                return Err(ctx.err(format!("sizes {s:?} for {n} axes")));
            }
            for (k, &d) in axes.iter().enumerate() {
                scales[d] = s[k] as f64 / shape[d] as f64;
            }
            if self.policy != 0 {
                let it = axes.iter().map(|&d| scales[d]);
                let sc = if self.policy == 1 {
                    it.fold(f64::INFINITY, f64::min)
                } else {
                    it.fold(f64::NEG_INFINITY, f64::max)
                };
                for &d in &axes {
                    scales[d] = sc;
                    let v = (sc * shape[d] as f64 + 0.5).floor();
                    if !v.is_finite() || v < 0.0 {
                        return Err(ctx.err(format!("bad output size {v}")));
                    }
                    out[d] = v as u128;
                }
            } else {
                for (k, &d) in axes.iter().enumerate() {
                    out[d] = s[k] as u128;
                }
            }
        } else if let Some(sc) = scales_in {
            if !matches!(
                sc.dtype(),
                DType::F32 | DType::F64 | DType::F16 | DType::BF16
            ) {
                return Err(ctx.err(format!("scales are {}; floats expected", sc.dtype())));
            }
            let s = sc.to_f64_vec();
            if s.len() != n || !s.iter().all(|v| v.is_finite() && *v > 0.0) {
                return Err(ctx.err(format!("scales {s:?}: {n} positive finite values expected")));
            }
            for (k, &d) in axes.iter().enumerate() {
                scales[d] = s[k];
                out[d] = (s[k] * shape[d] as f64).floor() as u128;
            }
        } else {
            return Err(ctx.err("neither scales nor sizes given"));
        }
        let out = ctx.sized_wide("output", &out)?;
        let mut roi = vec![(0.0f64, 1.0f64); r];
        if self.coord == Coord::TfCropAndResize {
            let Some(rv) = roi_in else {
                return Err(ctx.err("tf_crop_and_resize needs the roi input"));
            };
            let v = rv.to_f64_vec();
            if v.len() != 2 * n {
                return Err(ctx.err(format!("roi has {} values; {} expected", v.len(), 2 * n)));
            }
            for (k, &d) in axes.iter().enumerate() {
                roi[d] = (v[k], v[n + k]);
            }
        }
        for d in 0..r {
            if shape[d] == 0 && out[d] != 0 {
                return Err(ctx.err(format!("axis {d} is empty and cannot be resized")));
            }
        }
        let mut cur = x.to_f64_vec();
        let mut cur_shape = shape.clone();
        if out.contains(&0) {
            cur.clear();
            cur_shape = out.clone();
        } else {
            for d in 0..r {
                if out[d] == shape[d] && scales[d] == 1.0 && self.coord != Coord::TfCropAndResize {
                    continue;
                }
                let taps = self.taps(out[d], shape[d], scales[d], roi[d]);
                cur = apply_axis(&cur, &cur_shape, d, out[d], &taps, self.extrapolation);
                cur_shape[d] = out[d];
            }
        }
        let f = Value::from_vec(&cur_shape, cur)?;
        let dt = x.dtype();
        let y = if matches!(dt, DType::F32 | DType::F64 | DType::F16 | DType::BF16) {
            f.cast(dt)
        } else {
            crate::ops::typed::map_float(&f, |v| v, |v| v.round_ties_even())
                .unwrap_or(f)
                .cast(dt)
        };
        Ok(vec![y])
    }
}

/// Opset-10 Resize: inputs (X, scales), asymmetric coordinates, nearest rounding down.
fn build_v10(n: &NodeCtx) -> Result<Op> {
    let a = n.attrs(&["mode"])?;
    n.arity((2, 2), (1, 1))?;
    let interp = match a.string("mode", "nearest").as_str() {
        "nearest" => Interp::Nearest(NearestMode::Floor),
        "linear" => Interp::Linear,
        other => return Err(a.unsupported(format!("mode {other}"))),
    };
    Ok(Op::Dyn(Arc::new(ResizeNd {
        interp,
        coord: Coord::Asymmetric,
        exclude_outside: false,
        antialias: false,
        extrapolation: 0.0,
        axes: None,
        policy: 0,
        v10: true,
    })))
}

/// Resize from opset 11: the legacy 4-D f32 op when it applies, this one otherwise.
fn build(n: &NodeCtx) -> Result<Op> {
    let a = n.attrs(&[
        "mode",
        "coordinate_transformation_mode",
        "nearest_mode",
        "cubic_coeff_a",
        "exclude_outside",
        "extrapolation_value",
        "antialias",
        "keep_aspect_ratio_policy",
        "axes",
    ])?;
    n.arity((1, 4), (1, 1))?;
    let nearest = match a.string("nearest_mode", "round_prefer_floor").as_str() {
        "floor" => NearestMode::Floor,
        "ceil" => NearestMode::Ceil,
        "round_prefer_floor" => NearestMode::RoundPreferFloor,
        "round_prefer_ceil" => NearestMode::RoundPreferCeil,
        other => return Err(a.unsupported(format!("nearest_mode {other}"))),
    };
    let interp = match a.string("mode", "nearest").as_str() {
        "nearest" => Interp::Nearest(nearest),
        "linear" => Interp::Linear,
        "cubic" => Interp::Cubic(a.float("cubic_coeff_a", -0.75) as f64),
        other => return Err(a.unsupported(format!("mode {other}"))),
    };
    let coord = match a
        .string("coordinate_transformation_mode", "half_pixel")
        .as_str()
    {
        "half_pixel" => Coord::HalfPixel,
        "half_pixel_symmetric" => Coord::HalfPixelSymmetric,
        "pytorch_half_pixel" => Coord::PytorchHalfPixel,
        "align_corners" => Coord::AlignCorners,
        "asymmetric" => Coord::Asymmetric,
        "tf_crop_and_resize" => Coord::TfCropAndResize,
        other => return Err(a.unsupported(format!("coordinate_transformation_mode {other}"))),
    };
    let policy = match a.string("keep_aspect_ratio_policy", "stretch").as_str() {
        "stretch" => 0,
        "not_larger" => 1,
        "not_smaller" => 2,
        other => return Err(a.unsupported(format!("keep_aspect_ratio_policy {other}"))),
    };
    let antialias = a.int("antialias", 0) != 0;
    if antialias && matches!(interp, Interp::Nearest(_)) {
        return Err(a.unsupported("antialias with mode nearest"));
    }
    let exclude_outside = a.int("exclude_outside", 0) != 0;
    let axes = a.ints("axes");
    // The legacy op: 4-D f32 over H and W, nearest/linear, no antialias; only when the
    // scales are constants that keep N and C (sizes are checked by it at run time).
    let legacy_coord = match coord {
        Coord::HalfPixel => Some(CoordMode::HalfPixel),
        Coord::PytorchHalfPixel => Some(CoordMode::PytorchHalfPixel),
        Coord::Asymmetric => Some(CoordMode::Asymmetric),
        _ => None,
    };
    let legacy_mode = match interp {
        Interp::Nearest(m) => Some(ResizeMode::Nearest(m)),
        Interp::Linear => Some(ResizeMode::Linear),
        Interp::Cubic(_) => None,
    };
    let const_scales_ok = !n.has_input(3)
        && n.constant(2).is_some_and(|s| {
            let v = s.to_f64_vec();
            v.len() == 4 && v[0] == 1.0 && v[1] == 1.0
        });
    if let (Some(c), Some(m), true, false, false, None, 0) = (
        legacy_coord,
        legacy_mode,
        const_scales_ok,
        antialias,
        exclude_outside,
        &axes,
        policy,
    ) {
        return Ok(Op::Resize(Resize { mode: m, coord: c }));
    }
    Ok(Op::Dyn(Arc::new(ResizeNd {
        interp,
        coord,
        exclude_outside,
        antialias,
        extrapolation: a.float("extrapolation_value", 0.0) as f64,
        axes,
        policy,
        v10: false,
    })))
}

/// Registers the ops of this file.
pub(crate) fn register(r: &mut Registry) {
    r.add("", "Resize", 10, build_v10);
    r.add("", "Resize", 11, build);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Ctx<'static> {
        Ctx {
            node: "n",
            op: "Resize",
            arena: None,
        }
    }

    fn op(interp: Interp, coord: Coord) -> ResizeNd {
        ResizeNd {
            interp,
            coord,
            exclude_outside: false,
            antialias: false,
            extrapolation: 0.0,
            axes: None,
            policy: 0,
            v10: false,
        }
    }

    fn run(
        o: &ResizeNd,
        x: &Value,
        scales: Option<&Value>,
        sizes: Option<&Value>,
    ) -> Result<Value> {
        Ok(o.run(&[Some(x), None, scales, sizes], ctx())?.remove(0))
    }

    #[test]
    fn nearest_1d_upsample_matches_naive() {
        let x = Value::f32(&[3], vec![1.0, 2.0, 3.0]).unwrap();
        let s = Value::f32(&[1], vec![2.0]).unwrap();
        let o = op(Interp::Nearest(NearestMode::Floor), Coord::Asymmetric);
        let y = run(&o, &x, Some(&s), None).unwrap();
        assert_eq!(y.to_f64_vec(), vec![1.0, 1.0, 2.0, 2.0, 3.0, 3.0]);
    }

    #[test]
    fn linear_align_corners_and_integers_round() {
        let x = Value::from_vec(&[1, 2], vec![0i32, 3]).unwrap();
        let sz = Value::i64(&[2], vec![1, 3]).unwrap();
        let o = op(Interp::Linear, Coord::AlignCorners);
        let y = run(&o, &x, None, Some(&sz)).unwrap();
        assert_eq!(y.dtype(), DType::I32);
        assert_eq!(y.to_i64_vec(), vec![0, 2, 3]); // 1.5 rounds to even
    }

    #[test]
    fn cubic_identity_at_scale_one_on_odd_axes() {
        let x = Value::f32(&[1, 5], vec![1.0, -2.0, 7.0, 0.5, 3.0]).unwrap();
        let mut o = op(Interp::Cubic(-0.75), Coord::TfCropAndResize);
        o.extrapolation = 9.0;
        let roi = Value::f32(&[4], vec![0.0, 0.0, 1.0, 1.0]).unwrap();
        let s = Value::f32(&[2], vec![1.0, 1.0]).unwrap();
        let y = o.run(&[Some(&x), Some(&roi), Some(&s)], ctx()).unwrap();
        assert_eq!(y[0].to_f64_vec(), x.to_f64_vec());
    }

    #[test]
    fn empty_and_errors() {
        let x = Value::f32(&[0, 2], vec![]).unwrap();
        let s = Value::f32(&[2], vec![2.0, 2.0]).unwrap();
        let o = op(Interp::Linear, Coord::HalfPixel);
        assert_eq!(run(&o, &x, Some(&s), None).unwrap().shape(), &[0, 4]);
        let bad = Value::f32(&[1], vec![2.0]).unwrap();
        assert!(run(&o, &x, Some(&bad), None).is_err());
        let neg = Value::f32(&[2], vec![-1.0, 2.0]).unwrap();
        assert!(run(&o, &x, Some(&neg), None).is_err());
        let b = Value::from_vec(&[1], vec![true]).unwrap();
        assert!(run(&o, &b, Some(&bad), None).is_err());
        let mut ax = op(Interp::Linear, Coord::HalfPixel);
        ax.axes = Some(vec![-1, 1]);
        assert!(run(&ax, &x, Some(&s), None).is_err());
    }
}
