//! The sparse export and kernel against dense references.
use candle_core::DType;
use elide_bayes::rng::Rng;
use elide_bayes::sparse::{CsrMatrix, DenseLayer, SparseLayer, SparseNet};
use elide_bayes::{Arch, Init, Likelihood, Prior, SpikeSlabNet};

#[test]
fn sparse_layer_equals_dense_gemm_layer() {
    let mut r = Rng::new(2);
    for &(m, k, batch) in &[(37, 53, 1), (64, 64, 33), (100, 80, 70)] {
        let dense: Vec<f32> = (0..m * k).map(|_| r.normal() as f32).collect();
        let keep: Vec<bool> = (0..m * k).map(|_| r.uniform() < 0.1).collect();
        let csr = CsrMatrix::from_dense(&dense, m, k, |o, j| keep[o * k + j]).unwrap();
        assert!((csr.sparsity() - 0.9).abs() < 0.05);
        let s = SparseLayer {
            weight: csr,
            bias: (0..m).map(|i| i as f32 * 0.01).collect(),
            relu: true,
        };
        let d = DenseLayer::from_sparse(&s);
        let x: Vec<f32> = (0..k * batch).map(|_| r.normal() as f32).collect();
        let (mut ys, mut yd) = (vec![0.0; m * batch], vec![0.0; m * batch]);
        s.forward(&x, batch, &mut ys).unwrap();
        d.forward(&x, batch, &mut yd).unwrap();
        let num: f32 = ys.iter().zip(&yd).map(|(a, b)| (a - b).powi(2)).sum();
        let den: f32 = yd.iter().map(|b| b * b).sum();
        assert!((num / den.max(1e-30)).sqrt() < 1e-5, "{m}x{k}x{batch}");
        assert!(s.forward(&x[1..], batch, &mut ys).is_err());
    }
}

#[test]
fn exported_network_is_the_median_model_at_the_means() {
    let arch = Arch::uniform(6, 2, 5, 2);
    let prior = Prior::new(0.1, 1.0).unwrap();
    let init = Init {
        phi: 0.5,
        ..Init::default()
    };
    let net = SpikeSlabNet::new(
        arch,
        prior,
        Likelihood::Gaussian {
            sigma: 1.0,
            learned: false,
        },
        &init,
        4,
        DType::F32,
    )
    .unwrap();
    // Spread phi around 0.5 so some weights are dropped.
    let mut r = Rng::new(3);
    for l in &net.layers {
        for g in [&l.weight, &l.bias] {
            let v: Vec<f32> = (0..g.theta.elem_count())
                .map(|_| r.normal() as f32)
                .collect();
            g.theta
                .set(
                    &candle_core::Tensor::from_vec(v, g.theta.shape(), &candle_core::Device::Cpu)
                        .unwrap(),
                )
                .unwrap();
        }
    }
    let sparse = SparseNet::from_posterior(&net).unwrap();
    assert!(
        sparse.sparsity() > 0.2 && sparse.sparsity() < 0.8,
        "{}",
        sparse.sparsity()
    );
    let n = 9;
    let x: Vec<f32> = (0..n * 6).map(|_| r.normal() as f32).collect();
    let got = sparse.forward(&x, n).unwrap();
    // Naive reference: h = relu(h W_masked + b_masked) layer by layer, row-major.
    let mut h: Vec<f64> = x.iter().map(|&v| v as f64).collect();
    let mut width = 6;
    for (i, l) in net.layers.iter().enumerate() {
        let (mu, phi) = (l.weight.mu().unwrap(), l.weight.phi().unwrap());
        let (bm, bp) = (l.bias.mu().unwrap(), l.bias.phi().unwrap());
        let mut out = vec![0.0; n * l.outputs];
        for row in 0..n {
            for o in 0..l.outputs {
                let mut s = if bp[o] > 0.5 { bm[o] } else { 0.0 };
                for j in 0..width {
                    if phi[j * l.outputs + o] > 0.5 {
                        s += h[row * width + j] * mu[j * l.outputs + o];
                    }
                }
                out[row * l.outputs + o] = if i + 1 < net.layers.len() {
                    s.max(0.0)
                } else {
                    s
                };
            }
        }
        h = out;
        width = l.outputs;
    }
    for (a, b) in got.iter().zip(&h) {
        assert!((*a as f64 - b).abs() < 1e-4 * (1.0 + b.abs()), "{a} vs {b}");
    }
}
