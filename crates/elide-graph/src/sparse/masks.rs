//! Making computation masks: from an array (nonzero = active), a threshold on a tensor, the
//! difference of two frames, a cheap low-resolution pass of the model itself
//! ([`mask_from_low_res`]); and resampling a mask to another resolution by max pooling.
use crate::{Graph, GraphError, Result, Value};
use elide_kernels::sparse::Mask;
use ndarray::{ArrayD, Axis, IxDyn};

/// A 0/1 mask from an array `[n, h, w]` or `[h, w]`: active where `active(value)` holds; for
/// `[n, c, h, w]`, where it holds in any channel.
fn mask_where(x: &ArrayD<f32>, what: &str, active: impl Fn(f32) -> bool) -> Result<Mask> {
    let x4 = match x.ndim() {
        2 => x.view().insert_axis(Axis(0)).insert_axis(Axis(0)),
        3 => x.view().insert_axis(Axis(1)),
        4 => x.view(),
        _ => {
            return Err(GraphError::Model(format!(
                "{what} must be [H, W], [N, H, W] or [N, C, H, W], got {:?}",
                x.shape()
            )))
        }
    };
    let s = x4.shape();
    let (n, h, w) = (s[0], s[2], s[3]);
    let mut data = vec![0f32; n * h * w];
    for ((b, _, y, xx), &v) in x4
        .into_dimensionality::<ndarray::Ix4>()
        .expect("made 4-D above")
        .indexed_iter()
    {
        if active(v) {
            data[(b * h + y) * w + xx] = 1.0;
        }
    }
    Ok(Mask::from_vec([n, h, w], data)?)
}

/// A mask from an array `[n, h, w]` or `[h, w]`: nonzero = active (NaN is an error).
pub fn mask_from_array(x: &ArrayD<f32>) -> Result<Mask> {
    if x.ndim() == 4 {
        return Err(GraphError::Model(format!(
            "a mask must be [H, W] or [N, H, W], got {:?}",
            x.shape()
        )));
    }
    if let Some(v) = x.iter().find(|v| !v.is_finite()) {
        return Err(GraphError::Model(format!(
            "mask holds the non-finite value {v}"
        )));
    }
    mask_where(x, "a mask", |v| v != 0.0)
}

/// Active where the tensor (`[n, c, h, w]`, `[n, h, w]` or `[h, w]`) exceeds `threshold` in
/// any channel, e.g. a detector's probability map from the previous frame.
pub fn mask_from_threshold(x: &ArrayD<f32>, threshold: f32) -> Result<Mask> {
    mask_where(x, "the tensor", |v| v > threshold)
}

/// Active where two frames of the same shape differ by more than `threshold` (absolute) in
/// any channel: the pixels to recompute for the new frame.
pub fn mask_from_difference(a: &ArrayD<f32>, b: &ArrayD<f32>, threshold: f32) -> Result<Mask> {
    if a.shape() != b.shape() {
        return Err(GraphError::Model(format!(
            "frames differ in shape: {:?} and {:?}",
            a.shape(),
            b.shape()
        )));
    }
    mask_where(&(a - b), "a frame", |v| v.abs() > threshold)
}

/// Source index range `[lo, hi)` of target index `t` when `src` pixels map onto `dst`.
fn source(t: usize, dst: usize, src: usize) -> (usize, usize) {
    let lo = t * src / dst;
    let hi = ((t + 1) * src).div_ceil(dst).max(lo + 1).min(src);
    (lo, hi)
}

/// The mask at `[n, h, w]`: each target pixel takes the max over the source pixels it
/// covers (down-sampling keeps every active pixel; up-sampling repeats them).
pub fn resample_max(mask: &Mask, [n, h, w]: [usize; 3]) -> Result<Mask> {
    let [mn, mh, mw] = mask.shape();
    if mn != n {
        return Err(GraphError::Model(format!(
            "the mask has {mn} images, the tensor {n}"
        )));
    }
    if [mh, mw] == [h, w] {
        return Ok(mask.clone());
    }
    let d = mask.data();
    let mut cols = vec![0f32; n * mh * w];
    for r in 0..n * mh {
        for x in 0..w {
            let (lo, hi) = source(x, w, mw);
            cols[r * w + x] = d[r * mw + lo..r * mw + hi]
                .iter()
                .fold(0f32, |a, &b| a.max(b));
        }
    }
    let mut out = vec![0f32; n * h * w];
    for b in 0..n {
        for y in 0..h {
            let (lo, hi) = source(y, h, mh);
            for sy in lo..hi {
                let src = &cols[(b * mh + sy) * w..(b * mh + sy + 1) * w];
                let dst = &mut out[(b * h + y) * w..(b * h + y + 1) * w];
                dst.iter_mut().zip(src).for_each(|(a, &s)| *a = a.max(s));
            }
        }
    }
    Ok(Mask::from_vec([n, h, w], out)?)
}

