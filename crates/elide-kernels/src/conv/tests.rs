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
        conv.kernel_for(x_shape[2], x_shape[3])
    );
    // Reused buffers (the graph executor's arena) hold stale values: every output must be
    // written, none accumulated into.
    let mut reused = Tensor::from_vec(got.shape(), vec![f32::NAN; got.len()]).unwrap();
    conv.forward_into(&x, &mut reused).unwrap();
    let kernel = conv.kernel_for(x_shape[2], x_shape[3]);
    assert_eq!(reused, got, "{kernel:?} {x_shape:?} {p:?}: forward_into");
    kernel
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
    // The direct kernel needs AVX2 + FMA; elsewhere its layers take im2col + GEMM.
    let avx2 = cfg!(target_arch = "x86_64") && {
        let w = Tensor::zeros([8, 3, 3, 3]);
        let c = Conv2d::new(&w, None, Conv2dParams::same(3), Activation::None).unwrap();
        direct::applies(&c)
    };
    if !avx2 {
        println!("SKIPPED the direct kernel: no AVX2+FMA on this CPU");
    }
    // The padded direct kernel needs AVX-512F; elsewhere its layers take im2col + GEMM.
    let avx512 = cfg!(target_arch = "x86_64") && {
        let w = Tensor::zeros([8, 8, 3, 3]);
        let c = Conv2d::new(&w, None, Conv2dParams::same(3), Activation::None).unwrap();
        padded_direct::applies(&c)
    };
    if !avx512 {
        println!("SKIPPED the padded direct kernel: no AVX-512F on this CPU");
    }
    assert_eq!(
        seen.len(),
        3 + usize::from(avx2) + usize::from(avx512),
        "all kernels exercised: {seen:?}"
    );
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

#[test]
fn wide_tiles_match_the_valid_reference() {
    let mut rng = SplitMix64::new(41);
    let acts = [Activation::None, Activation::Relu, Activation::Silu];
    for case in 0..80 {
        let groups = [1, 1, 2, 3][case % 4];
        // Every fourth case is depthwise (one input channel per group).
        let cin = if case % 4 == 3 {
            groups
        } else {
            groups * rng.int(1, 5)
        };
        let mut cout = groups * rng.int(1, 4);
        // Every eighth case is wide (one group): several reduction steps and channel blocks
        // in the padded direct kernel's register blocks.
        let cin = if case % 8 == 1 {
            cout = rng.int(9, 20);
            rng.int(40, 100)
        } else {
            cin
        };
        let (kh, kw) = (rng.int(1, 4), rng.int(1, 4));
        let p = Conv2dParams::new(kh, kw)
            .with_dilation(rng.int(1, 2), rng.int(1, 2))
            .with_groups(groups)
            .with_pad(Padding {
                top: rng.int(0, 1),
                left: rng.int(0, 1),
                bottom: 0,
                right: 0,
            });
        let [rh, rw] = p.valid().receptive_field();
        let rows = rng.int(rh, rh + 9);
        let valid = rng.int(rw, rw + 20);
        let width = valid + rng.int(0, 3);
        // The tile in the wide layout: junk columns and the slack row hold garbage.
        let tile = random_tensor(&mut rng, [1, cin, rows + 1, width]);
        let w = random_tensor(&mut rng, [cout, cin / groups, kh, kw]);
        let b = rng.vec(cout, -0.5, 0.5);
        let act = acts[case % acts.len()];
        let conv = Conv2d::new(&w, Some(&b), p, act).unwrap();
        let out_rows = rows + 1 - rh;
        let slack = case % 2;
        let mut out = random_tensor(&mut rng, [1, cout, out_rows + slack, width]);
        let got_valid = conv.forward_wide(&tile, valid, &mut out).unwrap();
        assert_eq!(got_valid, valid + 1 - rw);
        // Reference: the VALID conv of the tile's meaningful region (padding is ignored).
        let region = Tensor::from_vec(
            [1, cin, rows, valid],
            (0..cin)
                .flat_map(|c| (0..rows).flat_map(move |y| (0..valid).map(move |x| (c, y, x))))
                .map(|(c, y, x)| tile.plane(0, c)[y * width + x])
                .collect(),
        )
        .unwrap();
        let pv = p.valid();
        let want = conv2d_reference(&region, &w, Some(&b), &pv, act).unwrap();
        let scale = conv2d_error_scale(&region, &w, Some(&b), &pv).unwrap();
        let got = Tensor::from_vec(
            want.shape(),
            (0..cout)
                .flat_map(|c| {
                    (0..out_rows).flat_map(move |y| (0..got_valid).map(move |x| (c, y, x)))
                })
                .map(|(c, y, x)| out.plane(0, c)[y * width + x])
                .collect(),
        )
        .unwrap();
        let err = max_scaled_error(&got, &want, &scale);
        assert!(err < 1e-5, "case {case} {p:?}: err {err}");
        if slack == 1 {
            for c in 0..cout {
                assert!(out.plane(0, c)[out_rows * width..]
                    .iter()
                    .all(|&v| v == 0.0));
            }
        }
    }
}

