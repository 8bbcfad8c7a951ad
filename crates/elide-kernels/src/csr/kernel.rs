//! The sparse-weight kernel: `dst = bias + sum_e vals[e] * src[cols[e] * ld ..][..dst.len()]`,
//! i.e. one CSR row times a feature-major activation block (at batch 1, a gathered dot
//! product). Compiled for AVX2+FMA as well as
//! the baseline (the workspace targets generic x86-64) and picked at run time; [`name`] says
//! which runs.

/// The kernel this CPU runs.
pub fn name() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    if avx2_fma() {
        return "csr-rowstencil-avx2-fma";
    }
    "csr-rowstencil-generic"
}

#[cfg(target_arch = "x86_64")]
fn avx2_fma() -> bool {
    std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
}

/// One output row: `dst[j] = bias + sum_e vals[e] * src[cols[e] * ld + j]`.
///
/// Errors (as `None`) when some `cols[e] * ld + dst.len()` exceeds `src`.
pub fn row(
    dst: &mut [f32],
    src: &[f32],
    ld: usize,
    cols: &[u32],
    vals: &[f32],
    bias: f32,
) -> Option<()> {
    let max = match cols.iter().copied().max() {
        // Checked: a wrapped product would pass the bound below and read out of bounds.
        Some(c) => (c as usize).checked_mul(ld)?.checked_add(dst.len())?,
        None => 0,
    };
    if max > src.len() || cols.len() != vals.len() {
        return None;
    }
    #[cfg(target_arch = "x86_64")]
    if avx2_fma() {
        if dst.len() == 1 && src.len() <= i32::MAX as usize {
            // SAFETY: AVX2 and FMA are present; every gathered index `cols[e] * ld < max <=
            // src.len() <= i32::MAX`.
            dst[0] = unsafe { dot_gather_avx2(src, ld, cols, vals) } + bias;
            return Some(());
        }
        // SAFETY: AVX2 and FMA are present; every read `cols[e] * ld + j < max <= src.len()`.
        unsafe { row_avx2(dst, src, ld, cols, vals, bias) };
        return Some(());
    }
    row_generic(dst, src, ld, cols, vals, bias);
    Some(())
}

