//! Max and average pooling over the two trailing axes of an NCHW array.
use super::Ctx;
use crate::Result;
use ndarray::{ArrayD, Ix4, IxDyn};
use rayon::prelude::*;

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
    /// Output size along one axis.
    fn out_len(&self, len: usize, ax: usize) -> Option<usize> {
        let span = (self.kernel[ax] - 1) * self.dilation[ax] + 1;
        let padded = len + self.pads[ax] + self.pads[ax + 2];
        if padded < span {
            return None;
        }
        let s = self.stride[ax];
        let mut out = if self.ceil_mode {
            (padded - span).div_ceil(s) + 1
        } else {
            (padded - span) / s + 1
        };
        // A window must start inside the image or its leading padding.
        if self.ceil_mode && (out - 1) * s >= len + self.pads[ax] {
            out -= 1;
        }
        Some(out)
    }

    /// Pools `x` (`[N, C, H, W]`).
    pub fn apply(&self, x: &ArrayD<f32>, ctx: Ctx) -> Result<ArrayD<f32>> {
        let x = x
            .view()
            .into_dimensionality::<Ix4>()
            .map_err(|_| ctx.err(format!("expected NCHW, got {:?}", x.shape())))?;
        let (n, c, h, w) = x.dim();
        let (Some(ho), Some(wo)) = (self.out_len(h, 0), self.out_len(w, 1)) else {
            return Err(ctx.err(format!(
                "window {:?} larger than the padded {h}x{w} input",
                self.kernel
            )));
        };
        let x = x.as_standard_layout();
        let src = x.as_slice().expect("standard layout");
        let mut out = ctx.alloc(n * c * ho * wo);
        let p = *self;
        let separable = p.kind == PoolKind::Max && p.stride == [1, 1] && p.dilation == [1, 1];
        out.par_chunks_mut(ho * wo)
            .enumerate()
            .for_each(|(plane, o)| {
                let xin = &src[plane * h * w..(plane + 1) * h * w];
                if separable {
                    p.max_separable(xin, h, w, o, wo);
                    return;
                }
                for oy in 0..ho {
                    for ox in 0..wo {
                        o[oy * wo + ox] = p.window(xin, h, w, oy, ox);
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
            // One shifted, vectorisable max per window column: r[ox] over irow[ox - pl + j].
            for j in 0..kw as isize {
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

    fn window(&self, xin: &[f32], h: usize, w: usize, oy: usize, ox: usize) -> f32 {
        let mut acc = match self.kind {
            PoolKind::Max => f32::NEG_INFINITY,
            PoolKind::Average { .. } => 0.0,
        };
        let mut inside = 0usize;
        let mut total = 0usize;
        for ky in 0..self.kernel[0] {
            let iy = (oy * self.stride[0] + ky * self.dilation[0]) as isize - self.pads[0] as isize;
            for kx in 0..self.kernel[1] {
                let ix =
                    (ox * self.stride[1] + kx * self.dilation[1]) as isize - self.pads[1] as isize;
                // Windows of ceil mode can reach past the bottom/right padding; those
                // positions count for neither divisor.
                if iy < h as isize + self.pads[2] as isize
                    && ix < w as isize + self.pads[3] as isize
                {
                    total += 1;
                }
                if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                    continue;
                }
                let v = xin[iy as usize * w + ix as usize];
                inside += 1;
                acc = match self.kind {
                    PoolKind::Max => acc.max(v),
                    PoolKind::Average { .. } => acc + v,
                };
            }
        }
        match self.kind {
            PoolKind::Max => acc,
            PoolKind::Average { count_include_pad } => {
                let d = if count_include_pad { total } else { inside };
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
    let means: Vec<f32> = src
        .chunks_exact(spatial.max(1))
        .map(|p| p.iter().map(|&v| v as f64).sum::<f64>() as f32 / spatial.max(1) as f32)
        .collect();
    let mut shape = vec![n, c];
    shape.extend(std::iter::repeat_n(1, x.ndim() - 2));
    Ok(ArrayD::from_shape_vec(shape, means)?)
}
