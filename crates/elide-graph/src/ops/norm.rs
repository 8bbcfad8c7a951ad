//! Normalizations: LayerNormalization (Y, Mean, InvStdDev), RMSNormalization,
//! InstanceNormalization, GroupNormalization (opset 18's per-group scale and bias, opset
//! 21's per-channel ones), LRN, MeanVarianceNormalization and LpNormalization.
//!
//! All are computed in f64 from the input's values and rounded once to the input's type
//! (so `stash_type`'s f32 is met or exceeded); the statistics outputs of
//! LayerNormalization take the type `stash_type` names. Means and variances are two-pass
//! (population variance), over the axes [`super::reduce::OutIndex`] collapses.
use super::operator::Operator;
use super::reduce::{kept_shape, reduced_axes, OutIndex};
use super::typed::{input, FLOATS};
use super::{Ctx, Op};
use crate::onnx::registry::{NodeCtx, Registry};
use crate::{DType, Result, Value};
use ndarray::{ArrayD, IxDyn};
use std::sync::Arc;

/// Per-set mean and population variance of `x` (of `shape`) over the `reduced` axes; the
/// sets are numbered as the keep-dims output's elements.
fn moments(x: &[f64], shape: &[usize], reduced: &[bool]) -> (Vec<f64>, Vec<f64>) {
    let sets: usize = kept_shape(shape, reduced).iter().product();
    let mut count = vec![0usize; sets];
    let mut mean = vec![0.0; sets];
    for (&v, o) in x.iter().zip(OutIndex::new(shape, reduced)) {
        if let (Some(m), Some(c)) = (mean.get_mut(o), count.get_mut(o)) {
            *m += v;
            *c += 1;
        }
    }
    for (m, &c) in mean.iter_mut().zip(&count) {
        *m /= c as f64;
    }
    let mut var = vec![0.0; sets];
    for (&v, o) in x.iter().zip(OutIndex::new(shape, reduced)) {
        if let (Some(s), Some(m)) = (var.get_mut(o), mean.get(o)) {
            *s += (v - m) * (v - m);
        }
    }
    for (s, &c) in var.iter_mut().zip(&count) {
        *s /= c as f64;
    }
    (mean, var)
}

/// `v` as f64, broadcast (numpy rules, one way) to `shape`.
fn broadcast_to(v: &Value, shape: &[usize], what: &str, ctx: Ctx) -> Result<Vec<f64>> {
    let a = ArrayD::from_shape_vec(IxDyn(v.shape()), v.to_f64_vec())
        .map_err(|e| ctx.err(format!("{what}: {e}")))?;
    let b = a.broadcast(IxDyn(shape)).ok_or_else(|| {
        ctx.err(format!(
            "{what} of shape {:?} does not broadcast to {shape:?}",
            v.shape()
        ))
    })?;
    Ok(b.iter().copied().collect())
}

/// A per-channel (axis 1) input of `c` values, or one value for every channel.
fn per_channel(v: &Value, c: usize, what: &str, ctx: Ctx) -> Result<Vec<f64>> {
    let d = v.to_f64_vec();
    match d.len() {
        n if n == c => Ok(d),
        1 => Ok(vec![d[0]; c]),
        n => Err(ctx.err(format!("{what} has {n} values for {c} channels"))),
    }
}

/// `(N, C, spatial size)` of an input of rank 2 or more.
fn nc_rest(shape: &[usize], ctx: Ctx) -> Result<(usize, usize, usize)> {
    match shape {
        [n, c, rest @ ..] => Ok((*n, *c, rest.iter().product())),
        _ => Err(ctx.err(format!("input of shape {shape:?}: expected N, C, ..."))),
    }
}

/// The float type `stash_type` names.
fn stash(code: i64, n: &NodeCtx) -> Result<DType> {
    i32::try_from(code)
        .ok()
        .and_then(DType::from_onnx)
        .filter(|d| d.is_float())
        .ok_or_else(|| n.err(format!("stash_type {code} is not a float type")))
}

