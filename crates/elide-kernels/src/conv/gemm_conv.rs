//! Convolution as GEMM over spatial tiles.
//!
//! A tile is a band of whole output rows of one image, so each output channel's part of the
//! tile is one contiguous run of NCHW memory and the GEMM writes the output in place. Tiles are
//! sized so the im2col buffer stays cache-resident (a whole-image im2col plus one big GEMM was
//! measured ~3x slower here) and run in parallel with rayon; each thread reuses its own buffer.
//! 1x1 stride-1 convolutions skip im2col: the input planes are the right-hand side.
use super::{im2col::im2col_band, Conv2d, ConvKernel};
use crate::Tensor;
use rayon::prelude::*;
use std::cell::RefCell;

/// Target size of one tile's im2col buffer, in floats (about 1 MiB: half a 2 MiB L2 here).
const COL_FLOATS: usize = 1 << 18;
/// Smallest tile worth a GEMM call, in output pixels.
const MIN_TILE_PIXELS: usize = 256;

thread_local! {
    static COL: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

#[derive(Clone, Copy)]
struct OutPtr(*mut f32);
// SAFETY: tiles write disjoint output regions (distinct images or distinct row bands).
unsafe impl Send for OutPtr {}
unsafe impl Sync for OutPtr {}

pub(super) fn run(conv: &Conv2d, x: &Tensor, out: &mut Tensor) {
    let [nb, _, ho, wo] = out.shape();
    let p = &conv.params;
    let [kh, kw] = p.kernel;
    let cin_g = conv.in_channels / p.groups;
    let k = cin_g * kh * kw;
    let rows = rows_per_tile(k, nb, ho, wo);
    let tiles: Vec<(usize, usize, usize)> = (0..nb)
        .flat_map(|n| {
            (0..ho)
                .step_by(rows)
                .map(move |y| (n, y, (y + rows).min(ho)))
        })
        .collect();
    let ptr = OutPtr(out.data_mut().as_mut_ptr());
    let pointwise = conv.kernel() == ConvKernel::Pointwise;
    let work = |&(n, oy0, oy1): &(usize, usize, usize)| {
        if pointwise {
            tile(conv, x, ptr, n, (oy0, oy1), wo, ho, None);
        } else {
            COL.with(|c| {
                let mut col = c.borrow_mut();
                let need = k * (oy1 - oy0) * wo;
                if col.len() < need {
                    col.resize(need, 0.0);
                }
                tile(conv, x, ptr, n, (oy0, oy1), wo, ho, Some(&mut col[..need]));
            })
        }
    };
    if rayon::current_num_threads() == 1 || tiles.len() == 1 {
        tiles.iter().for_each(work);
    } else {
        tiles.par_iter().for_each(work);
    }
}

/// Rows per tile: enough pixels to amortise a GEMM call, few enough for the im2col buffer to
/// stay in cache, and enough tiles to keep every thread busy.
fn rows_per_tile(k: usize, nb: usize, ho: usize, wo: usize) -> usize {
    let target_pixels = (COL_FLOATS / k).max(MIN_TILE_PIXELS);
    let mut rows = (target_pixels / wo).clamp(1, ho);
    let want_tiles = 4 * rayon::current_num_threads();
    while rows > 1 && nb * ho.div_ceil(rows) < want_tiles && (rows / 2) * wo >= MIN_TILE_PIXELS {
        rows /= 2;
    }
    rows
}

/// One tile: for each group, GEMM `weights[g] x col` into the output band, then bias + activation.
#[allow(clippy::too_many_arguments)]
fn tile(
    conv: &Conv2d,
    x: &Tensor,
    out: OutPtr,
    n: usize,
    (oy0, oy1): (usize, usize),
    wo: usize,
    ho: usize,
    mut col: Option<&mut [f32]>,
) {
    let p = &conv.params;
    let [_, cin, h, w] = x.shape();
    let cin_g = cin / p.groups;
    let cout = conv.out_channels;
    let m = cout / p.groups;
    let k = cin_g * p.kernel[0] * p.kernel[1];
    let npix = (oy1 - oy0) * wo;
    let plane_out = ho * wo;
    for g in 0..p.groups {
        let (rhs, rhs_rs) = match col.as_deref_mut() {
            Some(buf) => {
                im2col_band(x, n, g * cin_g, cin_g, p, (oy0, oy1), wo, buf);
                (buf.as_ptr(), npix as isize)
            }
            // Pointwise: input and output share geometry, so the band is the same pixels.
            None => {
                let off = (n * cin + g * cin_g) * h * w + oy0 * wo;
                (x.data()[off..].as_ptr(), (h * w) as isize)
            }
        };
        let dst_off = (n * cout + g * m) * plane_out + oy0 * wo;
        // SAFETY: lhs is m x k row-major inside `weight`; rhs is k rows of npix values with
        // row stride rhs_rs, inside `col` or `x`; dst is m rows of npix values with row stride
        // plane_out inside `out`, a region no other tile touches.
        unsafe {
            let dst = out.0.add(dst_off);
            gemm::gemm(
                m,
                npix,
                k,
                dst,
                1,
                plane_out as isize,
                false,
                conv.weight.as_ptr().add(g * m * k),
                1,
                k as isize,
                rhs,
                1,
                rhs_rs,
                0.0,
                1.0,
                false,
                false,
                false,
                gemm::Parallelism::None,
            );
            for oc in 0..m {
                let row = std::slice::from_raw_parts_mut(dst.add(oc * plane_out), npix);
                conv.act.bias_apply(row, conv.bias[g * m + oc]);
            }
        }
    }
}
