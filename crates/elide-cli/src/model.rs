//! `elide inspect MODEL` and `elide run MODEL`: imported ONNX models, dense, or sparse under a
//! mask (`--mask`, `--mode exact|fast`).
use crate::bench::timing::median_ms;
use anyhow::{bail, Context, Result};
use clap::Args;
use elide::kernels::threads::with_threads;
use elide_graph::ops::Op;
use elide_graph::{onnx, optimize, sparse, Graph, Value};
use ndarray::ArrayD;
use std::path::{Path, PathBuf};

/// Arguments of `elide inspect`.
#[derive(Args)]
pub struct InspectArgs {
    /// The ONNX model.
    model: PathBuf,
    /// Input shape for symbolic dimensions, comma separated (e.g. 1,3,640,640); by default the
    /// declared shape with symbolic dims set to 1.
    #[arg(long, value_delimiter = ',')]
    shape: Option<Vec<usize>>,
}

/// Arguments of `elide run`.
#[derive(Args)]
pub struct RunArgs {
    /// The ONNX model.
    model: PathBuf,
    /// The input tensor, a float32 `.npy` fed as is.
    #[arg(long)]
    input: PathBuf,
    /// Worker threads (0 = all cores).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Timed repetitions (the median is reported).
    #[arg(long, default_value_t = 5)]
    reps: usize,
    /// Write every output (name, shape, values) and the timing as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Print the time spent per op kind (one extra run).
    #[arg(long)]
    profile: bool,
    /// Also run masked: a float32 `.npy` `[N, H, W]` or `[H, W]` at the input's resolution,
    /// or a PNG/JPEG image (bright = active, resized to the input),
    /// nonzero = where output is wanted; prints dense and sparse times side by side.
    #[arg(long)]
    mask: Option<PathBuf>,
    /// Masked run: `exact` (outputs equal dense inside the mask) or `fast` (SBNet: features
    /// outside the mask are zero).
    #[arg(long, value_enum, default_value_t = MaskMode::Exact)]
    mode: MaskMode,
}

/// `--mode` of `elide run`.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum MaskMode {
    /// Outputs equal dense inside the mask.
    Exact,
    /// SBNet's behaviour: cheaper, approximate near the mask and through global ops.
    Fast,
}

fn load(path: &Path) -> Result<(Graph, [usize; 3])> {
    let mut g = onnx::load(path).with_context(|| format!("loading {}", path.display()))?;
    let before = g.nodes.len();
    let [folded, bn, act] = optimize::optimize(&mut g)?;
    eprintln!(
        "{}: {before} nodes -> {} after folding {folded} constant nodes, {bn} batch-norms and {act} activations into convs",
        path.display(),
        g.nodes.len()
    );
    Ok((g, [folded, bn, act]))
}

/// Multiply-accumulates and parameters of one node, given its input and output shapes.
fn cost(g: &Graph, op: &Op, ins: &[Vec<usize>], out: &[usize]) -> (u64, u64) {
    let pixels = |s: &[usize]| s.iter().skip(2).product::<usize>() as u64 * s[0] as u64;
    match op {
        Op::Conv(c) => {
            let p = c.conv.params();
            let k = (c.conv.in_channels() / p.groups * p.kernel[0] * p.kernel[1]) as u64;
            let params = k * c.conv.out_channels() as u64 + c.conv.out_channels() as u64;
            (pixels(out) * c.conv.out_channels() as u64 * k, params)
        }
        Op::ConvTranspose(c) => {
            let [ci, co, kh, kw] = c.shape;
            let inp = ins.first().map_or(0, |s| pixels(s));
            (
                inp * (co * kh * kw) as u64 * ci as u64,
                (ci * co * kh * kw + co) as u64,
            )
        }
        Op::Gemm { .. } | Op::MatMul => {
            let k = ins.first().and_then(|s| s.last()).copied().unwrap_or(0) as u64;
            let _ = g;
            (out.iter().product::<usize>() as u64 * k, 0)
        }
        _ => (0, 0),
    }
}

