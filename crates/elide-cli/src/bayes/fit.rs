//! `elide bayes fit` and `elide bayes predict`: CSV in, a saved model (safetensors + JSON) out,
//! and predictions from a saved model.
use anyhow::{anyhow, bail, Context, Result};
use candle_core::{DType, Device, Tensor};
use clap::Args;
use elide_bayes::csv::Table;
use elide_bayes::data::{Dataset, Standardizer, Targets};
use elide_bayes::predict::{predict as mc_predict, rmse};
use elide_bayes::search::{fit_structure, search, Candidate, FitSettings, Grid};
use elide_bayes::select::{density, selected_inputs};
use elide_bayes::train::{EpochStats, TrainConfig};
use elide_bayes::{io, Arch, Conv2dConfig, ConvFront, ConvStage, Init, Likelihood, SpikeSlabNet};
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Options of `elide bayes fit`.
#[derive(Args)]
pub struct FitArgs {
    /// Training data: CSV with a header row, numeric cells.
    #[arg(long, required_unless_present = "idx", conflicts_with = "idx")]
    pub(super) data: Option<PathBuf>,
    /// The target column.
    #[arg(long, required_unless_present = "idx", conflicts_with = "idx")]
    pub(super) target: Option<String>,
    /// Instead of a CSV file: a directory with the four uncompressed MNIST-style IDX files
    /// (e.g. data/fashion-mnist from scripts/fetch-data.sh); 10 classes, pixels scaled to
    /// [0, 1], scored on the t10k files.
    #[arg(long)]
    pub(super) idx: Option<PathBuf>,
    /// With --idx: use only the first N training images (0 = all).
    // `requires = "idx"` would not fire: clap drops requirements that conflict with a present
    // argument, and --idx conflicts with --data.
    #[arg(long, default_value_t = 0, conflicts_with = "data")]
    pub(super) train_limit: usize,
    /// With --idx: also train the dense network of the same architecture the same way
    /// (no prior, no KL) and compare.
    #[arg(long, conflicts_with = "data")]
    pub(super) dense: bool,
    /// Classification with this many classes (labels 0..K-1, K >= 2; with --data at most the
    /// number of rows); regression without it.
    #[arg(long, value_parser = super::parse::classes)]
    pub(super) classes: Option<usize>,
    /// Hidden layers.
    #[arg(long, default_value_t = 2, value_parser = super::parse::layers)]
    pub(super) layers: usize,
    /// Width of each hidden layer.
    #[arg(long, default_value_t = 16, value_parser = super::parse::count)]
    pub(super) width: usize,
    /// Choose depth and width from the data instead of --layers/--width: fit every
    /// structure of --search-layers x --search-widths (in parallel; after the --conv front,
    /// if any) and keep the one with the largest ELBO (elide_bayes::search).
    #[arg(long, conflicts_with_all = ["layers", "width"])]
    pub(super) search: bool,
    /// With --search: the candidate depths.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "1,2,3",
        requires = "search",
        value_parser = super::parse::layers
    )]
    pub(super) search_layers: Vec<usize>,
    /// With --search: the candidate widths.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "4,8,16,32",
        requires = "search",
        value_parser = super::parse::count
    )]
    pub(super) search_widths: Vec<usize>,
    /// Fit each structure this many times from different random starts and keep the largest
    /// ELBO (with or without --search).
    #[arg(long, default_value_t = 1,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub(super) restarts: usize,
    /// With --search or --restarts: Monte Carlo samples of each candidate's final ELBO.
    #[arg(long, default_value_t = 10,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub(super) elbo_samples: usize,
    /// With --idx: a conv front before the hidden layers, one spike-and-slab 3x3 conv of
    /// stride 2 and padding 1 (then ReLU) per entry, with that many output channels
    /// (e.g. `--conv 8,16`).
    #[arg(long, value_delimiter = ',', conflicts_with = "data",
          value_parser = super::parse::count)]
    pub(super) conv: Vec<usize>,
    /// Training epochs.
    #[arg(long, default_value_t = 500, value_parser = super::parse::count)]
    pub(super) epochs: usize,
    /// Adam learning rate.
    #[arg(
        long,
        default_value_t = 1e-2,
        value_parser = super::parse::positive,
        allow_negative_numbers = true,
    )]
    pub(super) lr: f64,
    /// Minibatch size.
    #[arg(long, default_value_t = 256, value_parser = super::parse::count)]
    pub(super) batch: usize,
    /// Slab standard deviation sigma0.
    #[arg(
        long,
        default_value_t = 1.3,
        value_parser = super::parse::positive,
        allow_negative_numbers = true,
    )]
    pub(super) sigma0: f64,
    /// delta in the theory's lambda.
    #[arg(
        long,
        default_value_t = 0.1,
        value_parser = super::parse::non_negative,
        allow_negative_numbers = true,
    )]
    pub(super) delta: f64,
    /// Regression: keep the noise fixed at this standard deviation (of the standardised
    /// target) instead of learning it.
    #[arg(
        long,
        value_parser = super::parse::positive,
        allow_negative_numbers = true,
        conflicts_with_all = ["classes", "idx"],
    )]
    pub(super) noise: Option<f64>,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    pub(super) seed: u64,
    /// Where to save the model (a JSON description is written beside it, so not a .json path).
    #[arg(long, default_value = "model.safetensors")]
    pub(super) out: PathBuf,
    /// Print the result as JSON.
    #[arg(long)]
    pub(super) json: bool,
}

