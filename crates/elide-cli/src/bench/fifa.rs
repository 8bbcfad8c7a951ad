//! `elide bench fifa`: exact Viterbi (every frame, and boundaries every `--subsample` frames as
//! the reference codes decode) versus FIFA (on frames, and on the same chunk grid) at several
//! iteration budgets, for alignment and segmentation, on a synthetic Breakfast-calibrated
//! dataset; then the scaling with `T`.
//! Every decoder runs on one thread, per video, timed with [`super::timing::median_ms`].
mod measure;
mod report;

use crate::segment::{at_least, non_negative, positive};
use anyhow::{bail, Result};
use clap::Args;
use elide_segment::fifa::FifaOptions;
use elide_segment::synth::{generate, SynthConfig};
use std::path::PathBuf;

/// Options of `elide bench fifa`.
#[derive(Args)]
pub struct FifaArgs {
    /// Training videos (they give the grammar, the length model and the class prior).
    #[arg(long, default_value_t = 120, value_parser = at_least(1))]
    train: usize,
    /// Test videos decoded and timed.
    #[arg(long, default_value_t = 12, value_parser = at_least(1))]
    test: usize,
    /// Seed of the synthetic dataset.
    #[arg(long, default_value_t = 2021)]
    seed: u64,
    /// FIFA iteration budgets (the anytime curve), comma separated.
    #[arg(long, value_delimiter = ',', default_value = "10,25,50,100,200,400")]
    iters: Vec<usize>,
    /// FIFA: transcripts decoded in segmentation.
    #[arg(long, default_value_t = 8, value_parser = at_least(1))]
    top_k: usize,
    /// FIFA segmentation: no racing of the top-k transcripts (the `-full` rows are then
    /// left out, being the same).
    #[arg(long)]
    no_race: bool,
    /// FIFA: Adam's learning rate.
    #[arg(long, default_value_t = FifaOptions::default().lr, value_parser = positive,
          allow_negative_numbers = true)]
    lr: f64,
    /// FIFA: weight of the length term.
    #[arg(long, default_value_t = FifaOptions::default().beta, value_parser = non_negative,
          allow_negative_numbers = true)]
    beta: f64,
    /// FIFA: mask sharpness (video scaled to unit length).
    #[arg(long, default_value_t = FifaOptions::default().sharpness, value_parser = positive,
          allow_negative_numbers = true)]
    sharpness: f64,
    /// FIFA: bins the frames are pooled into (0: one per frame).
    #[arg(long, default_value_t = FifaOptions::default().bins)]
    bins: usize,
    /// Divide the posteriors by the class prior of the training frames (the hybrid scores of
    /// NeuralNetwork-Viterbi). Off by default: the synthetic classifier's outputs do not
    /// carry the class frequencies, so dividing them out would only distort them.
    #[arg(long)]
    prior: bool,
    /// Frame step of the subsampled exact decoder (as the reference codes decode); at least 2,
    /// as 1 would repeat the frame-level rows under the same names.
    #[arg(long, default_value_t = 30, value_parser = at_least(2))]
    subsample: usize,
    /// Timed repetitions per video (median).
    #[arg(long, default_value_t = 3, value_parser = at_least(1))]
    reps: usize,
    /// Video lengths for the scaling measurement, comma separated (`0`: skip it); each at
    /// least the segments of the shortest grammar transcript, at most 100,000.
    #[arg(long, value_delimiter = ',', default_value = "500,1000,2000,4000,8000")]
    scaling: Vec<usize>,
    /// FIFA's iteration budget in the scaling measurement (25: the smallest budget within one
    /// MoF point of the subsampled exact decoder on seed 7, not on the benchmark's seed).
    #[arg(long, default_value_t = 25)]
    scaling_iters: usize,
    /// Write the records as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write the anytime curve (MoF against iterations) as SVG here; the scaling plot goes
    /// beside it with `-scaling` added to the name.
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Write the tables as text here.
    #[arg(long)]
    table: Option<PathBuf>,
}

/// Runs the benchmark.
pub fn run(a: &FifaArgs) -> Result<()> {
    let ds = generate(&SynthConfig {
        videos: a.train + a.test,
        train_fraction: a.train as f64 / (a.train + a.test) as f64,
        seed: a.seed,
        ..SynthConfig::default()
    })?;
    let fifa = FifaOptions {
        lr: a.lr,
        beta: a.beta,
        sharpness: a.sharpness,
        bins: a.bins,
        top_k: a.top_k,
        race: !a.no_race,
        ..FifaOptions::default()
    };
    let setup = measure::Setup::new(&ds, fifa, a.subsample, a.prior)?;
    // Before anything is timed: a bad length would otherwise fail after the whole benchmark.
    check_scaling(&a.scaling, setup.grammar.min_len())?;
    println!(
        "synthetic Breakfast-like data: {} train / {} test videos, {} grammar transcripts ({} prefix-tree nodes), T {}..{}",
        ds.train().len(),
        ds.test().len(),
        setup.grammar.transcripts().len(),
        setup.grammar.nodes().len(),
        ds.test().iter().map(|v| v.frames()).min().unwrap_or(0),
        ds.test().iter().map(|v| v.frames()).max().unwrap_or(0),
    );
    let (mut records, summary) = measure::videos(&setup, ds.test(), &a.iters, a.reps)?;
    records.extend(summary.iter().cloned());
    let scaling = measure::scaling(&setup, ds.test(), &a.scaling, a.scaling_iters, a.reps)?;
    records.extend(scaling.iter().cloned());
    let text = report::tables(&summary, &scaling, a.subsample);
    println!("{text}");
    if let Some(p) = &a.table {
        if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(p, &text)?;
        println!("wrote {}", p.display());
    }
    if let Some(p) = &a.plot {
        report::plots(p, &summary, &scaling)?;
    }
    super::write_json(a.json.as_deref(), &records)
}

/// Longest video of the scaling measurement (the exact decoder on every frame is quadratic).
const MAX_SCALING_FRAMES: usize = 100_000;

/// Every `--scaling` length (0: skipped) must hold the shortest grammar transcript, which
/// segmentation decodes at each length, and stay within [`MAX_SCALING_FRAMES`].
fn check_scaling(lengths: &[usize], shortest: usize) -> Result<()> {
    for &t in lengths.iter().filter(|&&t| t > 0) {
        if t < shortest {
            bail!(
                "--scaling {t}: the shortest grammar transcript has {shortest} segments, more \
                 than {t} frames can hold; use lengths of at least {shortest} (or 0 to skip \
                 the scaling)"
            );
        }
        if t > MAX_SCALING_FRAMES {
            bail!("--scaling {t}: at most {MAX_SCALING_FRAMES} frames");
        }
    }
    Ok(())
}
