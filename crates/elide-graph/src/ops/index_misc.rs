//! Index-producing and selecting ops on every element type: OneHot (depth and values read
//! at run time), NonZero (i64 coordinates `[rank, n]`), Compress (along an axis or over the
//! flattened input) and ReverseSequence.
use super::indexing::{index_values, next_index, with_slice};
use super::operator::Operator;
use super::typed::{input, NUMERIC};
use super::{Ctx, Op};
use crate::onnx::registry::{NodeCtx, Registry};
use crate::{map_array, with_array, DType, Elem, Result, Value};
use ndarray::{ArrayD, Axis, IxDyn};
use std::sync::Arc;

/// OneHot: a new axis of length `depth` holding `values[1]` where it equals the index and
/// `values[0]` elsewhere (indices outside `[-depth, depth)` give all `values[0]`).
#[derive(Clone, Debug)]
pub struct OneHot {
    axis: i64,
}

impl Operator for OneHot {
    fn name(&self) -> &'static str {
        "OneHot"
    }

    fn run(&self, inputs: &[Option<&Value>], ctx: Ctx) -> Result<Vec<Value>> {
        let ind = input(inputs, 0, &NUMERIC, ctx)?;
        let depth_v = input(inputs, 1, &NUMERIC, ctx)?;
        let values = input(inputs, 2, &[], ctx)?;
        let depth = match depth_v.to_f64_vec().as_slice() {
            [d] if *d >= 0.0 && d.is_finite() => *d as u128,
            d => return Err(ctx.err(format!("depth {d:?} is not one non-negative number"))),
        };
        if values.len() != 2 {
            return Err(ctx.err(format!(
                "values of shape {:?}: need [off, on]",
                values.shape()
            )));
        }
        let r = ind.shape().len();
        let axis = ctx.axis(self.axis, r + 1)?;
        let mut wide: Vec<u128> = ind.shape().iter().map(|&d| d as u128).collect();
        wide.insert(axis, depth);
        let out_shape = ctx.sized_wide("output", &wide)?;
        let depth = out_shape[axis];
        let inner: usize = ind.shape()[axis..].iter().product();
        // Positions of the "on" value: the index's slot along the new axis, if any.
        let ix: Vec<Option<usize>> = ind
            .to_f64_vec()
            .into_iter()
            .map(|v| {
                let i = v as i64; // truncated, as the reference's cast to int64
                let i = if i < 0 {
                    i.checked_add(depth as i64)?
                } else {
                    i
                };
                usize::try_from(i).ok().filter(|&i| i < depth)
            })
            .collect();
        fn fill<T: Elem>(
            vals: &ArrayD<T>,
            ix: &[Option<usize>],
            inner: usize,
            depth: usize,
            shape: &[usize],
        ) -> Result<Value> {
            let v: Vec<T> = vals.iter().copied().collect();
            let (off, on) = (v[0], v[1]);
            let n: usize = shape.iter().product();
            let mut out = vec![off; n];
            for (p, i) in ix.iter().enumerate() {
                if let Some(d) = i {
                    let (o, j) = (p / inner.max(1), p % inner.max(1));
                    out[(o * depth + d) * inner + j] = on;
                }
            }
            Ok(T::wrap(ArrayD::from_shape_vec(IxDyn(shape), out)?))
        }
        let out = with_array!(values, a => fill(a, &ix, inner, depth, &out_shape)?);
        Ok(vec![out])
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// NonZero: the coordinates of the non-zero elements, `[rank, n]` i64 in C order.
#[derive(Clone, Debug)]
pub struct NonZero;

fn nonzero<T: Elem>(a: &ArrayD<T>) -> Result<Value> {
    let shape = a.shape().to_vec();
    let rank = shape.len();
    let mut coords: Vec<Vec<i64>> = vec![Vec::new(); rank];
    let mut n = 0;
    if !a.is_empty() {
        let mut idx = vec![0usize; rank];
        for &v in a.iter() {
            if v != T::default() {
                n += 1;
                for (c, &i) in coords.iter_mut().zip(&idx) {
                    c.push(i as i64);
                }
            }
            next_index(&mut idx, &shape);
        }
    }
    Value::from_vec(&[rank, n], coords.concat())
}

impl Operator for NonZero {
    fn name(&self) -> &'static str {
        "NonZero"
    }

    fn run(&self, inputs: &[Option<&Value>], ctx: Ctx) -> Result<Vec<Value>> {
        let x = input(inputs, 0, &[], ctx)?;
        Ok(vec![with_array!(x, a => nonzero(a)?)])
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// Compress: the slices along `axis` (or the elements of the flattened input) where the
/// bool condition is true; a condition shorter than the axis drops the rest.
#[derive(Clone, Debug)]
pub struct Compress {
    axis: Option<i64>,
}

impl Operator for Compress {
    fn name(&self) -> &'static str {
        "Compress"
    }

    fn run(&self, inputs: &[Option<&Value>], ctx: Ctx) -> Result<Vec<Value>> {
        let x = input(inputs, 0, &[], ctx)?;
        let cond = input(inputs, 1, &[DType::Bool], ctx)?;
        if cond.shape().len() != 1 {
            return Err(ctx.err(format!("condition of shape {:?} is not 1-D", cond.shape())));
        }
        let (flat, axis) = match self.axis {
            Some(a) => (x.clone(), ctx.axis(a, x.shape().len())?),
            None => (
                map_array!(x, a => with_slice(a, |s| ArrayD::from_shape_vec(IxDyn(&[s.len()]), s.to_vec()))?),
                0,
            ),
        };
        let dim = flat.shape()[axis];
        let keep: Vec<usize> = cond
            .to_i64_vec()
            .iter()
            .enumerate()
            .filter(|(_, &c)| c != 0)
            .map(|(i, _)| i)
            .collect();
        if let Some(i) = keep.iter().find(|&&i| i >= dim) {
            return Err(ctx.err(format!(
                "condition selects index {i} of an axis of length {dim}"
            )));
        }
        Ok(vec![map_array!(&flat, a => a.select(Axis(axis), &keep))])
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// ReverseSequence: for each batch entry `b`, the first `sequence_lens[b]` steps along the
/// time axis reversed, the rest copied.
#[derive(Clone, Debug)]
pub struct ReverseSequence {
    batch_axis: usize,
    time_axis: usize,
}

impl Operator for ReverseSequence {
    fn name(&self) -> &'static str {
        "ReverseSequence"
    }

    fn run(&self, inputs: &[Option<&Value>], ctx: Ctx) -> Result<Vec<Value>> {
        let x = input(inputs, 0, &[], ctx)?;
        let lens = index_values(input(inputs, 1, &[], ctx)?, "sequence_lens", ctx)?;
        let s = x.shape();
        if s.len() < 2 {
            return Err(ctx.err(format!("input of shape {s:?} has rank below 2")));
        }
        let (ba, ta) = (self.batch_axis, self.time_axis);
        let (batch, time) = (s[ba], s[ta]);
        if lens.len() != batch {
            return Err(ctx.err(format!(
                "{} sequence_lens for a batch of {batch}",
                lens.len()
            )));
        }
        if let Some(l) = lens.iter().find(|&&l| l < 0 || l as u64 > time as u64) {
            return Err(ctx.err(format!("sequence length {l} outside [0, {time}]")));
        }
        // The time axis once the batch axis is indexed away.
        let ta_in = if ta > ba { ta - 1 } else { ta };
        let out = map_array!(x, a => {
            let mut out = a.to_owned();
            for (b, &len) in lens.iter().enumerate() {
                let len = len as usize;
                let src = a.index_axis(Axis(ba), b);
                let mut dst = out.index_axis_mut(Axis(ba), b);
                for t in 0..len {
                    dst.index_axis_mut(Axis(ta_in), t)
                        .assign(&src.index_axis(Axis(ta_in), len - 1 - t));
                }
            }
            out
        });
        Ok(vec![out])
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

fn build_one_hot(n: &NodeCtx) -> Result<Op> {
    let a = n.attrs(&["axis"])?;
    n.arity((3, 3), (1, 1))?;
    Ok(Op::Dyn(Arc::new(OneHot {
        axis: a.int("axis", -1),
    })))
}

fn build_nonzero(n: &NodeCtx) -> Result<Op> {
    n.attrs(&[])?;
    n.arity((1, 1), (1, 1))?;
    Ok(Op::Dyn(Arc::new(NonZero)))
}

fn build_compress(n: &NodeCtx) -> Result<Op> {
    let a = n.attrs(&["axis"])?;
    n.arity((2, 2), (1, 1))?;
    let axis = a.raw("axis").map(|_| a.int("axis", 0));
    Ok(Op::Dyn(Arc::new(Compress { axis })))
}

fn build_reverse_sequence(n: &NodeCtx) -> Result<Op> {
    let a = n.attrs(&["batch_axis", "time_axis"])?;
    n.arity((2, 2), (1, 1))?;
    let (b, t) = (a.int("batch_axis", 1), a.int("time_axis", 0));
    match (b, t) {
        (0, 1) | (1, 0) => Ok(Op::Dyn(Arc::new(ReverseSequence {
            batch_axis: b as usize,
            time_axis: t as usize,
        }))),
        _ => Err(a.unsupported(format!(
            "batch_axis = {b}, time_axis = {t}: one must be 0, the other 1"
        ))),
    }
}

/// Registers the ops of this file.
pub(crate) fn register(r: &mut Registry) {
    r.add("", "OneHot", 9, build_one_hot);
    r.add("", "NonZero", 9, build_nonzero);
    r.add("", "Compress", 9, build_compress);
    r.add("", "ReverseSequence", 10, build_reverse_sequence);
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

    fn run(op: &dyn Operator, ins: &[&Value]) -> Result<Value> {
        let ins: Vec<Option<&Value>> = ins.iter().map(|v| Some(*v)).collect();
        Ok(op.run(&ins, ctx())?.remove(0))
    }

    #[test]
    fn one_hot_axes_negative_and_out_of_range_indices() {
        let ind = Value::i64(&[3], vec![0, -1, 5]).unwrap();
        let depth = Value::f32(&[], vec![3.0]).unwrap();
        let vals = Value::from_vec(&[2], vec![1i32, 7]).unwrap();
        let out = run(&OneHot { axis: -1 }, &[&ind, &depth, &vals]).unwrap();
        assert_eq!((out.shape(), out.dtype()), (&[3usize, 3][..], DType::I32));
        assert_eq!(out.to_i64_vec(), vec![7, 1, 1, 1, 1, 7, 1, 1, 1]);
        let out = run(&OneHot { axis: 0 }, &[&ind, &depth, &vals]).unwrap();
        assert_eq!(out.to_i64_vec(), vec![7, 1, 1, 1, 1, 1, 1, 7, 1]);
        // 2-D indices, middle axis.
        let ind = Value::f32(&[2, 2], vec![0.0, 1.0, 1.0, 0.0]).unwrap();
        let d2 = Value::i64(&[1], vec![2]).unwrap();
        let out = run(&OneHot { axis: 1 }, &[&ind, &d2, &vals]).unwrap();
        assert_eq!(out.shape(), &[2, 2, 2]);
        assert_eq!(out.to_i64_vec(), vec![7, 1, 1, 7, 1, 7, 7, 1]);
        // Errors: bad depth, bad values, bad axis.
        assert!(run(
            &OneHot { axis: 0 },
            &[&ind, &Value::i64(&[], vec![-2]).unwrap(), &vals]
        )
        .is_err());
        assert!(run(
            &OneHot { axis: 0 },
            &[&ind, &d2, &Value::i64(&[3], vec![0; 3]).unwrap()]
        )
        .is_err());
        assert!(run(&OneHot { axis: 3 }, &[&ind, &d2, &vals]).is_err());
        assert!(run(
            &OneHot { axis: 0 },
            &[&ind, &Value::i64(&[], vec![1 << 40]).unwrap(), &vals]
        )
        .is_err());
    }

    #[test]
    fn nonzero_coordinates() {
        let x = Value::f32(&[2, 3], vec![0.0, 1.0, 0.0, -2.0, 0.0, f32::NAN]).unwrap();
        let out = run(&NonZero, &[&x]).unwrap();
        assert_eq!(
            (out.shape(), out.to_i64_vec()),
            (&[2usize, 3][..], vec![0, 1, 1, 1, 0, 2])
        );
        let e = Value::zeros(DType::Bool, &[0, 4]);
        assert_eq!(run(&NonZero, &[&e]).unwrap().shape(), &[2, 0]);
        let s = Value::from_vec(&[], vec![true]).unwrap();
        assert_eq!(run(&NonZero, &[&s]).unwrap().shape(), &[0, 1]);
    }

    #[test]
    fn compress_with_and_without_axis() {
        let x = Value::i64(&[3, 2], (1..=6).collect()).unwrap();
        let c = Value::from_vec(&[3], vec![false, true, true]).unwrap();
        let out = run(&Compress { axis: Some(0) }, &[&x, &c]).unwrap();
        assert_eq!(
            (out.shape(), out.to_i64_vec()),
            (&[2usize, 2][..], vec![3, 4, 5, 6])
        );
        let c2 = Value::from_vec(&[1], vec![true]).unwrap();
        let out = run(&Compress { axis: Some(-1) }, &[&x, &c2]).unwrap();
        assert_eq!(out.to_i64_vec(), vec![1, 3, 5]);
        let out = run(&Compress { axis: None }, &[&x, &c]).unwrap();
        assert_eq!(out.to_i64_vec(), vec![2, 3]);
        // Selecting past the axis, non-bool condition, bad axis.
        let long = Value::from_vec(&[4], vec![false, false, false, true]).unwrap();
        assert!(run(&Compress { axis: Some(0) }, &[&x, &long]).is_err());
        assert!(run(
            &Compress { axis: Some(0) },
            &[&x, &Value::i64(&[1], vec![1]).unwrap()]
        )
        .is_err());
        assert!(run(&Compress { axis: Some(2) }, &[&x, &c]).is_err());
    }

    #[test]
    fn reverse_sequence_both_layouts() {
        // time_axis 0, batch_axis 1: x[t, b].
        let x = Value::i64(&[3, 2], vec![0, 10, 1, 11, 2, 12]).unwrap();
        let lens = Value::i64(&[2], vec![3, 2]).unwrap();
        let op = ReverseSequence {
            batch_axis: 1,
            time_axis: 0,
        };
        assert_eq!(
            run(&op, &[&x, &lens]).unwrap().to_i64_vec(),
            vec![2, 11, 1, 10, 0, 12]
        );
        let op2 = ReverseSequence {
            batch_axis: 0,
            time_axis: 1,
        };
        let l3 = Value::i64(&[3], vec![1, 2, 0]).unwrap();
        assert_eq!(
            run(&op2, &[&x, &l3]).unwrap().to_i64_vec(),
            vec![0, 10, 11, 1, 2, 12]
        );
        assert!(run(&op, &[&x, &Value::i64(&[2], vec![4, 0]).unwrap()]).is_err());
        assert!(run(&op, &[&x, &Value::i64(&[2], vec![-1, 0]).unwrap()]).is_err());
        assert!(run(&op, &[&x, &l3]).is_err());
    }
}
