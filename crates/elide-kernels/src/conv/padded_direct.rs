//! Direct convolution on the input's zero-padded phase planes ([`super::planes`]), with
//! AVX-512: an accumulation over `k = (ci, ky, kx)` of `w[co][k] * plane_k[p + off_k]` for
//! runs of consecutive flat pixels `p`. No im2col; any stride, dilation and padding. The
//! input is copied into its planes once per image (band by band for large images).
//!
//! The register block is 8 output channels x 48 flat pixels (24 accumulators): per `k`, three
//! vector loads of the input and eight broadcast weights feed 24 FMAs. Weights are packed once
//! per layer as `[block][k][8]`. On YOLOv8n's 3x3 layers, one core here: ~96-105 GFLOP/s,
//! where im2col + `gemm` ran at 75-85 and ONNX Runtime's NCHWc kernels at ~112-116
//! (`cargo run --release -p elide-kernels --example conv_layer`, ORT's profiler).
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
/// Target floats of one band's input planes (half of a core's 1 MiB L2).
const BAND_FLOATS: usize = 1 << 17;
/// Target floats of one reduction step's input under one chunk (16 KiB of a 32 KiB L1).
const L1_FLOATS: usize = 1 << 12;
/// Largest planes of one image copied once and shared by all tasks (half of a core's L2).
const WHOLE_FLOATS: usize = 1 << 17;

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
    super::pack_channel_blocks(weight, cout, NC)
}

/// Runs the layer on every image; with `check`, returns false when an input value is NaN/inf.
///
/// An image whose planes fit in half the L2 is copied into them once and shared by all tasks.
/// A larger one (a 16-channel 160x160 map at stride 2 is 1.6 MB of planes; PP-OCRv4's first
/// layers tens of MB) is copied band by band inside each task, so a band's planes are still
/// in cache when its blocks read them.
pub(super) fn run(
    conv: &Conv2d,
    x: &Tensor,
    out: &mut Tensor,
    parallel: bool,
    check: bool,
) -> bool {
    let [nb, cin, h, w] = x.shape();
    let [_, cout, ho, wo] = out.shape();
    let planes = Planes::new(conv, h, w, wo);
    let phases = planes.s[0] * planes.s[1];
    let total = phases * cin * planes.plane();
    // Cache-sized bands of output rows; with threads, the channel blocks are split into
    // groups (and the bands halved) until every thread has about four tasks.
    let per_row = phases * cin * planes.wq;
    let blocks = cout.div_ceil(NC);
    let mut rows = band_rows(BAND_FLOATS, per_row, ho, 1, false, 1);
    let mut groups = 1;
    if total > WHOLE_FLOATS {
        // Band mode splits rows only (each task copies its own planes).
        rows = band_rows(BAND_FLOATS, per_row, ho, nb, parallel, 1);
    } else if parallel {
        let want = 4 * rayon::current_num_threads();
        groups = want.div_ceil(ho.div_ceil(rows)).min(blocks);
        rows = band_rows(BAND_FLOATS, per_row, ho, groups, true, 1);
    }
    let img = |n: usize| &x.data()[n * cin * h * w..(n + 1) * cin * h * w];
    let optr = SyncPtr::new(out.data_mut());
    let ctx = Ctx {
        conv,
        packed: conv.packed(),
        phases,
        wq: planes.wq,
        ho,
        wo,
    };
    if total <= WHOLE_FLOATS {
        let offs = planes.offsets(conv, cin);
        let mut finite = true;
        with_scratch(
            [1, 1, 1, total.max(reads_end(&offs, ho * planes.wq))],
            |buf| {
                let buf = buf.data_mut();
                let per_group = blocks.div_ceil(groups);
                let tasks: Vec<(usize, usize)> = (0..ho)
                    .step_by(rows)
                    .flat_map(|y| (0..blocks).step_by(per_group).map(move |b| (y, b)))
                    .collect();
                for n in 0..nb {
                    finite &= fill_planes(conv, img(n), [h, w], &planes, buf, parallel, check);
                    let src = buf.as_ptr() as usize;
                    let on = optr.offset(n * cout * ho * wo);
                    all(&tasks, parallel, |&(y0, b0)| {
                        let band = Band {
                            x: (src as *const f32).wrapping_add(y0 * planes.wq),
                            plane: planes.plane(),
                            rows: y0..(y0 + rows).min(ho),
                            blocks: b0..(b0 + per_group).min(blocks),
                        };
                        // SAFETY: `buf` holds the planes and slack for every band's reads; the
                        // band's rows of its blocks' channels are this task's alone.
                        unsafe { ctx.band(&offs, band, on) };
                        true
                    });
                }
            },
        );
        return finite;
    }
    // Per band: plane rows y0.. up to the last tap row of the band's last output row.
    let p = &conv.params;
    let reach = (p.kernel[0] - 1) * p.dilation[0] / p.stride[0];
    let tasks: Vec<(usize, usize)> = (0..nb)
        .flat_map(|n| (0..ho).step_by(rows).map(move |y| (n, y)))
        .collect();
    all(&tasks, parallel, |&(n, y0)| {
        let y1 = (y0 + rows).min(ho);
        let win = planes.window((y1 - y0 + reach).min(planes.hq - y0));
        let offs = win.offsets(conv, cin);
        let plane = win.plane();
        let xn = img(n);
        let mut finite = true;
        let len = (phases * cin * plane).max(reads_end(&offs, (y1 - y0) * win.wq));
        with_scratch([1, 1, 1, len], |buf| {
            let buf = buf.data_mut();
            for c in 0..cin {
                let src = &xn[c * h * w..(c + 1) * h * w];
                for ph in 0..phases {
                    let dst = &mut buf[(ph * cin + c) * plane..][..plane];
                    planes.fill(conv, src, [h, w], ph, y0, dst);
                }
                if check {
                    // The input rows this band's planes hold.
                    let y = |r: usize| (r * p.stride[0]).saturating_sub(p.pad.top).min(h);
                    finite &= all_finite(&src[y(y0) * w..y(y0 + win.hq + 1) * w]);
                }
            }
            buf[phases * cin * plane..].fill(0.0);
            let band = Band {
                x: buf.as_ptr(),
                plane,
                rows: y0..y1,
                blocks: 0..blocks,
            };
            // SAFETY: `buf` holds the band's planes and slack for its reads; the band's rows
            // of every channel are this task's alone.
            unsafe { ctx.band(&offs, band, optr.offset(n * cout * ho * wo)) };
        });
        finite
    })
}

