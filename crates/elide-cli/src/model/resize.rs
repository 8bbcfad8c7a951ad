//! Resizing 8-bit interleaved images the way OpenCV's `cv::resize` does, so that the presets
//! of `elide run` reproduce the Python packages' preprocessing bit for bit (checked against
//! opencv-python 5.0 on random images and against the tensors `scripts/ort_reference.py`
//! committed).
//!
//! - `Linear` is `INTER_LINEAR` on `CV_8U`: half-pixel centres; per axis, weights
//!   `(1 - f, f)` rounded to 11-bit fixed point; a horizontal pass into `i32` rows, then a
//!   vertical pass rounded as OpenCV's vector path does (`((S0 >> 4) b0 >> 16) +
//!   ((S1 >> 4) b1 >> 16)`, then `+ 2 >> 2`; opencv-python 5.0 rounds a row's last values
//!   this way too, not as its scalar `(S0 b0 + S1 b1 + 2^21) >> 22`). An exact 2x reduction on
//!   both axes is a 2x2 average, as OpenCV does.
//! - `Lanczos4` is `INTER_LANCZOS4` on `CV_8U`: 8 taps from OpenCV's `interpolateLanczos4`,
//!   11-bit fixed point, borders replicated; OpenCV has no vector path for it.

/// An 8-bit image, rows of `w` pixels of `cn` interleaved channels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image8 {
    /// Height.
    pub h: usize,
    /// Width.
    pub w: usize,
    /// Channels per pixel.
    pub cn: usize,
    /// `h * w * cn` values, row-major, channels interleaved.
    pub data: Vec<u8>,
}

/// The interpolation of [`resize`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interp {
    /// OpenCV's `INTER_LINEAR`.
    Linear,
    /// OpenCV's `INTER_LANCZOS4`.
    Lanczos4,
}

impl Interp {
    /// OpenCV's name.
    pub fn name(self) -> &'static str {
        match self {
            Interp::Linear => "cv2 INTER_LINEAR",
            Interp::Lanczos4 => "cv2 INTER_LANCZOS4",
        }
    }
}

const COEF_SCALE: f32 = 2048.0;

/// `saturate_cast<short>(float)`: round half to even, then clamp.
fn to_i16(v: f32) -> i32 {
    v.round_ties_even().clamp(-32768.0, 32767.0) as i32
}

/// Source position of destination index `d` (OpenCV computes it in double, stores a float).
fn source(d: usize, scale: f64) -> (isize, f32) {
    let f = ((d as f64 + 0.5) * scale - 0.5) as f32;
    let s = f.floor();
    (s as isize, f - s)
}

/// OpenCV's `interpolateLanczos4`, operation for operation (float where it uses float).
fn lanczos4(x: f32) -> [f32; 8] {
    const S45: f64 = std::f64::consts::FRAC_1_SQRT_2;
    const CS: [[f64; 2]; 8] = [
        [1.0, 0.0],
        [-S45, -S45],
        [0.0, 1.0],
        [S45, -S45],
        [-1.0, 0.0],
        [S45, S45],
        [0.0, -1.0],
        [-S45, S45],
    ];
    let pi = std::f64::consts::PI;
    let y0 = f64::from(-(x + 3.0)) * pi * 0.25;
    let (s0, c0) = (y0.sin(), y0.cos());
    let mut c = [0f32; 8];
    let mut sum = 0f32;
    for (i, ci) in c.iter_mut().enumerate() {
        let y0i = x + 3.0 - i as f32;
        *ci = if y0i.abs() >= 1e-6 {
            let y = -f64::from(y0i) * pi * 0.25;
            ((CS[i][0] * s0 + CS[i][1] * c0) / (y * y)) as f32
        } else {
            1e30
        };
        sum += *ci;
    }
    let inv = 1.0 / sum;
    c.iter_mut().for_each(|v| *v *= inv);
    c
}

/// Per destination index along one axis: the source index of each tap (clamped to the image)
/// and its fixed-point weight.
struct Taps {
    k: usize,
    idx: Vec<usize>,
    wt: Vec<i32>,
}

fn taps(src: usize, dst: usize, interp: Interp, horizontal: bool) -> Taps {
    let scale = 1.0 / (dst as f64 / src as f64);
    let k = match interp {
        Interp::Linear => 2,
        Interp::Lanczos4 => 8,
    };
    let (mut idx, mut wt) = (Vec::with_capacity(dst * k), Vec::with_capacity(dst * k));
    let last = src as isize - 1;
    for d in 0..dst {
        let (mut s, mut f) = source(d, scale);
        let c: Vec<f32> = match interp {
            Interp::Linear => {
                // Horizontally OpenCV snaps to the edge pixel outside the image; vertically it
                // keeps the weights and clamps the rows.
                if horizontal && s < 0 {
                    (s, f) = (0, 0.0);
                }
                if horizontal && s >= last {
                    (s, f) = (last, 0.0);
                }
                vec![1.0 - f, f]
            }
            Interp::Lanczos4 => lanczos4(f).to_vec(),
        };
        let first = s - (k as isize / 2 - 1);
        for (j, cj) in c.iter().enumerate() {
            idx.push((first + j as isize).clamp(0, last) as usize);
            wt.push(to_i16(cj * COEF_SCALE));
        }
    }
    Taps { k, idx, wt }
}

