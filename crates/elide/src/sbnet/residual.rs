//! Block-sparse residual units: per block, gather once with the branch's whole receptive
//! field and run the branch on that window in cache; then scatter-add onto the shortcut in place.
use super::branch::Branch;
use super::plan::{choose, span_blocks, BlockSize, LayerCost, MaskPolicy, Plan};
use crate::{Error, Result};
use elide_kernels::conv::{Activation, Conv2d};
use elide_kernels::sparse::{blockwise, sparse_scatter, BlockIndex, BlockSink, Mask, ScatterMode};
use elide_kernels::{with_scratch, Tensor};

/// `y = act(x + branch(x))` computed only in the active blocks; elsewhere `y = x`.
#[derive(Clone, Debug)]
pub struct SparseResidual {
    branch: Branch,
    act: Activation,
    size: BlockSize,
    policy: MaskPolicy,
}

impl SparseResidual {
    /// A unit from a branch of stride-1 size-preserving convs (activations fused in each) and
    /// the activation applied after the addition.
    pub fn new(convs: Vec<Conv2d>, act: Activation) -> Result<Self> {
        Ok(Self {
            branch: Branch::new(convs)?,
            act,
            size: BlockSize::Auto,
            policy: MaskPolicy::default(),
        })
    }

    /// ResNet's basic unit: 3x3 conv + ReLU, 3x3 conv, add, ReLU. Pass the convs without
    /// activation; batch-norm may already be folded in.
    pub fn basic(conv1: Conv2d, conv2: Conv2d) -> Result<Self> {
        Self::new(
            vec![
                conv1.with_activation(Activation::Relu),
                conv2.with_activation(Activation::None),
            ],
            Activation::Relu,
        )
    }

