//! ONNX Attention (opset 23/24): scaled dot-product attention over 4-D `[B, heads, S, H]` or
//! 3-D `[B, S, heads * H]` inputs, with grouped-query attention, an optional boolean or
//! additive mask, a key/value cache (past and present), causal masking, soft-capping and the
//! `qk_matmul_output_mode` intermediate. Computed in f64 and rounded once to the input type.
//!
//! The order of operations is the ONNX reference's: `scores = (Q K^T) * scale`, plus the
//! bias (mask, causal, padding), then soft-capping, then softmax (a fully masked row gives
//! NaN, as the reference's `exp(-inf - -inf)` does), then the product with V.
use super::operator::Operator;
use super::typed::{input, FLOATS};
use super::{Ctx, Op};
use crate::onnx::registry::{NodeCtx, Registry};
use crate::{DType, Result, Value};
use std::sync::Arc;

/// The Attention op's attributes.
#[derive(Clone, Debug)]
pub struct Attention {
    /// Mask keys after the query's position (offset by the past length).
    is_causal: bool,
    /// Heads of Q for 3-D inputs.
    q_num_heads: Option<usize>,
    /// Heads of K and V for 3-D inputs.
    kv_num_heads: Option<usize>,
    /// Which intermediate the 4th output holds (0: Q K^T scaled, 1: plus bias, 2: after
    /// soft-capping, 3: after softmax).
    mode: i64,
    /// The score scale (default `1 / sqrt(head size)`).
    scale: Option<f64>,
    /// Soft-capping of the scores (`cap * tanh(s / cap)`) when positive.
    softcap: f64,
    /// Outputs the node declares.
    n_out: usize,
}

/// A tensor as f64 in [B, heads, S, H] layout with its dims.
struct Heads {
    data: Vec<f64>,
    b: usize,
    h: usize,
    s: usize,
    d: usize,
}

impl Heads {
    fn at(&self, b: usize, h: usize, s: usize) -> &[f64] {
        let o = ((b * self.h + h) * self.s + s) * self.d;
        &self.data[o..o + self.d]
    }
}

/// Input `v` as [B, heads, S, H]: 4-D as is, 3-D `[B, S, heads * H]` split into `heads`.
fn to_heads(v: &Value, heads: Option<usize>, what: &str, ctx: Ctx) -> Result<Heads> {
    let sh = v.shape();
    let data = v.to_f64_vec();
    match *sh {
        [b, h, s, d] => Ok(Heads { data, b, h, s, d }),
        [b, s, hid] => {
            let h = heads.ok_or_else(|| {
                ctx.err(format!(
                    "3-D {what} needs the q_num_heads/kv_num_heads attribute"
                ))
            })?;
            if h == 0 || !hid.is_multiple_of(h) {
                return Err(ctx.err(format!(
                    "{what}'s hidden size {hid} is not a multiple of {h} heads"
                )));
            }
            let d = hid / h;
            let mut out = vec![0.0; data.len()];
            for bi in 0..b {
                for si in 0..s {
                    for hi in 0..h {
                        for di in 0..d {
                            out[((bi * h + hi) * s + si) * d + di] =
                                data[(bi * s + si) * hid + hi * d + di];
                        }
                    }
                }
            }
            Ok(Heads {
                data: out,
                b,
                h,
                s,
                d,
            })
        }
        _ => Err(ctx.err(format!(
            "{what} has shape {sh:?}; Attention takes 3-D or 4-D"
        ))),
    }
}

/// `past` (4-D, may be absent) and `cur` concatenated along the sequence axis.
fn concat_past(past: Option<&Value>, cur: Heads, what: &str, ctx: Ctx) -> Result<Heads> {
    let Some(p) = past else { return Ok(cur) };
    let ps = p.shape();
    if ps.len() != 4 || ps[0] != cur.b || ps[1] != cur.h || ps[3] != cur.d {
        return Err(ctx.err(format!(
            "{what} has shape {ps:?}; expected [{}, {}, past, {}]",
            cur.b, cur.h, cur.d
        )));
    }
    let pd = p.to_f64_vec();
    let (ps_len, s) = (ps[2], ps[2] + cur.s);
    ctx.sized("present", &[cur.b, cur.h, s, cur.d])?;
    let mut data = Vec::with_capacity(cur.b * cur.h * s * cur.d);
    for bh in 0..cur.b * cur.h {
        data.extend_from_slice(&pd[bh * ps_len * cur.d..(bh + 1) * ps_len * cur.d]);
        data.extend_from_slice(&cur.data[bh * cur.s * cur.d..(bh + 1) * cur.s * cur.d]);
    }
    Ok(Heads { data, s, ..cur })
}

