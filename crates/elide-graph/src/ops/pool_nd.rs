//! N-d pooling for what the 2-D f32 pools of [`super::pool`] do not cover: 1-D and 3-D (any
//! number of spatial axes), auto_pad SAME_UPPER / SAME_LOWER (pads from the input size at
//! run time), MaxPool's Indices output (`storage_order` row or column major) and integer or
//! half inputs, LpPool, GlobalMaxPool and GlobalLpPool. A direct loop over each window's
//! taps, in f64: correct first; the legacy path keeps the fast 2-D f32 pools.
use super::operator::Operator;
use super::typed::{input, FLOATS};
use super::{Ctx, Op, Pool, PoolKind};
use crate::onnx::attrs::Attrs;
use crate::onnx::registry::{NodeCtx, Registry};
use crate::{DType, GraphError, Result, Value};
use std::sync::Arc;

/// What a window reduces to.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum NdKind {
    /// Largest tap (the first one on ties).
    Max,
    /// Mean of the taps.
    Average {
        /// Divide by the taps inside the padded input (true) or inside the input (false).
        count_include_pad: bool,
    },
    /// `(sum |x|^p)^(1/p)` of the taps.
    Lp {
        /// The norm's order.
        p: f64,
    },
}

/// How the pads are set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AutoPad {
    /// From the `pads` attribute.
    NotSet,
    /// No padding.
    Valid,
    /// Output `ceil(in / stride)`, the odd pad at the end.
    SameUpper,
    /// Output `ceil(in / stride)`, the odd pad at the start.
    SameLower,
}

/// An N-d pooling op.
#[derive(Clone, Debug)]
pub struct PoolNd {
    name: &'static str,
    kind: NdKind,
    /// Window (empty for a global pool: the whole spatial extent).
    kernel: Vec<usize>,
    strides: Vec<usize>,
    dilations: Vec<usize>,
    /// `[begin..., end...]` (NOTSET only).
    pads: Vec<usize>,
    auto_pad: AutoPad,
    ceil_mode: bool,
    /// Indices counted column-major over the spatial axes (`storage_order` 1).
    column_major: bool,
    /// Whether the Indices output is wanted.
    indices: bool,
}

/// One window along one axis: its taps inside the input are `first + t * step` for `t` in
/// `0..inside`; `padded` of its taps lie inside the padded input.
#[derive(Clone, Copy, Debug)]
struct Taps {
    first: usize,
    step: usize,
    inside: usize,
    padded: usize,
}

/// One spatial axis' windows, one per output index.
type AxisWindows = Vec<Taps>;

/// How many of the taps `start + j * d` (`j` in `0..k`) lie in `lo..hi`, and the first `j`.
fn count_in(start: i128, d: i128, k: i128, lo: i128, hi: i128) -> (i128, i128) {
    // The first j with start + j d >= bound, clamped to 0..=k.
    let first_at = |bound: i128| -> i128 {
        if start >= bound {
            0
        } else {
            ((bound - start + d - 1) / d).min(k)
        }
    };
    let (a, b) = (first_at(lo), first_at(hi));
    (a, (b - a).max(0))
}

impl PoolNd {
    /// The 2-D legacy pool's geometry as an N-d pool (for inputs it does not take).
    pub fn from_legacy(p: &Pool) -> Self {
        let (name, kind) = match p.kind {
            PoolKind::Max => ("MaxPool", NdKind::Max),
            PoolKind::Average { count_include_pad } => {
                ("AveragePool", NdKind::Average { count_include_pad })
            }
        };
        PoolNd {
            name,
            kind,
            kernel: p.kernel.to_vec(),
            strides: p.stride.to_vec(),
            dilations: p.dilation.to_vec(),
            pads: p.pads.to_vec(),
            auto_pad: AutoPad::NotSet,
            ceil_mode: p.ceil_mode,
            column_major: false,
            indices: false,
        }
    }

