//! MatMul on every numeric type with numpy semantics (1-D operands promoted and their
//! axis dropped, batch dims broadcast), and Gemm on the types the f32 path in
//! [`super::linalg`] does not take. The f32 products whose batch dims the legacy path
//! handles keep running there (on the `gemm` crate); the rest is a plain loop, accumulating
//! floats in f64 and integers in wrapping i64, here and in the quantized products of
//! [`super::quant`].
use super::typed::broadcast_shape;
use super::Ctx;
use crate::{Result, Value};
use ndarray::{ArrayD, IxDyn};

/// The geometry of a numpy matmul of `a` by `b`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct MatShape {
    /// The output's shape (1-D operands' axes dropped).
    pub out: Vec<usize>,
    /// Rows of each product.
    pub m: usize,
    /// Inner dimension.
    pub k: usize,
    /// Columns of each product.
    pub n: usize,
    /// Broadcast batch shape.
    batch: Vec<usize>,
    /// Element strides of each batch dim in `a` and `b` (0 where broadcast).
    a_strides: Vec<usize>,
    b_strides: Vec<usize>,
}

impl MatShape {
    /// The numpy matmul geometry of shapes `a` and `b` (checked against the size limit).
    pub(crate) fn new(a: &[usize], b: &[usize], ctx: Ctx) -> Result<Self> {
        let bad = || ctx.err(format!("shapes {a:?} and {b:?} do not multiply"));
        if a.is_empty() || b.is_empty() {
            return Err(ctx.err(format!("scalar operand: {a:?} x {b:?}")));
        }
        let a2: Vec<usize> = if a.len() == 1 {
            vec![1, a[0]]
        } else {
            a.to_vec()
        };
        let b2: Vec<usize> = if b.len() == 1 {
            vec![b[0], 1]
        } else {
            b.to_vec()
        };
        let (ra, rb) = (a2.len(), b2.len());
        let (m, k) = (a2[ra - 2], a2[ra - 1]);
        let (k2, n) = (b2[rb - 2], b2[rb - 1]);
        if k != k2 {
            return Err(bad());
        }
        let (ab, bb) = (&a2[..ra - 2], &b2[..rb - 2]);
        let batch = broadcast_shape(ab, bb).ok_or_else(bad)?;
        let strides = |dims: &[usize], mat: usize| -> Vec<usize> {
            let mut s = vec![0; batch.len()];
            let mut acc = mat;
            let off = batch.len() - dims.len();
            for (i, &d) in dims.iter().enumerate().rev() {
                s[off + i] = if d == 1 { 0 } else { acc };
                acc *= d;
            }
            s
        };
        let (a_strides, b_strides) = (strides(ab, m * k), strides(bb, k * n));
        let mut out = batch.clone();
        if a.len() > 1 {
            out.push(m);
        }
        if b.len() > 1 {
            out.push(n);
        }
        ctx.sized("output", &out)?;
        Ok(Self {
            out,
            m,
            k,
            n,
            batch,
            a_strides,
            b_strides,
        })
    }

    /// Offsets of each product's `a` and `b` matrices, in batch order.
    fn offsets(&self) -> Vec<(usize, usize)> {
        let count: usize = self.batch.iter().product();
        let mut idx = vec![0usize; self.batch.len()];
        let mut v = Vec::with_capacity(count);
        for _ in 0..count {
            let oa = idx.iter().zip(&self.a_strides).map(|(i, s)| i * s).sum();
            let ob = idx.iter().zip(&self.b_strides).map(|(i, s)| i * s).sum();
            v.push((oa, ob));
            for d in (0..idx.len()).rev() {
                idx[d] += 1;
                if idx[d] < self.batch[d] {
                    break;
                }
                idx[d] = 0;
            }
        }
        v
    }

