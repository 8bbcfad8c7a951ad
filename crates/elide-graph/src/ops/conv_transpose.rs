//! ConvTranspose (2-D, groups 1): one GEMM `W^T x` into columns, then col2im adds each
//! column into its output window; bias and a fused activation per output plane.
use super::Ctx;
use crate::Result;
use elide_kernels::conv::Activation;
use elide_kernels::matmul::{matmul, Strided};
use ndarray::{ArrayD, IxDyn};
use rayon::prelude::*;

/// A transposed convolution with constant weights `[cin, cout, kh, kw]`.
#[derive(Clone, Debug)]
pub struct ConvTranspose {
    /// Weights, `[cin, cout, kh, kw]` row-major.
    pub weight: Vec<f32>,
    /// `[cin, cout, kh, kw]`.
    pub shape: [usize; 4],
    /// Per output channel.
    pub bias: Vec<f32>,
    /// Stride.
    pub stride: [usize; 2],
    /// Padding [top, left, bottom, right] (removed from the full output).
    pub pads: [usize; 4],
    /// Dilation.
    pub dilation: [usize; 2],
    /// Extra rows/columns at the bottom/right.
    pub output_padding: [usize; 2],
    /// Applied to each output plane after the bias (fused by the optimiser).
    pub act: Activation,
}

impl ConvTranspose {
    /// Folds `y * scale[co] + shift[co]` (an inference batch-norm or per-channel affine after
    /// this op) into the weights and bias. Only before an activation is fused.
    pub fn fold_scale_shift(&mut self, scale: &[f32], shift: &[f32]) {
        let [_, cout, kh, kw] = self.shape;
        assert!(
            scale.len() == cout && shift.len() == cout,
            "one scale per channel"
        );
        assert_eq!(self.act, Activation::None, "folded after an activation");
        for per_ci in self.weight.chunks_exact_mut(cout * kh * kw) {
            for (taps, &s) in per_ci.chunks_exact_mut(kh * kw).zip(scale) {
                taps.iter_mut().for_each(|w| *w *= s);
            }
        }
        for ((b, &s), &t) in self.bias.iter_mut().zip(scale).zip(shift) {
            *b = *b * s + t;
        }
    }

    /// Output H, W for an `h x w` input in wide integers (strides, dilations and pads come
    /// from the model); `None` when the pads remove the whole output.
    fn out_dims(&self, h: usize, w: usize) -> Option<[u128; 2]> {
        let full = |len: usize, ax: usize| {
            (len as u128 - 1) * self.stride[ax] as u128
                + (self.shape[2 + ax] as u128 - 1) * self.dilation[ax] as u128
                + 1
                + self.output_padding[ax] as u128
        };
        let [pt, pl, pb, pr] = self.pads.map(|p| p as u128);
        let (fh, fw) = (full(h.max(1), 0), full(w.max(1), 1));
        (fh > pt + pb && fw > pl + pr).then(|| [fh - pt - pb, fw - pl - pr])
    }

    /// Checks the input against the weights; `[n, h, w]` of the input and `[ho, wo]` of the
    /// output, whose size is checked against [`super::MAX_ELEMENTS`].
    pub(super) fn geometry(&self, x: &ArrayD<f32>, ctx: Ctx) -> Result<([usize; 3], [usize; 2])> {
        let &[n, cin, h, w] = x.shape() else {
            return Err(ctx.err(format!("expected NCHW, got {:?}", x.shape())));
        };
        let [wcin, cout, kh, kw] = self.shape;
        if cin != wcin {
            return Err(ctx.err(format!("input has {cin} channels, weights expect {wcin}")));
        }
        if h == 0 || w == 0 {
            return Err(ctx.err(format!("input {:?} is empty", x.shape())));
        }
        let Some([ho, wo]) = self.out_dims(h, w) else {
            return Err(ctx.err("pads remove the whole output"));
        };
        ctx.sized_wide("output", &[n as u128, cout as u128, ho, wo])?;
        ctx.sized("column buffer", &[cout, kh, kw, h, w])?;
        Ok(([n, h, w], [ho as usize, wo as usize])) // checked: within MAX_ELEMENTS
    }