/// What the CLI keeps with a model to predict on new CSV files.
#[derive(Serialize, Deserialize)]
pub(super) struct Meta {
    /// The target column.
    pub(super) target: String,
    pub(super) columns: Vec<String>,
    pub(super) inputs: Standardizer,
    /// Regression: mean and standard deviation of the target.
    pub(super) target_scale: Option<(f64, f64)>,
}

#[derive(Serialize)]
struct FitReport {
    model: PathBuf,
    rows: usize,
    inputs: usize,
    lambda: f64,
    elbo: f64,
    density: f64,
    selected: Vec<String>,
    train_rmse: Option<f64>,
    train_accuracy: Option<f64>,
    noise_sigma: Option<f64>,
    hidden: Vec<usize>,
    /// With --search: every candidate (the chosen one is `hidden`).
    search: Option<Vec<Candidate>>,
}

/// A fitted network with what the reports need.
pub(super) struct Fitted {
    pub(super) net: SpikeSlabNet,
    pub(super) history: Vec<EpochStats>,
    pub(super) lambda: f64,
    /// With --search: every candidate.
    pub(super) grid: Option<Vec<Candidate>>,
}

/// The conv front of `--conv` (3x3, stride 2, padding 1 per stage) over `image`.
fn conv_front(channels: &[usize], image: Option<[usize; 3]>) -> Result<Option<ConvFront>> {
    if channels.is_empty() {
        return Ok(None);
    }
    let Some(image) = image else {
        bail!("--conv needs image inputs (--idx)");
    };
    let config = Conv2dConfig {
        stride: [2, 2],
        padding: [1, 1],
        ..Default::default()
    };
    let stages = channels
        .iter()
        .map(|&c| ConvStage {
            channels: c,
            kernel: [3, 3],
            config,
        })
        .collect();
    Ok(Some(ConvFront { image, stages }))
}

/// The flags that set the network's size, with their values, for error messages.
fn size_flags(a: &FitArgs) -> String {
    let list = |v: &[usize]| v.iter().map(usize::to_string).collect::<Vec<_>>().join(",");
    let mut f = match a.search {
        true => format!(
            "--search-layers {}, --search-widths {}",
            list(&a.search_layers),
            list(&a.search_widths)
        ),
        false => format!("--layers {}, --width {}", a.layers, a.width),
    };
    if let Some(k) = a.classes {
        f += &format!(", --classes {k}");
    }
    if !a.conv.is_empty() {
        f += &format!(", --conv {}", list(&a.conv));
    }
    f
}

/// Refuses an `--out` that would be overwritten by its own description (`X.json`).
pub(super) fn check_out(out: &Path) -> Result<()> {
    if io::description_path(out) == out {
        bail!(
            "--out {}: the model's description is written beside the model as MODEL.json, so \
             --out cannot end in .json (use e.g. model.safetensors)",
            out.display()
        );
    }
    Ok(())
}

