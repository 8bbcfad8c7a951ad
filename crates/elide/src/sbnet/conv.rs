//! A block-sparse convolution layer: reduce_mask, then per block (fused, in cache): gather
//! the window, dense VALID conv, write the block.
use super::plan::{choose, span_blocks, BlockSize, LayerCost, MaskPolicy, Plan};
use crate::{Error, Result};
use elide_kernels::conv::{Activation, Conv2d};
use elide_kernels::sparse::{blockwise, BlockSink, Mask, ScatterMode, TileLayout};
use elide_kernels::Tensor;

/// A convolution that computes only the output blocks a mask asks for.
#[derive(Clone, Debug)]
pub struct SparseConv2d {
    conv: Conv2d,
    valid: Conv2d,
    size: BlockSize,
    policy: MaskPolicy,
}

impl SparseConv2d {
    /// Wraps a dense layer (any geometry; its activation is fused on the stack).
    pub fn new(conv: Conv2d) -> Self {
        Self {
            valid: conv.to_valid(),
            conv,
            size: BlockSize::Auto,
            policy: MaskPolicy::default(),
        }
    }

    /// Sets the block size policy.
    pub fn with_block_size(mut self, size: BlockSize) -> Self {
        self.size = size;
        self
    }

    /// Sets how the mask becomes blocks.
    pub fn with_mask_policy(mut self, policy: MaskPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The dense layer.
    pub fn conv(&self) -> &Conv2d {
        &self.conv
    }

    /// Chooses block size and active blocks for an input shape and a mask at input resolution.
    pub fn plan(&self, in_shape: [usize; 4], mask: &Mask) -> Result<Plan> {
        self.conv.out_shape(in_shape)?;
        let p = self.conv.params();
        let cost = LayerCost {
            params: *p,
            cin: self.conv.in_channels(),
            cout: self.conv.out_channels(),
            convs: vec![(
                self.conv
                    .macs(p.receptive_field()[0], p.receptive_field()[1])? as usize,
                0,
            )],
        };
        choose(&cost, in_shape, mask, self.size, self.policy)
    }

    /// Plans and runs: writes the active blocks of the output into `base` (output-shaped);
    /// the rest of `base` is untouched. Returns the plan it ran.
    pub fn forward(&self, x: &Tensor, mask: &Mask, base: &mut Tensor) -> Result<Plan> {
        let plan = self.plan(x.shape(), mask)?;
        self.run(x, &plan, base)?;
        Ok(plan)
    }

    /// Runs a plan from [`SparseConv2d::plan`] (reusable across inputs of the same shape).
    /// Errors on NaN/inf in the inputs the plan reads; `base` may then be partly written.
    pub fn run(&self, x: &Tensor, plan: &Plan, base: &mut Tensor) -> Result<()> {
        let out_shape = self.conv.out_shape(x.shape())?;
        if base.shape() != out_shape {
            return Err(Error::Invalid(format!(
                "base is {:?}, the layer's output is {out_shape:?}",
                base.shape()
            )));
        }
        match plan {
            Plan::Dense { .. } => {
                self.conv.forward_into_checked(x, base)?;
            }
            Plan::Sparse { grids, blocks, .. } => {
                if blocks.is_empty() {
                    return Ok(());
                }
                let sink = BlockSink::Scatter {
                    base,
                    mode: ScatterMode::Write,
                    act: Activation::None,
                };
                let cout = self.conv.out_channels();
                let [bh, bw] = grids.output.size;
                let p = self.conv.params();
                if p.stride == [1, 1] {
                    let span = span_blocks(bh * bw);
                    // Stride 1: the shifted-GEMM kernel, no im2col (see Conv2d::forward_wide).
                    let layout = TileLayout {
                        window_extra_rows: 1,
                        result_extra: [0, (p.kernel[1] - 1) * p.dilation[1]],
                    };
                    blockwise(
                        x,
                        blocks,
                        grids,
                        cout,
                        span,
                        layout,
                        sink,
                        |window, _, result| {
                            let valid = window.shape()[3];
                            self.conv.forward_wide(window, valid, result).map(|_| ())
                        },
                    )?;
                } else {
                    // Runs sized so the im2col buffer stays in cache.
                    let span = self.conv.tile_pixels() / (bh * bw);
                    let layout = TileLayout::default();
                    blockwise(
                        x,
                        blocks,
                        grids,
                        cout,
                        span,
                        layout,
                        sink,
                        |window, _, result| self.valid.forward_tile_into(window, result),
                    )?;
                }
            }
        }
        Ok(())
    }
}
