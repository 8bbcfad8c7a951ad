//! The CSR layer against a naive dense loop on random, odd and edge-case shapes.
use super::*;
use crate::rng::SplitMix64;

/// `y[o, b] = act(bias[o] + sum_j w[o, j] x[j, b])` in f64, feature-major.
fn naive(w: &[f32], bias: &[f32], relu: bool, x: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
    let mut y = vec![0.0; m * n];
    for o in 0..m {
        for b in 0..n {
            let mut s = bias[o] as f64;
            for j in 0..k {
                s += w[o * k + j] as f64 * x[j * n + b] as f64;
            }
            y[o * n + b] = if relu { s.max(0.0) } else { s } as f32;
        }
    }
    y
}

fn random_layer(r: &mut SplitMix64, m: usize, k: usize, density: f32, relu: bool) -> CsrLinear {
    let dense: Vec<f32> = (0..m * k)
        .map(|_| {
            if r.uniform() < density {
                r.range(-1.0, 1.0)
            } else {
                0.0
            }
        })
        .collect();
    CsrLinear {
        weight: CsrMatrix::from_nonzeros(&dense, m, k).unwrap(),
        bias: r.vec(m, -0.5, 0.5),
        relu,
    }
}

fn close(got: &[f32], want: &[f32], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (i, (a, b)) in got.iter().zip(want).enumerate() {
        assert!(
            (a - b).abs() <= 1e-5 * (1.0 + b.abs()),
            "{what} [{i}]: {a} vs {b}"
        );
    }
}

#[test]
fn layer_equals_the_naive_product_on_odd_shapes() {
    let mut r = SplitMix64::new(11);
    // (outputs, inputs, batch, density): batch 1 (gather path), odd batches around the 8- and
    // 32-lane blocks, an empty row set (density 0), fully dense, and work over the parallel
    // threshold.
    let cases = [
        (1, 1, 1, 1.0),
        (7, 13, 1, 0.3),
        (37, 53, 1, 0.1),
        (64, 200, 1, 0.05),
        (9, 17, 7, 0.5),
        (33, 31, 33, 0.2),
        (20, 40, 8, 0.0),
        (12, 12, 45, 1.0),
        (300, 256, 64, 0.1),
    ];
    for (i, &(m, k, n, density)) in cases.iter().enumerate() {
        for relu in [false, true] {
            let l = random_layer(&mut r, m, k, density, relu);
            let x = r.vec(k * n, -2.0, 2.0);
            let want = naive(&l.weight.to_dense(), &l.bias, relu, &x, m, k, n);
            let mut got = vec![f32::NAN; m * n];
            for threads in [1, 2] {
                crate::threads::with_threads(threads, || l.forward(&x, n, &mut got))
                    .unwrap()
                    .unwrap();
                close(
                    &got,
                    &want,
                    &format!("case {i} relu {relu} threads {threads}"),
                );
            }
            // Row-major in and out.
            let rows = l.forward_rows(&transpose(&x, k, n).unwrap(), n).unwrap();
            close(
                &rows,
                &transpose(&want, m, n).unwrap(),
                &format!("rows, case {i}"),
            );
        }
    }
}

#[test]
fn bad_buffers_and_indices_are_errors() {
    let mut r = SplitMix64::new(3);
    let l = random_layer(&mut r, 5, 6, 0.5, false);
    let mut y = vec![0.0; 10];
    assert!(l.forward(&[0.0; 11], 2, &mut y).is_err());
    assert!(l.forward(&[0.0; 12], 2, &mut y[..9]).is_err());
    assert!(l.forward(&[], 0, &mut []).is_err());
    assert!(l.forward_rows(&[0.0; 7], 2).is_err());
    let mut bad = l.clone();
    bad.bias.pop();
    assert!(bad.forward(&[0.0; 12], 2, &mut y).is_err());
    let mut bad = l.clone();
    assert!(bad.weight.nnz() > 0, "the seed draws some weights");
    bad.weight.indices[0] = 6;
    assert!(bad.forward(&[0.0; 12], 2, &mut y).is_err());
    assert!(CsrMatrix::from_nonzeros(&[1.0; 5], 2, 3).is_err());
}

#[test]
fn matrix_round_trips_and_counts() {
    let d = [0.0, 2.0, 0.0, -1.0, 0.0, 0.0, 0.0, 3.5];
    let c = CsrMatrix::from_nonzeros(&d, 2, 4).unwrap();
    assert_eq!(c.nnz(), 3);
    assert_eq!(c.indptr, vec![0, 2, 3]);
    assert_eq!(c.indices, vec![1, 3, 3]);
    assert!((c.sparsity() - 5.0 / 8.0).abs() < 1e-12);
    assert_eq!(c.to_dense(), d.to_vec());
}

#[test]
fn transpose_moves_every_element_on_ragged_shapes() {
    for &(r, c) in &[
        (1, 1),
        (1, 9),
        (9, 1),
        (8, 8),
        (7, 13),
        (16, 24),
        (17, 33),
        (64, 1024),
        (1024, 64),
    ] {
        let a: Vec<f32> = (0..r * c).map(|i| i as f32).collect();
        let t = transpose(&a, r, c).unwrap();
        for i in 0..r {
            for j in 0..c {
                assert_eq!(t[j * r + i], a[i * c + j], "{r} x {c} at ({i}, {j})");
            }
        }
    }
}

#[test]
fn transpose_refuses_wrong_or_overflowing_sizes() {
    assert!(transpose(&[1.0; 3], 2, 2).is_err());
    let mut t = [0.0; 4];
    assert!(transpose_into(&[1.0; 4], 2, 2, &mut t[..3]).is_err());
    // r * c overflows usize: an error, not a wrapped bound.
    assert!(transpose_into(&[], 1 << 33, 1 << 31, &mut []).is_err());
    let l = CsrLinear {
        weight: CsrMatrix::from_nonzeros(&[1.0; 4], 2, 2).unwrap(),
        bias: vec![0.0; 2],
        relu: false,
    };
    let mut y = [0.0; 4];
    assert!(l
        .forward_rows_into(&[], usize::MAX / 2 + 1, [&mut [], &mut []], &mut y)
        .is_err());
}
