//! ScatterElements (and its opset 9-10 name, Scatter) and ScatterND, with their reductions
//! (none, add, mul, max, min), on every element type. Updates are applied in the order of
//! the indices (with `none`, the last of duplicate indices wins); indices may be negative,
//! out-of-range ones are errors.
use super::indexing::{index_values, with_slice};
use super::operator::Operator;
use super::tile_gather::{element_offsets, nd_offsets};
use super::typed::input;
use super::{Ctx, Op};
use crate::onnx::attrs::Attrs;
use crate::onnx::registry::{NodeCtx, Registry};
use crate::{with_array, Elem, Result, Value};
use ndarray::{ArrayD, IxDyn};
use std::sync::Arc;

/// How an update combines with the element it lands on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reduction {
    /// The update replaces it.
    None,
    /// Sum.
    Add,
    /// Product.
    Mul,
    /// Larger of the two.
    Max,
    /// Smaller of the two.
    Min,
}

impl Reduction {
    fn parse(a: &Attrs) -> Result<Self> {
        Ok(match a.string("reduction", "none").as_str() {
            "none" => Reduction::None,
            "add" => Reduction::Add,
            "mul" => Reduction::Mul,
            "max" => Reduction::Max,
            "min" => Reduction::Min,
            other => return Err(a.unsupported(format!("reduction = '{other}'"))),
        })
    }

    /// `old` combined with `new` (integers wrap on add and mul; bools are or / and).
    fn apply<T: Elem + PartialOrd>(self, old: T, new: T) -> T {
        let arith = |f: fn(f64, f64) -> f64, g: fn(i64, i64) -> i64| {
            if T::DTYPE.is_float() {
                T::from_f64(f(old.to_f64(), new.to_f64()))
            } else {
                T::from_i64(g(old.to_i64(), new.to_i64()))
            }
        };
        match self {
            Reduction::None => new,
            Reduction::Add => arith(|a, b| a + b, i64::wrapping_add),
            Reduction::Mul => arith(|a, b| a * b, i64::wrapping_mul),
            // NaN propagates, as numpy's maximum / minimum.
            Reduction::Max => {
                if new > old || new.partial_cmp(&new).is_none() {
                    new
                } else {
                    old
                }
            }
            Reduction::Min => {
                if new < old || new.partial_cmp(&new).is_none() {
                    new
                } else {
                    old
                }
            }
        }
    }
}

/// Which scatter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// ScatterElements / Scatter along an axis.
    Elements(i64),
    /// ScatterND.
    Nd,
}

/// A scatter op: a copy of the data with the updates written (or reduced) at the indices.
#[derive(Clone, Debug)]
pub struct Scatter {
    kind: Kind,
    reduction: Reduction,
    name: &'static str,
}

/// Scatters `upd` into a copy of `data`: update chunk `i` (of `chunk` elements) lands at
/// offset `offs[i]`.
fn scatter<T: Elem + PartialOrd>(
    data: &ArrayD<T>,
    upd: &Value,
    offs: &[usize],
    chunk: usize,
    red: Reduction,
    ctx: Ctx,
) -> Result<Value> {
    let u = T::view(upd).ok_or_else(|| {
        ctx.err(format!(
            "updates are {} but the data is {}",
            upd.dtype(),
            T::DTYPE
        ))
    })?;
    let mut out: Vec<T> = data.iter().copied().collect();
    with_slice(u, |u| {
        for (&o, src) in offs.iter().zip(u.chunks(chunk.max(1))) {
            for (d, &s) in out[o..o + chunk].iter_mut().zip(src) {
                *d = red.apply(*d, s);
            }
        }
    });
    Ok(T::wrap(ArrayD::from_shape_vec(IxDyn(data.shape()), out)?))
}

