//! Matrix products: MatMul (batched, numpy rules) and Gemm, on the `gemm` crate. Operands
//! are read in place (a transposed Gemm operand is a stride, not a copy), and products large
//! enough to pay for waking workers run on the current pool's threads.
use super::Ctx;
use crate::{Result, Value};
use elide_kernels::matmul::{self as mm, Strided};
use ndarray::{ArrayD, IxDyn};

/// Multiply-adds from which a product runs on all of the pool's threads.
const PAR_MIN_WORK: usize = 1 << 20;

fn parallelism(m: usize, n: usize, k: usize) -> gemm::Parallelism {
    let threads = elide_kernels::threads::current_threads();
    if threads > 1 && m * n * k >= PAR_MIN_WORK {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    }
}

/// `c[m x n] = a[m x k] b[k x n]` with arbitrary strides (row stride, column stride).
#[allow(clippy::too_many_arguments)]
fn gemm_into(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    a_strides: [isize; 2],
    b: &[f32],
    b_strides: [isize; 2],
    c: &mut [f32],
    alpha: f32,
) {
    debug_assert!(c.len() >= m * n);
    // SAFETY: a, b and c hold the m x k, k x n and m x n matrices at the given strides (the
    // callers derive the strides from the arrays' own shapes).
    unsafe {
        mm::matmul(
            [m, n, k],
            c.as_mut_ptr(),
            n as isize,
            false,
            Strided {
                ptr: a.as_ptr(),
                rows: a_strides[0],
                cols: a_strides[1],
            },
            Strided {
                ptr: b.as_ptr(),
                rows: b_strides[0],
                cols: b_strides[1],
            },
            alpha,
            parallelism(m, n, k),
        );
    }
}

/// Numpy `matmul`: 2-D or batched (leading dims of `a`, `b` 2-D or with the same batch).
pub fn matmul(a: &ArrayD<f32>, b: &ArrayD<f32>, ctx: Ctx) -> Result<ArrayD<f32>> {
    if a.ndim() < 2 || b.ndim() < 2 {
        return Err(ctx.err(format!(
            "1-D operands are not supported: {:?} x {:?}",
            a.shape(),
            b.shape()
        )));
    }
    let (m, k) = (a.shape()[a.ndim() - 2], a.shape()[a.ndim() - 1]);
    let (k2, n) = (b.shape()[b.ndim() - 2], b.shape()[b.ndim() - 1]);
    if k != k2 {
        return Err(ctx.err(format!(
            "inner dimensions differ: {:?} x {:?}",
            a.shape(),
            b.shape()
        )));
    }
    let batch_a: usize = a.shape()[..a.ndim() - 2].iter().product();
    let batch_b: usize = b.shape()[..b.ndim() - 2].iter().product();
    if batch_b != 1 && a.shape()[..a.ndim() - 2] != b.shape()[..b.ndim() - 2] {
        return Err(ctx.err(format!(
            "batch dims differ: {:?} x {:?}",
            a.shape(),
            b.shape()
        )));
    }
    let a = a.as_standard_layout();
    let b = b.as_standard_layout();
    let (asl, bsl) = (
        a.as_slice().expect("standard"),
        b.as_slice().expect("standard"),
    );
    // Thin operands ([m, 1] x [1, n]) can make a huge product.
    ctx.sized("output", &[batch_a, m, n])?;
    let mut out = vec![0f32; batch_a * m * n];
    for i in 0..batch_a {
        let bi = if batch_b == 1 { 0 } else { i };
        gemm_into(
            m,
            n,
            k,
            &asl[i * m * k..],
            [k as isize, 1],
            &bsl[bi * k * n..],
            [n as isize, 1],
            &mut out[i * m * n..],
            1.0,
        );
    }
    let mut shape = a.shape()[..a.ndim() - 2].to_vec();
    shape.extend([m, n]);
    Ok(ArrayD::from_shape_vec(IxDyn(&shape), out)?)
}

/// ONNX Gemm: `alpha op(A) op(B) + beta C`, A and B 2-D, C broadcast to the result.
pub fn gemm(
    inputs: &[Option<&Value>],
    alpha: f32,
    beta: f32,
    trans_a: bool,
    trans_b: bool,
    ctx: Ctx,
) -> Result<ArrayD<f32>> {
    let a = ctx.f32(inputs, 0)?.as_standard_layout();
    let b = ctx.f32(inputs, 1)?.as_standard_layout();
    if a.ndim() != 2 || b.ndim() != 2 {
        return Err(ctx.err(format!(
            "Gemm needs 2-D A and B, got {:?} and {:?}",
            a.shape(),
            b.shape()
        )));
    }
    let (ar, ac) = (a.shape()[0], a.shape()[1]);
    let (br, bc) = (b.shape()[0], b.shape()[1]);
    let (m, k, a_strides) = if trans_a {
        (ac, ar, [1, ac as isize])
    } else {
        (ar, ac, [ac as isize, 1])
    };
    let (k2, n, b_strides) = if trans_b {
        (bc, br, [1, bc as isize])
    } else {
        (br, bc, [bc as isize, 1])
    };
    if k != k2 {
        return Err(ctx.err(format!(
            "inner dimensions differ: A {:?} B {:?} (transA {trans_a}, transB {trans_b})",
            a.shape(),
            b.shape()
        )));
    }
    ctx.sized("output", &[m, n])?;
    let mut out = vec![0f32; m * n];
    gemm_into(
        m,
        n,
        k,
        a.as_slice().expect("standard"),
        a_strides,
        b.as_slice().expect("standard"),
        b_strides,
        &mut out,
        alpha,
    );
    let mut y = ArrayD::from_shape_vec(IxDyn(&[m, n]), out)?;
    if let Some(c) = inputs.get(2).copied().flatten() {
        let c = c.as_f32().ok_or_else(|| ctx.err("C must be f32"))?;
        let cb = c.broadcast(IxDyn(&[m, n])).ok_or_else(|| {
            ctx.err(format!(
                "C {:?} does not broadcast to [{m}, {n}]",
                c.shape()
            ))
        })?;
        y.zip_mut_with(&cb, |y, &c| *y += beta * c);
    }
    Ok(y)
}
