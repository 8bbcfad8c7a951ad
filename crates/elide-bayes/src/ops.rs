//! Numerically stable elementwise functions built from candle's differentiable primitives
//! (no custom ops, no `scatter_add`), so every one has a gradient.
use candle_core::{Result, Tensor};

/// `log(1 + exp(x))`, stable for large `|x|`: `relu(x) + log(1 + exp(-|x|))`.
pub fn softplus(x: &Tensor) -> Result<Tensor> {
    x.relu()? + (x.abs()?.neg()?.exp()? + 1.0)?.log()?
}

/// `1 / (1 + exp(-x))`.
pub fn sigmoid(x: &Tensor) -> Result<Tensor> {
    (x.neg()?.exp()? + 1.0)?.recip()
}

/// `log sigmoid(x) = -softplus(-x)`.
pub fn log_sigmoid(x: &Tensor) -> Result<Tensor> {
    softplus(&x.neg()?)?.neg()
}

/// Row-wise `log_softmax` of a `[n, k]` tensor (the max is a constant, so no `max` gradient).
pub fn log_softmax_rows(x: &Tensor) -> Result<Tensor> {
    let m = x.max_keepdim(1)?.detach();
    let z = x.broadcast_sub(&m)?;
    let lse = z.exp()?.sum_keepdim(1)?.log()?;
    z.broadcast_sub(&lse)
}

/// Scalar `log(1 + exp(x))`.
pub fn softplus_f64(x: f64) -> f64 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

/// Scalar inverse of softplus: the `rho` with `softplus(rho) = s`.
pub fn softplus_inv_f64(s: f64) -> f64 {
    if s > 30.0 {
        s
    } else {
        s.exp_m1().ln()
    }
}

/// Scalar logistic function.
pub fn sigmoid_f64(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}
