//! Activations fused into the convolution's epilogue (applied while the output is in cache).

/// An element-wise activation applied after bias.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Activation {
    /// Identity.
    #[default]
    None,
    /// `max(x, 0)`.
    Relu,
    /// `min(max(x, 0), 6)`.
    Relu6,
    /// `x` for `x >= 0`, `alpha * x` otherwise.
    LeakyRelu(f32),
    /// `x * relu6(x + 3) / 6`.
    HardSwish,
    /// `x * sigmoid(x)`.
    Silu,
    /// `1 / (1 + exp(-x))`.
    Sigmoid,
}

impl Activation {
    /// The activation of one value.
    #[inline]
    pub fn apply(self, x: f32) -> f32 {
        match self {
            Activation::None => x,
            Activation::Relu => x.max(0.0),
            Activation::Relu6 => x.clamp(0.0, 6.0),
            Activation::LeakyRelu(a) => {
                if x >= 0.0 {
                    x
                } else {
                    a * x
                }
            }
            Activation::HardSwish => x * (x + 3.0).clamp(0.0, 6.0) / 6.0,
            Activation::Silu => x / (1.0 + (-x).exp()),
            Activation::Sigmoid => 1.0 / (1.0 + (-x).exp()),
        }
    }

    /// Adds `bias` to every value of `xs` and applies the activation, in place.
    #[inline]
    pub fn bias_apply(self, xs: &mut [f32], bias: f32) {
        // One loop per variant so each inner loop is branch-free and vectorises.
        match self {
            Activation::None => xs.iter_mut().for_each(|x| *x += bias),
            Activation::Relu => xs.iter_mut().for_each(|x| *x = (*x + bias).max(0.0)),
            Activation::Relu6 => xs.iter_mut().for_each(|x| *x = (*x + bias).clamp(0.0, 6.0)),
            Activation::HardSwish => xs.iter_mut().for_each(|x| {
                let v = *x + bias;
                *x = v * (v + 3.0).clamp(0.0, 6.0) * (1.0 / 6.0)
            }),
            _ => xs.iter_mut().for_each(|x| *x = self.apply(*x + bias)),
        }
    }
}
