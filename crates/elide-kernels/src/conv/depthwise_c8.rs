//! Depthwise convolution on channel-interleaved planes: 8 channels side by side, one AVX2
//! vector per pixel, so every tap is one fused multiply-add per output pixel whatever the
//! plane width, stride or dilation (ONNX Runtime's NCHWc layout, applied per call).
//!
//! Per (image, group of 8 channels): the 8 input planes are transposed into a zero-padded
//! `[hp][wp][8]` buffer, the output is computed 4 pixels at a time in registers, and
//! transposed back into the 8 output planes, where the activation runs. The transposes are
//! 8x8 register shuffles. On the small planes of classifiers (14x14, 7x7) the row-wise
//! kernel spent most of its time on per-row setup; this one has none.
#[cfg(target_arch = "x86_64")]
use super::interleave::transpose8;
use super::interleave::{deinterleave, L};
use super::Conv2d;
use crate::copy::all_finite;
use crate::par::{all, band_rows, SyncPtr};
use crate::Tensor;
use std::cell::RefCell;

thread_local! {
    static BUF: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Whether this kernel can run the layer here: channel multiplier 1 and AVX2 + FMA.
pub(super) fn applies(conv: &Conv2d) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        conv.out_channels == conv.in_channels
            && std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = conv;
        false
    }
}

/// Floats of interleaved input per band: about a quarter of this machine's L2.
const BAND_FLOATS: usize = 1 << 16;

/// Runs the layer (callers check [`applies`] first); with `check`, returns false when an
/// input plane holds NaN/inf. `parallel`: (image, channel group, row band) units spread over
/// the rayon pool.
pub(super) fn run(
    conv: &Conv2d,
    x: &Tensor,
    out: &mut Tensor,
    parallel: bool,
    check: bool,
) -> bool {
    let [nb, c, _, w] = x.shape();
    let [_, _, ho, wo] = out.shape();
    let p = &conv.params;
    if ho * wo == 0 {
        return true;
    }
    let wp = w + p.pad.left + p.pad.right;
    let groups = c.div_ceil(L);
    let rows = band_rows(
        BAND_FLOATS,
        wp * L * p.stride[0],
        ho,
        nb * groups,
        parallel,
        4,
    );
    let units: Vec<(usize, usize, usize)> = (0..nb)
        .flat_map(|n| (0..groups).flat_map(move |g| (0..ho).step_by(rows).map(move |y| (n, g, y))))
        .collect();
    let ptr = SyncPtr::new(out.data_mut());
    all(&units, parallel, |&(n, g, oy0)| {
        let c0 = g * L;
        let lanes = L.min(c - c0);
        let dst = ptr.offset((n * c + c0) * ho * wo);
        band(
            conv,
            x,
            n,
            c0,
            lanes,
            [oy0, (oy0 + rows).min(ho)],
            dst,
            check,
        )
    })
}

/// Output rows `oy0..oy1` of channels `c0..c0 + lanes` of image `n`, written through `dst`
/// (plane `l` at `dst + l * ho * wo`).
#[allow(clippy::too_many_arguments)]
fn band(
    conv: &Conv2d,
    x: &Tensor,
    n: usize,
    c0: usize,
    lanes: usize,
    [oy0, oy1]: [usize; 2],
    dst: SyncPtr,
    check: bool,
) -> bool {
    let [_, _, h, w] = x.shape();
    let p = &conv.params;
    let [kh, kw] = p.kernel;
    let wp = w + p.pad.left + p.pad.right;
    let (ho, wo) = p.out_size(h, w).expect("validated by the caller");
    let plane = ho * wo;
    // Padded input rows this band reads, and the image rows among them.
    let py0 = oy0 * p.stride[0];
    let py1 = (oy1 - 1) * p.stride[0] + (kh - 1) * p.dilation[0] + 1;
    let y0 = py0.saturating_sub(p.pad.top).min(h);
    let y1 = py1.saturating_sub(p.pad.top).min(h);
    let rows = super::rows_to_check([oy0, oy1], ho, [y0, y1], h);
    let finite =
        !check || (0..lanes).all(|l| all_finite(&x.plane(n, c0 + l)[rows.start * w..rows.end * w]));
    let out_px = (oy1 - oy0) * wo;
    BUF.with(|b| {
        let mut b = b.borrow_mut();
        let (in_len, out_len, w_len) = ((py1 - py0) * wp * L, out_px * L, kh * kw * L + L);
        b.resize(in_len + out_len + w_len, 0.0);
        let (inp, rest) = b.split_at_mut(in_len);
        let (outb, wts) = rest.split_at_mut(out_len);
        // Weights as [tap][lane], then the bias; unused lanes zero.
        wts.fill(0.0);
        for l in 0..lanes {
            let src = &conv.weight[(c0 + l) * kh * kw..(c0 + l + 1) * kh * kw];
            for (t, &v) in src.iter().enumerate() {
                wts[t * L + l] = v;
            }
            wts[kh * kw * L + l] = conv.bias[c0 + l];
        }
        let mut planes: [&[f32]; L] = [&[]; L];
        for (l, p) in planes.iter_mut().enumerate().take(lanes) {
            *p = &x.plane(n, c0 + l)[y0 * w..y1 * w];
        }
        // Buffer row of image row y0: its padded row minus the band's first.
        let top = y0 + p.pad.top - py0;
        zero_border(inp, [y1 - y0, w], [py1 - py0, wp], top, p.pad.left);
        // SAFETY: AVX2 and FMA were checked by `applies`; every index stays inside the
        // buffers sized above (asserted in `compute`, sliced elsewhere), and `dst` addresses
        // rows oy0..oy1 of this group's planes, which no other band writes.
        unsafe {
            interleave(&planes[..lanes], [y1 - y0, w], wp, top, p.pad.left, inp);
            compute(conv, inp, wp, [oy1 - oy0, wo], wts, outb);
            let mut outs: [&mut [f32]; L] = Default::default();
            for (l, o) in outs.iter_mut().enumerate().take(lanes) {
                *o = std::slice::from_raw_parts_mut(dst.at(l * plane + oy0 * wo), out_px);
            }
            let outs = &mut outs[..lanes];
            deinterleave(outb, outs);
            if conv.act != super::Activation::None {
                outs.iter_mut().for_each(|o| conv.act.bias_apply(o, 0.0));
            }
        }
    });
    finite
}