#[test]
fn wide_tiles_reject_strides_and_bad_shapes() {
    let w = Tensor::zeros([2, 2, 3, 3]);
    let strided = Conv2d::new(
        &w,
        None,
        Conv2dParams::new(3, 3).with_stride(2, 1),
        Activation::None,
    )
    .unwrap();
    let tile = Tensor::zeros([1, 2, 8, 8]);
    let mut out = Tensor::zeros([1, 2, 3, 8]);
    assert!(strided.forward_wide(&tile, 8, &mut out).is_err());
    let conv = Conv2d::new(&w, None, Conv2dParams::new(3, 3), Activation::None).unwrap();
    // 7 rows + slack -> 5 output rows; 4 is wrong.
    let mut wrong = Tensor::zeros([1, 2, 4, 8]);
    assert!(conv.forward_wide(&tile, 8, &mut wrong).is_err());
    let mut right = Tensor::zeros([1, 2, 5, 8]);
    assert_eq!(conv.forward_wide(&tile, 8, &mut right).unwrap(), 6);
    // Fewer valid columns than the kernel is wide, or more than the tile has.
    assert!(conv.forward_wide(&tile, 2, &mut right).is_err());
    assert!(conv.forward_wide(&tile, 9, &mut right).is_err());
    // Wrong channel count.
    assert!(conv
        .forward_wide(&Tensor::zeros([1, 3, 8, 8]), 8, &mut right)
        .is_err());
}

#[test]
fn single_tile_schedule_matches_forward() {
    let mut rng = SplitMix64::new(43);
    for k in [1, 3] {
        let x = random_tensor(&mut rng, [2, 6, 19, 23]);
        let w = random_tensor(&mut rng, [5, 6, k, k]);
        let conv = Conv2d::new(&w, None, Conv2dParams::same(k), Activation::Relu).unwrap();
        let want = conv.forward(&x).unwrap();
        let mut got = Tensor::zeros(want.shape());
        conv.forward_tile_into(&x, &mut got).unwrap();
        assert!(got.rel_err(&want).unwrap() < 1e-6);
        assert!(conv
            .forward_tile_into(&x, &mut Tensor::zeros([2, 5, 19, 22]))
            .is_err());
    }
}

#[test]
fn checked_forward_finds_nan_in_any_band() {
    let mut rng = SplitMix64::new(44);
    let small = [38, 30];
    let layers = [
        (Conv2dParams::new(1, 1), 8, small),                 // pointwise
        (Conv2dParams::same(3), 8, small),                   // im2col
        (Conv2dParams::same(3).with_stride(2, 2), 8, small), // strided
        (Conv2dParams::same(3).with_groups(8), 8, small),    // depthwise
        // Strides that leave the last row and column (or every other one) unread: the
        // input is still checked everywhere.
        (Conv2dParams::new(3, 3).with_stride(2, 2), 8, small),
        (
            Conv2dParams::new(3, 3).with_stride(2, 2).with_groups(8),
            8,
            small,
        ),
        (Conv2dParams::new(1, 1).with_stride(2, 2), 8, small),
        (Conv2dParams::new(3, 3).with_stride(2, 2), 3, small), // RGB stem
        // Planes too large to copy whole (the padded direct kernel's band mode).
        (Conv2dParams::new(3, 3).with_stride(2, 2), 16, [162, 100]),
    ];
    for (p, c, [h, wd]) in layers {
        let x = random_tensor(&mut rng, [2, c, h, wd]);
        let w = random_tensor(&mut rng, [c, c / p.groups, p.kernel[0], p.kernel[1]]);
        let conv = Conv2d::new(&w, None, p, Activation::Relu).unwrap();
        let want = conv.forward(&x).unwrap();
        let mut got = Tensor::zeros(want.shape());
        conv.forward_into_checked(&x, &mut got).unwrap();
        assert_eq!(got, want);
        // The last value of every plane of the first image (its last row, which the
        // strided layers never read).
        let last_rows = (1..=c).map(|k| k * h * wd - 1);
        // Every row of every image: first, last, band edges.
        for i in (0..x.len())
            .step_by(x.len() / 97 + 1)
            .chain([0, x.len() - 1])
            .chain(last_rows)
        {
            let mut bad = x.clone();
            bad.data_mut()[i] = if i % 2 == 0 {
                f32::NAN
            } else {
                f32::NEG_INFINITY
            };
            let e = conv
                .forward_into_checked(&bad, &mut got)
                .expect_err(&format!("{p:?} {:?}: value {i} not checked", conv.kernel()));
            assert!(
                matches!(e, crate::KernelError::NonFinite { .. }),
                "{p:?} at {i}: {e}"
            );
        }
    }
}

