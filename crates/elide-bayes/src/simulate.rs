//! The papers' simulation: `y = 7 x2 / (1 + x1^2) + 5 sin(x3 x4) + 2 x5 + eps`, `eps ~ N(0, 1)`,
//! `x ~ U(-1, 1)^p` (as in the authors' code), `p = 200` inputs of which the first 5 matter,
//! a 200-7-7-7-1 network (or the structure the adaptive search chooses); per replicate: test
//! RMSE, density, FNR and FPR of variable selection.
use crate::data::{Dataset, Targets};
use crate::error::Result;
use crate::net::{Arch, SpikeSlabNet};
use crate::predict::{predict, rmse};
use crate::rng::Rng;
use crate::search::{fit_structure, search, Candidate, FitSettings, Grid};
use crate::select::{density, selected_inputs, selection_rates};
use crate::train::{EpochStats, TrainConfig};
use candle_core::DType;
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// The truly relevant inputs (0-based: x1..x5).
pub const RELEVANT: [usize; 5] = [0, 1, 2, 3, 4];

/// Settings of the simulation.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SimConfig {
    /// Inputs.
    pub p: usize,
    /// Training points.
    pub n_train: usize,
    /// Test points.
    pub n_test: usize,
    /// Hidden widths.
    pub hidden: Vec<usize>,
    /// Slab standard deviation.
    pub sigma0: f64,
    /// `delta` of the theory's `lambda`.
    pub delta: f64,
    /// Monte Carlo samples for prediction.
    pub samples: usize,
    /// Training settings (its seed is offset per replicate).
    pub train: TrainConfig,
    /// Added to the replicate index to seed the data and training: 0 for the reported runs,
    /// anything else for choosing settings on other data.
    #[serde(default)]
    pub seed_offset: u64,
    /// The adaptive search instead of the fixed `hidden` structure: candidates and the
    /// Monte Carlo samples of their ELBO estimates.
    #[serde(default)]
    pub search: Option<(Grid, usize)>,
    /// Initial inclusion probability of every weight and bias (the authors' code: 0.99).
    #[serde(default = "paper_init_phi")]
    pub init_phi: f64,
}

fn paper_init_phi() -> f64 {
    crate::layer::Init::default().phi
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            p: 200,
            n_train: 3000,
            n_test: 10_000,
            hidden: vec![7, 7, 7],
            sigma0: 1.3,
            delta: 0.1,
            samples: 30,
            // The authors' code: 7000 epochs, Adam at 5e-3, batch 512, temperature 0.5.
            train: TrainConfig {
                epochs: 7000,
                ..TrainConfig::default()
            },
            seed_offset: 0,
            search: None,
            init_phi: paper_init_phi(),
        }
    }
}

/// The result of one replicate.
#[derive(Clone, Debug, Serialize)]
pub struct Replicate {
    /// Replicate index (it seeds the data and the training).
    pub index: usize,
    /// Test RMSE of the posterior predictive mean (noise floor 1.0).
    pub rmse: f64,
    /// Training RMSE.
    pub train_rmse: f64,
    /// Fraction of weights and biases with `phi > 0.5`.
    pub density: f64,
    /// False-negative rate of the selection.
    pub fnr: f64,
    /// False-positive rate of the selection.
    pub fpr: f64,
    /// The selected inputs (0-based).
    pub selected: Vec<usize>,
    /// The prior inclusion probability used.
    pub lambda: f64,
    /// Final ELBO estimate.
    pub elbo: f64,
    /// Wall-clock seconds of training and evaluation.
    pub seconds: f64,
    /// The hidden widths used (chosen by the search, or the fixed structure).
    pub hidden: Vec<usize>,
    /// With the search: every candidate.
    pub grid: Option<Vec<Candidate>>,
}

/// How a fitted regression network does on held-out data and at variable selection.
#[derive(Clone, Debug, Serialize)]
pub struct Scores {
    /// Test RMSE of the posterior predictive mean.
    pub rmse: f64,
    /// Training RMSE.
    pub train_rmse: f64,
    /// Fraction of weights and biases with `phi > 0.5`.
    pub density: f64,
    /// False-negative rate of the selection.
    pub fnr: f64,
    /// False-positive rate of the selection.
    pub fpr: f64,
    /// The selected inputs (0-based).
    pub selected: Vec<usize>,
}