    /// The products of `a` and `b` (standard-layout data of the shapes given to
    /// [`MatShape::new`]): `mac(acc, x, y)` accumulates from `zero`.
    pub(crate) fn run<T: Copy, A: Copy>(
        &self,
        a: &[T],
        b: &[T],
        zero: A,
        mac: impl Fn(A, T, T) -> A,
    ) -> Vec<A> {
        let (m, k, n) = (self.m, self.k, self.n);
        let mut out = Vec::with_capacity(self.out.iter().product());
        for (oa, ob) in self.offsets() {
            for i in 0..m {
                for j in 0..n {
                    let mut acc = zero;
                    for p in 0..k {
                        let (Some(&x), Some(&y)) = (a.get(oa + i * k + p), b.get(ob + p * n + j))
                        else {
                            continue; // unreachable for data of the checked shapes
                        };
                        acc = mac(acc, x, y);
                    }
                    out.push(acc);
                }
            }
        }
        out
    }
}

/// Whether the legacy f32 path computes this product as numpy does (both operands at least
/// 2-D, `b` 2-D or with `a`'s batch dims).
fn legacy_fits(a: &[usize], b: &[usize]) -> bool {
    a.len() >= 2 && b.len() >= 2 && (b.len() == 2 || a[..a.len() - 2] == b[..b.len() - 2])
}

/// Numpy matmul of two values of one numeric type.
pub fn matmul_any(a: &Value, b: &Value, ctx: Ctx) -> Result<Value> {
    if a.dtype() != b.dtype() {
        return Err(ctx.err(format!("operands are {} and {}", a.dtype(), b.dtype())));
    }
    if let (Value::F32(x), Value::F32(y)) = (a, b) {
        if legacy_fits(x.shape(), y.shape()) {
            return Ok(Value::F32(super::linalg::matmul(x, y, ctx)?));
        }
    }
    let s = MatShape::new(a.shape(), b.shape(), ctx)?;
    let dt = a.dtype();
    if dt.is_float() {
        let out = s.run(&a.to_f64_vec(), &b.to_f64_vec(), 0.0, |c, x, y| c + x * y);
        Ok(Value::from_vec(&s.out, out)?.cast(dt))
    } else if dt.is_int() {
        let out = s.run(&a.to_i64_vec(), &b.to_i64_vec(), 0i64, |c, x, y| {
            c.wrapping_add(x.wrapping_mul(y))
        });
        Ok(Value::from_vec(&s.out, out)?.cast(dt))
    } else {
        Err(ctx.err(format!("MatMul does not take {dt}")))
    }
}

