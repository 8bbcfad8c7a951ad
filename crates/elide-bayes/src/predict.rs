//! Prediction by averaging `S` Monte Carlo samples of the network: regression means with
//! credible intervals of the regression function, class probabilities for classification.
use crate::error::{BayesError, Result};
use crate::net::{Likelihood, SpikeSlabNet};
use crate::rng::Rng;
use candle_core::{DType, Tensor};
use serde::Serialize;

/// The predictive summary of a batch.
#[derive(Clone, Debug, Serialize)]
pub struct Prediction {
    /// Per row, the mean over samples (regression: `[n]`; classification: `[n * k]` class
    /// probabilities, row-major).
    pub mean: Vec<f64>,
    /// Regression only: per row, the lower and upper end of the central credible interval of
    /// `f(x)` over the samples (empty for classification).
    pub interval: Vec<(f64, f64)>,
    /// Outputs per row (1 for regression, `k` classes).
    pub outputs: usize,
}

impl Prediction {
    /// Classification: the most probable class per row.
    pub fn classes(&self) -> Vec<usize> {
        self.mean
            .chunks(self.outputs)
            .map(|r| {
                r.iter()
                    .enumerate()
                    .fold(0, |b, (i, &v)| if v > r[b] { i } else { b })
            })
            .collect()
    }
}

/// Average `samples` draws of the network on `x` (`[n, inputs]`); `level` is the credible level
/// of the regression intervals (e.g. 0.95).
pub fn predict(
    net: &SpikeSlabNet,
    x: &Tensor,
    samples: usize,
    level: f64,
    seed: u64,
) -> Result<Prediction> {
    if samples == 0 {
        return Err(BayesError::Config(
            "prediction: samples must be at least 1, got 0".into(),
        ));
    }
    if !(level > 0.0 && level < 1.0) {
        return Err(BayesError::Config(format!(
            "prediction: the credible level must be in (0, 1), got {level}"
        )));
    }
    let (n, p) = x.dims2()?;
    if p != net.arch.inputs {
        return Err(BayesError::Data(format!(
            "prediction: {p} inputs per row, the network reads {}",
            net.arch.inputs
        )));
    }
    let mut rng = Rng::new(seed);
    let k = net.arch.outputs;
    let x = x.to_dtype(net.dtype())?;
    let mut draws: Vec<Vec<f64>> = Vec::with_capacity(samples);
    for _ in 0..samples {
        let f = net.forward_sample(&x, &mut rng, 0.5)?;
        let f = match net.likelihood {
            Likelihood::Categorical => candle_nn::ops::softmax_last_dim(&f)?,
            Likelihood::Gaussian { .. } => f,
        };
        draws.push(f.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?);
    }
    let mut mean = vec![0.0; n * k];
    for d in &draws {
        mean.iter_mut()
            .zip(d)
            .for_each(|(m, v)| *m += v / samples as f64);
    }
    let interval = match net.likelihood {
        Likelihood::Categorical => Vec::new(),
        Likelihood::Gaussian { .. } => (0..n)
            .map(|i| {
                let mut v: Vec<f64> = draws.iter().map(|d| d[i * k]).collect();
                v.sort_by(f64::total_cmp);
                (
                    quantile(&v, (1.0 - level) / 2.0),
                    quantile(&v, (1.0 + level) / 2.0),
                )
            })
            .collect(),
    };
    Ok(Prediction {
        mean,
        interval,
        outputs: k,
    })
}

/// Linear-interpolated quantile of sorted values.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// Root mean squared error of a regression prediction.
pub fn rmse(pred: &[f64], y: &[f32]) -> f64 {
    let s: f64 = pred
        .iter()
        .zip(y)
        .map(|(p, &t)| (p - t as f64).powi(2))
        .sum();
    (s / y.len().max(1) as f64).sqrt()
}
