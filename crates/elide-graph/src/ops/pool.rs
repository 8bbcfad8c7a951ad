//! Max and average pooling over the two trailing axes of an NCHW array.
use super::Ctx;
use crate::Result;
use ndarray::{ArrayD, Ix4, IxDyn};
use rayon::prelude::*;
use std::ops::Range;

/// Max or average.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolKind {
    /// Largest value in the window (padding never wins).
    Max,
    /// Mean of the window.
    Average {
        /// Divide by the full window (true) or by its part inside the image (false).
        count_include_pad: bool,
    },
}

/// A pooling layer's geometry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pool {
    /// Max or average.
    pub kind: PoolKind,
    /// Window.
    pub kernel: [usize; 2],
    /// Step.
    pub stride: [usize; 2],
    /// Padding [top, left, bottom, right].
    pub pads: [usize; 4],
    /// Dilation (max pooling).
    pub dilation: [usize; 2],
    /// Round the output size up (windows may start in the bottom/right padding's range).
    pub ceil_mode: bool,
}

impl Pool {
    /// Output size along one axis; `None` when the window does not fit the padded input.
    /// Wide integers: the attributes come from the model and must not wrap (kernel, stride
    /// and dilation are at least 1, validated at load).
    pub(super) fn out_len(&self, len: usize, ax: usize) -> Option<u128> {
        let span = (self.kernel[ax] as u128 - 1) * self.dilation[ax] as u128 + 1;
        let front = len as u128 + self.pads[ax] as u128;
        let padded = front + self.pads[ax + 2] as u128;
        if padded < span {
            return None;
        }
        let s = self.stride[ax] as u128;
        let mut out = if self.ceil_mode {
            (padded - span).div_ceil(s) + 1
        } else {
            (padded - span) / s + 1
        };
        // A window must start inside the image or its leading padding.
        if self.ceil_mode && (out - 1) * s >= front {
            out -= 1;
        }
        Some(out)
    }

    /// Stride-1 undilated max pooling, which the dense path runs as a max over columns then
    /// rows (unless the window is nearly as tall as the input).
    pub(super) fn separable(&self) -> bool {
        self.kind == PoolKind::Max && self.stride == [1, 1] && self.dilation == [1, 1]
    }

    /// Pools `x` (`[N, C, H, W]`).
    pub fn apply(&self, x: &ArrayD<f32>, ctx: Ctx) -> Result<ArrayD<f32>> {
        let x = x
            .view()
            .into_dimensionality::<Ix4>()
            .map_err(|_| ctx.err(format!("expected NCHW, got {:?}", x.shape())))?;
        let (n, c, h, w) = x.dim();
        if h == 0 || w == 0 {
            return Err(ctx.err(format!("input {:?} is empty", x.shape())));
        }
        let (Some(ho), Some(wo)) = (self.out_len(h, 0), self.out_len(w, 1)) else {
            return Err(ctx.err(format!(
                "window {:?} larger than the padded {h}x{w} input",
                self.kernel
            )));
        };
        ctx.sized_wide("output", &[n as u128, c as u128, ho, wo])?;
        let (ho, wo) = (ho as usize, wo as usize); // checked: within MAX_ELEMENTS
        let x = x.as_standard_layout();
        let src = x.as_slice().expect("standard layout");
        let mut out = ctx.alloc(n * c * ho * wo);
        let p = *self;
        // Separable unless its per-plane row maxima (h x wo) would outgrow two output planes
        // (a window nearly as tall as the padded input).
        let separable = p.separable() && h <= 2 * ho;
        let ty: Vec<_> = (0..ho).map(|o| p.taps(o, h, 0)).collect();
        let tx: Vec<_> = (0..wo).map(|o| p.taps(o, w, 1)).collect();
        out.par_chunks_mut(ho * wo)
            .enumerate()
            .for_each(|(plane, o)| {
                let xin = &src[plane * h * w..(plane + 1) * h * w];
                if separable {
                    p.max_separable(xin, h, w, o, wo);
                    return;
                }
                for (oy, ry) in ty.iter().enumerate() {
                    for (ox, rx) in tx.iter().enumerate() {
                        o[oy * wo + ox] = p.window(xin, w, [oy, ox], ry, rx);
                    }
                }
            });
        Ok(ArrayD::from_shape_vec(IxDyn(&[n, c, ho, wo]), out)?)
    }

