//! Tile (repeats read at run time), GatherElements and GatherND (with batch_dims), on every
//! element type. Indices may be negative (counted from the end of their axis); indices out
//! of range are errors naming the index and the axis length.
use super::indexing::{index_values, next_index, resolve, strides, with_slice};
use super::operator::Operator;
use super::typed::input;
use super::{Ctx, Op};
use crate::onnx::registry::{NodeCtx, Registry};
use crate::{map_array, Result, Value};
use ndarray::{ArrayD, IxDyn};
use std::sync::Arc;

/// Tile: the input repeated `repeats[d]` times along each axis `d`.
#[derive(Clone, Debug)]
pub struct Tile;

fn tile<T: Clone>(a: &ArrayD<T>, out_shape: &[usize]) -> Result<ArrayD<T>> {
    let shape = a.shape().to_vec();
    let st = strides(&shape);
    let n: usize = out_shape.iter().product();
    let data = with_slice(a, |src| {
        let mut out = Vec::with_capacity(n);
        let Some((&last, outer)) = shape.split_last() else {
            out.extend_from_slice(src); // a scalar
            return out;
        };
        if n == 0 {
            return out;
        }
        // Every output dim is non-zero here, so every input dim is too. Output rows (all
        // axes but the last) each copy one input row, repeated along the last axis.
        let reps = out_shape[outer.len()] / last;
        let mut idx = vec![0usize; outer.len()];
        loop {
            let off: usize = (0..idx.len()).map(|d| (idx[d] % shape[d]) * st[d]).sum();
            for _ in 0..reps {
                out.extend_from_slice(&src[off..off + last]);
            }
            if !next_index(&mut idx, &out_shape[..outer.len()]) {
                break;
            }
        }
        out
    });
    Ok(ArrayD::from_shape_vec(IxDyn(out_shape), data)?)
}

