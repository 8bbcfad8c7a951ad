//! MaxUnpool (opset 9+: values scattered to MaxPool's flat indices, output shape from the
//! kernel, strides and pads or from the `output_shape` input) and Col2Im (opset 18: columns
//! of blocks summed back into an N-d image), on every numeric type (Col2Im computed in f64).
use super::operator::Operator;
use super::typed::{input, NUMERIC};
use super::typed::{next_index as next, per_dim};
use super::{Ctx, Op};
use crate::onnx::registry::{NodeCtx, Registry};
use crate::{map_array, DType, Elem, Result, Value};
use ndarray::{ArrayD, IxDyn};
use std::sync::Arc;

/// A MaxUnpool node.
#[derive(Clone, Debug)]
pub struct MaxUnpool {
    kernel: Vec<i64>,
    pads: Option<Vec<i64>>,
    strides: Option<Vec<i64>>,
}

fn scatter<T: Elem>(x: &ArrayD<T>, idx: &[i64], shape: &[usize], ctx: Ctx) -> Result<ArrayD<T>> {
    let total = ctx.sized("output", shape)?;
    let mut out = vec![T::default(); total];
    for (&v, &i) in x.iter().zip(idx) {
        let slot = usize::try_from(i)
            .ok()
            .and_then(|i| out.get_mut(i))
            .ok_or_else(|| ctx.err(format!("index {i} outside the output of {total}")))?;
        *slot = v;
    }
    Ok(ArrayD::from_shape_vec(IxDyn(shape), out)?)
}

impl Operator for MaxUnpool {
    fn name(&self) -> &'static str {
        "MaxUnpool"
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn run(&self, inputs: &[Option<&Value>], ctx: Ctx) -> Result<Vec<Value>> {
        let x = input(inputs, 0, &NUMERIC, ctx)?;
        let i = input(inputs, 1, &[DType::I64], ctx)?;
        let xs = x.shape().to_vec();
        if i.shape() != xs.as_slice() || xs.len() < 3 {
            return Err(ctx.err(format!("indices {:?} vs input {xs:?}", i.shape())));
        }
        let nsp = xs.len() - 2;
        if self.kernel.len() != nsp {
            return Err(ctx.err(format!("kernel_shape {:?} for {nsp} axes", self.kernel)));
        }
        let strides = per_dim(&self.strides, nsp, 1, "strides", ctx)?;
        let pads = per_dim(&self.pads, 2 * nsp, 0, "pads", ctx)?;
        let mut shape = vec![xs[0], xs[1]];
        for d in 0..nsp {
            let o = (xs[d + 2] as i64 - 1) * strides[d] + self.kernel[d] - pads[d] - pads[d + nsp];
            if o < 0 {
                return Err(ctx.err(format!("output length {o} is negative")));
            }
            shape.push(o as usize);
        }
        // An output_shape (input 2) pads the inferred shape with zeros at the end of each axis.
        let target: Option<Vec<usize>> = match inputs.get(2).copied().flatten() {
            Some(s) => {
                let v = s.to_i64_vec();
                if v.len() != xs.len() || v.iter().zip(&shape).any(|(&t, &d)| t < d as i64) {
                    return Err(ctx.err(format!("output_shape {v:?} smaller than {shape:?}")));
                }
                Some(v.iter().map(|&d| d as usize).collect())
            }
            None => None,
        };
        let idx = i.to_i64_vec();
        let y = map_array!(x, a => {
            let small = scatter(a, &idx, &shape, ctx)?;
            match &target {
                None => small,
                Some(t) => {
                    ctx.sized("output", t)?;
                    let mut big = ArrayD::from_elem(IxDyn(t), Default::default());
                    let region: Vec<ndarray::SliceInfoElem> = shape
                        .iter()
                        .map(|&d| ndarray::SliceInfoElem::Slice {
                            start: 0,
                            end: Some(d as isize),
                            step: 1,
                        })
                        .collect();
                    big.slice_mut(region.as_slice()).assign(&small);
                    big
                }
            }
        });
        Ok(vec![y])
    }
}

fn build_max_unpool(n: &NodeCtx) -> Result<Op> {
    let a = n.attrs(&["kernel_shape", "pads", "strides"])?;
    n.arity((2, 3), (1, 1))?;
    let kernel = a
        .ints("kernel_shape")
        .ok_or_else(|| n.err("kernel_shape is required"))?;
    Ok(Op::Dyn(Arc::new(MaxUnpool {
        kernel,
        pads: a.ints("pads"),
        strides: a.ints("strides"),
    })))
}

/// A Col2Im node.
#[derive(Clone, Debug)]
pub struct Col2Im {
    dilations: Option<Vec<i64>>,
    pads: Option<Vec<i64>>,
    strides: Option<Vec<i64>>,
}

