//! [`SpikeSlabLinear`]: a fully connected layer whose every weight and bias has a spike-and-slab
//! variational posterior `(phi, mu, sigma)`, parameterised as `theta = logit(phi)`, `mu`,
//! `rho` with `sigma = softplus(rho)`, all candle [`Var`]s (weights stored `[inputs, outputs]`).
use crate::error::{BayesError, Result};
use crate::fused::{SlabKl, SlabSample};
use crate::ops::{sigmoid, softplus, softplus_inv_f64};
use crate::prior::Prior;
use crate::rng::Rng;
use candle_core::{DType, Device, Tensor, Var};
use serde::{Deserialize, Serialize};

/// Initial values of the variational parameters (the paper's code: `mu ~ U(-0.6, 0.6)`,
/// `sigma = softplus(-6)`, `phi = 0.99`).
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct Init {
    /// `mu` is drawn uniformly in `[-mu_range, mu_range]`.
    pub mu_range: f64,
    /// Initial `rho` (so `sigma = softplus(rho)`).
    pub rho: f64,
    /// Initial inclusion probability.
    pub phi: f64,
}

impl Default for Init {
    fn default() -> Self {
        Self {
            mu_range: 0.6,
            rho: -6.0,
            phi: 0.99,
        }
    }
}

/// The variational parameters of one group (weights or biases).
#[derive(Debug)]
pub struct Group {
    /// Means of the slab.
    pub mu: Var,
    /// `sigma = softplus(rho)`.
    pub rho: Var,
    /// `phi = sigmoid(theta)`.
    pub theta: Var,
}

impl Group {
    pub(crate) fn init(
        shape: &[usize],
        init: &Init,
        rng: &mut Rng,
        dtype: DType,
        dev: &Device,
    ) -> Result<Self> {
        let n: usize = shape.iter().product();
        let mu: Vec<f64> = (0..n)
            .map(|_| rng.range(-init.mu_range, init.mu_range))
            .collect();
        let logit = (init.phi / (1.0 - init.phi)).ln();
        let var = |v: Vec<f64>| -> Result<Var> {
            Ok(Var::from_tensor(
                &Tensor::from_vec(v, shape, dev)?.to_dtype(dtype)?,
            )?)
        };
        Ok(Self {
            mu: var(mu)?,
            rho: var(vec![init.rho; n])?,
            theta: var(vec![logit; n])?,
        })
    }

    /// The group from saved tensors (`mu`, `sigma`, `phi` as stored by [`crate::io`]).
    pub fn from_tensors(mu: &Tensor, rho: &Tensor, theta: &Tensor) -> Result<Self> {
        if mu.dims() != rho.dims() || mu.dims() != theta.dims() {
            return Err(BayesError::Model(format!(
                "parameter shapes differ: {:?} {:?} {:?}",
                mu.dims(),
                rho.dims(),
                theta.dims()
            )));
        }
        Ok(Self {
            mu: Var::from_tensor(mu)?,
            rho: Var::from_tensor(rho)?,
            theta: Var::from_tensor(theta)?,
        })
    }

    /// A sample of the weights: `gamma * (mu + sigma * eps)` with `gamma` hard Concrete
    /// (one fused pass, [`crate::fused`]).
    pub(crate) fn sample(&self, rng: &mut Rng, temperature: f64) -> Result<Tensor> {
        let op = SlabSample::new(rng.next_u64(), temperature);
        Ok(self
            .mu
            .as_tensor()
            .apply_op3(self.rho.as_tensor(), self.theta.as_tensor(), op)?)
    }

    /// The closed-form KL from the prior, summed over the group (one fused pass).
    pub fn kl(&self, prior: &Prior) -> Result<Tensor> {
        Ok(self.mu.as_tensor().apply_op3(
            self.rho.as_tensor(),
            self.theta.as_tensor(),
            SlabKl::new(*prior),
        )?)
    }

    /// `phi` as `f64`s, row-major.
    pub fn phi(&self) -> Result<Vec<f64>> {
        to_f64(&sigmoid(self.theta.as_tensor())?)
    }

    /// `mu` as `f64`s, row-major.
    pub fn mu(&self) -> Result<Vec<f64>> {
        to_f64(self.mu.as_tensor())
    }

    /// `sigma` as `f64`s, row-major.
    pub fn sigma(&self) -> Result<Vec<f64>> {
        to_f64(&softplus(self.rho.as_tensor())?)
    }

    /// The three variables, for the optimizer.
    pub fn vars(&self) -> [Var; 3] {
        [self.mu.clone(), self.rho.clone(), self.theta.clone()]
    }
}

/// A tensor's values as `f64`s, row-major.
pub fn to_f64(t: &Tensor) -> Result<Vec<f64>> {
    Ok(t.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?)
}

/// A spike-and-slab fully connected layer.
#[derive(Debug)]
pub struct SpikeSlabLinear {
    /// Input features.
    pub inputs: usize,
    /// Output features.
    pub outputs: usize,
    /// Weights, `[inputs, outputs]`.
    pub weight: Group,
    /// Biases, `[outputs]`.
    pub bias: Group,
}

impl SpikeSlabLinear {
    /// A freshly initialised layer.
    pub fn new(
        inputs: usize,
        outputs: usize,
        init: &Init,
        rng: &mut Rng,
        dtype: DType,
        dev: &Device,
    ) -> Result<Self> {
        if inputs == 0 || outputs == 0 {
            return Err(BayesError::Config(format!(
                "layer {inputs} -> {outputs} has no weights"
            )));
        }
        if !(init.phi > 0.0 && init.phi < 1.0) {
            return Err(BayesError::Config(format!(
                "initial phi {} not in (0, 1)",
                init.phi
            )));
        }
        let weight = Group::init(&[inputs, outputs], init, rng, dtype, dev)?;
        let bias = Group::init(&[outputs], init, rng, dtype, dev)?;
        Ok(Self {
            inputs,
            outputs,
            weight,
            bias,
        })
    }

    /// One Monte Carlo sample of the layer applied to `x` (`[n, inputs]`).
    pub fn forward_sample(&self, x: &Tensor, rng: &mut Rng, temperature: f64) -> Result<Tensor> {
        let w = self.weight.sample(rng, temperature)?;
        let b = self.bias.sample(rng, temperature)?;
        Ok(x.matmul(&w)?.broadcast_add(&b)?)
    }

    /// The KL of weights and biases from the prior.
    pub fn kl(&self, prior: &Prior) -> Result<Tensor> {
        Ok((self.weight.kl(prior)? + self.bias.kl(prior)?)?)
    }

    /// All six variables, for the optimizer.
    pub fn vars(&self) -> Vec<Var> {
        let mut v = self.weight.vars().to_vec();
        v.extend(self.bias.vars());
        v
    }

    /// Number of parameters (weights and biases).
    pub fn params(&self) -> usize {
        self.inputs * self.outputs + self.outputs
    }
}

/// `rho` giving the standard deviation `sigma` (for callers that set `Init::rho` from a sigma).
pub fn rho_for_sigma(sigma: f64) -> f64 {
    softplus_inv_f64(sigma)
}
