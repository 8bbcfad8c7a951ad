//! Adaptive structure: choose depth and width (and with them the sparsity level) from the data.
//!
//! After Bai, Song & Cheng, "Adaptive Variational Bayesian Inference for Sparse Deep Neural
//! Network": the structure `s = (L, N)` gets a prior `pi(s)` and the variational family ranges
//! over `(s, q_s)`. Maximising the ELBO over that family gives
//! `q(s) ∝ pi(s) exp(ELBO_s)`, where `ELBO_s` is the best ELBO of structure `s` alone; the
//! adaptive estimate is the structure with the largest `log pi(s) + ELBO_s`. What is implemented
//! here, and why:
//! - Every candidate `(L, N)` of a grid is fitted with its own theory `lambda_s`
//!   (`-log lambda = log T_s + delta[(L+1) log N + log(sqrt(n) p)]`), so the KL inside `ELBO_s`
//!   charges each included weight about `-log lambda_s`, a price that rises with depth and
//!   width: that is the complexity penalty, and it is the theory's own.
//! - `pi(s)` is uniform over the grid (the paper's prior over structures is not reproduced;
//!   the grid is the user's), so the score is `ELBO_s` and `q(s)` is the softmax of the ELBOs.
//! - `ELBO_s` is re-estimated after training on all training rows with `S` Monte Carlo samples
//!   (`E_q log p(y | x, w)` averaged over the samples, minus the closed-form KL), not taken from
//!   the noisy minibatch sums of the last epoch.
//!
//! - With image inputs the grid may carry a conv front ([`Grid::with_conv`]) that every
//!   candidate shares; the search then chooses the fully connected layers after it (the
//!   front's weights count in `T_s` and its stages in `L`, as for a single fit).
//!
//! Candidates are fitted in parallel (rayon), each with the same seed.
use crate::data::Dataset;
use crate::error::{BayesError, Result};
use crate::layer::Init;
use crate::net::{Arch, ConvFront, Likelihood, SpikeSlabNet, MAX_HIDDEN_LAYERS};
use crate::prior::{theory_lambda, Prior};
use crate::rng::Rng;
use crate::select::{density, selected_inputs};
use crate::train::{train, EpochStats, TrainConfig};
use candle_core::DType;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// How a structure is fitted: everything except its depth and width.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FitSettings {
    /// The observation model.
    pub likelihood: Likelihood,
    /// Slab standard deviation.
    pub sigma0: f64,
    /// `delta` of the theory's `lambda`.
    pub delta: f64,
    /// Initial variational parameters.
    pub init: Init,
    /// Seed of the initialisation (training has its own in `train`).
    pub seed: u64,
    /// Optimisation.
    pub train: TrainConfig,
    /// Monte Carlo samples of the final ELBO estimate.
    pub elbo_samples: usize,
}

impl FitSettings {
    /// Regression with known noise `sigma` and the default initialisation; the initialisation
    /// seed and then the training seed (`train.seed` xor a draw) come from `rng`.
    pub fn known_noise(
        sigma: f64,
        sigma0: f64,
        delta: f64,
        train: TrainConfig,
        elbo_samples: usize,
        rng: &mut Rng,
    ) -> Self {
        let seed = rng.next_u64();
        Self {
            likelihood: Likelihood::Gaussian {
                sigma,
                learned: false,
            },
            sigma0,
            delta,
            init: Init::default(),
            seed,
            train: TrainConfig {
                seed: train.seed ^ rng.next_u64(),
                ..train
            },
            elbo_samples,
        }
    }
}

/// A full-data ELBO estimate.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Elbo {
    /// `E_q log p(y | x, w) - KL`.
    pub elbo: f64,
    /// The expected negative log-likelihood over all rows (Monte Carlo mean).
    pub nll: f64,
    /// The KL of the posterior from the prior.
    pub kl: f64,
}

