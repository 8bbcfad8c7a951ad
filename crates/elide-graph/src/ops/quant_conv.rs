//! The quantized convolutions ConvInteger and QLinearConv: N-d (any number of spatial
//! axes), grouped, dilated, strided, explicit or SAME/VALID auto_pad, as a direct loop in
//! wrapping i64 (a reference path: correct first, not fast). Zero points are per tensor for
//! `x`, per tensor or per output channel for `w`; QLinearConv requantizes with
//! `x_scale w_scale / y_scale` (w_scale per tensor or per output channel) and rounds half
//! to even, saturating to the output type.
use super::operator::Operator;
use super::typed::{input, FLOATS};
use super::{Ctx, Op};
use crate::onnx::registry::{NodeCtx, Registry};
use crate::{DType, Result, Value};
use std::sync::Arc;

/// The convolution's geometry, from its attributes.
#[derive(Clone, Debug)]
pub struct QConv {
    /// QLinearConv (true) or ConvInteger.
    qlinear: bool,
    /// `kernel_shape` (None: from the weights).
    kernel: Option<Vec<usize>>,
    strides: Option<Vec<usize>>,
    dilations: Option<Vec<usize>>,
    /// Explicit `[begin..., end...]` (None: zeros).
    pads: Option<Vec<usize>>,
    /// "NOTSET", "VALID", "SAME_UPPER" or "SAME_LOWER".
    auto_pad: String,
    group: usize,
}

/// The u8/i8 range of a quantized type.
fn range(t: DType) -> Option<(i64, i64)> {
    match t {
        DType::U8 => Some((0, 255)),
        DType::I8 => Some((-128, 127)),
        _ => None,
    }
}

/// Checks a u8/i8 operand.
fn int8<'v>(inputs: &[Option<&'v Value>], i: usize, ctx: Ctx) -> Result<&'v Value> {
    input(inputs, i, &[DType::U8, DType::I8], ctx)
}

/// A per-tensor (`len` 1) or per-channel (`len` = `m`) parameter's values.
fn per_channel(v: &Value, m: usize, what: &str, ctx: Ctx) -> Result<Vec<f64>> {
    if v.len() == 1 && v.shape().len() <= 1 {
        return Ok(vec![v.to_f64_vec()[0]; m]);
    }
    if v.shape() == [m] {
        return Ok(v.to_f64_vec());
    }
    Err(ctx.err(format!(
        "{what} {:?}: needs a scalar or {m} values",
        v.shape()
    )))
}

