//! `elide`: the command line. `elide demo` runs the embedded default; `elide bench ...` measures.
mod bayes;
mod bench;
mod demo;
mod model;
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
    /// Sparse networks by variational Bayes: simulate, fit, predict, bench.
    #[command(subcommand)]
    Bayes(bayes::BayesCommand),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Demo(args) => demo::run(&args),
        Command::Bench(cmd) => bench::run(cmd),
        Command::Segment(args) => segment::run(&args),
        Command::Inspect(args) => model::inspect(&args),
        Command::Run(args) => model::run(&args),
        Command::Bayes(cmd) => bayes::run(cmd),
    }
}