/// ONNX Gemm on f64, f16, bf16 and integer types (f32 runs in [`super::linalg::gemm`]):
/// `alpha op(A) op(B) + beta C`, in f64 (integers wrapping in i64 when alpha and beta are
/// whole), C broadcast to the result.
pub fn gemm_any(
    inputs: &[Option<&Value>],
    alpha: f32,
    beta: f32,
    trans: [bool; 2],
    ctx: Ctx,
) -> Result<Value> {
    let a = ctx.input(inputs, 0)?;
    let b = ctx.input(inputs, 1)?;
    let dt = a.dtype();
    if b.dtype() != dt || !(dt.is_float() || dt.is_int()) {
        return Err(ctx.err(format!("Gemm on {} and {}", dt, b.dtype())));
    }
    let (sa, sb) = (a.shape(), b.shape());
    if sa.len() != 2 || sb.len() != 2 {
        return Err(ctx.err(format!("Gemm needs 2-D A and B, got {sa:?} and {sb:?}")));
    }
    let (m, k) = if trans[0] {
        (sa[1], sa[0])
    } else {
        (sa[0], sa[1])
    };
    let (k2, n) = if trans[1] {
        (sb[1], sb[0])
    } else {
        (sb[0], sb[1])
    };
    if k != k2 {
        return Err(ctx.err(format!("inner dimensions differ: A {sa:?} B {sb:?}")));
    }
    ctx.sized("output", &[m, n])?;
    let (av, bv) = (a.to_f64_vec(), b.to_f64_vec());
    let at = |i: usize, p: usize| {
        let idx = if trans[0] {
            p * sa[1] + i
        } else {
            i * sa[1] + p
        };
        av.get(idx).copied().unwrap_or(0.0)
    };
    let bt = |p: usize, j: usize| {
        let idx = if trans[1] {
            j * sb[1] + p
        } else {
            p * sb[1] + j
        };
        bv.get(idx).copied().unwrap_or(0.0)
    };
    let c = match inputs.get(2).copied().flatten() {
        Some(c) => {
            let arr = ArrayD::from_shape_vec(IxDyn(c.shape()), c.to_f64_vec())?;
            let bc = arr
                .broadcast(IxDyn(&[m, n]))
                .ok_or_else(|| {
                    ctx.err(format!(
                        "C {:?} does not broadcast to [{m}, {n}]",
                        c.shape()
                    ))
                })?
                .iter()
                .copied()
                .collect::<Vec<f64>>();
            Some(bc)
        }
        None => None,
    };
    let mut out = Vec::with_capacity(m * n);
    for i in 0..m {
        for j in 0..n {
            let mut acc = 0.0;
            for p in 0..k {
                acc += at(i, p) * bt(p, j);
            }
            let mut y = alpha as f64 * acc;
            if let Some(c) = &c {
                y += beta as f64 * c.get(i * n + j).copied().unwrap_or(0.0);
            }
            out.push(y);
        }
    }
    Ok(Value::from_vec(&[m, n], out)?.cast(dt))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Ctx<'static> {
        Ctx {
            node: "n",
            op: "MatMul",
            arena: None,
        }
    }

    /// Naive numpy matmul on i64 data of the given shapes (one batch dim at most).
    fn naive(a: &[i64], sa: &[usize], b: &[i64], sb: &[usize]) -> Vec<i64> {
        let a3 = ArrayD::from_shape_vec(IxDyn(sa), a.to_vec()).unwrap();
        let b3 = ArrayD::from_shape_vec(IxDyn(sb), b.to_vec()).unwrap();
        let (m, k, n) = (sa[sa.len() - 2], sa[sa.len() - 1], sb[sb.len() - 1]);
        let batch = broadcast_shape(&sa[..sa.len() - 2], &sb[..sb.len() - 2]).unwrap();
        let mut full_a = batch.clone();
        full_a.extend([m, k]);
        let mut full_b = batch.clone();
        full_b.extend([k, n]);
        let ab = a3.broadcast(IxDyn(&full_a)).unwrap();
        let bb = b3.broadcast(IxDyn(&full_b)).unwrap();
        let nb: usize = batch.iter().product();
        let av: Vec<i64> = ab.iter().copied().collect();
        let bv: Vec<i64> = bb.iter().copied().collect();
        let mut out = vec![];
        for t in 0..nb {
            for i in 0..m {
                for j in 0..n {
                    out.push(
                        (0..k)
                            .map(|p| av[t * m * k + i * k + p] * bv[t * k * n + p * n + j])
                            .sum(),
                    );
                }
            }
        }
        out
    }

    #[test]
    fn broadcast_batches_match_naive() {
        for (sa, sb) in [
            (vec![2, 1, 3, 4], vec![5, 4, 2]),
            (vec![3, 4], vec![2, 4, 5]),
            (vec![1, 2, 3], vec![3, 3, 1]),
            (vec![0, 2, 3], vec![3, 2]),
            (vec![2, 0], vec![0, 3]),
        ] {
            let la: usize = sa.iter().product();
            let lb: usize = sb.iter().product();
            let a: Vec<i64> = (0..la as i64).map(|v| v % 7 - 3).collect();
            let b: Vec<i64> = (0..lb as i64).map(|v| v % 5 - 2).collect();
            let got = matmul_any(
                &Value::from_vec(&sa, a.iter().map(|&v| v as i32).collect()).unwrap(),
                &Value::from_vec(&sb, b.iter().map(|&v| v as i32).collect()).unwrap(),
                ctx(),
            )
            .unwrap();
            assert_eq!(got.dtype(), crate::DType::I32);
            assert_eq!(got.to_i64_vec(), naive(&a, &sa, &b, &sb), "{sa:?} x {sb:?}");
            let fa = Value::from_vec(&sa, a.iter().map(|&v| v as f64).collect()).unwrap();
            let fb = Value::from_vec(&sb, b.iter().map(|&v| v as f64).collect()).unwrap();
            let f = matmul_any(&fa, &fb, ctx()).unwrap();
            assert_eq!(f.shape(), got.shape());
            assert_eq!(f.to_i64_vec(), got.to_i64_vec());
            let f32s = matmul_any(
                &fa.cast(crate::DType::F32),
                &fb.cast(crate::DType::F32),
                ctx(),
            )
            .unwrap();
            assert_eq!(f32s.shape(), got.shape());
            assert_eq!(f32s.to_i64_vec(), got.to_i64_vec());
        }
    }

    #[test]
    fn one_d_operands_drop_their_axis() {
        let a = Value::from_vec(&[3], vec![1.0f64, 2.0, 3.0]).unwrap();
        let b = Value::from_vec(&[3], vec![4.0f64, 5.0, 6.0]).unwrap();
        let v = matmul_any(&a, &b, ctx()).unwrap();
        assert_eq!(v.shape(), &[] as &[usize]);
        assert_eq!(v.to_f64_vec(), vec![32.0]);
        let m = Value::from_vec(&[2, 3, 2], (0..12).map(|x| x as f64).collect()).unwrap();
        let v = matmul_any(&a, &m, ctx()).unwrap();
        assert_eq!(v.shape(), &[2, 2]);
        assert_eq!(v.to_f64_vec(), vec![16.0, 22.0, 52.0, 58.0]);
    }

    #[test]
    fn mismatches_are_errors() {
        let a = Value::from_vec(&[2, 3], vec![0i64; 6]).unwrap();
        let b = Value::from_vec(&[2, 3], vec![0i64; 6]).unwrap();
        assert!(matmul_any(&a, &b, ctx()).is_err());
        assert!(matmul_any(&a, &b.cast(crate::DType::F32), ctx()).is_err());
        let s = Value::from_vec(&[], vec![1i64]).unwrap();
        assert!(matmul_any(&s, &a, ctx()).is_err());
        let t = Value::from_vec(&[3, 2], vec![true; 6]).unwrap();
        assert!(matmul_any(&a.cast(crate::DType::Bool), &t, ctx()).is_err());
    }

    #[test]
    fn gemm_on_f64_with_transposes_and_bias() {
        let a = Value::from_vec(&[3, 2], vec![1.0f64, 4.0, 2.0, 5.0, 3.0, 6.0]).unwrap();
        let b = Value::from_vec(&[2, 3], vec![1.0f64, 0.0, 1.0, 0.0, 1.0, 1.0]).unwrap();
        let c = Value::from_vec(&[2], vec![10.0f64, 20.0]).unwrap();
        let y = gemm_any(
            &[Some(&a), Some(&b), Some(&c)],
            2.0,
            0.5,
            [true, true],
            ctx(),
        )
        .unwrap();
        // A^T = [[1,2,3],[4,5,6]], B^T = [[1,0],[0,1],[1,1]]: A^T B^T = [[4,5],[10,11]].
        assert_eq!(y.to_f64_vec(), vec![13.0, 20.0, 25.0, 32.0]);
        assert_eq!(y.dtype(), crate::DType::F64);
        // Through the op: non-f32 Gemm and MatMul run here, f32 on the legacy path.
        let op = super::super::Op::Gemm {
            alpha: 2.0,
            beta: 0.5,
            trans_a: true,
            trans_b: true,
        };
        let via = super::super::eval(&op, &[Some(&a), Some(&b), Some(&c)], ctx()).unwrap();
        assert_eq!(via[0], y);
        let f = |v: &Value| v.cast(crate::DType::F32);
        let via32 =
            super::super::eval(&op, &[Some(&f(&a)), Some(&f(&b)), Some(&f(&c))], ctx()).unwrap();
        assert_eq!(via32[0].to_f64_vec(), y.to_f64_vec());
        let mm = super::super::eval(&super::super::Op::MatMul, &[Some(&a), Some(&b)], ctx());
        assert_eq!(mm.unwrap()[0].shape(), &[3, 3]);
    }
}
