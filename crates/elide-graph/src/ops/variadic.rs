//! Variadic element-wise reductions over their inputs: `Min`, `Max`, `Sum`, `Mean`. One or
//! more inputs of one numeric type, broadcast together as numpy does; Min and Max propagate
//! NaN; integer Sum wraps and integer Mean truncates toward zero.
use super::arith::{numeric_one, numeric_pair, pair_err, Arith};
use super::operator::Operator;
use super::typed::{input, zip_map, NUMERIC};
use super::{Ctx, Op};
use crate::onnx::registry::{NodeCtx, Registry};
use crate::{Result, Value};
use ndarray::ArrayD;
use std::sync::Arc;

/// Which reduction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fold {
    /// The smallest (NaN if any is NaN).
    Min,
    /// The largest (NaN if any is NaN).
    Max,
    /// The sum.
    Sum,
    /// The mean.
    Mean,
}

impl Fold {
    const ALL: [(&'static str, Fold); 4] = [
        ("Min", Fold::Min),
        ("Max", Fold::Max),
        ("Sum", Fold::Sum),
        ("Mean", Fold::Mean),
    ];

    /// Combines the running value `a` with the next input's `b`.
    fn step<T: Arith>(self, a: T, b: T) -> T {
        match self {
            Fold::Min | Fold::Max if a.is_nan() => a,
            Fold::Min | Fold::Max if b.is_nan() => b,
            Fold::Min => {
                if b < a {
                    b
                } else {
                    a
                }
            }
            Fold::Max => {
                if b > a {
                    b
                } else {
                    a
                }
            }
            Fold::Sum | Fold::Mean => a.add(b),
        }
    }
}

/// One of the reductions as an op.
#[derive(Clone, Debug)]
pub struct Variadic {
    f: Fold,
    name: &'static str,
}

/// `sum / n` for Mean (`n >= 1`), else the value unchanged.
fn finish<T: Arith>(f: Fold, a: ArrayD<T>, n: usize, ctx: Ctx) -> Result<Value> {
    if f != Fold::Mean || n == 1 {
        return Ok(T::wrap(a));
    }
    let d = if T::FLOAT {
        T::from_f64(n as f64)
    } else {
        T::from_i64(i64::try_from(n).map_err(|_| ctx.err("too many inputs"))?)
    };
    Ok(T::wrap(a.mapv(|x| x.div(d).unwrap_or(x))))
}

impl Operator for Variadic {
    fn name(&self) -> &'static str {
        self.name
    }

    fn run(&self, inputs: &[Option<&Value>], ctx: Ctx) -> Result<Vec<Value>> {
        if inputs.is_empty() {
            return Err(ctx.err("needs at least one input"));
        }
        let f = self.f;
        let mut acc = input(inputs, 0, &NUMERIC, ctx)?.clone();
        for i in 1..inputs.len() {
            let b = input(inputs, i, &NUMERIC, ctx)?;
            fn go<T: Arith>(f: Fold, a: &ArrayD<T>, b: &ArrayD<T>, ctx: Ctx) -> Result<Value> {
                Ok(T::wrap(zip_map(a, b, |x, y| f.step(x, y), ctx)?))
            }
            acc = numeric_pair!(&acc, b, x, y => go(f, x, y, ctx)?, return Err(pair_err(&acc, b, ctx)));
        }
        let n = inputs.len();
        let out = numeric_one!(acc, a => finish(f, a, n, ctx)?, return Err(ctx.err("bool is not numeric")));
        Ok(vec![out])
    }