    /// Runs on `[N, cin, H, W]`.
    pub fn apply(&self, x: &ArrayD<f32>, ctx: Ctx) -> Result<ArrayD<f32>> {
        let ([n, h, _], [ho, wo]) = self.geometry(x, ctx)?;
        let cout = self.shape[1];
        let mut out = ctx.alloc(n * cout * ho * wo);
        for (b, planes) in out.chunks_exact_mut(cout * ho * wo).enumerate() {
            self.add_rows(x, b, 0..h, planes, true, ctx);
        }
        Ok(ArrayD::from_shape_vec(IxDyn(&[n, cout, ho, wo]), out)?)
    }

    /// Adds what input rows `rows` of image `b` contribute to its output planes `out` (`[cout,
    /// ho, wo]`): one GEMM `W^T x` into columns, then each column added into its window. With
    /// `whole` (all rows in one call) each plane starts from the bias and gets the activation
    /// in the same task, while it is in cache; otherwise `out` accumulates and the caller
    /// finishes it.
    pub(super) fn add_rows(
        &self,
        x: &ArrayD<f32>,
        b: usize,
        rows: std::ops::Range<usize>,
        out: &mut [f32],
        whole: bool,
        ctx: Ctx,
    ) {
        let &[_, cin, h, w] = x.shape() else {
            unreachable!("checked by geometry")
        };
        let x = x.as_standard_layout();
        let src = x.as_slice().expect("standard");
        let [_, cout, kh, kw] = self.shape;
        let (m, npix) = (cout * kh * kw, rows.len() * w);
        let plane = out.len() / cout;
        let wo = self.out_dims(h, w).map_or(0, |d| d[1] as usize);
        let ho = plane / wo.max(1);
        let mut cols = ctx.alloc(m * npix);
        // cols[(co, ky, kx), p] = sum_ci W[ci, (co, ky, kx)] x[ci, p]: lhs is W^T.
        // SAFETY: lhs is m x cin with row stride 1 and column stride m inside `weight`; rhs
        // is cin x npix (rows `rows` of every channel plane) inside the image; dst is m x npix
        // inside `cols`.
        unsafe {
            matmul(
                [m, npix, cin],
                cols.as_mut_ptr(),
                npix as isize,
                false,
                Strided {
                    ptr: self.weight.as_ptr(),
                    rows: 1,
                    cols: m as isize,
                },
                Strided {
                    ptr: src.as_ptr().add(b * cin * h * w + rows.start * w),
                    rows: (h * w) as isize,
                    cols: 1,
                },
                1.0,
                gemm::Parallelism::Rayon(rayon::current_num_threads()),
            );
        }
        out.par_chunks_mut(plane).enumerate().for_each(|(co, o)| {
            if whole {
                o.fill(self.bias[co]);
            }
            self.scatter(co, &cols, (rows.clone(), w), [ho, wo], o);
            if whole && self.act != Activation::None {
                self.act.bias_apply(o, 0.0);
            }
        });
        ctx.give(cols);
    }

    /// Output channel `co`: each tap's column rows (input rows `rows`, `w` columns each) added
    /// at their strided positions (rows and columns outside the cropped output skipped once,
    /// not per pixel).
    fn scatter(
        &self,
        co: usize,
        cols: &[f32],
        (rows, w): (std::ops::Range<usize>, usize),
        [ho, wo]: [usize; 2],
        o: &mut [f32],
    ) {
        let [_, _, kh, kw] = self.shape;
        let npix = rows.len() * w;
        let (pt, pl) = (self.pads[0] as isize, self.pads[1] as isize);
        let [sy, sx] = self.stride;
        let [dy, dx] = self.dilation;
        for ky in 0..kh {
            for kx in 0..kw {
                let row = &cols[((co * kh + ky) * kw + kx) * npix..][..npix];
                let off = (kx * dx) as isize - pl;
                // Input columns whose output column lands inside [0, wo).
                let ix0 = if off >= 0 {
                    0
                } else {
                    ((-off) as usize).div_ceil(sx)
                };
                let ix1 = if (wo as isize) <= off {
                    0
                } else {
                    (((wo as isize - off) as usize).div_ceil(sx)).min(w)
                };
                for (r, iy) in rows.clone().enumerate() {
                    let oy = (iy * sy + ky * dy) as isize - pt;
                    if oy < 0 || oy >= ho as isize {
                        continue;
                    }
                    let orow = &mut o[oy as usize * wo..(oy as usize + 1) * wo];
                    let irow = &row[r * w..(r + 1) * w];
                    for ix in ix0..ix1.max(ix0) {
                        orow[((ix * sx) as isize + off) as usize] += irow[ix];
                    }
                }
            }
        }
    }
}
