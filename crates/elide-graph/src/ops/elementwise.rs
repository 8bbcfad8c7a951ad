//! Element-wise ops: activations, broadcasting arithmetic, batch-norm and softmax.
use super::Ctx;
use crate::{GraphError, Result, Value};
use elide_kernels::conv::Activation;
use ndarray::{ArrayD, Axis, Zip};

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

    /// Applies to every element.
    pub fn apply(&self, x: &ArrayD<f32>) -> ArrayD<f32> {
        x.mapv(|v| self.eval(v))
    }
}

/// Broadcasting binary arithmetic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Binary {
    /// `a + b`.
    Add,
    /// `a - b`.
    Sub,
    /// `a * b`.
    Mul,
    /// `a / b`.
    Div,
}

impl Binary {
    /// Numpy broadcasting on f32, or on i64 (shape arithmetic).
    pub fn apply(&self, a: &Value, b: &Value, ctx: Ctx) -> Result<Value> {
        let bad = |e: ndarray::ShapeError| {
            ctx.err(format!(
                "cannot broadcast {:?} with {:?}: {e}",
                a.shape(),
                b.shape()
            ))
        };
        Ok(match (a, b) {
            (Value::F32(a), Value::F32(b)) => Value::F32(self.f32(a, b).map_err(bad)?),
            (Value::I64(a), Value::I64(b)) => {
                if *self == Binary::Div && b.iter().any(|&v| v == 0) {
                    return Err(ctx.err("integer division by zero"));
                }
                let (a, b) = co_broadcast(a, b).map_err(bad)?;
                let mut out = a.to_owned();
                Zip::from(&mut out).and(&b).for_each(|o, &b| {
                    *o = match self {
                        Binary::Add => *o + b,
                        Binary::Sub => *o - b,
                        Binary::Mul => *o * b,
                        Binary::Div => *o / b,
                    }
                });
                Value::I64(out)
            }
            _ => {
                return Err(ctx.err(format!(
                    "mixed element types {} and {}",
                    a.dtype(),
                    b.dtype()
                )))
            }
        })
    }

    fn f32(
        &self,
        a: &ArrayD<f32>,
        b: &ArrayD<f32>,
    ) -> std::result::Result<ArrayD<f32>, ndarray::ShapeError> {
        if let Some(out) = self.fast(a, b) {
            return Ok(out);
        }
        let (av, bv) = co_broadcast(a, b)?;
        let mut out = av.as_standard_layout().into_owned();
        let op = *self;
        Zip::from(&mut out).and(&bv).for_each(|o, &b| {
            *o = match op {
                Binary::Add => *o + b,
                Binary::Sub => *o - b,
                Binary::Mul => *o * b,
                Binary::Div => *o / b,
            }
        });
        Ok(out)
    }
}

impl Binary {
    #[inline(always)]
    fn op(self, x: f32, y: f32) -> f32 {
        match self {
            Binary::Add => x + y,
            Binary::Sub => x - y,
            Binary::Mul => x * y,
            Binary::Div => x / y,
        }
    }

    /// Contiguous fast paths: equal shapes, and a right operand that is a scalar or one value
    /// per channel of a `[N, C, ...]` left operand (residual adds, SE-block scales). Generic
    /// broadcasting through `Zip` ran these at a fraction of memory speed.
    fn fast(&self, a: &ArrayD<f32>, b: &ArrayD<f32>) -> Option<ArrayD<f32>> {
        let (asl, bsl) = (a.as_slice()?, b.as_slice()?);
        let op = *self;
        let mut out = vec![0f32; asl.len()];
        if a.shape() == b.shape() {
            macro_rules! each {
                ($f:expr) => {
                    out.iter_mut()
                        .zip(asl.iter().zip(bsl))
                        .for_each(|(o, (&x, &y))| *o = $f(x, y))
                };
            }
            match op {
                Binary::Add => each!(|x: f32, y: f32| x + y),
                Binary::Sub => each!(|x: f32, y: f32| x - y),
                Binary::Mul => each!(|x: f32, y: f32| x * y),
                Binary::Div => each!(|x: f32, y: f32| x / y),
            }
            return ArrayD::from_shape_vec(a.raw_dim(), out).ok();
        }
        let s = a.shape();
        let per_channel = s.len() >= 2 && b.ndim() <= s.len() && {
            // b's shape right-aligned against a's: all 1 except possibly at axis 1.
            let off = s.len() - b.ndim();
            b.shape()
                .iter()
                .enumerate()
                .all(|(i, &d)| d == 1 || (i + off == 1 && d == s[1]))
        };
        if !per_channel || asl.is_empty() {
            return None;
        }
        let inner: usize = s[2..].iter().product();
        let c = s[1];
        for (k, (o, x)) in out
            .chunks_mut(inner.max(1))
            .zip(asl.chunks(inner.max(1)))
            .enumerate()
        {
            let y = if bsl.len() == 1 { bsl[0] } else { bsl[k % c] };
            o.iter_mut().zip(x).for_each(|(o, &x)| *o = op.op(x, y));
        }
        ArrayD::from_shape_vec(a.raw_dim(), out).ok()
    }
}

/// Both arrays broadcast to their common shape (views).
fn co_broadcast<'a, T>(
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

/// Inference batch-norm over axis 1: `(x - mean) / sqrt(var + eps) * scale + bias`.
pub fn batch_norm(inputs: &[Option<&Value>], eps: f32, ctx: Ctx) -> Result<Value> {
    let x = ctx.f32(inputs, 0)?;
    if x.ndim() < 2 {
        return Err(ctx.err(format!("input of rank {} has no channel axis", x.ndim())));
    }
    let c = x.shape()[1];
    let mut stats = Vec::with_capacity(4);
    for i in 1..5 {
        let s = ctx.f32(inputs, i)?;
        if s.len() != c {
            return Err(ctx.err(format!("input {i} has {} values for {c} channels", s.len())));
        }
        stats.push(s.iter().copied().collect::<Vec<f32>>());
    }
    let mut out = x.as_standard_layout().into_owned();
    for (ch, mut lane) in out.axis_iter_mut(Axis(1)).enumerate() {
        let s = stats[0][ch] / (stats[3][ch] + eps).sqrt();
        let b = stats[1][ch] - stats[2][ch] * s;
        lane.mapv_inplace(|v| v * s + b);
    }
    Ok(Value::F32(out))
}

/// Softmax along `axis`, stable (max subtracted).
pub fn softmax(x: &ArrayD<f32>, axis: i64, ctx: Ctx) -> Result<ArrayD<f32>> {
    let ax = ctx.axis(axis, x.ndim())?;
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
