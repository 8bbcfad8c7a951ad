//! Training by the minibatch ELBO: per batch, loss = batch NLL (one Monte Carlo sample) +
//! KL / number of batches, minimised with Adam (candle's `AdamW` with no weight decay).
use crate::data::Dataset;
use crate::error::{BayesError, Result};
use crate::net::SpikeSlabNet;
use crate::rng::Rng;
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use serde::{Deserialize, Serialize};

/// Optimisation settings (defaults: the paper's code, but fewer epochs).
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Passes over the data.
    pub epochs: usize,
    /// Rows per minibatch.
    pub batch_size: usize,
    /// Adam learning rate.
    pub lr: f64,
    /// Temperature of the binary Concrete relaxation.
    pub temperature: f64,
    /// Seed of the batch order and the Monte Carlo noise.
    pub seed: u64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 1000,
            batch_size: 512,
            lr: 5e-3,
            temperature: 0.5,
            seed: 0,
        }
    }
}

/// What one epoch did.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct EpochStats {
    /// The epoch, 0-based.
    pub epoch: usize,
    /// The ELBO estimate: minus the sum of the batch losses.
    pub elbo: f64,
    /// The KL term at the end of the epoch.
    pub kl: f64,
    /// Fraction of weights and biases with `phi > 0.5`.
    pub density: f64,
}

/// Train `net` on `data`; `on_epoch` sees every epoch's statistics.
pub fn train(
    net: &SpikeSlabNet,
    data: &Dataset,
    cfg: &TrainConfig,
    mut on_epoch: impl FnMut(&EpochStats),
) -> Result<Vec<EpochStats>> {
    let positive = |v: f64| v > 0.0 && v.is_finite();
    if cfg.batch_size == 0 || !positive(cfg.temperature) || !positive(cfg.lr) {
        return Err(BayesError::Config(format!("bad training settings {cfg:?}")));
    }
    if data.p != net.arch.inputs {
        return Err(BayesError::Data(format!(
            "data has {} inputs, the network {}",
            data.p, net.arch.inputs
        )));
    }
    let dt = net.dtype();
    let params = ParamsAdamW {
        lr: cfg.lr,
        weight_decay: 0.0,
        ..Default::default()
    };
    let mut opt = AdamW::new(net.vars(), params)?;
    let mut rng = Rng::new(cfg.seed);
    let num_batches = data.n as f64 / cfg.batch_size as f64;
    let mut history = Vec::with_capacity(cfg.epochs);
    for epoch in 0..cfg.epochs {
        let perm = rng.permutation(data.n);
        let mut total = 0.0;
        for idx in perm.chunks(cfg.batch_size) {
            let x = data.rows(idx, dt)?;
            let y = net.target_tensor(&data.targets, idx)?;
            let f = net.forward_sample(&x, &mut rng, cfg.temperature)?;
            let loss = (net.nll(&f, &y)? + (net.kl()? / num_batches)?)?;
            let l = loss.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>()?;
            if !l.is_finite() {
                return Err(BayesError::Diverged { epoch, loss: l });
            }
            total += l;
            opt.backward_step(&loss)?;
        }
        let kl = net
            .kl()?
            .to_dtype(candle_core::DType::F64)?
            .to_scalar::<f64>()?;
        let stats = EpochStats {
            epoch,
            elbo: -total,
            kl,
            density: crate::select::density(net)?,
        };
        on_epoch(&stats);
        history.push(stats);
    }
    Ok(history)
}
