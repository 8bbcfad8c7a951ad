//! `elide bayes bench`: the sparse-weight layer exported from a posterior (CSR, `phi > 0.5`)
//! against the dense `gemm` layer of the same shape, timed alternately (median of `reps`).
use crate::bench::timing::paired_median_ms;
use anyhow::{Context, Result};
use clap::Args;
use elide_bayes::rng::Rng;
use elide_bayes::sparse::{kernel, CsrMatrix, DenseLayer, SparseLayer};
use serde::Serialize;
use std::path::PathBuf;

/// Options of `elide bayes bench`.
#[derive(Args)]
pub struct BenchArgs {
    /// Layer outputs x inputs.
    #[arg(long, default_value = "1024x1024")]
    shape: String,
    /// Weight sparsities (fraction of weights dropped).
    #[arg(long, value_delimiter = ',', default_value = "0.5,0.8,0.9,0.95,0.98")]
    sparsity: Vec<f64>,
    /// Batch sizes (rows per call).
    #[arg(long, value_delimiter = ',', default_value = "1,16,64,256")]
    batch: Vec<usize>,
    /// Thread counts.
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    threads: Vec<usize>,
    /// Timed repetitions per point (median).
    #[arg(long, default_value_t = 31)]
    reps: usize,
    /// Write the records as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(Serialize)]
struct Record {
    outputs: usize,
    inputs: usize,
    sparsity: f64,
    batch: usize,
    threads: usize,
    kernel: &'static str,
    dense_ms: f64,
    sparse_ms: f64,
    speedup: f64,
    max_rel_err: f64,
}

/// Runs the benchmark.
pub fn run(a: &BenchArgs) -> Result<()> {
    let (m, k) = a
        .shape
        .split_once('x')
        .and_then(|(m, k)| Some((m.parse::<usize>().ok()?, k.parse::<usize>().ok()?)))
        .with_context(|| format!("--shape {:?} is not OUTxIN", a.shape))?;
    let mut r = Rng::new(1);
    let dense_w: Vec<f32> = (0..m * k).map(|_| r.normal() as f32 * 0.05).collect();
    let bias: Vec<f32> = (0..m).map(|_| r.normal() as f32 * 0.1).collect();
    let mut recs = Vec::new();
    println!(
        "sparse layer (CSR, kernel {}) vs dense gemm layer, {m}x{k}, ReLU, median of {}",
        kernel::name(),
        a.reps
    );
    println!(
        "{:>8} {:>6} {:>7} {:>10} {:>10} {:>8} {:>10}",
        "sparsity", "batch", "threads", "dense ms", "sparse ms", "speedup", "max_rel_err"
    );
    for &sp in &a.sparsity {
        let keep: Vec<bool> = (0..m * k).map(|_| r.uniform() >= sp).collect();
        let csr = CsrMatrix::from_dense(&dense_w, m, k, |o, j| keep[o * k + j])?;
        let sparse = SparseLayer {
            weight: csr,
            bias: bias.clone(),
            relu: true,
        };
        let dense = DenseLayer::from_sparse(&sparse);
        for &b in &a.batch {
            let x: Vec<f32> = (0..k * b).map(|_| r.normal() as f32).collect();
            for &t in &a.threads {
                let pool = super::pool(t)?;
                let (mut yd, mut ys) = (vec![0.0f32; m * b], vec![0.0f32; m * b]);
                let (dms, sms) = pool.install(|| {
                    paired_median_ms(
                        a.reps,
                        || (),
                        |_| dense.forward(&x, b, &mut yd),
                        |_| sparse.forward(&x, b, &mut ys),
                    )
                })?;
                let scale = yd.iter().fold(0f32, |s, v| s.max(v.abs())).max(1e-30);
                let err = yd
                    .iter()
                    .zip(&ys)
                    .fold(0f32, |e, (d, s)| e.max((d - s).abs()))
                    / scale;
                let rec = Record {
                    outputs: m,
                    inputs: k,
                    sparsity: sparse.weight.sparsity(),
                    batch: b,
                    threads: t,
                    kernel: kernel::name(),
                    dense_ms: dms,
                    sparse_ms: sms,
                    speedup: dms / sms,
                    max_rel_err: err as f64,
                };
                println!(
                    "{:>8.3} {:>6} {:>7} {:>10.4} {:>10.4} {:>8.2} {:>10.1e}",
                    rec.sparsity, b, t, dms, sms, rec.speedup, rec.max_rel_err
                );
                recs.push(rec);
            }
        }
    }
    if let Some(p) = &a.json {
        std::fs::write(p, serde_json::to_string_pretty(&recs)?)
            .with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(())
}
