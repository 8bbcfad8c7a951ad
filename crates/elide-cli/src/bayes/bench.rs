//! `elide bayes bench`: the sparse-weight layer exported from a posterior (CSR, `phi > 0.5`)
//! against the dense `gemm` layer of the same shape, timed alternately (median of `reps`);
//! and the same layer as an ONNX Gemm + Relu run by the graph engine (`elide run`'s path:
//! row-major input, the CSR rewrite where it applies, the input copied into each run).
use crate::bench::timing::{median_ms_setup, paired_median_ms};
use anyhow::{bail, Context, Result};
use clap::Args;
use elide_bayes::net::MAX_ELEMENTS;
use elide_bayes::rng::Rng;
use elide_bayes::sparse::{kernel, CsrMatrix, DenseLayer, SparseLayer};
use elide_graph::onnx::{
    self,
    write::{attr_int, Dim, ModelWriter},
};
use elide_graph::{optimize, Graph, Value};
use serde::Serialize;
use std::path::PathBuf;

/// Options of `elide bayes bench`.
#[derive(Args)]
pub struct BenchArgs {
    /// Layer outputs x inputs.
    #[arg(long, default_value = "1024x1024")]
    shape: String,
    /// Weight sparsities (fraction of weights dropped, each in [0, 1]).
    #[arg(long, value_delimiter = ',', default_value = "0.5,0.8,0.9,0.95,0.98",
          value_parser = super::parse::fraction, allow_negative_numbers = true)]
    sparsity: Vec<f64>,
    /// Batch sizes (rows per call).
    #[arg(long, value_delimiter = ',', default_value = "1,16,64,256",
          value_parser = super::parse::count)]
    batch: Vec<usize>,
    /// Thread counts.
    #[arg(long, value_delimiter = ',', default_value = "1,2", value_parser = crate::parse_threads)]
    threads: Vec<usize>,
    /// Timed repetitions per point (median).
    #[arg(long, default_value_t = 31, value_parser = super::parse::count)]
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
    /// The layer as an ONNX model through the graph engine (CSR where the rewrite chose it).
    graph_ms: f64,
    /// Whether the graph ran this batch in CSR (else its dense Gemm).
    graph_csr: bool,
    graph_max_rel_err: f64,
}

/// The layer as a one-Gemm (+ Relu) ONNX model, loaded and optimised.
fn layer_graph(s: &SparseLayer) -> Result<Graph> {
    let (m, k) = (s.weight.rows, s.weight.cols);
    let mut w = ModelWriter::new("bench", 13);
    w.input("x", &[Dim::Named("N".into()), Dim::Fixed(k)]);
    w.initializer("w", &[m, k], &s.weight.to_dense())?;
    w.initializer("b", &[m], &s.bias)?;
    w.node(
        "Gemm",
        &["x", "w", "b"],
        &["h"],
        vec![attr_int("transB", 1)],
    );
    w.node("Relu", &["h"], &["y"], vec![]);
    w.output("y", &[Dim::Named("N".into()), Dim::Fixed(m)]);
    let mut g = onnx::from_bytes(&w.to_bytes())?;
    optimize::optimize(&mut g)?;
    Ok(g)
}

/// Max |a - b| over max |b|; NaN when any difference is NaN (`f32::max` would skip it).
fn rel_err(a: impl Iterator<Item = f32>, b: &[f32]) -> f64 {
    let scale = b.iter().fold(0f32, |s, v| s.max(v.abs())).max(1e-30);
    let worst = a.zip(b).fold(0f32, |e, (x, y)| {
        let d = (x - y).abs();
        if d.is_nan() || e.is_nan() {
            f32::NAN
        } else {
            e.max(d)
        }
    });
    (worst / scale) as f64
}

/// `--shape OUTxIN` and the batches checked: sizes >= 1, and the weights and every batch's
/// inputs and outputs at most [`MAX_ELEMENTS`] values.
fn shape(a: &BenchArgs) -> Result<(usize, usize)> {
    let (m, k) = a
        .shape
        .split_once('x')
        .and_then(|(m, k)| {
            Some((
                m.trim().parse::<usize>().ok()?,
                k.trim().parse::<usize>().ok()?,
            ))
        })
        .with_context(|| format!("--shape {:?} is not OUTxIN (e.g. 1024x1024)", a.shape))?;
    if m == 0 || k == 0 {
        bail!("--shape {}: outputs and inputs must be at least 1", a.shape);
    }
    let fits = |a: usize, b: usize| a.checked_mul(b).is_some_and(|v| v <= MAX_ELEMENTS);
    if !fits(m, k) {
        bail!(
            "--shape {}: more than 2^31 = {MAX_ELEMENTS} weights",
            a.shape
        );
    }
    if let Some(b) = a.batch.iter().find(|&&b| !fits(m.max(k), b)) {
        bail!(
            "--batch {b} with --shape {}: more than 2^31 = {MAX_ELEMENTS} values per batch",
            a.shape
        );
    }
    Ok((m, k))
}

/// Runs the benchmark.
pub fn run(a: &BenchArgs) -> Result<()> {
    let (m, k) = shape(a)?;
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
        "{:>8} {:>6} {:>7} {:>10} {:>10} {:>8} {:>10} {:>10} {:>8} {:>6}",
        "sparsity",
        "batch",
        "threads",
        "dense ms",
        "sparse ms",
        "speedup",
        "max_rel_err",
        "graph ms",
        "vs dense",
        "csr"
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
        let graph = layer_graph(&sparse)?;
        let csr_node = graph.nodes.iter().find_map(|n| match &n.op {
            elide_graph::ops::Op::SparseLinear(s) => Some(s.clone()),
            _ => None,
        });
        for &b in &a.batch {
            let x: Vec<f32> = (0..k * b).map(|_| r.normal() as f32).collect();
            let x_rows = Value::f32(&[b, k], elide::kernels::csr::transpose(&x, k, b)?)?;
            for &t in &a.threads {
                let pool = super::pool(t)?;
                let (mut yd, mut ys) = (vec![0.0f32; m * b], vec![0.0f32; m * b]);
                let (dms, sms) = pool.install(|| {
                    paired_median_ms(
                        a.reps,
                        || (),
                        |_| dense.forward(&x, b, &mut yd),
                        |_| sparse.forward(&x, b, &mut ys).map_err(Into::into),
                    )
                })?;
                let err = rel_err(ys.iter().copied(), &yd);
                let mut yg = None;
                let gms = pool.install(|| {
                    median_ms_setup(
                        a.reps,
                        || vec![x_rows.clone()],
                        |v| -> Result<()> {
                            yg = Some(graph.run(v)?.remove(0));
                            Ok(())
                        },
                    )
                })?;
                let yg = yg.context("the graph ran")?;
                let yg = yg.as_f32().context("f32 output")?;
                // The graph's [b, m] rows against the layer's feature-major [m, b].
                let g_err = rel_err(
                    (0..m * b).map(|e| yg.as_slice().map_or(f32::NAN, |s| s[(e % b) * m + e / b])),
                    &yd,
                );
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
                    max_rel_err: err,
                    graph_ms: gms,
                    graph_csr: csr_node.as_ref().is_some_and(|s| s.uses_csr(b)),
                    graph_max_rel_err: g_err,
                };
                println!(
                    "{:>8.3} {:>6} {:>7} {:>10.4} {:>10.4} {:>8.2} {:>10.1e} {:>10.4} {:>8.2} {:>6}",
                    rec.sparsity, b, t, dms, sms, rec.speedup, rec.max_rel_err,
                    gms, dms / gms, rec.graph_csr
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
