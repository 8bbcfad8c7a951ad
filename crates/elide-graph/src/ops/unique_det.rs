//! Small miscellaneous ops: Unique (the distinct elements or slices along an axis, sorted or
//! in first-occurrence order, with first indices, inverse indices and counts), Det (the
//! determinant of the trailing square matrices, by LU with partial pivoting in f64) and
//! Swish (`x * sigmoid(alpha * x)`).
use super::operator::Operator;
use super::typed::{input, map_float, FLOATS};
use super::{Ctx, Op};
use crate::onnx::registry::{NodeCtx, Registry};
use crate::{map_array, Result, Value};
use ndarray::{Axis, IxDyn};
use std::cmp::Ordering;
use std::sync::Arc;

/// Unique: `axis` (None: the flattened input) and `sorted`.
#[derive(Clone, Debug)]
pub struct Unique {
    axis: Option<i64>,
    sorted: bool,
}

impl Operator for Unique {
    fn name(&self) -> &'static str {
        "Unique"
    }

    fn run(&self, inputs: &[Option<&Value>], ctx: Ctx) -> Result<Vec<Value>> {
        let x = input(inputs, 0, &[], ctx)?;
        // The input as (outer, len, inner) along the axis; elements compared through f64
        // (exact for every integer up to 2^53).
        let (xv, ax) = match self.axis {
            None => {
                let flat = map_array!(x, a => a
                    .as_standard_layout()
                    .into_owned()
                    .into_shape_with_order(IxDyn(&[a.len()]))
                    .map_err(|e| ctx.err(e.to_string()))?);
                (flat, 0)
            }
            Some(a) => (x.clone(), ctx.axis(a, x.shape().len())?),
        };
        let shape = xv.shape().to_vec();
        let len = shape[ax];
        let outer: usize = shape[..ax].iter().product();
        let inner: usize = shape[ax + 1..].iter().product();
        let vals = xv.to_f64_vec();
        let slice = |k: usize| -> Vec<f64> {
            let mut s = Vec::with_capacity(outer * inner);
            for o in 0..outer {
                let base = (o * len + k) * inner;
                s.extend_from_slice(&vals[base..base + inner]);
            }
            s
        };
        let keys: Vec<Vec<f64>> = (0..len).map(slice).collect();
        let cmp = |a: &Vec<f64>, b: &Vec<f64>| -> Ordering {
            a.iter()
                .zip(b)
                .map(|(x, y)| x.total_cmp(y))
                .find(|o| *o != Ordering::Equal)
                .unwrap_or(Ordering::Equal)
        };
        // Distinct keys: index of first occurrence, in first-occurrence order.
        let mut order: Vec<usize> = (0..len).collect();
        order.sort_by(|&i, &j| cmp(&keys[i], &keys[j]).then(i.cmp(&j)));
        let mut groups: Vec<(usize, Vec<usize>)> = Vec::new(); // (first, members)
        for &i in &order {
            match groups.last_mut() {
                Some((f, m)) if cmp(&keys[*f], &keys[i]) == Ordering::Equal => m.push(i),
                _ => groups.push((i, vec![i])),
            }
        }
        if !self.sorted {
            groups.sort_by_key(|g| g.0);
        }
        let first: Vec<usize> = groups.iter().map(|g| g.0).collect();
        let mut inverse = vec![0i64; len];
        for (gi, (_, m)) in groups.iter().enumerate() {
            for &i in m {
                inverse[i] = gi as i64;
            }
        }
        let counts: Vec<i64> = groups.iter().map(|g| g.1.len() as i64).collect();
        let y = map_array!(&xv, a => a.select(Axis(ax), &first));
        let nu = first.len();
        Ok(vec![
            y,
            Value::i64(&[nu], first.iter().map(|&i| i as i64).collect())?,
            Value::i64(&[len], inverse)?,
            Value::i64(&[nu], counts)?,
        ])
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// The determinant of an `n x n` row-major matrix.
fn det(mut m: Vec<f64>, n: usize) -> f64 {
    let mut d = 1.0;
    for c in 0..n {
        let p = (c..n)
            .max_by(|&i, &j| m[i * n + c].abs().total_cmp(&m[j * n + c].abs()))
            .unwrap_or(c);
        if m[p * n + c] == 0.0 {
            return 0.0;
        }
        if p != c {
            for k in 0..n {
                m.swap(p * n + k, c * n + k);
            }
            d = -d;
        }
        let piv = m[c * n + c];
        d *= piv;
        for r in c + 1..n {
            let f = m[r * n + c] / piv;
            for k in c..n {
                m[r * n + k] -= f * m[c * n + k];
            }
        }
    }
    d
}

/// Det of the trailing `[M, M]` matrices.
#[derive(Clone, Debug)]
pub struct Det;

impl Operator for Det {
    fn name(&self) -> &'static str {
        "Det"
    }

    fn run(&self, inputs: &[Option<&Value>], ctx: Ctx) -> Result<Vec<Value>> {
        let x = input(inputs, 0, &FLOATS, ctx)?;
        let s = x.shape();
        let r = s.len();
        if r < 2 || s[r - 1] != s[r - 2] {
            return Err(ctx.err(format!("input shape {s:?}: needs [..., M, M]")));
        }
        let n = s[r - 1];
        let v = x.to_f64_vec();
        let out: Vec<f64> = if n == 0 {
            vec![1.0; s[..r - 2].iter().product()]
        } else {
            v.chunks(n * n).map(|c| det(c.to_vec(), n)).collect()
        };
        Ok(vec![Value::from_vec(&s[..r - 2], out)?.cast(x.dtype())])
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// Swish: `x * sigmoid(alpha * x)`.
#[derive(Clone, Debug)]
pub struct Swish {
    alpha: f32,
}

impl Operator for Swish {
    fn name(&self) -> &'static str {
        "Swish"
    }

    fn run(&self, inputs: &[Option<&Value>], ctx: Ctx) -> Result<Vec<Value>> {
        let x = input(inputs, 0, &FLOATS, ctx)?;
        let a = self.alpha;
        let out = map_float(
            x,
            |v| v / (1.0 + (-a * v).exp()),
            |v| v / (1.0 + (-(a as f64) * v).exp()),
        )
        .ok_or_else(|| ctx.err(format!("input is {}", x.dtype())))?;
        Ok(vec![out])
    }

    fn pointwise(&self) -> bool {
        true
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

fn build_unique(n: &NodeCtx) -> Result<Op> {
    let a = n.attrs(&["axis", "sorted"])?;
    n.arity((1, 1), (1, 4))?;
    let axis = a.raw("axis").map(|r| r.i);
    let sorted = a.int("sorted", 1) != 0;
    Ok(Op::Dyn(Arc::new(Unique { axis, sorted })))
}

fn build_det(n: &NodeCtx) -> Result<Op> {
    n.attrs(&[])?;
    n.arity((1, 1), (1, 1))?;
    Ok(Op::Dyn(Arc::new(Det)))
}

fn build_swish(n: &NodeCtx) -> Result<Op> {
    let a = n.attrs(&["alpha"])?;
    n.arity((1, 1), (1, 1))?;
    Ok(Op::Dyn(Arc::new(Swish {
        alpha: a.float("alpha", 1.0),
    })))
}

/// Registers the ops of this file.
pub(crate) fn register(r: &mut Registry) {
    r.add("", "Unique", 11, build_unique);
    r.add("", "Det", 11, build_det);
    r.add("", "Swish", 24, build_swish);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Ctx<'static> {
        Ctx {
            node: "n",
            op: "t",
            arena: None,
        }
    }

    #[test]
    fn unique_flat_sorted_and_unsorted() {
        let x = Value::f32(&[6], vec![2., 1., 1., 3., 4., 3.]).unwrap();
        let o = Unique {
            axis: None,
            sorted: true,
        }
        .run(&[Some(&x)], ctx())
        .unwrap();
        assert_eq!(o[0].to_f64_vec(), vec![1., 2., 3., 4.]);
        assert_eq!(o[1].to_i64_vec(), vec![1, 0, 3, 4]);
        assert_eq!(o[2].to_i64_vec(), vec![1, 0, 0, 2, 3, 2]);
        assert_eq!(o[3].to_i64_vec(), vec![2, 1, 2, 1]);
        let o = Unique {
            axis: None,
            sorted: false,
        }
        .run(&[Some(&x)], ctx())
        .unwrap();
        assert_eq!(o[0].to_f64_vec(), vec![2., 1., 3., 4.]);
        assert_eq!(o[2].to_i64_vec(), vec![0, 1, 1, 2, 3, 2]);
        let e = Value::i64(&[0], vec![]).unwrap();
        let o = Unique {
            axis: None,
            sorted: true,
        }
        .run(&[Some(&e)], ctx())
        .unwrap();
        assert_eq!(o[0].shape(), &[0]);
    }

    #[test]
    fn unique_along_negative_axis() {
        // Columns of [[1, 0, 1], [2, 5, 2]]: col 0 == col 2.
        let x = Value::i64(&[2, 3], vec![1, 0, 1, 2, 5, 2]).unwrap();
        let o = Unique {
            axis: Some(-1),
            sorted: true,
        }
        .run(&[Some(&x)], ctx())
        .unwrap();
        assert_eq!(o[0].shape(), &[2, 2]);
        assert_eq!(o[0].to_i64_vec(), vec![0, 1, 5, 2]);
        assert_eq!(o[2].to_i64_vec(), vec![1, 0, 1]);
        assert!(Unique {
            axis: Some(2),
            sorted: true
        }
        .run(&[Some(&x)], ctx())
        .is_err());
    }

    #[test]
    fn det_batches_and_singular() {
        let x = Value::from_vec(&[2, 2, 2], vec![1f64, 2., 3., 4., 2., 4., 1., 2.]).unwrap();
        let o = Det.run(&[Some(&x)], ctx()).unwrap();
        assert_eq!(o[0].shape(), &[2]);
        let v = o[0].to_f64_vec();
        assert!((v[0] + 2.0).abs() < 1e-12 && v[1].abs() < 1e-12);
        let x3 = Value::f32(&[3, 3], vec![0., 1., 2., 1., 0., 3., 4., -3., 8.]).unwrap();
        assert!((Det.run(&[Some(&x3)], ctx()).unwrap()[0].to_f64_vec()[0] + 2.0).abs() < 1e-5);
        assert!(Det
            .run(&[Some(&Value::f32(&[2, 3], vec![0.; 6]).unwrap())], ctx())
            .is_err());
    }

    #[test]
    fn swish_matches_formula() {
        let x = Value::f32(&[3], vec![-1., 0., 2.]).unwrap();
        let o = Swish { alpha: 0.5 }.run(&[Some(&x)], ctx()).unwrap();
        for (g, v) in o[0].to_f64_vec().iter().zip([-1f64, 0., 2.]) {
            assert!((g - v / (1.0 + (-0.5 * v).exp())).abs() < 1e-6);
        }
        assert!(Swish { alpha: 1.0 }
            .run(&[Some(&Value::i64(&[1], vec![1]).unwrap())], ctx())
            .is_err());
    }
}
