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
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512F (checked just above).
            unsafe { self.bias_apply_avx512(xs, bias) };
            return;
        }
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU supports AVX2 and FMA (checked just above).
            unsafe { self.bias_apply_avx2(xs, bias) };
            return;
        }
        self.bias_apply_loops(xs, bias);
    }

    /// 16 lanes where the CPU has them: SiLU epilogues measured a third faster than with AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx2,fma")]
    unsafe fn bias_apply_avx512(self, xs: &mut [f32], bias: f32) {
        self.bias_apply_loops(xs, bias);
    }

    /// The same loops compiled for AVX2 + FMA: the workspace targets baseline x86-64 (SSE2),
    /// where these ran 4 lanes wide (HardSwish epilogues were 7% of a MobileNet's run).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn bias_apply_avx2(self, xs: &mut [f32], bias: f32) {
        self.bias_apply_loops(xs, bias);
    }

    #[inline(always)]
    fn bias_apply_loops(self, xs: &mut [f32], bias: f32) {
        // One loop per variant so each inner loop is branch-free and vectorises.
        match self {
            Activation::None => xs.iter_mut().for_each(|x| *x += bias),
            Activation::Relu => xs.iter_mut().for_each(|x| *x = (*x + bias).max(0.0)),
            Activation::Relu6 => xs.iter_mut().for_each(|x| *x = (*x + bias).clamp(0.0, 6.0)),
            Activation::HardSwish => xs.iter_mut().for_each(|x| {
                let v = *x + bias;
                *x = v * (v + 3.0).clamp(0.0, 6.0) * (1.0 / 6.0)
            }),
            Activation::LeakyRelu(a) => xs.iter_mut().for_each(|x| {
                let v = *x + bias;
                *x = if v >= 0.0 { v } else { a * v }
            }),
            // Sigmoid-based activations with a vectorisable exp: libm's expf, called per
            // element, was 10% of YOLOv8n's run time.
            Activation::Silu => xs.iter_mut().for_each(|x| {
                let v = *x + bias;
                *x = v / (1.0 + exp(-v))
            }),
            Activation::Sigmoid => xs
                .iter_mut()
                .for_each(|x| *x = 1.0 / (1.0 + exp(-(*x + bias)))),
        }
    }
}

/// `e^x` to about 2 ulp (Cephes' expf: `x = n ln2 + r`, a degree-5 polynomial for `e^r` on
/// `|r| <= ln2/2`, `2^n` from the exponent bits), written so the compiler vectorises it.
#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let x = x.clamp(-87.0, 88.0);
    let n = (x * std::f32::consts::LOG2_E + 0.5).floor();
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = 1.987_569_1e-4_f32;
    let p = p * r + 1.398_199_9e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 0.166_666_65;
    let p = p * r + 0.5;
    let e = p * r * r + r + 1.0;
    // 2^n from the exponent bits. `n as i32` is a saturating cast that the compiler emits
    // element by element (it was most of YOLOv8n's SiLU time); adding 1.5 * 2^23 instead puts
    // the integer n (|n| <= 127 after the clamp) in the low mantissa bits, all in vector lanes.
    let n_bits = (n + 12_582_912.0).to_bits().wrapping_sub(0x4B40_0000);
    e * f32::from_bits(n_bits.wrapping_add(127) << 23)
}

#[cfg(test)]
mod tests {
    #[test]
    fn fast_exp_is_within_a_few_ulp() {
        let mut worst = 0f64;
        let mut x = -87.0f32;
        while x < 88.0 {
            let want = (x as f64).exp();
            let got = super::exp(x) as f64;
            worst = worst.max(((got - want) / want).abs());
            x += 0.0137;
        }
        assert!(worst < 3e-7, "relative error {worst}");
    }
}
