//! The op model: the [`Operator`] trait that an op implements once, in its own file, for
//! every execution mode, each mode a method with a conservative default.
//!
//! An op is an attribute struct (built and validated at import by the builder its
//! [`crate::onnx::registry`] line names) plus this trait. What the engine asks of it:
//! - [`Operator::run`]: dense evaluation on any inputs (the only required method).
//! - [`Operator::pointwise`]: whether each output pixel depends only on the same pixel of
//!   each input (broadcasting allowed); masked runs then pass a region through it. Default
//!   `false`: the op needs the whole of its inputs, which is always safe.
//! - [`Operator::macs`]: multiply-accumulates for `inspect`'s cost column. Default: none.
//! - [`Operator::delta`]: how a video delta run treats it. Default [`DeltaRule::Recompute`]
//!   (run it on the whole new input), exact for every op.
//! - [`Operator::to_candle`]: a training lowering. Default: an "unsupported" error naming
//!   the op, never a wrong graph.
//!
//! The older ops (convolutions, the fused element-wise fast paths, pools, resizes, shape
//! ops) are still variants of [`crate::ops::Op`] with the same defaults spelt out in
//! `sparse::region` and `ops::masked`; new ops are written against this trait and reach the
//! engine as [`crate::ops::Op::Dyn`].
use super::Ctx;
use crate::{GraphError, Result, Value};
use std::any::Any;
use std::fmt::Debug;

/// How a frame-to-frame delta run treats an op.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeltaRule {
    /// Recompute the op on its whole new input (exact; no reuse).
    Recompute,
}

/// One op: validated attributes plus everything the engine needs to know about it.
pub trait Operator: Debug + Send + Sync + Any {
    /// The op's ONNX name ("Sqrt", "ReduceMean", ...), for messages and `inspect`.
    fn name(&self) -> &'static str;

    /// Evaluates the op on its inputs (`None`: an omitted optional input); returns its
    /// outputs in order. Wrong dtypes or shapes are errors through `ctx`.
    fn run(&self, inputs: &[Option<&Value>], ctx: Ctx) -> Result<Vec<Value>>;

    /// Whether each output element at spatial position `(n, y, x)` reads only position
    /// `(n, y, x)` of every input (or a broadcast copy).
    fn pointwise(&self) -> bool {
        false
    }

    /// Multiply-accumulates to produce outputs of `outputs` shapes from `inputs` shapes.
    fn macs(&self, _inputs: &[&[usize]], _outputs: &[&[usize]]) -> u64 {
        0
    }

    /// The op's rule in delta (video) runs.
    fn delta(&self) -> DeltaRule {
        DeltaRule::Recompute
    }

    /// The op as candle operations, for fine-tuning an imported graph.
    fn to_candle(&self, _inputs: &[candle_core::Tensor]) -> Result<Vec<candle_core::Tensor>> {
        Err(GraphError::Unsupported {
            what: "training lowering",
            node: String::new(),
            op: self.name().to_string(),
            detail: "no candle lowering for this op yet".into(),
        })
    }

    /// The op as `Any`, for passes that rewrite a specific op type.
    fn as_any(&self) -> &dyn Any;
}