/// Runs `inspect`.
pub fn inspect(a: &InspectArgs) -> Result<()> {
    let (g, _) = load(&a.model)?;
    let Some(inp) = g.inputs.first() else {
        bail!("the model has no runtime input")
    };
    if g.inputs.len() > 1 {
        bail!("inspect feeds one input; the model has {}", g.inputs.len());
    }
    let shape: Vec<usize> = match &a.shape {
        Some(s) => s.clone(),
        None => inp.shape.iter().map(|d| d.unwrap_or(1)).collect(),
    };
    let x = Value::f32(&shape, vec![0.0; shape.iter().product()])?;
    // Shapes come from one run on zeros of the given shape.
    let mut rows = Vec::new();
    let mut shapes: Vec<Option<Vec<usize>>> = vec![None; g.names.len()];
    shapes[inp.id] = Some(shape.clone());
    for (&id, v) in &g.constants {
        shapes[id] = Some(v.shape().to_vec());
    }
    g.run_with(vec![x], |k, outs| {
        let n = &g.nodes[k];
        for (&id, v) in n.outputs.iter().zip(outs) {
            shapes[id] = Some(v.shape().to_vec());
        }
        let ins: Vec<Vec<usize>> = n
            .inputs
            .iter()
            .flatten()
            .filter_map(|&i| shapes[i].clone())
            .collect();
        let (macs, params) = cost(&g, &n.op, &ins, outs[0].shape());
        rows.push((
            n.name.clone(),
            n.op.kind(),
            outs[0].shape().to_vec(),
            params,
            macs,
        ));
    })?;
    println!(
        "{:<40} {:<18} {:<22} {:>10} {:>12}",
        "node", "op", "output", "params", "MACs"
    );
    for (name, op, out, params, macs) in &rows {
        let short: String = name.chars().take(39).collect();
        println!(
            "{short:<40} {op:<18} {:<22} {params:>10} {macs:>12}",
            format!("{out:?}")
        );
    }
    let params: u64 = rows.iter().map(|r| r.3).sum::<u64>()
        + g.constants
            .values()
            .filter(|v| v.as_f32().is_some())
            .map(|v| v.shape().iter().product::<usize>() as u64)
            .sum::<u64>();
    let macs: u64 = rows.iter().map(|r| r.4).sum();
    println!(
        "total: {} nodes, {params} parameters, {:.3} GMAC ({:.3} GFLOP) for input {shape:?}",
        rows.len(),
        macs as f64 / 1e9,
        2.0 * macs as f64 / 1e9
    );
    Ok(())
}

