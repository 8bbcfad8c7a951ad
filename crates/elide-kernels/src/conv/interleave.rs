//! Moving between NCHW planes and channel-interleaved buffers (`[pixel][8 channels]`, one
//! AVX2 vector per pixel), shared by the kernels that compute 8 channels per vector.

/// Channels per vector.
pub(super) const L: usize = 8;

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// `r[i][j]` to `out[j][i]` for an 8x8 block held in 8 vectors.
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn transpose8(r: [__m256; 8]) -> [__m256; 8] {
    let t0 = _mm256_unpacklo_ps(r[0], r[1]);
    let t1 = _mm256_unpackhi_ps(r[0], r[1]);
    let t2 = _mm256_unpacklo_ps(r[2], r[3]);
    let t3 = _mm256_unpackhi_ps(r[2], r[3]);
    let t4 = _mm256_unpacklo_ps(r[4], r[5]);
    let t5 = _mm256_unpackhi_ps(r[4], r[5]);
    let t6 = _mm256_unpacklo_ps(r[6], r[7]);
    let t7 = _mm256_unpackhi_ps(r[6], r[7]);
    let s0 = _mm256_shuffle_ps::<0x44>(t0, t2);
    let s1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
    let s2 = _mm256_shuffle_ps::<0x44>(t1, t3);
    let s3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
    let s4 = _mm256_shuffle_ps::<0x44>(t4, t6);
    let s5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
    let s6 = _mm256_shuffle_ps::<0x44>(t5, t7);
    let s7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
    [
        _mm256_permute2f128_ps::<0x20>(s0, s4),
        _mm256_permute2f128_ps::<0x20>(s1, s5),
        _mm256_permute2f128_ps::<0x20>(s2, s6),
        _mm256_permute2f128_ps::<0x20>(s3, s7),
        _mm256_permute2f128_ps::<0x31>(s0, s4),
        _mm256_permute2f128_ps::<0x31>(s1, s5),
        _mm256_permute2f128_ps::<0x31>(s2, s6),
        _mm256_permute2f128_ps::<0x31>(s3, s7),
    ]
}

/// `outb[pixel][lane]` into the output rows of each lane (`outs[l]`, all equally long), by
/// 8x8 transposes.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn deinterleave(outb: &[f32], outs: &mut [&mut [f32]]) {
    let n = outs.first().map_or(0, |o| o.len());
    assert!(outb.len() >= n * L && outs.len() <= L && outs.iter().all(|o| o.len() == n));
    let mut px = 0;
    while px + L <= n {
        let mut r = [_mm256_setzero_ps(); 8];
        for (j, v) in r.iter_mut().enumerate() {
            *v = _mm256_loadu_ps(outb.as_ptr().add((px + j) * L));
        }
        let t = transpose8(r);
        for (o, v) in outs.iter_mut().zip(t) {
            _mm256_storeu_ps(o.as_mut_ptr().add(px), v);
        }
        px += L;
    }
    for q in px..n {
        for (l, o) in outs.iter_mut().enumerate() {
            o[q] = outb[q * L + l];
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
pub(super) unsafe fn deinterleave(_: &[f32], _: &mut [&mut [f32]]) {
    unreachable!("the interleaved kernels run on x86_64 only")
}
