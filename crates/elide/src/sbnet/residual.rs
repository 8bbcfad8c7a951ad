//! Block-sparse residual units: gather once with the branch's whole receptive field, run the
//! branch on the stack, scatter-add onto the shortcut in place.
use super::branch::Branch;
use super::plan::{choose, BlockSize, LayerCost, MaskPolicy, Plan};
use crate::{Error, Result};
use elide_kernels::conv::{Activation, Conv2d};
use elide_kernels::sparse::{sparse_gather, sparse_scatter, Mask, ScatterMode};
use elide_kernels::Tensor;

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
        let mut y = self.branch.dense(x)?;
        let act = self.act;
        y.data_mut()
            .iter_mut()
            .zip(x.data())
            .for_each(|(y, &s)| *y = act.apply(*y + s));
        Ok(y)
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

    /// Runs a plan from [`SparseResidual::plan`] in place.
    pub fn run_in_place(&self, x: &mut Tensor, plan: &Plan) -> Result<()> {
        match plan {
            Plan::Dense { .. } => {
                x.check_finite("SparseResidual")?;
                *x = self.forward_dense(x)?;
            }
            Plan::Sparse { grids, blocks, .. } => {
                if blocks.is_empty() {
                    return Ok(());
                }
                let [_, _, h, w] = x.shape();
                // Every tile is gathered before anything is written, so updating x in place
                // cannot feed one block's output into a neighbour's halo.
                let stack = sparse_gather(x, blocks, &grids.input)?;
                let tiles = self
                    .branch
                    .on_stack(&stack, blocks, &grids.output, [h, w])?;
                sparse_scatter(&tiles, blocks, &grids.output, x, ScatterMode::Add, self.act)?;
            }
        }
        Ok(())
    }
}
