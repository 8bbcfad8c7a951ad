//! Ops against hand-computed cases and naive references.
use super::*;
use crate::Value;
use ndarray::{ArrayD, IxDyn};

pub(crate) const CTX: Ctx = Ctx {
    node: "t",
    op: "t",
    arena: None,
};

fn arr(shape: &[usize], data: Vec<f32>) -> ArrayD<f32> {
    ArrayD::from_shape_vec(IxDyn(shape), data).unwrap()
}

fn run(op: &Op, inputs: &[Option<&Value>]) -> Vec<Value> {
    eval(op, inputs, CTX).unwrap()
}

#[test]
fn resize_nearest_and_linear_match_the_spec_examples() {
    let x = arr(&[1, 1, 2, 2], vec![0., 1., 2., 3.]);
    let near = Resize {
        mode: ResizeMode::Nearest(NearestMode::Floor),
        coord: CoordMode::Asymmetric,
    };
    let y = near.apply(&x, [4, 4], [2.0, 2.0], CTX).unwrap();
    let want = [
        0., 0., 1., 1., 0., 0., 1., 1., 2., 2., 3., 3., 2., 2., 3., 3.,
    ];
    assert_eq!(y.iter().copied().collect::<Vec<_>>(), want);
    let lin = Resize {
        mode: ResizeMode::Linear,
        coord: CoordMode::HalfPixel,
    };
    let y = lin.apply(&x, [4, 4], [2.0, 2.0], CTX).unwrap();
    let want = [
        0., 0.25, 0.75, 1., 0.5, 0.75, 1.25, 1.5, 1.5, 1.75, 2.25, 2.5, 2., 2.25, 2.75, 3.,
    ];
    for (a, b) in y.iter().zip(want) {
        assert!((a - b).abs() < 1e-6, "{y:?}");
    }
    let ac = Resize {
        mode: ResizeMode::Linear,
        coord: CoordMode::AlignCorners,
    };
    let y = ac.apply(&x, [3, 3], [1.5, 1.5], CTX).unwrap();
    assert_eq!(
        y.iter().copied().collect::<Vec<_>>(),
        [0., 0.5, 1., 1., 1.5, 2., 2., 2.5, 3.]
    );
}

#[test]
fn conv_transpose_matches_a_naive_scatter() {
    let mut rng = elide_kernels::rng::SplitMix64::new(5);
    for (stride, pads, k, dil) in [
        ([2, 2], [0, 0, 0, 0], [2, 2], [1, 1]),
        ([2, 1], [1, 0, 0, 1], [3, 2], [1, 1]),
        ([1, 1], [1, 1, 1, 1], [3, 3], [1, 1]),
        ([2, 3], [2, 3, 1, 2], [3, 4], [1, 1]),
        ([3, 2], [1, 2, 2, 1], [2, 3], [2, 2]),
    ] {
        let (cin, cout, h, w) = (3, 2, 4, 5);
        let x = arr(&[1, cin, h, w], rng.vec(cin * h * w, -1.0, 1.0));
        let wt = rng.vec(cin * cout * k[0] * k[1], -1.0, 1.0);
        let ct = ConvTranspose {
            weight: wt.clone(),
            shape: [cin, cout, k[0], k[1]],
            bias: vec![0.5, -0.5],
            stride,
            pads,
            dilation: dil,
            output_padding: [0, 0],
            act: elide_kernels::conv::Activation::None,
        };
        let y = ct.apply(&x, CTX).unwrap();
        // A folded affine and a fused ReLU act on the result per output channel.
        let (scale, shift) = ([1.5, -0.25], [0.125, 0.75]);
        let mut folded = ct.clone();
        folded.fold_scale_shift(&scale, &shift);
        folded.act = elide_kernels::conv::Activation::Relu;
        let yf = folded.apply(&x, CTX).unwrap();
        for ((idx, &v), &f) in y.indexed_iter().zip(yf.iter()) {
            let want = (v * scale[idx[1]] + shift[idx[1]]).max(0.0);
            assert!((f - want).abs() < 1e-5, "{idx:?}: {f} vs {want}");
        }
        let fh = (h - 1) * stride[0] + (k[0] - 1) * dil[0] + 1;
        let fw = (w - 1) * stride[1] + (k[1] - 1) * dil[1] + 1;
        let mut full = vec![0f32; cout * fh * fw];
        for ci in 0..cin {
            for co in 0..cout {
                for iy in 0..h {
                    for ix in 0..w {
                        for ky in 0..k[0] {
                            for kx in 0..k[1] {
                                full[(co * fh + iy * stride[0] + ky * dil[0]) * fw
                                    + ix * stride[1]
                                    + kx * dil[1]] += x[[0, ci, iy, ix]]
                                    * wt[((ci * cout + co) * k[0] + ky) * k[1] + kx];
                            }
                        }
                    }
                }
            }
        }
        let (ho, wo) = (fh - pads[0] - pads[2], fw - pads[1] - pads[3]);
        assert_eq!(y.shape(), [1, cout, ho, wo]);
        for co in 0..cout {
            for oy in 0..ho {
                for ox in 0..wo {
                    let want = full[(co * fh + oy + pads[0]) * fw + ox + pads[1]] + ct.bias[co];
                    assert!((y[[0, co, oy, ox]] - want).abs() < 1e-5);
                }
            }
        }
    }
}