/// Resizes `img` to `h x w` as `cv2.resize(img, (w, h), interpolation=...)` does.
/// Sizes must be nonzero (the caller checks).
pub fn resize(img: &Image8, h: usize, w: usize, interp: Interp) -> Image8 {
    let cn = img.cn;
    if [h, w] == [img.h, img.w] {
        return img.clone();
    }
    if interp == Interp::Linear && img.h == 2 * h && img.w == 2 * w {
        return halve(img);
    }
    let (tx, ty) = (taps(img.w, w, interp, true), taps(img.h, h, interp, false));
    // Horizontal pass of every source row (all are read when downscaling; cheap otherwise).
    let width = w * cn;
    let mut rows = vec![0i32; img.h * width];
    for (src, dst) in img
        .data
        .chunks_exact(img.w * cn)
        .zip(rows.chunks_exact_mut(width))
    {
        for x in 0..w {
            let (ix, wx) = (
                &tx.idx[x * tx.k..(x + 1) * tx.k],
                &tx.wt[x * tx.k..(x + 1) * tx.k],
            );
            for ch in 0..cn {
                dst[x * cn + ch] = ix
                    .iter()
                    .zip(wx)
                    .map(|(&i, &a)| i32::from(src[i * cn + ch]) * a)
                    .sum();
            }
        }
    }
    let mut out = vec![0u8; h * width];
    for (y, dst) in out.chunks_exact_mut(width).enumerate() {
        let (iy, wy) = (
            &ty.idx[y * ty.k..(y + 1) * ty.k],
            &ty.wt[y * ty.k..(y + 1) * ty.k],
        );
        let row = |r: usize| &rows[r * width..(r + 1) * width];
        match interp {
            Interp::Linear => {
                let (s0, s1, b0, b1) = (row(iy[0]), row(iy[1]), wy[0], wy[1]);
                for ((d, &a), &b) in dst.iter_mut().zip(s0).zip(s1) {
                    let v = ((((a >> 4) * b0) >> 16) + (((b >> 4) * b1) >> 16) + 2) >> 2;
                    *d = v.clamp(0, 255) as u8;
                }
            }
            Interp::Lanczos4 => {
                for (x, d) in dst.iter_mut().enumerate() {
                    let v: i32 = iy.iter().zip(wy).map(|(&r, &b)| row(r)[x] * b).sum();
                    *d = ((v + (1 << 21)) >> 22).clamp(0, 255) as u8;
                }
            }
        }
    }
    Image8 {
        h,
        w,
        cn,
        data: out,
    }
}

/// OpenCV's exact 2x reduction (`INTER_LINEAR` turns into its fast area path): the rounded
/// mean of each 2x2 block.
fn halve(img: &Image8) -> Image8 {
    let (h, w, cn) = (img.h / 2, img.w / 2, img.cn);
    let stride = img.w * cn;
    let mut data = vec![0u8; h * w * cn];
    for y in 0..h {
        for x in 0..w {
            for ch in 0..cn {
                let p = |yy: usize, xx: usize| u32::from(img.data[yy * stride + xx * cn + ch]);
                let s = p(2 * y, 2 * x)
                    + p(2 * y, 2 * x + 1)
                    + p(2 * y + 1, 2 * x)
                    + p(2 * y + 1, 2 * x + 1);
                data[(y * w + x) * cn + ch] = ((s + 2) >> 2) as u8;
            }
        }
    }
    Image8 { h, w, cn, data }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn img(h: usize, w: usize, cn: usize, data: &[u8]) -> Image8 {
        Image8 {
            h,
            w,
            cn,
            data: data.to_vec(),
        }
    }

    // Expected values from opencv-python 5.0.0:
    //   a = np.array([[0, 50, 100], [150, 200, 250]], np.uint8)
    //   cv2.resize(a, (5, 3), interpolation=cv2.INTER_LINEAR)
    //   cv2.resize(a, (5, 3), interpolation=cv2.INTER_LANCZOS4)
    //   cv2.resize(np.arange(16, dtype=np.uint8).reshape(4, 4) * 13, (2, 2))
    #[test]
    fn matches_opencv_on_small_cases() {
        let a = img(2, 3, 1, &[0, 50, 100, 150, 200, 250]);
        let lin = resize(&a, 3, 5, Interp::Linear);
        assert_eq!(
            lin.data,
            [0, 20, 50, 80, 100, 75, 95, 125, 155, 175, 150, 170, 200, 230, 250]
        );
        let lz = resize(&a, 3, 5, Interp::Lanczos4);
        assert_eq!(
            lz.data,
            [0, 1, 37, 73, 90, 72, 89, 125, 161, 178, 160, 177, 213, 249, 255]
        );
        let b: Vec<u8> = (0..16u8).map(|v| v * 13).collect();
        let half = resize(&img(4, 4, 1, &b), 2, 2, Interp::Linear);
        assert_eq!(half.data, [33, 59, 137, 163]);
    }

    #[test]
    fn same_size_is_a_copy_and_channels_stay_apart() {
        let a = img(2, 2, 3, &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
        assert_eq!(resize(&a, 2, 2, Interp::Lanczos4), a);
        // A constant image stays constant per channel, at any size, either way.
        let c = img(3, 5, 3, &[10, 200, 255].repeat(15));
        for interp in [Interp::Linear, Interp::Lanczos4] {
            for (h, w) in [(7, 2), (1, 1), (6, 10), (2, 11)] {
                let r = resize(&c, h, w, interp);
                assert_eq!(r.data, [10, 200, 255].repeat(h * w), "{interp:?} {h}x{w}");
            }
        }
    }

    #[test]
    fn lanczos_weights_sum_to_one() {
        for x in [0.0, 1e-7, 0.25, 0.5, 0.999_999] {
            let c = lanczos4(x);
            let s: f32 = c.iter().sum();
            assert!((s - 1.0).abs() < 1e-5, "{x}: {c:?}");
        }
        assert_eq!(lanczos4(0.0).map(|v| to_i16(v * COEF_SCALE))[3], 2048);
    }
}