/// Rows per forward pass of the ELBO estimate: bounds the memory of one pass (a conv front's
/// im2col buffers on 60,000 images would be gigabytes).
const ELBO_ROWS: usize = 4096;

/// Estimate the ELBO of `net` on all of `data` with `samples` draws.
pub fn estimate_elbo(
    net: &SpikeSlabNet,
    data: &Dataset,
    samples: usize,
    seed: u64,
) -> Result<Elbo> {
    estimate_elbo_in_chunks(net, data, samples, seed, ELBO_ROWS)
}

/// [`estimate_elbo`] with `rows` rows per forward pass. Every chunk of one draw replays the
/// same generator state, so it sees the same weights: the estimate does not depend on `rows`.
pub fn estimate_elbo_in_chunks(
    net: &SpikeSlabNet,
    data: &Dataset,
    samples: usize,
    seed: u64,
    rows: usize,
) -> Result<Elbo> {
    if samples == 0 || rows == 0 {
        return Err(BayesError::Config(format!(
            "ELBO estimate with {samples} samples of {rows} rows per pass"
        )));
    }
    let dt = net.dtype();
    let chunks = (0..data.n)
        .step_by(rows)
        .map(|r0| {
            let idx: Vec<usize> = (r0..(r0 + rows).min(data.n)).collect();
            Ok((
                data.rows(&idx, dt)?,
                net.target_tensor(&data.targets, &idx)?,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut rng = Rng::new(seed);
    let mut nll = 0.0;
    for _ in 0..samples {
        let draw = rng.clone();
        for (x, y) in &chunks {
            rng = draw.clone();
            let f = net.forward_sample(x, &mut rng, 0.5)?;
            nll += scalar(&net.nll(&f, y)?)? / samples as f64;
        }
    }
    let kl = scalar(&net.kl()?)?;
    Ok(Elbo {
        elbo: -nll - kl,
        nll,
        kl,
    })
}

fn scalar(t: &candle_core::Tensor) -> Result<f64> {
    Ok(t.to_dtype(DType::F64)?.to_scalar::<f64>()?)
}

/// Fit one structure: its theory `lambda`, a fresh network, training; returns the network, its
/// training history and `lambda`.
pub fn fit_structure(
    data: &Dataset,
    arch: Arch,
    s: &FitSettings,
    on_epoch: impl FnMut(&EpochStats),
) -> Result<(SpikeSlabNet, Vec<EpochStats>, f64)> {
    arch.check()?;
    let lambda = theory_lambda(arch.theory_sizes(data.n), s.delta)?;
    let prior = Prior::new(lambda, s.sigma0)?;
    let net = SpikeSlabNet::new(arch, prior, s.likelihood, &s.init, s.seed, DType::F32)?;
    let hist = train(&net, data, &s.train, on_epoch)?;
    Ok((net, hist, lambda))
}

/// The candidate structures: every depth with every width of the fully connected layers, after
/// an optional conv front that all candidates share.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Grid {
    /// Hidden-layer counts.
    pub layers: Vec<usize>,
    /// Hidden widths (all hidden layers of a candidate have the same width).
    pub widths: Vec<usize>,
    /// Fits of each structure from different random starts (initialisation and training
    /// seeds); all are candidates, so the ELBO also chooses among the starts.
    #[serde(default = "one")]
    pub restarts: usize,
    /// The conv front before every candidate's fully connected layers (image inputs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conv: Option<ConvFront>,
}

fn one() -> usize {
    1
}

impl Grid {
    /// A checked grid.
    pub fn new(layers: Vec<usize>, widths: Vec<usize>) -> Result<Self> {
        if layers.is_empty() || widths.is_empty() || layers.contains(&0) || widths.contains(&0) {
            return Err(BayesError::Config(format!(
                "search grid needs depths and widths >= 1, got layers {layers:?} widths {widths:?}"
            )));
        }
        if let Some(l) = layers.iter().find(|&&l| l > MAX_HIDDEN_LAYERS) {
            return Err(BayesError::Config(format!(
                "search grid depth {l}: at most {MAX_HIDDEN_LAYERS} hidden layers are supported"
            )));
        }
        Ok(Self {
            layers,
            widths,
            restarts: 1,
            conv: None,
        })
    }

    /// The grid with `front` before every candidate's fully connected layers.
    pub fn with_conv(self, front: Option<ConvFront>) -> Self {
        Self {
            conv: front,
            ..self
        }
    }

    /// The grid with `restarts >= 1` fits of each structure.
    pub fn with_restarts(self, restarts: usize) -> Result<Self> {
        if restarts == 0 {
            return Err(BayesError::Config("search needs >= 1 restart".into()));
        }
        Ok(Self { restarts, ..self })
    }

    /// `(layers, width)` of every candidate, depth-major.
    pub fn candidates(&self) -> Vec<(usize, usize)> {
        self.layers
            .iter()
            .flat_map(|&l| self.widths.iter().map(move |&w| (l, w)))
            .collect()
    }
}

/// One fitted candidate.
#[derive(Clone, Debug, Serialize)]
pub struct Candidate {
    /// Hidden layers.
    pub layers: usize,
    /// Hidden width.
    pub width: usize,
    /// Which start of this structure (0-based; start 0 uses the settings' seeds as given).
    pub restart: usize,
    /// Weights and biases.
    pub params: usize,
    /// Its theory `lambda`.
    pub lambda: f64,
    /// The full-data ELBO estimate (the score).
    pub elbo: Elbo,
    /// `q(s)`: the structure's posterior weight, the softmax of the ELBOs over the grid.
    pub weight: f64,
    /// Fraction of weights and biases with `phi > 0.5`.
    pub density: f64,
    /// The inputs it selects (a first-layer edge with `phi > 0.5`).
    pub selected: Vec<usize>,
    /// Seconds to fit and score.
    pub seconds: f64,
}

/// The result of a search: every candidate and the chosen network.
pub struct Searched {
    /// Every fit: [`Grid::candidates`] order, the restarts of one structure together.
    pub candidates: Vec<Candidate>,
    /// Index of the chosen candidate (largest ELBO).
    pub chosen: usize,
    /// The chosen network.
    pub net: SpikeSlabNet,
    /// The chosen network's training history.
    pub history: Vec<EpochStats>,
}

/// Fit every structure of `grid` (each `grid.restarts` times) on `data`, in parallel, and
/// choose by the ELBO;
/// `on_candidate` sees each candidate as it finishes.
pub fn search(
    data: &Dataset,
    outputs: usize,
    grid: &Grid,
    s: &FitSettings,
    on_candidate: impl Fn(&Candidate) + Sync,
) -> Result<Searched> {
    if s.elbo_samples == 0 {
        return Err(BayesError::Config(
            "elbo_samples must be at least 1, got 0".into(),
        ));
    }
    s.train.check()?;
    // Every candidate's size before any is fitted.
    for (layers, width) in grid.candidates() {
        Arch {
            conv: grid.conv.clone(),
            ..Arch::uniform(data.p, layers, width, outputs)
        }
        .check()?;
    }
    let runs: Vec<(usize, usize, usize)> = grid
        .candidates()
        .into_iter()
        .flat_map(|(l, w)| (0..grid.restarts).map(move |r| (l, w, r)))
        .collect();
    let fitted = runs
        .into_par_iter()
        .map(|(layers, width, restart)| {
            let t0 = Instant::now();
            let k = restart as u64;
            let s = &FitSettings {
                seed: s.seed.wrapping_add(k.wrapping_mul(0x9E37_79B9_7F4A_7C15)),
                train: TrainConfig {
                    seed: s.train.seed ^ k.wrapping_mul(0xC2B2_AE3D_27D4_EB4F),
                    ..s.train
                },
                ..s.clone()
            };
            let arch = Arch {
                conv: grid.conv.clone(),
                ..Arch::uniform(data.p, layers, width, outputs)
            };
            let params = arch.params();
            let lambda = theory_lambda(arch.theory_sizes(data.n), s.delta)?;
            let (net, elbo, dens, selected, hist) = match fit_structure(data, arch, s, |_| {}) {
                Ok((net, hist, _)) => {
                    let elbo = estimate_elbo(&net, data, s.elbo_samples, s.seed ^ 0xE1B0)?;
                    let (d, sel) = (density(&net)?, selected_inputs(&net, 0.5)?);
                    (Some(net), elbo, d, sel, hist)
                }
                // A candidate that diverges is reported with a NaN ELBO and never chosen.
                Err(BayesError::Diverged { .. }) => {
                    let nan = Elbo {
                        elbo: f64::NAN,
                        nll: f64::NAN,
                        kl: f64::NAN,
                    };
                    (None, nan, f64::NAN, Vec::new(), Vec::new())
                }
                Err(e) => return Err(e),
            };
            let c = Candidate {
                layers,
                width,
                restart,
                params,
                lambda,
                elbo,
                weight: f64::NAN,
                density: dens,
                selected,
                seconds: t0.elapsed().as_secs_f64(),
            };
            on_candidate(&c);
            Ok((c, net, hist))
        })
        .collect::<Result<Vec<_>>>()?;
    let scores: Vec<f64> = fitted.iter().map(|(c, ..)| c.elbo.elbo).collect();
    let weights = softmax(&scores);
    if !weights.iter().any(|w| *w > 0.0) {
        return Err(BayesError::Model(format!(
            "no candidate structure has a finite ELBO (all diverged?): {scores:?}"
        )));
    }
    let chosen = (0..weights.len())
        .filter(|&i| scores[i].is_finite())
        .fold(None, |b: Option<usize>, i| match b {
            Some(j) if scores[j] >= scores[i] => Some(j),
            _ => Some(i),
        })
        .unwrap_or(0);
    let mut candidates = Vec::with_capacity(fitted.len());
    let mut best = None;
    for (i, ((mut c, net, hist), w)) in fitted.into_iter().zip(weights).enumerate() {
        c.weight = w;
        candidates.push(c);
        if i == chosen {
            best = Some((net, hist));
        }
    }
    let (net, history) = match best {
        Some((Some(net), hist)) => (net, hist),
        _ => {
            return Err(BayesError::Model(
                "the chosen candidate has no network".into(),
            ))
        }
    };
    Ok(Searched {
        candidates,
        chosen,
        net,
        history,
    })
}

/// Softmax of scores (non-finite scores get weight 0).
fn softmax(v: &[f64]) -> Vec<f64> {
    let m = v
        .iter()
        .copied()
        .filter(|x| x.is_finite())
        .fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = v
        .iter()
        .map(|&x| if x.is_finite() { (x - m).exp() } else { 0.0 })
        .collect();
    let s: f64 = e.iter().sum();
    e.iter()
        .map(|x| if s > 0.0 { x / s } else { 0.0 })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_is_checked_and_depth_major() {
        assert!(Grid::new(vec![], vec![3]).is_err());
        assert!(Grid::new(vec![1, 0], vec![3]).is_err());
        let e = Grid::new(vec![100_000_000], vec![1])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("depth 100000000") && e.contains("at most"),
            "{e}"
        );
        let g = Grid::new(vec![1, 2], vec![4, 8]).unwrap();
        assert_eq!(g.candidates(), vec![(1, 4), (1, 8), (2, 4), (2, 8)]);
    }

    #[test]
    fn softmax_weights_sum_to_one_and_skip_non_finite() {
        let w = softmax(&[-1000.0, -1001.0, f64::NAN]);
        assert!((w[0] + w[1] - 1.0).abs() < 1e-12 && w[2] == 0.0);
        assert!((w[0] / w[1] - std::f64::consts::E).abs() < 1e-9);
    }
}
