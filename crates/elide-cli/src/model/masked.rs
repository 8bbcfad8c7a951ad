//! `elide run --mask FILE | --mask-auto`: the masked run timed beside dense, with its mask from
//! a file or from a low-resolution pass of the model itself.
use super::report::MaskedJson;
use crate::bench::timing::median;
use anyhow::{bail, Result};
use elide::kernels::sparse::Mask;
use elide_graph::sparse::{self, LowRes, MaskedRunner, Mode};
use elide_graph::{Graph, GraphError, Value};
use ndarray::{ArrayD, Axis};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Where the mask comes from.
pub enum Source {
    /// A `.npy` or image file.
    File(PathBuf),
    /// [`sparse::mask_from_low_res`] with these options.
    Auto(LowRes),
}

/// A masked run beside the dense one.
pub struct Outcome {
    /// The masked run's outputs.
    pub outs: Vec<Value>,
    /// The mask at the input's resolution.
    pub mask: Mask,
    /// Medians: dense; mask pass (auto); masked run alone; mask pass + masked run.
    pub dense_ms: f64,
    /// See `dense_ms`.
    pub mask_ms: Option<f64>,
    /// See `dense_ms`.
    pub sparse_ms: f64,
    /// See `dense_ms`.
    pub e2e_ms: f64,
    /// The record for `--json`.
    pub json: MaskedJson,
    lines: Vec<String>,
}

impl Outcome {
    /// Prints the mask pass, the masked run and end-to-end lines.
    pub fn print(&self) {
        for l in &self.lines {
            println!("{l}");
        }
    }
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
        let m = super::npy::read_f32(path, "a float32 .npy mask")?;
        return match m.shape() {
            [_, _] | [_, _, _] => Ok(m),
            [_, 1, _, _] => Ok(m.index_axis_move(Axis(1), 0)),
            s => bail!(
                "the mask {} has shape {s:?}; a mask must be [H, W], [N, H, W] or [N, 1, H, W]",
                path.display()
            ),
        };
    }
    let [.., h, w] = input_shape else {
        bail!("an image mask needs an input with height and width, got {input_shape:?}");
    };
    let img = super::input::open_image(path, "the mask image")?.to_luma8();
    let (iw, ih) = (img.width() as usize, img.height() as usize);
    let data = (0..h * w)
        .map(|i| {
            let (y, x) = (i / w * ih / h, i % w * iw / w);
            f32::from(u8::from(img.get_pixel(x as u32, y as u32).0[0] >= 128))
        })
        .collect();
    Ok(ArrayD::from_shape_vec(vec![*h, *w], data)?)
}

/// The size of the `--mask-auto` pass on an input of `shape`, checked before anything runs:
/// no larger than the input, and one the model's declared input takes.
fn low_res_size(g: &Graph, shape: &[usize], opts: &LowRes) -> Result<[usize; 2]> {
    let &[_, _, h, w] = shape else {
        bail!("--mask-auto needs an NCHW input, got {shape:?}")
    };
    let [lh, lw] = opts.size([h, w])?;
    if lh > h || lw > w {
        bail!(
            "--mask-auto: --mask-scale {} and --mask-multiple {} put the low-resolution mask pass at {lh}x{lw}, larger than the {h}x{w} input: lower --mask-multiple",
            opts.scale,
            opts.multiple
        );
    }
    if let Some(&[.., dh, dw]) = g.inputs.first().map(|i| i.shape.as_slice()) {
        if dh.is_some_and(|d| d != lh) || dw.is_some_and(|d| d != lw) {
            let side = |d: Option<usize>| d.map_or("any".to_string(), |d| d.to_string());
            bail!(
                "--mask-auto: the low-resolution mask pass runs the model at {lh}x{lw}, but the model declares a fixed input height x width of {} x {}: the mask pass needs a model with free height and width (use --mask FILE instead)",
                side(dh),
                side(dw)
            );
        }
    }
    Ok([lh, lw])
}

/// The error of a failed `--mask-auto` pass, with its size and, when a larger
/// `--mask-multiple` makes the pass work, that multiple.
fn low_res_error(g: &Graph, x: &ArrayD<f32>, opts: &LowRes, e: GraphError) -> anyhow::Error {
    let [lh, lw] = low_res_size(g, x.shape(), opts).unwrap_or_default();
    let works = |multiple| {
        let o = LowRes { multiple, ..*opts };
        low_res_size(g, x.shape(), &o).is_ok() && sparse::mask_from_low_res(g, x, &o).is_ok()
    };
    let hint = [8, 16, 32, 64]
        .into_iter()
        .filter(|&m| m > opts.multiple)
        .find(|&m| works(m))
        .map_or_else(String::new, |m| {
            format!(": it runs with sides that are multiples of {m} (--mask-multiple {m})")
        });
    anyhow::Error::new(e).context(format!(
        "the low-resolution mask pass at {lh}x{lw} (--mask-scale {}, --mask-multiple {}) failed{hint}",
        opts.scale, opts.multiple
    ))
}

