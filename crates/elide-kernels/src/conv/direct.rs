//! Convolutions with a tiny reduction (`cin * kh * kw <= 32`: a network's first conv on an
//! RGB image), computed directly with 8 output channels per AVX2 vector.
//!
//! im2col + GEMM suits these badly: a strided im2col copies 27 values per output pixel and a
//! GEMM with K = 27 spends most of its time packing (YOLOv8n's and PP-OCRv4's 3x3 stride-2
//! stems ran at ~5 GMAC/s). Here each output pixel block accumulates in registers: per tap,
//! one weight vector per 8 output channels and one broadcast input value per pixel. Bands of
//! output rows copy their input rows zero-padded (so no bounds checks) and write
//! `[pixel][8 channels]` blocks that are transposed into the output planes.
use super::interleave::{deinterleave, L};
use super::Conv2d;
use crate::copy::all_finite;
use crate::par::{all, band_rows, SyncPtr};
use crate::Tensor;
use std::cell::RefCell;

/// Largest `cin * kh * kw` this kernel takes.
pub(super) const MAX_K: usize = 32;
/// Floats of padded input plus output per band: well inside L2.
const BAND_FLOATS: usize = 1 << 16;
/// Output pixels per register block.
const PX: usize = 6;

thread_local! {
    static BUF: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Whether this kernel runs the layer here: one group, a reduction of at most [`MAX_K`], and
/// AVX2 + FMA.
pub(super) fn applies(conv: &Conv2d) -> bool {
    let [kh, kw] = conv.params.kernel;
    let small = conv.params.groups == 1 && conv.in_channels * kh * kw <= MAX_K;
    #[cfg(target_arch = "x86_64")]
    {
        small
            && std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = small;
        false
    }
}

/// Runs the layer (callers check [`applies`] first); with `check`, returns false when an
/// input row it read holds NaN/inf. `parallel`: row bands spread over the rayon pool.
pub(super) fn run(
    conv: &Conv2d,
    x: &Tensor,
    out: &mut Tensor,
    parallel: bool,
    check: bool,
) -> bool {
    let [nb, cin, _, w] = x.shape();
    let [_, cout, ho, wo] = out.shape();
    if ho * wo == 0 {
        return true;
    }
    let p = &conv.params;
    let wp = w + p.pad.left + p.pad.right;
    let per_row = cin * wp * p.stride[0] + wo * cout.next_multiple_of(L);
    let rows = band_rows(BAND_FLOATS, per_row, ho, nb, parallel, 2);
    let units: Vec<(usize, usize)> = (0..nb)
        .flat_map(|n| (0..ho).step_by(rows).map(move |y| (n, y)))
        .collect();
    let ptr = SyncPtr::new(out.data_mut());
    all(&units, parallel, |&(n, oy0)| {
        let dst = ptr.offset(n * cout * ho * wo);
        band(conv, x, n, [oy0, (oy0 + rows).min(ho)], dst, check)
    })
}

/// Output rows `oy0..oy1` of image `n`, all channels, written through `dst`.
fn band(
    conv: &Conv2d,
    x: &Tensor,
    n: usize,
    [oy0, oy1]: [usize; 2],
    dst: SyncPtr,
    check: bool,
) -> bool {
    let [_, cin, h, w] = x.shape();
    let p = &conv.params;
    let [kh, kw] = p.kernel;
    let cout = conv.out_channels;
    let cpad = cout.next_multiple_of(L);
    let wp = w + p.pad.left + p.pad.right;
    let (ho, wo) = p.out_size(h, w).expect("validated by the caller");
    // Padded rows this band reads, and the image rows among them.
    let py0 = oy0 * p.stride[0];
    let py1 = (oy1 - 1) * p.stride[0] + (kh - 1) * p.dilation[0] + 1;
    let y0 = py0.saturating_sub(p.pad.top).min(h);
    let y1 = py1.saturating_sub(p.pad.top).min(h);
    let top = y0 + p.pad.top - py0;
    let rows_in = py1 - py0;
    let rows = super::rows_to_check([oy0, oy1], ho, [y0, y1], h);
    let finite =
        !check || (0..cin).all(|c| all_finite(&x.plane(n, c)[rows.start * w..rows.end * w]));
    let npx = (oy1 - oy0) * wo;
    BUF.with(|b| {
        let mut b = b.borrow_mut();
        let taps = cin * kh * kw;
        let (in_len, out_len, w_len) = (cin * rows_in * wp, npx * cpad, (taps + 1) * cpad);
        b.resize(in_len + out_len + w_len, 0.0);
        let (inp, rest) = b.split_at_mut(in_len);
        let (outb, wts) = rest.split_at_mut(out_len);
        // Weights as [tap][output channel], then the bias; padding channels zero.
        wts.fill(0.0);
        for oc in 0..cout {
            for t in 0..taps {
                wts[t * cpad + oc] = conv.weight[oc * taps + t];
            }
            wts[taps * cpad + oc] = conv.bias[oc];
        }
        // Zero-padded input rows, per channel.
        inp.fill(0.0);
        for c in 0..cin {
            let src = x.plane(n, c);
            for y in y0..y1 {
                let at = (c * rows_in + top + y - y0) * wp + p.pad.left;
                inp[at..at + w].copy_from_slice(&src[y * w..(y + 1) * w]);
            }
        }
        // SAFETY: AVX2 and FMA were checked by `applies`; `compute` asserts its reads and
        // writes stay inside the buffers; `dst` addresses rows oy0..oy1 of every plane of
        // image n, which no other band writes.
        unsafe {
            compute(conv, inp, [rows_in, wp], [oy1 - oy0, wo], wts, outb);
            for g in 0..cpad / L {
                let lanes = L.min(cout - g * L);
                let mut outs: [&mut [f32]; L] = Default::default();
                for (l, o) in outs.iter_mut().enumerate().take(lanes) {
                    *o = std::slice::from_raw_parts_mut(
                        dst.at((g * L + l) * ho * wo + oy0 * wo),
                        npx,
                    );
                }
                let outs = &mut outs[..lanes];
                deinterleave(&outb[g * npx * L..(g + 1) * npx * L], outs);
                if conv.act != super::Activation::None {
                    outs.iter_mut().for_each(|o| conv.act.bias_apply(o, 0.0));
                }
            }
        }
    });
    finite
}

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// The band's outputs as `[channel group][pixel][8]`, bias added.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn compute(
    conv: &Conv2d,
    inp: &[f32],
    [rows_in, wp]: [usize; 2],
    [rows, wo]: [usize; 2],
    wts: &[f32],
    outb: &mut [f32],
) {
    let p = &conv.params;
    let cin = conv.in_channels;
    let cpad = conv.out_channels.next_multiple_of(L);
    let [kh, kw] = p.kernel;
    let [sy, sx] = p.stride;
    let [dy, dx] = p.dilation;
    let npx = rows * wo;
    // Largest read: channel cin-1, row (rows-1)*sy + (kh-1)*dy, column (wo-1)*sx + (kw-1)*dx.
    let last = ((cin - 1) * rows_in + (rows - 1) * sy + (kh - 1) * dy) * wp
        + (wo - 1) * sx
        + (kw - 1) * dx;
    assert!(
        last < inp.len() && outb.len() >= npx * cpad && wts.len() >= (cin * kh * kw + 1) * cpad
    );
    let geo = Geo {
        inp: inp.as_ptr(),
        wts: wts.as_ptr(),
        out: outb.as_mut_ptr(),
        cin,
        rows_in,
        wp,
        k: [kh, kw],
        s: [sy, sx],
        d: [dy, dx],
        cpad,
        npx,
        wo,
    };
    let mut g = 0;
    while g + 2 <= cpad / L {
        geo.groups::<2>(g, rows);
        g += 2;
    }
    if g < cpad / L {
        geo.groups::<1>(g, rows);
    }
}

