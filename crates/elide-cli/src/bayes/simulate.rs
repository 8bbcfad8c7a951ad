//! `elide bayes simulate`: the papers' simulation, replicates in parallel, a table per
//! replicate and a summary.
use anyhow::{Context, Result};
use clap::Args;
use elide_bayes::search::Grid;
use elide_bayes::simulate::{run_replicate, Replicate, SimConfig};
use elide_bayes::train::TrainConfig;
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use serde::Serialize;
use std::path::PathBuf;

/// Options of `elide bayes simulate`.
#[derive(Args)]
pub struct SimulateArgs {
    /// Replicates (each its own data and seed).
    #[arg(long, default_value_t = 10, value_parser = super::parse::count)]
    replicates: usize,
    /// Training epochs per replicate (the authors' code: 7000).
    #[arg(long, default_value_t = 7000, value_parser = super::parse::count)]
    epochs: usize,
    /// Adam learning rate (the authors' code: 5e-3).
    #[arg(
        long,
        default_value_t = 5e-3,
        value_parser = super::parse::positive,
        allow_negative_numbers = true,
    )]
    lr: f64,
    /// Minibatch size.
    #[arg(long, default_value_t = 512, value_parser = super::parse::count)]
    batch: usize,
    /// Slab standard deviation sigma0.
    #[arg(
        long,
        default_value_t = 1.3,
        value_parser = super::parse::positive,
        allow_negative_numbers = true,
    )]
    sigma0: f64,
    /// delta in the theory's lambda.
    #[arg(
        long,
        default_value_t = 0.1,
        value_parser = super::parse::non_negative,
        allow_negative_numbers = true,
    )]
    delta: f64,
    /// KL warm-up epochs (the KL's weight rises linearly to 1; 0 = none, as in the paper).
    #[arg(long, default_value_t = 0)]
    kl_warmup: usize,
    /// Epochs with no KL at all before the warm-up (0 = none, as in the paper).
    #[arg(long, default_value_t = 0)]
    kl_delay: usize,
    /// Learning rate of the inclusion logits theta, relative to --lr (1 = the paper's code).
    #[arg(
        long,
        default_value_t = 1.0,
        value_parser = super::parse::positive,
        allow_negative_numbers = true,
    )]
    theta_lr_scale: f64,
    /// Initial inclusion probability of every weight and bias (the authors' code: 0.99). Not
    /// in the paper; for choosing settings on other seeds.
    #[arg(
        long,
        default_value_t = 0.99,
        value_parser = super::parse::probability,
        allow_negative_numbers = true,
    )]
    init_phi: f64,
    /// Seed offset of the data and training (0 = the reported runs; use another to choose
    /// settings).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// The adaptive search instead of the fixed 200-7-7-7-1 network: per replicate, fit every
    /// structure of --search-layers x --search-widths and keep the largest ELBO.
    #[arg(long)]
    search: bool,
    /// With --search: the candidate depths.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "1,2,3",
        requires = "search",
        value_parser = super::parse::layers
    )]
    search_layers: Vec<usize>,
    /// With --search: the candidate widths.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "7,14,28",
        requires = "search",
        value_parser = super::parse::count
    )]
    search_widths: Vec<usize>,
    /// Fit each structure this many times from different random starts and keep the largest
    /// ELBO (with --search, or of the fixed 200-7-7-7-1 network).
    #[arg(long, default_value_t = 1,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    restarts: usize,
    /// With --search or --restarts: Monte Carlo samples of each candidate's final ELBO.
    #[arg(long, default_value_t = 10,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    elbo_samples: usize,
    /// Threads (replicates run in parallel); 0 = all cores.
    #[arg(long, default_value_t = 0, value_parser = crate::parse_threads)]
    threads: usize,
    /// Write every replicate and the summary as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(Serialize)]
struct Summary {
    replicates: usize,
    rmse_mean: f64,
    rmse_sd: f64,
    density_mean: f64,
    fnr_mean: f64,
    fpr_mean: f64,
    exact_selection: usize,
    rmse_within_5pct: usize,
    seconds_per_replicate: f64,
}

#[derive(Serialize)]
struct Report<'a> {
    config: &'a SimConfig,
    threads: usize,
    replicates: &'a [Replicate],
    summary: Summary,
}

fn mean_sd(v: &[f64]) -> (f64, f64) {
    let n = v.len().max(1) as f64;
    let m = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (m, var.sqrt())
}