    /// ResNet's bottleneck unit: 1x1 reduce + ReLU, 3x3 + ReLU, 1x1 expand, add, ReLU.
    pub fn bottleneck(reduce: Conv2d, conv: Conv2d, expand: Conv2d) -> Result<Self> {
        Self::new(
            vec![
                reduce.with_activation(Activation::Relu),
                conv.with_activation(Activation::Relu),
                expand.with_activation(Activation::None),
            ],
            Activation::Relu,
        )
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

    /// The branch's convolutions.
    pub fn convs(&self) -> &[Conv2d] {
        &self.branch.convs
    }

    /// Pixels of context the unit reads around each output pixel (largest side).
    pub fn halo(&self) -> usize {
        self.branch.halo.into_iter().max().unwrap_or(0)
    }

    /// Channels in and out.
    pub fn channels(&self) -> usize {
        self.branch.convs[0].in_channels()
    }

    /// The dense unit.
    pub fn forward_dense(&self, x: &Tensor) -> Result<Tensor> {
        let mut y = Tensor::zeros(x.shape());
        self.branch.dense_into(x, false, &mut y)?;
        let act = self.act;
        y.data_mut()
            .iter_mut()
            .zip(x.data())
            .for_each(|(y, &s)| *y = act.apply(*y + s));
        Ok(y)
    }

    /// The dense unit in place, without allocating (intermediates are per-thread scratch);
    /// the dense fallback of the sparse path. Errors on NaN/inf in `x` before changing it:
    /// the check runs inside the first conv on tiles already in cache (a separate pass over
    /// the input cost ~10% of a memory-bound unit's time).
    pub fn forward_dense_in_place(&self, x: &mut Tensor) -> Result<()> {
        with_scratch(x.shape(), |branch| {
            self.branch.dense_into(x, true, branch)?;
            let act = self.act;
            x.data_mut()
                .iter_mut()
                .zip(branch.data())
                .for_each(|(x, &b)| *x = act.apply(*x + b));
            Ok(())
        })
    }

    /// Chooses block size and active blocks for an input shape and a mask at input resolution.
    pub fn plan(&self, in_shape: [usize; 4], mask: &Mask) -> Result<Plan> {
        if in_shape[1] != self.channels() {
            return Err(Error::Invalid(format!(
                "input has {} channels, unit expects {}",
                in_shape[1],
                self.channels()
            )));
        }
        let convs = self
            .branch
            .convs
            .iter()
            .map(|c| {
                let rf = c.params().receptive_field();
                Ok((c.macs(rf[0], rf[1])? as usize, rf[0] - 1))
            })
            .collect::<Result<_>>()?;
        let cost = LayerCost {
            params: self.branch.params(),
            cin: self.channels(),
            cout: self.channels(),
            convs,
        };
        choose(&cost, in_shape, mask, self.size, self.policy)
    }

    /// Plans and runs in place: `x` becomes the unit's output in the active blocks and keeps
    /// its values elsewhere. Returns the plan it ran.
    pub fn forward_in_place(&self, x: &mut Tensor, mask: &Mask) -> Result<Plan> {
        let plan = self.plan(x.shape(), mask)?;
        self.run_in_place(x, &plan)?;
        Ok(plan)
    }

    /// Runs a plan from [`SparseResidual::plan`] in place. Errors on NaN/inf in the inputs the
    /// plan reads; the dense fallback then leaves `x` unchanged, the sparse path may already
    /// have updated the block rows above the bad value.
    pub fn run_in_place(&self, x: &mut Tensor, plan: &Plan) -> Result<()> {
        match plan {
            Plan::Dense { .. } => {
                self.forward_dense_in_place(x)?;
            }
            Plan::Sparse { grids, blocks, .. } => {
                if blocks.is_empty() {
                    return Ok(());
                }
                let [_, c, h, w] = x.shape();
                let [bh, bw] = grids.output.size;
                // A block's result may only be written once no pending window reads its
                // pixels: block rows run in order, and each row's results are staged and
                // written back `delay` rows later, while they are still in cache (staging the
                // whole plan first cost a memory pass this memory-bound unit could not hide).
                let span = span_blocks(bh * bw);
                let layout = self.branch.layout();
                let delay = self.branch.halo[0].div_ceil(bh);
                let run_row = |x: &Tensor, row: &[BlockIndex], buf: &mut Tensor| -> Result<()> {
                    blockwise(
                        x,
                        row,
                        grids,
                        c,
                        span,
                        layout,
                        BlockSink::Stack(buf),
                        |window, b, result| {
                            self.branch
                                .on_tile(window, b, &grids.output, [h, w], result)
                        },
                    )
                };
                let write = |x: &mut Tensor, (s0, e0): (usize, usize), t: &Tensor| {
                    let act = self.act;
                    sparse_scatter(t, &blocks[s0..e0], &grids.output, x, ScatterMode::Add, act)
                };
                let mut pending: std::collections::VecDeque<(usize, usize, Tensor)> =
                    Default::default();
                // Staging buffers are recycled: blockwise overwrites every slot.
                let mut free: Vec<Vec<f32>> = Vec::new();
                let min_blocks = 32 * rayon::current_num_threads();
                let mut start = 0;
                while start < blocks.len() {
                    // A band of whole block rows with enough blocks to keep every thread busy.
                    let n = blocks[start].n;
                    let mut end = start;
                    while end < blocks.len() && blocks[end].n == n && end - start < min_blocks {
                        let by = blocks[end].by;
                        end += blocks[end..]
                            .iter()
                            .take_while(|b| b.n == n && b.by == by)
                            .count();
                    }
                    let last_row = blocks[end - 1].by as usize;
                    let mut data = free.pop().unwrap_or_default();
                    data.resize((end - start) * c * bh * bw, 0.0);
                    let mut buf = Tensor::from_vec([end - start, c, bh, bw], data)?;
                    run_row(x, &blocks[start..end], &mut buf)?;
                    pending.push_back((start, end, buf));
                    // Flush bands no later window can read: other images, or whose last row is
                    // more than `delay` rows above the rows still to come.
                    while let Some(&(s0, e0, _)) = pending.front() {
                        let b_last = blocks[e0 - 1];
                        if b_last.n == n && b_last.by as usize + delay > last_row {
                            break;
                        }
                        let (_, _, t) = pending.pop_front().expect("front exists");
                        write(x, (s0, e0), &t)?;
                        free.push(t.into_vec());
                    }
                    start = end;
                }
                for (s0, e0, t) in pending {
                    write(x, (s0, e0), &t)?;
                }
            }
        }
        Ok(())
    }
}
