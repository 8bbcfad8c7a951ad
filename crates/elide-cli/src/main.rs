//! `elide`: the command line. `elide demo` runs the embedded default; `elide bench ...` measures.
mod bayes;
mod bench;
mod demo;
mod model;
mod onnx_test;
mod segment;

use clap::{Parser, Subcommand};

/// elide: neural-network inference that skips the work that does not matter.
#[derive(Parser)]
#[command(name = "elide", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a seeded ResNet-style backbone densely and block-sparsely under a realistic mask.
    Demo(demo::DemoArgs),
    /// Measure elide against its dense path and ONNX Runtime.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Decode frame-wise probabilities into action segments (exact Viterbi or FIFA).
    Segment(segment::SegmentArgs),
    /// Show an ONNX model's layers: op, output shape, parameters and MACs per node, totals.
    Inspect(model::InspectArgs),
    /// Run an ONNX model on an image, a directory or a .npy: outputs (top-k, PNG maps), latency,
    /// dense and masked (--mask, --mask-auto).
    Run(model::RunArgs),
    /// Run ONNX test folders (model.onnx + test_data_set_*) and compare with their outputs,
    /// as ONNX Runtime's onnx_test_runner does: pass / fail / error / unsupported per folder.
    OnnxTest(onnx_test::OnnxTestArgs),
    /// Sparse networks by variational Bayes: simulate, fit, predict, bench.
    #[command(subcommand)]
    Bayes(bayes::BayesCommand),
}

/// The most worker threads a `--threads` flag takes: far above any core count this runs on, and
/// low enough that spawning the pool stays quick (a pool of 100,000 threads never finished).
pub const MAX_THREADS: usize = 256;

/// The most values one tensor that a size flag asks for may hold: 2^28 f32 = 1 GiB.
pub const MAX_VALUES: usize = 1 << 28;

/// `--threads`: 0 (all cores) up to [`MAX_THREADS`].
pub fn parse_threads(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(t) if t <= MAX_THREADS => Ok(t),
        _ => Err(format!(
            "expected a thread count from 0 (all cores) to {MAX_THREADS}"
        )),
    }
}

/// `--reps`: at least 1.
pub fn parse_reps(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(r) if r >= 1 => Ok(r),
        _ => Err("expected a whole number of repetitions, at least 1".into()),
    }
}

/// The number of values in a tensor of `shape`, when every dimension is at least 1 and the
/// product is at most [`MAX_VALUES`]; otherwise an error naming `what` (a flag) and the shape.
pub fn checked_size(what: &str, shape: &[usize]) -> anyhow::Result<usize> {
    anyhow::ensure!(
        shape.iter().all(|&d| d >= 1),
        "{what} {shape:?}: every dimension must be at least 1"
    );
    match shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)) {
        Some(n) if n <= MAX_VALUES => Ok(n),
        n => anyhow::bail!(
            "{what} {shape:?} holds {} values; at most {MAX_VALUES} (1 GiB of f32) are allowed",
            n.map_or_else(|| "more than 2^64".to_string(), |n| n.to_string())
        ),
    }
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Demo(args) => demo::run(&args),
        Command::Bench(cmd) => bench::run(cmd),
        Command::Segment(args) => segment::run(&args),
        Command::Inspect(args) => model::inspect(&args),
        Command::Run(args) => model::run(&args),
        Command::OnnxTest(args) => onnx_test::run(&args),
        Command::Bayes(cmd) => bayes::run(cmd),
    }
}
