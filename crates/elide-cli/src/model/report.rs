//! What `elide run` reports per input: top-k of small outputs (classifiers), a summary and
//! greyscale PNGs of output maps (dense predictors), and the JSON record.
use anyhow::{Context, Result};
use elide::kernels::sparse::Mask;
use elide_graph::{Graph, Value};
use serde::ser::{Serialize, SerializeStruct, Serializer};
use std::path::{Path, PathBuf};

/// `--map-scale`: how a map's values become grey levels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum MapScale {
    /// `clip` when every value lies in [0, 1] (probability maps keep their meaning), else
    /// `minmax`.
    Auto,
    /// Each map's min..max stretched to black..white (a constant map is black).
    Minmax,
    /// Values clipped to [0, 1], 0 black, 1 white.
    Clip,
}

impl MapScale {
    /// The flag's value.
    pub fn name(self) -> &'static str {
        match self {
            MapScale::Auto => "auto",
            MapScale::Minmax => "minmax",
            MapScale::Clip => "clip",
        }
    }
}

/// A graph output with its name, serialised as `{name, shape, values}`.
pub struct Named {
    /// The output's name in the graph.
    pub name: String,
    /// Its value.
    pub value: Value,
}

impl Serialize for Named {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        struct Values<'a>(&'a Value);
        impl Serialize for Values<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                // Integers and bools as JSON integers, floats (any width) as numbers.
                if self.0.dtype().is_float() {
                    s.collect_seq(self.0.to_f64_vec())
                } else {
                    s.collect_seq(self.0.to_i64_vec())
                }
            }
        }
        let mut st = s.serialize_struct("Output", 3)?;
        st.serialize_field("name", &self.name)?;
        st.serialize_field("shape", self.value.shape())?;
        st.serialize_field("values", &Values(&self.value))?;
        st.end()
    }
}

/// The graph's outputs, named.
pub fn named(g: &Graph, outs: Vec<Value>) -> Vec<Named> {
    g.outputs
        .iter()
        .zip(outs)
        .map(|(&id, value)| Named {
            name: g.names[id].clone(),
            value,
        })
        .collect()
}

/// A dense predictor's output: `[N, C, H, W]` with H and W at least 8.
pub fn is_map(shape: &[usize]) -> bool {
    matches!(shape, &[_, _, h, w] if h >= 8 && w >= 8)
}

/// Prints each output: its shape, the top `k` entries of small ones (<= 1000 values, e.g. a
/// classifier's scores), min / mean / max of maps.
pub fn print_outputs(outs: &[Named], k: usize) {
    for o in outs {
        let data: Vec<f64> = o.value.to_f64_vec();
        print!("output '{}' {:?}", o.name, o.value.shape());
        if let &[rows, cols] = o.value.shape() {
            if rows > 1 && cols > 0 && k > 0 {
                // A batch of rows (e.g. an MLP's): a few rows' values or best classes.
                let shown: Vec<String> = data
                    .chunks(cols)
                    .take(8)
                    .map(|r| match r {
                        [v] => format!("{v:.4}"),
                        _ => {
                            let best = (0..cols)
                                .max_by(|&i, &j| r[i].total_cmp(&r[j]))
                                .unwrap_or(0);
                            format!("{best}: {:.4}", r[best])
                        }
                    })
                    .collect();
                let what = if cols == 1 {
                    "values"
                } else {
                    "best class per row"
                };
                let more = if rows > 8 { ", ..." } else { "" };
                println!(" {what} [{}{more}]", shown.join(", "));
                continue;
            }
        }
        if data.len() <= 1000 && !data.is_empty() && k > 0 {
            let mut idx: Vec<usize> = (0..data.len()).collect();
            idx.sort_by(|&i, &j| data[j].total_cmp(&data[i]));
            let top: Vec<String> = idx
                .iter()
                .take(k)
                .map(|&i| format!("{i}: {:.4}", data[i]))
                .collect();
            print!(" top-{} [{}]", top.len(), top.join(", "));
        } else if is_map(o.value.shape()) {
            let (lo, hi) = min_max(data.iter().map(|&v| v as f32));
            let mean = data.iter().sum::<f64>() / data.len() as f64;
            print!(" map: min {lo:.4}, mean {mean:.4}, max {hi:.4}");
        }
        println!();
    }
}

/// Min and max over the finite values (0, 0 when there are none).
fn min_max(values: impl Iterator<Item = f32>) -> (f32, f32) {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
    if lo > hi {
        (0.0, 0.0)
    } else {
        (lo, hi)
    }
}

