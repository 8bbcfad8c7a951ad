//! `elide bench sbnet`: speed-up of block-sparse layers over dense across block sparsity.
use super::{masked_err, masks, ort, plot, timing, write_json};
use anyhow::Result;
use clap::Args;
use elide::kernels::conv::{Activation, Conv2d, Conv2dParams};
use elide::kernels::sparse::Mask;
use elide::kernels::{rng::SplitMix64, threads::with_threads, Tensor};
use elide::sbnet::{BlockSize, MaskPolicy, MaskWindow, Plan, SparseConv2d, SparseResidual};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use std::path::PathBuf;

/// Options of `elide bench sbnet`.
#[derive(Args)]
pub struct SbnetArgs {
    /// Worker threads for elide and ONNX Runtime (0 = all cores, at most 256).
    #[arg(long, default_value_t = 1, value_parser = crate::parse_threads, allow_negative_numbers = true)]
    threads: usize,
    /// Timed repetitions per point (the median is reported; at least 1).
    #[arg(long, default_value_t = 5, value_parser = crate::parse_reps, allow_negative_numbers = true)]
    reps: usize,
    /// Block sparsities to sweep, comma separated, each in [0, 1].
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "0,0.5,0.7,0.8,0.9,0.95,0.99",
        value_parser = parse_sparsity,
        allow_negative_numbers = true
    )]
    sparsity: Vec<f64>,
    /// Layers to run (conv64, conv128, basic64, bottleneck128), comma separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "conv64,conv128,basic64,bottleneck128"
    )]
    layers: Vec<String>,
    /// Fixed output block side instead of the automatic choice.
    #[arg(long)]
    block: Option<usize>,
    /// Write the records as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write the speed-up plot (SVG) here.
    #[arg(long, default_value = "bench/out/sbnet.svg")]
    plot: PathBuf,
}

#[derive(Serialize)]
struct Record {
    layer: String,
    input_shape: [usize; 4],
    mask: &'static str,
    sparsity: f64,
    block_sparsity: f64,
    block_size: Option<usize>,
    threads: usize,
    dense_ms: f64,
    sparse_ms: f64,
    speedup: f64,
    ort_ms: Option<f64>,
    speedup_vs_ort: Option<f64>,
    max_rel_err: f32,
}

/// A benchmarked layer: single conv or residual unit.
enum Layer {
    Conv(Box<SparseConv2d>),
    Unit(SparseResidual),
}

impl Layer {
    fn build(
        name: &str,
        rng: &mut SplitMix64,
        size: BlockSize,
    ) -> Result<(Self, [usize; 4], &'static str)> {
        let mut conv = |cin: usize, cout: usize, k: usize| -> Result<Conv2d> {
            let s = (3.0 / (cin * k * k) as f32).sqrt();
            let w = Tensor::from_vec([cout, cin, k, k], rng.vec(cout * cin * k * k, -s, s))?;
            Ok(Conv2d::new(
                &w,
                Some(&rng.vec(cout, -0.1, 0.1)),
                Conv2dParams::same(k),
                Activation::None,
            )?)
        };
        let policy = MaskPolicy {
            window: MaskWindow::Output,
            ..MaskPolicy::default()
        };
        Ok(match name {
            "conv64" => (
                Layer::Conv(Box::new(
                    SparseConv2d::new(conv(64, 64, 3)?)
                        .with_block_size(size)
                        .with_mask_policy(policy),
                )),
                [1, 64, 256, 448],
                "conv3x3",
            ),
            "conv128" => (
                Layer::Conv(Box::new(
                    SparseConv2d::new(conv(128, 128, 3)?)
                        .with_block_size(size)
                        .with_mask_policy(policy),
                )),
                [1, 128, 128, 224],
                "conv3x3",
            ),
            "basic64" => (
                Layer::Unit(
                    SparseResidual::basic(conv(64, 64, 3)?, conv(64, 64, 3)?)?
                        .with_block_size(size)
                        .with_mask_policy(policy),
                ),
                [1, 64, 256, 448],
                "basic",
            ),
            "bottleneck128" => (
                Layer::Unit(
                    SparseResidual::bottleneck(
                        conv(128, 32, 1)?,
                        conv(32, 32, 3)?,
                        conv(32, 128, 1)?,
                    )?
                    .with_block_size(size)
                    .with_mask_policy(policy),
                ),
                [1, 128, 128, 224],
                "bottleneck",
            ),
            other => {
                anyhow::bail!("unknown layer {other:?} (conv64, conv128, basic64, bottleneck128)")
            }
        })
    }

    /// Output shape (the conv's; a unit keeps its input's).
    fn out_shape(&self, shape: [usize; 4]) -> Result<[usize; 4]> {
        Ok(match self {
            Layer::Conv(c) => c.conv().out_shape(shape)?,
            Layer::Unit(_) => shape,
        })
    }

    /// Runs densely without allocating: the conv into `out`, the unit in place on `x`.
    fn dense(&self, x: &mut Tensor, out: &mut Tensor) -> Result<()> {
        match self {
            Layer::Conv(c) => c.conv().forward_into(x, out)?,
            Layer::Unit(u) => u.forward_dense_in_place(x)?,
        }
        Ok(())
    }

    /// Plans and runs sparsely: the conv onto `out` (its base), the unit in place on `x`.
    fn sparse(&self, x: &mut Tensor, mask: &Mask, out: &mut Tensor) -> Result<Plan> {
        Ok(match self {
            Layer::Conv(c) => c.forward(x, mask, out)?,
            Layer::Unit(u) => u.forward_in_place(x, mask)?,
        })
    }