impl QConv {
    /// `(x - x_zp) * (w - w_zp)` convolved: the output shape and its i64 values.
    fn integer_conv(
        &self,
        x: &Value,
        xzp: Option<&Value>,
        w: &Value,
        wzp: Option<&Value>,
        ctx: Ctx,
    ) -> Result<(Vec<usize>, Vec<i64>)> {
        let (xs, ws) = (x.shape(), w.shape());
        if xs.len() < 3 || ws.len() != xs.len() {
            return Err(ctx.err(format!("x {xs:?} and w {ws:?}: need [N, C, ...] alike")));
        }
        let sp = xs.len() - 2;
        let (n, c, m, cg) = (xs[0], xs[1], ws[0], ws[1]);
        let g = self.group;
        if g == 0 || cg * g != c || m % g != 0 {
            return Err(ctx.err(format!(
                "x {xs:?}, w {ws:?}, group {g}: channels do not split into groups"
            )));
        }
        let kernel = &ws[2..];
        if let Some(k) = &self.kernel {
            if k.as_slice() != kernel {
                return Err(ctx.err(format!("kernel_shape {k:?} but w {ws:?}")));
            }
        }
        let get =
            |v: &Option<Vec<usize>>, len: usize, d: usize, what: &str| -> Result<Vec<usize>> {
                match v {
                    None => Ok(vec![d; len]),
                    Some(v) if v.len() == len => Ok(v.clone()),
                    Some(v) => Err(ctx.err(format!("{what} {v:?}: needs {len} values"))),
                }
            };
        let strides = get(&self.strides, sp, 1, "strides")?;
        let dil = get(&self.dilations, sp, 1, "dilations")?;
        let pads = get(&self.pads, 2 * sp, 0, "pads")?;
        if strides.contains(&0) || dil.contains(&0) {
            return Err(ctx.err(format!("strides {strides:?} / dilations {dil:?} hold 0")));
        }
        // Per spatial axis: output length and leading pad.
        let mut out_sp = Vec::with_capacity(sp);
        let mut lead = Vec::with_capacity(sp);
        for i in 0..sp {
            let (len, s) = (xs[i + 2] as u128, strides[i] as u128);
            let span = (kernel[i] as u128).saturating_sub(1) * dil[i] as u128 + 1;
            let (out, pb) = match self.auto_pad.as_str() {
                "SAME_UPPER" | "SAME_LOWER" => {
                    let out = len.div_ceil(s);
                    let total = (out.saturating_sub(1) * s + span).saturating_sub(len);
                    let pb = if self.auto_pad == "SAME_UPPER" {
                        total / 2
                    } else {
                        total - total / 2
                    };
                    (out, pb)
                }
                mode => {
                    let (pb, pe) = if mode == "VALID" {
                        (0, 0)
                    } else {
                        (pads[i] as u128, pads[i + sp] as u128)
                    };
                    let padded = len + pb + pe;
                    let out = if padded < span {
                        0
                    } else {
                        (padded - span) / s + 1
                    };
                    (out, pb)
                }
            };
            out_sp.push(out);
            lead.push(pb);
        }
        let mut dims: Vec<u128> = vec![n as u128, m as u128];
        dims.extend(&out_sp);
        let out_shape = ctx.sized_wide("output", &dims)?;
        let out_sp = &out_shape[2..];
        let xzero = match xzp {
            None => 0,
            Some(z) if z.len() == 1 && z.dtype() == x.dtype() => z.to_i64_vec()[0],
            Some(z) => {
                return Err(ctx.err(format!(
                    "x zero point {} {:?}: needs one {} value",
                    z.dtype(),
                    z.shape(),
                    x.dtype()
                )))
            }
        };
        let wzero: Vec<i64> = match wzp {
            None => vec![0; m],
            Some(z) if z.dtype() == w.dtype() => per_channel(z, m, "w zero point", ctx)?
                .into_iter()
                .map(|v| v as i64)
                .collect(),
            Some(z) => {
                return Err(ctx.err(format!(
                    "w zero point is {} but w is {}",
                    z.dtype(),
                    w.dtype()
                )))
            }
        };
        let xv: Vec<i64> = x.to_i64_vec().into_iter().map(|v| v - xzero).collect();
        let wv = w.to_i64_vec();
        let plane: usize = xs[2..].iter().product();
        let kvol: usize = kernel.iter().product();
        let mg = m / g;
        let mut row = vec![1usize; sp];
        for i in (0..sp.saturating_sub(1)).rev() {
            row[i] = row[i + 1] * xs[i + 3];
        }
        let total: usize = out_shape.iter().product();
        let mut out = Vec::with_capacity(total);
        let out_plane: usize = out_sp.iter().product();
        for b in 0..n {
            for (oc, &wz) in wzero.iter().enumerate() {
                let grp = oc / mg;
                if out_plane == 0 {
                    continue;
                }
                let mut o = vec![0usize; sp];
                loop {
                    let mut acc = 0i64;
                    for ic in 0..cg {
                        let xbase = (b * c + grp * cg + ic) * plane;
                        let wbase = (oc * cg + ic) * kvol;
                        let mut t = vec![0usize; sp];
                        for kk in 0..kvol {
                            let mut off = Some(0usize);
                            for a in 0..sp {
                                let pos =
                                    (o[a] * strides[a] + t[a] * dil[a]) as i128 - lead[a] as i128;
                                off = match off {
                                    Some(f) if pos >= 0 && (pos as usize) < xs[a + 2] => {
                                        Some(f + pos as usize * row[a])
                                    }
                                    _ => None,
                                };
                            }
                            if let Some(f) = off {
                                let xval = xv.get(xbase + f).copied().unwrap_or(0);
                                let wval = wv.get(wbase + kk).copied().unwrap_or(0) - wz;
                                acc = acc.wrapping_add(xval.wrapping_mul(wval));
                            }
                            for d in (0..sp).rev() {
                                t[d] += 1;
                                if t[d] < kernel[d] {
                                    break;
                                }
                                t[d] = 0;
                            }
                        }
                    }
                    out.push(acc);
                    let mut more = false;
                    for d in (0..sp).rev() {
                        o[d] += 1;
                        if o[d] < out_sp[d] {
                            more = true;
                            break;
                        }
                        o[d] = 0;
                    }
                    if !more {
                        break;
                    }
                }
            }
        }
        Ok((out_shape, out))
    }
}

