//! `elide bench conv`: our dense kernels against ONNX Runtime, same shapes and threads.
use super::{ort, timing::median_ms, write_json};
use anyhow::Result;
use clap::Args;
use elide::kernels::conv::{Activation, Conv2d, Conv2dParams};
use elide::kernels::{rng::SplitMix64, threads::with_threads, Tensor};
use serde::Serialize;
use std::path::PathBuf;

/// Options of `elide bench conv`.
#[derive(Args)]
pub struct ConvArgs {
    /// Thread counts to measure, comma separated (0 = all cores, at most 256).
    #[arg(long, value_delimiter = ',', default_value = "1,2", value_parser = crate::parse_threads, allow_negative_numbers = true)]
    threads: Vec<usize>,
    /// Timed repetitions (the median is reported; at least 1).
    #[arg(long, default_value_t = 11, value_parser = crate::parse_reps, allow_negative_numbers = true)]
    reps: usize,
    /// Input shape N,C,H,W.
    #[arg(long, value_delimiter = ',', default_value = "1,64,256,256")]
    shape: Vec<usize>,
    /// Write the records as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(Serialize)]
struct Record {
    layer: &'static str,
    input_shape: [usize; 4],
    threads: usize,
    kernel: String,
    ms: f64,
    gflops: f64,
    ort_ms: Option<f64>,
    /// ORT time / our time: our throughput as a fraction of ORT's.
    vs_ort: Option<f64>,
}

/// Runs the benchmark.
pub fn run(a: &ConvArgs) -> Result<()> {
    let [n, c, h, w]: [usize; 4] = a
        .shape
        .as_slice()
        .try_into()
        .map_err(|_| anyhow::anyhow!("--shape needs N,C,H,W, got {:?}", a.shape))?;
    crate::checked_size("--shape", &a.shape)?;
    crate::checked_size("--shape: the 3x3 weights C x C x 3 x 3", &[c, c, 9])?;
    let mut rng = SplitMix64::new(1);
    let x = Tensor::from_vec([n, c, h, w], rng.vec(n * c * h * w, -1.0, 1.0))?;
    let have_ort = ort::available();
    let mut records = Vec::new();
    println!(
        "{:<8} {:>7} {:>12} {:>9} {:>9} {:>9} {:>8}",
        "layer", "threads", "kernel", "ms", "GFLOP/s", "ort_ms", "vs ORT"
    );
    for (layer, p) in [
        ("conv3x3", Conv2dParams::same(3)),
        ("conv1x1", Conv2dParams::new(1, 1)),
        ("dw3x3", Conv2dParams::same(3).with_groups(c)),
    ] {
        let shape = [c, c / p.groups, p.kernel[0], p.kernel[1]];
        let wt = Tensor::from_vec(shape, rng.vec(shape.iter().product(), -0.1, 0.1))?;
        let conv = Conv2d::new(&wt, Some(&vec![0.0; c]), p, Activation::None)?;
        let mut out = Tensor::zeros(conv.out_shape(x.shape())?);
        for &t in &a.threads {
            let ms = with_threads(t, || median_ms(a.reps, || conv.forward_into(&x, &mut out)))??;
            let ort_ms = if have_ort {
                Some(ort::time(layer, [n, c, h, w], c, t, a.reps)?.0)
            } else {
                None
            };
            let r = Record {
                layer,
                input_shape: [n, c, h, w],
                threads: t,
                kernel: format!("{:?}", conv.kernel_for(h, w)),
                ms,
                gflops: 2.0 * (conv.macs(h, w)? * n as u64) as f64 / ms / 1e6,
                ort_ms,
                vs_ort: ort_ms.map(|o| o / ms),
            };
            let opt = |v: Option<f64>, d: usize| v.map_or("-".into(), |v| format!("{v:.d$}"));
            println!(
                "{:<8} {:>7} {:>12} {:>9.2} {:>9.1} {:>9} {:>8}",
                r.layer,
                t,
                r.kernel,
                r.ms,
                r.gflops,
                opt(r.ort_ms, 2),
                opt(r.vs_ort, 2)
            );
            records.push(r);
        }
    }
    write_json(a.json.as_deref(), &records)
}