    /// Stride-1 max pooling as a max over columns, then over rows (kh + kw comparisons per
    /// output instead of kh * kw; YOLO's SPPF runs three 5x5 pools).
    fn max_separable(&self, xin: &[f32], h: usize, w: usize, o: &mut [f32], wo: usize) {
        let [kh, kw] = self.kernel;
        let (pt, pl) = (self.pads[0] as isize, self.pads[1] as isize);
        let ho = o.len() / wo;
        // Row maxima at every output column, for every input row.
        let mut rows = vec![f32::NEG_INFINITY; h * wo];
        for y in 0..h {
            let irow = &xin[y * w..(y + 1) * w];
            let r = &mut rows[y * wo..(y + 1) * wo];
            // One shifted, vectorisable max per window column: r[ox] over irow[ox - pl + j]
            // (only the columns that reach the row: the kernel may be far wider).
            let (lo_j, hi_j) = (
                (pl + 1 - wo as isize).max(0),
                (pl + w as isize).min(kw as isize),
            );
            for j in lo_j..hi_j {
                let shift = j - pl;
                let lo = (-shift).clamp(0, wo as isize) as usize;
                let hi = (w as isize - shift).clamp(lo as isize, wo as isize) as usize;
                if lo == hi {
                    // This window column misses the row entirely (inputs narrower than the pads).
                    continue;
                }
                let src = &irow[(lo as isize + shift) as usize..(hi as isize + shift) as usize];
                r[lo..hi]
                    .iter_mut()
                    .zip(src)
                    .for_each(|(a, &b)| *a = a.max(b));
            }
        }
        for oy in 0..ho {
            let lo = (oy as isize - pt).max(0) as usize;
            let hi = ((oy as isize - pt + kh as isize).min(h as isize)).max(0) as usize;
            let orow = &mut o[oy * wo..(oy + 1) * wo];
            orow.fill(f32::NEG_INFINITY);
            for y in lo.min(hi)..hi {
                orow.iter_mut()
                    .zip(&rows[y * wo..(y + 1) * wo])
                    .for_each(|(a, &b)| *a = a.max(b));
            }
        }
    }

    /// Window taps along axis `ax` for output index `o`: the taps that land inside the
    /// image, and how many land inside the padded extent (ceil-mode windows can reach past
    /// the bottom/right padding; those positions count for neither divisor). Computed, not
    /// scanned, so a huge kernel from the model costs nothing beyond the image.
    pub(super) fn taps(&self, o: usize, len: usize, ax: usize) -> (Range<usize>, usize) {
        let (k, d) = (self.kernel[ax] as i128, self.dilation[ax] as i128);
        let start = o as i128 * self.stride[ax] as i128 - self.pads[ax] as i128;
        // Taps `t` in [0, k) with start + t * d in [lo, hi).
        let count_below = |hi: i128| ((hi - start + d - 1).div_euclid(d)).clamp(0, k);
        let first = count_below(0);
        let inside = first..count_below(len as i128).max(first);
        let total = count_below(len as i128 + self.pads[ax + 2] as i128);
        (inside.start as usize..inside.end as usize, total as usize)
    }

    /// One output: the window's taps inside the image (`ry`, `rx` from [`Pool::taps`]).
    pub(super) fn window(
        &self,
        xin: &[f32],
        w: usize,
        [oy, ox]: [usize; 2],
        (rows, total_y): &(Range<usize>, usize),
        (cols, total_x): &(Range<usize>, usize),
    ) -> f32 {
        let iy0 = (oy * self.stride[0]) as isize - self.pads[0] as isize;
        let ix0 = (ox * self.stride[1]) as isize - self.pads[1] as isize;
        let mut acc = match self.kind {
            PoolKind::Max => f32::NEG_INFINITY,
            PoolKind::Average { .. } => 0.0,
        };
        for ky in rows.clone() {
            let iy = (iy0 + (ky * self.dilation[0]) as isize) as usize;
            for kx in cols.clone() {
                let ix = (ix0 + (kx * self.dilation[1]) as isize) as usize;
                let v = xin[iy * w + ix];
                acc = match self.kind {
                    PoolKind::Max => acc.max(v),
                    PoolKind::Average { .. } => acc + v,
                };
            }
        }
        match self.kind {
            PoolKind::Max => acc,
            PoolKind::Average { count_include_pad } => {
                let d = if count_include_pad {
                    total_y * total_x
                } else {
                    rows.len() * cols.len()
                };
                acc / d.max(1) as f32
            }
        }
    }
}

/// Mean over H and W of an `[N, C, H, W]` array, as `[N, C, 1, 1]`.
pub fn global_average(x: &ArrayD<f32>, ctx: Ctx) -> Result<ArrayD<f32>> {
    if x.ndim() < 3 {
        return Err(ctx.err(format!("expected at least 3 dims, got {:?}", x.shape())));
    }
    let (n, c) = (x.shape()[0], x.shape()[1]);
    let spatial: usize = x.shape()[2..].iter().product();
    let x = x.as_standard_layout();
    let src = x.as_slice().expect("standard layout");
    let spatial = spatial.max(1);
    // One plane per task; eight f64 partial sums per plane, so the adds pipeline instead of
    // waiting on one chain (a 96 x 240 x 240 map took 4.7 ms in one f64 chain).
    let means: Vec<f32> = src
        .par_chunks_exact(spatial)
        .map(|p| {
            let mut acc = [0f64; 8];
            let mut chunks = p.chunks_exact(8);
            for c in &mut chunks {
                for (a, &v) in acc.iter_mut().zip(c) {
                    *a += v as f64;
                }
            }
            let tail: f64 = chunks.remainder().iter().map(|&v| v as f64).sum();
            (acc.iter().sum::<f64>() + tail) as f32 / spatial as f32
        })
        .collect();
    let mut shape = vec![n, c];
    shape.extend(std::iter::repeat_n(1, x.ndim() - 2));
    Ok(ArrayD::from_shape_vec(shape, means)?)
}
