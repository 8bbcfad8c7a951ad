//! `elide bayes teacher`: the teacher-student experiment, students for several input
//! dimensions in parallel, a table of test error against `p` and fits against `log p` and `p`.
use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use elide_bayes::net::{Arch, MAX_ELEMENTS};
use elide_bayes::teacher::{line_fit, run_point, Teacher, TeacherConfig, TeacherPoint};
use elide_bayes::train::TrainConfig;
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use serde::Serialize;
use std::path::PathBuf;

/// Options of `elide bayes teacher`.
#[derive(Args)]
pub struct TeacherArgs {
    /// Input dimensions (the teacher reads the first --relevant of them).
    #[arg(long, value_delimiter = ',', default_value = "100,200,500,1000,2000",
          value_parser = super::parse::count)]
    dims: Vec<usize>,
    /// Replicates per dimension (each its own data and student seed).
    #[arg(long, default_value_t = 2, value_parser = super::parse::count)]
    replicates: usize,
    /// Inputs the teacher reads.
    #[arg(long, default_value_t = 5, value_parser = super::parse::count)]
    relevant: usize,
    /// The student's hidden widths.
    #[arg(long, value_delimiter = ',', default_value = "8,8",
          value_parser = super::parse::count)]
    student: Vec<usize>,
    /// Training epochs per student.
    #[arg(long, default_value_t = 2000, value_parser = super::parse::count)]
    epochs: usize,
    /// Adam learning rate.
    #[arg(
        long,
        default_value_t = 5e-3,
        value_parser = super::parse::positive,
        allow_negative_numbers = true,
    )]
    lr: f64,
    /// Training points (test: 10,000).
    #[arg(long, default_value_t = 3000, value_parser = super::parse::count)]
    n: usize,
    /// Threads (students run in parallel); 0 = all cores.
    #[arg(long, default_value_t = 0, value_parser = crate::parse_threads)]
    threads: usize,
    /// Write the configuration, the teacher and every point as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(Serialize)]
struct Fit {
    intercept: f64,
    slope: f64,
    r2: f64,
}

#[derive(Serialize)]
struct Report<'a> {
    config: &'a TeacherConfig,
    teacher: &'a Teacher,
    threads: usize,
    points: &'a [TeacherPoint],
    excess_mse_vs_ln_p: Fit,
    excess_mse_vs_p: Fit,
}

/// Every student's network and data set within the size limits, checked before any is built.
fn check_sizes(a: &TeacherArgs, n_test: usize) -> Result<()> {
    let student = a
        .student
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(",");
    for &p in &a.dims {
        let arch = Arch {
            inputs: p,
            hidden: a.student.clone(),
            outputs: 1,
            conv: None,
        };
        arch.check()
            .map_err(|e| anyhow!("{e} (set by --student {student} and --dims {p})"))?;
        let n = a.n.max(n_test);
        if n.checked_mul(p).is_none_or(|v| v > MAX_ELEMENTS) {
            bail!(
                "--dims {p}: {n} points of {p} inputs are more than 2^31 = {MAX_ELEMENTS} values"
            );
        }
    }
    Ok(())
}

/// Runs the experiment.
pub fn run(a: &TeacherArgs) -> Result<()> {
    let d = TeacherConfig::default();
    check_sizes(a, d.n_test)?;
    let cfg = TeacherConfig {
        dims: a.dims.clone(),
        relevant: a.relevant,
        student_hidden: a.student.clone(),
        n_train: a.n,
        train: TrainConfig {
            epochs: a.epochs,
            lr: a.lr,
            ..d.train
        },
        ..d
    };
    let teacher = Teacher::new(
        cfg.relevant,
        &cfg.teacher_hidden,
        cfg.edge_density,
        cfg.signal_sd,
        cfg.teacher_seed,
    )?;
    let jobs: Vec<(usize, usize)> = cfg
        .dims
        .iter()
        .flat_map(|&p| (0..a.replicates).map(move |r| (p, r)))
        .collect();
    let pool = super::pool(a.threads)?;
    let threads = pool.current_num_threads();
    let bar = ProgressBar::new(jobs.len() as u64).with_style(ProgressStyle::with_template(
        "{bar:30} {pos}/{len} students {elapsed_precise}",
    )?);
    let points: Vec<TeacherPoint> = pool.install(|| {
        jobs.par_iter()
            .map(|&(p, r)| {
                let pt = run_point(&cfg, &teacher, p, r);
                bar.inc(1);
                pt
            })
            .collect::<Result<Vec<_>, _>>()
    })?;
    bar.finish_and_clear();
    println!(
        "elide bayes teacher: teacher {:?} on {} of p inputs, output sd {}, noise {}; student p-{}-1, n = {}, {} epochs, lr {}, {} replicates, {threads} threads",
        teacher.sizes,
        cfg.relevant,
        cfg.signal_sd,
        cfg.noise,
        cfg.student_hidden.iter().map(|w| w.to_string()).collect::<Vec<_>>().join("-"),
        cfg.n_train,
        cfg.train.epochs,
        cfg.train.lr,
        a.replicates
    );
    println!(
        "{:>6} {:>7} {:>9} {:>11} {:>8} {:>6} {:>8}",
        "p", "ln p", "test RMSE", "excess MSE", "density", "FNR", "FPR"
    );
    let (mut lx, mut px, mut ys) = (Vec::new(), Vec::new(), Vec::new());
    for &p in &cfg.dims {
        let pts: Vec<&TeacherPoint> = points.iter().filter(|t| t.p == p).collect();
        let mean = |f: &dyn Fn(&TeacherPoint) -> f64| {
            pts.iter().map(|t| f(t)).sum::<f64>() / pts.len() as f64
        };
        let ex = mean(&|t| t.excess_mse);
        println!(
            "{:>6} {:>7.3} {:>9.4} {:>11.4} {:>8.4} {:>6.3} {:>8.5}",
            p,
            (p as f64).ln(),
            mean(&|t| t.scores.rmse),
            ex,
            mean(&|t| t.scores.density),
            mean(&|t| t.scores.fnr),
            mean(&|t| t.scores.fpr)
        );
        for t in &pts {
            lx.push((t.p as f64).ln());
            px.push(t.p as f64);
            ys.push(t.excess_mse);
        }
    }
    let fit = |x: &[f64]| {
        let (intercept, slope, r2) = line_fit(x, &ys);
        Fit {
            intercept,
            slope,
            r2,
        }
    };
    let (fl, fp) = (fit(&lx), fit(&px));
    println!(
        "excess MSE ~ a + b ln p: b = {:.4} per unit of ln p, R^2 = {:.3};  ~ a + b p: R^2 = {:.3}",
        fl.slope, fl.r2, fp.r2
    );
    if let Some(path) = &a.json {
        let report = Report {
            config: &cfg,
            teacher: &teacher,
            threads,
            points: &points,
            excess_mse_vs_ln_p: fl,
            excess_mse_vs_p: fp,
        };
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
