//! Gathers the active windows of an image into a dense stack of tiles.
use super::{mask::clip, BlockGrid, BlockIndex};
use crate::copy::{all_finite, copy_row};
use crate::error::{shape_err, KernelError, Result};
use crate::Tensor;
use rayon::prelude::*;

/// Copies window `blocks[i]` of `x` into `stack[i]`, giving `[blocks.len(), C, size_h, size_w]`.
/// Pixels outside the image are zero. Errors on out-of-range blocks and on NaN/inf in what
/// it reads (values outside the active windows are never read, so never checked).
pub fn sparse_gather(x: &Tensor, blocks: &[BlockIndex], grid: &BlockGrid) -> Result<Tensor> {
    let [_, c, _, _] = x.shape();
    let mut stack = Tensor::zeros([blocks.len(), c, grid.size[0], grid.size[1]]);
    sparse_gather_into(x, blocks, grid, &mut stack)?;
    Ok(stack)
}

/// [`sparse_gather`] into a caller-owned stack of shape `[blocks.len(), C, size_h, size_w]`.
pub fn sparse_gather_into(
    x: &Tensor,
    blocks: &[BlockIndex],
    grid: &BlockGrid,
    stack: &mut Tensor,
) -> Result<()> {
    let [n, c, _, _] = x.shape();
    let [th, tw] = grid.size;
    let want = [blocks.len(), c, th, tw];
    if stack.shape() != want {
        return shape_err(
            "sparse_gather",
            format!("stack is {:?}, expected {want:?}", stack.shape()),
        );
    }
    check_blocks("sparse_gather", blocks, grid, n)?;
    if blocks.is_empty() || c == 0 {
        return Ok(());
    }
    let tile = c * th * tw;
    stack
        .data_mut()
        .par_chunks_mut(tile)
        .zip(blocks.par_iter())
        .try_for_each(|(dst, b)| gather_tile(x, b, grid, dst, th))
}

/// Copies window `b` of `x` into `dst` (`[C, rows, size_w]` with `rows >= size_h`; rows past
/// the window are zeroed), zeros outside the image; errors on NaN/inf in what it copied.
pub(super) fn gather_tile(
    x: &Tensor,
    b: &BlockIndex,
    grid: &BlockGrid,
    dst: &mut [f32],
    rows: usize,
) -> Result<()> {
    let [_, c, h, w] = x.shape();
    let [th, tw] = grid.size;
    let [y0, x0] = grid.origin(b.by as usize, b.bx as usize);
    let (xa, xb) = clip(x0, tw, w);
    for ci in 0..c {
        let src = x.plane(b.n as usize, ci);
        let (plane, slack) = dst[ci * rows * tw..(ci + 1) * rows * tw].split_at_mut(th * tw);
        slack.fill(0.0);
        for (ty, drow) in plane.chunks_exact_mut(tw).enumerate() {
            let iy = y0 + ty as isize;
            if iy < 0 || iy >= h as isize || xa >= xb {
                drow.fill(0.0);
                continue;
            }
            let lo = (xa as isize - x0) as usize;
            let hi = (xb as isize - x0) as usize;
            drow[..lo].fill(0.0);
            drow[hi..].fill(0.0);
            let row = iy as usize * w;
            copy_row(&mut drow[lo..hi], &src[row + xa..row + xb]);
        }
    }
    if all_finite(dst) {
        return Ok(());
    }
    match dst.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(i) => Err(KernelError::NonFinite {
            op: "sparse_gather",
            detail: format!(
                "input value {} found in block {b:?} (channel {})",
                dst[i],
                i / (rows * tw)
            ),
        }),
    }
}

pub(super) fn check_blocks(
    op: &'static str,
    blocks: &[BlockIndex],
    grid: &BlockGrid,
    n: usize,
) -> Result<()> {
    match blocks.iter().find(|b| {
        b.n as usize >= n || b.by as usize >= grid.count[0] || b.bx as usize >= grid.count[1]
    }) {
        None => Ok(()),
        Some(b) => shape_err(
            op,
            format!(
                "block {b:?} is outside a batch of {n} with a {:?} grid",
                grid.count
            ),
        ),
    }
}
