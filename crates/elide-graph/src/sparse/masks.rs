//! Making computation masks: from an array (nonzero = active), a threshold on a tensor, the
//! difference of two frames; and resampling a mask to another resolution by max pooling.
use crate::{GraphError, Result};
use elide_kernels::sparse::Mask;
use ndarray::{ArrayD, Axis};

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
