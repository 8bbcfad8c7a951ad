//! The computation mask and its reduction to active blocks.
use super::{BlockGrid, BlockIndex};
use crate::error::{param_err, shape_err, KernelError, Result};

/// A computation mask `[n, h, w]`: where the caller wants output. Values are usually 0/1
/// but any finite value works with a threshold.
#[derive(Clone, Debug, PartialEq)]
pub struct Mask {
    shape: [usize; 3],
    data: Vec<f32>,
}

impl Mask {
    /// Wraps a buffer of `n*h*w` finite values.
    pub fn from_vec(shape: [usize; 3], data: Vec<f32>) -> Result<Self> {
        let len: usize = shape.iter().product();
        if data.len() != len {
            return shape_err(
                "Mask::from_vec",
                format!("shape {shape:?} needs {len} values, got {}", data.len()),
            );
        }
        if let Some(i) = data.iter().position(|v| !v.is_finite()) {
            return Err(KernelError::NonFinite {
                op: "Mask::from_vec",
                detail: format!("mask value {i} is {}", data[i]),
            });
        }
        Ok(Self { shape, data })
    }

    /// A mask from a predicate on `(n, y, x)`: 1 where it holds, 0 elsewhere.
    pub fn from_fn(shape: [usize; 3], f: impl Fn(usize, usize, usize) -> bool) -> Self {
        let [n, h, w] = shape;
        let mut data = Vec::with_capacity(n * h * w);
        for b in 0..n {
            for y in 0..h {
                for x in 0..w {
                    data.push(if f(b, y, x) { 1.0 } else { 0.0 });
                }
            }
        }
        Self { shape, data }
    }

    /// The shape `[n, h, w]`.
    pub fn shape(&self) -> [usize; 3] {
        self.shape
    }

    /// The values, row-major.
    pub fn data(&self) -> &[f32] {
        &self.data
    }

    /// Max filter over a `(2r+1) x (2r+1)` window: marks every pixel within `r` (Chebyshev)
    /// of a marked one. Used to grow a region by the receptive field of the layers after it.
    pub fn dilate(&self, r: usize) -> Mask {
        let [n, h, w] = self.shape;
        let mut rows = vec![0f32; self.data.len()];
        for (src, dst) in self.data.chunks_exact(w).zip(rows.chunks_exact_mut(w)) {
            for x in 0..w {
                dst[x] = src[x.saturating_sub(r)..(x + r + 1).min(w)]
                    .iter()
                    .fold(f32::MIN, |m, &v| m.max(v));
            }
        }
        let mut data = vec![0f32; self.data.len()];
        for b in 0..n {
            let plane = &rows[b * h * w..(b + 1) * h * w];
            for y in 0..h {
                for x in 0..w {
                    data[(b * h + y) * w + x] = (y.saturating_sub(r)..(y + r + 1).min(h))
                        .map(|yy| plane[yy * w + x])
                        .fold(f32::MIN, f32::max);
                }
            }
        }
        Mask {
            shape: self.shape,
            data,
        }
    }

    /// Fraction of values above `threshold`.
    pub fn density(&self, threshold: f32) -> f64 {
        let on = self.data.iter().filter(|&&v| v > threshold).count();
        on as f64 / self.data.len().max(1) as f64
    }
}

/// How a window of the mask is pooled before the threshold.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Pooling {
    /// Active when any value in the window exceeds the threshold.
    #[default]
    Max,
    /// Active when the window's mean (over its part inside the image) exceeds the threshold.
    Avg,
}

/// Lists the windows of `grid` whose pooled mask value exceeds `threshold`, in (n, by, bx)
/// order. Windows are clipped to the image. An empty mask gives an empty list.
pub fn reduce_mask(
    mask: &Mask,
    grid: &BlockGrid,
    pooling: Pooling,
    threshold: f32,
) -> Result<Vec<BlockIndex>> {
    let [n, h, w] = mask.shape;
    if !threshold.is_finite() {
        return param_err(
            "reduce_mask",
            format!("threshold {threshold} is not finite"),
        );
    }
    if grid.size.contains(&0) || grid.stride.contains(&0) {
        return param_err(
            "reduce_mask",
            format!("grid {grid:?} has a zero size or stride"),
        );
    }
    let mut out = Vec::new();
    for b in 0..n {
        let plane = &mask.data[b * h * w..(b + 1) * h * w];
        for by in 0..grid.count[0] {
            let [y0, _] = grid.origin(by, 0);
            let (ya, yb) = clip(y0, grid.size[0], h);
            for bx in 0..grid.count[1] {
                let [_, x0] = grid.origin(by, bx);
                let (xa, xb) = clip(x0, grid.size[1], w);
                if ya >= yb || xa >= xb {
                    continue;
                }
                let rows = (ya..yb).map(|y| &plane[y * w + xa..y * w + xb]);
                let active = match pooling {
                    Pooling::Max => rows.flatten().any(|&v| v > threshold),
                    Pooling::Avg => {
                        let s: f64 = rows.flatten().map(|&v| v as f64).sum();
                        s / ((yb - ya) * (xb - xa)) as f64 > threshold as f64
                    }
                };
                if active {
                    out.push(BlockIndex {
                        n: b as u32,
                        by: by as u32,
                        bx: bx as u32,
                    });
                }
            }
        }
    }
    Ok(out)
}

/// `start..start+len` intersected with `0..limit`, as a (possibly empty) range.
#[inline]
pub(super) fn clip(start: isize, len: usize, limit: usize) -> (usize, usize) {
    let a = start.clamp(0, limit as isize) as usize;
    let b = (start + len as isize).clamp(0, limit as isize) as usize;
    (a, b.max(a))
}
