//! The two loops behind the training ops, generic over the element type (`f32` for training,
//! `f64` for finite-difference checks): one gather, one scatter (write or add). Every other
//! operation of [`super::ops`], backward passes included, is built from these two.
use elide_kernels::sparse::{BlockGrid, BlockIndex, ScatterMode};
use rayon::prelude::*;
use std::ops::Add;

/// The part `a..b` of `start..start + len` that lies inside `0..limit` (empty: `a == b`).
fn clip(start: isize, len: usize, limit: usize) -> (usize, usize) {
    let a = start.clamp(0, limit as isize) as usize;
    let b = start.saturating_add(len as isize).clamp(0, limit as isize) as usize;
    (a, b.max(a))
}

/// Errors (as a message) unless every block lies in a batch of `n` images and in the grid.
pub(super) fn check_blocks(
    blocks: &[BlockIndex],
    grid: &BlockGrid,
    n: usize,
) -> Result<(), String> {
    match blocks.iter().find(|b| {
        b.n as usize >= n || b.by as usize >= grid.count[0] || b.bx as usize >= grid.count[1]
    }) {
        None => Ok(()),
        Some(b) => Err(format!(
            "block {b:?} is outside a batch of {n} images with a {:?} grid",
            grid.count
        )),
    }
}

/// One window as rows `ya..yb`, columns `xa..xb` of the image, and the tile row / column
/// where `(ya, xa)` lands. `None` when the window misses the image.
fn window(b: &BlockIndex, grid: &BlockGrid, h: usize, w: usize) -> Option<[usize; 6]> {
    let [y0, x0] = grid.origin(b.by as usize, b.bx as usize);
    let (ya, yb) = clip(y0, grid.size[0], h);
    let (xa, xb) = clip(x0, grid.size[1], w);
    let ty = (ya as isize - y0) as usize;
    let tx = (xa as isize - x0) as usize;
    (ya < yb && xa < xb).then_some([ya, yb, xa, xb, ty, tx])
}

/// Copies window `blocks[i]` of `x` (`dims = [N, C, H, W]`, contiguous) into tile `i` of a new
/// `[blocks.len(), C, size_h, size_w]` stack; pixels outside the image are zero.
/// Callers check the blocks first.
pub(super) fn gather<T: Copy + Default + Send + Sync>(
    x: &[T],
    dims: [usize; 4],
    blocks: &[BlockIndex],
    grid: &BlockGrid,
) -> Vec<T> {
    let [_, c, h, w] = dims;
    let [th, tw] = grid.size;
    let tile = c * th * tw;
    let mut stack = vec![T::default(); blocks.len() * tile];
    if tile == 0 {
        return stack;
    }
    stack
        .par_chunks_mut(tile)
        .zip(blocks.par_iter())
        .for_each(|(dst, b)| {
            let Some([ya, yb, xa, xb, ty, tx]) = window(b, grid, h, w) else {
                return;
            };
            for ci in 0..c {
                let plane = &x[(b.n as usize * c + ci) * h * w..][..h * w];
                for (r, y) in (ya..yb).enumerate() {
                    let d = (ci * th + ty + r) * tw + tx;
                    dst[d..d + xb - xa].copy_from_slice(&plane[y * w + xa..y * w + xb]);
                }
            }
        });
    stack
}

/// Writes (`Write`) or adds (`Add`) tile `i` of `stack` into window `blocks[i]` of `base`
/// (`dims = [N, C, H, W]`, contiguous), clipped to the image. Blocks are applied in order, so
/// overlapping windows accumulate under `Add`. Callers check the blocks and the stack shape.
pub(super) fn scatter<T: Copy + Add<Output = T>>(
    base: &mut [T],
    dims: [usize; 4],
    stack: &[T],
    blocks: &[BlockIndex],
    grid: &BlockGrid,
    mode: ScatterMode,
) {
    let [_, c, h, w] = dims;
    let [th, tw] = grid.size;
    let tile = c * th * tw;
    if tile == 0 {
        return;
    }
    for (src, b) in stack.chunks_exact(tile).zip(blocks) {
        let Some([ya, yb, xa, xb, ty, tx]) = window(b, grid, h, w) else {
            continue;
        };
        for ci in 0..c {
            let plane = &mut base[(b.n as usize * c + ci) * h * w..][..h * w];
            for (r, y) in (ya..yb).enumerate() {
                let s = &src[(ci * th + ty + r) * tw + tx..][..xb - xa];
                let d = &mut plane[y * w + xa..y * w + xb];
                match mode {
                    ScatterMode::Write => d.copy_from_slice(s),
                    ScatterMode::Add => d.iter_mut().zip(s).for_each(|(d, &s)| *d = *d + s),
                }
            }
        }
    }
}