#[test]
fn slice_handles_negative_steps_and_clamping() {
    let x = Value::f32(&[10], (0..10).map(|i| i as f32).collect()).unwrap();
    let i = |v: Vec<i64>| Value::i64(&[v.len()], v).unwrap();
    let (s, e, a, st) = (i(vec![-1]), i(vec![i64::MIN]), i(vec![0]), i(vec![-2]));
    let y = run(
        &Op::Slice,
        &[Some(&x), Some(&s), Some(&e), Some(&a), Some(&st)],
    );
    assert_eq!(
        y[0].as_f32().unwrap().iter().copied().collect::<Vec<_>>(),
        [9., 7., 5., 3., 1.]
    );
    let (s, e) = (i(vec![2]), i(vec![i64::MAX]));
    let y = run(&Op::Slice, &[Some(&x), Some(&s), Some(&e)]);
    assert_eq!(y[0].shape(), [8]);
}

#[test]
fn pooling_ceil_mode_and_padding() {
    let x = arr(&[1, 1, 5, 5], (0..25).map(|i| i as f32).collect());
    let p = Pool {
        kind: PoolKind::Max,
        kernel: [2, 2],
        stride: [2, 2],
        pads: [0; 4],
        dilation: [1, 1],
        ceil_mode: true,
    };
    let y = p.apply(&x, CTX).unwrap();
    assert_eq!(
        y.iter().copied().collect::<Vec<_>>(),
        [6., 8., 9., 16., 18., 19., 21., 23., 24.]
    );
    let avg = Pool {
        kind: PoolKind::Average {
            count_include_pad: false,
        },
        pads: [1, 1, 1, 1],
        kernel: [3, 3],
        stride: [1, 1],
        ceil_mode: false,
        ..p
    };
    let y = avg.apply(&x, CTX).unwrap();
    assert_eq!(y[[0, 0, 0, 0]], (0. + 1. + 5. + 6.) / 4.);
    let incl = Pool {
        kind: PoolKind::Average {
            count_include_pad: true,
        },
        ..avg
    };
    assert_eq!(
        incl.apply(&x, CTX).unwrap()[[0, 0, 0, 0]],
        (0. + 1. + 5. + 6.) / 9.
    );
}

#[test]
fn gemm_transposes_and_broadcasts_c() {
    let a = Value::f32(&[3, 2], vec![1., 2., 3., 4., 5., 6.]).unwrap(); // A^T is 2x3
    let b = Value::f32(&[4, 3], (0..12).map(|i| i as f32).collect()).unwrap(); // B^T is 3x4
    let c = Value::f32(&[4], vec![1., 1., 1., 1.]).unwrap();
    let op = Op::Gemm {
        alpha: 2.0,
        beta: 0.5,
        trans_a: true,
        trans_b: true,
    };
    let y = run(&op, &[Some(&a), Some(&b), Some(&c)]);
    let y = y[0].as_f32().unwrap();
    assert_eq!(y.shape(), [2, 4]);
    // y[i][j] = 2 * sum_k A[k][i] B[j][k] + 0.5
    let (av, bv) = ([[1., 2.], [3., 4.], [5., 6.]], |j: usize, k: usize| {
        (j * 3 + k) as f32
    });
    for i in 0..2 {
        for j in 0..4 {
            let want: f32 = 2.0 * (0..3).map(|k| av[k][i] * bv(j, k)).sum::<f32>() + 0.5;
            assert_eq!(y[[i, j]], want);
        }
    }
}

