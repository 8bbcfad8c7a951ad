//! [`SpikeSlabNet`]: a ReLU multi-layer perceptron of [`SpikeSlabLinear`] layers, optionally
//! behind a front of [`SpikeSlabConv2d`] stages (each followed by ReLU) that reads each input
//! row as a `[c, h, w]` image, with a Gaussian (regression) or categorical (classification)
//! likelihood.
use crate::conv::{output_size, Conv2dConfig, SpikeSlabConv2d};
use crate::data::Targets;
use crate::error::{BayesError, Result};
use crate::layer::{Init, SpikeSlabLinear};
use crate::ops::log_softmax_rows;
use crate::prior::{Prior, TheorySizes};
use crate::rng::Rng;
use candle_core::{DType, Device, Tensor, Var};
use serde::{Deserialize, Serialize};

/// The most weights and biases a network may have: `2^31`. [`Arch::check`] refuses larger
/// networks (a [`BayesError::Config`]) before anything is allocated; generated data sets
/// ([`crate::teacher::Teacher::generate`]) are capped at as many values.
pub const MAX_ELEMENTS: usize = 1 << 31;

/// The most hidden layers a network may have.
pub const MAX_HIDDEN_LAYERS: usize = 1000;

/// The shape of a network: inputs, an optional convolutional front, hidden widths, outputs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Arch {
    /// Number of inputs `p` (with a conv front, the image's `c * h * w` values per row).
    pub inputs: usize,
    /// Width of each hidden layer (ReLU after each).
    pub hidden: Vec<usize>,
    /// Number of outputs (1 for regression, classes for classification).
    pub outputs: usize,
    /// Conv stages applied to each input row, read as an image, before the hidden layers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conv: Option<ConvFront>,
}

/// One stage of a conv front: a spike-and-slab conv, then ReLU.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConvStage {
    /// Output channels.
    pub channels: usize,
    /// Kernel height and width.
    pub kernel: [usize; 2],
    /// Stride, padding, dilation, groups, bias.
    pub config: Conv2dConfig,
}

/// Conv stages that read each input row as a `[c, h, w]` image (row-major, channels first);
/// the last stage's maps, flattened in CHW order, feed the first hidden layer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConvFront {
    /// The image each input row holds: channels, height, width.
    pub image: [usize; 3],
    /// The stages, first applied first.
    pub stages: Vec<ConvStage>,
}

impl ConvFront {
    /// `image`, then the `[c, h, w]` after each stage (errors on a geometry that does not fit).
    pub fn shapes(&self) -> Result<Vec<[usize; 3]>> {
        let mut s = vec![self.image];
        for st in &self.stages {
            let [_, h, w] = *s.last().expect("non-empty");
            let [oh, ow] = output_size(&st.config, st.kernel, [h, w])?;
            s.push([st.channels, oh, ow]);
        }
        Ok(s)
    }

    /// Values per row after the last stage (saturating at `usize::MAX`).
    pub fn features(&self) -> Result<usize> {
        let [c, h, w] = *self.shapes()?.last().expect("non-empty");
        Ok(c.saturating_mul(h).saturating_mul(w))
    }

    /// Input channels of each stage: the image's, then the previous stage's outputs.
    pub fn in_channels(&self) -> Vec<usize> {
        std::iter::once(self.image[0])
            .chain(self.stages.iter().map(|st| st.channels))
            .take(self.stages.len())
            .collect()
    }

    /// The OIHW kernel shape of each stage.
    pub fn kernel_shapes(&self) -> Vec<[usize; 4]> {
        self.stages
            .iter()
            .zip(self.in_channels())
            .map(|(st, cin)| {
                let g = st.config.groups.max(1);
                [st.channels, cin / g, st.kernel[0], st.kernel[1]]
            })
            .collect()
    }

    /// Kernel weights and biases of all stages (saturating at `usize::MAX`).
    pub fn params(&self) -> usize {
        self.stages
            .iter()
            .zip(self.kernel_shapes())
            .map(|(st, k)| {
                let bias = if st.config.bias { st.channels } else { 0 };
                saturating_product(&k).saturating_add(bias)
            })
            .fold(0, usize::saturating_add)
    }

