//! Direct depthwise convolution (one input channel per group, any channel multiplier).
//!
//! GEMM is the wrong tool here (K = kh*kw is tiny), so each output plane is computed by
//! sliding whole rows: for every kernel tap the valid span of the output row gets
//! `w * input_row[shifted]`, a loop the compiler vectorises for stride 1.
use super::{im2col::valid_span, Conv2d, Schedule};
use crate::copy::all_finite;
use crate::Tensor;
use rayon::prelude::*;

/// Runs the layer; with `check`, returns false when an input plane holds NaN/inf (each plane
/// is checked just before it is read, so it is in cache for the taps).
pub(super) fn run(
    conv: &Conv2d,
    x: &Tensor,
    out: &mut Tensor,
    schedule: Schedule,
    check: bool,
) -> bool {
    let [_, cin, h, w] = x.shape();
    let [_, cout, ho, wo] = out.shape();
    let p = conv.params;
    let [kh, kw] = p.kernel;
    let mult = cout / cin;
    let plane = ho * wo;
    let one = |(idx, o): (usize, &mut [f32])| {
        let (n, oc) = (idx / cout, idx % cout);
        let xin = x.plane(n, oc / mult);
        let finite = !check || all_finite(xin);
        let wts = &conv.weight[oc * kh * kw..(oc + 1) * kh * kw];
        o.fill(0.0);
        for oy in 0..ho {
            let orow = &mut o[oy * wo..(oy + 1) * wo];
            for ky in 0..kh {
                let iy = (oy * p.stride[0] + ky * p.dilation[0]) as isize - p.pad.top as isize;
                if iy < 0 || iy >= h as isize {
                    continue;
                }
                let irow = &xin[iy as usize * w..(iy as usize + 1) * w];
                for kx in 0..kw {
                    tap_row(
                        orow,
                        irow,
                        wts[ky * kw + kx],
                        (kx * p.dilation[1]) as isize - p.pad.left as isize,
                        p.stride[1],
                    );
                }
            }
            conv.act.bias_apply(orow, conv.bias[oc]);
        }
        finite
    };
    match schedule {
        Schedule::Parallel => out
            .data_mut()
            .par_chunks_mut(plane)
            .enumerate()
            .map(one)
            .reduce(|| true, |a, b| a & b),
        Schedule::WholeImages => out
            .data_mut()
            .chunks_mut(plane)
            .enumerate()
            .map(one)
            .fold(true, |a, b| a & b),
    }
}

/// `orow[ox] += wv * irow[ox*stride + shift]` wherever the input index is inside the row.
#[inline]
fn tap_row(orow: &mut [f32], irow: &[f32], wv: f32, shift: isize, stride: usize) {
    let (lo, hi) = valid_span(orow.len(), irow.len(), shift, stride);
    if stride == 1 {
        let start = (lo as isize + shift) as usize;
        orow[lo..hi]
            .iter_mut()
            .zip(&irow[start..start + (hi - lo)])
            .for_each(|(o, &i)| *o += wv * i);
    } else {
        for (ox, o) in orow.iter_mut().enumerate().take(hi).skip(lo) {
            *o += wv * irow[(ox as isize * stride as isize + shift) as usize];
        }
    }
}