/// The network `a` asks for on `data`: the fixed --layers x --width structure, or the one
/// --search chooses (each candidate reported on stderr as it finishes), after the --conv front.
pub(super) fn fit_network(
    a: &FitArgs,
    data: &Dataset,
    outputs: usize,
    likelihood: Likelihood,
    image: Option<[usize; 3]>,
) -> Result<Fitted> {
    let settings = FitSettings {
        likelihood,
        sigma0: a.sigma0,
        delta: a.delta,
        init: Init::default(),
        seed: a.seed,
        train: TrainConfig {
            epochs: a.epochs,
            batch_size: a.batch,
            lr: a.lr,
            seed: a.seed,
            ..Default::default()
        },
        elbo_samples: a.elbo_samples,
    };
    let conv = conv_front(&a.conv, image)?;
    let candidates: Vec<(usize, usize)> = match a.search {
        true => a
            .search_layers
            .iter()
            .flat_map(|&l| a.search_widths.iter().map(move |&w| (l, w)))
            .collect(),
        false => vec![(a.layers, a.width)],
    };
    for (layers, width) in candidates {
        let arch = Arch {
            conv: conv.clone(),
            ..Arch::uniform(data.p, layers, width, outputs)
        };
        arch.check()
            .map_err(|e| anyhow!("{e} (set by {})", size_flags(a)))?;
    }
    if a.search || a.restarts > 1 {
        let grid = match a.search {
            true => Grid::new(a.search_layers.clone(), a.search_widths.clone())?,
            false => Grid::new(vec![a.layers], vec![a.width])?,
        }
        .with_restarts(a.restarts)?
        .with_conv(conv);
        let n = grid.candidates().len() * grid.restarts;
        eprintln!(
            "searching {n} structures ({} epochs each, in parallel)",
            a.epochs
        );
        let found = search(data, outputs, &grid, &settings, |c| {
            eprintln!(
                "  {} x {:<4} params {:>7}  ELBO {:>12.1}  (NLL {:.1}, KL {:.1})  density {:.4}  {:.0} s",
                c.layers, c.width, c.params, c.elbo.elbo, c.elbo.nll, c.elbo.kl, c.density, c.seconds
            );
        })?;
        return Ok(Fitted {
            lambda: found.candidates[found.chosen].lambda,
            net: found.net,
            history: found.history,
            grid: Some(found.candidates),
        });
    }
    let arch = Arch {
        conv,
        ..Arch::uniform(data.p, a.layers, a.width, outputs)
    };
    let bar = ProgressBar::new(a.epochs as u64).with_style(ProgressStyle::with_template(
        "{bar:30} {pos}/{len} epochs {msg}",
    )?);
    let (net, history, lambda) = fit_structure(data, arch, &settings, |s| {
        bar.inc(1);
        let acc = s
            .accuracy
            .map_or(String::new(), |a| format!(", train accuracy {a:.3}"));
        bar.set_message(format!("ELBO {:.1}, density {:.3}{acc}", s.elbo, s.density));
    })?;
    bar.finish_and_clear();
    Ok(Fitted {
        net,
        history,
        lambda,
        grid: None,
    })
}