/// A stride-1, one-group conv of a small tile in the wide layout ([`super::shifted`]) on the
/// calling thread: `x` holds `cin` planes of `in_plane` floats, `width` wide, and `dst` gets
/// `cout` planes of `out_plane` floats whose first `out_rows` rows are the wide output, with
/// bias and activation (the rest untouched). Returns false (doing nothing) without AVX-512.
pub(super) fn wide_tile(
    conv: &Conv2d,
    x: &[f32],
    [in_plane, width]: [usize; 2],
    out_rows: usize,
    dst: &mut [f32],
    out_plane: usize,
) -> bool {
    let p = &conv.params;
    if !applies(conv) || p.stride != [1, 1] {
        return false;
    }
    // The tile is its own stride-1 plane layout, unpadded.
    let tile = Planes {
        s: [1, 1],
        hq: in_plane / width,
        wq: width,
        left: 0,
        lead: 0,
    };
    let offs = tile.offsets(conv, conv.in_channels);
    // Reads stop at the last output pixel (the register blocks' last vectors are masked), so
    // the tile's slack row covers them.
    let last = offs.last().copied().unwrap_or(0) + out_rows * width;
    assert!(last <= x.len() && dst.len() >= conv.out_channels * out_plane);
    let ctx = Ctx {
        conv,
        packed: conv.packed(),
        phases: 1,
        wq: width,
        ho: out_plane / width,
        wo: width,
    };
    let band = Band {
        x: x.as_ptr(),
        plane: in_plane,
        rows: 0..out_rows,
        blocks: 0..conv.out_channels.div_ceil(NC),
    };
    // SAFETY: AVX-512F (`applies`); reads end inside `x` (asserted); `dst` is ours.
    unsafe { ctx.band(&offs, band, SyncPtr::new(dst)) };
    true
}

/// One past the last float the register blocks read for outputs below flat index `end` (the
/// last vector of each block is masked there): the junk columns of the last rows read past
/// the planes, into zeroed slack.
fn reads_end(offs: &[usize], end: usize) -> usize {
    offs.iter().max().copied().unwrap_or(0) + end
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
        pl.fill(conv, src, [h, w], ph, 0, dst);
        finite
    })
}

