//! Dense 2-D convolution, NCHW, f32.
//!
//! [`Conv2d`] owns a layer's weights (OIHW, batch-norm folded in) and picks a kernel per call:
//! - depthwise (one input channel per group): 8 channels interleaved per AVX2 vector
//!   ([`depthwise_c8`]), else a direct row-wise kernel ([`depthwise`]);
//! - 1x1 stride 1 unpadded: on maps of up to 63 pixels with AVX-512, register blocks of 48
//!   output channels x 7 pixels on weights packed once per layer ([`pointwise_small`]); else
//!   `gemm` straight on the input planes, no im2col;
//! - one group, with AVX-512: a direct kernel on a zero-padded copy of the input, split into
//!   phase planes for strides ([`padded_direct`]);
//! - everything else: im2col of a band of output rows at a time, one `gemm` per band and group,
//!   bands in parallel with rayon (see [`gemm_conv`]).
//!
//! For per-block pipelines, [`Conv2d::forward_wide`] runs a stride-1 conv on a small tile as
//! shifted GEMMs with no im2col, and [`Conv2d::forward_tile_into`] runs any conv on a tile as
//! a single tile on the calling thread.
//!
//! Bias and activation are applied in the epilogue of each band while it is still in cache.
mod activation;
mod depthwise;
mod depthwise_c8;
mod direct;
mod gemm_conv;
mod gemv;
mod im2col;
pub(crate) mod interleave;
mod padded_direct;
mod params;
mod planes;
mod pointwise_small;
mod reference;
mod shifted;

pub(crate) use activation::exp;
pub use activation::Activation;
pub use params::{Conv2dParams, Padding};
pub use reference::{conv2d_error_scale, conv2d_reference, max_scaled_error};

use crate::error::{param_err, shape_err, Result};
use crate::Tensor;
use std::sync::OnceLock;

/// The input rows that a band of output rows `oy0..oy1` (of `ho`) checks for NaN/inf when it
/// reads input rows `y0..y1` (of `h`): the first and last bands also check the rows no output
/// reads (a stride can skip the last ones), so a NaN anywhere in the input is reported.
fn rows_to_check(
    [oy0, oy1]: [usize; 2],
    ho: usize,
    [y0, y1]: [usize; 2],
    h: usize,
) -> std::ops::Range<usize> {
    (if oy0 == 0 { 0 } else { y0 })..(if oy1 == ho { h } else { y1 })
}

/// Row-major `[cout][k]` weights as `[cout / nc blocks][k][nc]` (the last block zero-padded):
/// the register blocks of [`padded_direct`] and [`pointwise_small`] read `nc` output
/// channels' weights for one reduction index as one vector.
fn pack_channel_blocks(weight: &[f32], cout: usize, nc: usize) -> Vec<f32> {
    let k = weight.len() / cout;
    let blocks = cout.div_ceil(nc);
    let mut packed = vec![0.0; blocks * k * nc];
    for oc in 0..cout {
        let (b, c) = (oc / nc, oc % nc);
        for (kk, &w) in weight[oc * k..(oc + 1) * k].iter().enumerate() {
            packed[(b * k + kk) * nc + c] = w;
        }
    }
    packed
}

/// Which kernel a [`Conv2d`] runs; reported by benchmarks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConvKernel {
    /// Direct depthwise loops.
    Depthwise,
    /// 1x1 convolution as a plain GEMM over the input planes.
    Pointwise,
    /// Tiled im2col + GEMM.
    Im2colGemm,
    /// A 1x1 convolution of a 1x1 map: a matrix-vector product.
    Gemv,
    /// Direct convolution on zero-padded phase planes of the input (AVX-512).
    PaddedDirect,
    /// Direct loops for a reduction of at most 32 (`cin * kh * kw`), 8 output channels per
    /// vector.
    Direct,
    /// A 1x1 convolution of a small map, vectorised over output channels (AVX-512).
    PointwiseSmall,
}

/// How [`Conv2d`] spreads one call's work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Schedule {
    /// Cache-sized tiles in parallel on the rayon pool.
    Parallel,
    /// Each image as one tile, on the calling thread.
    WholeImages,
}

