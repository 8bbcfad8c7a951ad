//! Small vector loops for the depthwise kernels, compiled for AVX2+FMA as well as the
//! baseline and picked at run time: the workspace builds for generic x86-64 (SSE2), where
//! these loops ran at a fraction of the machine's speed.

/// `dst[i] += w * src[i]` over the shorter of the two.
#[inline]
pub(crate) fn axpy(dst: &mut [f32], src: &[f32], w: f32) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked just above).
        unsafe { axpy_avx2(dst, src, w) };
        return;
    }
    axpy_generic(dst, src, w);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn axpy_avx2(dst: &mut [f32], src: &[f32], w: f32) {
    axpy_generic(dst, src, w);
}

#[inline(always)]
fn axpy_generic(dst: &mut [f32], src: &[f32], w: f32) {
    dst.iter_mut().zip(src).for_each(|(d, &s)| *d += w * s);
}

/// `dst[i] = sum over taps (at, w) of w * src[at + i]`: a whole stencil per output, kept in
/// registers (one store per output instead of one read-modify-write per tap).
/// Panics if `src` is shorter than `at + dst.len()` for some tap.
pub(crate) fn stencil(dst: &mut [f32], src: &[f32], taps: &[(usize, f32)]) {
    let need = taps.iter().map(|t| t.0).max().unwrap_or(0) + dst.len();
    assert!(src.len() >= need, "stencil source too short");
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU supports AVX2 and FMA; every read is inside `src` (asserted above).
        unsafe { stencil_avx2(dst, src, taps) };
        return;
    }
    for (i, d) in dst.iter_mut().enumerate() {
        *d = taps.iter().map(|&(at, w)| w * src[at + i]).sum();
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn stencil_avx2(dst: &mut [f32], src: &[f32], taps: &[(usize, f32)]) {
    use std::arch::x86_64::*;
    let n = dst.len();
    let (d, s) = (dst.as_mut_ptr(), src.as_ptr());
    let mut i = 0;
    // Two vectors per step for two independent FMA chains.
    while i + 16 <= n {
        let (mut a, mut b) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        for &(at, w) in taps {
            let wv = _mm256_set1_ps(w);
            a = _mm256_fmadd_ps(wv, _mm256_loadu_ps(s.add(at + i)), a);
            b = _mm256_fmadd_ps(wv, _mm256_loadu_ps(s.add(at + i + 8)), b);
        }
        _mm256_storeu_ps(d.add(i), a);
        _mm256_storeu_ps(d.add(i + 8), b);
        i += 16;
    }
    while i + 8 <= n {
        let mut a = _mm256_setzero_ps();
        for &(at, w) in taps {
            a = _mm256_fmadd_ps(_mm256_set1_ps(w), _mm256_loadu_ps(s.add(at + i)), a);
        }
        _mm256_storeu_ps(d.add(i), a);
        i += 8;
    }
    while i < n {
        let mut acc = 0.0;
        for &(at, w) in taps {
            acc += w * *s.add(at + i);
        }
        *d.add(i) = acc;
        i += 1;
    }
}