impl Operator for Col2Im {
    fn name(&self) -> &'static str {
        "Col2Im"
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn run(&self, inputs: &[Option<&Value>], ctx: Ctx) -> Result<Vec<Value>> {
        let x = input(inputs, 0, &NUMERIC, ctx)?;
        let img = input(inputs, 1, &[DType::I64], ctx)?.to_i64_vec();
        let blk = input(inputs, 2, &[DType::I64], ctx)?.to_i64_vec();
        let xs = x.shape().to_vec();
        let nsp = img.len();
        if xs.len() != 3 || blk.len() != nsp || nsp == 0 {
            return Err(ctx.err(format!(
                "input {xs:?}, image_shape {img:?}, block_shape {blk:?}"
            )));
        }
        if img.iter().chain(&blk).any(|&d| d < 1) {
            return Err(ctx.err("image and block sizes must be positive"));
        }
        let dil = per_dim(&self.dilations, nsp, 1, "dilations", ctx)?;
        let strides = per_dim(&self.strides, nsp, 1, "strides", ctx)?;
        let pads = per_dim(&self.pads, 2 * nsp, 0, "pads", ctx)?;
        if dil.iter().chain(&strides).any(|&v| v < 1) || pads.iter().any(|&v| v < 0) {
            return Err(ctx.err("dilations and strides must be >= 1, pads >= 0"));
        }
        let mut nblocks = Vec::with_capacity(nsp);
        for d in 0..nsp {
            let span = img[d] + pads[d] + pads[d + nsp] - ((blk[d] - 1) * dil[d] + 1);
            if span < 0 {
                return Err(ctx.err(format!("block {blk:?} larger than the padded image")));
            }
            nblocks.push((span / strides[d] + 1) as usize);
        }
        let ksz: Vec<usize> = blk.iter().map(|&d| d as usize).collect();
        let ksp: usize = ksz.iter().product();
        let lsp: usize = nblocks.iter().product();
        if xs[1] % ksp != 0 || xs[2] != lsp {
            return Err(ctx.err(format!(
                "input {xs:?} does not hold {lsp} blocks of {ksp} values"
            )));
        }
        let (n, c) = (xs[0], xs[1] / ksp);
        let imgd: Vec<usize> = img.iter().map(|&d| d as usize).collect();
        let mut yshape = vec![n, c];
        yshape.extend(&imgd);
        let total = ctx.sized("output", &yshape)?;
        let isp: usize = imgd.iter().product();
        let xv = x.to_f64_vec();
        let mut y = vec![0.0f64; total];
        let mut pairs = Vec::new();
        let mut bb = vec![0usize; nsp];
        let mut bp = 0usize;
        loop {
            let mut kk = vec![0usize; nsp];
            let mut kp = 0usize;
            loop {
                let mut ip = 0usize;
                let mut ok = true;
                for (d, (&b, &k)) in bb.iter().zip(&kk).enumerate() {
                    let p = b as i64 * strides[d] + k as i64 * dil[d] - pads[d];
                    if p < 0 || p >= img[d] {
                        ok = false;
                        break;
                    }
                    ip = ip * imgd[d] + p as usize;
                }
                if ok {
                    pairs.push((bp, kp, ip));
                }
                kp += 1;
                if !next(&mut kk, &ksz) {
                    break;
                }
            }
            bp += 1;
            if !next(&mut bb, &nblocks) {
                break;
            }
        }
        for b in 0..n {
            for ch in 0..c {
                let dst = &mut y[(b * c + ch) * isp..(b * c + ch + 1) * isp];
                for &(bp, kp, ip) in &pairs {
                    if let Some(v) = xv.get((b * xs[1] + ch * ksp + kp) * lsp + bp) {
                        dst[ip] += v;
                    }
                }
            }
        }
        let f = Value::from_vec(&yshape, y)?;
        Ok(vec![f.cast(x.dtype())])
    }
}

fn build_col2im(n: &NodeCtx) -> Result<Op> {
    let a = n.attrs(&["dilations", "pads", "strides"])?;
    n.arity((3, 3), (1, 1))?;
    Ok(Op::Dyn(Arc::new(Col2Im {
        dilations: a.ints("dilations"),
        pads: a.ints("pads"),
        strides: a.ints("strides"),
    })))
}

/// Registers the ops of this file.
pub(crate) fn register(r: &mut Registry) {
    r.add("", "MaxUnpool", 9, build_max_unpool);
    r.add("", "Col2Im", 18, build_col2im);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Ctx<'static> {
        Ctx {
            node: "n",
            op: "T",
            arena: None,
        }
    }

    #[test]
    fn unpool_scatters_and_rejects_bad_indices() {
        let op = MaxUnpool {
            kernel: vec![2],
            pads: None,
            strides: Some(vec![2]),
        };
        let x = Value::f32(&[1, 1, 2], vec![5.0, 7.0]).unwrap();
        let i = Value::i64(&[1, 1, 2], vec![1, 2]).unwrap();
        let y = op.run(&[Some(&x), Some(&i)], ctx()).unwrap().remove(0);
        assert_eq!(y.to_f64_vec(), vec![0.0, 5.0, 7.0, 0.0]);
        let bad = Value::i64(&[1, 1, 2], vec![1, 9]).unwrap();
        assert!(op.run(&[Some(&x), Some(&bad)], ctx()).is_err());
    }

    #[test]
    fn col2im_1d_overlapping_blocks_sum() {
        let op = Col2Im {
            dilations: None,
            pads: None,
            strides: None,
        };
        // image 3, block 2: 2 blocks; columns [k0: b0 b1], [k1: b0 b1].
        let x = Value::f32(&[1, 2, 2], vec![1.0, 2.0, 10.0, 20.0]).unwrap();
        let img = Value::i64(&[1], vec![3]).unwrap();
        let blk = Value::i64(&[1], vec![2]).unwrap();
        let y = op
            .run(&[Some(&x), Some(&img), Some(&blk)], ctx())
            .unwrap()
            .remove(0);
        assert_eq!(y.to_f64_vec(), vec![1.0, 12.0, 20.0]);
        let big = Value::i64(&[1], vec![5]).unwrap();
        assert!(op.run(&[Some(&x), Some(&img), Some(&big)], ctx()).is_err());
    }
}