/// How [`mask_from_low_res`] makes a mask from a cheap pass of the model itself (SBNet's
/// "low-resolution segmentation network", with the model as its own low-resolution network).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LowRes {
    /// The input's height and width are divided by this (finite, >= 1; 4 runs the model on
    /// 1/16 of the pixels).
    pub scale: f32,
    /// A pixel of the low-resolution map is active where it exceeds this in any channel (not
    /// NaN; 0.3 suits PP-OCR's text probability map).
    pub threshold: f32,
    /// The mask, upsampled to the input's resolution, grows by this many input pixels
    /// (Chebyshev distance), to cover what the coarse pass located only roughly.
    pub dilate: usize,
    /// The low-resolution height and width are rounded to a multiple of this (>= 1): models
    /// such as PP-OCR and YOLOv8 need sides divisible by 32.
    pub multiple: usize,
}

impl Default for LowRes {
    fn default() -> Self {
        Self {
            scale: 4.0,
            threshold: 0.3,
            dilate: 8,
            multiple: 1,
        }
    }
}

impl LowRes {
    fn check(&self) -> Result<()> {
        let arg = |name, detail: String| Err(GraphError::Argument { name, detail });
        if !(self.scale.is_finite() && self.scale >= 1.0) {
            return arg(
                "scale",
                format!("must be a finite number >= 1, got {}", self.scale),
            );
        }
        if self.threshold.is_nan() {
            return arg("threshold", "must not be NaN".into());
        }
        if self.multiple == 0 {
            return arg("multiple", "must be at least 1".into());
        }
        Ok(())
    }

    /// The low-resolution `[height, width]` for an input of `[h, w]`: each side divided by
    /// [`LowRes::scale`] and rounded to the nearest multiple of [`LowRes::multiple`] (halves
    /// up), at least one multiple.
    pub fn size(&self, [h, w]: [usize; 2]) -> Result<[usize; 2]> {
        self.check()?;
        let m = self.multiple as f64;
        let side =
            |s: usize| ((s as f64 / self.scale as f64 / m + 0.5).floor().max(1.0) * m) as usize;
        Ok([side(h), side(w)])
    }
}

/// Bilinear resampling of an NCHW tensor to `[h, w]`: half-pixel centres, borders clamped
/// (OpenCV's `INTER_LINEAR`, ONNX `Resize` linear/half_pixel), no antialiasing. When
/// downscaling, each output pixel reads the 2x2 input pixels around its centre: measured on
/// PP-OCRv4 (a page at 960x960 downscaled to 256x256), an antialiasing (area) filter greys
/// thin text below what the detector responds to (6% of the full-resolution text found at
/// threshold 0.3, against 37% for plain bilinear), so this sharper sampling is the one
/// [`mask_from_low_res`] uses.
pub fn resize_bilinear(x: &ArrayD<f32>, [h, w]: [usize; 2]) -> Result<ArrayD<f32>> {
    let &[n, c, ih, iw] = x.shape() else {
        return Err(GraphError::Model(format!(
            "bilinear resizing needs an NCHW tensor, got {:?}",
            x.shape()
        )));
    };
    if h == 0 || w == 0 || ih == 0 || iw == 0 {
        return Err(GraphError::Argument {
            name: "size",
            detail: format!("cannot resize {:?} to {h}x{w}", x.shape()),
        });
    }
    // Per output coordinate: the two source indices and the weight of the second.
    let taps = |dst: usize, src: usize| -> Vec<(usize, usize, f32)> {
        let r = src as f64 / dst as f64;
        (0..dst)
            .map(|d| {
                let s = ((d as f64 + 0.5) * r - 0.5).max(0.0);
                let i0 = (s.floor() as usize).min(src - 1);
                (i0, (i0 + 1).min(src - 1), (s - i0 as f64).min(1.0) as f32)
            })
            .collect()
    };
    let (ty, tx) = (taps(h, ih), taps(w, iw));
    let src = x.as_standard_layout();
    let src = src.as_slice().expect("standard layout");
    let mut out = vec![0f32; n * c * h * w];
    let mut row0 = vec![0f32; w];
    let mut row1 = vec![0f32; w];
    for (plane, dst) in src.chunks_exact(ih * iw).zip(out.chunks_exact_mut(h * w)) {
        let hrow = |r: usize, buf: &mut [f32]| {
            let line = &plane[r * iw..(r + 1) * iw];
            for (b, &(x0, x1, f)) in buf.iter_mut().zip(&tx) {
                *b = line[x0] + (line[x1] - line[x0]) * f;
            }
        };
        for (drow, &(y0, y1, f)) in dst.chunks_exact_mut(w).zip(&ty) {
            hrow(y0, &mut row0);
            hrow(y1, &mut row1);
            for ((d, &a), &b) in drow.iter_mut().zip(&row0).zip(&row1) {
                *d = a + (b - a) * f;
            }
        }
    }
    Ok(ArrayD::from_shape_vec(IxDyn(&[n, c, h, w]), out).expect("length matches shape"))
}