/// Runs the simulation.
pub fn run(a: &SimulateArgs) -> Result<()> {
    let defaults = SimConfig::default();
    let cfg = SimConfig {
        sigma0: a.sigma0,
        delta: a.delta,
        train: TrainConfig {
            epochs: a.epochs,
            lr: a.lr,
            batch_size: a.batch,
            kl_warmup: a.kl_warmup,
            kl_delay: a.kl_delay,
            theta_lr_scale: a.theta_lr_scale,
            ..defaults.train
        },
        seed_offset: a.seed,
        init_phi: a.init_phi,
        search: match (a.search, a.restarts) {
            (false, 1) => None,
            (true, r) => Some((
                Grid::new(a.search_layers.clone(), a.search_widths.clone())?.with_restarts(r)?,
                a.elbo_samples,
            )),
            // Restarts of the fixed 200-7-7-7-1 structure.
            (false, r) => Some((
                Grid::new(vec![3], vec![7])?.with_restarts(r)?,
                a.elbo_samples,
            )),
        },
        ..defaults
    };
    let pool = super::pool(a.threads)?;
    let threads = pool.current_num_threads();
    // The search fits its candidates in parallel with no per-epoch progress: count replicates.
    let (len, unit) = match cfg.search {
        Some(_) => (a.replicates, "replicates"),
        None => (a.replicates * a.epochs, "epochs"),
    };
    let bar = ProgressBar::new(len as u64).with_style(ProgressStyle::with_template(&format!(
        "{{bar:30}} {{pos}}/{{len}} {unit} {{elapsed_precise}} {{msg}}"
    ))?);
    let reps: Vec<Replicate> = pool.install(|| {
        (0..a.replicates)
            .into_par_iter()
            .map(|i| {
                let r = run_replicate(&cfg, i, |s| {
                    bar.inc(1);
                    if s.epoch % 50 == 0 {
                        bar.set_message(format!(
                            "rep {i}: ELBO {:.0}, density {:.3}",
                            s.elbo, s.density
                        ));
                    }
                });
                if cfg.search.is_some() {
                    bar.inc(1);
                }
                r
            })
            .collect::<Result<Vec<_>, _>>()
    })?;
    bar.finish_and_clear();
    println!(
        "elide bayes simulate: {} replicates, {} epochs, lr {}, batch {}, KL off {} + warm-up {} epochs, theta lr x{}, seed offset {}, {threads} threads",
        a.replicates, a.epochs, a.lr, a.batch, a.kl_delay, a.kl_warmup, a.theta_lr_scale, a.seed
    );
    if let Some((g, s)) = &cfg.search {
        println!(
            "adaptive search: depths {:?} x widths {:?}, {} start(s) each, chosen by the full-data ELBO ({s} samples)",
            g.layers, g.widths, g.restarts
        );
    }
    println!(
        "{:>4} {:>8} {:>10} {:>8} {:>6} {:>8}  {:<12} selected",
        "rep", "rmse", "train_rmse", "density", "fnr", "fpr", "hidden"
    );
    for r in &reps {
        println!(
            "{:>4} {:>8.4} {:>10.4} {:>8.4} {:>6.2} {:>8.4}  {:<12} {:?}",
            r.index,
            r.rmse,
            r.train_rmse,
            r.density,
            r.fnr,
            r.fpr,
            format!("{:?}", r.hidden),
            r.selected
        );
    }
    for r in reps.iter().filter(|r| r.grid.is_some()) {
        println!("rep {} grid (ELBO, density):", r.index);
        for c in r.grid.iter().flatten() {
            println!(
                "  {} x {:<3} start {} ELBO {:>10.1}  q(s) {:.3}  density {:.4}  selected {:?}",
                c.layers, c.width, c.restart, c.elbo.elbo, c.weight, c.density, c.selected
            );
        }
    }
    let col = |f: fn(&Replicate) -> f64| reps.iter().map(f).collect::<Vec<_>>();
    let (rm, rs) = mean_sd(&col(|r| r.rmse));
    let summary = Summary {
        replicates: reps.len(),
        rmse_mean: rm,
        rmse_sd: rs,
        density_mean: mean_sd(&col(|r| r.density)).0,
        fnr_mean: mean_sd(&col(|r| r.fnr)).0,
        fpr_mean: mean_sd(&col(|r| r.fpr)).0,
        exact_selection: reps.iter().filter(|r| r.fnr == 0.0 && r.fpr == 0.0).count(),
        rmse_within_5pct: reps.iter().filter(|r| r.rmse <= 1.05).count(),
        seconds_per_replicate: mean_sd(&col(|r| r.seconds)).0,
    };
    println!();
    println!("{:<28} {:>16} {:>10}", "", "elide (here)", "goal");
    println!(
        "{:<28} {:>9.4} ± {:.4} {:>10}",
        "test RMSE (noise floor 1.0)", rm, rs, "<= 1.05"
    );
    println!(
        "{:<28} {:>16.4} {:>10}",
        "density (phi > 0.5)", summary.density_mean, ""
    );
    println!("{:<28} {:>16.4} {:>10}", "FNR", summary.fnr_mean, "0");
    println!("{:<28} {:>16.4} {:>10}", "FPR", summary.fpr_mean, "0");
    println!(
        "{:<28} {:>13}/{:<2} {:>10}",
        "replicates FNR = FPR = 0",
        summary.exact_selection,
        reps.len(),
        ">= 90%"
    );
    println!(
        "{:<28} {:>13}/{:<2}",
        "replicates RMSE <= 1.05",
        summary.rmse_within_5pct,
        reps.len()
    );
    println!("paper's numbers: not printed — the paper's table was not found in the library available here (see README).");
    if let Some(path) = &a.json {
        let report = Report {
            config: &cfg,
            threads,
            replicates: &reps,
            summary,
        };
        let text = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