#[test]
fn shape_ops_compose_like_exporters_use_them() {
    let x = Value::f32(&[2, 3, 4], vec![0.0; 24]).unwrap();
    let s = run(
        &Op::Shape {
            start: 0,
            end: None,
        },
        &[Some(&x)],
    );
    assert_eq!(s[0].to_i64_vec(), [2, 3, 4]);
    let idx = Value::i64(&[], vec![-1]).unwrap();
    let g = run(&Op::Gather { axis: 0 }, &[Some(&s[0]), Some(&idx)]);
    assert_eq!(
        (g[0].shape().to_vec(), g[0].to_i64_vec()),
        (vec![], vec![4])
    );
    let u = run(
        &Op::Unsqueeze {
            axes: Some(vec![0]),
        },
        &[Some(&g[0])],
    );
    assert_eq!(u[0].shape(), [1]);
    let m1 = Value::i64(&[1], vec![-1]).unwrap();
    let shape = run(&Op::Concat { axis: 0 }, &[Some(&m1), Some(&u[0])]);
    let r = run(
        &Op::Reshape { allowzero: false },
        &[Some(&x), Some(&shape[0])],
    );
    assert_eq!(r[0].shape(), [6, 4]);
    let parts = run(
        &Op::Split {
            axis: 1,
            split: Some(vec![1, 3]),
            parts: 2,
        },
        &[Some(&r[0])],
    );
    assert_eq!(
        (parts[0].shape(), parts[1].shape()),
        (&[6usize, 1][..], &[6usize, 3][..])
    );
    let bad = Value::i64(&[1], vec![5]).unwrap();
    assert!(eval(
        &Op::Reshape { allowzero: false },
        &[Some(&x), Some(&bad)],
        CTX
    )
    .is_err());
    assert!(eval(&Op::Gather { axis: 0 }, &[Some(&s[0]), Some(&bad)], CTX).is_err());
}

#[test]
fn separable_max_pool_matches_the_window_loop() {
    let mut rng = elide_kernels::rng::SplitMix64::new(12);
    // Inputs narrower and shorter than the pads too (a 1x1 map under YOLO's 5x5 SPPF pools).
    for (k, pad, (h, w)) in [
        ([5, 5], [2, 2, 2, 2], (7, 9)),
        ([3, 2], [1, 0, 0, 1], (7, 9)),
        ([2, 3], [0, 0, 0, 0], (7, 9)),
        ([5, 5], [2, 2, 2, 2], (1, 1)),
        ([5, 5], [2, 2, 2, 2], (2, 1)),
        ([5, 3], [2, 1, 2, 1], (1, 3)),
    ] {
        let x = arr(&[1, 2, h, w], rng.vec(2 * h * w, -1.0, 1.0));
        let fast = Pool {
            kind: PoolKind::Max,
            kernel: k,
            stride: [1, 1],
            pads: pad,
            dilation: [1, 1],
            ceil_mode: false,
        };
        // Against a direct evaluation of every window.
        let y = fast.apply(&x, CTX).unwrap();
        let (h, w) = (h as isize, w as isize);
        for c in 0..2 {
            for oy in 0..y.shape()[2] {
                for ox in 0..y.shape()[3] {
                    let mut m = f32::NEG_INFINITY;
                    for ky in 0..k[0] as isize {
                        for kx in 0..k[1] as isize {
                            let (iy, ix) = (
                                oy as isize + ky - pad[0] as isize,
                                ox as isize + kx - pad[1] as isize,
                            );
                            if iy >= 0 && ix >= 0 && iy < h && ix < w {
                                m = m.max(x[[0, c, iy as usize, ix as usize]]);
                            }
                        }
                    }
                    assert_eq!(y[[0, c, oy, ox]], m);
                }
            }
        }
    }
}