/// Fits and saves a model.
pub fn fit(a: &FitArgs) -> Result<()> {
    check_out(&a.out)?;
    if let Some(dir) = &a.idx {
        return super::fit_idx::fit_idx(a, dir);
    }
    let (Some(path), Some(target)) = (&a.data, &a.target) else {
        bail!("--data and --target are needed (or --idx DIR)");
    };
    let table = Table::read(path)?;
    if let Some(k) = a.classes.filter(|&k| k > table.rows) {
        bail!(
            "--classes {k} is more than the {} rows of {}: most classes could never be seen in \
             training (give the number of classes the labels use)",
            table.rows,
            path.display()
        );
    }
    let (mut data, columns, inputs) = table.dataset(target, a.classes)?;
    let mut target_scale = None;
    if let Targets::Values(v) = &mut data.targets {
        let st = Standardizer::fit(v, v.len(), 1);
        st.apply(v)?;
        target_scale = Some((st.mean[0], st.std[0]));
    }
    let outputs = a.classes.unwrap_or(1);
    let lik = match (a.classes, a.noise) {
        (Some(_), _) => Likelihood::Categorical,
        (None, Some(s)) => Likelihood::Gaussian {
            sigma: s,
            learned: false,
        },
        (None, None) => Likelihood::Gaussian {
            sigma: 0.5,
            learned: true,
        },
    };
    let Fitted {
        net,
        history: hist,
        lambda,
        grid,
    } = fit_network(a, &data, outputs, lik, None)?;
    let pred = mc_predict(&net, &data.x_tensor(DType::F32)?, 30, 0.95, a.seed ^ 7)?;
    let (train_rmse, train_accuracy) = match &data.targets {
        Targets::Values(v) => (
            Some(rmse(&pred.mean, v) * target_scale.map_or(1.0, |s| s.1)),
            None,
        ),
        Targets::Labels(l) => {
            let ok = pred
                .classes()
                .iter()
                .zip(l)
                .filter(|(p, &t)| **p == t as usize)
                .count();
            (None, Some(ok as f64 / l.len() as f64))
        }
    };
    let meta = Meta {
        target: target.clone(),
        columns: columns.clone(),
        inputs,
        target_scale,
    };
    io::save(&net, &a.out, serde_json::to_value(&meta)?)?;
    let report = FitReport {
        model: a.out.clone(),
        rows: data.n,
        inputs: data.p,
        lambda,
        elbo: hist.last().map_or(f64::NAN, |h| h.elbo),
        density: density(&net)?,
        selected: selected_inputs(&net, 0.5)?
            .iter()
            .map(|&i| columns[i].clone())
            .collect(),
        train_rmse,
        train_accuracy,
        hidden: net.arch.hidden.clone(),
        search: grid,
        noise_sigma: match lik {
            Likelihood::Gaussian { .. } => {
                Some(net.noise_sigma()? * target_scale.map_or(1.0, |s| s.1))
            }
            Likelihood::Categorical => None,
        },
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "saved {} (+ {})",
            a.out.display(),
            io::description_path(&a.out).display()
        );
        println!(
            "rows {}, inputs {}, hidden {:?}{}, lambda {:.3e}",
            report.rows,
            report.inputs,
            report.hidden,
            if report.search.is_some() {
                " (chosen by the ELBO)"
            } else {
                ""
            },
            lambda
        );
        println!(
            "final ELBO {:.2}, density (phi > 0.5) {:.4}",
            report.elbo, report.density
        );
        if let Some(r) = train_rmse {
            println!(
                "train RMSE {r:.4}, noise sigma {:.4}",
                report.noise_sigma.unwrap_or(f64::NAN)
            );
        }
        if let Some(acc) = train_accuracy {
            println!("train accuracy {:.4}", acc);
        }
        println!(
            "selected inputs ({}): {}",
            report.selected.len(),
            report.selected.join(", ")
        );
    }
    Ok(())
}

/// Options of `elide bayes predict`.
#[derive(Args)]
pub struct PredictArgs {
    /// A model saved by `elide bayes fit`.
    model: PathBuf,
    /// CSV with (at least) the model's input columns; the target column, if present, is scored.
    #[arg(long)]
    data: PathBuf,
    /// Monte Carlo samples averaged.
    #[arg(long, default_value_t = 30, value_parser = super::parse::count)]
    samples: usize,
    /// Seed of the samples.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

impl Meta {
    /// Checks the metadata of a loaded model against its network: one distinct column name
    /// per network input, a valid standardisation of them, a target that is not an input, and
    /// a target scale (positive and finite) exactly for regression.
    fn check(&self, net: &SpikeSlabNet) -> Result<()> {
        let p = net.arch.inputs;
        if self.columns.len() != p {
            bail!(
                "meta.columns lists {} columns, the network reads {p} inputs",
                self.columns.len()
            );
        }
        if let Some((i, c)) = self
            .columns
            .iter()
            .enumerate()
            .find(|(i, c)| self.columns[..*i].contains(c))
        {
            bail!("meta.columns names column {c:?} twice (entry {})", i + 1);
        }
        if self.columns.contains(&self.target) {
            bail!("the target {:?} is also an input column", self.target);
        }
        self.inputs.check(p)?;
        match (net.likelihood, self.target_scale) {
            (Likelihood::Gaussian { .. }, Some((m, s)))
                if !(m.is_finite() && s > 0.0 && s.is_finite()) =>
            {
                bail!(
                    "meta.target_scale ({m}, {s}) needs a finite mean and a positive finite \
                     standard deviation"
                )
            }
            (Likelihood::Gaussian { .. }, None) => {
                bail!("a regression model without meta.target_scale")
            }
            (Likelihood::Categorical, Some(_)) => {
                bail!("a classification model with meta.target_scale")
            }
            _ => Ok(()),
        }
    }
}

/// A model saved by `elide bayes fit`, its CLI metadata checked against the network.
pub(super) fn load_model(path: &Path) -> Result<(SpikeSlabNet, Meta)> {
    let (net, desc) = io::load(path)?;
    let dp = io::description_path(path);
    let meta: Meta = serde_json::from_value(desc.meta).with_context(|| {
        format!(
            "{}: no CLI metadata (was the model saved by `elide bayes fit`?)",
            dp.display()
        )
    })?;
    meta.check(&net)
        .map_err(|e| anyhow!("{}: {e}", dp.display()))?;
    Ok((net, meta))
}

/// The model's input columns of `table`, standardised, row-major; a value the standardisation
/// takes beyond f32 is an error naming its row and column.
fn standardised_inputs(table: &Table, meta: &Meta, path: &Path) -> Result<Vec<f32>> {
    let idx = meta
        .columns
        .iter()
        .map(|c| table.column(c))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow!("{}: {e}", path.display()))?;
    let w = table.columns.len();
    let mut x: Vec<f32> = (0..table.rows)
        .flat_map(|r| idx.iter().map(move |&c| table.values[r * w + c] as f32))
        .collect();
    meta.inputs.apply(&mut x)?;
    if let Some(i) = x.iter().position(|v| !v.is_finite()) {
        let (r, c) = (i / idx.len(), i % idx.len());
        bail!(
            "{}: row {}, column {:?}: {} is too far from the training data once standardised",
            path.display(),
            r + 1,
            meta.columns[c],
            table.values[r * w + idx[c]]
        );
    }
    Ok(x)
}

