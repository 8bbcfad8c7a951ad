//! im2col for a band of output rows: the GEMM right-hand side `[cin_g*kh*kw, pixels]`.
use super::Conv2dParams;
use crate::copy::copy_row;
use crate::Tensor;

/// The output positions `lo..hi` (within `0..out_len`) whose input index
/// `o * stride + shift` falls inside `0..in_len`.
#[inline]
pub(super) fn valid_span(
    out_len: usize,
    in_len: usize,
    shift: isize,
    stride: usize,
) -> (usize, usize) {
    let w = in_len as isize;
    let s = stride as isize;
    let lo = if shift >= 0 { 0 } else { (-shift + s - 1) / s };
    let hi = if w - shift <= 0 {
        0
    } else {
        ((w - shift + s - 1) / s).min(out_len as isize)
    };
    if lo >= hi {
        (0, 0)
    } else {
        (lo as usize, hi as usize)
    }
}

/// A rectangle of output pixels of one image: `rows x cols` from `(y0, x0)`. Corners may lie
/// outside the output (per-block pipelines compute a halo there); the image is then treated
/// as zero-extended, like padding.
#[derive(Clone, Copy, Debug)]
pub(super) struct Rect {
    pub n: usize,
    pub y0: isize,
    pub x0: isize,
    pub rows: usize,
    pub cols: usize,
}

impl Rect {
    pub fn pixels(&self) -> usize {
        self.rows * self.cols
    }
}

/// Fills `col` (`cin_g*kh*kw` rows of `rect.pixels()` values) with the receptive fields of the
/// output pixels in `rect`, input channels `c0..c0+cin_g`; zeros where a window leaves the image.
pub(super) fn im2col_rect(
    x: &Tensor,
    c0: usize,
    cin_g: usize,
    p: &Conv2dParams,
    rect: Rect,
    col: &mut [f32],
) {
    let [_, _, h, w] = x.shape();
    let [kh, kw] = p.kernel;
    let npix = rect.pixels();
    let [sy, sx] = [p.stride[0] as isize, p.stride[1] as isize];
    for ci in 0..cin_g {
        let xin = x.plane(rect.n, c0 + ci);
        for ky in 0..kh {
            for kx in 0..kw {
                let r = (ci * kh + ky) * kw + kx;
                let dst = &mut col[r * npix..(r + 1) * npix];
                let shift = rect.x0 * sx + (kx * p.dilation[1]) as isize - p.pad.left as isize;
                let (lo, hi) = valid_span(rect.cols, w, shift, p.stride[1]);
                for (j, drow) in dst.chunks_exact_mut(rect.cols).enumerate() {
                    let iy = (rect.y0 + j as isize) * sy + (ky * p.dilation[0]) as isize
                        - p.pad.top as isize;
                    if iy < 0 || iy >= h as isize || lo == hi {
                        drow.fill(0.0);
                        continue;
                    }
                    let irow = &xin[iy as usize * w..(iy as usize + 1) * w];
                    drow[..lo].fill(0.0);
                    drow[hi..].fill(0.0);
                    if sx == 1 {
                        let s = (lo as isize + shift) as usize;
                        copy_row(&mut drow[lo..hi], &irow[s..s + hi - lo]);
                    } else {
                        for (ox, d) in drow.iter_mut().enumerate().take(hi).skip(lo) {
                            *d = irow[(ox as isize * sx + shift) as usize];
                        }
                    }
                }
            }
        }
    }
}