/// Zeros the padding around the `h x w` interior of the `[hp][wp][8]` buffer.
fn zero_border(inp: &mut [f32], [h, w]: [usize; 2], [hp, wp]: [usize; 2], top: usize, left: usize) {
    let row = wp * L;
    inp[..top * row].fill(0.0);
    inp[(top + h) * row..hp * row].fill(0.0);
    for y in top..top + h {
        let r = &mut inp[y * row..(y + 1) * row];
        r[..left * L].fill(0.0);
        r[(left + w) * L..].fill(0.0);
    }
}

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// Input planes (up to 8, each `h x w`) into the interior of the `[hp][wp][8]` buffer;
/// missing lanes are zero.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn interleave(
    planes: &[&[f32]],
    [h, w]: [usize; 2],
    wp: usize,
    top: usize,
    left: usize,
    inp: &mut [f32],
) {
    for y in 0..h {
        let dst = &mut inp[((top + y) * wp + left) * L..((top + y) * wp + left + w) * L];
        let mut x = 0;
        while x + L <= w {
            let mut r = [_mm256_setzero_ps(); 8];
            for (l, pl) in planes.iter().enumerate() {
                r[l] = _mm256_loadu_ps(pl[y * w + x..y * w + x + L].as_ptr());
            }
            let t = transpose8(r);
            for (j, v) in t.iter().enumerate() {
                _mm256_storeu_ps(dst[(x + j) * L..(x + j + 1) * L].as_mut_ptr(), *v);
            }
            x += L;
        }
        // The last partial block: masked loads, and only its pixels stored (a scalar loop
        // here was most of this function on 14- and 7-wide maps).
        let rem = w - x;
        if rem > 0 {
            let idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
            let mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(rem as i32), idx);
            let mut r = [_mm256_setzero_ps(); 8];
            for (l, pl) in planes.iter().enumerate() {
                r[l] = _mm256_maskload_ps(pl[y * w + x..].as_ptr(), mask);
            }
            let t = transpose8(r);
            for (j, v) in t.iter().enumerate().take(rem) {
                _mm256_storeu_ps(dst[(x + j) * L..(x + j + 1) * L].as_mut_ptr(), *v);
            }
        }
    }
}

