//! [`SpikeSlabConv2d`]: a 2-D convolution whose every kernel weight (and bias, when it has
//! biases) has a spike-and-slab variational posterior `(phi, mu, sigma)` — the same prior,
//! family, closed-form KL and straight-through binary Concrete gates as
//! [`crate::SpikeSlabLinear`], through the same [`Group`] — one gate per weight of the OIHW
//! kernel. Inputs are candle tensors `[n, c, h, w]`; [`Conv2dConfig`] holds stride, padding,
//! dilation and groups. The posterior leaves candle as [`PosteriorConv2d`]: a plain OIHW
//! `Vec<f32>` (weights with `phi > 0.5` at `mu`, the others 0) from which callers build an
//! inference conv.
//!
//! Limits: candle's `conv2d` (0.11) takes one stride and one dilation for both axes, so unequal
//! strides or dilations are a [`BayesError::Config`]; unequal padding is supported (the input is
//! zero-padded explicitly). Where a strided conv leaves padded rows or columns unread, the input
//! is padded and cropped explicitly too: candle 0.11's conv2d backward sizes the input gradient
//! from the height's unread remainder alone and fails when the width's differs.
//!
//! ```
//! use candle_core::{DType, Device, Tensor};
//! use elide_bayes::conv::{Conv2dConfig, SpikeSlabConv2d};
//! use elide_bayes::{rng::Rng, Init};
//! let mut rng = Rng::new(1);
//! let cfg = Conv2dConfig { padding: [1, 1], ..Default::default() };
//! let conv = SpikeSlabConv2d::new(3, 8, [3, 3], cfg, &Init::default(), &mut rng, DType::F32, &Device::Cpu)?;
//! let x = Tensor::zeros((2, 3, 16, 16), DType::F32, &Device::Cpu)?;
//! assert_eq!(conv.forward_sample(&x, &mut rng, 0.5)?.dims(), &[2, 8, 16, 16]);
//! assert_eq!(conv.posterior()?.shape, [8, 3, 3, 3]);
//! # Ok::<(), elide_bayes::BayesError>(())
//! ```
use crate::error::{BayesError, Result};
use crate::layer::{Group, Init};
use crate::prior::Prior;
use crate::rng::Rng;
use candle_core::{DType, Device, Tensor, Var};
use serde::{Deserialize, Serialize};

/// Stride, padding, dilation and groups of a convolution (`[vertical, horizontal]` pairs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conv2dConfig {
    /// Step between output pixels; both entries must be equal (candle's limit).
    pub stride: [usize; 2],
    /// Zeros added on both sides of each axis.
    pub padding: [usize; 2],
    /// Spacing of the kernel taps; both entries must be equal (candle's limit).
    pub dilation: [usize; 2],
    /// Channel groups: input and output channels must both be multiples of it.
    pub groups: usize,
    /// Whether the layer has one (spike-and-slab) bias per output channel.
    pub bias: bool,
}

impl Default for Conv2dConfig {
    fn default() -> Self {
        Self {
            stride: [1, 1],
            padding: [0, 0],
            dilation: [1, 1],
            groups: 1,
            bias: true,
        }
    }
}

impl Conv2dConfig {
    fn check(&self, inputs: usize, outputs: usize, kernel: [usize; 2]) -> Result<()> {
        let bad = |what: String| Err(BayesError::Config(what));
        if self.stride[0] != self.stride[1] || self.dilation[0] != self.dilation[1] {
            return bad(format!(
                "stride {:?} and dilation {:?} must be equal on both axes (candle's conv2d)",
                self.stride, self.dilation
            ));
        }
        if self.stride[0] == 0 || self.dilation[0] == 0 || kernel.contains(&0) {
            return bad(format!(
                "stride {:?}, dilation {:?} and kernel {kernel:?} must be positive",
                self.stride, self.dilation
            ));
        }
        let g = self.groups;
        if g == 0
            || inputs == 0
            || outputs == 0
            || !inputs.is_multiple_of(g)
            || !outputs.is_multiple_of(g)
        {
            return bad(format!(
                "conv {inputs} -> {outputs} channels cannot be split into {g} groups"
            ));
        }
        Ok(())
    }
}

/// The output `[height, width]` of a conv of `kernel` under `c` on an input of `[h, w]`; an
/// input smaller than the dilated kernel is a [`BayesError::Data`].
pub fn output_size(c: &Conv2dConfig, kernel: [usize; 2], [h, w]: [usize; 2]) -> Result<[usize; 2]> {
    let mut out = [0; 2];
    for (a, len) in [h, w].into_iter().enumerate() {
        let span = c.dilation[a]
            .saturating_mul(kernel[a].max(1) - 1)
            .saturating_add(1);
        let padded = len.saturating_add(c.padding[a].saturating_mul(2));
        if padded < span || c.stride[a] == 0 {
            return Err(BayesError::Data(format!(
                "input {h}x{w} (padding {:?}) is smaller than the dilated kernel {kernel:?} \
                 (dilation {:?})",
                c.padding, c.dilation
            )));
        }
        out[a] = (padded - span) / c.stride[a] + 1;
    }
    Ok(out)
}

