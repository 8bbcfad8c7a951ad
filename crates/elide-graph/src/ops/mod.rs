//! The ops a graph can run, with validated attributes, and their evaluation.
//!
//! Convolutions run on elide-kernels (`Conv2d`: tiled im2col + GEMM, folded batch-norm,
//! fused activation); everything else is written here on `ndarray`, where it is cheap next
//! to the convolutions, but for products with mostly zero constant weights ([`SparseLinear`],
//! CSR on elide-kernels).
//!
//! An op whose output can outgrow its inputs checks the output's shape with [`Ctx::sized`]
//! before allocating: above [`MAX_ELEMENTS`] it is a [`GraphError::TooLarge`] naming the node.
mod activation;
mod arg_topk;
pub mod arith;
pub mod attention;
mod binary;
pub mod cast_like;
mod clip;
pub mod compare;
mod control_flow;
mod conv;
pub mod conv_nd;
mod conv_runtime;
mod conv_transpose;
pub mod conv_transpose_nd;
pub mod deform_conv;
mod dropout;
pub mod einsum;
mod elementwise;
mod generate;
pub mod grid_sample;
mod index_misc;
mod indexing;
mod linalg;
pub mod loss;
mod masked;
pub mod math;
pub mod matmul;
pub mod nms;
pub mod norm;
pub mod operator;
mod pad;
mod pool;
pub mod pool_nd;
pub mod quant;
pub mod quant_conv;
pub mod reduce;
mod resize;
pub mod resize_nd;
pub mod rnn;
pub mod rnn_cell;
pub mod rotary;
pub mod runs;
mod scatter;
mod shape;
mod shape_misc;
mod softmax_like;
mod space_depth;
pub mod sparse_linear;
#[cfg(test)]
mod tests;
mod tile_gather;
pub mod typed;
pub mod unique_det;
pub mod unpool_col2im;
mod upsample;
pub mod variadic;

pub use binary::Binary;
pub(crate) use conv::out_shape as conv_out_shape;
pub use conv::ConvOp;
pub use conv_runtime::{lower_convs, RuntimeConv};
pub use conv_transpose::ConvTranspose;
pub use elementwise::{batch_norm_affine, Unary};
pub use masked::{eval_runs, eval_runs_in_place, worth_masking};
pub use operator::{DeltaRule, Operator};
pub use pool::{Pool, PoolKind};
pub use resize::{CoordMode, NearestMode, Resize, ResizeMode};
pub use shape::reshape_target;
pub use sparse_linear::SparseLinear;

use crate::arena::Arena;
use crate::{GraphError, Result, Value};

