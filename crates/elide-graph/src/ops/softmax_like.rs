//! Softmax's relatives: LogSoftmax and Hardmax, in both ONNX forms: before opset 13 the
//! input is seen as 2-D, flattened at `axis` (default 1), and each row is one set; from 13
//! on the set runs along the single axis `axis` (default -1).
//!
//! Floats only; computed in f64 and rounded once to the input's type. Hardmax puts its 1
//! at the first maximum (NaN ranking above every number).
use super::arg_topk::split_at_axis;
use super::operator::Operator;
use super::typed::{input, FLOATS};
use super::{Ctx, Op};
use crate::onnx::registry::{NodeCtx, Registry};
use crate::{Result, Value};
use std::sync::Arc;

/// LogSoftmax or Hardmax.
#[derive(Clone, Debug)]
pub struct SoftmaxLike {
    /// Hardmax (else LogSoftmax).
    hard: bool,
    axis: i64,
    /// The pre-13 form: flattened to 2-D at `axis`.
    flatten: bool,
}

impl Operator for SoftmaxLike {
    fn name(&self) -> &'static str {
        if self.hard {
            "Hardmax"
        } else {
            "LogSoftmax"
        }
    }

    fn run(&self, inputs: &[Option<&Value>], ctx: Ctx) -> Result<Vec<Value>> {
        let x = input(inputs, 0, &FLOATS, ctx)?;
        let shape = x.shape().to_vec();
        let d = ctx.axis(self.axis, shape.len())?;
        let (outer, n, inner) = if self.flatten {
            let (outer, n, inner) = split_at_axis(&shape, d);
            (outer, n * inner, 1)
        } else {
            split_at_axis(&shape, d)
        };
        let mut v = x.to_f64_vec();
        let hard = self.hard;
        for o in 0..outer {
            for i in 0..inner {
                let at = |j: usize| (o * n + j) * inner + i;
                let mut best: Option<(usize, f64)> = None;
                for j in 0..n {
                    let y = v.get(at(j)).copied().unwrap_or(f64::NAN);
                    let better = match best {
                        None => true,
                        Some((_, b)) => !b.is_nan() && (y.is_nan() || y > b),
                    };
                    if better {
                        best = Some((j, y));
                    }
                }
                let Some((arg, m)) = best else { continue };
                if hard {
                    for j in 0..n {
                        if let Some(y) = v.get_mut(at(j)) {
                            *y = if j == arg { 1.0 } else { 0.0 };
                        }
                    }
                    continue;
                }
                let m = if m.is_finite() { m } else { 0.0 };
                let sum: f64 = (0..n)
                    .filter_map(|j| v.get(at(j)))
                    .map(|y| (y - m).exp())
                    .sum();
                let lse = m + sum.ln();
                for j in 0..n {
                    if let Some(y) = v.get_mut(at(j)) {
                        *y -= lse;
                    }
                }
            }
        }
        Ok(vec![Value::from_vec(&shape, v)?.cast(x.dtype())])
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

fn build(n: &NodeCtx, flatten: bool) -> Result<Op> {
    let a = n.attrs(&["axis"])?;
    n.arity((1, 1), (1, 1))?;
    Ok(Op::Dyn(Arc::new(SoftmaxLike {
        hard: n.node.op_type == "Hardmax",
        axis: a.int("axis", if flatten { 1 } else { -1 }),
        flatten,
    })))
}

fn build_2d(n: &NodeCtx) -> Result<Op> {
    build(n, true)
}

fn build_axis(n: &NodeCtx) -> Result<Op> {
    build(n, false)
}

/// Registers the ops of this file.
pub(crate) fn register(r: &mut Registry) {
    for name in ["LogSoftmax", "Hardmax"] {
        r.add("", name, 1, build_2d);
        r.add("", name, 13, build_axis);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(hard: bool, axis: i64, flatten: bool, x: &Value) -> Result<Value> {
        let op = SoftmaxLike {
            hard,
            axis,
            flatten,
        };
        let ctx = Ctx {
            node: "n",
            op: "S",
            arena: None,
        };
        Ok(op.run(&[Some(x)], ctx)?.remove(0))
    }

    #[test]
    fn log_softmax_matches_naive_on_each_form() {
        let data: Vec<f64> = (0..12).map(|i| (i as f64 * 0.7).sin() * 3.0).collect();
        let x = Value::from_vec(&[2, 3, 2], data.clone()).unwrap();
        // Along axis 1 (3 elements, stride 2).
        let y = run(false, -2, false, &x).unwrap().to_f64_vec();
        for o in 0..2 {
            for i in 0..2 {
                let idx = |j: usize| (o * 3 + j) * 2 + i;
                let s: f64 = (0..3).map(|j| data[idx(j)].exp()).sum();
                for j in 0..3 {
                    assert!((y[idx(j)] - (data[idx(j)] - s.ln())).abs() < 1e-12);
                }
            }
        }
        // Flattened at axis 1: each row of 6.
        let y = run(false, 1, true, &x).unwrap().to_f64_vec();
        for o in 0..2 {
            let s: f64 = (0..6).map(|j| data[o * 6 + j].exp()).sum();
            for j in 0..6 {
                assert!((y[o * 6 + j] - (data[o * 6 + j] - s.ln())).abs() < 1e-12);
            }
        }
        let big = Value::f32(&[3], vec![1000.0, 0.0, -1000.0]).unwrap();
        let y = run(false, 0, false, &big).unwrap().to_f64_vec();
        assert_eq!(y[0], 0.0);
        assert!(y.iter().all(|v| v.is_finite()));
    }

    #[test]
    fn hardmax_marks_the_first_maximum() {
        let x = Value::f32(&[2, 3], vec![1., 3., 3., -1., -2., -5.]).unwrap();
        assert_eq!(
            run(true, -1, false, &x).unwrap().to_f64_vec(),
            vec![0., 1., 0., 1., 0., 0.]
        );
        assert_eq!(
            run(true, 0, true, &x).unwrap().to_f64_vec(),
            vec![0., 1., 0., 0., 0., 0.]
        );
        let e = Value::f32(&[0, 3], vec![]).unwrap();
        assert_eq!(run(true, 1, false, &e).unwrap().shape(), &[0, 3]);
        assert!(run(true, 2, false, &x).is_err());
        let i = Value::i64(&[2], vec![1, 2]).unwrap();
        assert!(run(false, 0, false, &i).is_err());
    }
}