fn row_generic(dst: &mut [f32], src: &[f32], ld: usize, cols: &[u32], vals: &[f32], bias: f32) {
    dst.fill(bias);
    for (&c, &w) in cols.iter().zip(vals) {
        let s = &src[c as usize * ld..c as usize * ld + dst.len()];
        dst.iter_mut().zip(s).for_each(|(d, &x)| *d += w * x);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn row_avx2(dst: &mut [f32], src: &[f32], ld: usize, cols: &[u32], vals: &[f32], bias: f32) {
    use std::arch::x86_64::*;
    let n = dst.len();
    let (d, s) = (dst.as_mut_ptr(), src.as_ptr());
    let mut j = 0;
    // 32 lanes at a time: four independent FMA chains held in registers over the whole row.
    while j + 32 <= n {
        let mut a = [_mm256_set1_ps(bias); 4];
        for (&c, &w) in cols.iter().zip(vals) {
            let wv = _mm256_set1_ps(w);
            let p = s.add(c as usize * ld + j);
            for (q, acc) in a.iter_mut().enumerate() {
                *acc = _mm256_fmadd_ps(wv, _mm256_loadu_ps(p.add(8 * q)), *acc);
            }
        }
        for (q, acc) in a.iter().enumerate() {
            _mm256_storeu_ps(d.add(j + 8 * q), *acc);
        }
        j += 32;
    }
    while j + 8 <= n {
        let mut acc = _mm256_set1_ps(bias);
        for (&c, &w) in cols.iter().zip(vals) {
            acc = _mm256_fmadd_ps(
                _mm256_set1_ps(w),
                _mm256_loadu_ps(s.add(c as usize * ld + j)),
                acc,
            );
        }
        _mm256_storeu_ps(d.add(j), acc);
        j += 8;
    }
    for jj in j..n {
        let mut acc = bias;
        for (&c, &w) in cols.iter().zip(vals) {
            acc += w * *s.add(c as usize * ld + jj);
        }
        *d.add(jj) = acc;
    }
}

/// Batch 1: `sum_e vals[e] * src[cols[e] * ld]`, eight nonzeros per gather, two independent
/// accumulators (a single scalar chain waits on every FMA's latency).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_gather_avx2(src: &[f32], ld: usize, cols: &[u32], vals: &[f32]) -> f32 {
    use std::arch::x86_64::*;
    let (n, s) = (cols.len(), src.as_ptr());
    let (c, v) = (cols.as_ptr(), vals.as_ptr());
    let ldv = _mm256_set1_epi32(ld as i32);
    let mut acc = [_mm256_setzero_ps(); 2];
    let mut e = 0;
    while e + 16 <= n {
        for (q, a) in acc.iter_mut().enumerate() {
            let idx = _mm256_mullo_epi32(_mm256_loadu_si256(c.add(e + 8 * q).cast()), ldv);
            let x = _mm256_i32gather_ps::<4>(s, idx);
            *a = _mm256_fmadd_ps(_mm256_loadu_ps(v.add(e + 8 * q)), x, *a);
        }
        e += 16;
    }
    if e + 8 <= n {
        let idx = _mm256_mullo_epi32(_mm256_loadu_si256(c.add(e).cast()), ldv);
        let x = _mm256_i32gather_ps::<4>(s, idx);
        acc[0] = _mm256_fmadd_ps(_mm256_loadu_ps(v.add(e)), x, acc[0]);
        e += 8;
    }
    let sum = _mm256_add_ps(acc[0], acc[1]);
    let half = _mm_add_ps(_mm256_castps256_ps128(sum), _mm256_extractf128_ps::<1>(sum));
    let mut lanes = [0f32; 4];
    _mm_storeu_ps(lanes.as_mut_ptr(), half);
    let mut total = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
    for k in e..n {
        total += *v.add(k) * *s.add(*c.add(k) as usize * ld);
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SplitMix64 as Rng;

    #[test]
    fn matches_the_generic_loop_on_odd_widths() {
        let mut r = Rng::new(5);
        for &n in &[1usize, 7, 8, 31, 32, 45, 77] {
            let ld = n + 3;
            let src: Vec<f32> = (0..20 * ld).map(|_| r.range(-2.0, 2.0)).collect();
            let cols = [0u32, 3, 4, 19, 7];
            let vals = [0.5f32, -1.0, 2.0, 0.25, 1.5];
            let mut a = vec![0.0; n];
            let mut b = vec![0.0; n];
            row(&mut a, &src, ld, &cols, &vals, 0.3).unwrap();
            row_generic(&mut b, &src, ld, &cols, &vals, 0.3);
            for (x, y) in a.iter().zip(&b) {
                assert!((x - y).abs() <= 1e-5 * (1.0 + y.abs()), "{n}: {x} vs {y}");
            }
        }
    }

    #[test]
    fn batch_one_gather_matches_the_generic_loop() {
        let mut r = Rng::new(9);
        for &nnz in &[0usize, 1, 7, 8, 15, 16, 17, 40, 333] {
            for &ld in &[1usize, 3] {
                let src: Vec<f32> = (0..500 * ld).map(|_| r.range(-2.0, 2.0)).collect();
                let cols: Vec<u32> = (0..nnz).map(|_| (r.next_u64() % 500) as u32).collect();
                let vals: Vec<f32> = (0..nnz).map(|_| r.range(-2.0, 2.0)).collect();
                let (mut a, mut b) = ([0.0f32], [0.0f32]);
                row(&mut a, &src, ld, &cols, &vals, -0.7).unwrap();
                row_generic(&mut b, &src, ld, &cols, &vals, -0.7);
                assert!(
                    (a[0] - b[0]).abs() <= 1e-4 * (1.0 + b[0].abs()),
                    "{nnz} {ld}: {a:?} vs {b:?}"
                );
            }
        }
    }

    #[test]
    fn out_of_range_columns_are_refused() {
        let mut d = vec![0.0; 4];
        assert!(row(&mut d, &[0.0; 8], 4, &[2], &[1.0], 0.0).is_none());
        // A column times the stride that overflows usize is refused, not wrapped.
        assert!(row(&mut d[..1], &[0.0; 8], usize::MAX / 2, &[3], &[1.0], 0.0).is_none());
    }
}
