//! Softmax along one axis of a contiguous array, viewed as `[outer, d, inner]`.
//!
//! The `d` values of one softmax are `inner` apart, so the loops run over whole rows of
//! `inner` values (vectorised, with the fast `exp`), in parallel chunks of columns.
use crate::conv::exp;
use crate::par::{all, SyncPtr};

/// Columns per parallel task.
const CHUNK: usize = 1 << 11;

/// `out = softmax(x)` along the middle axis of `[outer, d, inner]` (max subtracted first).
/// Panics if `x` or `out` is not `outer * d * inner` long.
pub fn softmax(x: &[f32], [outer, d, inner]: [usize; 3], out: &mut [f32]) {
    assert!(
        x.len() == outer * d * inner && out.len() == x.len(),
        "softmax: wrong lengths"
    );
    if x.is_empty() {
        return;
    }
    let cols = CHUNK.min(inner);
    let tasks: Vec<(usize, usize)> = (0..outer)
        .flat_map(|o| (0..inner).step_by(cols).map(move |c| (o, c)))
        .collect();
    let ptr = SyncPtr::new(out);
    all(&tasks, true, |&(o, c0)| {
        let w = cols.min(inner - c0);
        // SAFETY: task (o, c0) writes columns c0..c0+w of the d rows of block o only.
        let rows: Vec<&mut [f32]> = (0..d)
            .map(|r| unsafe { std::slice::from_raw_parts_mut(ptr.at((o * d + r) * inner + c0), w) })
            .collect();
        let src: Vec<&[f32]> = (0..d)
            .map(|r| &x[(o * d + r) * inner + c0..][..w])
            .collect();
        block(&src, rows);
        true
    });
}

fn block(src: &[&[f32]], rows: Vec<&mut [f32]>) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU supports AVX2 and FMA (checked just above).
        unsafe { block_avx2(src, rows) };
        return;
    }
    block_loops(src, rows);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn block_avx2(src: &[&[f32]], rows: Vec<&mut [f32]>) {
    block_loops(src, rows);
}

#[inline(always)]
fn block_loops(src: &[&[f32]], mut rows: Vec<&mut [f32]>) {
    let w = src[0].len();
    let mut m = vec![f32::NEG_INFINITY; w];
    for s in src {
        m.iter_mut().zip(s.iter()).for_each(|(m, &v)| *m = m.max(v));
    }
    let mut sum = vec![0f32; w];
    for (r, s) in rows.iter_mut().zip(src) {
        r.iter_mut()
            .zip(s.iter().zip(&m))
            .zip(sum.iter_mut())
            .for_each(|((o, (&v, &m)), t)| {
                *o = exp(v - m);
                *t += *o;
            });
    }
    sum.iter_mut().for_each(|t| *t = 1.0 / *t);
    for r in rows.iter_mut() {
        r.iter_mut().zip(&sum).for_each(|(o, &t)| *o *= t);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SplitMix64;

    #[test]
    fn matches_the_definition_on_odd_shapes() {
        let mut rng = SplitMix64::new(4);
        for shape in [[1, 16, 8400], [3, 5, 7], [2, 1, 5000], [1, 4, 1], [0, 3, 3]] {
            let n = shape.iter().product();
            let x = rng.vec(n, -30.0, 30.0);
            let mut out = vec![0f32; n];
            softmax(&x, shape, &mut out);
            let [outer, d, inner] = shape;
            for o in 0..outer {
                for i in 0..inner {
                    let at = |r: usize| (o * d + r) * inner + i;
                    let m = (0..d).map(|r| x[at(r)] as f64).fold(f64::MIN, f64::max);
                    let s: f64 = (0..d).map(|r| (x[at(r)] as f64 - m).exp()).sum();
                    for r in 0..d {
                        let want = (x[at(r)] as f64 - m).exp() / s;
                        assert!(
                            (out[at(r)] as f64 - want).abs() < 1e-6,
                            "{shape:?} {o} {r} {i}"
                        );
                    }
                }
            }
        }
    }
}