/// Every window of `p` scanned tap by tap (the definition the computed tap ranges replace).
fn pool_by_scan(p: &Pool, x: &ArrayD<f32>, [ho, wo]: [usize; 2]) -> Vec<f32> {
    let (h, w) = (x.shape()[2] as isize, x.shape()[3] as isize);
    let mut out = vec![];
    for c in 0..x.shape()[1] {
        for oy in 0..ho {
            for ox in 0..wo {
                let (mut max, mut sum, mut inside, mut total) = (f32::NEG_INFINITY, 0f32, 0, 0);
                for ky in 0..p.kernel[0] {
                    let iy = (oy * p.stride[0] + ky * p.dilation[0]) as isize - p.pads[0] as isize;
                    for kx in 0..p.kernel[1] {
                        let ix =
                            (ox * p.stride[1] + kx * p.dilation[1]) as isize - p.pads[1] as isize;
                        if iy < h + p.pads[2] as isize && ix < w + p.pads[3] as isize {
                            total += 1;
                        }
                        if iy >= 0 && ix >= 0 && iy < h && ix < w {
                            let v = x[[0, c, iy as usize, ix as usize]];
                            (max, sum, inside) = (max.max(v), sum + v, inside + 1);
                        }
                    }
                }
                out.push(match p.kind {
                    PoolKind::Max => max,
                    PoolKind::Average { count_include_pad } => {
                        sum / (if count_include_pad { total } else { inside }).max(1) as f32
                    }
                });
            }
        }
    }
    out
}

#[test]
fn pool_tap_ranges_match_a_scan_of_every_window() {
    let mut rng = elide_kernels::rng::SplitMix64::new(5);
    let kinds = [
        PoolKind::Max,
        PoolKind::Average {
            count_include_pad: false,
        },
        PoolKind::Average {
            count_include_pad: true,
        },
    ];
    // (kernel, stride, pads, dilation, ceil): strided, dilated, ceil-mode windows past the
    // padding, and kernels wider than the image (stride 1 too: the separable path).
    let cases = [
        ([3, 3], [2, 2], [1, 1, 1, 1], [1, 1], true),
        ([2, 3], [3, 2], [0, 1, 1, 2], [2, 1], true),
        ([3, 2], [1, 2], [2, 1, 0, 1], [1, 3], false),
        ([9, 12], [1, 1], [8, 11, 8, 11], [1, 1], false),
        ([9, 12], [4, 5], [8, 11, 3, 0], [1, 1], true),
        ([1, 1], [3, 3], [0, 0, 0, 0], [1, 1], true),
    ];
    for (kernel, stride, pads, dilation, ceil_mode) in cases {
        for kind in kinds {
            let p = Pool {
                kind,
                kernel,
                stride,
                pads,
                dilation,
                ceil_mode,
            };
            let x = arr(&[1, 2, 7, 5], rng.vec(70, -1.0, 1.0));
            let y = p.apply(&x, CTX).unwrap();
            let [ho, wo] = [y.shape()[2], y.shape()[3]];
            let want = pool_by_scan(&p, &x, [ho, wo]);
            assert_eq!(y.iter().copied().collect::<Vec<_>>(), want, "{p:?}");
        }
    }
}

#[test]
fn transpose_matches_ndarray_for_every_permutation() {
    let mut rng = elide_kernels::rng::SplitMix64::new(21);
    let shapes: [&[usize]; 5] = [&[5], &[3, 7], &[2, 3, 5], &[2, 1, 4, 3], &[3, 0, 2]];
    for shape in shapes {
        let n = shape.iter().product();
        let x = arr(shape, rng.vec(n, -1.0, 1.0));
        let rank = shape.len();
        // Every permutation of the axes.
        let mut perms = vec![vec![]];
        for _ in 0..rank {
            perms = perms
                .into_iter()
                .flat_map(|p: Vec<usize>| {
                    (0..rank)
                        .filter(|a| !p.contains(a))
                        .map(|a| [p.clone(), vec![a]].concat())
                        .collect::<Vec<_>>()
                })
                .collect();
        }
        for perm in perms {
            let got = shape::transpose(&Value::F32(x.clone()), &perm, CTX).unwrap();
            let want = x
                .view()
                .permuted_axes(IxDyn(&perm))
                .as_standard_layout()
                .into_owned();
            assert_eq!(got, Value::F32(want), "{shape:?} {perm:?}");
        }
    }
}

