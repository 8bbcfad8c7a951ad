//! Zero-padded phase planes: the input layout of the AVX-512 direct kernels.
//!
//! A channel is copied into `stride * stride` phase planes (plane `(a, b)` holds padded rows
//! `a, a+s, ..` and columns `b, b+s, ..`), all `wq` wide. An output pixel `(oy, ox)` then sits
//! at flat index `oy * wq + ox`, and each weight tap reads one plane at a fixed flat offset
//! from it, so a convolution becomes multiply-adds of shifted contiguous runs. The columns
//! `ox >= wo` of each flat row are junk, dropped when results are copied out.
use super::Conv2d;

/// The phase-plane geometry of one call.
#[derive(Clone, Copy, Debug)]
pub(super) struct Planes {
    pub(super) s: [usize; 2],
    /// Rows and width of each plane.
    pub(super) hq: usize,
    pub(super) wq: usize,
    /// Plane column of input column 0 (of phase 0).
    pub(super) left: usize,
    /// Added to every tap's offset: `left` minus the left padding.
    pub(super) lead: usize,
}

impl Planes {
    /// Stride 1 shares padding between rows when it can: each row is `g = max(left, right
    /// pad)` zeros then the data, so a row's right padding is the next row's leading zeros.
    /// That leaves `wq - wo` junk columns (1 for a padded 3x3) instead of `kw - 1`, which
    /// matters on 10x10 maps. Otherwise (strides, or padding wider than the taps), each plane
    /// row is the padded row of its phase.
    pub(super) fn new(conv: &Conv2d, h: usize, w: usize, wo: usize) -> Self {
        let p = &conv.params;
        let s = p.stride;
        let hp = h + p.pad.top + p.pad.bottom;
        let g = p.pad.left.max(p.pad.right);
        if s == [1, 1] && wo <= w + g {
            return Planes {
                s,
                hq: hp,
                wq: w + g,
                left: g,
                lead: g - p.pad.left,
            };
        }
        let wp = w + p.pad.left + p.pad.right;
        Planes {
            s,
            hq: hp.div_ceil(s[0]),
            wq: wp.div_ceil(s[1]),
            left: p.pad.left,
            lead: 0,
        }
    }

    pub(super) fn plane(&self) -> usize {
        self.hq * self.wq
    }

    /// Flat input offset of every `k = (ci, ky, kx)` for `cin` channels' planes laid out
    /// phase-major (`[phase][ci]`), in OIHW order.
    pub(super) fn offsets(&self, conv: &Conv2d, cin: usize) -> Vec<usize> {
        let p = &conv.params;
        let [kh, kw] = p.kernel;
        let [dh, dw] = p.dilation;
        let [sh, sw] = self.s;
        let mut offs = Vec::with_capacity(cin * kh * kw);
        for ci in 0..cin {
            for ky in 0..kh {
                for kx in 0..kw {
                    let (y, x) = (ky * dh, kx * dw);
                    let phase = (y % sh) * sw + x % sw;
                    offs.push(
                        (phase * cin + ci) * self.plane() + (y / sh) * self.wq + x / sw + self.lead,
                    );
                }
            }
        }
        offs
    }

    /// The same layout restricted to plane rows `r0..r0 + rows` (a band's), as planes of
    /// `rows` rows.
    pub(super) fn window(&self, rows: usize) -> Planes {
        Planes { hq: rows, ..*self }
    }

    /// Writes rows `r0..r0 + dst.len() / wq` of phase plane `ph` of one input channel `src`
    /// (`h x w`) into `dst`: zeros where the padded image has padding.
    pub(super) fn fill(
        &self,
        conv: &Conv2d,
        src: &[f32],
        [h, w]: [usize; 2],
        ph: usize,
        r0: usize,
        dst: &mut [f32],
    ) {
        let p = &conv.params;
        let [sh, sw] = self.s;
        let (a, b) = (ph / sw, ph % sw);
        for (i, row) in dst.chunks_exact_mut(self.wq).enumerate() {
            let r = r0 + i;
            let y = (r * sh + a) as isize - p.pad.top as isize;
            if y < 0 || y >= h as isize {
                row.fill(0.0);
                continue;
            }
            let srow = &src[y as usize * w..(y as usize + 1) * w];
            if sw == 1 {
                // Leading zeros, the row, trailing zeros.
                let l = self.left.min(self.wq);
                row[..l].fill(0.0);
                let n = w.min(self.wq - l);
                row[l..l + n].copy_from_slice(&srow[..n]);
                row[l + n..].fill(0.0);
            } else {
                // Plane columns cq with 0 <= cq * sw + b - left < w.
                let first = (p.pad.left.saturating_sub(b)).div_ceil(sw).min(self.wq);
                let end = (w + p.pad.left)
                    .saturating_sub(b)
                    .div_ceil(sw)
                    .clamp(first, self.wq);
                row[..first].fill(0.0);
                // None when the row is narrower than this phase's column offset.
                if first < end {
                    let x0 = first * sw + b - p.pad.left;
                    every_nth(&mut row[first..end], &srow[x0..], sw);
                }
                row[end..].fill(0.0);
            }
        }
    }
}

/// `dst[i] = src[n i]`.
fn every_nth(dst: &mut [f32], src: &[f32], n: usize) {
    #[cfg(target_arch = "x86_64")]
    if n == 2 && std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: AVX-512F checked just above; callers pass `src` covering `n * (len-1) + 1`.
        unsafe { every_other_avx512(dst, src) };
        return;
    }
    for (i, v) in dst.iter_mut().enumerate() {
        *v = src[i * n];
    }
}

/// `dst[i] = src[2 i]`, vectorised (the scalar loop was a fifth of a stride-2 layer's time).
///
/// # Safety
/// AVX-512F; `src` has at least `2 * dst.len() - 1` values.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn every_other_avx512(dst: &mut [f32], src: &[f32]) {
    use std::arch::x86_64::*;
    let even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    let mut i = 0;
    while 2 * i + 32 <= src.len() && i + 16 <= dst.len() {
        let a = _mm512_loadu_ps(src.as_ptr().add(2 * i));
        let b = _mm512_loadu_ps(src.as_ptr().add(2 * i + 16));
        _mm512_storeu_ps(dst.as_mut_ptr().add(i), _mm512_permutex2var_ps(a, even, b));
        i += 16;
    }
    for (j, v) in dst.iter_mut().enumerate().skip(i) {
        *v = src[2 * j];
    }
}