/// The target column of `table`, if present, checked as `fit` checks it: labels in `0..k`
/// for classification (`k` outputs), values otherwise.
fn truth(table: &Table, meta: &Meta, k: usize, path: &Path) -> Result<Option<Targets>> {
    let Ok(t) = table.column(&meta.target) else {
        return Ok(None);
    };
    let w = table.columns.len();
    Ok(Some(match meta.target_scale {
        Some(_) => Targets::Values(
            (0..table.rows)
                .map(|r| table.values[r * w + t] as f32)
                .collect(),
        ),
        None => Targets::Labels(
            table
                .labels(t, k)
                .map_err(|e| anyhow!("{}: {e}", path.display()))?,
        ),
    }))
}

/// Predicts with a saved model; CSV on stdout, the score (if the target is present) on stderr.
/// Everything is checked before the first line is printed.
pub fn predict(a: &PredictArgs) -> Result<()> {
    let (net, meta) = load_model(&a.model)?;
    let table = Table::read(&a.data)?;
    let x = standardised_inputs(&table, &meta, &a.data)?;
    let truth = truth(&table, &meta, net.arch.outputs, &a.data)?;
    let xt = Tensor::from_vec(x, (table.rows, meta.columns.len()), &Device::Cpu)?;
    let pred = mc_predict(&net, &xt, a.samples, 0.95, a.seed)?;
    match meta.target_scale {
        Some((m, s)) => {
            println!("mean,lower95,upper95");
            let mean: Vec<f64> = pred.mean.iter().map(|v| v * s + m).collect();
            for (v, (lo, hi)) in mean.iter().zip(&pred.interval) {
                println!("{v},{},{}", lo * s + m, hi * s + m);
            }
            if let Some(Targets::Values(t)) = truth {
                eprintln!("RMSE {:.4} on {} rows", rmse(&mean, &t), t.len());
            }
        }
        None => {
            let k = pred.outputs;
            let head: Vec<String> = (0..k).map(|c| format!("p{c}")).collect();
            println!("class,{}", head.join(","));
            let classes = pred.classes();
            for (c, row) in classes.iter().zip(pred.mean.chunks(k)) {
                let ps: Vec<String> = row.iter().map(|p| format!("{p:.5}")).collect();
                println!("{c},{}", ps.join(","));
            }
            if let Some(Targets::Labels(t)) = truth {
                let ok = classes
                    .iter()
                    .zip(&t)
                    .filter(|(p, &v)| **p == v as usize)
                    .count();
                eprintln!(
                    "accuracy {:.4} on {} rows",
                    ok as f64 / t.len() as f64,
                    t.len()
                );
            }
        }
    }
    Ok(())
}