    /// The result of [`Layer::dense`] or [`Layer::sparse`].
    fn result(&self, x: Tensor, out: Tensor) -> Tensor {
        match self {
            Layer::Conv(_) => out,
            Layer::Unit(_) => x,
        }
    }
}

/// `--sparsity`: a fraction in [0, 1].
fn parse_sparsity(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err("expected block sparsities in [0, 1], e.g. 0,0.5,0.9".into()),
    }
}

/// Runs the benchmark.
pub fn run(a: &SbnetArgs) -> Result<()> {
    let have_ort = ort::available();
    let size = a.block.map_or(BlockSize::Auto, BlockSize::Fixed);
    let mut rng = SplitMix64::new(3);
    let mut records: Vec<Record> = Vec::new();
    let total = a.layers.len() * (1 + masks::KINDS.len() * a.sparsity.len());
    let bar = ProgressBar::new(total as u64).with_style(ProgressStyle::with_template(
        "{msg:>24} [{bar:30}] {pos}/{len}",
    )?);
    let threads = with_threads(a.threads, elide::kernels::threads::current_threads)?;
    for name in &a.layers {
        let (layer, shape, ort_layer) = Layer::build(name, &mut rng, size)?;
        let [n, c, h, w] = shape;
        let x = Tensor::from_vec(shape, rng.vec(n * c * h * w, -1.0, 1.0))?;
        bar.set_message(format!("{name} dense"));
        let out_shape = layer.out_shape(shape)?;
        let (mut dense_out, mut sparse_out) = (Tensor::zeros(out_shape), Tensor::zeros(out_shape));
        let dense = with_threads(a.threads, || -> Result<Tensor> {
            let mut xd = x.clone();
            layer.dense(&mut xd, &mut dense_out)?;
            Ok(layer.result(xd, dense_out.clone()))
        })??;
        let ort_ms = if have_ort {
            Some(ort::time(ort_layer, shape, c, threads, a.reps)?.0)
        } else {
            None
        };
        bar.inc(1);
        for kind in masks::KINDS {
            for &s in &a.sparsity {
                bar.set_message(format!("{name} {kind} {s}"));
                let mask = masks::make(kind, [n, h, w], s, 11);
                // Dense is timed again beside every sparse point, alternating runs, so that
                // each speed-up compares the two under the same machine state.
                let (dense_ms, sparse_ms, (out, plan)) =
                    with_threads(a.threads, || -> Result<_> {
                        let (dense_ms, sparse_ms) = timing::paired_median_ms(
                            a.reps,
                            || x.clone(),
                            |mut x| layer.dense(&mut x, &mut dense_out),
                            |mut x| layer.sparse(&mut x, &mask, &mut sparse_out).map(drop),
                        )?;
                        // A fresh zero base, so the error check sees only what this plan wrote.
                        sparse_out.data_mut().fill(0.0);
                        let mut xs = x.clone();
                        let plan = layer.sparse(&mut xs, &mask, &mut sparse_out)?;
                        Ok((
                            dense_ms,
                            sparse_ms,
                            (layer.result(xs, sparse_out.clone()), plan),
                        ))
                    })??;
                let cover = plan.coverage([n, h, w]);
                records.push(Record {
                    layer: name.clone(),
                    input_shape: shape,
                    mask: kind,
                    sparsity: s,
                    block_sparsity: plan.block_sparsity(),
                    block_size: plan.block(),
                    threads,
                    dense_ms,
                    sparse_ms,
                    speedup: dense_ms / sparse_ms,
                    ort_ms,
                    speedup_vs_ort: ort_ms.map(|o| o / sparse_ms),
                    max_rel_err: masked_err(&out, &dense, &cover),
                });
                bar.inc(1);
            }
        }
    }
    bar.finish_and_clear();
    print_table(&records, threads, a.reps);
    let series: Vec<plot::Series> = a
        .layers
        .iter()
        .flat_map(|l| masks::KINDS.iter().map(move |k| (l, *k)))
        .map(|(l, k)| plot::Series {
            label: format!("{l} / {k}"),
            points: records
                .iter()
                .filter(|r| &r.layer == l && r.mask == k)
                .map(|r| (r.sparsity, r.speedup))
                .collect(),
        })
        .collect();
    plot::lines(
        &a.plot,
        &format!("SBNet speed-up over dense ({threads} thread(s))"),
        "block sparsity",
        "speed-up",
        &series,
    )?;
    println!("wrote {}", a.plot.display());
    write_json(a.json.as_deref(), &records)
}

fn print_table(records: &[Record], threads: usize, reps: usize) {
    println!("threads: {threads}; medians of {reps} runs, dense and sparse alternating per point; sparse times include reduce_mask and block-size choice");
    println!(
        "{:<14} {:<7} {:>6} {:>8} {:>6} {:>9} {:>9} {:>9} {:>8} {:>8} {:>9}",
        "layer",
        "mask",
        "target",
        "blk.sp.",
        "block",
        "dense_ms",
        "sparse_ms",
        "ort_ms",
        "speedup",
        "vs ORT",
        "rel_err"
    );
    for r in records {
        println!(
            "{:<14} {:<7} {:>6.2} {:>8.3} {:>6} {:>9.2} {:>9.2} {:>9} {:>7.2}x {:>8} {:>9.1e}",
            r.layer,
            r.mask,
            r.sparsity,
            r.block_sparsity,
            r.block_size.map_or("dense".into(), |b| b.to_string()),
            r.dense_ms,
            r.sparse_ms,
            r.ort_ms.map_or("-".into(), |v| format!("{v:.2}")),
            r.speedup,
            r.speedup_vs_ort.map_or("-".into(), |v| format!("{v:.2}x")),
            r.max_rel_err
        );
    }
}