/// The convolution on the interleaved buffer: `outb[(oy*wo + ox)*8 + lane]`, bias added.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn compute(
    conv: &Conv2d,
    inp: &[f32],
    wp: usize,
    [ho, wo]: [usize; 2],
    wts: &[f32],
    outb: &mut [f32],
) {
    let p = &conv.params;
    let [kh, kw] = p.kernel;
    let [sy, sx] = p.stride;
    let [dy, dx] = p.dilation;
    let taps = kh * kw;
    // Largest input index read: ((ho-1)*sy + (kh-1)*dy) * wp + (wo-1)*sx + (kw-1)*dx < hp*wp,
    // by the output-size formula; asserted once so the loop can use unchecked pointers.
    let last = (((ho - 1) * sy + (kh - 1) * dy) * wp + (wo - 1) * sx + (kw - 1) * dx + 1) * L;
    assert!(last <= inp.len() && outb.len() >= ho * wo * L && wts.len() > taps * L);
    let g = Geo {
        ip: inp.as_ptr(),
        wptr: wts.as_ptr(),
        op: outb.as_mut_ptr(),
        k: [kh, kw],
        s: [sy, sx],
        d: [dy, dx],
        wp,
        wo,
    };
    let bias = _mm256_loadu_ps(g.wptr.add(taps * L));
    // Stride 1 or 2, no column dilation, 3 or 5 taps wide: each row of taps loads its
    // 7 * stride + kw input vectors once and reuses them across the taps (one load per FMA
    // was the limit); the extra vector registers of AVX-512VL hold them.
    let reuse = (sx == 1 || sx == 2)
        && dx == 1
        && (kw == 3 || kw == 5)
        && std::arch::is_x86_feature_detected!("avx512vl");
    for oy in 0..ho {
        // Blocks of 8 pixels (8 independent FMA chains: enough to hide the FMA latency); a
        // short row's tail block overlaps the previous one (it rewrites equal values).
        let mut ox = 0;
        if wo >= 8 && reuse {
            while ox < wo {
                let at = ox.min(wo - 8);
                match (sx, kw) {
                    (1, 3) => g.block_reuse::<1, 3>(oy, at, bias),
                    (1, _) => g.block_reuse::<1, 5>(oy, at, bias),
                    (_, 3) => g.block_reuse::<2, 3>(oy, at, bias),
                    _ => g.block_reuse::<2, 5>(oy, at, bias),
                }
                ox += 8;
            }
        } else if wo >= 8 {
            while ox < wo {
                g.block::<8>(oy, ox.min(wo - 8), bias);
                ox += 8;
            }
        } else if wo >= 4 {
            g.block::<4>(oy, 0, bias);
            g.block::<4>(oy, wo - 4, bias);
        } else {
            for ox in 0..wo {
                g.block::<1>(oy, ox, bias);
            }
        }
    }
}

/// Pointers and geometry of one band, for the register-blocked loop.
#[cfg(target_arch = "x86_64")]
struct Geo {
    ip: *const f32,
    wptr: *const f32,
    op: *mut f32,
    k: [usize; 2],
    s: [usize; 2],
    d: [usize; 2],
    wp: usize,
    wo: usize,
}

#[cfg(target_arch = "x86_64")]
impl Geo {
    /// 8 output pixels from `(oy, ox)` of a column-stride-`SX`, `KW`-wide kernel, inputs
    /// reused across the taps of a row (at most 7 * 2 + 5 = 19 of them).
    #[inline]
    #[target_feature(enable = "avx2,fma,avx512f,avx512vl")]
    unsafe fn block_reuse<const SX: usize, const KW: usize>(
        &self,
        oy: usize,
        ox: usize,
        bias: __m256,
    ) {
        let [kh, _] = self.k;
        let [sy, _] = self.s;
        let [dy, _] = self.d;
        let mut acc = [bias; 8];
        for ky in 0..kh {
            let row = self.ip.add(((oy * sy + ky * dy) * self.wp + ox * SX) * L);
            let mut v = [_mm256_setzero_ps(); 19];
            for (i, vi) in v.iter_mut().enumerate().take(7 * SX + KW) {
                *vi = _mm256_loadu_ps(row.add(i * L));
            }
            for kx in 0..KW {
                let wv = _mm256_loadu_ps(self.wptr.add((ky * KW + kx) * L));
                for (j, a) in acc.iter_mut().enumerate() {
                    *a = _mm256_fmadd_ps(wv, v[j * SX + kx], *a);
                }
            }
        }
        let o = self.op.add((oy * self.wo + ox) * L);
        for (j, a) in acc.iter().enumerate() {
            _mm256_storeu_ps(o.add(j * L), *a);
        }
    }

    /// `P` output pixels from `(oy, ox)`, 8 channels each, accumulated in registers.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn block<const P: usize>(&self, oy: usize, ox: usize, bias: __m256) {
        let [kh, kw] = self.k;
        let [sy, sx] = self.s;
        let [dy, dx] = self.d;
        let mut acc = [bias; P];
        for ky in 0..kh {
            let row = self.ip.add(((oy * sy + ky * dy) * self.wp + ox * sx) * L);
            for kx in 0..kw {
                let wv = _mm256_loadu_ps(self.wptr.add((ky * kw + kx) * L));
                let s = row.add(kx * dx * L);
                for (j, a) in acc.iter_mut().enumerate() {
                    *a = _mm256_fmadd_ps(wv, _mm256_loadu_ps(s.add(j * sx * L)), *a);
                }
            }
        }
        let o = self.op.add((oy * self.wo + ox) * L);
        for (j, a) in acc.iter().enumerate() {
            _mm256_storeu_ps(o.add(j * L), *a);
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn interleave(_: &[&[f32]], _: [usize; 2], _: usize, _: usize, _: usize, _: &mut [f32]) {
    unreachable!("applies() is false off x86_64")
}
#[cfg(not(target_arch = "x86_64"))]
unsafe fn compute(_: &Conv2d, _: &[f32], _: usize, _: [usize; 2], _: &[f32], _: &mut [f32]) {
    unreachable!("applies() is false off x86_64")
}
