//! The one entry to the `gemm` crate: `dst (+)= alpha * lhs * rhs` on strided f32 matrices,
//! with the column count split at a multiple of 16.
//!
//! Measured here with gemm's AVX-512 kernels: a product whose `n` is not a multiple of 16 runs
//! at ~60% of the speed of one that is (m = 64, k = 576: n = 432 at 106 GFLOP/s, n = 440 at
//! 58), whatever the strides. Computing the first `n - n % 16` columns, then the few left,
//! recovers most of it (n = 196: 0.41 -> 0.26 ms). Below 64 columns one call is as fast warm
//! and faster when the left operand comes from memory, which the second call reads again
//! (512 x 512 x 49 with caches flushed: 0.35-0.36 ms in one call, 0.38-0.41 split; example
//! `probes -- split`).

/// Columns the main part of a product is rounded down to.
const ALIGN: usize = 16;
/// Fewest columns for which the product is split.
const SPLIT_FROM: usize = 4 * ALIGN;

/// A strided operand: element `(i, j)` at `ptr + i * rows + j * cols`.
#[derive(Clone, Copy, Debug)]
pub struct Strided<P> {
    /// First element.
    pub ptr: P,
    /// Row stride, in elements.
    pub rows: isize,
    /// Column stride, in elements.
    pub cols: isize,
}

/// `dst = alpha * lhs * rhs` (or `dst += ...` with `accumulate`) for `dst: m x n`,
/// `lhs: m x k`, `rhs: k x n`; `dst`'s columns are contiguous (column stride 1).
///
/// # Safety
/// Every element the shapes and strides address must lie inside live allocations, and `dst`
/// must not overlap `lhs` or `rhs` nor be accessed by anyone else during the call.
#[allow(clippy::too_many_arguments)]
pub unsafe fn matmul(
    [m, n, k]: [usize; 3],
    dst: *mut f32,
    dst_rows: isize,
    accumulate: bool,
    lhs: Strided<*const f32>,
    rhs: Strided<*const f32>,
    alpha: f32,
    par: gemm::Parallelism,
) {
    let main = if n >= SPLIT_FROM { n - n % ALIGN } else { n };
    // SAFETY (both calls): the caller's contract covers columns 0..n of dst and rhs.
    let call = |n: usize, dst: *mut f32, rhs_ptr: *const f32| unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            1,
            dst_rows,
            accumulate,
            lhs.ptr,
            lhs.cols,
            lhs.rows,
            rhs_ptr,
            rhs.cols,
            rhs.rows,
            if accumulate { 1.0 } else { 0.0 },
            alpha,
            false,
            false,
            false,
            par,
        )
    };
    call(main, dst, rhs.ptr);
    if main < n {
        // SAFETY: as above; column `main` is inside both.
        unsafe {
            call(
                n - main,
                dst.add(main),
                rhs.ptr.offset(main as isize * rhs.cols),
            )
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SplitMix64;

    /// Against a naive product, for column counts on both sides of the split, transposed
    /// operands and accumulation.
    #[test]
    fn matches_naive_product_for_any_column_count() {
        let mut rng = SplitMix64::new(12);
        for &(m, n, k) in &[
            (5, 7, 3),
            (16, 16, 8),
            (9, 17, 33),
            (24, 196, 40),
            (3, 49, 64),
            (2, 64, 5),
            (4, 65, 9),
            (1, 1, 1),
        ] {
            let a = rng.vec(m * k, -1.0, 1.0);
            let b = rng.vec(k * n, -1.0, 1.0);
            let init = rng.vec(m * n, -1.0, 1.0);
            for (accumulate, transposed_b) in [(false, false), (true, false), (false, true)] {
                // b stored as k x n (row-major) or as its transpose n x k.
                let (bdata, bs) = if transposed_b {
                    let mut t = vec![0f32; n * k];
                    for i in 0..k {
                        for j in 0..n {
                            t[j * k + i] = b[i * n + j];
                        }
                    }
                    (
                        t,
                        Strided {
                            ptr: std::ptr::null(),
                            rows: 1,
                            cols: k as isize,
                        },
                    )
                } else {
                    (
                        b.clone(),
                        Strided {
                            ptr: std::ptr::null(),
                            rows: n as isize,
                            cols: 1,
                        },
                    )
                };
                let mut dst = init.clone();
                // SAFETY: all three matrices are the vectors above, at their own strides.
                unsafe {
                    matmul(
                        [m, n, k],
                        dst.as_mut_ptr(),
                        n as isize,
                        accumulate,
                        Strided {
                            ptr: a.as_ptr(),
                            rows: k as isize,
                            cols: 1,
                        },
                        Strided {
                            ptr: bdata.as_ptr(),
                            ..bs
                        },
                        0.5,
                        gemm::Parallelism::None,
                    );
                }
                for i in 0..m {
                    for j in 0..n {
                        let dot: f32 = (0..k).map(|t| a[i * k + t] * b[t * n + j]).sum();
                        let want = 0.5 * dot + if accumulate { init[i * n + j] } else { 0.0 };
                        let got = dst[i * n + j];
                        assert!(
                            (got - want).abs() < 1e-4,
                            "{m}x{n}x{k} at {i},{j}: {got} vs {want}"
                        );
                    }
                }
            }
        }
    }
}