impl Operator for QConv {
    fn name(&self) -> &'static str {
        if self.qlinear {
            "QLinearConv"
        } else {
            "ConvInteger"
        }
    }

    fn run(&self, inputs: &[Option<&Value>], ctx: Ctx) -> Result<Vec<Value>> {
        let opt = |i: usize| inputs.get(i).copied().flatten();
        if !self.qlinear {
            let (x, w) = (int8(inputs, 0, ctx)?, int8(inputs, 1, ctx)?);
            let (shape, y) = self.integer_conv(x, opt(2), w, opt(3), ctx)?;
            let y: Vec<i32> = y.into_iter().map(|v| v as i32).collect();
            return Ok(vec![Value::from_vec(&shape, y)?]);
        }
        let (x, w) = (int8(inputs, 0, ctx)?, int8(inputs, 3, ctx)?);
        let (shape, mut y) = self.integer_conv(x, opt(2), w, opt(5), ctx)?;
        let m = w.shape()[0];
        let x_scale = input(inputs, 1, &FLOATS, ctx)?;
        let w_scale = input(inputs, 4, &FLOATS, ctx)?;
        let y_scale = input(inputs, 6, &FLOATS, ctx)?;
        let xs = per_channel(x_scale, 1, "x_scale", ctx)?[0];
        let ys = per_channel(y_scale, 1, "y_scale", ctx)?[0];
        let ws = per_channel(w_scale, m, "w_scale", ctx)?;
        let yzp = opt(7);
        let out = yzp.map_or(x.dtype(), |z| z.dtype());
        let (lo, hi) =
            range(out).ok_or_else(|| ctx.err(format!("output type {out} is not u8 or i8")))?;
        let yz = match yzp {
            Some(z) => per_channel(z, 1, "y_zero_point", ctx)?[0],
            None => 0.0,
        };
        let bias = match opt(8) {
            Some(b) if b.dtype() == DType::I32 && b.shape() == [m] => b.to_i64_vec(),
            Some(b) => {
                return Err(ctx.err(format!(
                    "bias {} {:?}: needs {m} i32 values",
                    b.dtype(),
                    b.shape()
                )))
            }
            None => vec![0; m],
        };
        let per: usize = shape[2..].iter().product::<usize>().max(1);
        for (i, v) in y.iter_mut().enumerate() {
            let oc = (i / per) % m.max(1);
            let acc = v.wrapping_add(bias.get(oc).copied().unwrap_or(0));
            let mult = (xs as f32 * ws.get(oc).copied().unwrap_or(0.0) as f32) / ys as f32;
            let r = (acc as f64 * mult as f64 + yz).round_ties_even();
            *v = (r.clamp(-1e18, 1e18) as i64).clamp(lo, hi);
        }
        Ok(vec![Value::from_vec(&shape, y)?.cast(out)])
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

fn build(n: &NodeCtx) -> Result<Op> {
    let qlinear = n.node.op_type == "QLinearConv";
    let a = n.attrs(&[
        "auto_pad",
        "dilations",
        "group",
        "kernel_shape",
        "pads",
        "strides",
    ])?;
    if qlinear {
        n.arity((8, 9), (1, 1))?;
    } else {
        n.arity((2, 4), (1, 1))?;
    }
    let auto_pad = a.string("auto_pad", "NOTSET");
    if !matches!(
        auto_pad.as_str(),
        "NOTSET" | "VALID" | "SAME_UPPER" | "SAME_LOWER"
    ) {
        return Err(a.unsupported(format!("auto_pad {auto_pad}")));
    }
    let group = a.int("group", 1);
    if group < 1 {
        return Err(n.err(format!("group {group}: groups must be at least 1")));
    }
    let opt = |name: &str| -> Result<Option<Vec<usize>>> {
        Ok(match a.ints(name) {
            None => None,
            Some(_) => Some(a.sizes(name, vec![])?),
        })
    };
    let big = super::MAX_ELEMENTS;
    let q = QConv {
        qlinear,
        kernel: opt("kernel_shape")?,
        strides: opt("strides")?,
        dilations: opt("dilations")?,
        pads: opt("pads")?,
        auto_pad,
        group: group as usize,
    };
    for v in [&q.kernel, &q.strides, &q.dilations, &q.pads]
        .into_iter()
        .flatten()
    {
        if v.iter().any(|&x| x > big) {
            return Err(n.err(format!("{v:?} exceeds {big}")));
        }
    }
    if group as u128 > big as u128 {
        return Err(n.err(format!("group {group} exceeds {big}")));
    }
    Ok(Op::Dyn(Arc::new(q)))
}

/// Registers the ops of this file.
pub(crate) fn register(r: &mut Registry) {
    r.add("", "ConvInteger", 10, build);
    r.add("", "QLinearConv", 10, build);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Ctx<'static> {
        Ctx {
            node: "n",
            op: "QConv",
            arena: None,
        }
    }

    fn conv(qlinear: bool) -> QConv {
        QConv {
            qlinear,
            kernel: None,
            strides: None,
            dilations: None,
            pads: None,
            auto_pad: "NOTSET".into(),
            group: 1,
        }
    }

    /// Naive 2-D single-channel correlation with zero padding `p`.
    fn naive(x: &[i64], h: usize, w: &[i64], k: usize, p: usize) -> Vec<i64> {
        let o = h + 2 * p - k + 1;
        let mut y = vec![];
        for i in 0..o {
            for j in 0..o {
                let mut s = 0;
                for a in 0..k {
                    for b in 0..k {
                        let (r, c) = ((i + a) as i64 - p as i64, (j + b) as i64 - p as i64);
                        if r >= 0 && c >= 0 && (r as usize) < h && (c as usize) < h {
                            s += x[r as usize * h + c as usize] * w[a * k + b];
                        }
                    }
                }
                y.push(s);
            }
        }
        y
    }

    #[test]
    fn conv_integer_matches_naive_with_zero_points_and_padding() {
        let xs: Vec<u8> = (0..16).map(|v| (v * 13 % 17) as u8).collect();
        let ws: Vec<u8> = (0..9).map(|v| (v * 5 % 7) as u8).collect();
        let x = Value::from_vec(&[1, 1, 4, 4], xs.clone()).unwrap();
        let w = Value::from_vec(&[1, 1, 3, 3], ws.clone()).unwrap();
        let xz = Value::from_vec(&[], vec![3u8]).unwrap();
        let wz = Value::from_vec(&[1], vec![2u8]).unwrap();
        let mut c = conv(false);
        c.pads = Some(vec![1, 1, 1, 1]);
        let y = c
            .run(&[Some(&x), Some(&w), Some(&xz), Some(&wz)], ctx())
            .unwrap()
            .remove(0);
        assert_eq!(y.dtype(), DType::I32);
        assert_eq!(y.shape(), &[1, 1, 4, 4]);
        let xi: Vec<i64> = xs.iter().map(|&v| v as i64 - 3).collect();
        let wi: Vec<i64> = ws.iter().map(|&v| v as i64 - 2).collect();
        assert_eq!(y.to_i64_vec(), naive(&xi, 4, &wi, 3, 1));
        // SAME_UPPER with stride 1 gives the same answer.
        let mut s = conv(false);
        s.auto_pad = "SAME_UPPER".into();
        let y2 = s
            .run(&[Some(&x), Some(&w), Some(&xz), Some(&wz)], ctx())
            .unwrap()
            .remove(0);
        assert_eq!(y2, y);
    }

    #[test]
    fn one_d_groups_and_errors() {
        // Two groups, one channel each: each output channel sees its own input channel.
        let x = Value::from_vec(&[1, 2, 3], vec![1i8, 2, 3, 10, 20, 30]).unwrap();
        let w = Value::from_vec(&[2, 1, 2], vec![1i8, 1, 1, -1]).unwrap();
        let mut c = conv(false);
        c.group = 2;
        let y = c.run(&[Some(&x), Some(&w)], ctx()).unwrap().remove(0);
        assert_eq!(y.to_i64_vec(), vec![3, 5, -10, -10]);
        c.group = 3;
        assert!(c.run(&[Some(&x), Some(&w)], ctx()).is_err());
        let f = Value::f32(&[1, 2, 3], vec![0.0; 6]).unwrap();
        assert!(conv(false).run(&[Some(&f), Some(&w)], ctx()).is_err());
        let e = Value::from_vec(&[0, 2, 3], Vec::<i8>::new()).unwrap();
        let mut c = conv(false);
        c.group = 2;
        assert_eq!(
            c.run(&[Some(&e), Some(&w)], ctx()).unwrap()[0].shape(),
            &[0, 2, 2]
        );
    }

    #[test]
    fn qlinear_conv_requantizes_with_bias_and_per_channel_scale() {
        let x = Value::from_vec(&[1, 1, 1, 2], vec![10u8, 20]).unwrap();
        let w = Value::from_vec(&[2, 1, 1, 1], vec![1u8, 2]).unwrap();
        let one = Value::f32(&[], vec![1.0]).unwrap();
        let z = Value::from_vec(&[], vec![0u8]).unwrap();
        let ws = Value::f32(&[2], vec![0.5, 0.25]).unwrap();
        let b = Value::from_vec(&[2], vec![1i32, -2]).unwrap();
        let ins = [
            Some(&x),
            Some(&one),
            Some(&z),
            Some(&w),
            Some(&ws),
            Some(&z),
            Some(&one),
            Some(&z),
            Some(&b),
        ];
        let y = conv(true).run(&ins, ctx()).unwrap().remove(0);
        // ch0: (10+1)*0.5 = 5.5 -> 6, (20+1)*0.5 = 10.5 -> 10; ch1: (20-2)/4 = 4.5 -> 4, 38/4 = 9.5 -> 10.
        assert_eq!(y.to_i64_vec(), vec![6, 10, 4, 10]);
        assert_eq!(y.dtype(), DType::U8);
    }
}
