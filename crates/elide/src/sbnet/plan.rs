//! Choosing how to run a block-sparse layer: which block size, or dense.
//!
//! The cost model takes, for each candidate output block side `b`, the active blocks the mask
//! gives, groups them into the runs of horizontally adjacent blocks the executor fuses
//! (`block_runs`), and prices each run as GEMM work over its whole wide tile at an efficiency
//! that falls for small tiles (`n / (n + N_HALF)` for `n` pixels: small GEMMs pay packing and
//! edge overheads), plus the floats gathered and written and a fixed per-run cost. The dense
//! layer is priced the same way at full efficiency. The constants were checked against a
//! sweep of fixed block sizes on the reference 2-core AVX2 machine (`elide bench sbnet
//! --block B`): the model's pick is the fastest size or within a few percent of it.
use elide_kernels::conv::Conv2dParams;
use elide_kernels::sparse::{
    block_runs, reduce_mask, BlockGrid, BlockIndex, ConvBlocks, Mask, Pooling,
};
use elide_kernels::KernelError;

use crate::Result;

/// Output pixels at which a tile's GEMM reaches half of its large-matrix speed.
const N_HALF: f64 = 48.0;
/// Cost of moving one float through gather or scatter, in multiply-accumulates.
const FLOAT_MOVE: f64 = 4.0;
/// Fixed cost per run of blocks (bookkeeping, GEMM setup, weight packing), in
/// multiply-accumulates.
const PER_RUN: f64 = 20_000.0;
/// Sparse runs only when the model predicts at least this speed-up over dense.
const MIN_GAIN: f64 = 1.1;
/// Output pixels a fused run of adjacent blocks aims for: wide enough to amortise GEMM calls
/// and halo, small enough that a run's window, intermediates and result stay in L2 (runs of
/// 3-4 16x16 blocks timed best for the 64-channel layers of `elide bench sbnet` here).
const RUN_PIXELS: usize = 1024;
/// Output block sides tried by [`BlockSize::Auto`].
pub const CANDIDATES: [usize; 7] = [8, 12, 16, 24, 32, 48, 64];

/// Blocks per fused run for blocks of `block_pixels` output pixels.
pub(crate) fn span_blocks(block_pixels: usize) -> usize {
    (RUN_PIXELS / block_pixels.max(1)).max(1)
}

/// How to pick the output block side.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BlockSize {
    /// By the cost model among [`CANDIDATES`], with dense fallback.
    #[default]
    Auto,
    /// This side (clamped to the output), always sparse.
    Fixed(usize),
}

/// Which part of the mask decides whether a block runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MaskWindow {
    /// The block's whole receptive field, halo included (SBNet's `reduce_mask`): a block runs
    /// when any input it reads is marked, e.g. a mask of where the input changed.
    #[default]
    Receptive,
    /// Only the block's own pixels, mapped to input resolution: a block runs when output is
    /// wanted there, e.g. a road map or a region of interest.
    Output,
}

/// How the mask is turned into active blocks.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MaskPolicy {
    /// Pooling over each block's window.
    pub pooling: Pooling,
    /// Which window is pooled.
    pub window: MaskWindow,
    /// A window is active when its pooled value exceeds this.
    pub threshold: f32,
}

impl Default for MaskPolicy {
    fn default() -> Self {
        Self {
            pooling: Pooling::Max,
            window: MaskWindow::default(),
            threshold: 0.5,
        }
    }
}

/// What a layer will run.
#[derive(Clone, Debug, PartialEq)]
pub enum Plan {
    /// The dense layer over the whole image (every block counts as active).
    Dense {
        /// Blocks the best sparse candidate would have run, and out of how many.
        active: usize,
        /// Total blocks of that candidate.
        total: usize,
    },
    /// The listed blocks of the given grids.
    Sparse {
        /// Output block side.
        block: usize,
        /// Input and output grids.
        grids: ConvBlocks,
        /// Active blocks in (n, by, bx) order.
        blocks: Vec<BlockIndex>,
    },
}

impl Plan {
    /// Output block side, `None` for dense.
    pub fn block(&self) -> Option<usize> {
        match self {
            Plan::Dense { .. } => None,
            Plan::Sparse { block, .. } => Some(*block),
        }
    }

    /// The output pixels this plan computes, as a mask `[n, ho, wo]` (all of them for dense).
    pub fn coverage(&self, [n, ho, wo]: [usize; 3]) -> Mask {
        let Plan::Sparse { grids, blocks, .. } = self else {
            return Mask::from_fn([n, ho, wo], |_, _, _| true);
        };
        let mut data = vec![0f32; n * ho * wo];
        let g = &grids.output;
        for b in blocks {
            let [y0, x0] = g.origin(b.by as usize, b.bx as usize);
            let (y0, x0) = (y0 as usize, x0 as usize);
            for y in y0..(y0 + g.size[0]).min(ho) {
                let row = (b.n as usize * ho + y) * wo;
                data[row + x0..row + (x0 + g.size[1]).min(wo)].fill(1.0);
            }
        }
        Mask::from_vec([n, ho, wo], data).expect("sizes match by construction")
    }