impl Operator for Tile {
    fn name(&self) -> &'static str {
        "Tile"
    }

    fn run(&self, inputs: &[Option<&Value>], ctx: Ctx) -> Result<Vec<Value>> {
        let x = input(inputs, 0, &[], ctx)?;
        let reps = index_values(input(inputs, 1, &[], ctx)?, "repeats", ctx)?;
        let s = x.shape();
        if reps.len() != s.len() {
            return Err(ctx.err(format!(
                "repeats {reps:?} do not match the input's rank {}",
                s.len()
            )));
        }
        if let Some(r) = reps.iter().find(|&&r| r < 0) {
            return Err(ctx.err(format!("negative repeat {r} in {reps:?}")));
        }
        let wide: Vec<u128> = s
            .iter()
            .zip(&reps)
            .map(|(&d, &r)| d as u128 * r as u128)
            .collect();
        let out_shape = ctx.sized_wide("output", &wide)?;
        Ok(vec![map_array!(x, a => tile(a, &out_shape)?)])
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// GatherElements: `out[i] = data[i with i[axis] = indices[i]]`.
#[derive(Clone, Debug)]
pub struct GatherElements {
    axis: i64,
}

/// Source offsets of GatherElements (or targets of ScatterElements): for each position of
/// `ind_shape` in C order, the offset into `data_shape` with the `axis` coordinate replaced
/// by the index there.
pub(super) fn element_offsets(
    data_shape: &[usize],
    ind_shape: &[usize],
    ind: &[i64],
    axis: usize,
    ctx: Ctx,
) -> Result<Vec<usize>> {
    if ind_shape.len() != data_shape.len() {
        return Err(ctx.err(format!(
            "indices of shape {ind_shape:?} and data of shape {data_shape:?} differ in rank"
        )));
    }
    if let Some(d) = (0..data_shape.len()).find(|&d| d != axis && ind_shape[d] > data_shape[d]) {
        return Err(ctx.err(format!(
            "indices of shape {ind_shape:?} exceed data of shape {data_shape:?} on axis {d}"
        )));
    }
    let st = strides(data_shape);
    let mut offs = Vec::with_capacity(ind.len());
    if ind.is_empty() {
        return Ok(offs);
    }
    let mut idx = vec![0usize; ind_shape.len()];
    for &i in ind {
        let mut off = resolve(i, data_shape[axis], ctx)? * st[axis];
        for d in (0..idx.len()).filter(|&d| d != axis) {
            off += idx[d] * st[d];
        }
        offs.push(off);
        next_index(&mut idx, ind_shape);
    }
    Ok(offs)
}

impl Operator for GatherElements {
    fn name(&self) -> &'static str {
        "GatherElements"
    }

    fn run(&self, inputs: &[Option<&Value>], ctx: Ctx) -> Result<Vec<Value>> {
        let x = input(inputs, 0, &[], ctx)?;
        let iv = input(inputs, 1, &[], ctx)?;
        let ind = index_values(iv, "indices", ctx)?;
        let axis = ctx.axis(self.axis, x.shape().len())?;
        let offs = element_offsets(x.shape(), iv.shape(), &ind, axis, ctx)?;
        let out_shape = iv.shape().to_vec();
        let out = map_array!(x, a => {
            let v = with_slice(a, |src| offs.iter().map(|&o| src[o]).collect::<Vec<_>>());
            ArrayD::from_shape_vec(IxDyn(&out_shape), v)?
        });
        Ok(vec![out])
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// GatherND: slices of the data addressed by the index tuples in the last axis of the
/// indices, after `batch_dims` leading axes shared by both.
#[derive(Clone, Debug)]
pub struct GatherNd {
    batch_dims: usize,
}

/// The layout of a GatherND / ScatterND: for each index tuple (C order over the indices'
/// leading axes), the offset of the data slice it addresses, and that slice's length.
pub(super) fn nd_offsets(
    data_shape: &[usize],
    ind_shape: &[usize],
    ind: &[i64],
    batch_dims: usize,
    ctx: Ctx,
) -> Result<(Vec<usize>, usize)> {
    let (r, q, b) = (data_shape.len(), ind_shape.len(), batch_dims);
    let Some(&k) = ind_shape.last() else {
        return Err(ctx.err("indices must have rank at least 1"));
    };
    if b >= q || b > r || k > r - b {
        return Err(ctx.err(format!(
            "indices of shape {ind_shape:?} (batch_dims {b}) do not address data of shape {data_shape:?}"
        )));
    }
    if ind_shape[..b] != data_shape[..b] {
        return Err(ctx.err(format!(
            "batch dims of indices {ind_shape:?} and data {data_shape:?} differ"
        )));
    }
    let st = strides(data_shape);
    let slice: usize = data_shape[b + k..].iter().product();
    let tuples: usize = ind_shape[b..q - 1].iter().product();
    let block: usize = data_shape[b..].iter().product();
    let mut offs = Vec::with_capacity(ind.len() / k.max(1));
    let batches: usize = data_shape[..b].iter().product();
    for bi in 0..batches {
        for t in 0..tuples {
            let start = (bi * tuples + t) * k;
            let tuple = ind
                .get(start..start + k)
                .ok_or_else(|| ctx.err("indices shorter than their shape"))?;
            let mut off = bi * block;
            for (j, &i) in tuple.iter().enumerate() {
                off += resolve(i, data_shape[b + j], ctx)? * st[b + j];
            }
            offs.push(off);
        }
    }
    Ok((offs, slice))
}

impl Operator for GatherNd {
    fn name(&self) -> &'static str {
        "GatherND"
    }

    fn run(&self, inputs: &[Option<&Value>], ctx: Ctx) -> Result<Vec<Value>> {
        let x = input(inputs, 0, &[], ctx)?;
        let iv = input(inputs, 1, &[], ctx)?;
        let ind = index_values(iv, "indices", ctx)?;
        let (offs, slice) = nd_offsets(x.shape(), iv.shape(), &ind, self.batch_dims, ctx)?;
        let q = iv.shape().len();
        let k = iv.shape()[q - 1];
        let mut out_shape = iv.shape()[..q - 1].to_vec();
        out_shape.extend_from_slice(&x.shape()[self.batch_dims + k..]);
        ctx.sized("output", &out_shape)?;
        let out = map_array!(x, a => {
            let v = with_slice(a, |src| {
                let mut v = Vec::with_capacity(offs.len() * slice);
                for &o in &offs {
                    v.extend_from_slice(&src[o..o + slice]);
                }
                v
            });
            ArrayD::from_shape_vec(IxDyn(&out_shape), v)?
        });
        Ok(vec![out])
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

fn build_tile(n: &NodeCtx) -> Result<Op> {
    n.attrs(&[])?;
    n.arity((2, 2), (1, 1))?;
    Ok(Op::Dyn(Arc::new(Tile)))
}

fn build_gather_elements(n: &NodeCtx) -> Result<Op> {
    let a = n.attrs(&["axis"])?;
    n.arity((2, 2), (1, 1))?;
    Ok(Op::Dyn(Arc::new(GatherElements {
        axis: a.int("axis", 0),
    })))
}

fn build_gather_nd(n: &NodeCtx) -> Result<Op> {
    let a = n.attrs(&["batch_dims"])?;
    n.arity((2, 2), (1, 1))?;
    let b = a.int("batch_dims", 0);
    let batch_dims = usize::try_from(b).map_err(|_| a.unsupported(format!("batch_dims = {b}")))?;
    Ok(Op::Dyn(Arc::new(GatherNd { batch_dims })))
}

/// Registers the ops of this file.
pub(crate) fn register(r: &mut Registry) {
    r.add("", "Tile", 1, build_tile);
    r.add("", "GatherElements", 11, build_gather_elements);
    r.add("", "GatherND", 11, build_gather_nd);
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
    fn tile_repeats_each_axis() {
        let x = Value::from_vec(&[2, 3], (0..6i32).collect()).unwrap();
        let r = Value::i64(&[2], vec![2, 1]).unwrap();
        let out = run(&Tile, &[&x, &r]).unwrap();
        assert_eq!(out.shape(), &[4, 3]);
        assert_eq!(out.to_i64_vec(), vec![0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5]);
        let r = Value::i64(&[2], vec![1, 2]).unwrap();
        let out = run(&Tile, &[&x, &r]).unwrap();
        assert_eq!(out.to_i64_vec(), vec![0, 1, 2, 0, 1, 2, 3, 4, 5, 3, 4, 5]);
        // Zero repeats, empty inputs, scalars, bools.
        let r0 = Value::i64(&[2], vec![0, 3]).unwrap();
        assert_eq!(run(&Tile, &[&x, &r0]).unwrap().shape(), &[0, 9]);
        let e = Value::zeros(crate::DType::Bool, &[0, 2]);
        assert_eq!(run(&Tile, &[&e, &r]).unwrap().shape(), &[0, 4]);
        let s = Value::from_vec(&[], vec![true]).unwrap();
        let none = Value::i64(&[0], vec![]).unwrap();
        assert_eq!(run(&Tile, &[&s, &none]).unwrap().to_i64_vec(), vec![1]);
        // Errors: wrong length, negative, float repeats, huge.
        assert!(run(&Tile, &[&x, &none]).is_err());
        assert!(run(&Tile, &[&x, &Value::i64(&[2], vec![-1, 1]).unwrap()]).is_err());
        assert!(run(&Tile, &[&x, &Value::f32(&[2], vec![1.0, 1.0]).unwrap()]).is_err());
        assert!(run(
            &Tile,
            &[&x, &Value::i64(&[2], vec![1 << 40, 1 << 40]).unwrap()]
        )
        .is_err());
    }

    #[test]
    fn tile_matches_a_naive_modulo_gather_on_3d() {
        let shape = [2usize, 1, 3];
        let x = Value::from_vec(&shape, (0..6i16).collect()).unwrap();
        for reps in [[1i64, 1, 1], [3, 2, 1], [1, 4, 2], [2, 1, 3]] {
            let r = Value::i64(&[3], reps.to_vec()).unwrap();
            let out = run(&Tile, &[&x, &r]).unwrap();
            let os: Vec<usize> = (0..3).map(|d| shape[d] * reps[d] as usize).collect();
            let mut want = vec![];
            for i in 0..os[0] {
                for _ in 0..os[1] {
                    // The middle axis has length 1: every j reads row 0.
                    for k in 0..os[2] {
                        want.push(((i % 2) * 3 + k % 3) as i64);
                    }
                }
            }
            assert_eq!((out.shape(), out.to_i64_vec()), (&os[..], want), "{reps:?}");
        }
    }

    #[test]
    fn gather_elements_along_each_axis_with_negative_indices() {
        let x = Value::f32(&[3, 3], (1..=9).map(|v| v as f32).collect()).unwrap();
        let i = Value::i64(&[2, 3], vec![1, 2, 0, 2, 0, -1]).unwrap();
        let out = run(&GatherElements { axis: 0 }, &[&x, &i]).unwrap();
        assert_eq!(out.to_f64_vec(), vec![4.0, 8.0, 3.0, 7.0, 2.0, 9.0]);
        let i = Value::from_vec(&[2, 2], vec![0i32, 0, 1, 0]).unwrap();
        let out = run(&GatherElements { axis: -1 }, &[&x, &i]).unwrap();
        assert_eq!(out.to_f64_vec(), vec![1.0, 1.0, 5.0, 4.0]);
        // Out of range, rank mismatch, empty.
        let bad = Value::i64(&[1, 1], vec![3]).unwrap();
        assert!(run(&GatherElements { axis: 0 }, &[&x, &bad]).is_err());
        let bad = Value::i64(&[1], vec![0]).unwrap();
        assert!(run(&GatherElements { axis: 0 }, &[&x, &bad]).is_err());
        let e = Value::i64(&[0, 3], vec![]).unwrap();
        assert_eq!(
            run(&GatherElements { axis: 0 }, &[&x, &e]).unwrap().shape(),
            &[0, 3]
        );
        assert!(run(&GatherElements { axis: 2 }, &[&x, &e]).is_err());
    }

    #[test]
    fn gather_nd_with_and_without_batch_dims() {
        let x = Value::from_vec(&[2, 2], vec![0i32, 1, 2, 3]).unwrap();
        let i = Value::i64(&[2, 2], vec![0, 0, 1, 1]).unwrap();
        assert_eq!(
            run(&GatherNd { batch_dims: 0 }, &[&x, &i])
                .unwrap()
                .to_i64_vec(),
            vec![0, 3]
        );
        let i = Value::i64(&[2, 1], vec![1, -2]).unwrap();
        let out = run(&GatherNd { batch_dims: 0 }, &[&x, &i]).unwrap();
        assert_eq!(
            (out.shape(), out.to_i64_vec()),
            (&[2usize, 2][..], vec![2, 3, 0, 1])
        );
        // batch_dims = 1: data [2, 2, 2], indices [2, 1] -> [2, 2].
        let x3 = Value::from_vec(&[2, 2, 2], (0..8i64).collect()).unwrap();
        let i = Value::i64(&[2, 1], vec![1, 0]).unwrap();
        let out = run(&GatherNd { batch_dims: 1 }, &[&x3, &i]).unwrap();
        assert_eq!(
            (out.shape(), out.to_i64_vec()),
            (&[2usize, 2][..], vec![2, 3, 4, 5])
        );
        // Errors: out of range, tuple too long, batch mismatch, scalar indices.
        assert!(run(
            &GatherNd { batch_dims: 0 },
            &[&x, &Value::i64(&[1, 1], vec![2]).unwrap()]
        )
        .is_err());
        assert!(run(
            &GatherNd { batch_dims: 0 },
            &[&x, &Value::i64(&[1, 3], vec![0; 3]).unwrap()]
        )
        .is_err());
        assert!(run(
            &GatherNd { batch_dims: 1 },
            &[&x3, &Value::i64(&[3, 1], vec![0; 3]).unwrap()]
        )
        .is_err());
        assert!(run(
            &GatherNd { batch_dims: 0 },
            &[&x, &Value::i64(&[], vec![0]).unwrap()]
        )
        .is_err());
        // Empty index set.
        let e = Value::i64(&[0, 2], vec![]).unwrap();
        assert_eq!(
            run(&GatherNd { batch_dims: 0 }, &[&x, &e]).unwrap().shape(),
            &[0]
        );
    }
}
