//! A block-sparse convolution with trainable weights: gather the input windows, run candle's
//! VALID conv2d on the stack, add the bias, apply the activation, scatter onto the output.
use super::ops::{gather, scatter};
use crate::{Error, Result};
use candle_core::{DType, Device, Tensor, Var};
use elide_kernels::conv::{Activation, Conv2d, Conv2dParams, Padding};
use elide_kernels::rng::SplitMix64;
use elide_kernels::sparse::{BlockIndex, ConvBlocks, ScatterMode};

/// A convolution layer whose weights (`[cout, cin/groups, kh, kw]`) and bias (`[cout]`) are
/// candle [`Var`]s, run block-sparsely ([`Self::forward`]) or densely ([`Self::forward_dense`]).
/// Convert to the inference kernels with [`Self::to_kernels_conv`].
///
/// candle's conv2d takes one stride and one dilation for both axes, so both must be equal
/// along height and width.
#[derive(Clone, Debug)]
pub struct TrainableSparseConv2d {
    weight: Var,
    bias: Var,
    params: Conv2dParams,
    act: Activation,
}

fn invalid<T>(detail: impl std::fmt::Display) -> Result<T> {
    Err(Error::Invalid(format!("TrainableSparseConv2d: {detail}")))
}

/// `act(t)`, built from differentiable candle ops.
fn activate(t: &Tensor, act: Activation) -> candle_core::Result<Tensor> {
    let relu6 = |t: &Tensor| t.relu()? - (t - 6.0)?.relu()?;
    match act {
        Activation::None => Ok(t.clone()),
        Activation::Relu => t.relu(),
        Activation::Relu6 => relu6(t),
        Activation::LeakyRelu(a) => t.relu()? - (t.neg()?.relu()? * f64::from(a))?,
        Activation::HardSwish => (t * relu6(&(t + 3.0)?)?)? / 6.0,
        Activation::Silu => t.silu(),
        Activation::Sigmoid => candle_nn::ops::sigmoid(t),
    }
}

impl TrainableSparseConv2d {
    /// A layer from OIHW weights, an optional bias (zeros when `None`), the geometry (its
    /// kernel size must match the weights) and an activation. Weights and bias must be `F32`
    /// or `F64`, of one dtype.
    pub fn new(
        weight: &Tensor,
        bias: Option<&Tensor>,
        params: Conv2dParams,
        act: Activation,
    ) -> Result<Self> {
        params.validate()?;
        let &[cout, cin_g, kh, kw] = weight.dims() else {
            return invalid(format!("weights must be 4-D, got {:?}", weight.dims()));
        };
        if !matches!(weight.dtype(), DType::F32 | DType::F64) {
            return invalid(format!("weights are {:?}, need F32 or F64", weight.dtype()));
        }
        if [kh, kw] != params.kernel {
            return invalid(format!(
                "weights are {kh}x{kw}, params say {:?}",
                params.kernel
            ));
        }
        if cout == 0 || cin_g == 0 || !cout.is_multiple_of(params.groups) {
            return invalid(format!(
                "weights {:?} do not fit {} groups",
                weight.dims(),
                params.groups
            ));
        }
        if params.stride[0] != params.stride[1] || params.dilation[0] != params.dilation[1] {
            return invalid(format!(
                "candle needs equal strides and dilations per axis, got {:?} and {:?}",
                params.stride, params.dilation
            ));
        }
        let bias = match bias {
            Some(b) if b.dims() != [cout] || b.dtype() != weight.dtype() => {
                return invalid(format!(
                    "bias is {:?} {:?}, expected [{cout}] {:?}",
                    b.dims(),
                    b.dtype(),
                    weight.dtype()
                ))
            }
            Some(b) => b.detach().copy()?,
            None => Tensor::zeros(cout, weight.dtype(), weight.device())?,
        };
        Ok(Self {
            weight: Var::from_tensor(&weight.detach().copy()?)?,
            bias: Var::from_tensor(&bias)?,
            params,
            act,
        })
    }

    /// A layer with weights and bias drawn uniformly from `±1/sqrt(fan_in)` (PyTorch's default
    /// initialisation), reproducibly from `seed`.
    pub fn init(
        in_channels: usize,
        out_channels: usize,
        params: Conv2dParams,
        act: Activation,
        dtype: DType,
        device: &Device,
        seed: u64,
    ) -> Result<Self> {
        params.validate()?;
        if !in_channels.is_multiple_of(params.groups) {
            return invalid(format!("{in_channels} inputs, {} groups", params.groups));
        }
        let cin_g = in_channels / params.groups;
        let [kh, kw] = params.kernel;
        let bound = 1.0 / ((cin_g * kh * kw).max(1) as f32).sqrt();
        let mut rng = SplitMix64::new(seed);
        let w = rng.vec(out_channels * cin_g * kh * kw, -bound, bound);
        let w = Tensor::from_vec(w, (out_channels, cin_g, kh, kw), device)?.to_dtype(dtype)?;
        let b = Tensor::from_vec(rng.vec(out_channels, -bound, bound), out_channels, device)?
            .to_dtype(dtype)?;
        Self::new(&w, Some(&b), params, act)
    }

