//! Ops that search or scan along one axis: ArgMax and ArgMin (`axis`, `keepdims`,
//! `select_last_index`; i64 output), TopK (k from input 1, or the opset-1 attribute;
//! `largest`, `sorted`; values plus i64 indices, ties to the smaller index) and CumSum (axis
//! from input 1; `exclusive`, `reverse`).
//!
//! Comparisons run in the input's own type; NaN ranks above every number (as numpy's sorts
//! and `argmax` treat it). CumSum accumulates floats in f64 and integers in wrapping i64.
use super::operator::Operator;
use super::typed::{input, NUMERIC};
use super::{Ctx, Op};
use crate::onnx::registry::{NodeCtx, Registry};
use crate::{with_array, DType, Elem, GraphError, Result, Value};
use ndarray::{ArrayD, IxDyn};
use std::cmp::Ordering;
use std::sync::Arc;

/// `(outer, n, inner)`: the shape seen as a 3-D block around axis `d`.
pub fn split_at_axis(shape: &[usize], d: usize) -> (usize, usize, usize) {
    let outer = shape.iter().take(d).product();
    let n = shape.get(d).copied().unwrap_or(1);
    let inner = shape.iter().skip(d + 1).product();
    (outer, n, inner)
}

/// Total order with NaN above every number (NaNs equal to each other).
fn order<T: PartialOrd>(a: &T, b: &T) -> Ordering {
    #[allow(clippy::eq_op)]
    let (an, bn) = (a != a, b != b);
    match (an, bn) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        _ => a.partial_cmp(b).unwrap_or(Ordering::Equal),
    }
}

fn array<T>(shape: &[usize], v: Vec<T>) -> Result<ArrayD<T>> {
    ArrayD::from_shape_vec(IxDyn(shape), v)
        .map_err(|e| GraphError::Model(format!("output of shape {shape:?}: {e}")))
}

/// ArgMax or ArgMin.
#[derive(Clone, Debug)]
pub struct ArgExt {
    max: bool,
    axis: i64,
    keepdims: bool,
    last: bool,
}

