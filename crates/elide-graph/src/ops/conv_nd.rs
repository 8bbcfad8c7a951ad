//! General N-d direct Conv in f64 on every float type, for the forms the 2-D kernel does not
//! take: `auto_pad` SAME_UPPER/SAME_LOWER with strides > 1 (pads computed from the input size
//! at run time), and spatial ranks other than 2.
use super::operator::Operator;
use super::typed::{input, FLOATS};
use super::typed::{next_index as next, per_dim};
use super::Ctx;
use crate::{Result, Value};

/// A Conv node's attributes (absent ones as `None`).
#[derive(Clone, Debug)]
pub struct ConvNd {
    /// `auto_pad`.
    pub auto_pad: String,
    /// `dilations`.
    pub dilations: Option<Vec<i64>>,
    /// `group`.
    pub group: i64,
    /// `kernel_shape`.
    pub kernel_shape: Option<Vec<i64>>,
    /// `pads`.
    pub pads: Option<Vec<i64>>,
    /// `strides`.
    pub strides: Option<Vec<i64>>,
}

impl Operator for ConvNd {
    fn name(&self) -> &'static str {
        "Conv"
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
        let (n, c, m) = (xs[0], xs[1], ws[0]);
        if c % g != 0 || m % g != 0 || ws[1] * g != c {
            return Err(ctx.err(format!(
                "weights {ws:?} do not fit {c} input channels in {g} groups"
            )));
        }
        let (cg, mg) = (c / g, m / g);
        let ksz = &ws[2..];
        if let Some(k) = &self.kernel_shape {
            if k.len() != nsp || k.iter().zip(ksz).any(|(&a, &b)| a != b as i64) {
                return Err(ctx.err(format!("kernel_shape {k:?} vs weights {ws:?}")));
            }
        }
        let strides = per_dim(&self.strides, nsp, 1, "strides", ctx)?;
        let dil = per_dim(&self.dilations, nsp, 1, "dilations", ctx)?;
        if strides.iter().chain(&dil).any(|&v| v < 1) {
            return Err(ctx.err("strides and dilations must be >= 1"));
        }
        let ext = |i: usize| (ksz[i] as i64 - 1) * dil[i] + 1;
        let inl = |i: usize| xs[i + 2] as i64;
        let (pb, out): (Vec<i64>, Vec<i64>) = match self.auto_pad.as_str() {
            "SAME_UPPER" | "SAME_LOWER" => (0..nsp)
                .map(|i| {
                    let o = (inl(i) + strides[i] - 1) / strides[i];
                    let t = ((o - 1) * strides[i] + ext(i) - inl(i)).max(0);
                    let b = if self.auto_pad == "SAME_UPPER" {
                        t / 2
                    } else {
                        t - t / 2
                    };
                    (b, o)
                })
                .unzip(),
            "VALID" => (0..nsp)
                .map(|i| (0, (inl(i) - ext(i)).div_euclid(strides[i]) + 1))
                .unzip(),
            "NOTSET" => {
                let p = per_dim(&self.pads, 2 * nsp, 0, "pads", ctx)?;
                if p.iter().any(|&v| v < 0) {
                    return Err(ctx.err(format!("pads {p:?} are negative")));
                }
                (0..nsp)
                    .map(|i| {
                        let span = inl(i) + p[i] + p[i + nsp] - ext(i);
                        (p[i], span.div_euclid(strides[i]) + 1)
                    })
                    .unzip()
            }
            other => return Err(ctx.err(format!("auto_pad {other}"))),
        };
        let out: Vec<usize> = out.iter().map(|&o| o.max(0) as usize).collect();
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
        // (output position, kernel position, input position) of every contributing pair.
        let mut pairs = Vec::new();
        if insp > 0 && ksp > 0 && osp > 0 {
            let mut oo = vec![0usize; nsp];
            let mut op = 0usize;
            loop {
                let mut kk = vec![0usize; nsp];
                let mut kp = 0usize;
                loop {
                    let mut ip = 0usize;
                    let mut ok = true;
                    for d in 0..nsp {
                        let i = oo[d] as i64 * strides[d] + kk[d] as i64 * dil[d] - pb[d];
                        if i < 0 || i >= xs[d + 2] as i64 {
                            ok = false;
                            break;
                        }
                        ip = ip * xs[d + 2] + i as usize;
                    }
                    if ok {
                        pairs.push((op, kp, ip));
                    }
                    kp += 1;
                    if !next(&mut kk, ksz) {
                        break;
                    }
                }
                op += 1;
                if !next(&mut oo, &out) {
                    break;
                }
            }
        }
        let mut y = vec![0.0f64; total];
        for b in 0..n {
            for oc in 0..m {
                let dst = &mut y[(b * m + oc) * osp..(b * m + oc + 1) * osp];
                dst.iter_mut().for_each(|v| *v = bias[oc]);
                let gi = oc / mg;
                for ci in 0..cg {
                    let ch = gi * cg + ci;
                    let xb = &xv[(b * c + ch) * insp..(b * c + ch + 1) * insp];
                    let wb = &wv[(oc * cg + ci) * ksp..(oc * cg + ci + 1) * ksp];
                    for &(op, kp, ip) in &pairs {
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
            op: "Conv",
            arena: None,
        }
    }

    #[test]
    fn same_lower_stride_2_and_1d() {
        let o = ConvNd {
            auto_pad: "SAME_LOWER".into(),
            dilations: None,
            group: 1,
            kernel_shape: None,
            pads: None,
            strides: Some(vec![2]),
        };
        let x = Value::f32(&[1, 1, 5], vec![1.0, 2.0, 3.0, 4.0, 5.0]).unwrap();
        let w = Value::f32(&[1, 1, 3], vec![1.0, 1.0, 1.0]).unwrap();
        let y = o.run(&[Some(&x), Some(&w)], ctx()).unwrap().remove(0);
        // out 3, total pad 2: one each side; windows [0,1,2] [2,3,4] [4,5,0].
        assert_eq!(y.to_f64_vec(), vec![3.0, 9.0, 9.0]);
        let xi = Value::from_vec(&[1, 1, 1], vec![1i64]).unwrap();
        assert!(o.run(&[Some(&xi), Some(&w)], ctx()).is_err());
    }
}
