//! Row copies for the short rows of tiles (8 to 64 floats), where a `memcpy` call per row costs
//! more than the copy itself (measured: gather and scatter of 16-wide rows ran at ~3 GB/s).

/// `dst.copy_from_slice(src)`, inlined as 8-float moves for short rows.
#[inline(always)]
pub(crate) fn copy_row(dst: &mut [f32], src: &[f32]) {
    debug_assert_eq!(dst.len(), src.len());
    if dst.len() >= 64 {
        dst.copy_from_slice(src);
        return;
    }
    let mut d = dst.chunks_exact_mut(8);
    let mut s = src.chunks_exact(8);
    for (d8, s8) in (&mut d).zip(&mut s) {
        let v: [f32; 8] = s8.try_into().expect("chunks of 8");
        d8.copy_from_slice(&v);
    }
    for (d1, s1) in d.into_remainder().iter_mut().zip(s.remainder()) {
        *d1 = *s1;
    }
}

/// True when every value is finite; branch-free so it vectorises (no early exit).
#[inline]
pub(crate) fn all_finite(xs: &[f32]) -> bool {
    xs.iter().fold(true, |ok, v| ok & v.is_finite())
}
