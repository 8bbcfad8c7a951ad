//! `elide inspect MODEL` and `elide run MODEL`: imported ONNX models on `.npy` tensors or
//! preprocessed images ([`input`]), dense, or sparse under a mask from a file or a
//! low-resolution pass ([`masked`]); outputs as top-k, PNG maps and JSON ([`report`]).
mod input;
mod masked;
mod npy;
mod report;
mod resize;

use crate::bench::timing::median_ms_setup;
use anyhow::{bail, Context, Result};
use clap::{ArgGroup, Args};
use elide::kernels::threads::with_threads;
use elide_graph::ops::Op;
use elide_graph::{onnx, optimize, sparse, Graph, Value};
use std::path::{Path, PathBuf};

/// Arguments of `elide inspect`.
#[derive(Args)]
pub struct InspectArgs {
    /// The ONNX model.
    model: PathBuf,
    /// Input shape for symbolic dimensions, comma separated (e.g. 1,3,640,640); by default the
    /// declared shape with symbolic image sides set to 224 and other symbolic dims to 1.
    #[arg(long, value_delimiter = ',')]
    shape: Option<Vec<usize>>,
}

/// Arguments of `elide run`.
#[derive(Args)]
#[command(group(ArgGroup::new("mask_source").args(["mask", "mask_auto"]).multiple(true)))]
pub struct RunArgs {
    /// The ONNX model.
    model: PathBuf,
    /// The input: an image (PNG/JPEG, resized and normalised per the flags below or a
    /// preset), a directory (every image and .npy in it, sorted by name, reported one by one),
    /// or a float32 `.npy` tensor fed as is.
    #[arg(long)]
    input: PathBuf,
    #[command(flatten)]
    prep: input::PrepArgs,
    /// Worker threads (0 = all cores, at most 256).
    #[arg(long, default_value_t = 1, value_parser = crate::parse_threads, allow_negative_numbers = true)]
    threads: usize,
    /// Timed repetitions (the median is reported; at least 1).
    #[arg(long, default_value_t = 5, value_parser = crate::parse_reps, allow_negative_numbers = true)]
    reps: usize,
    /// Entries printed per small output (<= 1000 values, e.g. a classifier's scores).
    #[arg(long, default_value_t = 5)]
    top_k: usize,
    /// Write every output (name, shape, values), the timings (dense, mask pass, sparse, end
    /// to end) and the mask's statistics as JSON here (one record per input for a directory).
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write each output map (a 4-D output with H, W >= 8: a dense predictor's) as 8-bit
    /// greyscale PNGs into this directory (created): `<input>_<output>[_n<i>][_c<j>].png`;
    /// masked runs add `_sparse` maps and `<input>_mask.png` (white = active).
    #[arg(long)]
    out_dir: Option<PathBuf>,
    /// Grey levels of the PNG maps: `clip` = values clipped to [0, 1] (0 black, 1 white),
    /// `minmax` = each map's min..max stretched to black..white, `auto` = clip when every value
    /// lies in [0, 1] (probability maps), else minmax.
    #[arg(long, value_enum, default_value_t = report::MapScale::Auto, requires = "out_dir")]
    map_scale: report::MapScale,
    /// Also write each preprocessed input tensor as `<input>_input.npy` into --out-dir.
    #[arg(long, requires = "out_dir")]
    save_input: bool,
    /// Print the time spent per op kind (one extra run).
    #[arg(long)]
    profile: bool,
    /// Also run masked: a float32 `.npy` `[N, H, W]` or `[H, W]` at the input's resolution,
    /// or a PNG/JPEG image (bright = active, resized to the input),
    /// nonzero = where output is wanted; prints dense and sparse times side by side.
    #[arg(long)]
    mask: Option<PathBuf>,
    /// Also run masked, with the mask from a cheap low-resolution pass of the model itself
    /// (SBNet's low-resolution network): the input downscaled by --mask-scale (bilinear), its
    /// first output map thresholded at --mask-threshold, upsampled to the input and dilated
    /// by --mask-dilate pixels. Reports the mask pass, sparse and end-to-end times.
    #[arg(long, conflicts_with = "mask")]
    mask_auto: bool,
    /// --mask-auto: the input's sides are divided by this (>= 1).
    #[arg(long, default_value_t = 4.0, requires = "mask_auto")]
    mask_scale: f32,
    /// --mask-auto: active where the low-resolution map exceeds this (any channel).
    #[arg(
        long,
        default_value_t = 0.3,
        allow_negative_numbers = true,
        requires = "mask_auto"
    )]
    mask_threshold: f32,
    /// --mask-auto: dilation of the mask, in input pixels.
    #[arg(long, default_value_t = 8, requires = "mask_auto")]
    mask_dilate: usize,
    /// --mask-auto: round the low-resolution sides to a multiple of this (default: 32 for
    /// the ppocr-det and yolov8 presets, else 1).
    #[arg(long, requires = "mask_auto")]
    mask_multiple: Option<usize>,
    /// Masked run: `exact` (outputs equal dense inside the mask) or `fast` (SBNet: features
    /// outside the mask are zero).
    #[arg(long, value_enum, default_value_t = MaskMode::Exact, requires = "mask_source")]
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

