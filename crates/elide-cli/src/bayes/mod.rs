//! `elide bayes ...`: sparse networks by variational Bayes (spike-and-slab, Bai, Song & Cheng).
mod bench;
mod export;
mod fit;
mod fit_idx;
mod simulate;
mod teacher;

use anyhow::Result;
use clap::Subcommand;

/// The `bayes` verbs.
#[derive(Subcommand)]
pub enum BayesCommand {
    /// The papers' simulation (200 inputs, 5 relevant, 200-7-7-7-1): RMSE, density, FNR, FPR.
    Simulate(simulate::SimulateArgs),
    /// The teacher-student experiment: a sparse teacher network, students for growing input
    /// dimension p; test error against log p.
    Teacher(teacher::TeacherArgs),
    /// Fit a spike-and-slab network to a CSV file or MNIST-style IDX files (--idx); saves
    /// safetensors + JSON.
    Fit(fit::FitArgs),
    /// Predict with a saved model on a CSV file (means, 95% intervals or class probabilities).
    Predict(fit::PredictArgs),
    /// The exported sparse layer (CSR kernel) against the dense gemm layer of the same shape.
    Bench(bench::BenchArgs),
    /// Write a saved model's posterior network (phi > 0.5, at the means) as ONNX, for
    /// `elide run` (mostly zero weights run in CSR) or any ONNX runtime.
    Export(export::ExportArgs),
}

/// Runs a `bayes` verb.
pub fn run(cmd: BayesCommand) -> Result<()> {
    match cmd {
        BayesCommand::Simulate(a) => simulate::run(&a),
        BayesCommand::Teacher(a) => teacher::run(&a),
        BayesCommand::Fit(a) => fit::fit(&a),
        BayesCommand::Predict(a) => fit::predict(&a),
        BayesCommand::Bench(a) => bench::run(&a),
        BayesCommand::Export(a) => export::run(&a),
    }
}

/// A rayon pool of `threads` threads (0: all cores).
fn pool(threads: usize) -> Result<rayon::ThreadPool> {
    Ok(rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()?)
}