/// Marks every pixel within `r` (Chebyshev distance) of an active (> 0.5) one; O(1) per
/// pixel (running counts), whatever `r`.
pub fn dilate_mask(mask: &Mask, r: usize) -> Mask {
    if r == 0 {
        return mask.clone();
    }
    let [n, h, w] = mask.shape();
    // One pass along a line of `len` values `stride` apart: active where any value within r is.
    let pass = |data: &mut [f32], starts: &mut dyn Iterator<Item = usize>, len: usize, stride| {
        let mut line = vec![false; len];
        for s in starts {
            for (i, l) in line.iter_mut().enumerate() {
                *l = data[s + i * stride] > 0.5;
            }
            // `last` = index of the latest active value seen so far (from the left), `next`
            // scanned from the right: a pixel is active when one lies within r either way.
            let mut last: Option<usize> = None;
            let mut left = vec![false; len];
            for i in 0..len {
                if line[i] {
                    last = Some(i);
                }
                left[i] = last.is_some_and(|j| i - j <= r);
            }
            let mut next: Option<usize> = None;
            for i in (0..len).rev() {
                if line[i] {
                    next = Some(i);
                }
                let on = left[i] || next.is_some_and(|j| j - i <= r);
                data[s + i * stride] = f32::from(u8::from(on));
            }
        }
    };
    let mut data = mask.data().to_vec();
    pass(&mut data, &mut (0..n * h).map(|row| row * w), w, 1);
    pass(
        &mut data,
        &mut (0..n).flat_map(|b| (0..w).map(move |x| b * h * w + x)),
        h,
        w,
    );
    Mask::from_vec([n, h, w], data).expect("0/1 values of the mask's shape")
}

/// A mask for `input` (`[n, c, h, w]`) from a cheap dense pass of `graph` itself: the input
/// downscaled by `opts.scale` ([`resize_bilinear`], sides rounded by [`LowRes::size`]), the
/// graph's first output (a map `[n, c', h', w']`, h' and w' >= 2) thresholded in any channel,
/// max-resampled to `[n, h, w]` ([`resample_max`]: every input pixel under an active map
/// pixel), then dilated by `opts.dilate` input pixels ([`dilate_mask`]).
///
/// Errors: a bad option ([`GraphError::Argument`]: scale not >= 1 or not finite, NaN
/// threshold, multiple 0), an input that is not 4-D, a graph with other than one input, a
/// first output that is not such a map, or the graph failing at the low resolution (e.g. a
/// side not divisible by what the model needs: set `multiple`).
pub fn mask_from_low_res(graph: &Graph, input: &ArrayD<f32>, opts: &LowRes) -> Result<Mask> {
    opts.check()?;
    let &[n, _, h, w] = input.shape() else {
        return Err(GraphError::Model(format!(
            "a low-resolution pass needs an NCHW input, got {:?}",
            input.shape()
        )));
    };
    if graph.inputs.len() != 1 {
        return Err(GraphError::Model(format!(
            "a low-resolution pass feeds one input; the model takes {}",
            graph.inputs.len()
        )));
    }
    let size = opts.size([h, w])?;
    let small = resize_bilinear(input, size)?;
    let outs = graph.run(vec![Value::F32(small)])?;
    let name = graph
        .outputs
        .first()
        .map_or("?", |&o| graph.names[o].as_str());
    let is_map =
        |m: &ArrayD<f32>| matches!(m.shape(), &[b, _, mh, mw] if b == n && mh >= 2 && mw >= 2);
    let map = match outs.first() {
        Some(Value::F32(m)) if is_map(m) => m,
        other => {
            let what = other.map_or("missing".into(), |v| format!("{:?}", v.shape()));
            return Err(GraphError::Model(format!(
                "the model's first output '{name}' is {what}, not a map [{n}, C, H, W] with H, W >= 2: a low-resolution pass needs a dense predictor"
            )));
        }
    };
    let low = mask_from_threshold(map, opts.threshold)?;
    let full = resample_max(&low, [n, h, w])?;
    Ok(dilate_mask(&full, opts.dilate))
}
