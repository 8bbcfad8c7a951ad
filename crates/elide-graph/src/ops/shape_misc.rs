//! Small shape-driven ops on every element type: Size (element count as an i64 scalar),
//! Trilu (upper or lower triangle of the last two axes, diagonal offset `k` read at run
//! time), EyeLike (ones on a diagonal, in the input's or a given dtype) and CenterCropPad
//! (crop or zero-pad axes about their centre to a shape read at run time).
use super::indexing::index_values;
use super::operator::Operator;
use super::typed::input;
use super::{Ctx, Op};
use crate::onnx::registry::{NodeCtx, Registry};
use crate::{map_array, DType, Elem, Result, Value};
use ndarray::{ArrayD, IxDyn, Slice};
use std::sync::Arc;

/// Size: the number of elements of the input, as an i64 scalar.
#[derive(Clone, Debug)]
pub struct Size;

impl Operator for Size {
    fn name(&self) -> &'static str {
        "Size"
    }

    fn run(&self, inputs: &[Option<&Value>], ctx: Ctx) -> Result<Vec<Value>> {
        let x = input(inputs, 0, &[], ctx)?;
        Ok(vec![Value::i64(&[], vec![x.len() as i64])?])
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// Trilu: keeps the elements with `col - row >= k` (upper) or `col - row <= k` (lower) of
/// each matrix in the last two axes; the rest become zero.
#[derive(Clone, Debug)]
pub struct Trilu {
    upper: bool,
}

impl Operator for Trilu {
    fn name(&self) -> &'static str {
        "Trilu"
    }

    fn run(&self, inputs: &[Option<&Value>], ctx: Ctx) -> Result<Vec<Value>> {
        let x = input(inputs, 0, &[], ctx)?;
        let k = match inputs.get(1).copied().flatten() {
            None => 0,
            Some(kv) => match index_values(kv, "k", ctx)?.as_slice() {
                [k] => *k,
                k => return Err(ctx.err(format!("k {k:?} is not one integer"))),
            },
        };
        let s = x.shape();
        if s.len() < 2 {
            return Err(ctx.err(format!("input of shape {s:?} has rank below 2")));
        }
        let (h, w) = (s[s.len() - 2], s[s.len() - 1]);
        let upper = self.upper;
        // Wide: k may be any i64.
        let keep = move |p: usize| {
            let (row, col) = ((p / w.max(1)) % h.max(1), p % w.max(1));
            let d = col as i128 - row as i128;
            if upper {
                d >= k as i128
            } else {
                d <= k as i128
            }
        };
        let out = map_array!(x, a => {
            let mut out = a.as_standard_layout().into_owned();
            for (p, v) in out.iter_mut().enumerate() {
                if !keep(p) {
                    *v = Default::default();
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

/// EyeLike: a matrix of the input's shape with ones where `col - row == k`.
#[derive(Clone, Debug)]
pub struct EyeLike {
    dtype: Option<DType>,
    k: i64,
}

impl Operator for EyeLike {
    fn name(&self) -> &'static str {
        "EyeLike"
    }

    fn run(&self, inputs: &[Option<&Value>], ctx: Ctx) -> Result<Vec<Value>> {
        let x = input(inputs, 0, &[], ctx)?;
        let &[h, w] = x.shape() else {
            return Err(ctx.err(format!("input of shape {:?} is not 2-D", x.shape())));
        };
        let k = self.k as i128;
        let eye = ArrayD::from_shape_fn(IxDyn(&[h, w]), |i| {
            f64::from(i[1] as i128 - i[0] as i128 == k)
        });
        Ok(vec![Value::F64(eye).cast(self.dtype.unwrap_or(x.dtype()))])
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// CenterCropPad: each listed axis cropped or zero-padded about its centre to the target
/// length (the extra element of an odd difference goes to the end).
#[derive(Clone, Debug)]
pub struct CenterCropPad {
    axes: Option<Vec<i64>>,
}

fn crop_pad<T: Elem>(
    a: &ArrayD<T>,
    out_shape: &[usize],
    crop: &[(usize, usize)],
    pad: &[(usize, usize)],
) -> ArrayD<T> {
    let mut out = ArrayD::<T>::default(IxDyn(out_shape));
    let src = a.slice_each_axis(|d| {
        let (s, e) = crop[d.axis.index()];
        Slice::from(s..e)
    });
    out.slice_each_axis_mut(|d| {
        let (s, e) = pad[d.axis.index()];
        Slice::from(s..e)
    })
    .assign(&src);
    out
}

impl Operator for CenterCropPad {
    fn name(&self) -> &'static str {
        "CenterCropPad"
    }

    fn run(&self, inputs: &[Option<&Value>], ctx: Ctx) -> Result<Vec<Value>> {
        let x = input(inputs, 0, &[], ctx)?;
        let target = index_values(input(inputs, 1, &[], ctx)?, "shape", ctx)?;
        let s = x.shape();
        let axes: Vec<usize> = match &self.axes {
            None => (0..s.len()).collect(),
            Some(ax) => ax
                .iter()
                .map(|&a| ctx.axis(a, s.len()))
                .collect::<Result<_>>()?,
        };
        if target.len() != axes.len() {
            return Err(ctx.err(format!("shape {target:?} for {} axes", axes.len())));
        }
        let mut crop: Vec<(usize, usize)> = s.iter().map(|&d| (0, d)).collect();
        let mut pad = crop.clone();
        let mut wide: Vec<u128> = s.iter().map(|&d| d as u128).collect();
        let mut seen = vec![false; s.len()];
        for (&a, &t) in axes.iter().zip(&target) {
            if std::mem::replace(&mut seen[a], true) {
                return Err(ctx.err(format!("axis {a} given twice")));
            }
            if t < 0 {
                return Err(ctx.err(format!("negative target length {t}")));
            }
            wide[a] = t as u128;
        }
        let out_shape = ctx.sized_wide("output", &wide)?;
        for &a in &axes {
            let (dim, t) = (s[a], out_shape[a]);
            if t < dim {
                let start = (dim - t) / 2;
                crop[a] = (start, start + t);
                pad[a] = (0, t);
            } else {
                let start = (t - dim) / 2;
                pad[a] = (start, start + dim);
            }
        }
        Ok(vec![
            map_array!(x, a => crop_pad(a, &out_shape, &crop, &pad)),
        ])
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

fn build_size(n: &NodeCtx) -> Result<Op> {
    n.attrs(&[])?;
    n.arity((1, 1), (1, 1))?;
    Ok(Op::Dyn(Arc::new(Size)))
}

fn build_trilu(n: &NodeCtx) -> Result<Op> {
    let a = n.attrs(&["upper"])?;
    n.arity((1, 2), (1, 1))?;
    Ok(Op::Dyn(Arc::new(Trilu {
        upper: a.int("upper", 1) != 0,
    })))
}

fn build_eye_like(n: &NodeCtx) -> Result<Op> {
    let a = n.attrs(&["dtype", "k"])?;
    n.arity((1, 1), (1, 1))?;
    let dtype = match a.raw("dtype") {
        None => None,
        Some(_) => {
            let code = a.int("dtype", 0);
            let d = i32::try_from(code).ok().and_then(DType::from_onnx);
            Some(d.ok_or_else(|| a.unsupported(format!("dtype = {code}")))?)
        }
    };
    Ok(Op::Dyn(Arc::new(EyeLike {
        dtype,
        k: a.int("k", 0),
    })))
}

fn build_center_crop_pad(n: &NodeCtx) -> Result<Op> {
    let a = n.attrs(&["axes"])?;
    n.arity((2, 2), (1, 1))?;
    Ok(Op::Dyn(Arc::new(CenterCropPad {
        axes: a.ints("axes"),
    })))
}

/// Registers the ops of this file.
pub(crate) fn register(r: &mut Registry) {
    r.add("", "Size", 1, build_size);
    r.add("", "Trilu", 14, build_trilu);
    r.add("", "EyeLike", 9, build_eye_like);
    r.add("", "CenterCropPad", 18, build_center_crop_pad);
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

    fn run(op: &dyn Operator, ins: &[Option<&Value>]) -> Result<Value> {
        Ok(op.run(ins, ctx())?.remove(0))
    }

    #[test]
    fn size_counts_elements() {
        for shape in [&[][..], &[0, 3], &[2, 3, 4]] {
            let v = Value::zeros(DType::U8, shape);
            let out = run(&Size, &[Some(&v)]).unwrap();
            assert_eq!(
                (out.shape(), out.to_i64_vec()),
                (&[][..], vec![v.len() as i64])
            );
        }
    }

    #[test]
    fn trilu_against_a_naive_mask() {
        let x = Value::i64(&[2, 3, 4], (1..=24).collect()).unwrap();
        for upper in [true, false] {
            for k in [-5i64, -1, 0, 2, 7] {
                let kv = Value::i64(&[], vec![k]).unwrap();
                let out = run(&Trilu { upper }, &[Some(&x), Some(&kv)]).unwrap();
                let want: Vec<i64> = (0..24)
                    .map(|p| {
                        let (r, c) = ((p / 4) % 3, p % 4);
                        let keep = if upper { c - r >= k } else { c - r <= k };
                        if keep {
                            p + 1
                        } else {
                            0
                        }
                    })
                    .collect();
                assert_eq!(out.to_i64_vec(), want, "upper {upper} k {k}");
            }
        }
        let out = run(&Trilu { upper: true }, &[Some(&x), None]).unwrap();
        assert_eq!(out.to_i64_vec()[4..8], [0, 6, 7, 8]);
        let e = Value::zeros(DType::F32, &[0, 3]);
        assert_eq!(
            run(&Trilu { upper: false }, &[Some(&e)]).unwrap().shape(),
            &[0, 3]
        );
        assert!(run(
            &Trilu { upper: false },
            &[Some(&Value::i64(&[3], vec![0; 3]).unwrap())]
        )
        .is_err());
        let k2 = Value::i64(&[2], vec![0, 1]).unwrap();
        assert!(run(&Trilu { upper: false }, &[Some(&x), Some(&k2)]).is_err());
    }

    #[test]
    fn eye_like_offsets_and_dtypes() {
        let x = Value::zeros(DType::I32, &[3, 4]);
        let out = run(&EyeLike { dtype: None, k: 1 }, &[Some(&x)]).unwrap();
        assert_eq!(out.dtype(), DType::I32);
        assert_eq!(out.to_i64_vec(), vec![0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]);
        let out = run(
            &EyeLike {
                dtype: Some(DType::F64),
                k: -2,
            },
            &[Some(&x)],
        )
        .unwrap();
        assert_eq!(out.dtype(), DType::F64);
        assert_eq!(out.to_f64_vec()[8], 1.0);
        let out = run(
            &EyeLike {
                dtype: Some(DType::Bool),
                k: i64::MIN,
            },
            &[Some(&x)],
        )
        .unwrap();
        assert!(out.to_i64_vec().iter().all(|&v| v == 0));
        assert!(run(
            &EyeLike { dtype: None, k: 0 },
            &[Some(&Value::zeros(DType::F32, &[3]))]
        )
        .is_err());
    }

    #[test]
    fn center_crop_pad_crops_and_pads_about_the_centre() {
        let x = Value::i64(&[5], (1..=5).collect()).unwrap();
        let op = CenterCropPad { axes: None };
        let t = |v: i64| Value::i64(&[1], vec![v]).unwrap();
        assert_eq!(
            run(&op, &[Some(&x), Some(&t(2))]).unwrap().to_i64_vec(),
            vec![2, 3]
        );
        assert_eq!(
            run(&op, &[Some(&x), Some(&t(3))]).unwrap().to_i64_vec(),
            vec![2, 3, 4]
        );
        assert_eq!(
            run(&op, &[Some(&x), Some(&t(8))]).unwrap().to_i64_vec(),
            vec![0, 1, 2, 3, 4, 5, 0, 0]
        );
        assert_eq!(run(&op, &[Some(&x), Some(&t(0))]).unwrap().shape(), &[0]);
        // Negative axes on 2-D: crop rows of [3, 2] to 1, pad cols to 3.
        let x2 = Value::i64(&[3, 2], (1..=6).collect()).unwrap();
        let op = CenterCropPad {
            axes: Some(vec![-1, 0]),
        };
        let tgt = Value::i64(&[2], vec![3, 1]).unwrap();
        let out = run(&op, &[Some(&x2), Some(&tgt)]).unwrap();
        assert_eq!(
            (out.shape(), out.to_i64_vec()),
            (&[1usize, 3][..], vec![3, 4, 0])
        );
        // Errors.
        assert!(run(&op, &[Some(&x2), Some(&t(1))]).is_err());
        assert!(run(
            &CenterCropPad {
                axes: Some(vec![0, 0])
            },
            &[Some(&x2), Some(&tgt)]
        )
        .is_err());
        assert!(run(
            &CenterCropPad {
                axes: Some(vec![0])
            },
            &[Some(&x2), Some(&t(-1))]
        )
        .is_err());
        assert!(run(
            &CenterCropPad {
                axes: Some(vec![2])
            },
            &[Some(&x2), Some(&t(1))]
        )
        .is_err());
    }
}