/// A convolution layer: weights, bias, geometry and fused activation.
#[derive(Clone, Debug)]
pub struct Conv2d {
    params: Conv2dParams,
    in_channels: usize,
    out_channels: usize,
    /// OIHW: for group `g`, rows `g*cout_g..` are each `cin_g*kh*kw` long, i.e. the GEMM's
    /// left-hand side with no repacking.
    weight: Vec<f32>,
    bias: Vec<f32>,
    act: Activation,
    /// The weights packed for [`padded_direct`], built on first use (cleared when the
    /// weights change).
    packed: OnceLock<Vec<f32>>,
    /// The same for [`pointwise_small`].
    packed_pw: OnceLock<Vec<f32>>,
}

impl Conv2d {
    /// A layer from OIHW weights `[cout, cin/groups, kh, kw]`, an optional bias, the geometry
    /// (its kernel size must match the weights) and an activation.
    pub fn new(
        weight: &Tensor,
        bias: Option<&[f32]>,
        params: Conv2dParams,
        act: Activation,
    ) -> Result<Self> {
        params.validate()?;
        let [cout, cin_g, kh, kw] = weight.shape();
        let op = "Conv2d::new";
        if [kh, kw] != params.kernel {
            return shape_err(
                op,
                format!("weights are {kh}x{kw} but params say {:?}", params.kernel),
            );
        }
        if cout == 0 || cin_g == 0 {
            return shape_err(
                op,
                format!("weights {:?} have a zero dimension", weight.shape()),
            );
        }
        if cout % params.groups != 0 {
            return param_err(
                op,
                format!(
                    "{cout} output channels not divisible by {} groups",
                    params.groups
                ),
            );
        }
        if let Some(b) = bias {
            if b.len() != cout {
                return shape_err(
                    op,
                    format!("bias has {} values for {cout} channels", b.len()),
                );
            }
        }
        weight.check_finite(op)?;
        Ok(Self {
            params,
            in_channels: cin_g * params.groups,
            out_channels: cout,
            weight: weight.data().to_vec(),
            bias: bias.map_or_else(|| vec![0.0; cout], <[f32]>::to_vec),
            act,
            packed: OnceLock::new(),
            packed_pw: OnceLock::new(),
        })
    }