/// What every band of one call shares.
struct Ctx<'a> {
    conv: &'a Conv2d,
    packed: &'a [f32],
    phases: usize,
    wq: usize,
    ho: usize,
    wo: usize,
}

/// One task's work: output rows `rows` of the channel blocks `blocks`, reading planes whose
/// flat index 0 (output row `rows.start`, column 0) is at `x`.
struct Band {
    x: *const f32,
    /// Floats per plane (the offsets' channel stride).
    plane: usize,
    rows: std::ops::Range<usize>,
    blocks: std::ops::Range<usize>,
}

impl Ctx<'_> {
    /// Computes a band into the image's output `out` (`[cout][ho][wo]`).
    ///
    /// GEMM-style blocking: the band's sums live in a wide scratch buffer, and the reduction
    /// runs a few input channels at a time, so one chunk's input rows of those channels stay
    /// in L1 while every channel block of the band reads them.
    ///
    /// # Safety
    /// AVX-512F; every read `x + off_k + p`, `p < rows.len() * wq`, is inside the planes or
    /// their zeroed slack (the blocks' last vectors are masked to the band's pixels); no one
    /// else touches the band's output rows of its blocks' channels.
    unsafe fn band(&self, offs: &[usize], band: Band, out: SyncPtr) {
        let conv = self.conv;
        let (cout, cin, wq) = (conv.out_channels, conv.in_channels, self.wq);
        let k = offs.len();
        let taps = k / cin;
        // Input channels per reduction step: their rows under one chunk fill about 16 KiB.
        let Band {
            x,
            plane,
            rows,
            blocks,
        } = band;
        let span = offs[..taps].iter().max().copied().unwrap_or(0) % plane + NP;
        let cg = (L1_FLOATS / (self.phases * span)).clamp(1, cin);
        let flat = rows.len() * wq;
        let chunks = flat.div_ceil(NP);
        // Row `c` of block `b` at `((b - b0) * NC + c) * stride`.
        let stride = chunks * NP;
        let b0 = blocks.start;
        with_scratch([1, 1, blocks.len() * NC, stride], |wide| {
            let wide = wide.data_mut();
            for c0 in (0..cin).step_by(cg) {
                let ks = c0 * taps..(c0 + cg).min(cin) * taps;
                let o = &offs[ks.clone()];
                for ch in 0..chunks {
                    let xc = x.wrapping_add(ch * NP);
                    // Vectors in this chunk, the last one masked to the band's pixels.
                    let left = flat - ch * NP;
                    let nv = left.div_ceil(16).min(NP / 16);
                    let tail = match left - 16 * (nv - 1) {
                        l if l >= 16 => u16::MAX,
                        l => (1u16 << l) - 1,
                    };
                    for b in blocks.clone() {
                        let w = &self.packed[(b * k + ks.start) * NC..(b * k + ks.end) * NC];
                        let dst = wide
                            .as_mut_ptr()
                            .wrapping_add((b - b0) * NC * stride + ch * NP);
                        let first = c0 == 0;
                        // SAFETY: the caller's contract covers the reads; `wide` holds NC
                        // rows of `stride` per block.
                        unsafe {
                            match nv {
                                1 => block_avx512::<1>(xc, o, w, dst, stride, first, tail),
                                2 => block_avx512::<2>(xc, o, w, dst, stride, first, tail),
                                _ => block_avx512::<3>(xc, o, w, dst, stride, first, tail),
                            }
                        };
                    }
                }
            }
            // Bias and activation on whole wide rows (vectorised; junk columns included),
            // then the valid columns out.
            let (ho, wo) = (self.ho, self.wo);
            for oc in b0 * NC..(blocks.end * NC).min(cout) {
                let base = (oc - b0 * NC) * stride;
                let row = &mut wide[base..][..flat.next_multiple_of(16)];
                conv.act.bias_apply(row, conv.bias[oc]);
                for y in rows.clone() {
                    let srow = &wide[base + (y - rows.start) * wq..][..wo];
                    // SAFETY: channel `oc`, row `y` is this band's alone (caller).
                    let drow =
                        unsafe { std::slice::from_raw_parts_mut(out.at((oc * ho + y) * wo), wo) };
                    drow.copy_from_slice(srow);
                }
            }
        });
    }
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