/// Pointers and geometry of one band, for the register-blocked loops.
#[cfg(target_arch = "x86_64")]
struct Geo {
    inp: *const f32,
    wts: *const f32,
    out: *mut f32,
    cin: usize,
    rows_in: usize,
    wp: usize,
    k: [usize; 2],
    s: [usize; 2],
    d: [usize; 2],
    cpad: usize,
    npx: usize,
    wo: usize,
}

#[cfg(target_arch = "x86_64")]
impl Geo {
    /// Output channel groups `g0..g0 + G` for every pixel of the band.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn groups<const G: usize>(&self, g0: usize, rows: usize) {
        for oy in 0..rows {
            if self.wo >= PX {
                // The tail block overlaps the previous one (it rewrites equal values).
                let mut ox = 0;
                while ox < self.wo {
                    self.block::<G, PX>(g0, oy, ox.min(self.wo - PX));
                    ox += PX;
                }
            } else {
                for ox in 0..self.wo {
                    self.block::<G, 1>(g0, oy, ox);
                }
            }
        }
    }

    /// `P` pixels from `(oy, ox)` times `G` groups of 8 output channels, in registers.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn block<const G: usize, const P: usize>(&self, g0: usize, oy: usize, ox: usize) {
        let [kh, kw] = self.k;
        let [sy, sx] = self.s;
        let [dy, dx] = self.d;
        let taps = self.cin * kh * kw;
        let mut acc = [[_mm256_setzero_ps(); P]; G];
        for (g, a) in acc.iter_mut().enumerate() {
            let b = _mm256_loadu_ps(self.wts.add(taps * self.cpad + (g0 + g) * L));
            *a = [b; P];
        }
        for ci in 0..self.cin {
            for ky in 0..kh {
                let row = self
                    .inp
                    .add((ci * self.rows_in + oy * sy + ky * dy) * self.wp + ox * sx);
                for kx in 0..kw {
                    let t = (ci * kh + ky) * kw + kx;
                    let mut wv = [_mm256_setzero_ps(); G];
                    for (g, v) in wv.iter_mut().enumerate() {
                        *v = _mm256_loadu_ps(self.wts.add(t * self.cpad + (g0 + g) * L));
                    }
                    let s = row.add(kx * dx);
                    for j in 0..P {
                        let xb = _mm256_broadcast_ss(&*s.add(j * sx));
                        for (a, w) in acc.iter_mut().zip(&wv) {
                            a[j] = _mm256_fmadd_ps(*w, xb, a[j]);
                        }
                    }
                }
            }
        }
        let px = oy * self.wo + ox;
        for (g, a) in acc.iter().enumerate() {
            for (j, v) in a.iter().enumerate() {
                _mm256_storeu_ps(self.out.add(((g0 + g) * self.npx + px + j) * L), *v);
            }
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn compute(_: &Conv2d, _: &[f32], _: [usize; 2], _: [usize; 2], _: &[f32], _: &mut [f32]) {
    unreachable!("applies() is false off x86_64")
}
