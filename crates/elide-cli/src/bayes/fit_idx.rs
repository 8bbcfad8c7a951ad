//! `elide bayes fit --idx DIR`: a spike-and-slab classifier on MNIST-style IDX files (e.g.
//! Fashion-MNIST), scored on the test files, optionally against the dense network of the same
//! architecture trained the same way.
use super::fit::{fit_network, FitArgs, Fitted, Meta};
use anyhow::{bail, Result};
use candle_core::DType;
use elide_bayes::data::{Dataset, Standardizer, Targets};
use elide_bayes::dense::{dense_accuracy, train_dense, DenseNet};
use elide_bayes::idx::load_mnist_dir;
use elide_bayes::predict::predict as mc_predict;
use elide_bayes::search::Candidate;
use elide_bayes::select::density;
use elide_bayes::train::TrainConfig;
use elide_bayes::{io, Init, Likelihood};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Serialize)]
struct DenseReport {
    test_accuracy: f64,
    density: f64,
    seconds: f64,
}

#[derive(Serialize)]
struct IdxReport {
    model: PathBuf,
    train_rows: usize,
    test_rows: usize,
    inputs: usize,
    /// Output channels of the conv front's stages (3x3, stride 2), if any.
    conv: Vec<usize>,
    hidden: Vec<usize>,
    epochs: usize,
    batch: usize,
    lr: f64,
    lambda: f64,
    elbo: f64,
    density: f64,
    sparsity: f64,
    test_accuracy: f64,
    seconds: f64,
    dense: Option<DenseReport>,
    /// With --search: every candidate (the chosen one is `hidden`).
    search: Option<Vec<Candidate>>,
    /// Per epoch: density (phi > 0.5) and training accuracy of the sampled networks.
    history: Vec<(f64, f64)>,
}

fn accuracy(pred: &[usize], data: &Dataset) -> f64 {
    let Targets::Labels(l) = &data.targets else {
        return f64::NAN;
    };
    let ok = pred
        .iter()
        .zip(l)
        .filter(|(p, &t)| **p == t as usize)
        .count();
    ok as f64 / l.len().max(1) as f64
}

fn truncate(d: Dataset, limit: usize) -> Result<Dataset> {
    if limit == 0 || limit >= d.n {
        return Ok(d);
    }
    let Targets::Labels(l) = d.targets else {
        bail!("IDX data without labels");
    };
    Ok(Dataset::new(
        limit,
        d.p,
        d.x[..limit * d.p].to_vec(),
        Targets::Labels(l[..limit].to_vec()),
        10,
    )?)
}

fn bar(epochs: usize, what: &str) -> Result<ProgressBar> {
    Ok(
        ProgressBar::new(epochs as u64).with_style(ProgressStyle::with_template(&format!(
            "{what} {{bar:30}} {{pos}}/{{len}} epochs {{msg}}"
        ))?),
    )
}

/// Fits (and, with `--dense`, compares) on the IDX files in `dir`.
pub fn fit_idx(a: &FitArgs, dir: &Path) -> Result<()> {
    if a.classes.is_some_and(|k| k != 10) {
        bail!("--idx data has 10 classes");
    }
    let (train_set, test_set) = load_mnist_dir(dir)?;
    let train_set = truncate(train_set, a.train_limit)?;
    // MNIST-style files hold square single-channel images.
    let side = (train_set.p as f64).sqrt().round() as usize;
    let image = (side * side == train_set.p).then_some([1, side, side]);
    let t0 = Instant::now();
    let Fitted {
        net,
        history: hist,
        lambda,
        grid,
    } = fit_network(a, &train_set, 10, Likelihood::Categorical, image)?;
    let arch = net.arch.clone();
    let cfg = TrainConfig {
        epochs: a.epochs,
        batch_size: a.batch,
        lr: a.lr,
        seed: a.seed,
        ..Default::default()
    };
    let pred = mc_predict(&net, &test_set.x_tensor(DType::F32)?, 30, 0.95, a.seed ^ 7)?;
    let test_accuracy = accuracy(&pred.classes(), &test_set);
    let seconds = t0.elapsed().as_secs_f64();
    let dens = density(&net)?;
    let meta = Meta {
        target: "label".into(),
        columns: (0..train_set.p).map(|i| format!("px{i}")).collect(),
        inputs: Standardizer {
            mean: vec![0.0; train_set.p],
            std: vec![255.0; train_set.p],
        },
        target_scale: None,
    };
    io::save(&net, &a.out, serde_json::to_value(&meta)?)?;
    let dense = if a.dense {
        let t1 = Instant::now();
        let dn = DenseNet::new(
            arch.clone(),
            Likelihood::Categorical,
            &Init::default(),
            a.seed,
        )?;
        let pb = bar(a.epochs, "dense")?;
        train_dense(&dn, &train_set, &cfg, |_, loss| {
            pb.inc(1);
            pb.set_message(format!("NLL {loss:.0}"));
        })?;
        pb.finish_and_clear();
        Some(DenseReport {
            test_accuracy: dense_accuracy(&dn, &test_set)?,
            density: dn.density()?,
            seconds: t1.elapsed().as_secs_f64(),
        })
    } else {
        None
    };
    let report = IdxReport {
        model: a.out.clone(),
        train_rows: train_set.n,
        test_rows: test_set.n,
        inputs: train_set.p,
        conv: a.conv.clone(),
        hidden: arch.hidden.clone(),
        search: grid,
        epochs: a.epochs,
        batch: a.batch,
        lr: a.lr,
        lambda,
        elbo: hist.last().map_or(f64::NAN, |h| h.elbo),
        history: hist
            .iter()
            .map(|h| (h.density, h.accuracy.unwrap_or(f64::NAN)))
            .collect(),
        density: dens,
        sparsity: 1.0 - dens,
        test_accuracy,
        seconds,
        dense,
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "{}: {} training / {} test images, {} inputs, hidden {:?}, {} epochs, lambda {:.3e}",
            dir.display(),
            report.train_rows,
            report.test_rows,
            report.inputs,
            report.hidden,
            report.epochs,
            lambda
        );
        println!(
            "spike-and-slab: test accuracy {:.4}, weight sparsity (phi <= 0.5) {:.4}, {:.0} s; saved {}",
            test_accuracy,
            report.sparsity,
            seconds,
            a.out.display()
        );
        if let Some(d) = &report.dense {
            println!(
                "dense (same architecture and training, no prior): test accuracy {:.4}, {:.0} s",
                d.test_accuracy, d.seconds
            );
            println!(
                "difference {:+.2} points at {:.1}% sparsity (goal: within 1 point at >= 90%)",
                100.0 * (test_accuracy - d.test_accuracy),
                100.0 * report.sparsity
            );
        }
    }
    Ok(())
}
