//! Loss functions: NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss (which is NLL of
//! the log-softmax over axis 1, with that log-softmax as an optional second output).
//! Inputs `(N, C, d1, ..)` with int32/int64 targets `(N, d1, ..)`, optional class weights
//! `(C)`, `ignore_index`, reductions none|sum|mean. Computed in f64, returned in the input's
//! float type.
use super::operator::Operator;
use super::typed::{input, FLOATS};
use super::{Ctx, Op};
use crate::onnx::registry::{NodeCtx, Registry};
use crate::{DType, Result, Value};
use std::sync::Arc;

/// How the per-element losses are combined.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reduction {
    /// Per-element losses, shaped like the target.
    None,
    /// Their sum.
    Sum,
    /// Their weighted mean: sum / sum of the weights of non-ignored elements.
    Mean,
}

/// NegativeLogLikelihoodLoss (`softmax == false`) or SoftmaxCrossEntropyLoss.
#[derive(Clone, Debug)]
pub struct Loss {
    softmax: bool,
    reduction: Reduction,
    ignore_index: Option<i64>,
}

/// The log-softmax of `x` (shape `(n, c, d)` flattened) over `c`.
fn log_softmax(x: &[f64], n: usize, c: usize, d: usize) -> Vec<f64> {
    let mut out = x.to_vec();
    for i in 0..n {
        for k in 0..d {
            let at = |j: usize| (i * c + j) * d + k;
            let m = (0..c).map(|j| x[at(j)]).fold(f64::NEG_INFINITY, f64::max);
            let s: f64 = (0..c).map(|j| (x[at(j)] - m).exp()).sum();
            let ls = s.ln();
            for j in 0..c {
                out[at(j)] = x[at(j)] - m - ls;
            }
        }
    }
    out
}

