//! Every conv kernel against the naive reference on random, odd and edge-case shapes.
use super::*;
use crate::rng::SplitMix64;

fn random_tensor(rng: &mut SplitMix64, shape: [usize; 4]) -> Tensor {
    Tensor::from_vec(shape, rng.vec(shape.iter().product(), -1.0, 1.0)).unwrap()
}

/// Builds a random layer, runs the fast path and the reference, and compares.
fn check(
    rng: &mut SplitMix64,
    x_shape: [usize; 4],
    cout: usize,
    p: Conv2dParams,
    act: Activation,
) -> ConvKernel {
    let x = random_tensor(rng, x_shape);
    let w = random_tensor(rng, [cout, x_shape[1] / p.groups, p.kernel[0], p.kernel[1]]);
    let b = rng.vec(cout, -0.5, 0.5);
    let conv = Conv2d::new(&w, Some(&b), p, act).unwrap();
    let got = conv.forward(&x).unwrap();
    let want = conv2d_reference(&x, &w, Some(&b), &p, act).unwrap();
    // Error relative to sum |x||w| + |b|; activations here have slope <= 1.5.
    let scale = conv2d_error_scale(&x, &w, Some(&b), &p).unwrap();
    let err = max_scaled_error(&got, &want, &scale);
    assert!(
        err < 1e-5,
        "{:?} {x_shape:?} {p:?} {act:?}: err {err}",
        conv.kernel()
    );
    conv.kernel()
}

#[test]
fn random_shapes_all_kernels_match_reference() {
    let mut rng = SplitMix64::new(7);
    let acts = [
        Activation::None,
        Activation::Relu,
        Activation::Relu6,
        Activation::LeakyRelu(0.1),
        Activation::HardSwish,
        Activation::Silu,
        Activation::Sigmoid,
    ];
    let mut seen = std::collections::HashSet::new();
    for case in 0..120 {
        let groups = [1, 1, 1, 2, 3][rng.int(0, 4)];
        let depthwise = case % 5 == 0;
        let cin = if depthwise {
            rng.int(1, 9)
        } else {
            groups * rng.int(1, 6)
        };
        let (groups, cout) = if depthwise {
            (cin, cin * rng.int(1, 2))
        } else {
            (groups, groups * rng.int(1, 7))
        };
        let k = [rng.int(1, 5), rng.int(1, 5)];
        let mut p = Conv2dParams::new(k[0], k[1])
            .with_stride(rng.int(1, 3), rng.int(1, 3))
            .with_dilation(rng.int(1, 2), rng.int(1, 2))
            .with_groups(groups)
            .with_pad(Padding {
                top: rng.int(0, 3),
                left: rng.int(0, 3),
                bottom: rng.int(0, 3),
                right: rng.int(0, 3),
            });
        if case % 7 == 0 {
            p = Conv2dParams::new(1, 1).with_groups(groups);
        }
        let [rh, rw] = p.receptive_field();
        let h = rng.int(rh, rh + 40);
        let w = rng.int(rw, rw + 40);
        let n = rng.int(1, 3);
        let act = acts[rng.int(0, acts.len() - 1)];
        seen.insert(format!(
            "{:?}",
            check(&mut rng, [n, cin, h, w], cout, p, act)
        ));
    }
    assert_eq!(seen.len(), 3, "all kernels exercised: {seen:?}");
}

#[test]
fn large_image_multiple_tiles_and_threads() {
    let mut rng = SplitMix64::new(3);
    for threads in [1, 2, 3] {
        crate::threads::with_threads(threads, || {
            check(
                &mut rng,
                [2, 16, 67, 131],
                24,
                Conv2dParams::same(3),
                Activation::Relu,
            );
            check(
                &mut rng,
                [1, 32, 45, 77],
                16,
                Conv2dParams::new(1, 1),
                Activation::None,
            );
            check(
                &mut rng,
                [1, 12, 50, 61],
                12,
                Conv2dParams::same(3).with_groups(12),
                Activation::Relu6,
            );
        })
        .unwrap();
    }
}

#[test]
fn kernel_as_large_as_image() {
    let mut rng = SplitMix64::new(11);
    check(
        &mut rng,
        [1, 3, 5, 4],
        2,
        Conv2dParams::new(5, 4),
        Activation::None,
    );
    check(
        &mut rng,
        [1, 1, 1, 1],
        1,
        Conv2dParams::new(1, 1),
        Activation::None,
    );
}

#[test]
fn batch_norm_folding_matches_explicit_batch_norm() {
    let mut rng = SplitMix64::new(5);
    let x = random_tensor(&mut rng, [1, 4, 9, 9]);
    let w = random_tensor(&mut rng, [6, 4, 3, 3]);
    let b = rng.vec(6, -1.0, 1.0);
    let (gamma, beta, mean) = (
        rng.vec(6, 0.5, 2.0),
        rng.vec(6, -1.0, 1.0),
        rng.vec(6, -1.0, 1.0),
    );
    let var = rng.vec(6, 0.1, 2.0);
    let p = Conv2dParams::same(3);
    let mut conv = Conv2d::new(&w, Some(&b), p, Activation::None).unwrap();
    conv.fold_batch_norm(&gamma, &beta, &mean, &var, 1e-5)
        .unwrap();
    let got = conv.forward(&x).unwrap();
    let mut want = conv2d_reference(&x, &w, Some(&b), &p, Activation::None).unwrap();
    for (i, v) in want.data_mut().iter_mut().enumerate() {
        let c = (i / 81) % 6;
        *v = (*v - mean[c]) / (var[c] + 1e-5).sqrt() * gamma[c] + beta[c];
    }
    // Folding rescales the weights, so compare with a tolerance relative to the output range.
    assert!(got.rel_err(&want).unwrap() < 1e-6);
}

#[test]
fn bad_input_is_a_typed_error() {
    let w = Tensor::zeros([4, 3, 3, 3]);
    let conv = Conv2d::new(&w, None, Conv2dParams::same(3), Activation::None).unwrap();
    assert!(matches!(
        conv.forward(&Tensor::zeros([1, 2, 8, 8])),
        Err(crate::KernelError::Shape { .. })
    ));
    assert!(conv.forward(&Tensor::zeros([0, 3, 8, 8])).is_err());
    assert!(conv.forward(&Tensor::zeros([1, 3, 0, 8])).is_err());
    let valid = conv.to_valid();
    assert!(matches!(
        valid.forward(&Tensor::zeros([1, 3, 2, 8])),
        Err(crate::KernelError::Param { .. })
    ));
    assert!(Conv2d::new(&w, None, Conv2dParams::same(5), Activation::None).is_err());
    assert!(Conv2d::new(&w, Some(&[0.0; 3]), Conv2dParams::same(3), Activation::None).is_err());
    assert!(Conv2d::new(
        &w,
        None,
        Conv2dParams::same(3).with_stride(0, 1),
        Activation::None
    )
    .is_err());
    let mut nan = Tensor::zeros([4, 3, 3, 3]);
    nan.data_mut()[5] = f32::NAN;
    assert!(matches!(
        Conv2d::new(&nan, None, Conv2dParams::same(3), Activation::None),
        Err(crate::KernelError::NonFinite { .. })
    ));
    let mut out = Tensor::zeros([1, 4, 7, 8]);
    assert!(conv
        .forward_into(&Tensor::zeros([1, 3, 8, 8]), &mut out)
        .is_err());
}