/// Batch-norm per channel of `[N, C, ...]` inputs of rank 2 to 4 (batches, odd planes) and the
/// global average pool against per-plane f64 means, on planes shorter and longer than its
/// eight partial sums.
#[test]
fn batch_norm_and_global_average_match_naive_per_channel_loops() {
    let mut rng = elide_kernels::rng::SplitMix64::new(21);
    for shape in [
        vec![2, 3],
        vec![2, 3, 7],
        vec![3, 4, 5, 9],
        vec![1, 2, 1, 1],
    ] {
        let (n, c) = (shape[0], shape[1]);
        let plane: usize = shape[2..].iter().product();
        let data = rng.vec(n * c * plane, -3.0, 3.0);
        let x = Value::F32(arr(&shape, data.clone()));
        let stats: Vec<Value> = [(0.5, 2.0), (-1.0, 1.0), (-1.0, 1.0), (0.1, 2.0)]
            .iter()
            .map(|&(lo, hi)| Value::F32(arr(&[c], rng.vec(c, lo, hi))))
            .collect();
        let s: Vec<Vec<f32>> = stats
            .iter()
            .map(|v| v.as_f32().unwrap().iter().copied().collect())
            .collect();
        let eps = 1e-3;
        let mut inputs = vec![Some(&x)];
        inputs.extend(stats.iter().map(Some));
        let y = run(&Op::BatchNorm { eps }, &inputs).remove(0);
        for (i, (&got, &v)) in y.as_f32().unwrap().iter().zip(&data).enumerate() {
            let ch = i / plane % c;
            let want = (v - s[2][ch]) / (s[3][ch] + eps).sqrt() * s[0][ch] + s[1][ch];
            assert!(
                (got - want).abs() < 1e-5,
                "{shape:?} at {i}: {got} vs {want}"
            );
        }
        if shape.len() < 3 {
            continue;
        }
        let g = run(&Op::GlobalAveragePool, &[Some(&x)]).remove(0);
        let g = g.as_f32().unwrap();
        let mut want_shape = vec![n, c];
        want_shape.extend(std::iter::repeat_n(1, shape.len() - 2));
        assert_eq!(g.shape(), want_shape.as_slice());
        for (p, &got) in data.chunks(plane).zip(g.iter()) {
            let want = p.iter().map(|&v| v as f64).sum::<f64>() / plane as f64;
            assert!(
                (got as f64 - want).abs() < 1e-6,
                "{shape:?}: {got} vs {want}"
            );
        }
    }
}

