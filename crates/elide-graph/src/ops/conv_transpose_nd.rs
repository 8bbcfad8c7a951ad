//! General N-d ConvTranspose (any spatial rank, groups, weights and bias computed at run time,
//! `output_shape`, `auto_pad` SAME_UPPER/SAME_LOWER), by straightforward scatter loops in f64
//! on every float type. The 2-D constant-weight fast path stays the legacy
//! [`super::ConvTranspose`]; the importer uses this op where that one does not apply.
use super::operator::Operator;
use super::typed::{input, FLOATS};
use super::typed::{next_index as next, per_dim};
use super::Ctx;
use crate::{Result, Value};

/// A ConvTranspose node's attributes (absent ones as `None`).
#[derive(Clone, Debug)]
pub struct ConvTransposeNd {
    /// `auto_pad`.
    pub auto_pad: String,
    /// `dilations`.
    pub dilations: Option<Vec<i64>>,
    /// `group`.
    pub group: i64,
    /// `kernel_shape`.
    pub kernel_shape: Option<Vec<i64>>,
    /// `output_padding`.
    pub output_padding: Option<Vec<i64>>,
    /// `output_shape`.
    pub output_shape: Option<Vec<i64>>,
    /// `pads`.
    pub pads: Option<Vec<i64>>,
    /// `strides`.
    pub strides: Option<Vec<i64>>,
}

impl Operator for ConvTransposeNd {
    fn name(&self) -> &'static str {
        "ConvTranspose"
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn run(&self, inputs: &[Option<&Value>], ctx: Ctx) -> Result<Vec<Value>> {
        let x = input(inputs, 0, &FLOATS, ctx)?;
        let w = input(inputs, 1, &FLOATS, ctx)?;
        let xs = x.shape().to_vec();
        let ws = w.shape().to_vec();
        if xs.len() < 3 || ws.len() != xs.len() {
            return Err(ctx.err(format!(
                "input {xs:?} and weights {ws:?} ranks differ or < 3"
            )));
        }
        let nsp = xs.len() - 2;
        let g = usize::try_from(self.group)
            .ok()
            .filter(|&g| g > 0)
            .ok_or_else(|| ctx.err(format!("group {}", self.group)))?;
        let (n, c) = (xs[0], xs[1]);
        if ws[0] != c || c % g != 0 {
            return Err(ctx.err(format!(
                "weights {ws:?} do not fit {c} input channels in {g} groups"
            )));
        }
        let (cg, mg) = (c / g, ws[1]);
        let m = mg * g;
        let ksz = &ws[2..];
        if let Some(k) = &self.kernel_shape {
            if k.len() != nsp || k.iter().zip(ksz).any(|(&a, &b)| a != b as i64) {
                return Err(ctx.err(format!("kernel_shape {k:?} vs weights {ws:?}")));
            }
        }
        let strides = per_dim(&self.strides, nsp, 1, "strides", ctx)?;
        let dil = per_dim(&self.dilations, nsp, 1, "dilations", ctx)?;
        let opad = per_dim(&self.output_padding, nsp, 0, "output_padding", ctx)?;
        if strides.iter().chain(&dil).any(|&v| v < 1) || opad.iter().any(|&v| v < 0) {
            return Err(ctx.err("strides and dilations must be >= 1, output_padding >= 0"));
        }
        let oshape = match &self.output_shape {
            None => None,
            Some(o) if o.len() == nsp => Some(o.clone()),
            Some(o) if o.len() == nsp + 2 => Some(o[2..].to_vec()),
            Some(o) => return Err(ctx.err(format!("output_shape {o:?}"))),
        };
        let full = |i: usize| {
            strides[i] * (xs[i + 2] as i64 - 1) + opad[i] + (ksz[i] as i64 - 1) * dil[i] + 1
        };
        let same = matches!(self.auto_pad.as_str(), "SAME_UPPER" | "SAME_LOWER");
        let (pb, out): (Vec<i64>, Vec<i64>) = if self.pads.is_none() && same {
            let os = oshape
                .clone()
                .unwrap_or_else(|| (0..nsp).map(|i| xs[i + 2] as i64 * strides[i]).collect());
            let pb = (0..nsp)
                .map(|i| {
                    let t = full(i) - os[i];
                    if self.auto_pad == "SAME_UPPER" {
                        t / 2
                    } else {
                        t - t / 2
                    }
                })
                .collect();
            (pb, os)
        } else {
            let pads = if self.auto_pad == "VALID" {
                vec![0; 2 * nsp]
            } else {
                per_dim(&self.pads, 2 * nsp, 0, "pads", ctx)?
            };
            let out = match &oshape {
                Some(o) => o.clone(),
                None => (0..nsp)
                    .map(|i| full(i) - pads[i] - pads[i + nsp])
                    .collect(),
            };
            (pads[..nsp].to_vec(), out)
        };
        if out.iter().any(|&o| o < 0) {
            return Err(ctx.err(format!("output size {out:?} is negative")));
        }
        let out: Vec<usize> = out.iter().map(|&o| o as usize).collect();
        let mut yshape = vec![n, m];
        yshape.extend(&out);
        let total = ctx.sized("output", &yshape)?;
        let bias = match inputs.get(2).copied().flatten() {
            None => vec![0.0; m],
            Some(b) if b.len() == m => b.to_f64_vec(),
            Some(b) => return Err(ctx.err(format!("bias {:?}: {m} values expected", b.shape()))),
        };
        let xv = x.to_f64_vec();
        let wv = w.to_f64_vec();
        let insp: usize = xs[2..].iter().product();
        let ksp: usize = ksz.iter().product();
        let osp: usize = out.iter().product();
        // (input position, kernel position, output position) of every contributing pair.
        let mut pairs = Vec::new();
        if insp > 0 && ksp > 0 && osp > 0 {
            let mut ii = vec![0usize; nsp];
            let mut ip = 0usize;
            loop {
                let mut kk = vec![0usize; nsp];
                let mut kp = 0usize;
                loop {
                    let mut op = 0usize;
                    let mut ok = true;
                    for d in 0..nsp {
                        let o = ii[d] as i64 * strides[d] + kk[d] as i64 * dil[d] - pb[d];
                        if o < 0 || o >= out[d] as i64 {
                            ok = false;
                            break;
                        }
                        op = op * out[d] + o as usize;
                    }
                    if ok {
                        pairs.push((ip, kp, op));
                    }
                    kp += 1;
                    if !next(&mut kk, ksz) {
                        break;
                    }
                }
                ip += 1;
                if !next(&mut ii, &xs[2..]) {
                    break;
                }
            }
        }
        let mut y = vec![0.0f64; total];
        for b in 0..n {
            for oc in 0..m {
                let dst = &mut y[(b * m + oc) * osp..(b * m + oc + 1) * osp];
                dst.iter_mut().for_each(|v| *v = bias[oc]);
                let (gi, mi) = (oc / mg, oc % mg);
                for ci in 0..cg {
                    let ch = gi * cg + ci;
                    let xb = &xv[(b * c + ch) * insp..(b * c + ch + 1) * insp];
                    let wb = &wv[(ch * mg + mi) * ksp..(ch * mg + mi + 1) * ksp];
                    for &(ip, kp, op) in &pairs {
                        dst[op] += xb[ip] * wb[kp];
                    }
                }
            }
        }
        Ok(vec![Value::from_vec(&yshape, y)?.cast(x.dtype())])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Ctx<'static> {
        Ctx {
            node: "n",
            op: "ConvTranspose",
            arena: None,
        }
    }