/// The additive bias of `[b, hq, sq, t]` from the mask input (bool: false is `-inf`; its last
/// axis shorter than `t` is padded with `-inf`), broadcast numpy-style.
fn mask_bias(m: &Value, dims: [usize; 4], ctx: Ctx) -> Result<Vec<f64>> {
    let sh = m.shape();
    if sh.is_empty() || sh.len() > 4 {
        return Err(ctx.err(format!("attn_mask has shape {sh:?}; expected 1-D to 4-D")));
    }
    let bool_mask = m.dtype() == DType::Bool;
    let vals: Vec<f64> = m
        .to_f64_vec()
        .into_iter()
        .map(|x| match (bool_mask, x != 0.0) {
            (true, true) => 0.0,
            (true, false) => f64::NEG_INFINITY,
            _ => x,
        })
        .collect();
    let mut ms = [1usize; 4];
    ms[4 - sh.len()..].copy_from_slice(sh);
    if ms[3] > dims[3] {
        return Err(ctx.err(format!(
            "attn_mask's last axis {} is longer than the {} keys",
            ms[3], dims[3]
        )));
    }
    for (&m, &want) in ms.iter().zip(&dims).take(3) {
        if m != 1 && m != want {
            return Err(ctx.err(format!(
                "attn_mask of shape {sh:?} does not broadcast to {dims:?}"
            )));
        }
    }
    let [b, h, q, t] = dims;
    let mut out = vec![0.0; b * h * q * t];
    let pick = |i: usize, n: usize| if n == 1 { 0 } else { i };
    for bi in 0..b {
        for hi in 0..h {
            for qi in 0..q {
                let row =
                    ((pick(bi, ms[0]) * ms[1] + pick(hi, ms[1])) * ms[2] + pick(qi, ms[2])) * ms[3];
                let o = ((bi * h + hi) * q + qi) * t;
                for ti in 0..t {
                    out[o + ti] = if ti < ms[3] {
                        vals[row + ti]
                    } else {
                        f64::NEG_INFINITY
                    };
                }
            }
        }
    }
    Ok(out)
}

