//! DeformConv (opset 19), 2-D: each kernel tap samples the input bilinearly (zero outside,
//! corners aligned, as GridSample) at its position moved by the offset input, scaled by the
//! optional mask; groups and offset groups. Floats, computed in f64.
use super::operator::Operator;
use super::typed::{input, FLOATS};
use super::{Ctx, Op};
use crate::onnx::registry::{NodeCtx, Registry};
use crate::{Result, Value};
use std::sync::Arc;

/// A DeformConv node's attributes.
#[derive(Clone, Debug)]
pub struct DeformConv {
    dilations: Option<Vec<i64>>,
    group: i64,
    kernel_shape: Option<Vec<i64>>,
    offset_group: i64,
    pads: Option<Vec<i64>>,
    strides: Option<Vec<i64>>,
}

fn two(v: &Option<Vec<i64>>, len: usize, default: i64, what: &str, ctx: Ctx) -> Result<Vec<i64>> {
    match v {
        None => Ok(vec![default; len]),
        Some(v) if v.len() == len => Ok(v.clone()),
        Some(v) => Err(ctx.err(format!("{what} {v:?}: {len} values expected"))),
    }
}

/// Bilinear sample of the `h`x`w` plane `p` at `(y, x)`, zero outside.
fn sample(p: &[f64], h: usize, w: usize, y: f64, x: f64) -> f64 {
    if !(y > -1.0 && x > -1.0 && y < h as f64 && x < w as f64) {
        return 0.0;
    }
    let (y0, x0) = (y.floor(), x.floor());
    let (fy, fx) = (y - y0, x - x0);
    let at = |yy: f64, xx: f64| -> f64 {
        if yy < 0.0 || xx < 0.0 || yy >= h as f64 || xx >= w as f64 {
            0.0
        } else {
            p.get(yy as usize * w + xx as usize).copied().unwrap_or(0.0)
        }
    };
    at(y0, x0) * (1.0 - fy) * (1.0 - fx)
        + at(y0, x0 + 1.0) * (1.0 - fy) * fx
        + at(y0 + 1.0, x0) * fy * (1.0 - fx)
        + at(y0 + 1.0, x0 + 1.0) * fy * fx
}