/// `x` (`[n, c, h, w]`) convolved with an OIHW `kernel` (of spatial size `kernel_hw`) under
/// `c`, plus the optional per-channel `bias`, through candle's conv2d (explicit zero padding and
/// a crop where candle's own padding would not do; see the module doc). Shapes are the
/// caller's to check.
pub fn conv2d(
    c: &Conv2dConfig,
    kernel_hw: [usize; 2],
    x: &Tensor,
    kernel: &Tensor,
    bias: Option<&Tensor>,
) -> Result<Tensor> {
    let (_, _, h, w) = x.dims4()?;
    let [oh, ow] = output_size(c, kernel_hw, [h, w])?;
    let (s, d) = (c.stride[0], c.dilation[0]);
    let [ph, pw] = c.padding;
    // The extent of the padded input that the conv reads on each axis.
    let used_h = (oh - 1) * s + d * (kernel_hw[0] - 1) + 1;
    let used_w = (ow - 1) * s + d * (kernel_hw[1] - 1) + 1;
    let y = if ph == pw && used_h == h + 2 * ph && used_w == w + 2 * pw {
        x.conv2d(kernel, ph, s, d, c.groups)?
    } else {
        let xp = x.pad_with_zeros(2, ph, ph)?.pad_with_zeros(3, pw, pw)?;
        xp.narrow(2, 0, used_h)?
            .narrow(3, 0, used_w)?
            .conv2d(kernel, 0, s, d, c.groups)?
    };
    Ok(match bias {
        Some(b) => y.broadcast_add(&b.reshape((1, b.elem_count(), 1, 1))?)?,
        None => y,
    })
}

/// A spike-and-slab 2-D convolution.
#[derive(Debug)]
pub struct SpikeSlabConv2d {
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Kernel height and width.
    pub kernel: [usize; 2],
    /// Stride, padding, dilation, groups, bias.
    pub config: Conv2dConfig,
    /// Kernel weights, OIHW `[out_channels, in_channels / groups, kh, kw]`.
    pub weight: Group,
    /// Biases `[out_channels]`, when `config.bias`.
    pub bias: Option<Group>,
}