    /// Checks the front for rows of `inputs` values: the image holds them all, there is a
    /// stage, every stage's channels split into its groups, and every stage fits its input.
    pub fn check(&self, inputs: usize) -> Result<()> {
        let pixels = saturating_product(&self.image);
        if pixels != inputs || self.stages.is_empty() {
            return Err(BayesError::Config(format!(
                "a conv front over {:?} images needs {pixels} inputs (got {inputs}) and a stage",
                self.image
            )));
        }
        for (st, cin) in self.stages.iter().zip(self.in_channels()) {
            let g = st.config.groups;
            if g == 0 || !cin.is_multiple_of(g) || !st.channels.is_multiple_of(g) {
                return Err(BayesError::Config(format!(
                    "conv {cin} -> {} channels cannot be split into {g} groups",
                    st.channels
                )));
            }
        }
        self.shapes().map(|_| ())
    }
}

impl Arch {
    /// `inputs`, then `layers` hidden layers of `width`, then `outputs`.
    pub fn uniform(inputs: usize, layers: usize, width: usize, outputs: usize) -> Self {
        Self {
            inputs,
            hidden: vec![width; layers],
            outputs,
            conv: None,
        }
    }

    /// Sizes of the fully connected layers in order: their inputs (the conv front's features,
    /// or `inputs`), the hidden widths, the outputs. A front that does not fit its image
    /// counts 0 features (the network's constructor reports the geometry error).
    pub fn sizes(&self) -> Vec<usize> {
        let first = match &self.conv {
            Some(f) => f.features().unwrap_or(0),
            None => self.inputs,
        };
        let mut s = vec![first];
        s.extend(&self.hidden);
        s.push(self.outputs);
        s
    }

    /// Total number of weights and biases (conv front included), saturating at `usize::MAX`
    /// ([`Arch::check`] refuses more than [`MAX_ELEMENTS`]).
    pub fn params(&self) -> usize {
        let fc = self
            .sizes()
            .windows(2)
            .map(|w| w[0].saturating_mul(w[1]).saturating_add(w[1]))
            .fold(0, usize::saturating_add);
        fc.saturating_add(self.conv.as_ref().map_or(0, ConvFront::params))
    }

    /// The layer sizes as `inputs-hidden...-outputs` (long stacks abbreviated), for messages.
    pub fn describe(&self) -> String {
        let h = &self.hidden;
        let hidden = match h.len() {
            0..=6 => h.iter().map(|w| format!("{w}-")).collect::<String>(),
            n => format!("{}-...({n} hidden layers)...-{}-", h[0], h[n - 1]),
        };
        let front = if self.conv.is_some() { "conv-" } else { "" };
        format!("{}-{front}{hidden}{}", self.inputs, self.outputs)
    }

    /// Checks that a network of this shape can be built: at least one input and output, no
    /// hidden layer of width 0, at most [`MAX_HIDDEN_LAYERS`] hidden layers, a conv front that
    /// fits its image, and at most [`MAX_ELEMENTS`] weights and biases. Returns their number.
    pub fn check(&self) -> Result<usize> {
        let bad = |msg: String| {
            Err(BayesError::Config(format!(
                "network {}: {msg}",
                self.describe()
            )))
        };
        if self.inputs == 0 || self.outputs == 0 {
            return bad(format!(
                "needs at least 1 input and 1 output, got {} and {}",
                self.inputs, self.outputs
            ));
        }
        if self.hidden.len() > MAX_HIDDEN_LAYERS {
            return bad(format!(
                "{} hidden layers; at most {MAX_HIDDEN_LAYERS} are supported",
                self.hidden.len()
            ));
        }
        if let Some(i) = self.hidden.iter().position(|&w| w == 0) {
            return bad(format!("hidden layer {} has width 0", i + 1));
        }
        if let Some(front) = &self.conv {
            front.check(self.inputs)?;
        }
        let params = self.params();
        if params > MAX_ELEMENTS {
            return bad(format!(
                "{} weights and biases; at most 2^31 = {MAX_ELEMENTS} are supported",
                if params == usize::MAX {
                    "more than 2^64".to_string()
                } else {
                    params.to_string()
                }
            ));
        }
        Ok(params)
    }

