//! A naive direct convolution: the ground truth every fast path is tested against.
use super::{Activation, Conv2dParams};
use crate::{error::Result, Tensor};

/// Direct 7-loop convolution in f64 accumulation. Slow by design; used by tests and checks.
pub fn conv2d_reference(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&[f32]>,
    p: &Conv2dParams,
    act: Activation,
) -> Result<Tensor> {
    let [n, cin, h, w] = x.shape();
    let [cout, cin_g, kh, kw] = weight.shape();
    let (ho, wo) = p.out_size(h, w)?;
    let g = p.groups;
    let cout_g = cout / g;
    let mut out = Tensor::zeros([n, cout, ho, wo]);
    let xd = x.data();
    let wd = weight.data();
    let od = out.data_mut();
    for b in 0..n {
        for oc in 0..cout {
            let grp = oc / cout_g;
            for oy in 0..ho {
                for ox in 0..wo {
                    let mut acc = bias.map_or(0.0, |bs| bs[oc] as f64);
                    for icl in 0..cin_g {
                        let ic = grp * cin_g + icl;
                        for ky in 0..kh {
                            let iy = (oy * p.stride[0] + ky * p.dilation[0]) as isize
                                - p.pad.top as isize;
                            if iy < 0 || iy >= h as isize {
                                continue;
                            }
                            for kx in 0..kw {
                                let ix = (ox * p.stride[1] + kx * p.dilation[1]) as isize
                                    - p.pad.left as isize;
                                if ix < 0 || ix >= w as isize {
                                    continue;
                                }
                                let xv = xd[((b * cin + ic) * h + iy as usize) * w + ix as usize];
                                let wv = wd[((oc * cin_g + icl) * kh + ky) * kw + kx];
                                acc += xv as f64 * wv as f64;
                            }
                        }
                    }
                    od[((b * cout + oc) * ho + oy) * wo + ox] = act.apply(acc as f32);
                }
            }
        }
    }
    Ok(out)
}

/// Per-output scale of the dot product, `sum |x| |w| + |b|`: the natural denominator for a
/// convolution's rounding error, which is bounded by `K * eps` times this (plain relative
/// error is meaningless where the terms cancel to near zero).
pub fn conv2d_error_scale(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&[f32]>,
    p: &Conv2dParams,
) -> Result<Tensor> {
    let abs = |t: &Tensor| Tensor::from_vec(t.shape(), t.data().iter().map(|v| v.abs()).collect());
    let b: Option<Vec<f32>> = bias.map(|b| b.iter().map(|v| v.abs()).collect());
    conv2d_reference(&abs(x)?, &abs(weight)?, b.as_deref(), p, Activation::None)
}

/// Largest `|got - want| / scale` over all elements (see [`conv2d_error_scale`]).
pub fn max_scaled_error(got: &Tensor, want: &Tensor, scale: &Tensor) -> f32 {
    got.data()
        .iter()
        .zip(want.data())
        .zip(scale.data())
        .map(|((a, b), s)| (a - b).abs() / s.max(f32::MIN_POSITIVE))
        .fold(0.0, f32::max)
}