fn load(path: &Path) -> Result<Graph> {
    let mut g = onnx::load(path).with_context(|| format!("loading {}", path.display()))?;
    let before = g.nodes.len();
    let [folded, bn, act, sparse] = optimize::optimize(&mut g)?;
    let sparse_note = if sparse > 0 {
        format!(", {sparse} products with mostly zero weights in CSR")
    } else {
        String::new()
    };
    eprintln!(
        "{}: {before} nodes -> {} after folding {folded} constant nodes, {bn} batch-norms and {act} activations into convs{sparse_note}",
        path.display(),
        g.nodes.len()
    );
    Ok(g)
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
        Op::SparseLinear(s) => {
            let w = &s.layer.weight;
            let rows = (out.iter().product::<usize>() / w.rows.max(1)) as u64;
            (rows * w.nnz() as u64, (w.nnz() + w.rows) as u64)
        }
        Op::Dyn(o) => {
            let ins: Vec<&[usize]> = ins.iter().map(Vec::as_slice).collect();
            (o.macs(&ins, &[out]), 0)
        }
        _ => (0, 0),
    }
}

/// The number of values of an `inspect` input of `shape`: each dimension at least 1, at most
/// [`crate::MAX_VALUES`] in all, and the model's declared rank and fixed dimensions.
fn check_declared(g: &Graph, inp: &elide_graph::graph::Input, shape: &[usize]) -> Result<usize> {
    let count = crate::checked_size("--shape", shape)?;
    let declared = &inp.shape;
    let name = &g.names[inp.id];
    let show = |d: &Option<usize>| d.map_or("?".to_string(), |d| d.to_string());
    let want: Vec<String> = declared.iter().map(show).collect();
    let want = format!("[{}] (? = any)", want.join(", "));
    if declared.len() != shape.len() {
        bail!(
            "--shape {shape:?} has {} dimensions; the model's input '{name}' declares {}: {want}",
            shape.len(),
            declared.len()
        );
    }
    for (axis, (d, &s)) in declared.iter().zip(shape).enumerate() {
        if d.is_some_and(|d| d != s) {
            bail!("--shape {shape:?}: dimension {axis} is {s}, the model's input '{name}' declares {want}");
        }
    }
    Ok(count)
}

