//! Direct convolution on the input's zero-padded phase planes ([`super::planes`]), with
//! AVX-512: an accumulation over `k = (ci, ky, kx)` of `w[co][k] * plane_k[p + off_k]` for
//! runs of consecutive flat pixels `p`. No im2col; any stride, dilation and padding. The
//! input is copied into its planes once per image.
//!
//! The register block is 8 output channels x 48 flat pixels (24 accumulators): per `k`, three
//! vector loads of the input and eight broadcast weights feed 24 FMAs. Weights are packed once
//! per layer as `[block][k][8]`. ONNX Runtime's NCHWc kernels reach ~90% of the FMA peak on
//! YOLO's 3x3 convs here, where im2col + `gemm` reached 60-75%; this kernel reaches ~85%.
use super::planes::Planes;
use super::Conv2d;
use crate::copy::all_finite;
use crate::par::{all, band_rows, SyncPtr};
use crate::scratch::with_scratch;
use crate::Tensor;

/// Output channels per register block.
pub(super) const NC: usize = 8;
/// Flat pixels per register block (three 16-lane vectors); the last block of a band may use
/// one or two.
const NP: usize = 48;
/// Target floats of one band's input planes (about half the 2 MiB L2).
const BAND_FLOATS: usize = 1 << 17;
/// Target floats of one reduction step's input under one chunk (16 KiB of a 32 KiB L1).
const L1_FLOATS: usize = 1 << 12;

/// Whether this kernel runs `conv` on this CPU: one group, AVX-512F.
pub(super) fn applies(conv: &Conv2d) -> bool {
    conv.params.groups == 1 && avx512()
}

pub(super) fn avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The layer's weights as `[cout / NC blocks][cin * kh * kw][NC]`, the last block zero-padded.
pub(super) fn pack(weight: &[f32], cout: usize) -> Vec<f32> {
    let k = weight.len() / cout;
    let blocks = cout.div_ceil(NC);
    let mut packed = vec![0.0; blocks * k * NC];
    for oc in 0..cout {
        let (b, c) = (oc / NC, oc % NC);
        for (kk, &w) in weight[oc * k..(oc + 1) * k].iter().enumerate() {
            packed[(b * k + kk) * NC + c] = w;
        }
    }
    packed
}

/// Runs the layer on every image; with `check`, returns false when an input value is NaN/inf.
pub(super) fn run(
    conv: &Conv2d,
    x: &Tensor,
    out: &mut Tensor,
    parallel: bool,
    check: bool,
) -> bool {
    let [nb, cin, h, w] = x.shape();
    let [_, cout, ho, wo] = out.shape();
    let p = &conv.params;
    let s = p.stride;
    let planes = Planes::new(conv, h, w, wo);
    let offs = planes.offsets(conv, cin);
    let packed = conv.packed();
    let total = s[0] * s[1] * cin * planes.plane();
    // Cache-sized bands of output rows; with threads, the channel blocks are split into
    // groups (and the bands halved) until every thread has about four tasks.
    let per_row = s[0] * s[1] * cin * planes.wq;
    let blocks = cout.div_ceil(NC);
    let mut rows = band_rows(BAND_FLOATS, per_row, ho, 1, false, 1);
    let mut groups = 1;
    if parallel {
        let want = 4 * rayon::current_num_threads();
        groups = want.div_ceil(ho.div_ceil(rows)).min(blocks);
        rows = band_rows(BAND_FLOATS, per_row, ho, groups, true, 1);
    }
    let mut finite = true;
    // Junk pixels of the last register block read past the planes: zero slack covers them.
    let need = offs.iter().max().copied().unwrap_or(0) + ho * planes.wq + NP;
    with_scratch([1, 1, 1, total.max(need)], |buf| {
        let buf = buf.data_mut();
        for n in 0..nb {
            let xn = &x.data()[n * cin * h * w..(n + 1) * cin * h * w];
            finite &= fill_planes(conv, xn, [h, w], &planes, buf, parallel, check);
            let on = &mut out.data_mut()[n * cout * ho * wo..(n + 1) * cout * ho * wo];
            compute(
                conv,
                buf,
                &offs,
                packed,
                &planes,
                [ho, wo],
                [rows, groups],
                on,
                parallel,
            );
        }
    });
    finite
}

/// Copies one image into its zero-padded phase planes (and zeroes the slack after them); with
/// `check`, returns false when a value is NaN/inf (each channel checked while it is copied).
fn fill_planes(
    conv: &Conv2d,
    x: &[f32],
    [h, w]: [usize; 2],
    pl: &Planes,
    buf: &mut [f32],
    parallel: bool,
    check: bool,
) -> bool {
    let cin = conv.in_channels;
    let [sh, sw] = pl.s;
    let plane = pl.plane();
    let total = sh * sw * cin * plane;
    buf[total..].fill(0.0);
    let ptr = SyncPtr::new(buf);
    let tasks: Vec<(usize, usize)> = (0..sh * sw)
        .flat_map(|ph| (0..cin).map(move |c| (ph, c)))
        .collect();
    all(&tasks, parallel, |&(ph, c)| {
        let src = &x[c * h * w..(c + 1) * h * w];
        let finite = !check || ph > 0 || all_finite(src);
        // SAFETY: each (phase, channel) task writes its own plane.
        let dst = unsafe { std::slice::from_raw_parts_mut(ptr.at((ph * cin + c) * plane), plane) };
        pl.fill(conv, src, [h, w], ph, dst);
        finite
    })
}