/// A typed op.
#[derive(Clone, Debug)]
pub enum Op {
    /// 2-D convolution with constant weights (batch-norm and activation possibly fused).
    Conv(Box<ConvOp>),
    /// Inference batch-norm over axis 1 (scale, bias, mean, var are constant inputs).
    BatchNorm {
        /// Variance epsilon.
        eps: f32,
    },
    /// Element-wise function of one input.
    Unary(Unary),
    /// Broadcasting arithmetic on two inputs.
    Binary(Binary),
    /// Max or average pooling over H, W.
    Pool(Pool),
    /// Mean over H, W, keeping them as size 1.
    GlobalAveragePool,
    /// Numpy-style matrix product (batched over leading dims).
    MatMul,
    /// `alpha * op(A) op(B) + beta * C`.
    Gemm {
        /// Scale of the product.
        alpha: f32,
        /// Scale of C.
        beta: f32,
        /// Transpose A.
        trans_a: bool,
        /// Transpose B.
        trans_b: bool,
    },
    /// Softmax along an axis.
    Softmax {
        /// The axis (negative counts from the end).
        axis: i64,
    },
    /// To 2-D at `axis`.
    Flatten {
        /// Split point.
        axis: i64,
    },
    /// Reshape to the shape given by input 1.
    Reshape {
        /// 0 in the shape copies the input's dimension unless set.
        allowzero: bool,
    },
    /// Permute axes.
    Transpose {
        /// The permutation (empty: reverse).
        perm: Vec<usize>,
    },
    /// Join along an axis.
    Concat {
        /// The axis.
        axis: i64,
    },
    /// Slice with starts, ends, axes, steps from inputs 1-4.
    Slice,
    /// The input's shape as i64, dims `start..end`.
    Shape {
        /// First dim.
        start: i64,
        /// End (exclusive), `None` for all.
        end: Option<i64>,
    },
    /// Take indices (input 1) along an axis.
    Gather {
        /// The axis.
        axis: i64,
    },
    /// Insert size-1 axes (from the attribute, or input 1 from opset 13).
    Unsqueeze {
        /// Axes from the attribute.
        axes: Option<Vec<i64>>,
    },
    /// Remove size-1 axes.
    Squeeze {
        /// Axes from the attribute (None: from input 1, or all size-1 axes).
        axes: Option<Vec<i64>>,
    },
    /// Convert to another element type.
    Cast {
        /// The target type.
        to: crate::DType,
        /// ONNX `saturate`: out-of-range values to float8 types clamp (else become inf/NaN).
        saturate: bool,
    },
    /// Pass-through.
    Identity,
    /// Transposed 2-D convolution with constant weights.
    ConvTranspose(Box<ConvTranspose>),
    /// Resize over H, W with scales (input 2) or sizes (input 3).
    Resize(Resize),
    /// Split along an axis.
    Split {
        /// The axis.
        axis: i64,
        /// Sizes from the attribute (else input 1, else equal parts).
        split: Option<Vec<i64>>,
        /// Number of outputs.
        parts: usize,
    },
    /// Broadcast to a shape.
    Expand,
    /// Arithmetic sequence.
    Range,
    /// A filled tensor of a given shape.
    ConstantOfShape {
        /// The fill value (one element).
        value: Value,
    },
    /// Constant-mode padding.
    Pad,
    /// A Gemm or MatMul with constant, mostly zero weights, run in CSR (built at load).
    SparseLinear(Box<SparseLinear>),
    /// An op written against the [`Operator`] trait.
    Dyn(std::sync::Arc<dyn Operator>),
}

impl Op {
    /// Short name for `inspect`.
    pub fn kind(&self) -> &'static str {
        match self {
            Op::Conv(_) => "Conv",
            Op::BatchNorm { .. } => "BatchNorm",
            Op::Unary(_) => "Unary",
            Op::Binary(_) => "Binary",
            Op::Pool(_) => "Pool",
            Op::GlobalAveragePool => "GlobalAveragePool",
            Op::MatMul => "MatMul",
            Op::Gemm { .. } => "Gemm",
            Op::Softmax { .. } => "Softmax",
            Op::Flatten { .. } => "Flatten",
            Op::Reshape { .. } => "Reshape",
            Op::Transpose { .. } => "Transpose",
            Op::Concat { .. } => "Concat",
            Op::Slice => "Slice",
            Op::Shape { .. } => "Shape",
            Op::Gather { .. } => "Gather",
            Op::Unsqueeze { .. } => "Unsqueeze",
            Op::Squeeze { .. } => "Squeeze",
            Op::Cast { .. } => "Cast",
            Op::Identity => "Identity",
            Op::ConvTranspose(_) => "ConvTranspose",
            Op::Resize(_) => "Resize",
            Op::Split { .. } => "Split",
            Op::Expand => "Expand",
            Op::Range => "Range",
            Op::ConstantOfShape { .. } => "ConstantOfShape",
            Op::Pad => "Pad",
            Op::SparseLinear(_) => "SparseLinear",
            Op::Dyn(o) => o.name(),
        }
    }
}

