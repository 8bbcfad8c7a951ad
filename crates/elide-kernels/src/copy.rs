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

/// Index of the first NaN/inf in `xs`: branch-free scans of chunks, then a search inside the
/// first bad chunk (an early-exit scan of the whole slice ran an order of magnitude slower).
pub fn first_non_finite(xs: &[f32]) -> Option<usize> {
    const CHUNK: usize = 4096;
    let c = xs.chunks(CHUNK).position(|c| !all_finite(c))?;
    let at = c * CHUNK;
    xs[at..].iter().position(|x| !x.is_finite()).map(|i| at + i)
}

#[cfg(test)]
mod finite_tests {
    use super::first_non_finite;

    #[test]
    fn finds_the_first_bad_value_across_chunks() {
        let mut xs = vec![1.0f32; 10_000];
        assert_eq!(first_non_finite(&xs), None);
        assert_eq!(first_non_finite(&[]), None);
        for at in [0, 4095, 4096, 9_999] {
            let mut ys = xs.clone();
            ys[at] = f32::NAN;
            ys[9_999.min(at + 3)] = f32::INFINITY;
            assert_eq!(first_non_finite(&ys), Some(at));
        }
        xs[5000] = f32::NEG_INFINITY;
        assert_eq!(first_non_finite(&xs), Some(5000));
    }
}
