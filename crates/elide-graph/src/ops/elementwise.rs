//! Element-wise ops of one input: activations, batch-norm and softmax; and the broadcasting
//! that `binary` falls back on.
use super::Ctx;
use crate::{GraphError, Result, Value};
use elide_kernels::conv::Activation;
use ndarray::{ArrayD, Axis};
use rayon::prelude::*;

/// Element-wise functions of one f32 input.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Unary {
    /// `max(x, 0)`.
    Relu,
    /// `1 / (1 + e^-x)`.
    Sigmoid,
    /// `tanh(x)`.
    Tanh,
    /// `clamp(alpha x + beta, 0, 1)`.
    HardSigmoid {
        /// Slope.
        alpha: f32,
        /// Offset.
        beta: f32,
    },
    /// `x * clamp(x/6 + 1/2, 0, 1)`.
    HardSwish,
    /// `x` or `alpha x` below 0.
    LeakyRelu {
        /// Negative slope.
        alpha: f32,
    },
    /// `clamp(x, min, max)`.
    Clip {
        /// Lower bound.
        min: f32,
        /// Upper bound.
        max: f32,
    },
}

impl Unary {
    /// The same function as a kernels activation, when there is one (for fusion into a conv).
    pub fn as_activation(&self) -> Option<Activation> {
        match *self {
            Unary::Relu => Some(Activation::Relu),
            Unary::Sigmoid => Some(Activation::Sigmoid),
            Unary::HardSwish => Some(Activation::HardSwish),
            Unary::LeakyRelu { alpha } => Some(Activation::LeakyRelu(alpha)),
            Unary::Clip { min, max } if min == 0.0 && max == 6.0 => Some(Activation::Relu6),
            Unary::Clip { min, max } if min == 0.0 && max == f32::INFINITY => {
                Some(Activation::Relu)
            }
            _ => None,
        }
    }

    /// One value.
    #[inline]
    pub fn eval(&self, x: f32) -> f32 {
        match *self {
            Unary::Relu => x.max(0.0),
            Unary::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            Unary::Tanh => x.tanh(),
            Unary::HardSigmoid { alpha, beta } => (alpha * x + beta).clamp(0.0, 1.0),
            Unary::HardSwish => x * (x / 6.0 + 0.5).clamp(0.0, 1.0),
            Unary::LeakyRelu { alpha } => {
                if x >= 0.0 {
                    x
                } else {
                    alpha * x
                }
            }
            Unary::Clip { min, max } => x.max(min).min(max),
        }
    }

    /// Applies to every element, into a buffer from the arena.
    pub fn apply(&self, x: &ArrayD<f32>, ctx: Ctx) -> ArrayD<f32> {
        let mut out = ctx.alloc(x.len());
        match x.as_slice() {
            Some(xs) => out.copy_from_slice(xs),
            None => out.iter_mut().zip(x.iter()).for_each(|(o, &v)| *o = v),
        }
        self.apply_slice(&mut out);
        ArrayD::from_shape_vec(x.raw_dim(), out).expect("same length as the input")
    }

    /// The f64 form of [`Unary::eval`], for f64 inputs.
    pub fn eval_f64(&self, x: f64) -> f64 {
        match *self {
            Unary::Relu => x.max(0.0),
            Unary::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            Unary::Tanh => x.tanh(),
            Unary::HardSigmoid { alpha, beta } => (alpha as f64 * x + beta as f64).clamp(0.0, 1.0),
            Unary::HardSwish => x * (x / 6.0 + 0.5).clamp(0.0, 1.0),
            Unary::LeakyRelu { alpha } => {
                if x >= 0.0 {
                    x
                } else {
                    alpha as f64 * x
                }
            }
            Unary::Clip { min, max } => x.max(min as f64).min(max as f64),
        }
    }

    /// Applies to a value of any type ONNX allows for the op: f64 in f64, f16/bf16 through
    /// f32, and Relu and Clip on integers (Clip's bounds are f32 here only when they came as
    /// f32 constants, so an integer input has infinite ones). Other types are an error.
    pub fn apply_value(&self, v: &Value, ctx: Ctx) -> Result<Value> {
        if let Value::F32(a) = v {
            return Ok(Value::F32(self.apply(a, ctx)));
        }
        if let Some(out) = super::typed::map_float(v, |x| self.eval(x), |x| self.eval_f64(x)) {
            return Ok(out);
        }
        match (self, v.dtype()) {
            (Unary::Relu, d) if d.is_int() => Ok(crate::map_array!(v, a => a.mapv(|x| {
                use crate::Elem;
                if x.to_i64() < 0 { Elem::from_i64(0) } else { x }
            }))),
            (Unary::Clip { min, max }, d)
                if d.is_int() && min.is_infinite() && max.is_infinite() =>
            {
                Ok(v.clone())
            }
            _ => Err(ctx.err(format!(
                "input 0 is {}, which this op does not take",
                v.dtype()
            ))),
        }
    }

    /// Applies in place, in parallel chunks; the kernels' vectorised activations where one
    /// matches.
    pub fn apply_slice(&self, xs: &mut [f32]) {
        const CHUNK: usize = 1 << 14;
        let act = self.as_activation();
        xs.par_chunks_mut(CHUNK).for_each(|c| match act {
            Some(a) => a.bias_apply(c, 0.0),
            None => c.iter_mut().for_each(|v| *v = self.eval(*v)),
        });
    }
}