impl SpikeSlabConv2d {
    /// A freshly initialised layer (checked: a bad geometry is a [`BayesError::Config`]).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        in_channels: usize,
        out_channels: usize,
        kernel: [usize; 2],
        config: Conv2dConfig,
        init: &Init,
        rng: &mut Rng,
        dtype: DType,
        dev: &Device,
    ) -> Result<Self> {
        config.check(in_channels, out_channels, kernel)?;
        if !(init.phi > 0.0 && init.phi < 1.0) {
            return Err(BayesError::Config(format!(
                "initial phi {} not in (0, 1)",
                init.phi
            )));
        }
        let shape = [
            out_channels,
            in_channels / config.groups,
            kernel[0],
            kernel[1],
        ];
        let weight = Group::init(&shape, init, rng, dtype, dev)?;
        let bias = if config.bias {
            Some(Group::init(&[out_channels], init, rng, dtype, dev)?)
        } else {
            None
        };
        Ok(Self {
            in_channels,
            out_channels,
            kernel,
            config,
            weight,
            bias,
        })
    }

    /// The output's `[height, width]` for an input of `[h, w]`; an input smaller than the
    /// dilated kernel is a [`BayesError::Data`].
    pub fn output_size(&self, h: usize, w: usize) -> Result<[usize; 2]> {
        output_size(&self.config, self.kernel, [h, w])
    }

    /// One Monte Carlo sample of the layer applied to `x` (`[n, in_channels, h, w]`): kernel
    /// (and bias) `gamma * (mu + sigma * eps)` with hard Concrete gates `gamma`.
    pub fn forward_sample(&self, x: &Tensor, rng: &mut Rng, temperature: f64) -> Result<Tensor> {
        if !(temperature > 0.0 && temperature.is_finite()) {
            return Err(BayesError::Config(format!(
                "temperature {temperature} is not positive"
            )));
        }
        self.check_input(x)?;
        let w = self.weight.sample(rng, temperature)?;
        let b = match &self.bias {
            Some(b) => Some(b.sample(rng, temperature)?),
            None => None,
        };
        self.forward_with(x, &w, b.as_ref())
    }

    /// The layer with the posterior's sparse kernel ([`Self::posterior`]): deterministic, for
    /// prediction and as the reference of an exported inference conv.
    pub fn forward_posterior(&self, x: &Tensor) -> Result<Tensor> {
        self.check_input(x)?;
        let p = self.posterior()?;
        let (dt, dev) = (self.weight.mu.dtype(), self.weight.mu.device());
        let w = Tensor::from_vec(p.weight, &p.shape, dev)?.to_dtype(dt)?;
        let b = match p.bias {
            Some(b) => Some(Tensor::from_vec(b, self.out_channels, dev)?.to_dtype(dt)?),
            None => None,
        };
        self.forward_with(x, &w, b.as_ref())
    }

    /// The convolution of `x` with a given OIHW `kernel` and optional `bias`, in this layer's
    /// geometry.
    pub fn forward_with(
        &self,
        x: &Tensor,
        kernel: &Tensor,
        bias: Option<&Tensor>,
    ) -> Result<Tensor> {
        self.check_input(x)?;
        let bias_ok = bias.is_none_or(|b| b.dims() == [self.out_channels]);
        if kernel.dims() != self.weight.mu.dims() || !bias_ok {
            return Err(BayesError::Data(format!(
                "kernel {:?} / bias {:?} for a layer of kernel {:?} and {} outputs",
                kernel.dims(),
                bias.map(|b| b.dims()),
                self.weight.mu.dims(),
                self.out_channels
            )));
        }
        conv2d(&self.config, self.kernel, x, kernel, bias)
    }

    /// Checks `x` (rank 4, `in_channels` channels, the layer's dtype, large enough) and returns
    /// the output's `[height, width]`.
    fn check_input(&self, x: &Tensor) -> Result<[usize; 2]> {
        let (n, ch, h, w) = match x.dims() {
            &[n, ch, h, w] => (n, ch, h, w),
            d => {
                return Err(BayesError::Data(format!(
                    "conv input must be [n, c, h, w], got shape {d:?}"
                )))
            }
        };
        if ch != self.in_channels || n == 0 {
            return Err(BayesError::Data(format!(
                "conv input {:?}: expected a non-empty batch of {} channels",
                x.dims(),
                self.in_channels
            )));
        }
        if x.dtype() != self.weight.mu.dtype() {
            return Err(BayesError::Data(format!(
                "conv input is {:?}, the layer {:?}",
                x.dtype(),
                self.weight.mu.dtype()
            )));
        }
        self.output_size(h, w)
    }

    /// The KL of kernel weights and biases from the prior.
    pub fn kl(&self, prior: &Prior) -> Result<Tensor> {
        let k = self.weight.kl(prior)?;
        Ok(match &self.bias {
            Some(b) => (k + b.kl(prior)?)?,
            None => k,
        })
    }

    /// All variables (`mu`, `rho`, `theta` of the kernel, then of the biases), for the optimizer.
    pub fn vars(&self) -> Vec<Var> {
        let mut v = self.weight.vars().to_vec();
        if let Some(b) = &self.bias {
            v.extend(b.vars());
        }
        v
    }

    /// Number of parameters (kernel weights and biases).
    pub fn params(&self) -> usize {
        let k = self.out_channels
            * (self.in_channels / self.config.groups)
            * self.kernel[0]
            * self.kernel[1];
        k + if self.bias.is_some() {
            self.out_channels
        } else {
            0
        }
    }

    /// The kernel's group, then the biases' when the layer has them.
    pub fn groups(&self) -> impl Iterator<Item = &Group> {
        std::iter::once(&self.weight).chain(self.bias.as_ref())
    }

    /// Inclusion probabilities `phi` of the kernel weights, OIHW row-major.
    pub fn phi(&self) -> Result<Vec<f64>> {
        self.weight.phi()
    }

    /// Inclusion probabilities of the biases, when the layer has them.
    pub fn bias_phi(&self) -> Result<Option<Vec<f64>>> {
        self.bias.as_ref().map(Group::phi).transpose()
    }

    /// The posterior's sparse layer: weights (and biases) with `phi > 0.5` at `mu`, the others 0.
    pub fn posterior(&self) -> Result<PosteriorConv2d> {
        let keep = |g: &Group| -> Result<Vec<f32>> {
            let (mu, phi) = (g.mu()?, g.phi()?);
            Ok(mu
                .iter()
                .zip(&phi)
                .map(|(&m, &p)| if p > 0.5 { m as f32 } else { 0.0 })
                .collect())
        };
        Ok(PosteriorConv2d {
            weight: keep(&self.weight)?,
            shape: [
                self.out_channels,
                self.in_channels / self.config.groups,
                self.kernel[0],
                self.kernel[1],
            ],
            bias: self.bias.as_ref().map(keep).transpose()?,
            config: self.config,
        })
    }
}

/// The posterior's conv for inference, free of candle and of the other elide crates.
#[derive(Clone, Debug, PartialEq)]
pub struct PosteriorConv2d {
    /// OIHW kernel, row-major: `mu` where `phi > 0.5`, 0 elsewhere.
    pub weight: Vec<f32>,
    /// `[out_channels, in_channels / groups, kh, kw]`.
    pub shape: [usize; 4],
    /// One bias per output channel (`mu` where `phi > 0.5`, else 0), when the layer has biases.
    pub bias: Option<Vec<f32>>,
    /// Stride, padding, dilation and groups of the layer.
    pub config: Conv2dConfig,
}

impl PosteriorConv2d {
    /// Number of nonzero kernel weights.
    pub fn nnz(&self) -> usize {
        self.weight.iter().filter(|&&w| w != 0.0).count()
    }

    /// Fraction of kernel weights that are nonzero.
    pub fn density(&self) -> f64 {
        self.nnz() as f64 / self.weight.len().max(1) as f64
    }
}