impl Operator for Attention {
    fn name(&self) -> &'static str {
        "Attention"
    }

    fn run(&self, inputs: &[Option<&Value>], ctx: Ctx) -> Result<Vec<Value>> {
        let qv = input(inputs, 0, &FLOATS, ctx)?;
        let kv = input(inputs, 1, &FLOATS, ctx)?;
        let vv = input(inputs, 2, &FLOATS, ctx)?;
        let ranks = (qv.shape().len(), kv.shape().len(), vv.shape().len());
        if ranks.0 != ranks.1 || ranks.0 != ranks.2 {
            return Err(ctx.err(format!("Q, K, V have ranks {ranks:?}; they must agree")));
        }
        let three_d = ranks.0 == 3;
        let opt = |i: usize| inputs.get(i).copied().flatten();
        let q = to_heads(qv, self.q_num_heads, "Q", ctx)?;
        let k = to_heads(kv, self.kv_num_heads, "K", ctx)?;
        let v = to_heads(vv, self.kv_num_heads, "V", ctx)?;
        if k.b != q.b || v.b != q.b || k.d != q.d || v.h != k.h || v.s != k.s {
            return Err(ctx.err(format!(
                "Q, K, V shapes {:?}, {:?}, {:?} do not agree",
                qv.shape(),
                kv.shape(),
                vv.shape()
            )));
        }
        if k.h == 0 || !q.h.is_multiple_of(k.h) {
            return Err(ctx.err(format!(
                "{} query heads are not a multiple of {} key/value heads",
                q.h, k.h
            )));
        }
        let past_len = opt(4).map_or(0, |p| p.shape().get(2).copied().unwrap_or(0));
        let k = concat_past(opt(4), k, "past_key", ctx)?;
        let v = concat_past(opt(5), v, "past_value", ctx)?;
        let (b, hq, sq, d, t, dv) = (q.b, q.h, q.s, q.d, k.s, v.d);
        let group = hq / k.h;
        let dims = [b, hq, sq, t];
        ctx.sized("scores", &dims)?;
        ctx.sized("output", &[b, hq, sq, dv])?;
        let mut bias = match opt(3) {
            Some(m) => mask_bias(m, dims, ctx)?,
            None => vec![0.0; b * hq * sq * t],
        };
        if self.is_causal {
            for bh in 0..b * hq {
                for qi in 0..sq {
                    for ti in (qi + past_len + 1).min(t)..t {
                        bias[(bh * sq + qi) * t + ti] += f64::NEG_INFINITY;
                    }
                }
            }
        }
        if let Some(n) = opt(6) {
            let lens = n.to_i64_vec();
            if !matches!(n.dtype(), DType::I64 | DType::I32) || lens.len() != b {
                return Err(ctx.err(format!(
                    "nonpad_kv_seqlen is {} of shape {:?}; expected int64 [{b}]",
                    n.dtype(),
                    n.shape()
                )));
            }
            for (bi, &len) in lens.iter().enumerate() {
                let len = len.clamp(0, t as i64) as usize;
                for r in 0..hq * sq {
                    for ti in len..t {
                        bias[(bi * hq * sq + r) * t + ti] += f64::NEG_INFINITY;
                    }
                }
            }
        }
        let scale = self.scale.unwrap_or(1.0 / (d as f64).sqrt());
        let mut qk_out = vec![0.0; b * hq * sq * t];
        let mut y = vec![0.0; b * hq * sq * dv];
        let mut row = vec![0.0; t];
        for bi in 0..b {
            for hi in 0..hq {
                let kh = hi / group;
                for qi in 0..sq {
                    let qrow = q.at(bi, hi, qi);
                    let o = ((bi * hq + hi) * sq + qi) * t;
                    for (ti, r) in row.iter_mut().enumerate() {
                        let dot: f64 = qrow.iter().zip(k.at(bi, kh, ti)).map(|(a, b)| a * b).sum();
                        let s = dot * scale;
                        let mut x = s + bias[o + ti];
                        let after_bias = x;
                        if self.softcap > 0.0 {
                            x = self.softcap * (x / self.softcap).tanh();
                        }
                        qk_out[o + ti] = match self.mode {
                            0 => s,
                            1 => after_bias,
                            _ => x,
                        };
                        *r = x;
                    }
                    let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    let mut sum = 0.0;
                    for r in row.iter_mut() {
                        *r = (*r - max).exp();
                        sum += *r;
                    }
                    for r in row.iter_mut() {
                        *r /= sum;
                    }
                    if self.mode == 3 {
                        qk_out[o..o + t].copy_from_slice(&row);
                    }
                    let yo = ((bi * hq + hi) * sq + qi) * dv;
                    for (ti, &p) in row.iter().enumerate() {
                        for (yy, &vv) in y[yo..yo + dv].iter_mut().zip(v.at(bi, kh, ti)) {
                            *yy += p * vv;
                        }
                    }
                }
            }
        }
        let dt = qv.dtype();
        let y = if three_d {
            let mut out = vec![0.0; y.len()];
            for bi in 0..b {
                for hi in 0..hq {
                    for qi in 0..sq {
                        let src = ((bi * hq + hi) * sq + qi) * dv;
                        let dst = (bi * sq + qi) * hq * dv + hi * dv;
                        out[dst..dst + dv].copy_from_slice(&y[src..src + dv]);
                    }
                }
            }
            Value::from_vec(&[b, sq, hq * dv], out)?
        } else {
            Value::from_vec(&[b, hq, sq, dv], y)?
        };
        let mut outs = vec![y.cast(dt)];
        if self.n_out > 1 {
            outs.push(Value::from_vec(&[k.b, k.h, k.s, k.d], k.data)?.cast(kv.dtype()));
        }
        if self.n_out > 2 {
            outs.push(Value::from_vec(&[v.b, v.h, v.s, v.d], v.data)?.cast(vv.dtype()));
        }
        if self.n_out > 3 {
            outs.push(Value::from_vec(&dims, qk_out)?.cast(dt));
        }
        Ok(outs)
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

fn build_attention(n: &NodeCtx) -> Result<Op> {
    let a = n.attrs(&[
        "is_causal",
        "kv_num_heads",
        "q_num_heads",
        "qk_matmul_output_mode",
        "scale",
        "softcap",
        "softmax_precision",
    ])?;
    n.arity((3, if n.opset >= 24 { 7 } else { 6 }), (1, 4))?;
    let heads = |name: &str| -> Result<Option<usize>> {
        match a.raw(name) {
            None => Ok(None),
            Some(_) => match usize::try_from(a.int(name, 0)) {
                Ok(h) if h > 0 => Ok(Some(h)),
                _ => Err(a.unsupported(format!("{name} = {}", a.int(name, 0)))),
            },
        }
    };
    let mode = a.int("qk_matmul_output_mode", 0);
    if !(0..=3).contains(&mode) {
        return Err(a.unsupported(format!("qk_matmul_output_mode = {mode}")));
    }
    // softmax_precision asks for at least that precision; f64 is at least any float type.
    let sp = a.int("softmax_precision", 1);
    if ![1, 10, 11, 16].contains(&sp) {
        return Err(a.unsupported(format!("softmax_precision = {sp}")));
    }
    Ok(Op::Dyn(Arc::new(Attention {
        is_causal: a.int("is_causal", 0) != 0,
        q_num_heads: heads("q_num_heads")?,
        kv_num_heads: heads("kv_num_heads")?,
        mode,
        scale: a.raw("scale").map(|_| a.float("scale", 1.0) as f64),
        softcap: a.float("softcap", 0.0) as f64,
        n_out: n.node.output.len(),
    })))
}

/// Registers Attention.
pub(crate) fn register(r: &mut Registry) {
    r.add("", "Attention", 23, build_attention);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Ctx<'static> {
        Ctx {
            node: "n",
            op: "Attention",
            arena: None,
        }
    }

    fn op() -> Attention {
        Attention {
            is_causal: false,
            q_num_heads: None,
            kv_num_heads: None,
            mode: 0,
            scale: None,
            softcap: 0.0,
            n_out: 4,
        }
    }

    fn val(shape: &[usize], seed: u64) -> Value {
        let n: usize = shape.iter().product();
        let data = (0..n)
            .map(|i| (((i as u64 * 2654435761 + seed * 97) % 1000) as f32 / 500.0) - 1.0)
            .collect();
        Value::f32(shape, data).unwrap()
    }

    /// Naive attention on 4-D f64 arrays with an additive bias [b,hq,sq,t].
    fn naive(q: &[f64], k: &[f64], v: &[f64], dims: [usize; 6], bias: &[f64]) -> Vec<f64> {
        let [b, hq, hk, sq, t, d] = dims;
        let mut y = vec![0.0; b * hq * sq * d];
        for bi in 0..b {
            for h in 0..hq {
                let kh = h / (hq / hk);
                for i in 0..sq {
                    let mut s: Vec<f64> = (0..t)
                        .map(|j| {
                            (0..d)
                                .map(|x| {
                                    q[((bi * hq + h) * sq + i) * d + x]
                                        * k[((bi * hk + kh) * t + j) * d + x]
                                })
                                .sum::<f64>()
                                / (d as f64).sqrt()
                                + bias[((bi * hq + h) * sq + i) * t + j]
                        })
                        .collect();
                    let m = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    let z: f64 = s.iter().map(|x| (x - m).exp()).sum();
                    s.iter_mut().for_each(|x| *x = (*x - m).exp() / z);
                    for x in 0..d {
                        y[((bi * hq + h) * sq + i) * d + x] = (0..t)
                            .map(|j| s[j] * v[((bi * hk + kh) * t + j) * d + x])
                            .sum();
                    }
                }
            }
        }
        y
    }

    fn close(a: &[f64], b: &[f64]) {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            assert!(
                (x - y).abs() < 1e-5 || (x.is_nan() && y.is_nan()),
                "{x} vs {y}"
            );
        }
    }

    #[test]
    fn gqa_causal_matches_naive() {
        let (q, k, v) = (
            val(&[2, 4, 3, 5], 1),
            val(&[2, 2, 3, 5], 2),
            val(&[2, 2, 3, 5], 3),
        );
        let a = Attention {
            is_causal: true,
            ..op()
        };
        let out = a.run(&[Some(&q), Some(&k), Some(&v)], ctx()).unwrap();
        assert_eq!(out.len(), 4);
        assert_eq!(out[0].shape(), &[2, 4, 3, 5]);
        let mut bias = vec![0.0; 2 * 4 * 3 * 3];
        for r in 0..8 {
            for i in 0..3 {
                for j in i + 1..3 {
                    bias[(r * 3 + i) * 3 + j] = f64::NEG_INFINITY;
                }
            }
        }
        let want = naive(
            &q.to_f64_vec(),
            &k.to_f64_vec(),
            &v.to_f64_vec(),
            [2, 4, 2, 3, 3, 5],
            &bias,
        );
        close(&out[0].to_f64_vec(), &want);
    }

    #[test]
    fn three_d_bool_mask_and_past() {
        // 3-D with 2 heads of size 2, one query, a past of 2 keys, and a bool mask over 2
        // of the 3 keys (the new key is padded out as masked): only past key 0 is attended.
        let q = val(&[1, 1, 4], 4);
        let k = val(&[1, 1, 4], 5);
        let v = val(&[1, 1, 4], 6);
        let pk = val(&[1, 2, 2, 2], 7);
        let pv = val(&[1, 2, 2, 2], 8);
        let m = Value::from_vec(&[1, 2], vec![true, false]).unwrap();
        let a = Attention {
            q_num_heads: Some(2),
            kv_num_heads: Some(2),
            ..op()
        };
        let out = a
            .run(
                &[Some(&q), Some(&k), Some(&v), Some(&m), Some(&pk), Some(&pv)],
                ctx(),
            )
            .unwrap();
        assert_eq!(out[0].shape(), &[1, 1, 4]);
        assert_eq!(out[1].shape(), &[1, 2, 3, 2]);
        assert_eq!(out[3].shape(), &[1, 2, 1, 3]);
        let pv = pv.to_f64_vec();
        let want = [pv[0], pv[1], pv[4], pv[5]];
        close(&out[0].to_f64_vec(), &want);
    }

    #[test]
    fn fully_masked_row_is_nan_and_errors() {
        let q = val(&[1, 1, 1, 2], 1);
        let m = Value::from_vec(&[1, 1], vec![false]).unwrap();
        let out = op()
            .run(&[Some(&q), Some(&q), Some(&q), Some(&m)], ctx())
            .unwrap();
        assert!(out[0].to_f64_vec()[0].is_nan());
        let bad = val(&[1, 3, 1, 2], 1);
        assert!(op().run(&[Some(&bad), Some(&q), Some(&q)], ctx()).is_ok());
        let k2 = val(&[1, 2, 1, 2], 1);
        assert!(op()
            .run(&[Some(&bad), Some(&k2), Some(&k2)], ctx())
            .is_err());
        let i = Value::from_vec(&[1, 1, 1, 2], vec![1i64, 2]).unwrap();
        assert!(op().run(&[Some(&i), Some(&i), Some(&i)], ctx()).is_err());
        let three = val(&[1, 1, 2], 1);
        assert!(op()
            .run(&[Some(&three), Some(&three), Some(&three)], ctx())
            .is_err());
        // f64 and f16 in, the same type out (present_key too).
        for dt in [DType::F64, DType::F16] {
            let x = val(&[1, 2, 3, 2], 9).cast(dt);
            let out = op().run(&[Some(&x), Some(&x), Some(&x)], ctx()).unwrap();
            assert!(out.iter().all(|o| o.dtype() == dt));
        }
        let empty = val(&[1, 1, 0, 2], 1);
        let out = op()
            .run(&[Some(&empty), Some(&q), Some(&q)], ctx())
            .unwrap();
        assert_eq!(out[0].shape(), &[1, 1, 0, 2]);
    }
}
