//! SBNet's gather and scatter as candle custom ops with their own backward.
//!
//! - [`gather`]: `[N, C, H, W] -> [B, C, th, tw]`; its gradient is a scatter-*add* of the
//!   upstream stack gradient onto zeros shaped like the input, so overlapping windows accumulate.
//! - [`scatter`]: `(base, stack) -> out`; the base's gradient is the upstream gradient
//!   (`Add`) or the upstream gradient with the windows zeroed (`Write`); the stack's gradient is
//!   the gather of the upstream gradient (zero where a window leaves the image).
//!
//! Backward passes apply these same ops, so gradients are themselves differentiable. Both ops
//! run on the CPU device, for `F32` and `F64` storage.
use super::blocks;
use crate::{Error, Result};
use candle_core::backend::BackendStorage;
use candle_core::{bail, CpuStorage, CustomOp1, CustomOp2, DType, Layout, Shape, Tensor};
use elide_kernels::sparse::{BlockGrid, BlockIndex, ScatterMode};
use std::collections::HashSet;
use std::sync::Arc;

/// Which windows an op touches; shared by an op and the ops of its backward pass.
#[derive(Clone)]
struct Windows {
    blocks: Arc<[BlockIndex]>,
    grid: BlockGrid,
}

impl Windows {
    fn stack_dims(&self, c: usize) -> [usize; 4] {
        [self.blocks.len(), c, self.grid.size[0], self.grid.size[1]]
    }
}

struct GatherOp(Windows);

struct ScatterOp {
    win: Windows,
    mode: ScatterMode,
}

/// The contiguous data a layout describes, or a candle error naming `op`.
fn data<'a, T>(v: &'a [T], l: &Layout, op: &str) -> candle_core::Result<&'a [T]> {
    match l.contiguous_offsets().and_then(|(a, b)| v.get(a..b)) {
        Some(d) => Ok(d),
        None => bail!("{op}: the input is not contiguous, call .contiguous() first"),
    }
}

fn dims4(l: &Layout) -> candle_core::Result<[usize; 4]> {
    let (n, c, h, w) = l.shape().dims4()?;
    Ok([n, c, h, w])
}

impl CustomOp1 for GatherOp {
    fn name(&self) -> &'static str {
        "elide-gather"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let dims = dims4(l)?;
        let win = &self.0;
        blocks::check_blocks(&win.blocks, &win.grid, dims[0]).map_err(candle_core::Error::msg)?;
        let out = match s {
            CpuStorage::F32(v) => CpuStorage::F32(blocks::gather(
                data(v, l, self.name())?,
                dims,
                &win.blocks,
                &win.grid,
            )),
            CpuStorage::F64(v) => CpuStorage::F64(blocks::gather(
                data(v, l, self.name())?,
                dims,
                &win.blocks,
                &win.grid,
            )),
            other => bail!("{}: unsupported dtype {:?}", self.name(), other.dtype()),
        };
        Ok((out, Shape::from(win.stack_dims(dims[1]).to_vec())))
    }

    fn bwd(
        &self,
        arg: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        let zeros = arg.zeros_like()?;
        apply_scatter(&zeros, grad, &self.0, ScatterMode::Add).map(Some)
    }
}

impl CustomOp2 for ScatterOp {
    fn name(&self) -> &'static str {
        "elide-scatter"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let dims = dims4(l1)?;
        let (win, name) = (&self.win, self.name());
        let want = win.stack_dims(dims[1]);
        if l2.shape().dims() != want {
            bail!(
                "{name}: stack is {:?}, expected {want:?}",
                l2.shape().dims()
            );
        }
        blocks::check_blocks(&win.blocks, &win.grid, dims[0]).map_err(candle_core::Error::msg)?;
        let out = match (s1, s2) {
            (CpuStorage::F32(b), CpuStorage::F32(s)) => {
                let mut out = data(b, l1, name)?.to_vec();
                let s = data(s, l2, name)?;
                blocks::scatter(&mut out, dims, s, &win.blocks, &win.grid, self.mode);
                CpuStorage::F32(out)
            }
            (CpuStorage::F64(b), CpuStorage::F64(s)) => {
                let mut out = data(b, l1, name)?.to_vec();
                let s = data(s, l2, name)?;
                blocks::scatter(&mut out, dims, s, &win.blocks, &win.grid, self.mode);
                CpuStorage::F64(out)
            }
            (b, s) => bail!(
                "{name}: unsupported dtypes {:?} / {:?}",
                b.dtype(),
                s.dtype()
            ),
        };
        Ok((out, l1.shape().clone()))
    }

    fn bwd(
        &self,
        _base: &Tensor,
        stack: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let grad_base = match self.mode {
            ScatterMode::Add => grad.clone(),
            ScatterMode::Write => {
                apply_scatter(grad, &stack.zeros_like()?, &self.win, ScatterMode::Write)?
            }
        };
        let grad_stack = apply_gather(grad, &self.win)?;
        Ok((Some(grad_base), Some(grad_stack)))
    }
}