/// Registers the import builders of the ops written against [`Operator`] (one line per op in
/// each family's `register`).
pub(crate) fn register(r: &mut crate::onnx::registry::Registry) {
    attention::register(r);
    clip::register(r);
    control_flow::register(r);
    dropout::register(r);
    einsum::register(r);
    grid_sample::register(r);
    math::register(r);
    loss::register(r);
    nms::register(r);
    unique_det::register(r);
    reduce::register(r);
    arg_topk::register(r);
    softmax_like::register(r);
    norm::register(r);
    arith::register(r);
    compare::register(r);
    variadic::register(r);
    cast_like::register(r);
    activation::register(r);
    tile_gather::register(r);
    scatter::register(r);
    space_depth::register(r);
    index_misc::register(r);
    shape_misc::register(r);
    upsample::register(r);
    quant::register(r);
    quant_conv::register(r);
    pad::register(r);
    pool_nd::register(r);
    rotary::register(r);
    rnn::register(r);
    resize_nd::register(r);
    unpool_col2im::register(r);
    deform_conv::register(r);
}

/// Most elements one value may hold: 2^31 (8 GiB of f32). Real models stay far below it
/// (PP-OCRv4 at 960x960 peaks near 22M elements in a value, a detector at 4K near ten times
/// that), so a larger shape comes from a corrupt or hostile model (a pad of 1e6, a Range to
/// 1e12): it is refused before allocation, where it would abort or hang the process.
pub const MAX_ELEMENTS: usize = 1 << 31;

/// The node an op runs for (named in errors) and where its output buffers come from.
#[derive(Clone, Copy)]
pub struct Ctx<'a> {
    /// Node name.
    pub node: &'a str,
    /// ONNX op type.
    pub op: &'a str,
    /// The running graph's buffer pool (`None`: plain allocation, e.g. constant folding).
    pub arena: Option<&'a Arena>,
}

impl Ctx<'_> {
    /// An output buffer of `len` floats with unspecified contents: the op writes all of it.
    pub fn alloc(&self, len: usize) -> Vec<f32> {
        match self.arena {
            Some(a) => a.take(len),
            None => vec![0.0; len],
        }
    }

    /// Returns a scratch buffer taken with [`Ctx::alloc`].
    pub fn give(&self, v: Vec<f32>) {
        if let Some(a) = self.arena {
            a.give(v);
        }
    }

    /// Element count of a `what` buffer of `shape`, refused (naming the node, the op and the
    /// shape) above [`MAX_ELEMENTS`]: ops call it before they allocate.
    pub fn sized(&self, what: &'static str, shape: &[usize]) -> Result<usize> {
        let wide: Vec<u128> = shape.iter().map(|&d| d as u128).collect();
        Ok(self.sized_wide(what, &wide)?.iter().product())
    }

    /// [`Ctx::sized`] for dims computed from a model's numbers in `u128`, where sums and
    /// products of attributes and shape inputs cannot wrap before they are checked.
    pub fn sized_wide(&self, what: &'static str, dims: &[u128]) -> Result<Vec<usize>> {
        let max = MAX_ELEMENTS as u128;
        let n = dims.iter().try_fold(1u128, |a, &d| a.checked_mul(d));
        // Each dim is capped too: a zero elsewhere must not let a 1e30 dim through.
        if n.is_some_and(|n| n <= max) && dims.iter().all(|&d| d <= max) {
            return Ok(dims.iter().map(|&d| d as usize).collect());
        }
        Err(GraphError::TooLarge {
            node: self.node.to_string(),
            op: self.op.to_string(),
            what,
            shape: format!("{dims:?}"),
        })
    }

    /// An "invalid node" error.
    pub fn err(&self, detail: impl Into<String>) -> GraphError {
        GraphError::Invalid {
            node: self.node.to_string(),
            op: self.op.to_string(),
            detail: detail.into(),
        }
    }

    /// Input `i`, which must be present.
    pub fn input<'v>(&self, inputs: &[Option<&'v Value>], i: usize) -> Result<&'v Value> {
        inputs
            .get(i)
            .copied()
            .flatten()
            .ok_or_else(|| self.err(format!("input {i} is missing")))
    }

    /// Input `i` as f32.
    pub fn f32<'v>(
        &self,
        inputs: &[Option<&'v Value>],
        i: usize,
    ) -> Result<&'v ndarray::ArrayD<f32>> {
        let v = self.input(inputs, i)?;
        v.as_f32()
            .ok_or_else(|| self.err(format!("input {i} is {}, expected f32", v.dtype())))
    }

    /// Resolves a possibly negative axis against a rank.
    pub fn axis(&self, axis: i64, rank: usize) -> Result<usize> {
        let a = if axis < 0 { axis + rank as i64 } else { axis };
        if a < 0 || a >= rank as i64 {
            return Err(self.err(format!("axis {axis} out of range for rank {rank}")));
        }
        Ok(a as usize)
    }
}