    fn op() -> ConvTransposeNd {
        ConvTransposeNd {
            auto_pad: "NOTSET".into(),
            dilations: None,
            group: 1,
            kernel_shape: None,
            output_padding: None,
            output_shape: None,
            pads: None,
            strides: None,
        }
    }

    #[test]
    fn one_d_matches_naive_scatter() {
        let x = Value::f32(&[1, 1, 3], vec![1.0, 2.0, 3.0]).unwrap();
        let w = Value::f32(&[1, 2, 2], vec![1.0, 1.0, 2.0, -1.0]).unwrap();
        let mut o = op();
        o.strides = Some(vec![2]);
        let y = o.run(&[Some(&x), Some(&w)], ctx()).unwrap().remove(0);
        assert_eq!(y.shape(), &[1, 2, 6]);
        assert_eq!(
            y.to_f64_vec(),
            vec![1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 2.0, -1.0, 4.0, -2.0, 6.0, -3.0]
        );
    }

    #[test]
    fn groups_empty_and_errors() {
        let x = Value::f32(&[0, 2, 2], vec![]).unwrap();
        let w = Value::f32(&[2, 1, 1], vec![1.0, 2.0]).unwrap();
        let mut o = op();
        o.group = 2;
        let y = o.run(&[Some(&x), Some(&w)], ctx()).unwrap().remove(0);
        assert_eq!(y.shape(), &[0, 2, 2]);
        o.group = 3;
        assert!(o.run(&[Some(&x), Some(&w)], ctx()).is_err());
        let xi = Value::from_vec(&[1, 2, 2], vec![1i32; 4]).unwrap();
        assert!(op().run(&[Some(&xi), Some(&w)], ctx()).is_err());
    }
}