    fn pointwise(&self) -> bool {
        true
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

fn build(n: &NodeCtx) -> Result<Op> {
    n.attrs(&[])?;
    n.arity((1, usize::MAX), (1, 1))?;
    let op = n.node.op_type.as_str();
    let (name, f) = Fold::ALL
        .iter()
        .find(|(s, _)| *s == op)
        .copied()
        .ok_or_else(|| n.err("not a variadic op"))?;
    Ok(Op::Dyn(Arc::new(Variadic { f, name })))
}

/// Registers the ops of this file.
pub(crate) fn register(r: &mut Registry) {
    for (name, _) in Fold::ALL {
        r.add("", name, 1, build);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::arith::tests::{arr, naive};
    use crate::ops::tests::CTX;

    fn run(f: Fold, ins: &[&Value]) -> Result<Value> {
        let ins: Vec<Option<&Value>> = ins.iter().map(|v| Some(*v)).collect();
        Ok(Variadic { f, name: "t" }.run(&ins, CTX)?.remove(0))
    }

    #[test]
    fn folds_broadcast_over_any_number_of_inputs() {
        let a = arr(&[2, 1], vec![1.0f64, 6.0]);
        let b = arr(&[3], vec![3.0f64, f64::NAN, -2.0]);
        let c = arr(&[1, 1], vec![4.0f64]);
        let ins = [
            Value::F64(a.clone()),
            Value::F64(b.clone()),
            Value::F64(c.clone()),
        ];
        let refs: Vec<&Value> = ins.iter().collect();
        let same = |x: f64, y: f64| (x.is_nan() && y.is_nan()) || x == y;
        for (f, g) in [
            (
                Fold::Min,
                (|x: f64, y: f64| {
                    if x.is_nan() || y.is_nan() {
                        f64::NAN
                    } else {
                        x.min(y)
                    }
                }) as fn(f64, f64) -> f64,
            ),
            (Fold::Max, |x, y| {
                if x.is_nan() || y.is_nan() {
                    f64::NAN
                } else {
                    x.max(y)
                }
            }),
            (Fold::Sum, |x, y| x + y),
        ] {
            let want = naive(&naive(&a, &b, g), &c, g);
            let got = run(f, &refs).unwrap();
            assert_eq!(got.shape(), &[2, 3]);
            for (x, y) in got.to_f64_vec().iter().zip(want.iter()) {
                assert!(same(*x, *y), "{f:?}: {x} vs {y}");
            }
        }
        let mean = run(Fold::Mean, &refs).unwrap().to_f64_vec();
        assert_eq!(mean[0], (1.0 + 3.0 + 4.0) / 3.0);
        assert!(mean[1].is_nan());
        // One input is a copy; integers truncate; empty shapes stay empty.
        assert_eq!(run(Fold::Mean, &[&ins[1]]).unwrap().shape(), &[3]);
        let i = Value::from_vec(&[2], vec![7i32, -7]).unwrap();
        let j = Value::from_vec(&[1], vec![0i32]).unwrap();
        assert_eq!(
            run(Fold::Mean, &[&i, &j]).unwrap().to_i64_vec(),
            vec![3, -3]
        );
        assert_eq!(run(Fold::Max, &[&i, &j]).unwrap().to_i64_vec(), vec![7, 0]);
        let u = Value::from_vec(&[2], vec![u32::MAX, 1]).unwrap();
        assert_eq!(
            run(Fold::Min, &[&u, &u]).unwrap().to_i64_vec(),
            vec![u32::MAX as i64, 1]
        );
        let e = Value::from_vec(&[0, 2], Vec::<i32>::new()).unwrap();
        assert_eq!(run(Fold::Sum, &[&e, &i]).unwrap().shape(), &[0, 2]);
        // Mixed types, bool, no inputs and shapes that do not broadcast are errors.
        assert!(run(Fold::Sum, &[&i, &ins[0]]).is_err());
        let t = Value::from_vec(&[1], vec![true]).unwrap();
        assert!(run(Fold::Max, &[&t])
            .unwrap_err()
            .to_string()
            .contains("bool"));
        assert!(run(Fold::Max, &[]).is_err());
        let k = Value::from_vec(&[3], vec![1i32; 3]).unwrap();
        assert!(run(Fold::Sum, &[&i, &k]).is_err());
    }
}