    /// Each spatial axis' windows and the output's spatial shape for input dims `dims`.
    fn windows(&self, dims: &[usize], ctx: Ctx) -> Result<Vec<AxisWindows>> {
        let sp = dims.len();
        let global = self.kernel.is_empty();
        if !global && self.kernel.len() != sp {
            return Err(ctx.err(format!(
                "kernel_shape {:?} for {sp} spatial axes",
                self.kernel
            )));
        }
        let mut all = Vec::with_capacity(sp);
        for (i, &len) in dims.iter().enumerate() {
            let (k, s, d) = if global {
                (len.max(1), 1, 1)
            } else {
                (self.kernel[i], self.strides[i], self.dilations[i])
            };
            let span = (k as u128 - 1) * d as u128 + 1;
            let (n, s128) = (len as u128, s as u128);
            let (out, pb, pe) = match self.auto_pad {
                AutoPad::SameUpper | AutoPad::SameLower => {
                    let out = n.div_ceil(s128);
                    let total = (out.saturating_sub(1) * s128 + span).saturating_sub(n);
                    let small = total / 2;
                    if self.auto_pad == AutoPad::SameUpper {
                        (out, small, total - small)
                    } else {
                        (out, total - small, small)
                    }
                }
                mode => {
                    let (pb, pe) = if mode == AutoPad::Valid || global {
                        (0, 0)
                    } else {
                        (self.pads[i] as u128, self.pads[i + sp] as u128)
                    };
                    let padded = n + pb + pe;
                    if padded < span {
                        return Err(ctx.err(format!(
                            "window {:?} (dilations {:?}) larger than the padded input {dims:?}",
                            self.kernel, self.dilations
                        )));
                    }
                    let mut out = if self.ceil_mode {
                        (padded - span).div_ceil(s128) + 1
                    } else {
                        (padded - span) / s128 + 1
                    };
                    if self.ceil_mode && (out - 1) * s128 >= n + pb {
                        out -= 1;
                    }
                    (out, pb, pe)
                }
            };
            ctx.sized_wide("output", &[out])?;
            let out = out as usize;
            let (pb, pe) = (pb as i128, pe as i128);
            let (d, k, n) = (d as i128, k as i128, len as i128);
            let w: AxisWindows = (0..out)
                .map(|o| {
                    let start = o as i128 * s as i128 - pb;
                    let (j0, inside) = count_in(start, d, k, 0, n);
                    let (_, padded) = count_in(start, d, k, -pb, n + pe);
                    Taps {
                        first: (start + j0 * d).max(0) as usize,
                        step: d as usize,
                        inside: inside as usize,
                        padded: padded as usize,
                    }
                })
                .collect();
            all.push(w);
        }
        Ok(all)
    }
}

/// Advances a multi-index over `dims`; false once it wraps around.
fn step(idx: &mut [usize], dims: &[usize]) -> bool {
    for d in (0..idx.len()).rev() {
        idx[d] += 1;
        if idx[d] < dims[d] {
            return true;
        }
        idx[d] = 0;
    }
    false
}