/// The interleaved depthwise kernel on planes that split into row bands, channel counts that
/// leave a partial group of 8, strides, dilations and asymmetric padding; and the row-wise
/// kernel it replaces (still used without AVX2 and for channel multipliers) on the same cases.
#[test]
fn depthwise_kernels_match_reference_on_banded_planes() {
    let mut rng = SplitMix64::new(91);
    let cases = [
        (8, [200, 170], [3, 3], [1, 1], [1, 1]),
        (19, [131, 97], [5, 5], [2, 2], [1, 1]),
        (13, [60, 47], [3, 3], [2, 2], [1, 1]),
        (24, [77, 150], [3, 3], [1, 2], [2, 2]),
        (3, [9, 300], [3, 5], [2, 1], [1, 3]),
    ];
    for (c, [h, w], [kh, kw], stride, dil) in cases {
        let p = Conv2dParams::new(kh, kw)
            .with_stride(stride[0], stride[1])
            .with_dilation(dil[0], dil[1])
            .with_groups(c)
            .with_pad(Padding {
                top: 2,
                left: 1,
                bottom: 0,
                right: 3,
            });
        assert_eq!(
            check(&mut rng, [2, c, h, w], c, p, Activation::HardSwish),
            ConvKernel::Depthwise
        );
        let x = random_tensor(&mut rng, [1, c, h, w]);
        let wt = random_tensor(&mut rng, [c, 1, kh, kw]);
        let conv = Conv2d::new(&wt, Some(&rng.vec(c, -0.5, 0.5)), p, Activation::Relu).unwrap();
        let want = conv2d_reference(&x, &wt, Some(conv.bias()), &p, Activation::Relu).unwrap();
        let scale = conv2d_error_scale(&x, &wt, Some(conv.bias()), &p).unwrap();
        let mut rows = Tensor::zeros(want.shape());
        assert!(depthwise::run(
            &conv,
            &x,
            &mut rows,
            Schedule::Parallel,
            true
        ));
        assert!(
            max_scaled_error(&rows, &want, &scale) < 1e-5,
            "row-wise {c} {h}x{w}"
        );
        if depthwise_c8::applies(&conv) {
            let mut inter = Tensor::zeros(want.shape());
            for parallel in [true, false] {
                assert!(depthwise_c8::run(&conv, &x, &mut inter, parallel, true));
                assert!(
                    max_scaled_error(&inter, &want, &scale) < 1e-5,
                    "interleaved {c} {h}x{w}"
                );
            }
            let mut bad = x.clone();
            let at = bad.len() - 5;
            bad.data_mut()[at] = f32::NAN;
            assert!(!depthwise_c8::run(&conv, &bad, &mut inter, true, true));
        } else {
            println!("SKIPPED interleaved depthwise: no AVX2+FMA on this CPU");
        }
    }
}

/// Small maps with many output channels split the channels across threads (pointwise,
/// im2col, strided; channel counts that leave a short last part); results must not change.
#[test]
fn small_maps_split_output_channels_across_threads() {
    let mut rng = SplitMix64::new(17);
    for threads in [2, 3, 5] {
        crate::threads::with_threads(threads, || {
            check(
                &mut rng,
                [1, 40, 7, 7],
                88,
                Conv2dParams::new(1, 1),
                Activation::Relu6,
            );
            check(
                &mut rng,
                [1, 24, 10, 9],
                72,
                Conv2dParams::same(3),
                Activation::Silu,
            );
            check(
                &mut rng,
                [2, 16, 11, 13],
                48,
                Conv2dParams::same(3).with_stride(2, 2),
                Activation::None,
            );
        })
        .unwrap();
    }
}

