//! Fused per-block pipelines: gather one window, compute, combine, all while it is in cache.
//!
//! The stack-based ops (`sparse_gather` -> dense op on the stack -> `sparse_scatter`) write
//! every gathered window and every intermediate tile to memory and read it back. Here each
//! worker thread takes one active block at a time, gathers its window into a per-thread
//! scratch tile, runs the caller's computation into another scratch tile, and combines the
//! result with its destination straight away, so per block only the input window is read
//! and the output block written.
use super::gather::{check_blocks, gather_tile};
use super::scatter::{scatter_tile, BasePtr};
use super::{BlockGrid, BlockIndex, ConvBlocks, ScatterMode};
use crate::conv::Activation;
use crate::copy::copy_row;
use crate::error::KernelError;
use crate::{with_scratch, Tensor};
use rayon::prelude::*;

/// Where [`blockwise`] puts each block's result.
pub enum BlockSink<'a> {
    /// Combine it into the output grid's window of `base` at once. `base` is a different
    /// tensor from the input, so no block can read another block's result.
    Scatter {
        /// The output tensor, `[N, Cout, Ho, Wo]`.
        base: &'a mut Tensor,
        /// Write or add.
        mode: ScatterMode,
        /// Applied to what is written.
        act: Activation,
    },
    /// Store it as `stack[i]` (`[blocks.len(), Cout, bh, bw]`), for callers that update the
    /// input in place and so must finish reading before anything is written.
    Stack(&'a mut Tensor),
}

/// Extra room around the tiles of a per-block pipeline, for kernels that want slack
/// (see `Conv2d::forward_wide`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TileLayout {
    /// Zeroed rows below each gathered window.
    pub window_extra_rows: usize,
    /// Rows and columns of each result beyond its blocks: results are
    /// `[1, Cout, bh + rows, r*bw + cols]` and only the top-left `bh x r*bw` is used.
    pub result_extra: [usize; 2],
}

/// Runs `f(window, block, result)` for every run of up to `max_span` horizontally adjacent
/// active blocks (see [`for_each_run`]): `block` is the run's first block and `window` its
/// input window (`[1, C, th + extra rows, tw + (r-1)*stride]` for a run of `r`, zeros outside
/// the image, NaN/inf rejected), gathered into per-thread scratch.
#[allow(clippy::too_many_arguments)]
pub fn blockwise<F, E>(
    x: &Tensor,
    blocks: &[BlockIndex],
    grids: &ConvBlocks,
    out_channels: usize,
    max_span: usize,
    layout: TileLayout,
    sink: BlockSink<'_>,
    f: F,
) -> std::result::Result<(), E>
where
    F: Fn(&Tensor, &BlockIndex, &mut Tensor) -> std::result::Result<(), E> + Sync,
    E: From<KernelError> + Send,
{
    let [n, c, _, _] = x.shape();
    let run = |b: &BlockIndex, r: usize, result: &mut Tensor| {
        let input = span_grid(&grids.input, r);
        let rows = input.size[0] + layout.window_extra_rows;
        with_scratch([1, c, rows, input.size[1]], |window| {
            gather_tile(x, b, &input, window.data_mut(), rows)?;
            f(window, b, result)
        })
    };
    for_each_run(n, blocks, grids, out_channels, max_span, layout, sink, run)
}

