//! Stride-1 convolution of a small tile as a sum of shifted GEMMs, with no im2col.
//!
//! If the output is computed for every column of the input tile ("wide" output, whose last
//! `(kw-1)*dilation` columns are junk), then for each kernel tap `(ky, kx)` the right-hand
//! side `x[ci, y + ky*d, x + kx*d]` over all output pixels is the input tile itself, shifted
//! by `ky*d*width + kx*d` floats: a plain strided matrix. The convolution becomes `kh*kw`
//! accumulating GEMMs (`cout x cin` by `cin x pixels`) straight on the tile. On the 16-48
//! pixel wide tiles of block-sparse pipelines this removed the im2col pass that cost ~15% of
//! the block time (its short row copies are slow).
//!
//! One-group layers with AVX-512 run the same accumulation in the padded direct kernel's
//! register blocks instead ([`super::padded_direct::wide_tile`]): the tile is already its
//! flat layout.
//!
//! The junk columns read past the end of a row into the next one, and the last row's into a
//! slack row below the tile (one extra row per channel), so junk never mixes into valid
//! outputs: valid column `x < width - (kw-1)*d` reads columns `x + kx*d < width`.
use super::Conv2d;
use crate::error::{param_err, shape_err, Result};
use crate::matmul::{matmul, Strided};
use crate::Tensor;

/// A tile in the wide layout: `[1, C, rows + 1, width]`, the last row slack, the first `valid`
/// columns of each row data and the rest junk.
pub(super) fn run(conv: &Conv2d, x: &Tensor, valid: usize, out: &mut Tensor) -> Result<usize> {
    let op = "Conv2d::forward_wide";
    let p = &conv.params;
    if p.stride != [1, 1] {
        return param_err(op, format!("needs stride 1, got {:?}", p.stride));
    }
    let [one, cin, rows1, width] = x.shape();
    let [kh, kw] = p.kernel;
    let [dy, dx] = p.dilation;
    let reach = [(kh - 1) * dy, (kw - 1) * dx];
    if one != 1 || cin != conv.in_channels || rows1 < 2 || rows1 - 1 <= reach[0] {
        return shape_err(
            op,
            format!(
                "tile {:?} for a {kh}x{kw} kernel of {} channels",
                x.shape(),
                conv.in_channels
            ),
        );
    }
    if valid > width || valid <= reach[1] {
        return shape_err(
            op,
            format!("{valid} valid columns of {width} for a {kw}-wide kernel"),
        );
    }
    let rows = rows1 - 1;
    let out_rows = rows - reach[0];
    let [o1, cout, orows, owidth] = out.shape();
    if o1 != 1
        || cout != conv.out_channels
        || owidth != width
        || !(orows == out_rows || orows == out_rows + 1)
    {
        return shape_err(
            op,
            format!(
                "output {:?}, expected [1, {}, {out_rows} (+1), {width}]",
                out.shape(),
                conv.out_channels
            ),
        );
    }
    let npix = out_rows * width;
    let in_plane = rows1 * width;
    let out_plane = orows * width;
    let src = x.data();
    let dst = out.data_mut();
    let direct = conv.in_channels != p.groups
        && super::padded_direct::wide_tile(conv, src, [in_plane, width], out_rows, dst, out_plane);
    if !direct {
        if conv.in_channels == p.groups {
            depthwise(conv, src, in_plane, dst, out_plane, npix, width);
        } else {
            gemm_taps(conv, src, in_plane, dst, out_plane, npix, width);
        }
    }
    for (oc, plane) in dst.chunks_exact_mut(out_plane).enumerate() {
        let (body, slack) = plane.split_at_mut(npix);
        if !direct {
            conv.act.bias_apply(body, conv.bias[oc]);
        }
        slack.fill(0.0);
    }
    Ok(valid - reach[1])
}

/// Depthwise: each tap is one contiguous multiply-add over the flattened output plane.
fn depthwise(
    conv: &Conv2d,
    src: &[f32],
    in_plane: usize,
    dst: &mut [f32],
    out_plane: usize,
    npix: usize,
    width: usize,
) {
    let p = &conv.params;
    let [kh, kw] = p.kernel;
    let [dy, dx] = p.dilation;
    let mult = conv.out_channels / conv.in_channels;
    for (oc, plane) in dst.chunks_exact_mut(out_plane).enumerate() {
        let out = &mut plane[..npix];
        let input = &src[(oc / mult) * in_plane..];
        let wts = &conv.weight[oc * kh * kw..(oc + 1) * kh * kw];
        out.fill(0.0);
        for ky in 0..kh {
            for kx in 0..kw {
                let wv = wts[ky * kw + kx];
                let shifted = &input[ky * dy * width + kx * dx..][..npix];
                out.iter_mut().zip(shifted).for_each(|(o, &i)| *o += wv * i);
            }
        }
    }
}

/// Grouped or dense: one accumulating GEMM per group and tap.
fn gemm_taps(
    conv: &Conv2d,
    src: &[f32],
    in_plane: usize,
    dst: &mut [f32],
    out_plane: usize,
    npix: usize,
    width: usize,
) {
    let p = &conv.params;
    let [kh, kw] = p.kernel;
    let [dy, dx] = p.dilation;
    let groups = p.groups;
    let cin_g = conv.in_channels / groups;
    let m = conv.out_channels / groups;
    let k = cin_g * kh * kw;
    for g in 0..groups {
        for ky in 0..kh {
            for kx in 0..kw {
                let tap = ky * kw + kx;
                let shift = g * cin_g * in_plane + ky * dy * width + kx * dx;
                // The last channel's junk reads end inside its slack row.
                assert!(shift + (cin_g - 1) * in_plane + npix <= src.len());
                // SAFETY: lhs: m rows (stride k) of cin_g values (stride kh*kw) inside weight;
                // rhs: cin_g rows (stride in_plane) of npix values from `shift`, inside src
                // (asserted above); dst: m rows (stride out_plane) of npix values inside out.
                unsafe {
                    matmul(
                        [m, npix, cin_g],
                        dst.as_mut_ptr().add(g * m * out_plane),
                        out_plane as isize,
                        tap > 0,
                        Strided {
                            ptr: conv.weight.as_ptr().add(g * m * k + tap),
                            rows: k as isize,
                            cols: (kh * kw) as isize,
                        },
                        Strided {
                            ptr: src.as_ptr().add(shift),
                            rows: in_plane as isize,
                            cols: 1,
                        },
                        1.0,
                        gemm::Parallelism::None,
                    );
                }
            }
        }
    }
}
