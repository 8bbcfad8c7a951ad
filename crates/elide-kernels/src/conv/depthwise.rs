//! Direct depthwise convolution (one input channel per group, any channel multiplier).
//!
//! GEMM is the wrong tool here (K = kh*kw is tiny), so each output plane is computed by
//! sliding whole rows: for every kernel tap the valid span of the output row gets
//! `w * input_row[shifted]`, a loop the compiler vectorises for stride 1.
use super::{im2col::valid_span, Conv2d, Schedule};
use crate::axpy::{axpy, stencil};
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
        if wo <= NARROW {
            narrow_plane(conv, xin, [h, w], oc, o, [ho, wo]);
            return finite;
        }
        o.fill(0.0);
        let sx = p.stride[1];
        // Strided rows are split into `sx` phases (every sx-th value) once per input row, so
        // every tap is a contiguous, vectorisable multiply-add on one phase.
        let mut phases = vec![0f32; if sx > 1 { w + sx } else { 0 }];
        let phase_len = |r: usize| (w + sx - 1 - r) / sx;
        for oy in 0..ho {
            let orow = &mut o[oy * wo..(oy + 1) * wo];
            for ky in 0..kh {
                let iy = (oy * p.stride[0] + ky * p.dilation[0]) as isize - p.pad.top as isize;
                if iy < 0 || iy >= h as isize {
                    continue;
                }
                let irow = &xin[iy as usize * w..(iy as usize + 1) * w];
                if sx > 1 {
                    let mut at = 0;
                    for r in 0..sx {
                        for j in 0..phase_len(r) {
                            phases[at + j] = irow[j * sx + r];
                        }
                        at += phase_len(r);
                    }
                }
                for kx in 0..kw {
                    let shift = (kx * p.dilation[1]) as isize - p.pad.left as isize;
                    if sx == 1 {
                        tap_row(orow, irow, wts[ky * kw + kx], shift, 1);
                        continue;
                    }
                    // ox*sx + shift = sx*(ox + q) + r with 0 <= r < sx.
                    let (q, r) = (
                        shift.div_euclid(sx as isize),
                        shift.rem_euclid(sx as isize) as usize,
                    );
                    let start: usize = (0..r).map(phase_len).sum();
                    let phase = &phases[start..start + phase_len(r)];
                    tap_row(orow, phase, wts[ky * kw + kx], q, 1);
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

/// Output widths up to which planes take [`narrow_plane`]: on short rows the per-tap setup
/// of the row kernel dominated (a 5x5 depthwise on 14x14 ran at ~2 GFLOP/s).
const NARROW: usize = 64;

/// Depthwise of one small plane. The zero-padded input is split into `sy x sx` phase planes
/// (every sy-th row, sx-th column: one plane for stride 1), so that every tap reads one phase
/// plane at a fixed offset; each tap is then a single multiply-add over the flattened plane
/// ("wide" output rows as long as the phase planes', whose extra columns are dropped).
fn narrow_plane(
    conv: &Conv2d,
    xin: &[f32],
    [h, w]: [usize; 2],
    oc: usize,
    o: &mut [f32],
    [ho, wo]: [usize; 2],
) {
    let p = &conv.params;
    let [kh, kw] = p.kernel;
    let [dy, dx] = p.dilation;
    let [sy, sx] = p.stride;
    let (hp, wp) = (h + p.pad.top + p.pad.bottom, w + p.pad.left + p.pad.right);
    // Phase planes, one slack row each for the junk columns' reads past the end.
    let (hq, wq) = (hp.div_ceil(sy) + 1, wp.div_ceil(sx));
    let plane = hq * wq;
    NARROW_BUF.with(|b| {
        let mut b = b.borrow_mut();
        let wide_len = ho * wq;
        b.resize(sy * sx * plane + wide_len, 0.0);
        let (phases, wide) = b.split_at_mut(sy * sx * plane);
        phases.fill(0.0);
        // Per column phase: the first padded column of that phase holding image data (the
        // divisions stay out of the loops).
        let firsts: Vec<(usize, usize)> = (0..sx)
            .map(|rx| (rx, p.pad.left + (rx + sx - p.pad.left % sx) % sx))
            .filter(|&(_, first)| first < p.pad.left + w)
            .collect();
        let (mut ry, mut qy) = (p.pad.top % sy, p.pad.top / sy);
        for y in 0..h {
            let row = &xin[y * w..(y + 1) * w];
            if sx == 1 {
                let at = ry * plane + qy * wq + p.pad.left;
                phases[at..at + w].copy_from_slice(row);
            } else {
                for &(rx, first) in &firsts {
                    let at = (ry * sx + rx) * plane + qy * wq + first / sx;
                    let src = row[first - p.pad.left..].iter().step_by(sx);
                    phases[at..].iter_mut().zip(src).for_each(|(d, &v)| *d = v);
                }
            }
            ry += 1;
            if ry == sy {
                ry = 0;
                qy += 1;
            }
        }
        let wts = &conv.weight[oc * kh * kw..(oc + 1) * kh * kw];
        let taps: Vec<(usize, f32)> = (0..kh * kw)
            .map(|t| {
                let (py, px) = ((t / kw) * dy, (t % kw) * dx);
                (
                    ((py % sy) * sx + px % sx) * plane + (py / sy) * wq + px / sx,
                    wts[t],
                )
            })
            .collect();
        stencil(wide, phases, &taps);
        for (orow, wrow) in o.chunks_exact_mut(wo).zip(wide.chunks_exact(wq)) {
            orow.copy_from_slice(&wrow[..wo]);
            conv.act.bias_apply(orow, conv.bias[oc]);
        }
    });
}

thread_local! {
    static NARROW_BUF: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// `orow[ox] += wv * irow[ox*stride + shift]` wherever the input index is inside the row.
#[inline]
fn tap_row(orow: &mut [f32], irow: &[f32], wv: f32, shift: isize, stride: usize) {
    let (lo, hi) = valid_span(orow.len(), irow.len(), shift, stride);
    if stride == 1 {
        let start = (lo as isize + shift) as usize;
        axpy(&mut orow[lo..hi], &irow[start..start + (hi - lo)], wv);
    } else {
        for (ox, o) in orow.iter_mut().enumerate().take(hi).skip(lo) {
            *o += wv * irow[(ox as isize * stride as isize + shift) as usize];
        }
    }
}