/// Runs `inspect`.
pub fn inspect(a: &InspectArgs) -> Result<()> {
    let g = load(&a.model)?;
    let Some(inp) = g.inputs.first() else {
        bail!("the model has no runtime input")
    };
    if g.inputs.len() > 1 {
        bail!("inspect feeds one input; the model has {}", g.inputs.len());
    }
    let shape: Vec<usize> = match &a.shape {
        Some(s) => s.clone(),
        // Symbolic image sides default to 224 (a 1x1 map breaks pyramids that pool and
        // upsample, like YOLO's); a symbolic batch or channel count to 1.
        None => inp
            .shape
            .iter()
            .enumerate()
            .map(|(axis, d)| {
                d.unwrap_or(if inp.shape.len() == 4 && axis >= 2 {
                    224
                } else {
                    1
                })
            })
            .collect(),
    };
    let count = check_declared(&g, inp, &shape)?;
    let x = Value::f32(&shape, vec![0.0; count])?;
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
    })
    .with_context(|| format!("running on zeros of shape {shape:?} (pick another with --shape)"))?;
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
    let g = load(&a.model)?;
    let files = input::list(&a.input)?;
    let prep = if files
        .iter()
        .any(|f| matches!(input::kind(f), Some(input::InputKind::Image)))
    {
        let prep = input::Prep::new(&a.prep, &a.model, &g)?;
        println!(
            "preprocessing: {}: {}",
            prep.preset_note(&a.model),
            prep.describe()
        );
        Some(prep)
    } else {
        if a.prep.any() {
            eprintln!("note: the preprocessing flags apply to images; a .npy is fed as is");
        }
        None
    };
    if let Some(dir) = &a.out_dir {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let threads = with_threads(a.threads, elide::kernels::threads::current_threads)?;
    let mut records = Vec::new();
    for (file, stem) in files.iter().zip(input::stems(&files)) {
        if a.input.is_dir() {
            println!("== {} ==", file.display());
        }
        let rec = run_one(a, &g, prep.as_ref(), file, &stem, threads)?;
        if a.json.is_some() {
            records.push(rec);
        }
    }
    if let Some(path) = &a.json {
        #[derive(serde::Serialize)]
        struct Doc<T> {
            model: String,
            threads: usize,
            reps: usize,
            #[serde(flatten)]
            body: T,
        }
        #[derive(serde::Serialize)]
        struct Many {
            inputs: Vec<report::RunJson>,
        }
        let (model, reps) = (a.model.display().to_string(), a.reps);
        let text = if a.input.is_dir() {
            let body = Many { inputs: records };
            serde_json::to_string(&Doc {
                model,
                threads,
                reps,
                body,
            })?
        } else {
            let body = records.pop().expect("one input");
            serde_json::to_string(&Doc {
                model,
                threads,
                reps,
                body,
            })?
        };
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

/// One input of `run`: read or preprocess it, run densely (and masked), report.
fn run_one(
    a: &RunArgs,
    g: &Graph,
    prep: Option<&input::Prep>,
    file: &Path,
    stem: &str,
    threads: usize,
) -> Result<report::RunJson> {
    let (x, preprocessing) = match (input::kind(file), prep) {
        (Some(input::InputKind::Image), Some(prep)) => {
            let (x, note) = prep.image(file)?;
            println!("input {}: {note}, tensor {:?}", file.display(), x.shape());
            (x, Some(format!("{}; {note}", prep.describe())))
        }
        _ => (npy::read_f32(file, "a float32 .npy")?, None),
    };
    let mut files = Vec::new();
    if let (true, Some(dir)) = (a.save_input, &a.out_dir) {
        let path = dir.join(format!("{stem}_input.npy"));
        ndarray_npy::write_npy(&path, &x).with_context(|| format!("writing {}", path.display()))?;
        files.push(path);
    }
    let input = Value::F32(x);
    let source = match (&a.mask, a.mask_auto) {
        (Some(p), _) => Some(masked::Source::File(p.clone())),
        (None, true) => Some(masked::Source::Auto(sparse::LowRes {
            scale: a.mask_scale,
            threshold: a.mask_threshold,
            dilate: a.mask_dilate,
            multiple: a.mask_multiple.unwrap_or_else(|| a.prep.multiple(&a.model)),
        })),
        (None, false) => None,
    };
    let mode = match a.mode {
        MaskMode::Exact => sparse::Mode::Exact,
        MaskMode::Fast => sparse::Mode::Fast,
    };
    let (outs, dense_ms, masked) = with_threads(a.threads, || -> Result<_> {
        let outs = g.run(vec![input.clone()])?;
        match &source {
            None => {
                // The input copy each run consumes is made outside the timed region.
                let ms = median_ms_setup(a.reps, || vec![input.clone()], |v| g.run(v).map(drop))?;
                Ok((outs, ms, None))
            }
            Some(src) => {
                let m = masked::run(g, &input, &outs, src, mode, a.reps)?;
                Ok((outs, m.dense_ms, Some(m)))
            }
        }
    })??;
    if a.profile {
        profile(g, &input, a.threads)?;
    }
    // Small models (an exported MLP) run in microseconds.
    let prec = if dense_ms < 0.1 { 4 } else { 2 };
    println!(
        "dense: {dense_ms:.prec$} ms (median of {} runs, {threads} thread(s))",
        a.reps
    );
    if let Some(m) = &masked {
        m.print();
    }
    let outputs = report::named(g, outs);
    report::print_outputs(&outputs, a.top_k);
    let (mut sparse_outputs, mut mask_json, mut times) = (None, None, (None, None, None));
    if let Some(m) = masked {
        let named = report::named(g, m.outs);
        if let Some(dir) = &a.out_dir {
            files.extend(report::write_maps(
                dir,
                stem,
                "_sparse",
                &named,
                a.map_scale,
            )?);
            files.extend(report::write_mask(dir, stem, &m.mask)?);
        }
        sparse_outputs = Some(named);
        mask_json = Some(m.json);
        times = (m.mask_ms, Some(m.sparse_ms), Some(m.e2e_ms));
    }
    if let Some(dir) = &a.out_dir {
        let maps = report::write_maps(dir, stem, "", &outputs, a.map_scale)?;
        files.extend(maps);
        println!(
            "wrote {} file(s) to {} (maps as grey levels: --map-scale {})",
            files.len(),
            dir.display(),
            a.map_scale.name()
        );
    }
    Ok(report::RunJson {
        input: file.display().to_string(),
        input_shape: input.shape().to_vec(),
        preprocessing,
        dense_ms,
        mask_ms: times.0,
        sparse_ms: times.1,
        end_to_end_ms: times.2,
        masked: mask_json,
        outputs,
        sparse_outputs,
        files: files.iter().map(|f| f.display().to_string()).collect(),
    })
}

/// Wall time per op kind over one run (conv kinds split by kernel).
fn profile(g: &Graph, input: &Value, threads: usize) -> Result<()> {
    let mut by: std::collections::BTreeMap<String, (f64, usize)> = Default::default();
    with_threads(threads, || -> Result<()> {
        let mut last = std::time::Instant::now();
        g.run_with(vec![input.clone()], |k, outs| {
            let kind = match &g.nodes[k].op {
                // The choice depends on the map size only for 1x1 maps, where a 1x1 layer's
                // input and output sizes agree.
                Op::Conv(c) => {
                    let s = outs[0].shape();
                    format!("Conv/{:?}", c.conv.kernel_for(s[2], s[3]))
                }
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
