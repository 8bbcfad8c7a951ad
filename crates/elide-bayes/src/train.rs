//! Training by the minibatch ELBO: per batch, loss = batch NLL (one Monte Carlo sample) +
//! KL / number of batches, minimised with Adam (candle's `AdamW` with no weight decay).
use crate::data::{Dataset, Targets};
use crate::error::{BayesError, Result};
use crate::net::SpikeSlabNet;
use crate::rng::Rng;
use candle_core::Var;
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
    /// KL warm-up: over the first `kl_warmup` epochs the KL's weight rises linearly from
    /// `1 / kl_warmup` to 1 (0: no warm-up, the full ELBO from the start, as in the paper's
    /// code). Not in the paper; an option for the optimisation only, the objective at the end
    /// is the ELBO.
    #[serde(default)]
    pub kl_warmup: usize,
    /// Epochs before the warm-up in which the KL's weight is 0 (the network first fits the
    /// likelihood alone). Not in the paper; 0 by default.
    #[serde(default)]
    pub kl_delay: usize,
    /// The learning rate of the inclusion logits `theta` is `lr * theta_lr_scale` (1 by default,
    /// as in the paper's code: one Adam over all parameters). Not in the paper.
    #[serde(default = "one")]
    pub theta_lr_scale: f64,
}

fn one() -> f64 {
    1.0
}

impl TrainConfig {
    /// Checks every setting; the error names the field and its value.
    pub fn check(&self) -> Result<()> {
        let bad = |msg: String| Err(BayesError::Config(format!("training: {msg}")));
        if self.epochs == 0 {
            return bad("epochs must be at least 1, got 0".into());
        }
        if self.batch_size == 0 {
            return bad("batch_size must be at least 1, got 0".into());
        }
        for (name, v) in [
            ("lr", self.lr),
            ("temperature", self.temperature),
            ("theta_lr_scale", self.theta_lr_scale),
        ] {
            if !(v > 0.0 && v.is_finite()) {
                return bad(format!("{name} must be a positive finite number, got {v}"));
            }
        }
        Ok(())
    }
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 1000,
            batch_size: 512,
            lr: 5e-3,
            temperature: 0.5,
            seed: 0,
            kl_warmup: 0,
            kl_delay: 0,
            theta_lr_scale: 1.0,
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
    /// Classification: the fraction of training rows the sampled networks classified right
    /// during the epoch (one sample per batch, as trained).
    pub accuracy: Option<f64>,
}

/// The KL's weight in `epoch` (0-based): 0 for the first `delay` epochs, then a linear
/// warm-up over `warmup` epochs.
pub fn kl_scale(delay: usize, warmup: usize, epoch: usize) -> f64 {
    if epoch < delay {
        0.0
    } else if warmup == 0 {
        1.0
    } else {
        ((epoch - delay + 1) as f64 / warmup as f64).min(1.0)
    }
}

/// Train `net` on `data`; `on_epoch` sees every epoch's statistics.
pub fn train(
    net: &SpikeSlabNet,
    data: &Dataset,
    cfg: &TrainConfig,
    mut on_epoch: impl FnMut(&EpochStats),
) -> Result<Vec<EpochStats>> {
    cfg.check()?;
    if data.p != net.arch.inputs {
        return Err(BayesError::Data(format!(
            "data has {} inputs, the network {}",
            data.p, net.arch.inputs
        )));
    }
    let dt = net.dtype();
    let adam = |lr: f64, vars: Vec<Var>| {
        let params = ParamsAdamW {
            lr,
            weight_decay: 0.0,
            ..Default::default()
        };
        AdamW::new(vars, params)
    };
    let thetas: Vec<Var> = net.groups().iter().map(|g| g.theta.clone()).collect();
    let ids: Vec<_> = thetas.iter().map(|v| v.as_tensor().id()).collect();
    let others: Vec<Var> = net
        .vars()
        .into_iter()
        .filter(|v| !ids.contains(&v.as_tensor().id()))
        .collect();
    let mut opt = adam(cfg.lr, others)?;
    let mut opt_theta = adam(cfg.lr * cfg.theta_lr_scale, thetas)?;
    let mut rng = Rng::new(cfg.seed);
    let num_batches = data.n as f64 / cfg.batch_size as f64;
    let mut history = Vec::with_capacity(cfg.epochs);
    for epoch in 0..cfg.epochs {
        let kl_weight = kl_scale(cfg.kl_delay, cfg.kl_warmup, epoch);
        let perm = rng.permutation(data.n);
        let mut total = 0.0;
        let mut correct = 0usize;
        for idx in perm.chunks(cfg.batch_size) {
            let x = data.rows(idx, dt)?;
            let y = net.target_tensor(&data.targets, idx)?;
            let f = net.forward_sample(&x, &mut rng, cfg.temperature)?;
            let loss = (net.nll(&f, &y)? + (net.kl()? * (kl_weight / num_batches))?)?;
            let l = loss.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>()?;
            if !l.is_finite() {
                return Err(BayesError::Diverged { epoch, loss: l });
            }
            total += l;
            if let Targets::Labels(labels) = &data.targets {
                let pred = f.argmax(1)?.to_vec1::<u32>()?;
                correct += idx
                    .iter()
                    .zip(&pred)
                    .filter(|(&i, &p)| labels[i] == p)
                    .count();
            }
            let grads = loss.backward()?;
            opt.step(&grads)?;
            opt_theta.step(&grads)?;
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
            accuracy: match data.targets {
                Targets::Labels(_) => Some(correct as f64 / data.n.max(1) as f64),
                Targets::Values(_) => None,
            },
        };
        on_epoch(&stats);
        history.push(stats);
    }
    Ok(history)
}

#[cfg(test)]
mod tests {
    use super::{kl_scale, TrainConfig};

    #[test]
    fn bad_settings_name_the_field_and_value() {
        let e = |c: TrainConfig| c.check().unwrap_err().to_string();
        let d = TrainConfig::default();
        assert!(d.check().is_ok());
        let msg = e(TrainConfig { lr: 0.0, ..d });
        assert!(
            msg.contains("lr must be a positive finite number, got 0"),
            "{msg}"
        );
        let msg = e(TrainConfig { lr: f64::NAN, ..d });
        assert!(msg.contains("lr") && msg.contains("NaN"), "{msg}");
        let msg = e(TrainConfig { batch_size: 0, ..d });
        assert!(msg.contains("batch_size must be at least 1"), "{msg}");
        let msg = e(TrainConfig { epochs: 0, ..d });
        assert!(msg.contains("epochs must be at least 1"), "{msg}");
        let msg = e(TrainConfig {
            theta_lr_scale: f64::INFINITY,
            ..d
        });
        assert!(
            msg.contains("theta_lr_scale") && msg.contains("inf"),
            "{msg}"
        );
        assert!(!msg.contains("TrainConfig"), "{msg}");
    }

    #[test]
    fn warmup_rises_linearly_to_one() {
        assert_eq!(kl_scale(0, 0, 0), 1.0);
        assert_eq!(kl_scale(0, 4, 0), 0.25);
        assert_eq!(kl_scale(0, 4, 3), 1.0);
        assert_eq!(kl_scale(0, 4, 100), 1.0);
        assert_eq!(kl_scale(2, 0, 1), 0.0);
        assert_eq!(kl_scale(2, 0, 2), 1.0);
        assert_eq!(kl_scale(2, 2, 2), 0.5);
    }
}