impl Operator for ArgExt {
    fn name(&self) -> &'static str {
        if self.max {
            "ArgMax"
        } else {
            "ArgMin"
        }
    }

    fn run(&self, inputs: &[Option<&Value>], ctx: Ctx) -> Result<Vec<Value>> {
        let x = input(inputs, 0, &NUMERIC, ctx)?;
        let d = ctx.axis(self.axis, x.shape().len())?;
        let (outer, n, inner) = split_at_axis(x.shape(), d);
        if n == 0 {
            return Err(ctx.err(format!("axis {} of {:?} is empty", self.axis, x.shape())));
        }
        let mut shape = x.shape().to_vec();
        if self.keepdims {
            shape[d] = 1;
        } else {
            shape.remove(d);
        }
        let (max, last) = (self.max, self.last);
        let idx = with_array!(x, a => arg(a, outer, n, inner, max, last));
        Ok(vec![Value::from_vec(&shape, idx)?])
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

fn arg<T: Elem + PartialOrd>(
    a: &ArrayD<T>,
    outer: usize,
    n: usize,
    inner: usize,
    max: bool,
    last: bool,
) -> Vec<i64> {
    let data: Vec<T> = a.iter().copied().collect();
    let mut out = Vec::with_capacity(outer * inner);
    for o in 0..outer {
        for i in 0..inner {
            let at = |j: usize| data.get((o * n + j) * inner + i);
            let mut best = 0;
            for j in 1..n {
                let (Some(x), Some(b)) = (at(j), at(best)) else {
                    continue;
                };
                let c = order(x, b);
                let c = if max { c } else { c.reverse() };
                if c == Ordering::Greater || (last && c == Ordering::Equal) {
                    best = j;
                }
            }
            out.push(best as i64);
        }
    }
    out
}

/// TopK.
#[derive(Clone, Debug)]
pub struct TopK {
    /// k from the opset-1 attribute (later: input 1).
    k: Option<i64>,
    axis: i64,
    largest: bool,
}

impl Operator for TopK {
    fn name(&self) -> &'static str {
        "TopK"
    }

    fn run(&self, inputs: &[Option<&Value>], ctx: Ctx) -> Result<Vec<Value>> {
        let x = input(inputs, 0, &NUMERIC, ctx)?;
        let k = match self.k {
            Some(k) => k,
            None => {
                let kv = input(inputs, 1, &[DType::I64], ctx)?;
                match kv.to_i64_vec()[..] {
                    [k] => k,
                    ref v => return Err(ctx.err(format!("k must be one value, got {v:?}"))),
                }
            }
        };
        let d = ctx.axis(self.axis, x.shape().len())?;
        let (outer, n, inner) = split_at_axis(x.shape(), d);
        let k = usize::try_from(k)
            .ok()
            .filter(|&k| k <= n)
            .ok_or_else(|| ctx.err(format!("k = {k} for an axis of {n}")))?;
        let mut shape = x.shape().to_vec();
        shape[d] = k;
        let largest = self.largest;
        let (values, indices) = with_array!(x, a => {
            let (v, i) = top(a, outer, n, inner, k, largest);
            (Elem::wrap(array(&shape, v)?), i)
        });
        Ok(vec![values, Value::from_vec(&shape, indices)?])
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

fn top<T: Elem + PartialOrd>(
    a: &ArrayD<T>,
    outer: usize,
    n: usize,
    inner: usize,
    k: usize,
    largest: bool,
) -> (Vec<T>, Vec<i64>) {
    let data: Vec<T> = a.iter().copied().collect();
    let mut vals = vec![T::default(); outer * k * inner];
    let mut idx = vec![0i64; outer * k * inner];
    let mut order_buf: Vec<usize> = Vec::with_capacity(n);
    for o in 0..outer {
        for i in 0..inner {
            let at = |j: usize| {
                data.get((o * n + j) * inner + i)
                    .copied()
                    .unwrap_or_default()
            };
            order_buf.clear();
            order_buf.extend(0..n);
            // Stable: equal values keep the smaller index first.
            order_buf.sort_by(|&p, &q| {
                let c = order(&at(p), &at(q));
                if largest {
                    c.reverse()
                } else {
                    c
                }
            });
            for (r, &j) in order_buf.iter().take(k).enumerate() {
                let pos = (o * k + r) * inner + i;
                if let (Some(v), Some(ix)) = (vals.get_mut(pos), idx.get_mut(pos)) {
                    *v = at(j);
                    *ix = j as i64;
                }
            }
        }
    }
    (vals, idx)
}

/// CumSum.
#[derive(Clone, Debug)]
pub struct CumSum {
    exclusive: bool,
    reverse: bool,
}

impl Operator for CumSum {
    fn name(&self) -> &'static str {
        "CumSum"
    }

    fn run(&self, inputs: &[Option<&Value>], ctx: Ctx) -> Result<Vec<Value>> {
        let x = input(inputs, 0, &NUMERIC, ctx)?;
        let av = input(inputs, 1, &[DType::I32, DType::I64], ctx)?;
        let axis = match av.to_i64_vec()[..] {
            [a] if av.shape().len() <= 1 => a,
            _ => return Err(ctx.err(format!("axis must be a scalar, got shape {:?}", av.shape()))),
        };
        let d = ctx.axis(axis, x.shape().len())?;
        let (outer, n, inner) = split_at_axis(x.shape(), d);
        let shape = x.shape().to_vec();
        let (ex, rev) = (self.exclusive, self.reverse);
        let out = if x.dtype().is_float() {
            let v = scan(x.to_f64_vec(), outer, n, inner, ex, rev, 0.0, |a, b| a + b);
            Value::from_vec(&shape, v)?.cast(x.dtype())
        } else {
            let v = scan(
                x.to_i64_vec(),
                outer,
                n,
                inner,
                ex,
                rev,
                0,
                i64::wrapping_add,
            );
            Value::from_vec(&shape, v)?.cast(x.dtype())
        };
        Ok(vec![out])
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

#[allow(clippy::too_many_arguments)]
fn scan<T: Copy>(
    data: Vec<T>,
    outer: usize,
    n: usize,
    inner: usize,
    exclusive: bool,
    reverse: bool,
    zero: T,
    add: impl Fn(T, T) -> T,
) -> Vec<T> {
    let mut out = vec![zero; data.len()];
    for o in 0..outer {
        for i in 0..inner {
            let mut acc = zero;
            for step in 0..n {
                let j = if reverse { n - 1 - step } else { step };
                let p = (o * n + j) * inner + i;
                let (Some(&x), Some(y)) = (data.get(p), out.get_mut(p)) else {
                    continue;
                };
                if exclusive {
                    *y = acc;
                    acc = add(acc, x);
                } else {
                    acc = add(acc, x);
                    *y = acc;
                }
            }
        }
    }
    out
}

fn build_arg(n: &NodeCtx) -> Result<Op> {
    let a = n.attrs(&["axis", "keepdims", "select_last_index"])?;
    n.arity((1, 1), (1, 1))?;
    Ok(Op::Dyn(Arc::new(ArgExt {
        max: n.node.op_type == "ArgMax",
        axis: a.int("axis", 0),
        keepdims: a.int("keepdims", 1) != 0,
        last: a.int("select_last_index", 0) != 0,
    })))
}

fn build_topk_1(n: &NodeCtx) -> Result<Op> {
    let a = n.attrs(&["k", "axis"])?;
    n.arity((1, 1), (2, 2))?;
    let k = a
        .raw("k")
        .map(|r| r.i)
        .ok_or_else(|| n.err("attribute k is missing"))?;
    Ok(Op::Dyn(Arc::new(TopK {
        k: Some(k),
        axis: a.int("axis", -1),
        largest: true,
    })))
}

fn build_topk(n: &NodeCtx) -> Result<Op> {
    let a = n.attrs(&["axis", "largest", "sorted"])?;
    n.arity((2, 2), (2, 2))?;
    // sorted = 0 leaves the order unspecified: sorted output is one valid order.
    Ok(Op::Dyn(Arc::new(TopK {
        k: None,
        axis: a.int("axis", -1),
        largest: a.int("largest", 1) != 0,
    })))
}

fn build_cumsum(n: &NodeCtx) -> Result<Op> {
    let a = n.attrs(&["exclusive", "reverse"])?;
    n.arity((2, 2), (1, 1))?;
    Ok(Op::Dyn(Arc::new(CumSum {
        exclusive: a.int("exclusive", 0) != 0,
        reverse: a.int("reverse", 0) != 0,
    })))
}

/// Registers the ops of this file.
pub(crate) fn register(r: &mut Registry) {
    r.add("", "ArgMax", 1, build_arg);
    r.add("", "ArgMin", 1, build_arg);
    r.add("", "TopK", 1, build_topk_1);
    r.add("", "TopK", 10, build_topk);
    r.add("", "CumSum", 11, build_cumsum);
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

    fn argx(max: bool, axis: i64, keepdims: bool, last: bool, x: &Value) -> Result<Value> {
        let op = ArgExt {
            max,
            axis,
            keepdims,
            last,
        };
        Ok(op.run(&[Some(x)], ctx())?.remove(0))
    }

    #[test]
    fn arg_max_min_on_each_axis_and_ties() {
        let x = Value::f32(&[2, 3], vec![1., 5., 5., 7., 0., 7.]).unwrap();
        let a = argx(true, 1, false, false, &x).unwrap();
        assert_eq!((a.shape(), a.to_i64_vec()), (&[2][..], vec![1, 0]));
        let a = argx(true, -1, true, true, &x).unwrap();
        assert_eq!((a.shape(), a.to_i64_vec()), (&[2, 1][..], vec![2, 2]));
        let a = argx(false, 0, true, false, &x).unwrap();
        assert_eq!((a.shape(), a.to_i64_vec()), (&[1, 3][..], vec![0, 1, 0]));
        let u = Value::from_vec(&[3], vec![1u64, u64::MAX, 2]).unwrap();
        assert_eq!(
            argx(true, 0, false, false, &u).unwrap().to_i64_vec(),
            vec![1]
        );
        let one = Value::f32(&[1, 1], vec![3.0]).unwrap();
        assert_eq!(
            argx(true, 1, true, false, &one).unwrap().to_i64_vec(),
            vec![0]
        );
        let empty = Value::f32(&[2, 0], vec![]).unwrap();
        assert!(argx(true, 1, true, false, &empty).is_err());
        assert_eq!(argx(true, 0, true, false, &empty).unwrap().shape(), &[1, 0]);
        assert!(argx(true, 2, true, false, &x).is_err());
    }

    fn topk(x: &Value, k: i64, axis: i64, largest: bool) -> Result<(Value, Value)> {
        let op = TopK {
            k: None,
            axis,
            largest,
        };
        let kv = Value::i64(&[1], vec![k]).unwrap();
        let mut o = op.run(&[Some(x), Some(&kv)], ctx())?;
        let i = o.remove(1);
        Ok((o.remove(0), i))
    }

    #[test]
    fn topk_sorts_and_breaks_ties_by_index() {
        let x = Value::f32(&[2, 4], vec![1., 3., 3., 2., 4., 4., 0., 4.]).unwrap();
        let (v, i) = topk(&x, 3, -1, true).unwrap();
        assert_eq!(v.shape(), &[2, 3]);
        assert_eq!(v.to_f64_vec(), vec![3., 3., 2., 4., 4., 4.]);
        assert_eq!(i.to_i64_vec(), vec![1, 2, 3, 0, 1, 3]);
        let (v, i) = topk(&x, 1, 0, false).unwrap();
        assert_eq!(v.to_f64_vec(), vec![1., 3., 0., 2.]);
        assert_eq!(i.to_i64_vec(), vec![0, 0, 1, 0]);
        let (v, _) = topk(&x, 0, 1, true).unwrap();
        assert_eq!(v.shape(), &[2, 0]);
        assert!(topk(&x, 5, 1, true).is_err());
        assert!(topk(&x, -1, 1, true).is_err());
        let n = Value::f32(&[3], vec![1.0, f32::NAN, 2.0]).unwrap();
        assert_eq!(topk(&n, 1, 0, true).unwrap().1.to_i64_vec(), vec![1]);
        assert_eq!(topk(&n, 1, 0, false).unwrap().1.to_i64_vec(), vec![0]);
    }

    fn cumsum(x: &Value, axis: Value, exclusive: bool, reverse: bool) -> Result<Value> {
        let op = CumSum { exclusive, reverse };
        Ok(op.run(&[Some(x), Some(&axis)], ctx())?.remove(0))
    }

    #[test]
    fn cumsum_forms() {
        let x = Value::from_vec(&[2, 3], vec![1i32, 2, 3, 4, 5, 6]).unwrap();
        let ax = |a: i64| Value::i64(&[], vec![a]).unwrap();
        assert_eq!(
            cumsum(&x, ax(1), false, false).unwrap().to_i64_vec(),
            vec![1, 3, 6, 4, 9, 15]
        );
        assert_eq!(
            cumsum(&x, ax(-2), false, false).unwrap().to_i64_vec(),
            vec![1, 2, 3, 5, 7, 9]
        );
        assert_eq!(
            cumsum(&x, ax(1), true, true).unwrap().to_i64_vec(),
            vec![5, 3, 0, 11, 6, 0]
        );
        let f = Value::f32(&[3], vec![0.5, 1.0, 2.0]).unwrap();
        let y = cumsum(&f, Value::from_vec(&[1], vec![0i32]).unwrap(), true, false).unwrap();
        assert_eq!(y.dtype(), DType::F32);
        assert_eq!(y.to_f64_vec(), vec![0.0, 0.5, 1.5]);
        assert!(cumsum(&f, ax(1), false, false).is_err());
        assert!(cumsum(&f, Value::i64(&[2], vec![0, 0]).unwrap(), false, false).is_err());
        let e = Value::f32(&[0, 2], vec![]).unwrap();
        assert_eq!(cumsum(&e, ax(0), false, false).unwrap().shape(), &[0, 2]);
    }
}
