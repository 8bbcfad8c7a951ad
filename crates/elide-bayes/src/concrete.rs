//! The binary Concrete (relaxed Bernoulli) sample with a hard 0/1 forward value and a
//! straight-through gradient.
//!
//! With logistic noise `L = log u - log(1-u)`, the relaxed sample is
//! `y = sigmoid((theta + L) / tau)`. The forward value is `1[y > 0.5] = 1[theta + L > 0]`, which
//! is exactly `Bernoulli(sigmoid(theta))` whatever the temperature; the gradient is that of `y`.
use crate::rng::Rng;
use candle_core::{DType, Device, Result, Shape, Tensor};

/// Logistic noise `log u - log(1-u)` of the given shape.
pub fn logistic_noise<S: Into<Shape>>(
    shape: S,
    rng: &mut Rng,
    dtype: DType,
    dev: &Device,
) -> Result<Tensor> {
    let shape = shape.into();
    let v: Vec<f64> = (0..shape.elem_count()).map(|_| rng.logistic()).collect();
    Tensor::from_vec(v, shape, dev)?.to_dtype(dtype)
}

/// The straight-through binary Concrete sample: hard 0/1 values, gradient of the relaxation.
/// `noise` is logistic noise of `theta`'s shape; `temperature > 0`.
pub fn hard_concrete(theta: &Tensor, noise: &Tensor, temperature: f64) -> Result<Tensor> {
    let soft = crate::ops::sigmoid(&((theta + noise)? / temperature)?)?;
    let hard = soft.gt(0.5)?.to_dtype(theta.dtype())?;
    (hard - soft.detach())? + soft
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Var;

    #[test]
    fn forward_is_bernoulli_phi() {
        let dev = Device::Cpu;
        let theta = Tensor::full(0.4f64, 20_000, &dev).unwrap(); // phi = sigmoid(0.4) = 0.5987
        let mut rng = Rng::new(11);
        let noise = logistic_noise(20_000, &mut rng, DType::F64, &dev).unwrap();
        let g = hard_concrete(&theta, &noise, 0.5)
            .unwrap()
            .to_vec1::<f64>()
            .unwrap();
        assert!(g.iter().all(|&x| x == 0.0 || x == 1.0));
        let mean = g.iter().sum::<f64>() / g.len() as f64;
        assert!((mean - 0.5987).abs() < 0.015, "{mean}");
    }

    #[test]
    fn gradient_is_the_relaxations() {
        // d/dtheta sigmoid((theta + L)/tau) = s (1 - s) / tau.
        let dev = Device::Cpu;
        let theta = Var::new(&[0.3f64, -1.0], &dev).unwrap();
        let noise = Tensor::new(&[0.2f64, 0.5], &dev).unwrap();
        let tau = 0.5;
        let g = hard_concrete(theta.as_tensor(), &noise, tau).unwrap();
        let grads = g.sum_all().unwrap().backward().unwrap();
        let d = grads.get(&theta).unwrap().to_vec1::<f64>().unwrap();
        for (i, (t, l)) in [(0.3, 0.2), (-1.0, 0.5)].iter().enumerate() {
            let s = 1.0 / (1.0 + (-(t + l) / tau).exp());
            assert!((d[i] - s * (1.0 - s) / tau).abs() < 1e-12, "{d:?}");
        }
    }
}
