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
        let shape = out_shape(&self.conv, t.shape(), ctx)?;
        let mut out = Tensor::from_vec(shape, ctx.alloc(shape.iter().product()))?;
        let run = self.conv.forward_into(&t, &mut out);
        let back = from_tensor(t);
        run.map_err(|e| ctx.err(e.to_string()))?;
        Ok((Value::F32(from_tensor(out)), back))
    }

    /// Runs on a borrowed input (copies it once).
    pub fn run_borrowed(&self, x: &ArrayD<f32>, ctx: Ctx) -> Result<Value> {
        Ok(self.run_owned(x.clone(), ctx)?.0)
    }
}

/// The output shape of `conv` on an `x`-shaped input. The padded input and the output are
/// checked against [`super::MAX_ELEMENTS`] in wide integers first: pads and dilations come
/// from the model, and a pad of 1e6 must neither reach the kernels' allocations nor wrap
/// their size arithmetic. Kernel errors name the node.
pub fn out_shape(conv: &Conv2d, x: [usize; 4], ctx: Ctx) -> Result<[usize; 4]> {
    let p = conv.params();
    let pad = |a: usize, b: usize| a as u128 + b as u128;
    let [n, c, h, w] = x.map(|d| d as u128);
    let (ph, pw) = (
        h + pad(p.pad.top, p.pad.bottom),
        w + pad(p.pad.left, p.pad.right),
    );
    ctx.sized_wide("padded input", &[n, c, ph, pw])?;
    // Kernel and dilation are at least 1 (validated at load).
    let field = |ax: usize| (p.kernel[ax] as u128 - 1) * p.dilation[ax] as u128 + 1;
    if ph < field(0) || pw < field(1) {
        return Err(ctx.err(format!(
            "padded input {ph}x{pw} is smaller than the receptive field {}x{}",
            field(0),
            field(1)
        )));
    }
    let shape = conv.out_shape(x).map_err(|e| ctx.err(e.to_string()))?;
    ctx.sized("output", &shape)?;
    Ok(shape)
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
