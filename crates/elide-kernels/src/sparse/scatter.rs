//! Writes or adds a stack of tiles back into a base tensor.
use super::{gather::check_blocks, mask::clip, BlockGrid, BlockIndex};
use crate::conv::Activation;
use crate::copy::copy_row;
use crate::error::{shape_err, Result};
use crate::Tensor;
use rayon::prelude::*;

/// How a tile combines with the base.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScatterMode {
    /// `base = act(tile)`.
    Write,
    /// `base = act(base + tile)` (a residual connection when the base is the shortcut).
    Add,
}

#[derive(Clone, Copy)]
pub(super) struct BasePtr(pub(super) *mut f32);
// SAFETY: only shared across threads when the grid's windows do not overlap, so every
// thread writes a disjoint set of base elements.
unsafe impl Send for BasePtr {}
unsafe impl Sync for BasePtr {}

impl BasePtr {
    // A method, so closures capture the whole Send + Sync wrapper rather than its raw field.
    fn at(self, i: usize) -> *mut f32 {
        // SAFETY: callers pass offsets inside the base buffer.
        unsafe { self.0.add(i) }
    }
}

/// Scatters `stack[i]` (`[C, size_h, size_w]`) into window `blocks[i]` of `base` in place,
/// clipped to the image. Elements of `base` outside every window are left untouched.
/// Overlapping windows are processed in block order (later blocks win for `Write`).
pub fn sparse_scatter(
    stack: &Tensor,
    blocks: &[BlockIndex],
    grid: &BlockGrid,
    base: &mut Tensor,
    mode: ScatterMode,
    act: Activation,
) -> Result<()> {
    let [n, c, h, w] = base.shape();
    let [th, tw] = grid.size;
    let want = [blocks.len(), c, th, tw];
    if stack.shape() != want {
        return shape_err(
            "sparse_scatter",
            format!("stack is {:?}, expected {want:?}", stack.shape()),
        );
    }
    check_blocks("sparse_scatter", blocks, grid, n)?;
    let ptr = BasePtr(base.data_mut().as_mut_ptr());
    let tile = c * th * tw;
    let one = |(src, b): (&[f32], &BlockIndex)| {
        // SAFETY: `ptr` is `base`'s buffer of shape [n, c, h, w]; see BasePtr for aliasing.
        unsafe { scatter_tile(src, grid.size, b, grid, ptr, [n, c, h, w], mode, act) }
    };
    if tile == 0 {
        return Ok(());
    }
    if grid.overlaps() {
        stack.data().chunks_exact(tile).zip(blocks).for_each(one);
    } else {
        stack
            .data()
            .par_chunks_exact(tile)
            .zip(blocks.par_iter())
            .for_each(one);
    }
    Ok(())
}

/// Combines one tile into window `b` of the base behind `ptr`. The tile is `[C, rows, cols]`
/// (`[rows, cols] = src_dims`, at least the window's size); its top-left window is used.
///
/// # Safety
/// `ptr` must point to a live `[n, c, h, w]` buffer (`shape`) that no other thread reads or
/// writes inside this window while the call runs; `b` must lie inside `grid` and the batch.
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn scatter_tile(
    src: &[f32],
    [rows, cols]: [usize; 2],
    b: &BlockIndex,
    grid: &BlockGrid,
    ptr: BasePtr,
    [_, c, h, w]: [usize; 4],
    mode: ScatterMode,
    act: Activation,
) {
    let [th, tw] = grid.size;
    let [y0, x0] = grid.origin(b.by as usize, b.bx as usize);
    let (ya, yb) = clip(y0, th, h);
    let (xa, xb) = clip(x0, tw, w);
    if ya >= yb || xa >= xb {
        return;
    }
    let lo = (xa as isize - x0) as usize;
    for ci in 0..c {
        let plane = (b.n as usize * c + ci) * h * w;
        for y in ya..yb {
            let ty = (y as isize - y0) as usize;
            let s = &src[(ci * rows + ty) * cols + lo..][..xb - xa];
            // SAFETY: the row lies inside the base (clipped above); the caller rules out races.
            let d = unsafe { std::slice::from_raw_parts_mut(ptr.at(plane + y * w + xa), xb - xa) };
            match (mode, act) {
                (ScatterMode::Write, Activation::None) => copy_row(d, s),
                (ScatterMode::Write, a) => d.iter_mut().zip(s).for_each(|(d, &s)| *d = a.apply(s)),
                (ScatterMode::Add, Activation::None) => {
                    d.iter_mut().zip(s).for_each(|(d, &s)| *d += s)
                }
                (ScatterMode::Add, Activation::Relu) => d
                    .iter_mut()
                    .zip(s)
                    .for_each(|(d, &s)| *d = (*d + s).max(0.0)),
                (ScatterMode::Add, a) => {
                    d.iter_mut().zip(s).for_each(|(d, &s)| *d = a.apply(*d + s))
                }
            }
        }
    }
}