impl Operator for PoolNd {
    fn name(&self) -> &'static str {
        self.name
    }

    fn run(&self, inputs: &[Option<&Value>], ctx: Ctx) -> Result<Vec<Value>> {
        let types: &[DType] = match self.kind {
            NdKind::Max => &[
                DType::F32,
                DType::F64,
                DType::F16,
                DType::BF16,
                DType::I8,
                DType::U8,
            ],
            _ => &FLOATS,
        };
        let x = input(inputs, 0, types, ctx)?;
        let shape = x.shape();
        if shape.len() < 3 {
            return Err(ctx.err(format!("input {shape:?}: needs [N, C, spatial...]")));
        }
        let dims = &shape[2..];
        let wins = self.windows(dims, ctx)?;
        let out_sp: Vec<usize> = wins.iter().map(|w| w.len()).collect();
        let mut out_shape = shape[..2].to_vec();
        out_shape.extend(&out_sp);
        let total = ctx.sized("output", &out_shape)?;
        let planes = shape[0] * shape[1];
        let plane_in: usize = dims.iter().product();
        let plane_out: usize = out_sp.iter().product();
        let xv = x.to_f64_vec();
        // Offsets of each spatial axis in the input: row-major for reading, and the
        // Indices output's order.
        let mut row = vec![1usize; dims.len()];
        let mut col = vec![1usize; dims.len()];
        for i in (0..dims.len().saturating_sub(1)).rev() {
            row[i] = row[i + 1] * dims[i + 1];
        }
        for i in 1..dims.len() {
            col[i] = col[i - 1] * dims[i - 1];
        }
        let mut y = Vec::with_capacity(total);
        let want_indices = self.indices && self.kind == NdKind::Max;
        let mut ind: Vec<i64> = Vec::with_capacity(if want_indices { total } else { 0 });
        let sp = dims.len();
        for plane in 0..planes {
            let base = plane * plane_in;
            if plane_out == 0 {
                break;
            }
            let mut o = vec![0usize; sp];
            loop {
                let w: Vec<Taps> = (0..sp).filter_map(|a| wins[a].get(o[a]).copied()).collect();
                let count: usize = w.iter().map(|t| t.inside).product();
                let mut best: Option<(f64, usize)> = None;
                let mut acc = 0.0;
                if count > 0 {
                    let tap_dims: Vec<usize> = w.iter().map(|t| t.inside).collect();
                    let mut t = vec![0usize; sp];
                    loop {
                        let (mut off, mut coff) = (0, 0);
                        for a in 0..sp {
                            let pos = w[a].first + t[a] * w[a].step;
                            off += pos * row[a];
                            coff += pos * col[a];
                        }
                        let v = xv.get(base + off).copied().unwrap_or(f64::NAN);
                        match self.kind {
                            NdKind::Max => {
                                if best.is_none_or(|(b, _)| v > b) && !v.is_nan() {
                                    let at = if self.column_major { coff } else { off };
                                    best = Some((v, at));
                                }
                            }
                            NdKind::Average { .. } => acc += v,
                            NdKind::Lp { p } => acc += v.abs().powf(p),
                        }
                        if !step(&mut t, &tap_dims) {
                            break;
                        }
                    }
                }
                let value = match self.kind {
                    NdKind::Max => match best {
                        Some((v, at)) => {
                            ind.push((base + at) as i64);
                            v
                        }
                        None => {
                            // No tap inside the input (or all NaN), as the reference does.
                            ind.push(-1);
                            if count > 0 {
                                f64::NAN
                            } else {
                                0.0
                            }
                        }
                    },
                    NdKind::Average { count_include_pad } => {
                        let div = if count_include_pad {
                            w.iter().map(|t| t.padded).product()
                        } else {
                            count
                        };
                        acc / div as f64
                    }
                    NdKind::Lp { p } => acc.powf(1.0 / p),
                };
                y.push(value);
                if !step(&mut o, &out_sp) {
                    break;
                }
            }
        }
        let yv = Value::from_vec(&out_shape, y)?.cast(x.dtype());
        let mut outs = vec![yv];
        if want_indices {
            outs.push(Value::from_vec(&out_shape, ind)?);
        }
        Ok(outs)
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// Reads a list attribute of `n` non-negative entries (default `d` each).
fn list(a: &Attrs, name: &str, n: usize, d: usize) -> Result<Vec<usize>> {
    let v = a.sizes(name, vec![d; n])?;
    if v.len() != n {
        return Err(a.unsupported(format!("{name} {v:?}: needs {n} values")));
    }
    Ok(v)
}

/// A MaxPool / AveragePool / LpPool from its attributes (`a` knows every pooling attribute
/// of the op), with `outputs` outputs.
pub(crate) fn from_attrs(
    op: &str,
    a: &Attrs,
    outputs: usize,
    invalid: &dyn Fn(String) -> GraphError,
) -> Result<Op> {
    let (name, kind) = match op {
        "MaxPool" => ("MaxPool", NdKind::Max),
        "AveragePool" => (
            "AveragePool",
            NdKind::Average {
                count_include_pad: a.int("count_include_pad", 0) != 0,
            },
        ),
        _ => {
            let p = a.int("p", 2);
            if p < 1 {
                return Err(invalid(format!("p = {p} must be at least 1")));
            }
            ("LpPool", NdKind::Lp { p: p as f64 })
        }
    };
    let indices = outputs > 1;
    if indices && kind != NdKind::Max {
        return Err(invalid(format!(
            "{outputs} outputs: only MaxPool has Indices"
        )));
    }
    let kernel = a.sizes("kernel_shape", vec![])?;
    if kernel.is_empty() {
        return Err(invalid("kernel_shape is missing".into()));
    }
    let sp = kernel.len();
    let strides = list(a, "strides", sp, 1)?;
    let dilations = list(a, "dilations", sp, 1)?;
    let auto_pad = match a.string("auto_pad", "NOTSET").as_str() {
        "NOTSET" => AutoPad::NotSet,
        "VALID" => AutoPad::Valid,
        "SAME_UPPER" => AutoPad::SameUpper,
        "SAME_LOWER" => AutoPad::SameLower,
        other => return Err(a.unsupported(format!("auto_pad {other}"))),
    };
    let pads = if auto_pad == AutoPad::NotSet {
        list(a, "pads", 2 * sp, 0)?
    } else {
        vec![0; 2 * sp]
    };
    let big = super::MAX_ELEMENTS;
    if kernel.contains(&0) {
        return Err(invalid(format!("kernel {kernel:?} has a zero side")));
    }
    if strides.contains(&0) {
        return Err(invalid(format!("stride {strides:?} has a zero entry")));
    }
    if dilations.contains(&0) {
        return Err(invalid(format!("dilation {dilations:?} has a zero entry")));
    }
    if [&kernel, &strides, &dilations, &pads]
        .iter()
        .any(|v| v.iter().any(|&x| x > big))
    {
        return Err(invalid(format!(
            "kernel {kernel:?} / strides {strides:?} / dilations {dilations:?} / pads {pads:?} exceed {big}"
        )));
    }
    if (0..2 * sp).any(|i| pads[i] >= kernel[i % sp]) {
        return Err(invalid(format!(
            "pads {pads:?} must be smaller than the kernel {kernel:?}"
        )));
    }
    let storage = a.int("storage_order", 0);
    if !(0..=1).contains(&storage) {
        return Err(invalid(format!("storage_order {storage} is not 0 or 1")));
    }
    Ok(Op::Dyn(Arc::new(PoolNd {
        name,
        kind,
        kernel,
        strides,
        dilations,
        pads,
        auto_pad,
        ceil_mode: a.int("ceil_mode", 0) != 0,
        column_major: storage == 1,
        indices,
    })))
}

fn build_lp(n: &NodeCtx) -> Result<Op> {
    let a = n.attrs(&[
        "auto_pad",
        "ceil_mode",
        "dilations",
        "kernel_shape",
        "p",
        "pads",
        "strides",
    ])?;
    n.arity((1, 1), (1, 1))?;
    from_attrs("LpPool", &a, 1, &|d| n.err(d))
}

fn build_global(n: &NodeCtx) -> Result<Op> {
    let lp = n.node.op_type == "GlobalLpPool";
    let a = n.attrs(if lp { &["p"] } else { &[] })?;
    n.arity((1, 1), (1, 1))?;
    let (name, kind) = if lp {
        let p = a.int("p", 2);
        if p < 1 {
            return Err(n.err(format!("p = {p} must be at least 1")));
        }
        ("GlobalLpPool", NdKind::Lp { p: p as f64 })
    } else {
        ("GlobalMaxPool", NdKind::Max)
    };
    Ok(Op::Dyn(Arc::new(PoolNd {
        name,
        kind,
        kernel: vec![],
        strides: vec![],
        dilations: vec![],
        pads: vec![],
        auto_pad: AutoPad::NotSet,
        ceil_mode: false,
        column_major: false,
        indices: false,
    })))
}

/// Registers the ops of this file (MaxPool and AveragePool come through the legacy import,
/// which builds a [`PoolNd`] where its 2-D pool does not apply).
pub(crate) fn register(r: &mut Registry) {
    r.add("", "LpPool", 2, build_lp);
    r.add("", "GlobalMaxPool", 1, build_global);
    r.add("", "GlobalLpPool", 2, build_global);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Ctx<'static> {
        Ctx {
            node: "n",
            op: "Pool",
            arena: None,
        }
    }

    fn pool(kind: NdKind, k: &[usize], s: &[usize], pads: &[usize], auto: AutoPad) -> PoolNd {
        PoolNd {
            name: "t",
            kind,
            kernel: k.to_vec(),
            strides: s.to_vec(),
            dilations: vec![1; k.len()],
            pads: pads.to_vec(),
            auto_pad: auto,
            ceil_mode: false,
            column_major: false,
            indices: true,
        }
    }

    #[test]
    fn legacy_pools_run_integer_inputs_here() {
        let p = Pool {
            kind: PoolKind::Max,
            kernel: [2, 2],
            stride: [1, 1],
            pads: [0; 4],
            dilation: [1, 1],
            ceil_mode: false,
        };
        let x = Value::from_vec(&[1, 1, 2, 3], vec![1i8, -5, 3, 7, 0, -2]).unwrap();
        let y = super::super::eval(&Op::Pool(p), &[Some(&x)], ctx())
            .unwrap()
            .remove(0);
        assert_eq!(y.dtype(), DType::I8);
        assert_eq!(y.to_i64_vec(), vec![7, 3]);
        // f32 still takes the legacy path, with the same answer.
        let xf = x.cast(DType::F32);
        let yf = super::super::eval(&Op::Pool(p), &[Some(&xf)], ctx())
            .unwrap()
            .remove(0);
        assert_eq!(yf.to_f64_vec(), vec![7.0, 3.0]);
    }

    #[test]
    fn tap_counts_match_a_scan() {
        for start in -7i128..7 {
            for d in 1i128..4 {
                for k in 0i128..5 {
                    for (lo, hi) in [(0i128, 5i128), (-2, 7), (3, 3)] {
                        let hits: Vec<i128> = (0..k)
                            .filter(|j| (lo..hi).contains(&(start + j * d)))
                            .collect();
                        let (j0, c) = count_in(start, d, k, lo, hi);
                        assert_eq!(c as usize, hits.len(), "{start} {d} {k} {lo} {hi}");
                        if c > 0 {
                            assert_eq!(j0, hits[0]);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn one_d_max_with_indices_and_pads() {
        let x = Value::f32(&[1, 2, 4], vec![1.0, 3.0, 2.0, 0.0, -1.0, -5.0, -2.0, -3.0]).unwrap();
        let p = pool(NdKind::Max, &[2], &[2], &[1, 1], AutoPad::NotSet);
        let out = p.run(&[Some(&x)], ctx()).unwrap();
        assert_eq!(out[0].shape(), &[1, 2, 3]);
        assert_eq!(out[0].to_f64_vec(), vec![1.0, 3.0, 0.0, -1.0, -2.0, -3.0]);
        assert_eq!(out[1].to_i64_vec(), vec![0, 1, 3, 4, 6, 7]);
    }

    #[test]
    fn same_upper_and_lower_average_exclude_pad() {
        let x = Value::f32(&[1, 1, 3], vec![1.0, 2.0, 4.0]).unwrap();
        let kind = NdKind::Average {
            count_include_pad: false,
        };
        let up = pool(kind, &[2], &[1], &[0, 0], AutoPad::SameUpper);
        let y = up.run(&[Some(&x)], ctx()).unwrap().remove(0);
        assert_eq!(y.to_f64_vec(), vec![1.5, 3.0, 4.0]);
        let low = pool(kind, &[2], &[1], &[0, 0], AutoPad::SameLower);
        let y = low.run(&[Some(&x)], ctx()).unwrap().remove(0);
        assert_eq!(y.to_f64_vec(), vec![1.0, 1.5, 3.0]);
        let inc = pool(
            NdKind::Average {
                count_include_pad: true,
            },
            &[2],
            &[1],
            &[0, 0],
            AutoPad::SameLower,
        );
        let y = inc.run(&[Some(&x)], ctx()).unwrap().remove(0);
        assert_eq!(y.to_f64_vec(), vec![0.5, 1.5, 3.0]);
    }

    #[test]
    fn three_d_lp_and_u8_max_against_naive() {
        let vals: Vec<f32> = (0..27).map(|v| ((v * 7) % 11) as f32 - 5.0).collect();
        let x = Value::f32(&[1, 1, 3, 3, 3], vals.clone()).unwrap();
        let lp = pool(
            NdKind::Lp { p: 2.0 },
            &[2, 2, 2],
            &[1, 1, 1],
            &[0; 6],
            AutoPad::NotSet,
        );
        let y = lp.run(&[Some(&x)], ctx()).unwrap().remove(0);
        assert_eq!(y.shape(), &[1, 1, 2, 2, 2]);
        let at = |z: usize, r: usize, c: usize| vals[z * 9 + r * 3 + c] as f64;
        let want00 = (0..8)
            .map(|i| at(i >> 2, (i >> 1) & 1, i & 1).powi(2))
            .sum::<f64>()
            .sqrt();
        assert!((y.to_f64_vec()[0] - want00).abs() < 1e-5);
        let u = x.cast(DType::F32).to_f64_vec();
        let xu = Value::from_vec(
            &[1, 1, 3, 3, 3],
            u.iter().map(|&v| (v + 5.0) as u8).collect(),
        )
        .unwrap();
        let mx = pool(
            NdKind::Max,
            &[3, 3, 3],
            &[1, 1, 1],
            &[0; 6],
            AutoPad::NotSet,
        );
        let out = mx.run(&[Some(&xu)], ctx()).unwrap();
        assert_eq!(out[0].dtype(), DType::U8);
        assert_eq!(out[0].to_i64_vec(), vec![10]);
        let first = u.iter().position(|&v| v == 5.0).unwrap() as i64;
        assert_eq!(out[1].to_i64_vec(), vec![first]);
    }

    #[test]
    fn global_max_column_major_indices_and_errors() {
        let x = Value::f32(&[1, 1, 2, 3], vec![0.0, 9.0, 1.0, 2.0, 3.0, 4.0]).unwrap();
        let mut g = pool(NdKind::Max, &[], &[], &[], AutoPad::NotSet);
        let y = g.run(&[Some(&x)], ctx()).unwrap();
        assert_eq!(y[0].shape(), &[1, 1, 1, 1]);
        assert_eq!(y[0].to_f64_vec(), vec![9.0]);
        assert_eq!(y[1].to_i64_vec(), vec![1]);
        g.kernel = vec![2, 3];
        g.strides = vec![1, 1];
        g.dilations = vec![1, 1];
        g.pads = vec![0; 4];
        g.column_major = true;
        // (h 0, w 1) column-major: 0 + 1 * 2.
        assert_eq!(g.run(&[Some(&x)], ctx()).unwrap()[1].to_i64_vec(), vec![2]);
        let small = Value::f32(&[1, 1, 1, 1], vec![0.0]).unwrap();
        assert!(g.run(&[Some(&small)], ctx()).is_err());
        let flat = Value::f32(&[3], vec![0.0; 3]).unwrap();
        assert!(g.run(&[Some(&flat)], ctx()).is_err());
        let ints = Value::from_vec(&[1, 1, 2, 3], vec![0i64; 6]).unwrap();
        assert!(g.run(&[Some(&ints)], ctx()).is_err());
        let e = Value::f32(&[0, 1, 2, 3], vec![]).unwrap();
        assert_eq!(g.run(&[Some(&e)], ctx()).unwrap()[0].shape(), &[0, 1, 1, 1]);
    }
}