impl Operator for Scatter {
    fn name(&self) -> &'static str {
        self.name
    }

    fn run(&self, inputs: &[Option<&Value>], ctx: Ctx) -> Result<Vec<Value>> {
        let x = input(inputs, 0, &[], ctx)?;
        let iv = input(inputs, 1, &[], ctx)?;
        let upd = input(inputs, 2, &[], ctx)?;
        let ind = index_values(iv, "indices", ctx)?;
        let (offs, chunk, want) = match self.kind {
            Kind::Elements(axis) => {
                let axis = ctx.axis(axis, x.shape().len())?;
                let offs = element_offsets(x.shape(), iv.shape(), &ind, axis, ctx)?;
                (offs, 1, iv.shape().to_vec())
            }
            Kind::Nd => {
                let (offs, chunk) = nd_offsets(x.shape(), iv.shape(), &ind, 0, ctx)?;
                let q = iv.shape().len();
                let k = iv.shape()[q - 1];
                let mut want = iv.shape()[..q - 1].to_vec();
                want.extend_from_slice(&x.shape()[k..]);
                (offs, chunk, want)
            }
        };
        if upd.shape() != want.as_slice() {
            return Err(ctx.err(format!(
                "updates of shape {:?}; the indices need {want:?}",
                upd.shape()
            )));
        }
        let out = with_array!(x, a => scatter(a, upd, &offs, chunk, self.reduction, ctx)?);
        Ok(vec![out])
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

fn build_scatter_elements(n: &NodeCtx) -> Result<Op> {
    let old = n.node.op_type == "Scatter";
    let a = if old {
        n.attrs(&["axis"])?
    } else {
        n.attrs(&["axis", "reduction"])?
    };
    n.arity((3, 3), (1, 1))?;
    Ok(Op::Dyn(Arc::new(Scatter {
        kind: Kind::Elements(a.int("axis", 0)),
        reduction: Reduction::parse(&a)?,
        name: if old { "Scatter" } else { "ScatterElements" },
    })))
}

fn build_scatter_nd(n: &NodeCtx) -> Result<Op> {
    let a = n.attrs(&["reduction"])?;
    n.arity((3, 3), (1, 1))?;
    Ok(Op::Dyn(Arc::new(Scatter {
        kind: Kind::Nd,
        reduction: Reduction::parse(&a)?,
        name: "ScatterND",
    })))
}

/// Registers the ops of this file.
pub(crate) fn register(r: &mut Registry) {
    r.add("", "Scatter", 9, build_scatter_elements);
    r.add("", "ScatterElements", 11, build_scatter_elements);
    r.add("", "ScatterND", 11, build_scatter_nd);
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

    fn op(kind: Kind, reduction: Reduction) -> Scatter {
        Scatter {
            kind,
            reduction,
            name: "t",
        }
    }

    fn run(s: &Scatter, x: &Value, i: &Value, u: &Value) -> Result<Value> {
        Ok(s.run(&[Some(x), Some(i), Some(u)], ctx())?.remove(0))
    }

    #[test]
    fn scatter_elements_axes_duplicates_and_reductions() {
        let x = Value::f32(&[1, 5], vec![1.0, 2.0, 3.0, 4.0, 5.0]).unwrap();
        let i = Value::i64(&[1, 2], vec![1, -2]).unwrap();
        let u = Value::f32(&[1, 2], vec![1.1, 2.1]).unwrap();
        let out = run(&op(Kind::Elements(1), Reduction::None), &x, &i, &u).unwrap();
        assert_eq!(
            out.to_f64_vec()
                .iter()
                .map(|v| (v * 10.0).round())
                .collect::<Vec<_>>(),
            vec![10.0, 11.0, 30.0, 21.0, 50.0]
        );
        let dup = Value::i64(&[1, 2], vec![1, 1]).unwrap();
        let ui = Value::i64(&[1, 2], vec![7, 9]).unwrap();
        let xi = Value::i64(&[1, 5], vec![1, 2, 3, 4, 5]).unwrap();
        let want = [
            (Reduction::None, 9),
            (Reduction::Add, 18),
            (Reduction::Mul, 126),
            (Reduction::Max, 9),
            (Reduction::Min, 2),
        ];
        for (r, v) in want {
            let out = run(&op(Kind::Elements(-1), r), &xi, &dup, &ui).unwrap();
            assert_eq!(out.to_i64_vec(), vec![1, v, 3, 4, 5], "{r:?}");
        }
        // Axis 0 on a 2-D input.
        let x = Value::i64(&[3, 2], vec![0; 6]).unwrap();
        let i = Value::i64(&[1, 2], vec![2, 0]).unwrap();
        let u = Value::i64(&[1, 2], vec![5, 6]).unwrap();
        let out = run(&op(Kind::Elements(0), Reduction::None), &x, &i, &u).unwrap();
        assert_eq!(out.to_i64_vec(), vec![0, 6, 0, 0, 5, 0]);
    }

    #[test]
    fn scatter_elements_errors() {
        let s = op(Kind::Elements(0), Reduction::None);
        let x = Value::i64(&[3], vec![0; 3]).unwrap();
        let u = Value::i64(&[1], vec![1]).unwrap();
        assert!(run(&s, &x, &Value::i64(&[1], vec![3]).unwrap(), &u).is_err());
        assert!(run(&s, &x, &Value::i64(&[1], vec![-4]).unwrap(), &u).is_err());
        assert!(run(&s, &x, &Value::i64(&[2], vec![0, 1]).unwrap(), &u).is_err());
        assert!(run(
            &s,
            &x,
            &Value::i64(&[1], vec![0]).unwrap(),
            &Value::f32(&[1], vec![1.0]).unwrap()
        )
        .is_err());
        assert!(run(&s, &x, &Value::f32(&[1], vec![0.0]).unwrap(), &u).is_err());
        assert!(run(
            &op(Kind::Elements(1), Reduction::None),
            &x,
            &Value::i64(&[1], vec![0]).unwrap(),
            &u
        )
        .is_err());
        // Empty indices leave the data.
        let e = Value::i64(&[0], vec![]).unwrap();
        assert_eq!(run(&s, &x, &e, &e).unwrap(), x);
    }

    #[test]
    fn scatter_nd_slices_and_reductions() {
        // Data [2, 2, 2], indices [[0], [1]] -> whole [2, 2] slices.
        let x = Value::i64(&[2, 2, 2], (0..8).collect()).unwrap();
        let i = Value::i64(&[1, 1], vec![-1]).unwrap();
        let u = Value::i64(&[1, 2, 2], vec![10, 20, 30, 40]).unwrap();
        let out = run(&op(Kind::Nd, Reduction::None), &x, &i, &u).unwrap();
        assert_eq!(out.to_i64_vec(), vec![0, 1, 2, 3, 10, 20, 30, 40]);
        let out = run(&op(Kind::Nd, Reduction::Add), &x, &i, &u).unwrap();
        assert_eq!(out.to_i64_vec(), vec![0, 1, 2, 3, 14, 25, 36, 47]);
        // Single elements, duplicated, multiplied.
        let i = Value::i64(&[2, 3], vec![0, 1, 1, 0, 1, 1]).unwrap();
        let u = Value::i64(&[2], vec![2, 5]).unwrap();
        let out = run(&op(Kind::Nd, Reduction::Mul), &x, &i, &u).unwrap();
        assert_eq!(out.to_i64_vec(), vec![0, 1, 2, 30, 4, 5, 6, 7]);
        // Errors: bad updates shape, index out of range, tuple too long.
        assert!(run(
            &op(Kind::Nd, Reduction::None),
            &x,
            &i,
            &Value::i64(&[3], vec![0; 3]).unwrap()
        )
        .is_err());
        let far = Value::i64(&[1, 1], vec![2]).unwrap();
        assert!(run(
            &op(Kind::Nd, Reduction::None),
            &x,
            &far,
            &Value::i64(&[1, 2, 2], vec![0; 4]).unwrap()
        )
        .is_err());
        let long = Value::i64(&[1, 4], vec![0; 4]).unwrap();
        assert!(run(
            &op(Kind::Nd, Reduction::None),
            &x,
            &long,
            &Value::i64(&[1], vec![0]).unwrap()
        )
        .is_err());
    }

    #[test]
    fn reductions_on_floats_bools_and_nan() {
        assert!(Reduction::Add.apply(true, true));
        assert!(!Reduction::Mul.apply(true, false));
        assert!(Reduction::Max.apply(1.0f32, f32::NAN).is_nan());
        assert_eq!(Reduction::Min.apply(1.5f64, -2.0), -2.0);
        assert_eq!(Reduction::Add.apply(i8::MAX, 1), i8::MIN);
    }
}