    /// A trainable copy (`F32`, CPU) of an inference layer.
    pub fn from_kernels_conv(conv: &Conv2d) -> Result<Self> {
        let w = conv.weight();
        let dims = w.shape();
        let w = Tensor::from_vec(w.into_vec(), dims.to_vec(), &Device::Cpu)?;
        let b = Tensor::from_vec(conv.bias().to_vec(), conv.out_channels(), &Device::Cpu)?;
        Self::new(&w, Some(&b), *conv.params(), conv.activation())
    }

    /// The inference layer with the current weights (converted to `f32`), for elide's fast
    /// kernels. Errors on non-finite weights.
    pub fn to_kernels_conv(&self) -> Result<Conv2d> {
        let w = self.weight.as_tensor();
        let dims = w.dims().to_vec();
        let data = w.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()?;
        let w = elide_kernels::Tensor::from_vec([dims[0], dims[1], dims[2], dims[3]], data)?;
        let b = self
            .bias
            .as_tensor()
            .to_dtype(DType::F32)?
            .to_vec1::<f32>()?;
        Ok(Conv2d::new(&w, Some(&b), self.params, self.act)?)
    }

    /// The weights, `[cout, cin/groups, kh, kw]`.
    pub fn weight(&self) -> &Var {
        &self.weight
    }

    /// The bias, `[cout]`.
    pub fn bias(&self) -> &Var {
        &self.bias
    }

    /// The trainable variables (weight, bias), for an optimizer.
    pub fn vars(&self) -> Vec<Var> {
        vec![self.weight.clone(), self.bias.clone()]
    }

    /// The geometry.
    pub fn params(&self) -> &Conv2dParams {
        &self.params
    }

    /// The activation applied after the bias.
    pub fn activation(&self) -> Activation {
        self.act
    }

    /// Input channels.
    pub fn in_channels(&self) -> usize {
        self.weight.dims()[1] * self.params.groups
    }

    /// Output channels.
    pub fn out_channels(&self) -> usize {
        self.weight.dims()[0]
    }

    fn conv(&self, x: &Tensor, pad: usize) -> Result<Tensor> {
        let p = &self.params;
        let y = x.conv2d(&self.weight, pad, p.stride[0], p.dilation[0], p.groups)?;
        let b = self
            .bias
            .as_tensor()
            .reshape((1, self.out_channels(), 1, 1))?;
        Ok(activate(&y.broadcast_add(&b)?, self.act)?)
    }

    /// The layer on the active `blocks` only: gathers their receptive fields from `x`
    /// (`cb.input`), convolves them without padding, and writes the results into the output
    /// blocks (`cb.output`) of `base`, which must have the output's shape. Elsewhere the result
    /// is `base`. `cb` must be `ConvBlocks::new(self.params(), [H, W], block)`.
    pub fn forward(
        &self,
        x: &Tensor,
        blocks: &[BlockIndex],
        cb: &ConvBlocks,
        base: &Tensor,
    ) -> Result<Tensor> {
        let &[n, c, h, w] = x.dims() else {
            return invalid(format!("input must be 4-D, got {:?}", x.dims()));
        };
        if c != self.in_channels() {
            return invalid(format!(
                "input has {c} channels, expected {}",
                self.in_channels()
            ));
        }
        if ConvBlocks::new(&self.params, [h, w], cb.output.size)? != *cb {
            return invalid(format!(
                "{cb:?} was not built for this layer on a {h}x{w} input"
            ));
        }
        let (ho, wo) = self.params.out_size(h, w)?;
        let want = [n, self.out_channels(), ho, wo];
        if base.dims() != want {
            return invalid(format!("base is {:?}, expected {want:?}", base.dims()));
        }
        if blocks.is_empty() {
            return Ok(base.clone());
        }
        let stack = gather(x, blocks, &cb.input)?;
        let tiles = self.conv(&stack, 0)?;
        scatter(base, &tiles, blocks, &cb.output, ScatterMode::Write)
    }

    /// The dense layer, for comparison. Only symmetric padding (all four sides equal).
    pub fn forward_dense(&self, x: &Tensor) -> Result<Tensor> {
        let pad = self.params.pad;
        if pad != Padding::uniform(pad.top) {
            return invalid(format!(
                "forward_dense needs symmetric padding, got {pad:?}"
            ));
        }
        self.conv(x, pad.top)
    }
}