impl Operator for DeformConv {
    fn name(&self) -> &'static str {
        "DeformConv"
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn run(&self, inputs: &[Option<&Value>], ctx: Ctx) -> Result<Vec<Value>> {
        let x = input(inputs, 0, &FLOATS, ctx)?;
        let w = input(inputs, 1, &FLOATS, ctx)?;
        let off = input(inputs, 2, &FLOATS, ctx)?;
        let (xs, ws, os) = (x.shape(), w.shape(), off.shape());
        if xs.len() != 4 || ws.len() != 4 || os.len() != 4 {
            return Err(ctx.err(format!(
                "only 2-D: input {xs:?}, weights {ws:?}, offset {os:?}"
            )));
        }
        let (n, ic, ih, iw) = (xs[0], xs[1], xs[2], xs[3]);
        let (oc, icg, kh, kw) = (ws[0], ws[1], ws[2], ws[3]);
        let g = usize::try_from(self.group).ok().filter(|&g| g > 0);
        let og = usize::try_from(self.offset_group).ok().filter(|&g| g > 0);
        let (Some(g), Some(og)) = (g, og) else {
            return Err(ctx.err("group and offset_group must be positive"));
        };
        if icg * g != ic || oc % g != 0 || ic % og != 0 {
            return Err(ctx.err(format!("weights {ws:?} vs input {xs:?}, group {g}")));
        }
        if let Some(k) = &self.kernel_shape {
            if k.as_slice() != [kh as i64, kw as i64] {
                return Err(ctx.err(format!("kernel_shape {k:?} vs weights {ws:?}")));
            }
        }
        let kk = kh * kw;
        let (oh, ow) = (os[2], os[3]);
        if os[0] != n || os[1] != og * kk * 2 {
            return Err(ctx.err(format!("offset {os:?} for kernel {kh}x{kw}, {og} groups")));
        }
        let st = two(&self.strides, 2, 1, "strides", ctx)?;
        let dl = two(&self.dilations, 2, 1, "dilations", ctx)?;
        let pd = two(&self.pads, 4, 0, "pads", ctx)?;
        let expect = |i: usize, k: usize| {
            (xs[2 + i] as i64 + pd[i] + pd[i + 2] - ((k as i64 - 1) * dl[i] + 1))
                .checked_div(st[i])
                .map(|v| v + 1)
        };
        if expect(0, kh) != Some(oh as i64) || expect(1, kw) != Some(ow as i64) {
            return Err(ctx.err("pads, strides and dilations do not give the offset's size"));
        }
        let mask = match inputs.get(4).copied().flatten() {
            None => None,
            Some(m) if m.shape() == [n, og * kk, oh, ow] => Some(m.to_f64_vec()),
            Some(m) => return Err(ctx.err(format!("mask {:?}", m.shape()))),
        };
        let bias = match inputs.get(3).copied().flatten() {
            None => vec![0.0; oc],
            Some(b) if b.len() == oc => b.to_f64_vec(),
            Some(b) => return Err(ctx.err(format!("bias {:?}", b.shape()))),
        };
        let yshape = [n, oc, oh, ow];
        let total = ctx.sized("output", &yshape)?;
        let (xv, wv, ov) = (x.to_f64_vec(), w.to_f64_vec(), off.to_f64_vec());
        let mut y = vec![0.0f64; total];
        let (ocg, icog, osp, isp) = (oc / g, ic / og, oh * ow, ih * iw);
        for b in 0..n {
            for o in 0..oc {
                let gi = o / ocg;
                for p in 0..osp {
                    let (i, j) = (p / ow, p % ow);
                    let mut acc = bias[o];
                    for ci in 0..icg {
                        let ch = gi * icg + ci;
                        let ogi = ch / icog;
                        let plane = &xv[(b * ic + ch) * isp..(b * ic + ch + 1) * isp];
                        for k in 0..kk {
                            let (ki, kj) = (k / kw, k % kw);
                            let oc2 = ((b * og + ogi) * kk + k) * 2;
                            let dy = ov[oc2 * osp + p];
                            let dx = ov[(oc2 + 1) * osp + p];
                            let m = mask
                                .as_ref()
                                .map_or(1.0, |m| m[((b * og + ogi) * kk + k) * osp + p]);
                            let yy = (i as i64 * st[0] - pd[0] + ki as i64 * dl[0]) as f64 + dy;
                            let xx = (j as i64 * st[1] - pd[1] + kj as i64 * dl[1]) as f64 + dx;
                            let wt = wv[(o * icg + ci) * kk + k];
                            acc += wt * m * sample(plane, ih, iw, yy, xx);
                        }
                    }
                    y[(b * oc + o) * osp + p] = acc;
                }
            }
        }
        Ok(vec![Value::from_vec(&yshape, y)?.cast(x.dtype())])
    }
}

fn build(n: &NodeCtx) -> Result<Op> {
    let a = n.attrs(&[
        "dilations",
        "group",
        "kernel_shape",
        "offset_group",
        "pads",
        "strides",
    ])?;
    n.arity((3, 5), (1, 1))?;
    Ok(Op::Dyn(Arc::new(DeformConv {
        dilations: a.ints("dilations"),
        group: a.int("group", 1),
        kernel_shape: a.ints("kernel_shape"),
        offset_group: a.int("offset_group", 1),
        pads: a.ints("pads"),
        strides: a.ints("strides"),
    })))
}

/// Registers the ops of this file.
pub(crate) fn register(r: &mut Registry) {
    r.add("", "DeformConv", 19, build);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_offsets_are_a_plain_conv_and_shapes_are_checked() {
        let ctx = Ctx {
            node: "n",
            op: "DeformConv",
            arena: None,
        };
        let op = DeformConv {
            dilations: None,
            group: 1,
            kernel_shape: None,
            offset_group: 1,
            pads: None,
            strides: None,
        };
        let x = Value::f32(&[1, 1, 2, 3], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
        let w = Value::f32(&[1, 1, 1, 2], vec![1.0, 10.0]).unwrap();
        let off = Value::f32(&[1, 4, 2, 2], vec![0.0; 16]).unwrap();
        let y = op.run(&[Some(&x), Some(&w), Some(&off)], ctx).unwrap();
        assert_eq!(y[0].to_f64_vec(), vec![21.0, 32.0, 54.0, 65.0]);
        let bad = Value::f32(&[1, 2, 2, 2], vec![0.0; 8]).unwrap();
        assert!(op.run(&[Some(&x), Some(&w), Some(&bad)], ctx).is_err());
    }
}