/// Evaluates every op but `Conv` (which the executor runs on owned buffers) on its inputs.
pub fn eval(op: &Op, inputs: &[Option<&Value>], ctx: Ctx) -> Result<Vec<Value>> {
    let one = |v: Value| Ok(vec![v]);
    match op {
        Op::Conv(c) => one(c.run_borrowed(ctx.f32(inputs, 0)?, ctx)?),
        Op::BatchNorm { eps } => one(elementwise::batch_norm(inputs, *eps, ctx)?),
        Op::Unary(u) => one(u.apply_value(ctx.input(inputs, 0)?, ctx)?),
        Op::Binary(b) => one(b.apply(ctx.input(inputs, 0)?, ctx.input(inputs, 1)?, ctx)?),
        Op::Pool(p) if !matches!(inputs.first(), Some(Some(Value::F32(_)))) => {
            pool_nd::PoolNd::from_legacy(p).run(inputs, ctx)
        }
        Op::Pool(p) => one(Value::F32(p.apply(ctx.f32(inputs, 0)?, ctx)?)),
        Op::GlobalAveragePool => one(Value::F32(pool::global_average(ctx.f32(inputs, 0)?, ctx)?)),
        Op::MatMul => one(matmul::matmul_any(
            ctx.input(inputs, 0)?,
            ctx.input(inputs, 1)?,
            ctx,
        )?),
        Op::Gemm {
            alpha,
            beta,
            trans_a,
            trans_b,
        } if !matches!(inputs.first(), Some(Some(Value::F32(_)))) => one(matmul::gemm_any(
            inputs,
            *alpha,
            *beta,
            [*trans_a, *trans_b],
            ctx,
        )?),
        Op::Gemm {
            alpha,
            beta,
            trans_a,
            trans_b,
        } => one(Value::F32(linalg::gemm(
            inputs, *alpha, *beta, *trans_a, *trans_b, ctx,
        )?)),
        Op::Softmax { axis } => one(Value::F32(elementwise::softmax(
            ctx.f32(inputs, 0)?,
            *axis,
            ctx,
        )?)),
        Op::Flatten { axis } => one(shape::flatten(ctx.input(inputs, 0)?, *axis, ctx)?),
        Op::Reshape { allowzero } => one(shape::reshape(inputs, *allowzero, ctx)?),
        Op::Transpose { perm } => one(shape::transpose(ctx.input(inputs, 0)?, perm, ctx)?),
        Op::Concat { axis } => one(shape::concat(inputs, *axis, ctx)?),
        Op::Slice => one(shape::slice(inputs, ctx)?),
        Op::Shape { start, end } => one(shape::shape_of(ctx.input(inputs, 0)?, *start, *end)?),
        Op::Gather { axis } => one(shape::gather(inputs, *axis, ctx)?),
        Op::Unsqueeze { axes } => one(shape::unsqueeze(inputs, axes.as_deref(), ctx)?),
        Op::Squeeze { axes } => one(shape::squeeze(inputs, axes.as_deref(), ctx)?),
        Op::Cast { to, saturate } => one(ctx.input(inputs, 0)?.cast_sat(*to, *saturate)),
        Op::Identity => one(ctx.input(inputs, 0)?.clone()),
        Op::ConvTranspose(c) => one(Value::F32(c.apply(ctx.f32(inputs, 0)?, ctx)?)),
        Op::Resize(r) => one(Value::F32(resize(r, inputs, ctx)?)),
        Op::Split { axis, split, parts } => {
            generate::split(inputs, *axis, split.as_deref(), *parts, ctx)
        }
        Op::Expand => one(generate::expand(inputs, ctx)?),
        Op::Range => one(generate::range(inputs, ctx)?),
        Op::ConstantOfShape { value } => one(generate::constant_of_shape(inputs, value, ctx)?),
        Op::Pad => one(generate::pad(inputs, ctx)?),
        Op::SparseLinear(s) => one(Value::F32(s.apply(inputs, ctx)?)),
        Op::Dyn(o) => o.run(inputs, ctx),
    }
}

