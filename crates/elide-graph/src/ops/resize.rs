//! Resize (and Upsample) over the two trailing axes: nearest and bilinear, with ONNX's
//! coordinate transformation modes.
use super::Ctx;
use crate::Result;
use ndarray::{ArrayD, Ix4, IxDyn};
use rayon::prelude::*;

/// How output coordinates map back to input coordinates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CoordMode {
    /// `x_in = (x_out + 0.5) / scale - 0.5`.
    HalfPixel,
    /// Half-pixel, except 0 for a length-1 output.
    PytorchHalfPixel,
    /// `x_in = x_out * (in - 1) / (out - 1)`.
    AlignCorners,
    /// `x_in = x_out / scale`.
    Asymmetric,
}

/// Rounding of nearest mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NearestMode {
    /// `floor`.
    Floor,
    /// `ceil`.
    Ceil,
    /// Round half down.
    RoundPreferFloor,
    /// Round half up.
    RoundPreferCeil,
}

/// Interpolation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResizeMode {
    /// Nearest neighbour.
    Nearest(NearestMode),
    /// Bilinear.
    Linear,
}

/// A Resize node's attributes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resize {
    /// Interpolation.
    pub mode: ResizeMode,
    /// Coordinate mapping.
    pub coord: CoordMode,
}

impl Resize {
    fn source(&self, o: usize, out: usize, inp: usize, scale: f32) -> f32 {
        let o = o as f32;
        match self.coord {
            CoordMode::HalfPixel => (o + 0.5) / scale - 0.5,
            CoordMode::PytorchHalfPixel => {
                if out > 1 {
                    (o + 0.5) / scale - 0.5
                } else {
                    0.0
                }
            }
            CoordMode::AlignCorners => {
                if out > 1 {
                    o * (inp as f32 - 1.0) / (out as f32 - 1.0)
                } else {
                    0.0
                }
            }
            CoordMode::Asymmetric => o / scale,
        }
    }

    /// Per output index along one axis: (lower input index, upper, weight of upper).
    pub(super) fn taps(&self, out: usize, inp: usize, scale: f32) -> Vec<(usize, usize, f32)> {
        (0..out)
            .map(|o| {
                let x = self.source(o, out, inp, scale);
                match self.mode {
                    ResizeMode::Nearest(m) => {
                        let r = match m {
                            NearestMode::Floor => x.floor(),
                            NearestMode::Ceil => x.ceil(),
                            NearestMode::RoundPreferFloor => {
                                if x.fract() == 0.5 {
                                    x.floor()
                                } else {
                                    x.round()
                                }
                            }
                            NearestMode::RoundPreferCeil => x.round(),
                        };
                        let i = (r.max(0.0) as usize).min(inp - 1);
                        (i, i, 0.0)
                    }
                    ResizeMode::Linear => {
                        let x = x.clamp(0.0, (inp - 1) as f32);
                        let lo = x.floor() as usize;
                        let hi = (lo + 1).min(inp - 1);
                        (lo, hi, x - lo as f32)
                    }
                }
            })
            .collect()
    }

    /// Resizes `[N, C, H, W]` to `[N, C, out_h, out_w]` with the given scales (H, W).
    pub fn apply(
        &self,
        x: &ArrayD<f32>,
        out_hw: [usize; 2],
        scales: [f32; 2],
        ctx: Ctx,
    ) -> Result<ArrayD<f32>> {
        let x = x.view().into_dimensionality::<Ix4>().map_err(|_| {
            ctx.err(format!(
                "only NCHW resizing over H, W (input {:?})",
                x.shape()
            ))
        })?;
        let (n, c, h, w) = x.dim();
        let [ho, wo] = out_hw;
        if h == 0 || w == 0 || ho == 0 || wo == 0 {
            return Err(ctx.err(format!("empty resize {h}x{w} -> {ho}x{wo}")));
        }
        ctx.sized("output", &[n, c, ho, wo])?;
        let ty = self.taps(ho, h, scales[0]);
        let tx = self.taps(wo, w, scales[1]);
        let x = x.as_standard_layout();
        let src = x.as_slice().expect("standard layout");
        let mut out = ctx.alloc(n * c * ho * wo);
        out.par_chunks_mut(ho * wo).enumerate().for_each(|(p, o)| {
            let plane = &src[p * h * w..(p + 1) * h * w];
            if let ResizeMode::Nearest(_) = self.mode {
                // A gather per output row; rows repeating the previous source row are copied.
                for (oy, &(y0, _, _)) in ty.iter().enumerate() {
                    if oy > 0 && ty[oy - 1].0 == y0 {
                        o.copy_within((oy - 1) * wo..oy * wo, oy * wo);
                        continue;
                    }
                    let r0 = &plane[y0 * w..(y0 + 1) * w];
                    let orow = &mut o[oy * wo..(oy + 1) * wo];
                    for (v, &(x0, _, _)) in orow.iter_mut().zip(&tx) {
                        *v = r0[x0];
                    }
                }
                return;
            }
            for (oy, &(y0, y1, fy)) in ty.iter().enumerate() {
                let (r0, r1) = (&plane[y0 * w..(y0 + 1) * w], &plane[y1 * w..(y1 + 1) * w]);
                let orow = &mut o[oy * wo..(oy + 1) * wo];
                for (v, &(x0, x1, fx)) in orow.iter_mut().zip(&tx) {
                    let top = r0[x0] + (r0[x1] - r0[x0]) * fx;
                    let bot = r1[x0] + (r1[x1] - r1[x0]) * fx;
                    *v = top + (bot - top) * fy;
                }
            }
        });
        Ok(ArrayD::from_shape_vec(IxDyn(&[n, c, ho, wo]), out)?)
    }
}