/// A file-name-safe version of an output name.
fn safe(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Writes every map among `outs` as 8-bit greyscale PNGs into `dir`:
/// `<stem>_<output><suffix>[_n<i>][_c<j>].png` (batch and channel suffixes only when there
/// are several). Returns the files written.
pub fn write_maps(
    dir: &Path,
    stem: &str,
    suffix: &str,
    outs: &[Named],
    scale: MapScale,
) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for o in outs {
        let Some(a) = o.value.as_f32().filter(|a| is_map(a.shape())) else {
            continue;
        };
        let &[n, c, h, w] = a.shape() else { continue };
        let a = a.as_standard_layout();
        let data = a.as_slice().expect("standard layout");
        for (p, plane) in data.chunks_exact(h * w).enumerate() {
            let (b, ch) = (p / c, p % c);
            let mut name = format!("{stem}_{}{suffix}", safe(&o.name));
            if n > 1 {
                name += &format!("_n{b}");
            }
            if c > 1 {
                name += &format!("_c{ch}");
            }
            let path = dir.join(name + ".png");
            grey_png(plane, h, w, scale, &path)?;
            files.push(path);
        }
    }
    Ok(files)
}

/// One plane as a greyscale PNG (NaN is black).
fn grey_png(plane: &[f32], h: usize, w: usize, scale: MapScale, path: &Path) -> Result<()> {
    let (lo, hi) = min_max(plane.iter().copied());
    let clip = match scale {
        MapScale::Clip => true,
        MapScale::Minmax => false,
        MapScale::Auto => lo >= 0.0 && hi <= 1.0,
    };
    let (off, span) = if clip {
        (0.0, 1.0)
    } else {
        (lo, if hi > lo { hi - lo } else { f32::INFINITY })
    };
    let px: Vec<u8> = plane
        .iter()
        .map(|&v| {
            let t = ((v - off) / span).clamp(0.0, 1.0);
            if t.is_nan() {
                0
            } else {
                (t * 255.0).round() as u8
            }
        })
        .collect();
    image::GrayImage::from_raw(w as u32, h as u32, px)
        .expect("h * w pixels")
        .save(path)
        .with_context(|| format!("writing {}", path.display()))
}

/// The mask as a black and white PNG per image (`_n<i>` when several), white = active.
pub fn write_mask(dir: &Path, stem: &str, mask: &Mask) -> Result<Vec<PathBuf>> {
    let [n, h, w] = mask.shape();
    let mut files = Vec::new();
    for (b, plane) in mask.data().chunks_exact(h * w).enumerate() {
        let name = if n > 1 {
            format!("{stem}_mask_n{b}.png")
        } else {
            format!("{stem}_mask.png")
        };
        let path = dir.join(name);
        grey_png(plane, h, w, MapScale::Clip, &path)?;
        files.push(path);
    }
    Ok(files)
}

/// The mask pass and masked run of one input, for the JSON record.
#[derive(serde::Serialize)]
pub struct MaskedJson {
    /// `"auto"` (low-resolution pass) or the mask file.
    pub source: String,
    /// `"exact"` or `"fast"`.
    pub mode: String,
    /// Fraction of the input's pixels the mask marks active.
    pub active_fraction: f64,
    /// The low-resolution pass's input `[H, W]` (auto masks).
    pub low_res: Option<[usize; 2]>,
    /// Its options (auto masks).
    pub scale: Option<f32>,
    /// Threshold on the first output map (auto masks).
    pub threshold: Option<f32>,
    /// Dilation in input pixels (auto masks).
    pub dilate: Option<usize>,
    /// Convs run densely, block-sparsely, skipped.
    pub convs_dense: usize,
    /// See `convs_dense`.
    pub convs_sparse: usize,
    /// See `convs_dense`.
    pub convs_skipped: usize,
    /// Conv MACs computed over the dense total.
    pub conv_work: f64,
    /// Other ops computed only on the pixels they must produce.
    pub ops_masked: usize,
    /// Other ops run densely.
    pub ops_dense: usize,
    /// Per output map: max |sparse - dense| inside the mask.
    pub max_abs_err_inside: Vec<(String, f32)>,
}

/// The JSON record of one input.
#[derive(serde::Serialize)]
pub struct RunJson {
    /// The input file.
    pub input: String,
    /// The tensor fed.
    pub input_shape: Vec<usize>,
    /// How an image was preprocessed (null for a `.npy`).
    pub preprocessing: Option<String>,
    /// Median dense time.
    pub dense_ms: f64,
    /// Median time of the mask's low-resolution pass (auto masks).
    pub mask_ms: Option<f64>,
    /// Median time of the masked run alone.
    pub sparse_ms: Option<f64>,
    /// Median of mask pass + masked run, timed together.
    pub end_to_end_ms: Option<f64>,
    /// The masked run, when there is one.
    pub masked: Option<MaskedJson>,
    /// Every output of the dense run.
    pub outputs: Vec<Named>,
    /// Every output of the masked run.
    pub sparse_outputs: Option<Vec<Named>>,
    /// The PNGs written (maps and mask).
    pub files: Vec<String>,
}