/// Resize with scales (input 2) or sizes (input 3) for the two trailing axes.
fn resize(r: &Resize, inputs: &[Option<&Value>], ctx: Ctx) -> Result<ndarray::ArrayD<f32>> {
    let (out, scales) = resize_target(inputs, ctx)?;
    r.apply(ctx.f32(inputs, 0)?, out, scales, ctx)
}

/// A 4-D Resize's output H, W and scales, from its scales (input 2) or sizes (input 3),
/// checked against [`MAX_ELEMENTS`].
fn resize_target(inputs: &[Option<&Value>], ctx: Ctx) -> Result<([usize; 2], [f32; 2])> {
    let x = ctx.f32(inputs, 0)?;
    if x.ndim() != 4 {
        return Err(ctx.err(format!("only 4-D inputs, got {:?}", x.shape())));
    }
    let (h, w) = (x.shape()[2], x.shape()[3]);
    let nonempty = |i: usize| {
        inputs
            .get(i)
            .copied()
            .flatten()
            .filter(|v| !v.shape().contains(&0))
    };
    // Output H, W in wide integers: sizes and scales come from the model (or run time).
    let (out, scales) = if let Some(sizes) = nonempty(3) {
        let s = sizes.to_i64_vec();
        if s.len() != 4 || s[0] as usize != x.shape()[0] || s[1] as usize != x.shape()[1] {
            return Err(ctx.err(format!("sizes {s:?}: only H and W may change")));
        }
        if s[2] < 0 || s[3] < 0 {
            return Err(ctx.err(format!("sizes {s:?} are negative")));
        }
        let (ho, wo) = (s[2] as u128, s[3] as u128);
        ([ho, wo], [ho as f32 / h as f32, wo as f32 / w as f32])
    } else if let Some(scales) = nonempty(2) {
        let s: Vec<f32> = scales.to_f64_vec().iter().map(|&v| v as f32).collect();
        if s.len() != 4 || s[0] != 1.0 || s[1] != 1.0 {
            return Err(ctx.err(format!("scales {s:?}: only H and W may change")));
        }
        if !s.iter().all(|v| v.is_finite() && *v > 0.0) {
            return Err(ctx.err(format!("scales {s:?} must be positive and finite")));
        }
        // In f32 as before (and as ONNX Runtime); an overflow to inf saturates to u128::MAX.
        let len = |n: usize, s: f32| (n as f32 * s).floor() as u128;
        ([len(h, s[2]), len(w, s[3])], [s[2], s[3]])
    } else {
        return Err(ctx.err("neither scales nor sizes given"));
    };
    let [n, c] = [x.shape()[0], x.shape()[1]].map(|d| d as u128);
    let dims = ctx.sized_wide("output", &[n, c, out[0], out[1]])?;
    Ok(([dims[2], dims[3]], scales))
}