impl Operator for Loss {
    fn name(&self) -> &'static str {
        if self.softmax {
            "SoftmaxCrossEntropyLoss"
        } else {
            "NegativeLogLikelihoodLoss"
        }
    }

    fn run(&self, inputs: &[Option<&Value>], ctx: Ctx) -> Result<Vec<Value>> {
        let x = input(inputs, 0, &FLOATS, ctx)?;
        let t = input(inputs, 1, &[DType::I32, DType::I64], ctx)?;
        let w = match inputs.get(2).copied().flatten() {
            Some(_) => Some(input(inputs, 2, &FLOATS, ctx)?.to_f64_vec()),
            None => None,
        };
        let xs = x.shape();
        if xs.len() < 2 {
            return Err(ctx.err(format!("input of shape {xs:?}: needs (N, C, ...)")));
        }
        let (n, c) = (xs[0], xs[1]);
        let mut want_t = vec![n];
        want_t.extend_from_slice(&xs[2..]);
        if t.shape() != want_t.as_slice() {
            return Err(ctx.err(format!(
                "target shape {:?} does not match input shape {xs:?}",
                t.shape()
            )));
        }
        if let Some(w) = &w {
            if w.len() != c {
                return Err(ctx.err(format!("weight has {} values for {c} classes", w.len())));
            }
        }
        let d: usize = xs[2..].iter().product();
        let mut xv = x.to_f64_vec();
        if self.softmax {
            xv = log_softmax(&xv, n, c, d);
        }
        let tv = t.to_i64_vec();
        let mut loss = vec![0.0f64; n * d];
        let mut wsum = 0.0f64;
        for i in 0..n {
            for k in 0..d {
                let tgt = tv[i * d + k];
                if Some(tgt) == self.ignore_index {
                    continue;
                }
                let j = usize::try_from(tgt)
                    .ok()
                    .filter(|&j| j < c)
                    .ok_or_else(|| ctx.err(format!("target {tgt} outside 0..{c}")))?;
                let wt = w.as_ref().map_or(1.0, |w| w[j]);
                loss[i * d + k] = -xv[(i * c + j) * d + k] * wt;
                wsum += wt;
            }
        }
        let dt = x.dtype();
        let out = match self.reduction {
            Reduction::None => Value::from_vec(&want_t, loss)?,
            Reduction::Sum => Value::from_vec(&[], vec![loss.iter().sum::<f64>()])?,
            Reduction::Mean => Value::from_vec(&[], vec![loss.iter().sum::<f64>() / wsum])?,
        };
        let mut outs = vec![out.cast(dt)];
        if self.softmax {
            outs.push(Value::from_vec(xs, xv)?.cast(dt));
        }
        Ok(outs)
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

fn build(n: &NodeCtx, softmax: bool) -> Result<Op> {
    let a = n.attrs(&["reduction", "ignore_index"])?;
    n.arity((2, 3), (1, if softmax { 2 } else { 1 }))?;
    let reduction = match a.string("reduction", "mean").as_str() {
        "none" => Reduction::None,
        "sum" => Reduction::Sum,
        "mean" => Reduction::Mean,
        r => return Err(a.unsupported(format!("reduction = {r:?}"))),
    };
    let ignore_index = a.raw("ignore_index").map(|r| r.i);
    Ok(Op::Dyn(Arc::new(Loss {
        softmax,
        reduction,
        ignore_index,
    })))
}

fn build_nll(n: &NodeCtx) -> Result<Op> {
    build(n, false)
}

fn build_sce(n: &NodeCtx) -> Result<Op> {
    build(n, true)
}

/// Registers the ops of this file.
pub(crate) fn register(r: &mut Registry) {
    r.add("", "NegativeLogLikelihoodLoss", 12, build_nll);
    r.add("", "SoftmaxCrossEntropyLoss", 12, build_sce);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Ctx<'static> {
        Ctx {
            node: "n",
            op: "Loss",
            arena: None,
        }
    }

    fn op(softmax: bool, reduction: Reduction, ignore_index: Option<i64>) -> Loss {
        Loss {
            softmax,
            reduction,
            ignore_index,
        }
    }

    #[test]
    fn nll_reductions_weights_and_ignore_index() {
        // N=2, C=3.
        let x = Value::f32(&[2, 3], vec![1., 2., 3., 4., 5., 6.]).unwrap();
        let t = Value::i64(&[2], vec![2, 0]).unwrap();
        let w = Value::f32(&[3], vec![0.5, 1.0, 2.0]).unwrap();
        let none = op(false, Reduction::None, None)
            .run(&[Some(&x), Some(&t)], ctx())
            .unwrap();
        assert_eq!(none[0].to_f64_vec(), vec![-3.0, -4.0]);
        let mean = op(false, Reduction::Mean, None)
            .run(&[Some(&x), Some(&t), Some(&w)], ctx())
            .unwrap();
        // (-3*2 + -4*0.5) / 2.5
        assert!((mean[0].to_f64_vec()[0] + 8.0 / 2.5).abs() < 1e-6);
        let ign = op(false, Reduction::Mean, Some(0))
            .run(&[Some(&x), Some(&t)], ctx())
            .unwrap();
        assert_eq!(ign[0].to_f64_vec(), vec![-3.0]);
        let sum = op(false, Reduction::Sum, Some(-5))
            .run(
                &[Some(&x), Some(&Value::i64(&[2], vec![-5, 1]).unwrap())],
                ctx(),
            )
            .unwrap();
        assert_eq!(sum[0].to_f64_vec(), vec![-5.0]);
    }

    #[test]
    fn sce_matches_naive_log_softmax_on_nd_input() {
        // N=1, C=2, d=3.
        let x = Value::from_vec(&[1, 2, 3], vec![0f64, 1., 2., 3., -1., 0.5]).unwrap();
        let t = Value::from_vec(&[1, 3], vec![0i32, 1, 1]).unwrap();
        let out = op(true, Reduction::None, None)
            .run(&[Some(&x), Some(&t)], ctx())
            .unwrap();
        assert_eq!(out.len(), 2);
        let xv = x.to_f64_vec();
        let lp = |j: usize, k: usize| {
            let a = xv[k];
            let b = xv[3 + k];
            let lse = (a.exp() + b.exp()).ln();
            xv[j * 3 + k] - lse
        };
        let got = out[0].to_f64_vec();
        for (k, j) in [(0usize, 0usize), (1, 1), (2, 1)] {
            assert!((got[k] + lp(j, k)).abs() < 1e-12);
        }
        assert_eq!(out[1].shape(), &[1, 2, 3]);
    }

    #[test]
    fn errors_on_bad_targets_shapes_and_types() {
        let x = Value::f32(&[2, 3], vec![0.0; 6]).unwrap();
        let bad = Value::i64(&[2], vec![3, 0]).unwrap();
        let o = op(false, Reduction::Sum, None);
        assert!(o.run(&[Some(&x), Some(&bad)], ctx()).is_err());
        let shp = Value::i64(&[3], vec![0, 0, 0]).unwrap();
        assert!(o.run(&[Some(&x), Some(&shp)], ctx()).is_err());
        let ft = Value::f32(&[2], vec![0., 0.]).unwrap();
        assert!(o.run(&[Some(&x), Some(&ft)], ctx()).is_err());
        let x1 = Value::f32(&[3], vec![0.0; 3]).unwrap();
        assert!(o
            .run(
                &[Some(&x1), Some(&Value::i64(&[], vec![0]).unwrap())],
                ctx()
            )
            .is_err());
        // Empty batch: sum is 0.
        let e = Value::f32(&[0, 3], vec![]).unwrap();
        let et = Value::i64(&[0], vec![]).unwrap();
        assert_eq!(
            o.run(&[Some(&e), Some(&et)], ctx()).unwrap()[0].to_f64_vec(),
            vec![0.0]
        );
    }
}