    /// Fraction of blocks skipped (0 for dense).
    pub fn block_sparsity(&self) -> f64 {
        match self {
            Plan::Dense { .. } => 0.0,
            Plan::Sparse { grids, blocks, .. } => {
                let n = blocks
                    .iter()
                    .map(|b| b.n)
                    .max()
                    .map_or(1, |n| n as usize + 1);
                1.0 - blocks.len() as f64 / (grids.output.len() * n).max(1) as f64
            }
        }
    }
}

/// The shape-only description of a layer the cost model needs.
#[derive(Clone, Debug)]
pub(crate) struct LayerCost {
    /// Geometry of the whole layer (for a residual unit: one conv with the unit's receptive field).
    pub params: Conv2dParams,
    /// Input channels.
    pub cin: usize,
    /// Output channels.
    pub cout: usize,
    /// Per conv, in order: MACs per output pixel, and how much the tile shrinks (`rf - 1`).
    pub convs: Vec<(usize, usize)>,
}

impl LayerCost {
    /// Modelled cost of a run of `r` adjacent blocks of side `b`, in multiply-accumulates.
    /// Every conv computes the run's whole width including the halo columns (the wide layout
    /// of `Conv2d::forward_wide`) over its rows (earlier convs of a residual branch see taller
    /// tiles), priced at the tile's GEMM efficiency; plus the floats gathered and written
    /// and a fixed cost per run.
    fn run_cost(&self, b: usize, r: usize) -> f64 {
        let [rh, rw] = self.params.receptive_field();
        let width = (r * b + rw - 1) as f64;
        let mut rows = b;
        let mut macs = 0.0;
        for &(per_pixel, shrink) in self.convs.iter().rev() {
            macs += per_pixel as f64 * ((rows as f64) * width + N_HALF);
            rows += shrink;
        }
        let moved = self.cin as f64 * (b + rh) as f64 * width + (self.cout * b * r * b) as f64;
        macs + FLOAT_MOVE * moved + PER_RUN
    }

    /// Modelled cost of running `blocks` (side `b`) as the executor groups them into runs.
    fn plan_cost(&self, b: usize, blocks: &[BlockIndex]) -> f64 {
        block_runs(blocks, span_blocks(b * b))
            .iter()
            .map(|&(_, r)| self.run_cost(b, r))
            .sum()
    }

    fn dense_cost(&self, n: usize, ho: usize, wo: usize) -> f64 {
        let per_pixel: usize = self.convs.iter().map(|c| c.0).sum();
        (n * ho * wo * per_pixel) as f64
    }
}

/// Chooses a plan for a layer on an input of `in_shape` under `mask`.
pub(crate) fn choose(
    cost: &LayerCost,
    in_shape: [usize; 4],
    mask: &Mask,
    size: BlockSize,
    policy: MaskPolicy,
) -> Result<Plan> {
    let [n, _, h, w] = in_shape;
    if mask.shape() != [n, h, w] {
        return Err(KernelError::Shape {
            op: "sbnet",
            detail: format!("mask is {:?}, input needs [{n}, {h}, {w}]", mask.shape()),
        }
        .into());
    }
    let (ho, wo) = cost.params.out_size(h, w)?;
    let sparse_for = |b: usize| -> Result<Plan> {
        let grids = ConvBlocks::new(&cost.params, [h, w], [b, b])?;
        let window = match policy.window {
            MaskWindow::Receptive => grids.input,
            MaskWindow::Output => BlockGrid {
                size: grids.input.stride,
                stride: grids.input.stride,
                offset: [0, 0],
                count: grids.input.count,
            },
        };
        let blocks = reduce_mask(mask, &window, policy.pooling, policy.threshold)?;
        Ok(Plan::Sparse {
            block: b,
            grids,
            blocks,
        })
    };
    if let BlockSize::Fixed(b) = size {
        if b == 0 {
            return Err(crate::Error::Invalid(
                "block size must be at least 1".into(),
            ));
        }
        return sparse_for(b);
    }
    // The cheapest candidate by the model; sides are clamped to the output, so skip repeats.
    let mut best: Option<(f64, Plan)> = None;
    let mut sides: Vec<usize> = CANDIDATES.iter().map(|&b| b.min(ho).min(wo)).collect();
    sides.dedup();
    for b in sides {
        let plan = sparse_for(b)?;
        let Plan::Sparse { blocks, .. } = &plan else {
            unreachable!("sparse_for builds sparse plans")
        };
        let t = cost.plan_cost(b, blocks);
        if best.as_ref().is_none_or(|(bt, _)| t < *bt) {
            best = Some((t, plan));
        }
    }
    let Some((
        t,
        Plan::Sparse {
            block,
            grids,
            blocks,
        },
    )) = best
    else {
        unreachable!("CANDIDATES is not empty")
    };
    if t * MIN_GAIN > cost.dense_cost(n, ho, wo) {
        return Ok(Plan::Dense {
            active: blocks.len(),
            total: grids.output.len() * n,
        });
    }
    Ok(Plan::Sparse {
        block,
        grids,
        blocks,
    })
}