fn apply_gather(x: &Tensor, win: &Windows) -> candle_core::Result<Tensor> {
    x.contiguous()?.apply_op1(GatherOp(win.clone()))
}

fn apply_scatter(
    base: &Tensor,
    stack: &Tensor,
    win: &Windows,
    mode: ScatterMode,
) -> candle_core::Result<Tensor> {
    let op = ScatterOp {
        win: win.clone(),
        mode,
    };
    base.contiguous()?.apply_op2(&stack.contiguous()?, op)
}

fn invalid<T>(op: &str, detail: impl std::fmt::Display) -> Result<T> {
    Err(Error::Invalid(format!("train::{op}: {detail}")))
}

/// Checks `t` is a 4-D `F32` / `F64` tensor and returns its dimensions.
fn check_input(op: &str, what: &str, t: &Tensor) -> Result<[usize; 4]> {
    let &[n, c, h, w] = t.dims() else {
        return invalid(op, format!("{what} must be 4-D (NCHW), got {:?}", t.dims()));
    };
    if !matches!(t.dtype(), DType::F32 | DType::F64) {
        return invalid(
            op,
            format!("{what} is {:?}, only F32 and F64 are supported", t.dtype()),
        );
    }
    Ok([n, c, h, w])
}

/// Gathers window `blocks[i]` of `x` (`[N, C, H, W]`) into tile `i` of a
/// `[blocks.len(), C, grid.size[0], grid.size[1]]` stack; pixels outside the image are zero.
/// Windows may overlap. Differentiable; `x` must be `F32` or `F64` on the CPU.
pub fn gather(x: &Tensor, blocks: &[BlockIndex], grid: &BlockGrid) -> Result<Tensor> {
    let [n, ..] = check_input("gather", "input", x)?;
    if let Err(e) = blocks::check_blocks(blocks, grid, n) {
        return invalid("gather", e);
    }
    let win = Windows {
        blocks: blocks.into(),
        grid: *grid,
    };
    Ok(apply_gather(x, &win)?)
}

/// Returns `base` (`[N, C, H, W]`) with tile `i` of `stack` (`[blocks.len(), C, th, tw]`,
/// `[th, tw] = grid.size`) written into (`Write`) or added onto (`Add`) window `blocks[i]`,
/// clipped to the image. Differentiable in both arguments; `F32` or `F64` on the CPU.
///
/// `Add` accepts overlapping windows (they accumulate). `Write` rejects them (a grid whose
/// windows overlap, with more than one block, or a repeated block): which tile wins would make
/// the gradient depend on block order.
pub fn scatter(
    base: &Tensor,
    stack: &Tensor,
    blocks: &[BlockIndex],
    grid: &BlockGrid,
    mode: ScatterMode,
) -> Result<Tensor> {
    let op = "scatter";
    let [n, c, ..] = check_input(op, "base", base)?;
    check_input(op, "stack", stack)?;
    if base.dtype() != stack.dtype() {
        return invalid(
            op,
            format!(
                "base is {:?} but stack is {:?}",
                base.dtype(),
                stack.dtype()
            ),
        );
    }
    let win = Windows {
        blocks: blocks.into(),
        grid: *grid,
    };
    let want = win.stack_dims(c);
    if stack.dims() != want {
        return invalid(
            op,
            format!("stack is {:?}, expected {want:?}", stack.dims()),
        );
    }
    if let Err(e) = blocks::check_blocks(blocks, grid, n) {
        return invalid(op, e);
    }
    if mode == ScatterMode::Write && blocks.len() > 1 {
        if grid.overlaps() {
            return invalid(
                op,
                format!("Write needs non-overlapping windows, grid is {grid:?}"),
            );
        }
        let mut seen = HashSet::with_capacity(blocks.len());
        if let Some(b) = blocks.iter().find(|b| !seen.insert(**b)) {
            return invalid(op, format!("Write got block {b:?} twice"));
        }
    }
    Ok(apply_scatter(base, stack, &win, mode)?)
}