    /// The sizes that the theory's `lambda` depends on, for `samples` training points. Conv
    /// stages count as hidden layers; the width is the widest hidden layer.
    pub fn theory_sizes(&self, samples: usize) -> TheorySizes {
        TheorySizes {
            params: self.params(),
            hidden_layers: self.hidden.len() + self.conv.as_ref().map_or(0, |f| f.stages.len()),
            width: self.hidden.iter().copied().max().unwrap_or(self.outputs),
            samples,
            inputs: self.inputs,
        }
    }
}

/// The product of `dims`, saturating at `usize::MAX`.
pub(crate) fn saturating_product(dims: &[usize]) -> usize {
    dims.iter().fold(1, |a, &d| a.saturating_mul(d))
}

/// The observation model.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Likelihood {
    /// `y ~ N(f(x), sigma^2)`; `learned` makes `log sigma` a variable starting at `sigma`.
    Gaussian {
        /// The noise standard deviation (the initial value when learned).
        sigma: f64,
        /// Whether `sigma` is learned (by maximising the ELBO).
        learned: bool,
    },
    /// `y ~ Categorical(softmax(f(x)))` over `outputs` classes.
    Categorical,
}

/// A spike-and-slab ReLU network with its prior and likelihood.
#[derive(Debug)]
pub struct SpikeSlabNet {
    /// The shape.
    pub arch: Arch,
    /// The conv front's layers (empty without one).
    pub convs: Vec<SpikeSlabConv2d>,
    /// The fully connected layers, inputs first.
    pub layers: Vec<SpikeSlabLinear>,
    /// The prior of every weight and bias.
    pub prior: Prior,
    /// The likelihood.
    pub likelihood: Likelihood,
    /// `log sigma` of the Gaussian noise (a variable when learned).
    pub log_noise: Var,
}

impl SpikeSlabNet {
    /// A freshly initialised network.
    pub fn new(
        arch: Arch,
        prior: Prior,
        likelihood: Likelihood,
        init: &Init,
        seed: u64,
        dtype: DType,
    ) -> Result<Self> {
        let dev = Device::Cpu;
        arch.check()?;
        if let Likelihood::Gaussian { sigma, .. } = likelihood {
            if !(sigma > 0.0 && sigma.is_finite()) {
                return Err(BayesError::Config(format!(
                    "noise sigma must be positive and finite, got {sigma}"
                )));
            }
        } else if arch.outputs < 2 {
            return Err(BayesError::Config(format!(
                "a categorical likelihood needs at least 2 outputs (classes), got {}",
                arch.outputs
            )));
        }
        let mut rng = Rng::new(seed);
        let convs = match &arch.conv {
            None => Vec::new(),
            Some(front) => {
                front.check(arch.inputs)?;
                let mut convs = Vec::new();
                for (st, cin) in front.stages.iter().zip(front.in_channels()) {
                    convs.push(SpikeSlabConv2d::new(
                        cin,
                        st.channels,
                        st.kernel,
                        st.config,
                        init,
                        &mut rng,
                        dtype,
                        &dev,
                    )?);
                }
                convs
            }
        };
        let layers = arch
            .sizes()
            .windows(2)
            .map(|w| SpikeSlabLinear::new(w[0], w[1], init, &mut rng, dtype, &dev))
            .collect::<Result<Vec<_>>>()?;
        let s = match likelihood {
            Likelihood::Gaussian { sigma, .. } => sigma,
            Likelihood::Categorical => 1.0,
        };
        let log_noise = Var::from_tensor(&Tensor::new(s.ln(), &dev)?.to_dtype(dtype)?)?;
        Ok(Self {
            arch,
            convs,
            layers,
            prior,
            likelihood,
            log_noise,
        })
    }

    /// The element type of the parameters.
    pub fn dtype(&self) -> DType {
        self.log_noise.dtype()
    }

