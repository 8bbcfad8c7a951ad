//! 1x1 stride-1 convolutions of small maps with many channels (up to 63 pixels, e.g. the 7x7
//! last stages of MobileNet-style classifiers), with AVX-512: vectorised over output channels, not
//! pixels. A register block is 48 output channels x 7 pixels (21 accumulators): per input
//! channel, three vector loads of packed weights and seven broadcast input values feed 21
//! FMAs. Weights are packed once per layer as `[block][cin][48]`, so a block streams its
//! weights once, in order, per 7 pixels.
//!
//! Why not `gemm` on the planes (the [`super::gemm_conv`] path): with 49 or 196 columns it
//! runs the product at 80-100 GFLOP/s alone, but inside a network the layer's weights (up to
//! 1 MB) arrive from L3 and `gemm` repacks them on every call; there the 512 -> 512 layer at
//! 7x7 took 0.45 ms against 0.30 alone (one core).
use super::Conv2d;
use crate::copy::all_finite;
use crate::par::{all, SyncPtr};
use crate::Tensor;

/// Output channels per register block (three 16-lane vectors).
pub(super) const NC: usize = 48;
/// Pixels per register block.
const NP: usize = 7;
/// Largest map (pixels per image) this kernel takes. Measured alone on one core against the
/// `gemm` path: 512 -> 512 at 7x7 0.26 vs 0.32-0.33 ms, 1024 -> 1024 at 7x7 1.01 vs 1.22, at
/// 10x10 even, 256 -> 256 at 14x14 0.27 vs 0.25, 128 -> 128 at 28x28 0.30 vs 0.25-0.29 (there
/// `gemm` gets the columns it wants).
const MAX_PIXELS: usize = 63;

/// Whether this kernel runs `conv` on an `h x w` input on this CPU.
pub(super) fn applies(conv: &Conv2d, h: usize, w: usize) -> bool {
    let p = &conv.params;
    p.groups == 1
        && p.kernel == [1, 1]
        && p.stride == [1, 1]
        && p.pad == super::Padding::default()
        && h * w > 1
        && h * w <= MAX_PIXELS
        && conv.out_channels >= 32
        && conv.in_channels >= 32
        && super::padded_direct::avx512()
}

/// `weight` (`[cout][cin]`) as `[cout / NC blocks][cin][NC]`, the last block zero-padded.
pub(super) fn pack(weight: &[f32], cout: usize) -> Vec<f32> {
    super::pack_channel_blocks(weight, cout, NC)
}

/// Runs the layer on every image; with `check`, returns false when an input value is NaN/inf.
pub(super) fn run(
    conv: &Conv2d,
    packed: &[f32],
    x: &Tensor,
    out: &mut Tensor,
    parallel: bool,
    check: bool,
) -> bool {
    let [nb, cin, h, w] = x.shape();
    let (cout, npix) = (conv.out_channels, h * w);
    let blocks = cout.div_ceil(NC);
    let tasks: Vec<(usize, usize)> = (0..nb)
        .flat_map(|n| (0..blocks).map(move |b| (n, b)))
        .collect();
    let optr = SyncPtr::new(out.data_mut());
    let xs = x.data();
    all(&tasks, parallel, |&(n, b)| {
        let xn = &xs[n * cin * npix..(n + 1) * cin * npix];
        let wb = &packed[b * cin * NC..(b + 1) * cin * NC];
        let c0 = b * NC;
        let rows = NC.min(cout - c0);
        let dst = optr.offset((n * cout + c0) * npix);
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `applies` checked AVX-512F; `wb` holds cin x NC weights, `xn` cin x npix
        // inputs; the task owns output rows c0..c0 + rows of image n (npix floats each).
        unsafe {
            block(wb, xn, cin, npix, dst, rows)
        };
        for r in 0..rows {
            // SAFETY: as above.
            let row = unsafe { std::slice::from_raw_parts_mut(dst.at(r * npix), npix) };
            conv.act.bias_apply(row, conv.bias[c0 + r]);
        }
        // The first block of an image checks its input.
        !check || b > 0 || all_finite(xn)
    })
}

/// One block of NC output channels over all `npix` pixels: register tiles of NP pixels, then
/// the remainder.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn block(w: &[f32], x: &[f32], cin: usize, npix: usize, dst: SyncPtr, rows: usize) {
    let mut p0 = 0;
    while p0 + NP <= npix {
        tile::<NP>(w, x, cin, npix, p0, dst, rows);
        p0 += NP;
    }
    match npix - p0 {
        0 => {}
        1 => tile::<1>(w, x, cin, npix, p0, dst, rows),
        2 => tile::<2>(w, x, cin, npix, p0, dst, rows),
        3 => tile::<3>(w, x, cin, npix, p0, dst, rows),
        4 => tile::<4>(w, x, cin, npix, p0, dst, rows),
        5 => tile::<5>(w, x, cin, npix, p0, dst, rows),
        _ => tile::<6>(w, x, cin, npix, p0, dst, rows),
    }
}

/// `P` pixels from `p0` of NC output channels: `acc[p][j] += w[ci][16j..] * x[ci][p0 + p]`,
/// then written transposed into the output rows (bias and activation come after).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn tile<const P: usize>(
    w: &[f32],
    x: &[f32],
    cin: usize,
    npix: usize,
    p0: usize,
    dst: SyncPtr,
    rows: usize,
) {
    use std::arch::x86_64::*;
    let mut acc = [[_mm512_setzero_ps(); 3]; P];
    let (wp, xp) = (w.as_ptr(), x.as_ptr().add(p0));
    for ci in 0..cin {
        let wk = wp.add(ci * NC);
        let v = [
            _mm512_loadu_ps(wk),
            _mm512_loadu_ps(wk.add(16)),
            _mm512_loadu_ps(wk.add(32)),
        ];
        let xk = xp.add(ci * npix);
        for (p, a) in acc.iter_mut().enumerate() {
            let b = _mm512_set1_ps(*xk.add(p));
            for (aj, vj) in a.iter_mut().zip(&v) {
                *aj = _mm512_fmadd_ps(*vj, b, *aj);
            }
        }
    }
    let mut t = [[0f32; NC]; P];
    for (row, a) in t.iter_mut().zip(&acc) {
        for (j, v) in a.iter().enumerate() {
            _mm512_storeu_ps(row.as_mut_ptr().add(16 * j), *v);
        }
    }
    for c in 0..rows {
        let o = dst.at(c * npix + p0);
        for (p, row) in t.iter().enumerate() {
            *o.add(p) = row[c];
        }
    }
}