/// All output channels of one image from its planes.
///
/// GEMM-style blocking: a task owns a band of output rows and a range of channel blocks, and
/// keeps their sums in a wide scratch buffer. The reduction runs a few input channels at a
/// time, so one 64-pixel chunk's input rows of those channels stay in L1 while every channel
/// block of the task reads them.
#[allow(clippy::too_many_arguments)]
fn compute(
    conv: &Conv2d,
    planes_buf: &[f32],
    offs: &[usize],
    packed: &[f32],
    pl: &Planes,
    [ho, wo]: [usize; 2],
    [rows, groups]: [usize; 2],
    out: &mut [f32],
    parallel: bool,
) {
    let cout = conv.out_channels;
    let cin = conv.in_channels;
    let k = offs.len();
    let taps = k / cin;
    let blocks = cout.div_ceil(NC);
    // Input channels per reduction step: their rows under one chunk fill about 16 KiB.
    let span = offs[..taps].iter().max().copied().unwrap_or(0) % pl.plane() + NP;
    let phases = pl.s[0] * pl.s[1];
    let cg = (L1_FLOATS / (phases * span)).clamp(1, cin);
    let per_group = blocks.div_ceil(groups);
    let tasks: Vec<(usize, usize)> = (0..ho)
        .step_by(rows)
        .flat_map(|y| (0..blocks).step_by(per_group).map(move |b| (y, b)))
        .collect();
    let optr = SyncPtr::new(out);
    let src = planes_buf.as_ptr() as usize;
    all(&tasks, parallel, |&(y0, b0)| {
        let y1 = (y0 + rows).min(ho);
        let bs = b0..(b0 + per_group).min(blocks);
        let flat = (y1 - y0) * pl.wq;
        let chunks = flat.div_ceil(NP);
        // Row `c` of block `b` at `((b - b0) * NC + c) * stride`.
        let stride = chunks * NP;
        with_scratch([1, 1, bs.len() * NC, stride], |wide| {
            let wide = wide.data_mut();
            for c0 in (0..cin).step_by(cg) {
                let ks = c0 * taps..(c0 + cg).min(cin) * taps;
                let o = &offs[ks.clone()];
                for ch in 0..chunks {
                    let x = (src as *const f32).wrapping_add(y0 * pl.wq + ch * NP);
                    // Vectors in this chunk, the last one masked to the band's pixels.
                    let left = flat - ch * NP;
                    let nv = left.div_ceil(16).min(NP / 16);
                    let tail = match left - 16 * (nv - 1) {
                        l if l >= 16 => u16::MAX,
                        l => (1u16 << l) - 1,
                    };
                    for b in bs.clone() {
                        let w = &packed[(b * k + ks.start) * NC..(b * k + ks.end) * NC];
                        let dst = wide
                            .as_mut_ptr()
                            .wrapping_add((b - b0) * NC * stride + ch * NP);
                        let first = c0 == 0;
                        // SAFETY: `run` sized the planes' slack for every chunk's reads;
                        // `wide` holds NC rows of `stride` per block.
                        unsafe {
                            match nv {
                                1 => block_avx512::<1>(x, o, w, dst, stride, first, tail),
                                2 => block_avx512::<2>(x, o, w, dst, stride, first, tail),
                                _ => block_avx512::<3>(x, o, w, dst, stride, first, tail),
                            }
                        };
                    }
                }
            }
            // Bias and activation on whole wide rows (vectorised; junk columns included),
            // then the valid columns out.
            for oc in bs.start * NC..(bs.end * NC).min(cout) {
                let base = (oc - b0 * NC) * stride;
                let row = &mut wide[base..][..flat.next_multiple_of(16)];
                conv.act.bias_apply(row, conv.bias[oc]);
                for y in y0..y1 {
                    let srow = &wide[base + (y - y0) * pl.wq..][..wo];
                    // SAFETY: channel `oc`, row `y` belongs to this task alone.
                    let drow =
                        unsafe { std::slice::from_raw_parts_mut(optr.at((oc * ho + y) * wo), wo) };
                    drow.copy_from_slice(srow);
                }
            }
        });
        true
    });
}

/// `wide[c][0..16 NV] (+)= sum_k w[k][c] * x[off_k + 0..16 NV]` for the block's eight
/// channels (`first`: overwrite instead of accumulate).
///
/// The last vector loads only the lanes in `tail`.
///
/// # Safety
/// AVX-512F; `x + off_k + 16 NV` in bounds for every k (the last vector: its `tail` lanes);
/// `wide` has 8 rows of `stride` floats.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn block_avx512<const NV: usize>(
    x: *const f32,
    offs: &[usize],
    w: &[f32],
    wide: *mut f32,
    stride: usize,
    first: bool,
    tail: u16,
) {
    use std::arch::x86_64::*;
    let mut acc = [[_mm512_setzero_ps(); NV]; NC];
    if !first {
        for (c, a) in acc.iter_mut().enumerate() {
            for (j, v) in a.iter_mut().enumerate() {
                *v = _mm512_loadu_ps(wide.add(c * stride + 16 * j));
            }
        }
    }
    for (kk, &off) in offs.iter().enumerate() {
        let xp = x.add(off);
        let mut v = [_mm512_setzero_ps(); NV];
        for (j, vj) in v.iter_mut().enumerate().take(NV - 1) {
            *vj = _mm512_loadu_ps(xp.add(16 * j));
        }
        v[NV - 1] = _mm512_maskz_loadu_ps(tail, xp.add(16 * (NV - 1)));
        let wk = w.as_ptr().add(kk * NC);
        for (c, a) in acc.iter_mut().enumerate() {
            let b = _mm512_set1_ps(*wk.add(c));
            for j in 0..NV {
                a[j] = _mm512_fmadd_ps(v[j], b, a[j]);
            }
        }
    }
    for (c, a) in acc.iter().enumerate() {
        for (j, v) in a.iter().enumerate() {
            _mm512_storeu_ps(wide.add(c * stride + 16 * j), *v);
        }
    }
}
