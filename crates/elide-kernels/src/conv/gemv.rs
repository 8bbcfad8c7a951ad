//! 1x1 convolutions of 1x1 maps (squeeze-excitation blocks, classifier heads): per image a
//! matrix-vector product, one dot product of a weight row with the input per output channel,
//! output channels split over the rayon pool. The GEMM path packed the whole weight matrix on
//! every call for one column (a 512 -> 1280 head took 0.14 ms at 1 thread and 0.11 ms at 2).
use super::Conv2d;
use crate::copy::all_finite;
use crate::par::{all, SyncPtr};
use crate::Tensor;

/// Output channels per task.
const CHUNK: usize = 64;

/// Whether `conv` on an `h x w` input is such a product.
pub(super) fn applies(conv: &Conv2d, h: usize, w: usize) -> bool {
    let p = &conv.params;
    h * w == 1
        && p.groups == 1
        && p.kernel == [1, 1]
        && p.stride == [1, 1]
        && p.pad == super::Padding::default()
}

/// Runs the layer; with `check`, returns false when an input value is NaN/inf.
pub(super) fn run(
    conv: &Conv2d,
    x: &Tensor,
    out: &mut Tensor,
    parallel: bool,
    check: bool,
) -> bool {
    let [nb, cin, _, _] = x.shape();
    let cout = conv.out_channels;
    let finite = !check || all_finite(x.data());
    let tasks: Vec<(usize, usize)> = (0..nb)
        .flat_map(|n| (0..cout).step_by(CHUNK).map(move |c| (n, c)))
        .collect();
    let optr = SyncPtr::new(out.data_mut());
    all(&tasks, parallel, |&(n, c0)| {
        let xn = &x.data()[n * cin..(n + 1) * cin];
        for oc in c0..(c0 + CHUNK).min(cout) {
            let v = dot(&conv.weight[oc * cin..(oc + 1) * cin], xn) + conv.bias[oc];
            // SAFETY: element (n, oc) belongs to this task alone.
            unsafe { *optr.at(n * cout + oc) = conv.act.apply(v) };
        }
        true
    });
    finite
}

/// `sum a[i] * b[i]`, 16 lanes wide where the CPU has AVX-512.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU supports AVX-512F (checked just above).
        return unsafe { dot_avx512(a, b) };
    }
    dot_lanes(a, b)
}

/// Four 16-lane accumulators (the add latency would bound one), reduced at the end.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn dot_avx512(a: &[f32], b: &[f32]) -> f32 {
    use std::arch::x86_64::*;
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut acc = [_mm512_setzero_ps(); 4];
    let mut i = 0;
    while i + 64 <= n {
        for (j, v) in acc.iter_mut().enumerate() {
            let o = i + 16 * j;
            *v = _mm512_fmadd_ps(_mm512_loadu_ps(pa.add(o)), _mm512_loadu_ps(pb.add(o)), *v);
        }
        i += 64;
    }
    while i < n {
        let m = ((1u32 << (n - i).min(16)) - 1) as __mmask16;
        let (x, y) = (
            _mm512_maskz_loadu_ps(m, pa.add(i)),
            _mm512_maskz_loadu_ps(m, pb.add(i)),
        );
        acc[0] = _mm512_fmadd_ps(x, y, acc[0]);
        i += 16;
    }
    let s = _mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3]));
    _mm512_reduce_add_ps(s)
}

/// The portable loop.
fn dot_lanes(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
