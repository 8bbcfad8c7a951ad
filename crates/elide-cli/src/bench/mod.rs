//! `elide bench ...`: measured speed, always beside the strongest baseline on the same machine.
mod conv;
mod fifa;
pub mod masks;
mod ort;
mod plot;
mod sbnet;
pub mod timing;

use anyhow::Result;
use clap::Subcommand;
use elide::kernels::sparse::Mask;

/// The benchmarks.
#[derive(Subcommand)]
pub enum BenchCommand {
    /// SBNet: block-sparse layers versus dense and ONNX Runtime across block sparsity.
    Sbnet(sbnet::SbnetArgs),
    /// Dense convolutions versus ONNX Runtime (3x3, 1x1, depthwise 3x3).
    Conv(conv::ConvArgs),
    /// Action segmentation: exact Viterbi versus FIFA (alignment and segmentation).
    Fifa(fifa::FifaArgs),
}

/// Runs a benchmark.
pub fn run(cmd: BenchCommand) -> Result<()> {
    match cmd {
        BenchCommand::Sbnet(a) => sbnet::run(&a),
        BenchCommand::Conv(a) => conv::run(&a),
        BenchCommand::Fifa(a) => fifa::run(&a),
    }
}

/// Writes `records` as pretty JSON to `path` when given.
pub fn write_json<T: serde::Serialize>(path: Option<&std::path::Path>, records: &T) -> Result<()> {
    if let Some(p) = path {
        if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(p, serde_json::to_string_pretty(records)?)?;
        println!("wrote {}", p.display());
    }
    Ok(())
}

/// Norm-wise relative error over the pixels where `mask` (`[n, h, w]`) is set, all channels.
pub fn masked_err(got: &elide::kernels::Tensor, want: &elide::kernels::Tensor, mask: &Mask) -> f32 {
    let [n, c, _, _] = got.shape();
    let [_, h, w] = mask.shape();
    let pick = |t: &elide::kernels::Tensor| -> Vec<f32> {
        let mut v = Vec::new();
        for b in 0..n {
            let m = &mask.data()[b * h * w..(b + 1) * h * w];
            for ch in 0..c {
                v.extend(
                    t.plane(b, ch)
                        .iter()
                        .zip(m)
                        .filter(|p| *p.1 > 0.5)
                        .map(|p| *p.0),
                );
            }
        }
        v
    };
    elide::kernels::rel_err(&pick(got), &pick(want))
}
