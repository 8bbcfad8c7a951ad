//! Conv nodes on elide-kernels' `Conv2d`, with buffers moved, not copied, between the
//! graph's arrays and the kernels' NCHW tensors.
use super::Ctx;
use crate::{Result, Value};
use elide_kernels::conv::Conv2d;
use elide_kernels::Tensor;
use ndarray::{ArrayD, IxDyn};

/// A convolution with its weights (batch-norm and activation may be folded in).
#[derive(Clone, Debug)]
pub struct ConvOp {
    /// The kernels' layer.
    pub conv: Conv2d,
}

impl ConvOp {
    /// Runs on an owned input and hands it back, so the caller can keep using it.
    pub fn run_owned(&self, x: ArrayD<f32>, ctx: Ctx) -> Result<(Value, ArrayD<f32>)> {
        let t = to_tensor(x, ctx)?;
        let shape = self.conv.out_shape(t.shape())?;
        let mut out = Tensor::from_vec(shape, ctx.alloc(shape.iter().product()))?;
        let run = self.conv.forward_into(&t, &mut out);
        let back = from_tensor(t);
        run?;
        Ok((Value::F32(from_tensor(out)), back))
    }

    /// Runs on a borrowed input (copies it once).
    pub fn run_borrowed(&self, x: &ArrayD<f32>, ctx: Ctx) -> Result<Value> {
        Ok(self.run_owned(x.clone(), ctx)?.0)
    }
}

/// An NCHW array as a kernels tensor, moving the buffer when the layout allows.
pub fn to_tensor(x: ArrayD<f32>, ctx: Ctx) -> Result<Tensor> {
    let shape: [usize; 4] = x.shape().try_into().map_err(|_| {
        ctx.err(format!(
            "expected a 4-D NCHW input, got shape {:?}",
            x.shape()
        ))
    })?;
    let data = if x.is_standard_layout() {
        match x.into_raw_vec_and_offset() {
            (v, Some(0) | None) => v,
            (v, Some(off)) => v[off..off + shape.iter().product::<usize>()].to_vec(),
        }
    } else {
        x.iter().copied().collect()
    };
    Ok(Tensor::from_vec(shape, data)?)
}

/// A kernels tensor as an array, moving the buffer.
pub fn from_tensor(t: Tensor) -> ArrayD<f32> {
    let shape = t.shape();
    ArrayD::from_shape_vec(IxDyn(&shape), t.into_vec())
        .expect("a tensor's length matches its shape")
}
