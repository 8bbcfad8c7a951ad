//! A chain of stride-1 "same" convolutions run on a stack of tiles that carry the chain's halo.
use crate::{Error, Result};
use elide_kernels::conv::{Conv2d, Conv2dParams, Padding};
use elide_kernels::sparse::{BlockGrid, BlockIndex, TileLayout};
use elide_kernels::{with_scratch, Tensor};

/// The convolutions of a residual branch, with and without padding.
#[derive(Clone, Debug)]
pub(crate) struct Branch {
    pub convs: Vec<Conv2d>,
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
        Ok(Self { convs, halo })
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

    /// The dense branch of `x` into `out` (the input's shape). Intermediates live in
    /// per-thread scratch, so repeated calls do not allocate. With `check`, errors on NaN/inf
    /// in `x`, checked inside the first conv while its tiles are in cache.
    pub fn dense_into(&self, x: &Tensor, check: bool, out: &mut Tensor) -> Result<()> {
        self.dense_step(0, x, check, out)
    }

    fn dense_step(&self, i: usize, cur: &Tensor, check: bool, out: &mut Tensor) -> Result<()> {
        let conv = &self.convs[i];
        let run = |src: &Tensor, dst: &mut Tensor| {
            if check {
                conv.forward_into_checked(src, dst)
            } else {
                conv.forward_into(src, dst)
            }
        };
        if i + 1 == self.convs.len() {
            return Ok(run(cur, out)?);
        }
        with_scratch(conv.out_shape(cur.shape())?, |next| {
            run(cur, next)?;
            self.dense_step(i + 1, next, false, out)
        })
    }

    /// How [`Branch::on_tile`] wants its tiles: a slack row under the window for the
    /// shifted-GEMM kernel, and results as wide as the window.
    pub fn layout(&self) -> TileLayout {
        TileLayout {
            window_extra_rows: 1,
            result_extra: [0, self.halo[1] + self.halo[3]],
        }
    }

    /// Runs the branch on one window gathered with the full halo (and [`Branch::layout`]'s
    /// slack) around the run of output blocks starting at `b` of `out_grid` (`hw` is the image
    /// size) into `result`. Every conv runs in the wide layout of `Conv2d::forward_wide`;
    /// intermediate tiles are zeroed outside the image, where the dense branch would see zero
    /// padding, and live in per-thread scratch, so a block's whole chain stays in cache.
    pub fn on_tile(
        &self,
        window: &Tensor,
        b: &BlockIndex,
        out_grid: &BlockGrid,
        hw: [usize; 2],
        result: &mut Tensor,
    ) -> Result<()> {
        let valid = window.shape()[3];
        self.step(0, window, valid, self.halo, b, out_grid, hw, result)
    }

    /// Applies conv `i` onwards to `cur` (`valid` meaningful columns), which carries `rest`
    /// halo; the last conv writes `result`.
    #[allow(clippy::too_many_arguments)]
    fn step(
        &self,
        i: usize,
        cur: &Tensor,
        valid: usize,
        rest: [usize; 4],
        b: &BlockIndex,
        out_grid: &BlockGrid,
        hw: [usize; 2],
        result: &mut Tensor,
    ) -> Result<()> {
        let conv = &self.convs[i];
        if i + 1 == self.convs.len() {
            conv.forward_wide(cur, valid, result)?;
            return Ok(());
        }
        let p = conv.params().pad;
        let rest = [
            rest[0] - p.top,
            rest[1] - p.left,
            rest[2] - p.bottom,
            rest[3] - p.right,
        ];
        let [_, _, rows1, width] = cur.shape();
        let rows = rows1 - 1 - (p.top + p.bottom);
        with_scratch([1, conv.out_channels(), rows + 1, width], |next| {
            let valid = conv.forward_wide(cur, valid, next)?;
            if rest != [0; 4] {
                let [y0, x0] = out_grid.widen(rest).origin(b.by as usize, b.bx as usize);
                zero_outside(next, [y0, x0], hw);
            }
            self.step(i + 1, next, valid, rest, b, out_grid, hw, result)
        })
    }
}

/// Zeroes the pixels of a single tile whose top-left pixel sits at `origin` of an `hw` image
/// that fall outside the image.
fn zero_outside(tile: &mut Tensor, [y0, x0]: [isize; 2], [h, w]: [usize; 2]) {
    let [_, _, th, tw] = tile.shape();
    let inside = |v: isize, lim: usize| v >= 0 && v < lim as isize;
    if inside(y0, h)
        && inside(y0 + th as isize - 1, h)
        && inside(x0, w)
        && inside(x0 + tw as isize - 1, w)
    {
        return;
    }
    for plane in tile.data_mut().chunks_exact_mut(th * tw) {
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
}
