//! A chain of stride-1 "same" convolutions run on a stack of tiles that carry the chain's halo.
use crate::{Error, Result};
use elide_kernels::conv::{Conv2d, Conv2dParams, Padding};
use elide_kernels::sparse::{BlockGrid, BlockIndex};
use elide_kernels::Tensor;
use rayon::prelude::*;

/// The convolutions of a residual branch, with and without padding.
#[derive(Clone, Debug)]
pub(crate) struct Branch {
    pub convs: Vec<Conv2d>,
    valid: Vec<Conv2d>,
    /// Total padding of the chain per side [top, left, bottom, right]: the halo a tile needs.
    pub halo: [usize; 4],
}

impl Branch {
    pub fn new(convs: Vec<Conv2d>) -> Result<Self> {
        if convs.is_empty() {
            return Err(Error::Invalid(
                "a residual branch needs at least one conv".into(),
            ));
        }
        let mut halo = [0; 4];
        for (i, c) in convs.iter().enumerate() {
            let p = c.params();
            let rf = p.receptive_field();
            if p.stride != [1, 1]
                || p.pad.top + p.pad.bottom + 1 != rf[0]
                || p.pad.left + p.pad.right + 1 != rf[1]
            {
                return Err(Error::Invalid(format!(
                    "branch conv {i} must keep the size (stride 1, pads summing to the receptive field - 1): {p:?}"
                )));
            }
            if i > 0 && convs[i - 1].out_channels() != c.in_channels() {
                return Err(Error::Invalid(format!(
                    "branch conv {i} expects {} channels",
                    c.in_channels()
                )));
            }
            halo = [
                halo[0] + p.pad.top,
                halo[1] + p.pad.left,
                halo[2] + p.pad.bottom,
                halo[3] + p.pad.right,
            ];
        }
        if convs[0].in_channels() != convs[convs.len() - 1].out_channels() {
            return Err(Error::Invalid(
                "a residual branch must end with its input's channel count".into(),
            ));
        }
        Ok(Self {
            valid: convs.iter().map(Conv2d::to_valid).collect(),
            convs,
            halo,
        })
    }

    /// The whole branch as one convolution's geometry (for block grids and the cost model).
    pub fn params(&self) -> Conv2dParams {
        let [t, l, b, r] = self.halo;
        Conv2dParams::new(t + b + 1, l + r + 1).with_pad(Padding {
            top: t,
            left: l,
            bottom: b,
            right: r,
        })
    }

    /// The dense branch.
    pub fn dense(&self, x: &Tensor) -> Result<Tensor> {
        let mut cur = self.convs[0].forward(x)?;
        for c in &self.convs[1..] {
            cur = c.forward(&cur)?;
        }
        Ok(cur)
    }

    /// Runs the branch on tiles gathered with the full halo; `out_grid` is the final blocks'
    /// grid and `hw` the image size. Intermediate tiles are zeroed outside the image, where
    /// the dense branch would see zero padding.
    pub fn on_stack(
        &self,
        stack: &Tensor,
        blocks: &[BlockIndex],
        out_grid: &BlockGrid,
        hw: [usize; 2],
    ) -> Result<Tensor> {
        let mut rest = self.halo;
        let mut cur = self.valid[0].forward(stack)?;
        for (i, conv) in self.valid.iter().enumerate() {
            if i > 0 {
                cur = conv.forward(&cur)?;
            }
            let p = self.convs[i].params().pad;
            rest = [
                rest[0] - p.top,
                rest[1] - p.left,
                rest[2] - p.bottom,
                rest[3] - p.right,
            ];
            if i + 1 < self.valid.len() && rest != [0; 4] {
                zero_outside(&mut cur, blocks, &out_grid.widen(rest), hw);
            }
        }
        Ok(cur)
    }
}

/// Zeroes the pixels of each tile that fall outside the `hw` image.
fn zero_outside(stack: &mut Tensor, blocks: &[BlockIndex], grid: &BlockGrid, [h, w]: [usize; 2]) {
    let [_, c, th, tw] = stack.shape();
    if c * th * tw == 0 {
        return;
    }
    stack
        .data_mut()
        .par_chunks_mut(c * th * tw)
        .zip(blocks)
        .for_each(|(tile, b)| {
            let [y0, x0] = grid.origin(b.by as usize, b.bx as usize);
            let inside = |v: isize, lim: usize| v >= 0 && v < lim as isize;
            if inside(y0, h)
                && inside(y0 + th as isize - 1, h)
                && inside(x0, w)
                && inside(x0 + tw as isize - 1, w)
            {
                return;
            }
            for plane in tile.chunks_exact_mut(th * tw) {
                for (ty, row) in plane.chunks_exact_mut(tw).enumerate() {
                    if !inside(y0 + ty as isize, h) {
                        row.fill(0.0);
                        continue;
                    }
                    for (tx, v) in row.iter_mut().enumerate() {
                        if !inside(x0 + tx as isize, w) {
                            *v = 0.0;
                        }
                    }
                }
            }
        });
}