/// The padded direct kernel where its blocking matters: channel counts that take several
/// reduction steps and leave a partial block of 8 output channels, maps whose flat rows end
/// in partial register blocks, both plane layouts (stride 1 with shared row padding, and
/// phase planes for strides or padding wider than the taps), dilation and batches.
#[test]
fn padded_direct_matches_reference_on_wide_layers() {
    let probe = Conv2d::new(
        &Tensor::zeros([8, 8, 3, 3]),
        None,
        Conv2dParams::same(3),
        Activation::None,
    )
    .unwrap();
    if probe.kernel() != ConvKernel::PaddedDirect {
        println!("SKIPPED the padded direct kernel: no AVX-512F on this CPU");
        return;
    }
    let mut rng = SplitMix64::new(61);
    let pad = |t, l, b, r| Padding {
        top: t,
        left: l,
        bottom: b,
        right: r,
    };
    let cases = [
        ([1, 70, 13, 11], 13, Conv2dParams::same(3)),
        ([2, 96, 10, 10], 21, Conv2dParams::same(3)),
        ([1, 40, 21, 33], 8, Conv2dParams::same(3).with_stride(2, 2)),
        (
            [1, 33, 17, 19],
            17,
            Conv2dParams::same(5).with_dilation(2, 1),
        ),
        (
            [1, 48, 9, 14],
            9,
            Conv2dParams::new(3, 3).with_pad(pad(0, 2, 1, 0)),
        ),
        // Padding wider than the taps: the phase-plane layout at stride 1.
        (
            [1, 24, 6, 7],
            10,
            Conv2dParams::new(3, 3).with_pad(pad(3, 3, 3, 3)),
        ),
        (
            [1, 64, 23, 25],
            16,
            Conv2dParams::new(3, 2)
                .with_stride(3, 2)
                .with_pad(pad(1, 0, 2, 1)),
        ),
        (
            [1, 20, 31, 30],
            7,
            Conv2dParams::new(1, 1).with_stride(2, 2),
        ),
        ([1, 130, 1, 1], 9, Conv2dParams::same(3)),
        // Rows narrower than a phase's column offset (stride 3 on 1-2 pixel maps).
        ([1, 2, 1, 1], 3, Conv2dParams::new(1, 1).with_stride(3, 3)),
        ([1, 5, 2, 1], 9, Conv2dParams::same(3).with_stride(3, 3)),
        (
            [1, 4, 1, 2],
            8,
            Conv2dParams::new(1, 1)
                .with_stride(3, 3)
                .with_pad(pad(0, 1, 0, 0)),
        ),
        // Planes larger than half the L2: copied band by band inside the tasks.
        (
            [2, 40, 120, 130],
            12,
            Conv2dParams::same(3).with_stride(2, 2),
        ),
        (
            [1, 24, 90, 97],
            10,
            Conv2dParams::same(5).with_dilation(2, 1),
        ),
    ];
    for threads in [1, 2] {
        crate::threads::with_threads(threads, || {
            for (shape, cout, p) in cases {
                let kernel = check(&mut rng, shape, cout, p, Activation::Silu);
                assert_eq!(kernel, ConvKernel::PaddedDirect, "{shape:?} {p:?}");
            }
        })
        .unwrap();
    }
    // NaN anywhere in a banded input is found by the band that copies it.
    let (shape, cout, p) = cases[cases.len() - 2];
    let x = random_tensor(&mut rng, shape);
    let w = random_tensor(&mut rng, [cout, shape[1], 3, 3]);
    let conv = Conv2d::new(&w, None, p, Activation::None).unwrap();
    let mut out = conv.forward(&x).unwrap();
    for i in (0..x.len()).step_by(x.len() / 13).chain([x.len() - 1]) {
        let mut bad = x.clone();
        bad.data_mut()[i] = f32::NAN;
        assert!(
            conv.forward_into_checked(&bad, &mut out).is_err(),
            "NaN at {i}"
        );
    }
}

/// 1x1 convolutions of 1x1 maps (squeeze-excitation, classifier heads) as matrix-vector
/// products: several images, reductions with a ragged tail, several output chunks, threads.
#[test]
fn one_pixel_maps_run_as_matrix_vector_products() {
    let mut rng = SplitMix64::new(71);
    for threads in [1, 2] {
        crate::threads::with_threads(threads, || {
            for (n, cin, cout) in [(3, 700, 150), (1, 5, 1), (2, 64, 64)] {
                let kernel = check(
                    &mut rng,
                    [n, cin, 1, 1],
                    cout,
                    Conv2dParams::new(1, 1),
                    Activation::HardSwish,
                );
                assert_eq!(kernel, ConvKernel::Gemv);
            }
        })
        .unwrap();
    }
    let w = random_tensor(&mut rng, [4, 9, 1, 1]);
    let conv = Conv2d::new(&w, None, Conv2dParams::new(1, 1), Activation::None).unwrap();
    let mut x = random_tensor(&mut rng, [2, 9, 1, 1]);
    x.data_mut()[13] = f32::NAN;
    let mut out = Tensor::zeros([2, 4, 1, 1]);
    assert!(matches!(
        conv.forward_into_checked(&x, &mut out),
        Err(crate::KernelError::NonFinite { .. })
    ));
}