/// Runs `f(block, r, result)` for every run of up to `max_span` horizontally adjacent active
/// blocks (consecutive in `blocks`, same image and block row): `block` is the run's first
/// block, `r` its length, and `f` must fill `result` (`[1, out_channels, bh, r*bw]` plus the
/// layout's extra rows and columns, contents unspecified on entry), which then goes to `sink`. Runs make wider tiles, so fewer, larger
/// GEMM calls and less halo per output pixel. Runs are processed in parallel; each thread
/// reuses its own scratch tile.
#[allow(clippy::too_many_arguments)]
pub fn for_each_run<F, E>(
    images: usize,
    blocks: &[BlockIndex],
    grids: &ConvBlocks,
    out_channels: usize,
    max_span: usize,
    layout: TileLayout,
    sink: BlockSink<'_>,
    f: F,
) -> std::result::Result<(), E>
where
    F: Fn(&BlockIndex, usize, &mut Tensor) -> std::result::Result<(), E> + Sync,
    E: From<KernelError> + Send,
{
    check_blocks("blockwise", blocks, &grids.output, images)?;
    let [bh, bw] = grids.output.size;
    let spans = block_runs(blocks, max_span);
    // Computes the run of `r` blocks from `b` into a scratch tile and hands it to `emit`.
    let [er, ec] = layout.result_extra;
    let run = |b: &BlockIndex, r: usize, emit: &mut dyn FnMut(&[f32], [usize; 2])| {
        let want = [1, out_channels, bh + er, r * bw + ec];
        with_scratch(want, |result| {
            f(b, r, result)?;
            if result.shape() != want {
                let got = result.shape();
                return Err(misuse(format!(
                    "the computation changed its result to {got:?}"
                )));
            }
            emit(result.data(), [bh + er, r * bw + ec]);
            Ok(())
        })
    };
    match sink {
        BlockSink::Stack(stack) => {
            let want = [blocks.len(), out_channels, bh, bw];
            if stack.shape() != want {
                let got = stack.shape();
                return Err(misuse(format!("stack is {got:?}, expected {want:?}")));
            }
            let tile = out_channels * bh * bw;
            if tile == 0 {
                return Ok(());
            }
            let mut rest = stack.data_mut();
            let mut slots = Vec::with_capacity(spans.len());
            for &(i, r) in &spans {
                let (head, tail) = rest.split_at_mut(r * tile);
                slots.push((&blocks[i], r, head));
                rest = tail;
            }
            slots.into_par_iter().try_for_each(|(b, r, dst)| {
                run(b, r, &mut |res, dims| {
                    unstack(res, dims, dst, [out_channels, bh, bw])
                })
            })
        }
        BlockSink::Scatter { base, mode, act } => {
            let shape = base.shape();
            if shape[0] != images || shape[1] != out_channels {
                return Err(misuse(format!(
                    "base is {shape:?} for {images} images of {out_channels} channels"
                )));
            }
            let ptr = BasePtr(base.data_mut().as_mut_ptr());
            let one = |&(i, r): &(usize, usize)| {
                let b = &blocks[i];
                let output = span_grid(&grids.output, r);
                run(b, r, &mut |res, dims| {
                    // SAFETY: `ptr` is `base` of `shape`; blocks are distinct and output
                    // windows of a ConvBlocks grid tile the output without overlap (checked
                    // below), so no two threads touch the same element.
                    unsafe { scatter_tile(res, dims, b, &output, ptr, shape, mode, act) }
                })
            };
            if grids.output.overlaps() || has_duplicates(blocks) {
                spans.iter().try_for_each(one)
            } else {
                spans.par_iter().try_for_each(one)
            }
        }
    }
}

/// Splits `blocks` into the runs [`for_each_run`] processes: `(first index, length)` of up to
/// `max` horizontally adjacent blocks, consecutive in the list.
pub fn block_runs(blocks: &[BlockIndex], max: usize) -> Vec<(usize, usize)> {
    let max = max.max(1);
    let mut out: Vec<(usize, usize)> = Vec::new();
    for (i, b) in blocks.iter().enumerate() {
        if let Some((start, len)) = out.last_mut() {
            let first = &blocks[*start];
            if *len < max && b.n == first.n && b.by == first.by && b.bx == first.bx + *len as u32 {
                *len += 1;
                continue;
            }
        }
        out.push((i, 1));
    }
    out
}

/// The grid whose windows cover `r` adjacent windows of `g` from the same origin.
fn span_grid(g: &BlockGrid, r: usize) -> BlockGrid {
    BlockGrid {
        size: [g.size[0], g.size[1] + (r - 1) * g.stride[1]],
        ..*g
    }
}

/// Copies the top-left `[C, bh, r*bw]` of a run's result (`[C, rows, cols]`) into `r`
/// consecutive stack slots `[C, bh, bw]`.
fn unstack(res: &[f32], [rows, cols]: [usize; 2], dst: &mut [f32], [c, bh, bw]: [usize; 3]) {
    for (j, slot) in dst.chunks_exact_mut(c * bh * bw).enumerate() {
        for (ci, plane) in slot.chunks_exact_mut(bh * bw).enumerate() {
            for (y, drow) in plane.chunks_exact_mut(bw).enumerate() {
                copy_row(drow, &res[(ci * rows + y) * cols + j * bw..][..bw]);
            }
        }
    }
}

fn misuse<E: From<KernelError>>(detail: String) -> E {
    E::from(KernelError::Shape {
        op: "blockwise",
        detail,
    })
}

/// Whether a block list names a block twice (two threads would then write the same window).
fn has_duplicates(blocks: &[BlockIndex]) -> bool {
    if blocks.is_sorted() {
        return blocks.windows(2).any(|p| p[0] == p[1]);
    }
    let mut sorted = blocks.to_vec();
    sorted.sort_unstable();
    sorted.windows(2).any(|p| p[0] == p[1])
}