/// Every op with a masked form, on random inputs and random, empty and full regions: equal to
/// the dense op on the marked pixels, zero elsewhere.
#[test]
fn masked_ops_equal_dense_on_their_runs_and_zero_elsewhere() {
    use super::runs::Runs;
    let mut rng = elide_kernels::rng::SplitMix64::new(33);
    let mut f32v = |shape: &[usize]| {
        let n = shape.iter().product();
        Value::F32(arr(shape, rng.vec(n, -2.0, 2.0)))
    };
    let (n, c, h, w) = (2, 3, 24, 41);
    let x = f32v(&[n, c, h, w]);
    let x2 = f32v(&[n, 2, h, w]);
    let xp = f32v(&[n, c, 2 * h, 2 * w]);
    let others = [
        f32v(&[n, c, h, w]),
        f32v(&[1, c, 1, 1]),
        f32v(&[]),
        f32v(&[c, 1, 1]),
        f32v(&[n, 1, h, w]),
        f32v(&[1, 1, 1, w]),
    ];
    let stats: Vec<Value> = (0..4)
        .map(|i| Value::F32(arr(&[c], vec![0.5 + i as f32 * 0.25; c])))
        .collect();
    let small = f32v(&[n, c, 12, 4]);
    let sizes = Value::i64(&[4], vec![n as i64, c as i64, 28, 45]).unwrap();
    let empty = Value::F32(arr(&[0], vec![]));
    let pool = |kind, k: usize, s: usize, p: usize| Pool {
        kind,
        kernel: [k, k],
        stride: [s, s],
        pads: [p; 4],
        dilation: [1, 1],
        ceil_mode: false,
    };
    let convt = |k: usize, s: usize, p: usize, d: usize| {
        Op::ConvTranspose(Box::new(ConvTranspose {
            weight: (0..c * 2 * k * k)
                .map(|i| ((i * 37 % 17) as f32 - 8.0) / 8.0)
                .collect(),
            shape: [c, 2, k, k],
            bias: vec![0.25, -0.5],
            stride: [s, s],
            pads: [p; 4],
            dilation: [d, d],
            output_padding: [0, 0],
            act: elide_kernels::conv::Activation::Relu,
        }))
    };
    let mut cases: Vec<(Op, Vec<Option<&Value>>)> = vec![
        (Op::Unary(Unary::Relu), vec![Some(&x)]),
        (Op::Unary(Unary::Tanh), vec![Some(&x)]),
        (
            Op::BatchNorm { eps: 1e-3 },
            std::iter::once(Some(&x))
                .chain(stats.iter().map(Some))
                .collect(),
        ),
        (Op::Concat { axis: 1 }, vec![Some(&x), Some(&x2)]),
        (Op::Concat { axis: -3 }, vec![Some(&x2), Some(&x)]),
        (Op::Pool(pool(PoolKind::Max, 3, 1, 1)), vec![Some(&x)]),
        (
            Op::Pool(pool(
                PoolKind::Average {
                    count_include_pad: false,
                },
                2,
                2,
                0,
            )),
            vec![Some(&xp)],
        ),
        (
            Op::Resize(Resize {
                mode: ResizeMode::Nearest(NearestMode::Floor),
                coord: CoordMode::Asymmetric,
            }),
            vec![Some(&small), None, None, Some(&sizes)],
        ),
        (
            Op::Resize(Resize {
                mode: ResizeMode::Linear,
                coord: CoordMode::HalfPixel,
            }),
            vec![Some(&small), Some(&empty), Some(&empty), Some(&sizes)],
        ),
        (convt(2, 2, 0, 1), vec![Some(&x)]),
        (convt(3, 2, 1, 1), vec![Some(&x)]),
        (convt(2, 1, 0, 2), vec![Some(&x)]),
    ];
    for (i, o) in others.iter().enumerate() {
        let op = [Binary::Add, Binary::Sub, Binary::Mul, Binary::Div][i % 4];
        cases.push((Op::Binary(op), vec![Some(&x), Some(o)]));
        cases.push((Op::Binary(op), vec![Some(o), Some(&x)]));
    }
    let mut mask_rng = elide_kernels::rng::SplitMix64::new(34);
    // Outputs come from an arena holding NaN-filled buffers, as a run's recycled ones hold
    // stale values: every output element must be written.
    let arena = crate::arena::Arena::default();
    let ctx = Ctx {
        arena: Some(&arena),
        ..CTX
    };
    for (op, inputs) in &cases {
        let dense = run(op, inputs).remove(0);
        let d = dense.as_f32().unwrap();
        let &[dn, _, dh, dw] = d.shape() else {
            panic!("{op:?}: 4-D output expected")
        };
        // Random pixels at several densities, and a band of rows (where a ConvTranspose
        // skips most input rows; with more rows needed it declines and runs densely).
        let band = |i: usize| (dh / 4..dh / 3).contains(&(i / dw % dh));
        for fill in [0.0, 0.03, 0.4, 1.0, -1.0] {
            let px: Vec<bool> = (0..dn * dh * dw)
                .map(|i| {
                    if fill < 0.0 {
                        band(i)
                    } else {
                        mask_rng.uniform() < fill
                    }
                })
                .collect();
            let runs = Runs::from_mask([dn, dh, dw], &px);
            assert!(d.len() >= 4096, "{op:?}: output too small for the arena");
            arena.give(vec![f32::NAN; d.len()]);
            let Some(mut got) = eval_runs(op, inputs, &runs, ctx).unwrap() else {
                assert!(
                    matches!(op, Op::ConvTranspose(_)) && fill > 0.0,
                    "{op:?} fill {fill} has a masked form"
                );
                continue;
            };
            let got = got.remove(0);
            let g = got.as_f32().unwrap();
            assert_eq!(g.shape(), d.shape(), "{op:?}");
            // The runs hold every marked pixel (and short gaps between them).
            let in_runs = |n: usize, y: usize, x: usize| runs.row(n, y).any(|s| s.contains(&x));
            for (i, _) in px.iter().enumerate().filter(|(_, &p)| p) {
                assert!(in_runs(i / (dh * dw), i / dw % dh, i % dw));
            }
            for (idx, &v) in g.indexed_iter() {
                let marked = in_runs(idx[0], idx[2], idx[3]);
                let want = if marked { d[&idx] } else { 0.0 };
                assert!(
                    (v - want).abs() <= 1e-5 * (1.0 + want.abs()),
                    "{op:?} fill {fill} at {idx:?}: {v} vs {want}"
                );
            }
        }
    }
}

