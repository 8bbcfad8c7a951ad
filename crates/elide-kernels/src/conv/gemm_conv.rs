//! Convolution as GEMM over spatial tiles.
//!
//! A tile is a rectangle of output pixels of one image. For whole-image calls it is a band of
//! whole output rows, so each output channel's part of the tile is one contiguous run of NCHW
//! memory and the GEMM writes the output in place. Tiles are sized so the im2col buffer stays
//! cache-resident (a whole-image im2col plus one big GEMM was measured ~3x slower here) and
//! run in parallel with rayon; each thread reuses its own buffer. 1x1 stride-1 convolutions
//! on whole bands skip im2col: the input planes are the right-hand side.
use super::im2col::{im2col_rect, Rect};
use super::{Conv2d, Schedule};
use crate::copy::all_finite;
use crate::matmul::{matmul, Strided};
use crate::par::{all, SyncPtr};
use crate::Tensor;
use std::cell::RefCell;

/// Target size of one tile's im2col buffer, in floats (about 1 MiB: half a 2 MiB L2 here).
const COL_FLOATS: usize = 1 << 18;
/// Smallest tile worth a GEMM call, in output pixels.
const MIN_TILE_PIXELS: usize = 256;
/// 1x1 layers whose input has at most this many floats (4 MB) run whole maps per GEMM.
const PW_WHOLE_FLOATS: usize = 1 << 20;
/// Outputs of one 1x1 GEMM call (256 KiB), whose bias and activation run right after it.
/// One call per band wrote all of it before the epilogue read it back: a 16 -> 32 layer at
/// 112x112, 800 KB per thread, came back from L3 (in the network, 2 threads: 0.21-0.24 ->
/// 0.18-0.22 ms with calls of 2,048 pixels).
const PW_CHUNK_FLOATS: usize = 1 << 16;

thread_local! {
    static COL: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Where a tile's GEMM writes: channel `oc` of the tile starts at `ptr + oc * channel_stride`
/// and its pixels are contiguous.
#[derive(Clone, Copy)]
struct Dst {
    ptr: SyncPtr,
    channel_stride: usize,
}

/// Runs the layer; with `check`, returns false when any input value it read was NaN/inf (each
/// tile's inputs are checked while they are in cache for its GEMM).
pub(super) fn run(
    conv: &Conv2d,
    x: &Tensor,
    out: &mut Tensor,
    schedule: Schedule,
    check: bool,
) -> bool {
    let [nb, cout, ho, wo] = out.shape();
    let k = conv.col_rows();
    let p = &conv.params;
    let pointwise = p.kernel == [1, 1] && p.stride == [1, 1] && p.pad == super::Padding::default();
    let threads = rayon::current_num_threads();
    let rows = match schedule {
        // A 1x1 layer's small map is one GEMM, its output channels split across threads
        // below: bands (which bound im2col buffers, and there are none here) made each GEMM
        // narrower and slower (2 threads: 128 -> 128 channels at 28x28 0.21 -> 0.13 ms, 16 ->
        // 32 at 240x240 0.45 -> 0.39 ms; 1 thread: the same or faster). Past ~4 MB of input
        // every thread's GEMM streaming the whole input costs more (64 -> 64 at 256x256, 2
        // threads: 3.8 ms in bands, 4.9 whole).
        Schedule::Parallel
            if pointwise
                && x.len() / nb <= PW_WHOLE_FLOATS
                && (threads == 1 || cout >= 16 * threads) =>
        {
            ho
        }
        Schedule::Parallel => rows_per_tile(k, nb, ho, wo),
        Schedule::WholeImages => ho,
    };
    let tiles: Vec<Rect> = (0..nb)
        .flat_map(|n| {
            (0..ho).step_by(rows).map(move |y| Rect {
                n,
                y0: y as isize,
                x0: 0,
                rows: rows.min(ho - y),
                cols: wo,
            })
        })
        .collect();
    let ptr = SyncPtr::new(out.data_mut());
    // Fewer tiles than threads (small maps, e.g. 10x10 or 7x7 with many channels): the output
    // channels are split too, in multiples of 16; each part repeats its tile's im2col, which
    // is cheap next to its GEMM. (gemm's own threading made these layers slower on 2 threads.)
    let parts =
        if schedule == Schedule::Parallel && conv.params.groups == 1 && tiles.len() < threads {
            threads.div_ceil(tiles.len()).min(cout / 16).max(1)
        } else {
            1
        };
    let per = cout.div_ceil(parts).next_multiple_of(16).min(cout);
    let tasks: Vec<(Rect, usize)> = tiles
        .iter()
        .flat_map(|r| (0..cout).step_by(per).map(move |c0| (*r, c0)))
        .collect();
    let work = |&(r, c0): &(Rect, usize)| {
        let dst = Dst {
            ptr: ptr.offset(r.n * cout * ho * wo + r.y0 as usize * wo),
            channel_stride: ho * wo,
        };
        let ocs = c0..(c0 + per).min(cout);
        if pointwise {
            // SAFETY: the band's channels `ocs` lie inside `out`; tasks are disjoint.
            unsafe { tile(conv, x, r, dst, None, ocs) };
        } else {
            with_col(k * r.pixels(), |col| {
                // SAFETY: as above.
                unsafe { tile(conv, x, r, dst, Some(col), ocs) }
            });
        }
        // The first channel part checks the rows its tile owns.
        !check || c0 > 0 || owned_rows_finite(conv, x, &r, ho)
    };
    all(&tasks, schedule == Schedule::Parallel && threads > 1, work)
}

/// Runs `f` on this thread's im2col buffer, sized `len`.
fn with_col<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    COL.with(|c| {
        let mut col = c.borrow_mut();
        if col.len() < len {
            col.resize(len, 0.0);
        }
        f(&mut col[..len])
    })
}