/// Runs `run`.
pub fn run(a: &RunArgs) -> Result<()> {
    let (g, _) = load(&a.model)?;
    let x: ArrayD<f32> = ndarray_npy::read_npy(&a.input)
        .with_context(|| format!("reading {} (a float32 .npy)", a.input.display()))?;
    let input = Value::F32(x);
    let (outs, ms) = with_threads(a.threads, || -> Result<_> {
        let outs = g.run(vec![input.clone()])?;
        let ms = median_ms(a.reps, || g.run(vec![input.clone()]).map(drop))?;
        Ok((outs, ms))
    })??;
    let threads = with_threads(a.threads, elide::kernels::threads::current_threads)?;
    if a.profile {
        profile(&g, &input, a.threads)?;
    }
    println!(
        "dense: {ms:.2} ms (median of {} runs, {threads} thread(s))",
        a.reps
    );
    let sparse_ms = match &a.mask {
        Some(path) => Some(run_masked(a, &g, &input, &outs, path, ms)?),
        None => None,
    };
    for (&id, v) in g.outputs.iter().zip(&outs) {
        let name = &g.names[id];
        let data: Vec<f64> = match v {
            Value::F32(a) => a.iter().map(|&x| x as f64).collect(),
            Value::I64(a) => a.iter().map(|&x| x as f64).collect(),
        };
        print!("output '{name}' {:?}", v.shape());
        if data.len() <= 1000 && !data.is_empty() {
            let mut idx: Vec<usize> = (0..data.len()).collect();
            idx.sort_by(|&i, &j| data[j].total_cmp(&data[i]));
            let top: Vec<String> = idx
                .iter()
                .take(5)
                .map(|&i| format!("{i}: {:.4}", data[i]))
                .collect();
            print!(" top-5 [{}]", top.join(", "));
        }
        println!();
    }
    if let Some(path) = &a.json {
        let outputs: Vec<serde_json::Value> = g
            .outputs
            .iter()
            .zip(&outs)
            .map(|(&id, v)| {
                let values: Vec<f64> = match v {
                    Value::F32(a) => a.iter().map(|&x| x as f64).collect(),
                    Value::I64(a) => a.iter().map(|&x| x as f64).collect(),
                };
                serde_json::json!({ "name": g.names[id], "shape": v.shape(), "values": values })
            })
            .collect();
        let doc = serde_json::json!({
            "model": a.model.display().to_string(),
            "threads": threads,
            "dense_ms": ms,
            "sparse_ms": sparse_ms,
            "reps": a.reps,
            "outputs": outputs,
        });
        std::fs::write(path, serde_json::to_string(&doc)?)?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

/// A mask file: a float32 `.npy` as is, or an image (PNG, JPEG) whose bright pixels (>= 128
/// in grey) are active, resized (nearest) to the input's height and width.
fn read_mask(path: &Path, input_shape: &[usize]) -> Result<ArrayD<f32>> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    if !matches!(ext.as_str(), "png" | "jpg" | "jpeg") {
        return ndarray_npy::read_npy(path)
            .with_context(|| format!("reading {} (a float32 .npy mask)", path.display()));
    }
    let [.., h, w] = input_shape else {
        bail!("an image mask needs an input with height and width, got {input_shape:?}");
    };
    let img = image::open(path)
        .with_context(|| format!("reading the mask image {}", path.display()))?
        .to_luma8();
    let (iw, ih) = (img.width() as usize, img.height() as usize);
    let data = (0..h * w)
        .map(|i| {
            let (y, x) = (i / w * ih / h, i % w * iw / w);
            f32::from(u8::from(img.get_pixel(x as u32, y as u32).0[0] >= 128))
        })
        .collect();
    Ok(ArrayD::from_shape_vec(vec![*h, *w], data)?)
}

/// The masked run of `elide run --mask`: times it beside dense (`dense_ms`), prints what it
/// computed and how far it is from the dense outputs inside the mask. Returns its median ms.
fn run_masked(
    a: &RunArgs,
    g: &Graph,
    input: &Value,
    dense: &[Value],
    path: &Path,
    dense_ms: f64,
) -> Result<f64> {
    let mask = sparse::mask_from_array(&read_mask(path, input.shape())?)?;
    let mode = match a.mode {
        MaskMode::Exact => sparse::Mode::Exact,
        MaskMode::Fast => sparse::Mode::Fast,
    };
    let runner = sparse::MaskedRunner::new(g);
    let (outs, stats, ms) = with_threads(a.threads, || -> Result<_> {
        // The first run also learns the value shapes (exact mode): not timed.
        let (outs, stats) = runner.run_stats(vec![input.clone()], &mask, mode)?;
        let ms = median_ms(a.reps, || {
            runner.run(vec![input.clone()], &mask, mode).map(drop)
        })?;
        Ok((outs, stats, ms))
    })??;
    let density = mask.density(0.5);
    println!(
        "sparse ({:?}): {ms:.2} ms, dense {dense_ms:.2} ms: {:.2}x; mask {:.1}% of pixels; convs {} dense, {} sparse, {} skipped; {:.1}% of conv MACs",
        a.mode,
        dense_ms / ms,
        100.0 * density,
        stats.dense,
        stats.sparse,
        stats.skipped,
        100.0 * stats.work
    );
    for ((&id, d), s) in g.outputs.iter().zip(dense).zip(&outs) {
        let (Some(d), Some(s)) = (d.as_f32(), s.as_f32()) else {
            continue;
        };
        let Some([n, h, w]) = sparse::region::spatial(d.shape()) else {
            continue;
        };
        let r = sparse::resample_max(&mask, [n, h, w])?;
        let (mut diff, mut scale) = (0f32, 0f32);
        for ((idx, &dv), &sv) in d.indexed_iter().zip(s.iter()) {
            if r.data()[(idx[0] * h + idx[2]) * w + idx[3]] > 0.5 {
                diff = diff.max((dv - sv).abs());
                scale = scale.max(dv.abs());
            }
        }
        println!(
            "output '{}': max |sparse - dense| inside the mask {diff:.3e} (max |dense| there {scale:.3e})",
            g.names[id]
        );
    }
    Ok(ms)
}

/// Wall time per op kind over one run (conv kinds split by kernel).
fn profile(g: &Graph, input: &Value, threads: usize) -> Result<()> {
    let mut by: std::collections::BTreeMap<String, (f64, usize)> = Default::default();
    with_threads(threads, || -> Result<()> {
        let mut last = std::time::Instant::now();
        g.run_with(vec![input.clone()], |k, _| {
            let kind = match &g.nodes[k].op {
                Op::Conv(c) => format!("Conv/{:?}", c.conv.kernel()),
                op => op.kind().to_string(),
            };
            let e = by.entry(kind).or_default();
            e.0 += last.elapsed().as_secs_f64() * 1e3;
            e.1 += 1;
            last = std::time::Instant::now();
        })?;
        Ok(())
    })??;
    let total: f64 = by.values().map(|v| v.0).sum();
    let mut rows: Vec<_> = by.into_iter().collect();
    rows.sort_by(|a, b| b.1 .0.total_cmp(&a.1 .0));
    for (kind, (ms, n)) in rows {
        println!(
            "{kind:<24} {n:>5} nodes {ms:>9.2} ms {:>5.1}%",
            100.0 * ms / total
        );
    }
    Ok(())
}