/// Folding into a layer that has already run (its weights packed for the padded direct
/// kernel, or for the small-map 1x1 kernel) must not leave the old packing in use.
#[test]
fn folds_after_a_forward_use_the_new_weights() {
    let mut rng = SplitMix64::new(81);
    for (k, [h, w]) in [(3, [12, 13]), (1, [7, 7])] {
        folds_after_a_forward(&mut rng, k, [h, w]);
    }
}

fn folds_after_a_forward(rng: &mut SplitMix64, k: usize, [h, wd]: [usize; 2]) {
    let x = random_tensor(rng, [1, 48, h, wd]);
    let w = random_tensor(rng, [48, 48, k, k]);
    let p = Conv2dParams::new(k, k);
    let mut conv = Conv2d::new(&w, None, p, Activation::None).unwrap();
    conv.forward(&x).unwrap();
    conv.fold_input_affine(&rng.vec(48, 0.5, 2.0), &rng.vec(48, -1.0, 1.0))
        .unwrap();
    let fresh = |c: &Conv2d| Conv2d::new(&c.weight(), Some(c.bias()), p, Activation::None).unwrap();
    assert_eq!(conv.forward(&x).unwrap(), fresh(&conv).forward(&x).unwrap());
    let ones = vec![1.0; 48];
    conv.fold_batch_norm(&rng.vec(48, 0.5, 2.0), &ones, &ones, &ones, 1e-5)
        .unwrap();
    assert_eq!(conv.forward(&x).unwrap(), fresh(&conv).forward(&x).unwrap());
}

/// 1x1 layers whose band output outgrows one GEMM call (`gemm_conv::PW_CHUNK_FLOATS`): several
/// calls per band, a ragged last one, whole maps and row bands, one and two threads.
#[test]
fn large_pointwise_maps_in_several_gemm_calls_match_reference() {
    let mut rng = SplitMix64::new(57);
    for threads in [1, 2] {
        crate::threads::with_threads(threads, || {
            for (cin, cout, [h, w]) in [(16, 24, [111, 113]), (8, 40, [300, 257])] {
                let kernel = check(
                    &mut rng,
                    [1, cin, h, w],
                    cout,
                    Conv2dParams::new(1, 1),
                    Activation::HardSwish,
                );
                assert_eq!(kernel, ConvKernel::Pointwise);
            }
        })
        .unwrap();
    }
}

/// 1x1 layers on small maps, vectorised over output channels: every pixel remainder of the
/// 7-pixel register tiles (0-6), output channels that are not a multiple of the 48-channel
/// block, odd reductions, several images, one and two threads; NaN in a later image found.
#[test]
fn small_pointwise_maps_match_reference() {
    let mut rng = SplitMix64::new(91);
    let avx512 = padded_direct::avx512();
    if !avx512 {
        println!("no AVX-512 here: the small-map 1x1 layers run the gemm path (still checked)");
    }
    for threads in [1, 2] {
        crate::threads::with_threads(threads, || {
            for (n, cin, cout, [h, w]) in [
                (1, 32, 48, [7, 7]),
                (2, 33, 100, [5, 3]),
                (1, 40, 97, [1, 2]),
                (3, 37, 32, [5, 2]),
                (1, 64, 50, [11, 1]),
                (1, 35, 49, [3, 4]),
                (2, 48, 145, [13, 1]),
                (1, 512, 512, [7, 7]),
                (1, 32, 33, [9, 7]),
            ] {
                let kernel = check(
                    &mut rng,
                    [n, cin, h, w],
                    cout,
                    Conv2dParams::new(1, 1),
                    Activation::HardSwish,
                );
                if avx512 {
                    assert_eq!(kernel, ConvKernel::PointwiseSmall, "{cin}->{cout} {h}x{w}");
                }
            }
        })
        .unwrap();
    }
    let w = random_tensor(&mut rng, [64, 40, 1, 1]);
    let conv = Conv2d::new(&w, None, Conv2dParams::new(1, 1), Activation::None).unwrap();
    let mut x = random_tensor(&mut rng, [2, 40, 6, 6]);
    x.data_mut()[40 * 36 + 17] = f32::NAN;
    let mut out = Tensor::zeros([2, 64, 6, 6]);
    assert!(matches!(
        conv.forward_into_checked(&x, &mut out),
        Err(crate::KernelError::NonFinite { .. })
    ));
}