/// Rows per tile: enough pixels to amortise a GEMM call, few enough for the im2col buffer to
/// stay in cache, and enough tiles to keep every thread busy.
fn rows_per_tile(k: usize, nb: usize, ho: usize, wo: usize) -> usize {
    let target_pixels = tile_pixels(k);
    let mut rows = (target_pixels / wo).clamp(1, ho);
    let want_tiles = 4 * rayon::current_num_threads();
    while rows > 1 && nb * ho.div_ceil(rows) < want_tiles && (rows / 2) * wo >= MIN_TILE_PIXELS {
        rows /= 2;
    }
    // Whole tiles of a multiple of 16 pixels: the GEMM runs those at full speed (see
    // `matmul`), so only the last tile has a ragged tail.
    let unit = 16 / gcd(wo, 16);
    if rows > unit && rows < ho {
        rows -= rows % unit;
    }
    rows
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// Output pixels per tile for an im2col depth of `k`.
pub(super) fn tile_pixels(k: usize) -> usize {
    (COL_FLOATS / k).max(MIN_TILE_PIXELS)
}

/// Whether the input rows this band "owns" are finite. Bands split the input rows between
/// them (band `oy0..oy1` owns rows from `oy0*stride - pad` up to the next band's first, the
/// first and last bands also own the rows above and below), so every row is checked once,
/// just after the band's im2col or GEMM read it, while it is in cache.
fn owned_rows_finite(conv: &Conv2d, x: &Tensor, r: &Rect, ho: usize) -> bool {
    let [_, cin, h, w] = x.shape();
    let p = &conv.params;
    let start = |oy: usize| (oy * p.stride[0]).saturating_sub(p.pad.top).min(h);
    let lo = if r.y0 == 0 { 0 } else { start(r.y0 as usize) };
    let end = r.y0 as usize + r.rows;
    let hi = if end >= ho { h } else { start(end) };
    (0..cin).all(|c| all_finite(&x.plane(r.n, c)[lo * w..hi * w]))
}

/// One tile: for each group, GEMM `weights[g] x col` into the destination, then bias +
/// activation. `col: None` (pointwise on a whole-row band) reads the input planes directly.
/// `ocs`: the output channels to compute, within a group (all of them when groups > 1).
///
/// # Safety
/// `dst` must address the channel runs `ocs` (of every group) of `rect.pixels()` floats,
/// `channel_stride` apart, that no other thread touches during the call.
unsafe fn tile(
    conv: &Conv2d,
    x: &Tensor,
    rect: Rect,
    dst: Dst,
    mut col: Option<&mut [f32]>,
    ocs: std::ops::Range<usize>,
) {
    let p = &conv.params;
    let [_, cin, h, w] = x.shape();
    let cin_g = cin / p.groups;
    let m = conv.out_channels / p.groups;
    let k = conv.col_rows();
    let npix = rect.pixels();
    for g in 0..p.groups {
        let (rhs, rhs_rs) = match col.as_deref_mut() {
            Some(buf) => {
                im2col_rect(x, g * cin_g, cin_g, p, rect, buf);
                (buf.as_ptr(), npix as isize)
            }
            // Pointwise: input and output share geometry, so the band is the same pixels.
            None => {
                let off = (rect.n * cin + g * cin_g) * h * w + rect.y0 as usize * w;
                (x.data()[off..].as_ptr(), (h * w) as isize)
            }
        };
        let (first, rows) = (g * m + ocs.start, ocs.len().min(m));
        let step = if col.is_some() {
            npix
        } else {
            pointwise_chunk(rows, npix)
        };
        for p0 in (0..npix).step_by(step) {
            let n = step.min(npix - p0);
            // SAFETY: lhs is m x k row-major inside `weight`; rhs is k rows of npix values
            // with row stride rhs_rs, inside `col` or `x`; dst is m rows of npix values with
            // row stride channel_stride, which the caller guarantees is ours alone; columns
            // p0..p0 + n lie inside both.
            unsafe {
                let out = dst.ptr.at(first * dst.channel_stride + p0);
                matmul(
                    [rows, n, k],
                    out,
                    dst.channel_stride as isize,
                    false,
                    Strided {
                        ptr: conv.weight.as_ptr().add(first * k),
                        rows: k as isize,
                        cols: 1,
                    },
                    Strided {
                        ptr: rhs.add(p0),
                        rows: rhs_rs,
                        cols: 1,
                    },
                    1.0,
                    gemm::Parallelism::None,
                );
                for oc in 0..rows {
                    let row = std::slice::from_raw_parts_mut(out.add(oc * dst.channel_stride), n);
                    conv.act.bias_apply(row, conv.bias[first + oc]);
                }
            }
        }
    }
}

/// Output pixels per GEMM call of a 1x1 band of `rows` output channels and `npix` pixels: about
/// [`PW_CHUNK_FLOATS`] outputs (rounded up to 16 pixels, at least [`MIN_TILE_PIXELS`]), so the
/// bias and activation pass reads them from L2, not L3.
fn pointwise_chunk(rows: usize, npix: usize) -> usize {
    if rows * npix <= PW_CHUNK_FLOATS {
        return npix;
    }
    (PW_CHUNK_FLOATS / rows.max(1))
        .next_multiple_of(16)
        .max(MIN_TILE_PIXELS)
}
