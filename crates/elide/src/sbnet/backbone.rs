//! A ResNet-style backbone (stem conv + basic residual units, stride 1) run densely or
//! block-sparsely, with masks propagated so the sparse output is exact where asked.
use super::{BlockSize, MaskPolicy, MaskWindow, Plan, SparseConv2d, SparseResidual};
use crate::Result;
use elide_kernels::conv::{Activation, Conv2d, Conv2dParams};
use elide_kernels::rng::SplitMix64;
use elide_kernels::sparse::Mask;
use elide_kernels::Tensor;

/// How a whole network turns one mask into per-layer masks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetMode {
    /// Each layer's region is grown by the receptive field of the layers after it, so the
    /// output equals dense wherever the mask is set.
    Exact,
    /// Every layer uses the mask as is (SBNet's behaviour): faster, approximate near the
    /// region's border.
    Fast,
}

/// `stem (3x3 conv + ReLU) -> units x basic residual unit`, all at input resolution.
#[derive(Clone, Debug)]
pub struct Backbone {
    stem: SparseConv2d,
    units: Vec<SparseResidual>,
}

impl Backbone {
    /// A backbone with He-initialised seeded weights and small random biases.
    pub fn seeded(in_channels: usize, channels: usize, units: usize, seed: u64) -> Result<Self> {
        let mut rng = SplitMix64::new(seed);
        let mut conv = |cin: usize, act| -> Result<Conv2d> {
            let scale = (6.0 / (cin * 9) as f32).sqrt();
            let w = Tensor::from_vec(
                [channels, cin, 3, 3],
                rng.vec(channels * cin * 9, -scale, scale),
            )?;
            Ok(Conv2d::new(
                &w,
                Some(&rng.vec(channels, -0.05, 0.05)),
                Conv2dParams::same(3),
                act,
            )?)
        };
        let stem = SparseConv2d::new(conv(in_channels, Activation::Relu)?);
        let units = (0..units)
            .map(|_| {
                SparseResidual::basic(
                    conv(channels, Activation::None)?,
                    conv(channels, Activation::None)?,
                )
            })
            .collect::<Result<_>>()?;
        Ok(Self { stem, units })
    }

    /// Sets the block size policy of every layer.
    pub fn with_block_size(mut self, size: BlockSize) -> Self {
        let policy = MaskPolicy {
            window: MaskWindow::Output,
            ..MaskPolicy::default()
        };
        self.stem = self.stem.with_block_size(size).with_mask_policy(policy);
        self.units = self
            .units
            .into_iter()
            .map(|u| u.with_block_size(size).with_mask_policy(policy))
            .collect();
        self
    }

    /// Number of layers (stem + units).
    pub fn layers(&self) -> usize {
        1 + self.units.len()
    }

    /// Multiply-accumulates of the dense network on one `h x w` image.
    pub fn macs(&self, h: usize, w: usize) -> Result<u64> {
        let mut total = self.stem.conv().macs(h, w)?;
        for u in &self.units {
            for c in u.convs() {
                total += c.macs(h, w)?;
            }
        }
        Ok(total)
    }

    /// The dense network.
    pub fn forward_dense(&self, x: &Tensor) -> Result<Tensor> {
        let mut y = self.stem.conv().forward(x)?;
        for u in &self.units {
            y = u.forward_dense(&y)?;
        }
        Ok(y)
    }

    /// Per-layer plans for a mask at input resolution (stem first).
    pub fn plan(&self, in_shape: [usize; 4], mask: &Mask, mode: NetMode) -> Result<Vec<Plan>> {
        let [n, _, h, w] = in_shape;
        let feat = [n, self.stem.conv().out_channels(), h, w];
        let mut plans = Vec::with_capacity(self.layers());
        let mut region = mask.clone();
        // Back to front: a layer must be exact wherever the next one's needed outputs read.
        // Values a block computes outside that region may be inexact; nothing needed reads them.
        for u in self.units.iter().rev() {
            let plan = u.plan(feat, &region)?;
            if mode == NetMode::Exact {
                region = region.dilate(u.halo());
            }
            plans.push(plan);
        }
        plans.push(self.stem.plan(in_shape, &region)?);
        plans.reverse();
        Ok(plans)
    }

    /// Runs the plans from [`Backbone::plan`]; the output outside the computed blocks is 0
    /// for the stem's features and carried through the residual units.
    pub fn run(&self, x: &Tensor, plans: &[Plan]) -> Result<Tensor> {
        let mut y = Tensor::zeros(self.stem.conv().out_shape(x.shape())?);
        self.stem.run(x, &plans[0], &mut y)?;
        for (u, plan) in self.units.iter().zip(&plans[1..]) {
            u.run_in_place(&mut y, plan)?;
        }
        Ok(y)
    }
}