fn out(shape: &[usize], y: Vec<f64>, like: DType) -> Result<Value> {
    Ok(Value::from_vec(shape, y)?.cast(like))
}

/// Which normalization.
#[derive(Clone, Debug)]
enum Kind {
    /// Over axes `axis..`, with `scale` (input 1) and optional bias (input 2); `rms` skips
    /// the mean (RMSNormalization).
    Layer { axis: i64, stash: DType, rms: bool },
    /// Over the spatial axes per (N, C), with per-channel scale and bias.
    Instance,
    /// Over (C / groups, spatial) per (N, group).
    Group {
        groups: i64,
        /// Opset 18: scale and bias per group (else per channel).
        per_group: bool,
    },
    /// Across `size` neighbouring channels.
    Lrn {
        alpha: f64,
        beta: f64,
        bias: f64,
        size: usize,
    },
    /// Over `axes`, to zero mean and unit variance.
    MeanVariance { axes: Vec<i64> },
    /// Divides by the Lp norm along `axis`.
    Lp { axis: i64, p: i64 },
}

/// One normalization as an op.
#[derive(Clone, Debug)]
pub struct Norm {
    kind: Kind,
    name: &'static str,
    epsilon: f64,
}

impl Operator for Norm {
    fn name(&self) -> &'static str {
        self.name
    }

    fn run(&self, inputs: &[Option<&Value>], ctx: Ctx) -> Result<Vec<Value>> {
        let xv = input(inputs, 0, &FLOATS, ctx)?;
        let shape = xv.shape().to_vec();
        let dt = xv.dtype();
        let x = xv.to_f64_vec();
        let eps = self.epsilon;
        match &self.kind {
            Kind::Layer { axis, stash, rms } => {
                let d = ctx.axis(*axis, shape.len())?;
                let reduced: Vec<bool> = (0..shape.len()).map(|i| i >= d).collect();
                let (mut mean, var) = if *rms {
                    let sq: Vec<f64> = x.iter().map(|v| v * v).collect();
                    let (ms, _) = moments(&sq, &shape, &reduced);
                    (vec![0.0; ms.len()], ms)
                } else {
                    moments(&x, &shape, &reduced)
                };
                let inv: Vec<f64> = var.iter().map(|v| 1.0 / (v + eps).sqrt()).collect();
                let scale = broadcast_to(input(inputs, 1, &FLOATS, ctx)?, &shape, "scale", ctx)?;
                let bias = match inputs.get(2).copied().flatten() {
                    Some(_) if !*rms => {
                        let b = input(inputs, 2, &FLOATS, ctx)?;
                        Some(broadcast_to(b, &shape, "bias", ctx)?)
                    }
                    _ => None,
                };
                let mut y = x;
                for (k, o) in OutIndex::new(&shape, &reduced).enumerate() {
                    let (m, s) = (mean.get(o).copied(), inv.get(o).copied());
                    if let (Some(v), Some(m), Some(s)) = (y.get_mut(k), m, s) {
                        *v = (*v - m) * s * scale.get(k).copied().unwrap_or(1.0)
                            + bias.as_ref().and_then(|b| b.get(k).copied()).unwrap_or(0.0);
                    }
                }
                let y = out(&shape, y, dt)?;
                if *rms {
                    return Ok(vec![y]);
                }
                let kept = kept_shape(&shape, &reduced);
                let mean = out(&kept, std::mem::take(&mut mean), *stash)?;
                Ok(vec![y, mean, out(&kept, inv, *stash)?])
            }
            Kind::Instance => {
                let (n, c, rest) = nc_rest(&shape, ctx)?;
                let scale = per_channel(input(inputs, 1, &FLOATS, ctx)?, c, "scale", ctx)?;
                let bias = per_channel(input(inputs, 2, &FLOATS, ctx)?, c, "bias", ctx)?;
                let y = grouped(&x, n, c, rest, c, eps, &scale, &bias);
                Ok(vec![out(&shape, y, dt)?])
            }
            Kind::Group { groups, per_group } => {
                let (n, c, rest) = nc_rest(&shape, ctx)?;
                let g = usize::try_from(*groups)
                    .ok()
                    .filter(|&g| g > 0 && c % g == 0)
                    .ok_or_else(|| ctx.err(format!("{groups} groups for {c} channels")))?;
                let widen = |v: Vec<f64>| -> Vec<f64> {
                    (0..c)
                        .map(|ch| v.get(ch / (c / g)).copied().unwrap_or(0.0))
                        .collect()
                };
                let (s, b) = (
                    input(inputs, 1, &FLOATS, ctx)?,
                    input(inputs, 2, &FLOATS, ctx)?,
                );
                let (scale, bias) = if *per_group {
                    let s = per_channel(s, g, "scale", ctx)?;
                    let b = per_channel(b, g, "bias", ctx)?;
                    (widen(s), widen(b))
                } else {
                    (
                        per_channel(s, c, "scale", ctx)?,
                        per_channel(b, c, "bias", ctx)?,
                    )
                };
                let y = grouped(&x, n, c, rest, g, eps, &scale, &bias);
                Ok(vec![out(&shape, y, dt)?])
            }
            Kind::Lrn {
                alpha,
                beta,
                bias,
                size,
            } => {
                let (n, c, rest) = nc_rest(&shape, ctx)?;
                let (lo, hi) = ((size - 1) / 2, size / 2);
                let mut y = x.clone();
                for b in 0..n {
                    for ch in 0..c {
                        let from = ch.saturating_sub(lo);
                        let to = (ch + hi).min(c.saturating_sub(1));
                        for p in 0..rest {
                            let at = |q: usize| (b * c + q) * rest + p;
                            let sq: f64 = (from..=to)
                                .filter_map(|q| x.get(at(q)))
                                .map(|v| v * v)
                                .sum();
                            if let Some(v) = y.get_mut(at(ch)) {
                                *v /= (bias + alpha / *size as f64 * sq).powf(*beta);
                            }
                        }
                    }
                }
                Ok(vec![out(&shape, y, dt)?])
            }
            Kind::MeanVariance { axes } => {
                let reduced = reduced_axes(axes, shape.len(), ctx)?;
                let (mean, var) = moments(&x, &shape, &reduced);
                let mut y = x;
                for (v, o) in y.iter_mut().zip(OutIndex::new(&shape, &reduced)) {
                    if let (Some(m), Some(s)) = (mean.get(o), var.get(o)) {
                        *v = (*v - m) / (s.sqrt() + 1e-9);
                    }
                }
                Ok(vec![out(&shape, y, dt)?])
            }
            Kind::Lp { axis, p } => {
                let d = ctx.axis(*axis, shape.len())?;
                let reduced: Vec<bool> = (0..shape.len()).map(|i| i == d).collect();
                let mut norm = vec![0.0; kept_shape(&shape, &reduced).iter().product()];
                for (v, o) in x.iter().zip(OutIndex::new(&shape, &reduced)) {
                    if let Some(s) = norm.get_mut(o) {
                        *s += if *p == 1 { v.abs() } else { v * v };
                    }
                }
                if *p == 2 {
                    norm.iter_mut().for_each(|s| *s = s.sqrt());
                }
                let mut y = x;
                for (v, o) in y.iter_mut().zip(OutIndex::new(&shape, &reduced)) {
                    *v /= norm.get(o).copied().unwrap_or(1.0);
                }
                Ok(vec![out(&shape, y, dt)?])
            }
        }
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// `x` (N, C, rest) normalized over each of `g` channel groups per sample, then scaled and
/// shifted per channel.
#[allow(clippy::too_many_arguments)]
fn grouped(
    x: &[f64],
    n: usize,
    c: usize,
    rest: usize,
    g: usize,
    eps: f64,
    scale: &[f64],
    bias: &[f64],
) -> Vec<f64> {
    let shape = [n, g, (c / g.max(1)) * rest];
    let (mean, var) = moments(x, &shape, &[false, false, true]);
    let mut y = x.to_vec();
    for (k, v) in y.iter_mut().enumerate() {
        let set = k / shape[2].max(1);
        let ch = (k / rest.max(1)) % c.max(1);
        let (m, s) = (mean.get(set).copied(), var.get(set).copied());
        let (m, s) = (m.unwrap_or(0.0), s.unwrap_or(0.0));
        *v = (*v - m) / (s + eps).sqrt() * scale.get(ch).copied().unwrap_or(1.0)
            + bias.get(ch).copied().unwrap_or(0.0);
    }
    y
}

fn op(name: &'static str, kind: Kind, epsilon: f32) -> Result<Op> {
    Ok(Op::Dyn(Arc::new(Norm {
        kind,
        name,
        epsilon: epsilon as f64,
    })))
}

fn build_layer(n: &NodeCtx) -> Result<Op> {
    let a = n.attrs(&["axis", "epsilon", "stash_type"])?;
    n.arity((2, 3), (1, 3))?;
    let kind = Kind::Layer {
        axis: a.int("axis", -1),
        stash: stash(a.int("stash_type", 1), n)?,
        rms: false,
    };
    op("LayerNormalization", kind, a.float("epsilon", 1e-5))
}

fn build_rms(n: &NodeCtx) -> Result<Op> {
    let a = n.attrs(&["axis", "epsilon", "stash_type"])?;
    n.arity((2, 2), (1, 1))?;
    let kind = Kind::Layer {
        axis: a.int("axis", -1),
        stash: stash(a.int("stash_type", 1), n)?,
        rms: true,
    };
    op("RMSNormalization", kind, a.float("epsilon", 1e-5))
}

fn build_instance(n: &NodeCtx) -> Result<Op> {
    let a = n.attrs(&["epsilon"])?;
    n.arity((3, 3), (1, 1))?;
    op(
        "InstanceNormalization",
        Kind::Instance,
        a.float("epsilon", 1e-5),
    )
}

fn build_group(n: &NodeCtx, per_group: bool) -> Result<Op> {
    let a = if per_group {
        n.attrs(&["epsilon", "num_groups"])?
    } else {
        let a = n.attrs(&["epsilon", "num_groups", "stash_type"])?;
        stash(a.int("stash_type", 1), n)?;
        a
    };
    n.arity((3, 3), (1, 1))?;
    let groups = a
        .raw("num_groups")
        .map(|r| r.i)
        .ok_or_else(|| n.err("attribute num_groups is missing"))?;
    let kind = Kind::Group { groups, per_group };
    op("GroupNormalization", kind, a.float("epsilon", 1e-5))
}

fn build_group_18(n: &NodeCtx) -> Result<Op> {
    build_group(n, true)
}

fn build_group_21(n: &NodeCtx) -> Result<Op> {
    build_group(n, false)
}

fn build_lrn(n: &NodeCtx) -> Result<Op> {
    let a = n.attrs(&["alpha", "beta", "bias", "size"])?;
    n.arity((1, 1), (1, 1))?;
    let size = a
        .raw("size")
        .map(|r| r.i)
        .and_then(|s| usize::try_from(s).ok())
        .filter(|&s| s > 0)
        .ok_or_else(|| a.unsupported("size must be a positive integer"))?;
    let kind = Kind::Lrn {
        alpha: a.float("alpha", 1e-4) as f64,
        beta: a.float("beta", 0.75) as f64,
        bias: a.float("bias", 1.0) as f64,
        size,
    };
    op("LRN", kind, 0.0)
}

fn build_mvn(n: &NodeCtx) -> Result<Op> {
    let a = n.attrs(&["axes"])?;
    n.arity((1, 1), (1, 1))?;
    let axes = a.ints("axes").unwrap_or_else(|| vec![0, 2, 3]);
    op(
        "MeanVarianceNormalization",
        Kind::MeanVariance { axes },
        0.0,
    )
}

fn build_lp(n: &NodeCtx) -> Result<Op> {
    let a = n.attrs(&["axis", "p"])?;
    n.arity((1, 1), (1, 1))?;
    let p = a.int("p", 2);
    if p != 1 && p != 2 {
        return Err(a.unsupported(format!("p = {p} (1 or 2)")));
    }
    let kind = Kind::Lp {
        axis: a.int("axis", -1),
        p,
    };
    op("LpNormalization", kind, 0.0)
}

/// Registers the ops of this file.
pub(crate) fn register(r: &mut Registry) {
    r.add("", "LayerNormalization", 17, build_layer);
    r.add("", "RMSNormalization", 23, build_rms);
    r.add("", "InstanceNormalization", 6, build_instance);
    r.add("", "GroupNormalization", 18, build_group_18);
    r.add("", "GroupNormalization", 21, build_group_21);
    r.add("", "LRN", 1, build_lrn);
    r.add("", "MeanVarianceNormalization", 9, build_mvn);
    r.add("", "LpNormalization", 1, build_lp);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Ctx<'static> {
        Ctx {
            node: "n",
            op: "Norm",
            arena: None,
        }
    }

    fn norm(kind: Kind, epsilon: f64) -> Norm {
        Norm {
            kind,
            name: "t",
            epsilon,
        }
    }

    fn close(a: &[f64], b: &[f64], tol: f64) {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() <= tol, "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn layer_norm_rows_and_statistics() {
        let x = Value::f32(&[2, 3], vec![1., 2., 3., 0., 0., 6.]).unwrap();
        let w = Value::f32(&[3], vec![1., 2., 1.]).unwrap();
        let b = Value::f32(&[3], vec![0., 1., 0.]).unwrap();
        let op = norm(
            Kind::Layer {
                axis: -1,
                stash: DType::F32,
                rms: false,
            },
            0.0,
        );
        let o = op.run(&[Some(&x), Some(&w), Some(&b)], ctx()).unwrap();
        let s = (2.0f64 / 3.0).sqrt();
        close(
            &o[0].to_f64_vec(),
            &[
                -1. / s,
                1.,
                1. / s,
                -2. / 8f64.sqrt(),
                1. - 4. / 8f64.sqrt(),
                4. / 8f64.sqrt(),
            ],
            1e-6,
        );
        assert_eq!(o[1].shape(), &[2, 1]);
        close(&o[1].to_f64_vec(), &[2.0, 2.0], 1e-6);
        close(&o[2].to_f64_vec(), &[1. / s, 1. / 8f64.sqrt()], 1e-6);
        // axis 0 normalizes everything; a scale that does not broadcast is an error.
        let all = Kind::Layer {
            axis: 0,
            stash: DType::F64,
            rms: false,
        };
        let one = Value::f32(&[1], vec![1.]).unwrap();
        let o = norm(all.clone(), 0.0)
            .run(&[Some(&x), Some(&one)], ctx())
            .unwrap();
        assert_eq!(o[1].dtype(), DType::F64);
        assert_eq!(o[1].shape(), &[1, 1]);
        let bad = Value::f32(&[2], vec![1., 1.]).unwrap();
        assert!(norm(all.clone(), 0.0)
            .run(&[Some(&x), Some(&bad)], ctx())
            .is_err());
        let int_bias = Value::i64(&[1], vec![0]).unwrap();
        let e = norm(all, 0.0)
            .run(&[Some(&x), Some(&one), Some(&int_bias)], ctx())
            .unwrap_err();
        assert!(
            e.to_string().contains("i64") || e.to_string().contains("int64"),
            "{e}"
        );
    }

    #[test]
    fn rms_norm_divides_by_root_mean_square() {
        let x = Value::from_vec(&[1, 2], vec![3.0f64, 4.]);
        let w = Value::from_vec(&[2], vec![1.0f64, 2.0]).unwrap();
        let op = norm(
            Kind::Layer {
                axis: 1,
                stash: DType::F32,
                rms: true,
            },
            0.0,
        );
        let o = op.run(&[Some(&x.unwrap()), Some(&w)], ctx()).unwrap();
        assert_eq!(o.len(), 1);
        let r = 12.5f64.sqrt();
        close(&o[0].to_f64_vec(), &[3. / r, 8. / r], 1e-12);
    }

    #[test]
    fn instance_and_group_norm_agree_with_naive_sets() {
        // N=1, C=4, 2 spatial: groups of 2 channels.
        let data: Vec<f64> = vec![1., 2., 3., 4., 5., 7., 0., -1.];
        let x = Value::from_vec(&[1, 4, 2], data.clone()).unwrap();
        let ones = Value::from_vec(&[4], vec![1.0f64; 4]).unwrap();
        let zeros = Value::from_vec(&[4], vec![0.0f64; 4]).unwrap();
        let naive = |set: &[f64]| -> Vec<f64> {
            let m = set.iter().sum::<f64>() / set.len() as f64;
            let v = set.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / set.len() as f64;
            set.iter().map(|x| (x - m) / v.sqrt()).collect()
        };
        let g = norm(
            Kind::Group {
                groups: 2,
                per_group: false,
            },
            0.0,
        );
        let o = g
            .run(&[Some(&x), Some(&ones), Some(&zeros)], ctx())
            .unwrap();
        let want: Vec<f64> = data.chunks(4).flat_map(naive).collect();
        close(&o[0].to_f64_vec(), &want, 1e-12);
        let i = norm(Kind::Instance, 0.0);
        let o = i
            .run(&[Some(&x), Some(&ones), Some(&zeros)], ctx())
            .unwrap();
        let want: Vec<f64> = data.chunks(2).flat_map(naive).collect();
        close(&o[0].to_f64_vec(), &want, 1e-12);
        let bad = norm(
            Kind::Group {
                groups: 3,
                per_group: false,
            },
            0.0,
        );
        assert!(bad
            .run(&[Some(&x), Some(&ones), Some(&zeros)], ctx())
            .is_err());
        let r1 = Value::f32(&[4], vec![0.0; 4]).unwrap();
        assert!(i
            .run(&[Some(&r1), Some(&ones), Some(&zeros)], ctx())
            .is_err());
        let empty = Value::from_vec(&[0, 4, 2], Vec::<f32>::new()).unwrap();
        let o = i
            .run(&[Some(&empty), Some(&ones), Some(&zeros)], ctx())
            .unwrap();
        assert_eq!(o[0].shape(), &[0, 4, 2]);
    }

    #[test]
    fn lrn_mvn_and_lp() {
        let x = Value::from_vec(&[1, 3, 1], vec![1.0f64, 2.0, 3.0]).unwrap();
        let lrn = norm(
            Kind::Lrn {
                alpha: 3.0,
                beta: 1.0,
                bias: 1.0,
                size: 2,
            },
            0.0,
        );
        // size 2: channel c sums c and c + 1 (floor((2-1)/2) = 0 below, ceil = 1 above).
        let o = lrn.run(&[Some(&x)], ctx()).unwrap();
        close(&o[0].to_f64_vec(), &[1. / 8.5, 2. / 20.5, 3. / 14.5], 1e-12);
        let mvn = norm(Kind::MeanVariance { axes: vec![1] }, 0.0);
        let o = mvn.run(&[Some(&x)], ctx()).unwrap().remove(0).to_f64_vec();
        let s = (2.0f64 / 3.0).sqrt();
        close(&o, &[-1. / s, 0., 1. / s], 1e-6);
        assert!(norm(
            Kind::MeanVariance {
                axes: vec![0, 2, 3]
            },
            0.0
        )
        .run(&[Some(&x)], ctx())
        .is_err());
        let lp = norm(Kind::Lp { axis: 1, p: 1 }, 0.0);
        close(
            &lp.run(&[Some(&x)], ctx()).unwrap()[0].to_f64_vec(),
            &[1. / 6., 2. / 6., 0.5],
            1e-12,
        );
        let lp = norm(Kind::Lp { axis: -2, p: 2 }, 0.0);
        let n = 14f64.sqrt();
        close(
            &lp.run(&[Some(&x)], ctx()).unwrap()[0].to_f64_vec(),
            &[1. / n, 2. / n, 3. / n],
            1e-12,
        );
        let i = Value::i64(&[1], vec![1]).unwrap();
        assert!(lp.run(&[Some(&i)], ctx()).is_err());
    }
}