fn ms_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

/// Runs `g` on `input` under the mask from `source` in `mode`, `reps` times after a warm-up,
/// alternating with dense runs so both see the same machine state; `dense` are the dense
/// outputs (for the error inside the mask). Call inside the thread pool.
pub fn run(
    g: &Graph,
    input: &Value,
    dense: &[Value],
    source: &Source,
    mode: Mode,
    reps: usize,
) -> Result<Outcome> {
    let Some(x) = input.as_f32() else {
        bail!("a masked run needs a float32 input")
    };
    if let Source::Auto(opts) = source {
        low_res_size(g, x.shape(), opts)?;
    }
    let make = || -> Result<Mask> {
        Ok(match source {
            Source::File(p) => sparse::mask_from_array(&read_mask(p, x.shape())?)?,
            Source::Auto(opts) => {
                sparse::mask_from_low_res(g, x, opts).map_err(|e| low_res_error(g, x, opts, e))?
            }
        })
    };
    let mask = make()?;
    let runner = MaskedRunner::new(g);
    // The first run also learns the value shapes (exact mode): not timed.
    let (outs, stats) = runner.run_stats(vec![input.clone()], &mask, mode)?;
    let (mut td, mut tm, mut ts, mut te) = (vec![], vec![], vec![], vec![]);
    for _ in 0..reps.max(1) {
        let t = Instant::now();
        g.run(vec![input.clone()])?;
        td.push(ms_since(t));
        let t = Instant::now();
        let m = match source {
            Source::Auto(_) => Some(make()?),
            Source::File(_) => None,
        };
        let mask_ms = ms_since(t);
        let t = Instant::now();
        runner.run(vec![input.clone()], m.as_ref().unwrap_or(&mask), mode)?;
        let sparse_ms = ms_since(t);
        tm.push(mask_ms);
        ts.push(sparse_ms);
        te.push(mask_ms + sparse_ms);
    }
    let (dense_ms, sparse_ms, e2e_ms) = (median(td), median(ts), median(te));
    let mask_ms = matches!(source, Source::Auto(_)).then(|| median(tm));
    let density = mask.density(0.5);
    let mode_name = match mode {
        Mode::Exact => "exact",
        Mode::Fast => "fast",
    };
    let mut lines = Vec::new();
    let [.., h, w] = x.shape() else {
        bail!("a masked run needs an NCHW input")
    };
    let (low_res, opts) = match source {
        Source::Auto(o) => (Some(o.size([*h, *w])?), Some(*o)),
        Source::File(_) => (None, None),
    };
    if let (Some([lh, lw]), Some(o), Some(ms)) = (low_res, opts, mask_ms) {
        lines.push(format!(
            "mask pass (model on the input at {lh}x{lw}, 1/{} scale, bilinear; first output > {}, dilated {} px): {ms:.2} ms; {:.1}% of pixels active",
            o.scale, o.threshold, o.dilate, 100.0 * density
        ));
    }
    lines.push(format!(
        "sparse ({mode:?}): {sparse_ms:.2} ms, dense {dense_ms:.2} ms: {:.2}x; mask {:.1}% of pixels; convs {} dense, {} sparse, {} skipped; {:.1}% of conv MACs; other ops {} masked, {} dense",
        dense_ms / sparse_ms,
        100.0 * density,
        stats.dense,
        stats.sparse,
        stats.skipped,
        100.0 * stats.work,
        stats.masked_ops,
        stats.dense_ops
    ));
    if mask_ms.is_some() {
        lines.push(format!(
            "end to end (mask pass + sparse): {e2e_ms:.2} ms, dense {dense_ms:.2} ms: {:.2}x (median of {} runs each, alternated)",
            dense_ms / e2e_ms,
            reps.max(1)
        ));
    }
    let mut errs = Vec::new();
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
        lines.push(format!(
            "output '{}': max |sparse - dense| inside the mask {diff:.3e} (max |dense| there {scale:.3e})",
            g.names[id]
        ));
        errs.push((g.names[id].clone(), diff));
    }
    let json = MaskedJson {
        source: match source {
            Source::File(p) => p.display().to_string(),
            Source::Auto(_) => "auto".into(),
        },
        mode: mode_name.into(),
        active_fraction: density,
        low_res,
        scale: opts.map(|o| o.scale),
        threshold: opts.map(|o| o.threshold),
        dilate: opts.map(|o| o.dilate),
        convs_dense: stats.dense,
        convs_sparse: stats.sparse,
        convs_skipped: stats.skipped,
        conv_work: stats.work,
        ops_masked: stats.masked_ops,
        ops_dense: stats.dense_ops,
        max_abs_err_inside: errs,
    };
    Ok(Outcome {
        outs,
        mask,
        dense_ms,
        mask_ms,
        sparse_ms,
        e2e_ms,
        json,
        lines,
    })
}