/// Score `net` on regression data: predictive means of `samples` draws on `train` and `test`,
/// selection against the truly `relevant` inputs.
pub fn evaluate(
    net: &SpikeSlabNet,
    train: &Dataset,
    test: &Dataset,
    relevant: &[usize],
    samples: usize,
    seed: u64,
) -> Result<Scores> {
    let values = |d: &Dataset| match &d.targets {
        Targets::Values(v) => v.clone(),
        Targets::Labels(_) => Vec::new(),
    };
    let x = |d: &Dataset| d.x_tensor(DType::F32);
    let pt = predict(net, &x(test)?, samples, 0.95, seed ^ 1)?;
    let pr = predict(net, &x(train)?, samples, 0.95, seed ^ 2)?;
    let selected = selected_inputs(net, 0.5)?;
    let (fnr, fpr) = selection_rates(&selected, relevant, train.p);
    Ok(Scores {
        rmse: rmse(&pt.mean, &values(test)),
        train_rmse: rmse(&pr.mean, &values(train)),
        density: density(net)?,
        fnr,
        fpr,
        selected,
    })
}

/// `n` points of the simulation with `p` inputs.
pub fn generate(n: usize, p: usize, rng: &mut Rng) -> Result<Dataset> {
    let mut x = Vec::with_capacity(n * p);
    let mut y = Vec::with_capacity(n);
    for _ in 0..n {
        let r: Vec<f64> = (0..p).map(|_| rng.range(-1.0, 1.0)).collect();
        let f = 7.0 * r[1] / (1.0 + r[0] * r[0]) + 5.0 * (r[2] * r[3]).sin() + 2.0 * r[4];
        y.push((f + rng.normal()) as f32);
        x.extend(r.iter().map(|&v| v as f32));
    }
    Dataset::new(n, p, x, Targets::Values(y), 0)
}

/// Run replicate `index`; `on_epoch` sees the training progress.
pub fn run_replicate(
    cfg: &SimConfig,
    index: usize,
    on_epoch: impl FnMut(&EpochStats),
) -> Result<Replicate> {
    let t0 = Instant::now();
    let mut rng = Rng::new(0xB4_1000 + cfg.seed_offset + index as u64);
    let train_set = generate(cfg.n_train, cfg.p, &mut rng)?;
    let test_set = generate(cfg.n_test, cfg.p, &mut rng)?;
    let arch = Arch {
        inputs: cfg.p,
        hidden: cfg.hidden.clone(),
        outputs: 1,
        conv: None,
    };
    let samples = cfg.search.as_ref().map_or(1, |s| s.1);
    let mut settings =
        FitSettings::known_noise(1.0, cfg.sigma0, cfg.delta, cfg.train, samples, &mut rng);
    settings.init.phi = cfg.init_phi;
    let seed = settings.seed;
    let (net, hist, lambda, grid) = match &cfg.search {
        None => {
            let (net, hist, lambda) = fit_structure(&train_set, arch, &settings, on_epoch)?;
            (net, hist, lambda, None)
        }
        Some((g, _)) => {
            let found = search(&train_set, 1, g, &settings, |_| {})?;
            let lambda = found.candidates[found.chosen].lambda;
            (found.net, found.history, lambda, Some(found.candidates))
        }
    };
    let e = evaluate(&net, &train_set, &test_set, &RELEVANT, cfg.samples, seed)?;
    Ok(Replicate {
        index,
        rmse: e.rmse,
        train_rmse: e.train_rmse,
        density: e.density,
        fnr: e.fnr,
        fpr: e.fpr,
        selected: e.selected,
        lambda,
        elbo: hist.last().map_or(f64::NAN, |h| h.elbo),
        seconds: t0.elapsed().as_secs_f64(),
        hidden: net.arch.hidden.clone(),
        grid,
    })
}