/// Unary and Binary in place on the dying operand: on the runs equal to the dense op (either
/// operand dying, every operator, broadcast partners), elsewhere untouched; a dying operand
/// that would need broadcasting is refused and left as it was.
#[test]
fn masked_ops_in_place_touch_only_their_runs() {
    use super::runs::Runs;
    let mut rng = elide_kernels::rng::SplitMix64::new(35);
    let (n, c, h, w) = (2, 3, 9, 150);
    let x = arr(&[n, c, h, w], rng.vec(n * c * h * w, 0.5, 2.0));
    let others: Vec<ArrayD<f32>> = [
        vec![n, c, h, w],
        vec![1, c, 1, 1],
        vec![],
        vec![n, 1, h, w],
        vec![1, 1, 1, w],
        vec![c, 1, 1],
    ]
    .iter()
    .map(|s| arr(s, rng.vec(s.iter().product(), 0.5, 2.0)))
    .collect();
    let px: Vec<bool> = (0..n * h * w).map(|_| rng.uniform() < 0.01).collect();
    let runs = Runs::from_mask([n, h, w], &px);
    let in_runs = |idx: &[usize]| runs.row(idx[0], idx[2]).any(|s| s.contains(&idx[3]));
    let check = |op: &Op, got: &ArrayD<f32>, dense: &ArrayD<f32>| {
        for ((idx, &g), (&d, &orig)) in got.indexed_iter().zip(dense.iter().zip(x.iter())) {
            let want = if in_runs(&[idx[0], idx[1], idx[2], idx[3]]) {
                d
            } else {
                orig
            };
            assert!(
                (g - want).abs() <= 1e-6 * want.abs().max(1.0),
                "{op:?} {idx:?}"
            );
        }
    };
    for u in [Unary::Relu, Unary::Tanh] {
        let mut y = x.clone();
        assert!(eval_runs_in_place(&Op::Unary(u), &mut y, None, true, &runs));
        let dense = run(&Op::Unary(u), &[Some(&Value::F32(x.clone()))]).remove(0);
        check(&Op::Unary(u), &y, dense.as_f32().unwrap());
    }
    for b in [Binary::Add, Binary::Sub, Binary::Mul, Binary::Div] {
        for o in &others {
            for left in [true, false] {
                let op = Op::Binary(b);
                let mut y = x.clone();
                assert!(eval_runs_in_place(&op, &mut y, Some(o), left, &runs));
                let (xv, ov) = (Value::F32(x.clone()), Value::F32(o.clone()));
                let ins = if left {
                    [Some(&xv), Some(&ov)]
                } else {
                    [Some(&ov), Some(&xv)]
                };
                let dense = run(&op, &ins).remove(0);
                check(&op, &y, dense.as_f32().unwrap());
            }
        }
    }
    // The dying operand is the broadcast one: the output is larger than it.
    let mut small = others[1].clone();
    let before = small.clone();
    assert!(!eval_runs_in_place(
        &Op::Binary(Binary::Add),
        &mut small,
        Some(&x),
        true,
        &runs
    ));
    assert_eq!(small, before);
    let rank5 = arr(&[1, 1, c, 1, 1], vec![1.0; c]);
    let mut y = x.clone();
    assert!(!eval_runs_in_place(
        &Op::Binary(Binary::Add),
        &mut y,
        Some(&rank5),
        true,
        &runs
    ));
    assert_eq!(y, x);
}