/// Both arrays broadcast to their common shape (views).
pub(super) fn co_broadcast<'a, T>(
    a: &'a ArrayD<T>,
    b: &'a ArrayD<T>,
) -> std::result::Result<
    (ndarray::ArrayViewD<'a, T>, ndarray::ArrayViewD<'a, T>),
    ndarray::ShapeError,
> {
    let rank = a.ndim().max(b.ndim());
    let dim = |s: &[usize], i: usize| {
        let off = rank - s.len();
        if i < off {
            1
        } else {
            s[i - off]
        }
    };
    let mut shape = Vec::with_capacity(rank);
    for i in 0..rank {
        let (x, y) = (dim(a.shape(), i), dim(b.shape(), i));
        if x != y && x != 1 && y != 1 {
            return Err(ndarray::ShapeError::from_kind(
                ndarray::ErrorKind::IncompatibleShape,
            ));
        }
        shape.push(x.max(y));
    }
    let shape = ndarray::IxDyn(&shape);
    let av = a
        .broadcast(shape.clone())
        .ok_or_else(|| ndarray::ShapeError::from_kind(ndarray::ErrorKind::IncompatibleShape))?;
    let bv = b
        .broadcast(shape)
        .ok_or_else(|| ndarray::ShapeError::from_kind(ndarray::ErrorKind::IncompatibleShape))?;
    Ok((av, bv))
}

/// A batch-norm's statistics (inputs 1-4: scale, bias, mean, variance; one value per channel
/// of `c`) as the per-channel affine `x * scale + shift` it applies.
pub(super) fn batch_norm_inputs(
    inputs: &[Option<&Value>],
    c: usize,
    eps: f32,
    ctx: Ctx,
) -> Result<(Vec<f32>, Vec<f32>)> {
    let mut stats = Vec::with_capacity(4);
    for i in 1..5 {
        let s = ctx.f32(inputs, i)?;
        if s.len() != c {
            return Err(ctx.err(format!("input {i} has {} values for {c} channels", s.len())));
        }
        stats.push(s.iter().copied().collect::<Vec<f32>>());
    }
    Ok(batch_norm_affine(
        [&stats[0], &stats[1], &stats[2], &stats[3]],
        eps,
    ))
}

/// `(scale, shift)` per channel of an inference batch-norm with `gamma`, `beta`, `mean`, `var`:
/// `scale = gamma / sqrt(var + eps)`, `shift = beta - mean * scale`.
pub fn batch_norm_affine([gamma, beta, mean, var]: [&[f32]; 4], eps: f32) -> (Vec<f32>, Vec<f32>) {
    gamma
        .iter()
        .zip(beta)
        .zip(mean.iter().zip(var))
        .map(|((&g, &b), (&m, &v))| {
            let s = g / (v + eps).sqrt();
            (s, b - m * s)
        })
        .unzip()
}

/// Inference batch-norm over axis 1: `(x - mean) / sqrt(var + eps) * scale + bias`.
pub fn batch_norm(inputs: &[Option<&Value>], eps: f32, ctx: Ctx) -> Result<Value> {
    let x = ctx.f32(inputs, 0)?;
    if x.ndim() < 2 {
        return Err(ctx.err(format!("input of rank {} has no channel axis", x.ndim())));
    }
    let c = x.shape()[1];
    let (scale, shift) = batch_norm_inputs(inputs, c, eps, ctx)?;
    let plane: usize = x.shape()[2..].iter().product();
    let x = x.as_standard_layout();
    let src = x.as_slice().expect("standard layout");
    let mut out = ctx.alloc(src.len());
    // One task per (image, channel) plane, in parallel.
    out.par_chunks_mut(plane.max(1))
        .zip(src.par_chunks(plane.max(1)))
        .enumerate()
        .for_each(|(i, (o, xs))| {
            let (s, b) = (scale[i % c], shift[i % c]);
            o.iter_mut().zip(xs).for_each(|(o, &v)| *o = v * s + b);
        });
    Ok(Value::F32(ArrayD::from_shape_vec(x.raw_dim(), out)?))
}

/// Softmax along `axis`, stable (max subtracted).
pub fn softmax(x: &ArrayD<f32>, axis: i64, ctx: Ctx) -> Result<ArrayD<f32>> {
    let ax = ctx.axis(axis, x.ndim())?;
    if let Some(src) = x.as_slice() {
        let s = x.shape();
        let shape = [
            s[..ax].iter().product(),
            s[ax],
            s[ax + 1..].iter().product(),
        ];
        let mut out = ctx.alloc(src.len());
        elide_kernels::softmax::softmax(src, shape, &mut out);
        return Ok(ArrayD::from_shape_vec(x.raw_dim(), out)?);
    }
    let mut out = x.as_standard_layout().into_owned();
    for mut lane in out.lanes_mut(Axis(ax)) {
        let m = lane.fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        lane.mapv_inplace(|v| (v - m).exp());
        let s = lane.sum();
        lane.mapv_inplace(|v| v / s);
    }
    Ok(out)
}

impl From<ndarray::ShapeError> for GraphError {
    fn from(e: ndarray::ShapeError) -> Self {
        GraphError::Model(format!("shape error: {e}"))
    }
}