    /// Folds an inference batch-norm that follows this conv into its weights and bias:
    /// `w' = w * s`, `b' = (b - mean) * s + beta` with `s = gamma / sqrt(var + eps)`.
    pub fn fold_batch_norm(
        &mut self,
        gamma: &[f32],
        beta: &[f32],
        mean: &[f32],
        var: &[f32],
        eps: f32,
    ) -> Result<()> {
        let c = self.out_channels;
        if [gamma.len(), beta.len(), mean.len(), var.len()] != [c; 4] {
            return shape_err(
                "Conv2d::fold_batch_norm",
                format!("each statistic needs {c} values"),
            );
        }
        if let Some(i) = var
            .iter()
            .position(|&v| (v + eps).partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater))
        {
            return param_err(
                "Conv2d::fold_batch_norm",
                format!("var[{i}] + eps = {} is not positive", var[i] + eps),
            );
        }
        self.packed = OnceLock::new();
        self.packed_pw = OnceLock::new();
        let per_out = self.weight.len() / c;
        for oc in 0..c {
            let s = gamma[oc] / (var[oc] + eps).sqrt();
            self.weight[oc * per_out..(oc + 1) * per_out]
                .iter_mut()
                .for_each(|w| *w *= s);
            self.bias[oc] = (self.bias[oc] - mean[oc]) * s + beta[oc];
        }
        Ok(())
    }

    /// Folds a per-input-channel affine map applied to this conv's input, `x' = scale * x +
    /// shift`, into the weights and bias. Exact only without padding (padding would see
    /// `shift` where the original sees zeros), so padded layers are refused.
    pub fn fold_input_affine(&mut self, scale: &[f32], shift: &[f32]) -> Result<()> {
        let op = "Conv2d::fold_input_affine";
        if self.params.pad != Padding::default() {
            return param_err(op, "the layer pads its input");
        }
        let cin = self.in_channels;
        if scale.len() != cin || shift.len() != cin {
            return shape_err(op, format!("need {cin} scales and shifts"));
        }
        self.packed = OnceLock::new();
        self.packed_pw = OnceLock::new();
        let [kh, kw] = self.params.kernel;
        let cin_g = cin / self.params.groups;
        let cout_g = self.out_channels / self.params.groups;
        for oc in 0..self.out_channels {
            let g = oc / cout_g;
            let mut extra = 0f64;
            for ci in 0..cin_g {
                let c = g * cin_g + ci;
                let taps = &mut self.weight[((oc * cin_g + ci) * kh * kw)..][..kh * kw];
                extra += taps.iter().map(|&w| w as f64).sum::<f64>() * shift[c] as f64;
                taps.iter_mut().for_each(|w| *w *= scale[c]);
            }
            self.bias[oc] += extra as f32;
        }
        Ok(())
    }

    /// The same layer with another fused activation.
    pub fn with_activation(mut self, act: Activation) -> Self {
        self.act = act;
        self
    }

    /// The geometry.
    pub fn params(&self) -> &Conv2dParams {
        &self.params
    }

    /// Input channels.
    pub fn in_channels(&self) -> usize {
        self.in_channels
    }

    /// Output channels.
    pub fn out_channels(&self) -> usize {
        self.out_channels
    }

    /// The fused activation.
    pub fn activation(&self) -> Activation {
        self.act
    }

    /// The weights as an OIHW tensor (batch-norm folded in).
    pub fn weight(&self) -> Tensor {
        let [kh, kw] = self.params.kernel;
        let cin_g = self.in_channels / self.params.groups;
        Tensor::from_vec([self.out_channels, cin_g, kh, kw], self.weight.clone())
            .expect("weight length is an invariant")
    }

    /// The bias (zeros when the layer was built without one).
    pub fn bias(&self) -> &[f32] {
        &self.bias
    }

    /// The same layer without padding, for tiles that carry their own halo.
    pub fn to_valid(&self) -> Self {
        let mut c = self.clone();
        c.params = c.params.valid();
        c
    }

    /// Multiply-accumulates for one input of `h x w` (per image).
    pub fn macs(&self, h: usize, w: usize) -> Result<u64> {
        let (ho, wo) = self.params.out_size(h, w)?;
        let [kh, kw] = self.params.kernel;
        let k = (self.in_channels / self.params.groups * kh * kw) as u64;
        Ok(self.out_channels as u64 * k * (ho * wo) as u64)
    }

    /// The kernel [`Conv2d::forward`] runs for this layer on a 2x2 map (the choice depends on
    /// the size for 1x1 convs: matrix-vector products on 1x1 maps, the small-map kernel up to
    /// 63 pixels; see [`Conv2d::kernel_for`]).
    pub fn kernel(&self) -> ConvKernel {
        self.kernel_for(2, 2)
    }

    /// The kernel [`Conv2d::forward`] runs for this layer on an `h x w` input.
    pub fn kernel_for(&self, h: usize, w: usize) -> ConvKernel {
        let p = &self.params;
        if self.in_channels == p.groups {
            ConvKernel::Depthwise
        } else if direct::applies(self) && p.kernel != [1, 1] {
            // Not for 1x1: there the GEMM reads the input planes as they are, and the direct
            // kernel measured 1.7x slower on a 16 -> 32 channel pointwise conv.
            ConvKernel::Direct
        } else if gemv::applies(self, h, w) {
            ConvKernel::Gemv
        } else if pointwise_small::applies(self, h, w) {
            ConvKernel::PointwiseSmall
        } else if p.kernel == [1, 1] && p.stride == [1, 1] && p.pad == Padding::default() {
            // Not the padded direct kernel: gemm on the planes as they are measured 7-15%
            // faster on MobileNet's and YOLO's 1x1 layers, and 5x on 1x1 maps.
            ConvKernel::Pointwise
        } else if padded_direct::applies(self) {
            ConvKernel::PaddedDirect
        } else {
            ConvKernel::Im2colGemm
        }
    }

    /// Output shape for an input shape, validating channels and sizes.
    pub fn out_shape(&self, in_shape: [usize; 4]) -> Result<[usize; 4]> {
        let [n, c, h, w] = in_shape;
        if c != self.in_channels {
            return shape_err(
                "Conv2d",
                format!("input has {c} channels, layer expects {}", self.in_channels),
            );
        }
        if n == 0 || h == 0 || w == 0 {
            return shape_err("Conv2d", format!("input {in_shape:?} is empty"));
        }
        let (ho, wo) = self.params.out_size(h, w)?;
        Ok([n, self.out_channels, ho, wo])
    }

    /// Convolves `x` into a new tensor.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut out = Tensor::zeros(self.out_shape(x.shape())?);
        self.run(x, &mut out, Schedule::Parallel, false);
        Ok(out)
    }

    /// Convolves `x` into `out`, whose shape must be the output shape; reuses its buffer.
    pub fn forward_into(&self, x: &Tensor, out: &mut Tensor) -> Result<()> {
        let shape = self.out_shape(x.shape())?;
        if out.shape() != shape {
            return shape_err(
                "Conv2d::forward_into",
                format!("output is {:?}, expected {shape:?}", out.shape()),
            );
        }
        self.run(x, out, Schedule::Parallel, false);
        Ok(())
    }

    /// [`Conv2d::forward_into`] that errors on NaN/inf in `x` (leaving `out` unspecified).
    /// Each tile's inputs are checked while they are in cache for its GEMM, so this costs
    /// far less than a separate pass over `x` (which was ~10% of a memory-bound layer).
    pub fn forward_into_checked(&self, x: &Tensor, out: &mut Tensor) -> Result<()> {
        let shape = self.out_shape(x.shape())?;
        if out.shape() != shape {
            return shape_err(
                "Conv2d::forward_into_checked",
                format!("output is {:?}, expected {shape:?}", out.shape()),
            );
        }
        if self.run(x, out, Schedule::Parallel, true) {
            return Ok(());
        }
        // Slow path, only on bad input: locate the value for the message.
        x.check_finite("Conv2d")?;
        Ok(())
    }

    /// [`Conv2d::forward_into`] for a small input such as one block's window: the whole image
    /// is one tile, computed on the calling thread. Per-block pipelines run blocks in
    /// parallel and size them for the cache, so splitting them again only adds overhead.
    pub fn forward_tile_into(&self, x: &Tensor, out: &mut Tensor) -> Result<()> {
        let shape = self.out_shape(x.shape())?;
        if out.shape() != shape {
            return shape_err(
                "Conv2d::forward_tile_into",
                format!("output is {:?}, expected {shape:?}", out.shape()),
            );
        }
        self.run(x, out, Schedule::WholeImages, false);
        Ok(())
    }

    /// The layer's VALID, stride-1 convolution of a small tile in the wide layout, without
    /// im2col: `x` is `[1, C, rows + 1, width]` (last row slack, only the first `valid`
    /// columns meaningful) and `out` is `[1, Cout, rows - (kh-1)*d (+ 1 slack row), width]`.
    /// Returns the valid columns of `out`, `valid - (kw-1)*d`; the rest are junk. Runs on the
    /// calling thread. For per-block pipelines; errors for strides other than 1.
    pub fn forward_wide(&self, x: &Tensor, valid: usize, out: &mut Tensor) -> Result<usize> {
        shifted::run(self, x, valid, out)
    }

    /// The weights packed for [`padded_direct`].
    fn packed(&self) -> &[f32] {
        self.packed
            .get_or_init(|| padded_direct::pack(&self.weight, self.out_channels))
    }

    /// The weights packed for [`pointwise_small`].
    fn packed_pw(&self) -> &[f32] {
        self.packed_pw
            .get_or_init(|| pointwise_small::pack(&self.weight, self.out_channels))
    }

    /// Rows of this layer's im2col matrix: `cin/groups * kh * kw`.
    fn col_rows(&self) -> usize {
        let [kh, kw] = self.params.kernel;
        self.in_channels / self.params.groups * kh * kw
    }

    /// Output pixels per GEMM call that keep its im2col buffer cache-resident: the block
    /// area per-block pipelines should aim for.
    pub fn tile_pixels(&self) -> usize {
        gemm_conv::tile_pixels(self.col_rows())
    }

    /// Runs the chosen kernel; with `check`, returns false if any input it read was NaN/inf.
    fn run(&self, x: &Tensor, out: &mut Tensor, schedule: Schedule, check: bool) -> bool {
        let [_, _, h, w] = x.shape();
        match self.kernel_for(h, w) {
            ConvKernel::Depthwise if depthwise_c8::applies(self) => {
                depthwise_c8::run(self, x, out, schedule == Schedule::Parallel, check)
            }
            ConvKernel::Depthwise => depthwise::run(self, x, out, schedule, check),
            ConvKernel::Direct => direct::run(self, x, out, schedule == Schedule::Parallel, check),
            ConvKernel::Gemv => gemv::run(self, x, out, schedule == Schedule::Parallel, check),
            ConvKernel::PaddedDirect => {
                padded_direct::run(self, x, out, schedule == Schedule::Parallel, check)
            }
            ConvKernel::PointwiseSmall => pointwise_small::run(
                self,
                self.packed_pw(),
                x,
                out,
                schedule == Schedule::Parallel,
                check,
            ),

            ConvKernel::Pointwise | ConvKernel::Im2colGemm => {
                gemm_conv::run(self, x, out, schedule, check)
            }
        }
    }
}

#[cfg(test)]
mod tests;