    /// One Monte Carlo sample of the network's output for `x` (`[n, inputs]`): `[n, outputs]`.
    pub fn forward_sample(&self, x: &Tensor, rng: &mut Rng, temperature: f64) -> Result<Tensor> {
        let mut h = x.clone();
        if let Some(front) = &self.arch.conv {
            let n = x.dim(0)?;
            let [c, hh, ww] = front.image;
            h = h.reshape((n, c, hh, ww))?;
            for conv in &self.convs {
                h = conv.forward_sample(&h, rng, temperature)?.relu()?;
            }
            h = h.flatten_from(1)?;
        }
        for (i, l) in self.layers.iter().enumerate() {
            h = l.forward_sample(&h, rng, temperature)?;
            if i + 1 < self.layers.len() {
                h = h.relu()?;
            }
        }
        Ok(h)
    }

    /// The KL of the whole variational posterior from the prior.
    pub fn kl(&self) -> Result<Tensor> {
        let mut k = self.layers[0].kl(&self.prior)?;
        for l in &self.layers[1..] {
            k = (k + l.kl(&self.prior)?)?;
        }
        for c in &self.convs {
            k = (k + c.kl(&self.prior)?)?;
        }
        Ok(k)
    }

    /// Every group of weights or biases: the conv front's, then the fully connected layers'.
    pub fn groups(&self) -> Vec<&crate::layer::Group> {
        let mut g: Vec<&crate::layer::Group> = self.convs.iter().flat_map(|c| c.groups()).collect();
        g.extend(self.layers.iter().flat_map(|l| [&l.weight, &l.bias]));
        g
    }

    /// The negative log-likelihood of `targets` given outputs `f`, summed over the batch.
    pub fn nll(&self, f: &Tensor, targets: &Tensor) -> Result<Tensor> {
        match self.likelihood {
            Likelihood::Gaussian { .. } => {
                let n = f.dim(0)? as f64;
                let ls = self.log_noise.as_tensor();
                let inv_var = (ls * -2.0)?.exp()?;
                let sq = (f - targets)?.sqr()?.sum_all()?;
                let fit = ((sq * inv_var)? * 0.5)?;
                let norm = ((ls * n)? + 0.5 * n * std::f64::consts::TAU.ln())?;
                Ok((fit + norm)?)
            }
            Likelihood::Categorical => Ok((log_softmax_rows(f)? * targets)?.sum_all()?.neg()?),
        }
    }

    /// The current noise standard deviation (Gaussian likelihood).
    pub fn noise_sigma(&self) -> Result<f64> {
        Ok(self
            .log_noise
            .to_dtype(DType::F64)?
            .to_scalar::<f64>()?
            .exp())
    }

    /// The variables the optimizer updates.
    pub fn vars(&self) -> Vec<Var> {
        let mut v: Vec<Var> = self.convs.iter().flat_map(|c| c.vars()).collect();
        v.extend(self.layers.iter().flat_map(|l| l.vars()));
        if let Likelihood::Gaussian { learned: true, .. } = self.likelihood {
            v.push(self.log_noise.clone());
        }
        v
    }

    /// `targets` as the tensor [`Self::nll`] expects: `[n, 1]` values or `[n, k]` one-hot.
    pub fn target_tensor(&self, t: &Targets, idx: &[usize]) -> Result<Tensor> {
        let dev = Device::Cpu;
        let k = self.arch.outputs;
        let dt = self.dtype();
        match (t, self.likelihood) {
            (Targets::Values(v), Likelihood::Gaussian { .. }) => {
                let b: Vec<f32> = idx.iter().map(|&i| v[i]).collect();
                Ok(Tensor::from_vec(b, (idx.len(), 1), &dev)?.to_dtype(dt)?)
            }
            (Targets::Labels(l), Likelihood::Categorical) => {
                let mut oh = vec![0f32; idx.len() * k];
                for (r, &i) in idx.iter().enumerate() {
                    let c = l[i] as usize;
                    if c >= k {
                        return Err(BayesError::Data(format!("label {c} not in 0..{k}")));
                    }
                    oh[r * k + c] = 1.0;
                }
                Ok(Tensor::from_vec(oh, (idx.len(), k), &dev)?.to_dtype(dt)?)
            }
            _ => Err(BayesError::Data(
                "targets do not match the likelihood".into(),
            )),
        }
    }
}
