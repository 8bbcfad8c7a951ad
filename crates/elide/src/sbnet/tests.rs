//! Sparse layers against their dense versions on random inputs, sizes and masks.
use super::*;
use elide_kernels::conv::{Activation, Conv2d, Conv2dParams, Padding};
use elide_kernels::rng::SplitMix64;
use elide_kernels::sparse::{BlockIndex, Mask};
use elide_kernels::{rel_err, Tensor};

fn tensor(rng: &mut SplitMix64, shape: [usize; 4], scale: f32) -> Tensor {
    Tensor::from_vec(shape, rng.vec(shape.iter().product(), -scale, scale)).unwrap()
}

fn conv(rng: &mut SplitMix64, cin: usize, cout: usize, p: Conv2dParams, act: Activation) -> Conv2d {
    let w = tensor(rng, [cout, cin / p.groups, p.kernel[0], p.kernel[1]], 0.5);
    Conv2d::new(&w, Some(&rng.vec(cout, -0.2, 0.2)), p, act).unwrap()
}

fn random_mask(rng: &mut SplitMix64, n: usize, h: usize, w: usize, density: f32) -> Mask {
    Mask::from_vec(
        [n, h, w],
        (0..n * h * w)
            .map(|_| (rng.uniform() < density) as u8 as f32)
            .collect(),
    )
    .unwrap()
}

/// Checks `got` against `dense` inside the plan's active output blocks and against `base` outside.
fn check_blocks(got: &Tensor, dense: &Tensor, base: &Tensor, plan: &Plan) {
    let [n, c, h, w] = got.shape();
    let Plan::Sparse { grids, blocks, .. } = plan else {
        assert!(rel_err(got.data(), dense.data()) < 1e-5);
        return;
    };
    let g = &grids.output;
    let mut active = vec![false; n * h * w];
    for b in blocks {
        let [y0, x0] = g.origin(b.by as usize, b.bx as usize);
        for y in y0.max(0) as usize..((y0 + g.size[0] as isize) as usize).min(h) {
            for x in x0.max(0) as usize..((x0 + g.size[1] as isize) as usize).min(w) {
                active[(b.n as usize * h + y) * w + x] = true;
            }
        }
    }
    let (mut inside, mut want_in) = (Vec::new(), Vec::new());
    for i in 0..got.len() {
        let (b, pix) = (i / (c * h * w), i % (h * w));
        if active[b * h * w + pix] {
            inside.push(got.data()[i]);
            want_in.push(dense.data()[i]);
        } else {
            assert_eq!(
                got.data()[i],
                base.data()[i],
                "outside active blocks the output is the base"
            );
        }
    }
    let err = rel_err(&inside, &want_in);
    assert!(err < 1e-5, "relative error {err} in active blocks");
}

#[test]
fn sparse_conv_equals_dense_in_active_blocks() {
    let mut rng = SplitMix64::new(21);
    for case in 0..80 {
        // Dense, grouped and depthwise layers.
        let groups = [1, 1, 2, 3][case % 4];
        let cin = groups * if case % 4 == 3 { 1 } else { rng.int(1, 4) };
        let (n, cout) = (rng.int(1, 2), groups * rng.int(1, 4));
        let k = rng.int(1, 5);
        let p = Conv2dParams::new(k, rng.int(1, 4))
            .with_stride(rng.int(1, 2), rng.int(1, 2))
            .with_dilation(rng.int(1, 2), rng.int(1, 2))
            .with_groups(groups)
            .with_pad(Padding {
                top: rng.int(0, 2),
                left: rng.int(0, 2),
                bottom: rng.int(0, 2),
                right: rng.int(0, 2),
            });
        let [rh, rw] = p.receptive_field();
        let (h, w) = (rng.int(rh.max(3), 37), rng.int(rw.max(3), 41));
        let x = tensor(&mut rng, [n, cin, h, w], 1.0);
        let layer = SparseConv2d::new(conv(&mut rng, cin, cout, p, Activation::Relu));
        let dense = layer.conv().forward(&x).unwrap();
        let (ho, wo) = p.out_size(h, w).unwrap();
        let block = rng.int(1, ho.min(wo));
        let layer = layer.with_block_size(if case % 4 == 0 {
            BlockSize::Auto
        } else {
            BlockSize::Fixed(block)
        });
        // Sparse masks and dense ones (long runs of adjacent blocks).
        let density = rng.uniform() * if case % 3 == 0 { 0.5 } else { 0.05 };
        let mask = random_mask(&mut rng, n, h, w, density);
        let base = tensor(&mut rng, dense.shape(), 1.0);
        let mut got = base.clone();
        let plan = layer.forward(&x, &mask, &mut got).unwrap();
        check_blocks(&got, &dense, &base, &plan);
    }
}

#[test]
fn residual_units_equal_dense_in_active_blocks_including_borders() {
    let mut rng = SplitMix64::new(22);
    for case in 0..48 {
        let (n, c) = (rng.int(1, 2), rng.int(2, 9));
        let (h, w) = (rng.int(5, 40), rng.int(5, 40));
        let unit = if case % 3 == 0 {
            SparseResidual::basic(
                conv(&mut rng, c, c, Conv2dParams::same(3), Activation::None),
                conv(&mut rng, c, c, Conv2dParams::same(3), Activation::None),
            )
        } else if case % 3 == 1 {
            // MobileNet-style: expand, dilated depthwise 3x3, project.
            let (m, d) = (c * rng.int(1, 3), rng.int(1, 2));
            let dw = Conv2dParams::new(3, 3)
                .with_dilation(d, d)
                .with_pad(Padding::uniform(d))
                .with_groups(m);
            SparseResidual::new(
                vec![
                    conv(&mut rng, c, m, Conv2dParams::new(1, 1), Activation::Relu6),
                    conv(&mut rng, m, m, dw, Activation::Relu6),
                    conv(&mut rng, m, c, Conv2dParams::new(1, 1), Activation::None),
                ],
                Activation::None,
            )
        } else {
            let m = rng.int(1, 4);
            SparseResidual::bottleneck(
                conv(&mut rng, c, m, Conv2dParams::new(1, 1), Activation::None),
                conv(&mut rng, m, m, Conv2dParams::same(3), Activation::None),
                conv(&mut rng, m, c, Conv2dParams::new(1, 1), Activation::None),
            )
        }
        .unwrap()
        .with_block_size(BlockSize::Fixed(rng.int(1, h.min(w))));
        let x = tensor(&mut rng, [n, c, h, w], 1.0);
        let dense = unit.forward_dense(&x).unwrap();
        // Masks touching every border, so edge blocks are exercised.
        let mask = Mask::from_fn([n, h, w], |_, y, xx| {
            y == 0 || xx == 0 || y == h - 1 || xx == w - 1 || (y * 7 + xx) % 23 == 0
        });
        let mut got = x.clone();
        let plan = unit.forward_in_place(&mut got, &mask).unwrap();
        check_blocks(&got, &dense, &x, &plan);
    }
}

#[test]
fn auto_plan_falls_back_to_dense_when_mask_is_full_and_skips_when_empty() {
    let mut rng = SplitMix64::new(23);
    let layer = SparseConv2d::new(conv(
        &mut rng,
        16,
        16,
        Conv2dParams::same(3),
        Activation::None,
    ));
    let full = Mask::from_vec([1, 96, 96], vec![1.0; 96 * 96]).unwrap();
    assert!(matches!(
        layer.plan([1, 16, 96, 96], &full).unwrap(),
        Plan::Dense { .. }
    ));
    let sparse = Mask::from_fn([1, 96, 96], |_, y, x| y < 12 && x < 12);
    assert!(matches!(
        layer.plan([1, 16, 96, 96], &sparse).unwrap(),
        Plan::Sparse { .. }
    ));
    let empty = Mask::from_vec([1, 96, 96], vec![0.0; 96 * 96]).unwrap();
    let plan = layer.plan([1, 16, 96, 96], &empty).unwrap();
    assert!(matches!(&plan, Plan::Sparse { blocks, .. } if blocks.is_empty()));
    let x = tensor(&mut rng, [1, 16, 96, 96], 1.0);
    let base = tensor(&mut rng, [1, 16, 96, 96], 1.0);
    let mut out = base.clone();
    layer.run(&x, &plan, &mut out).unwrap();
    assert_eq!(out, base);
}

#[test]
fn bad_input_is_a_clear_error() {
    let mut rng = SplitMix64::new(24);
    let layer = SparseConv2d::new(conv(
        &mut rng,
        4,
        4,
        Conv2dParams::same(3),
        Activation::None,
    ));
    let x = tensor(&mut rng, [1, 4, 16, 16], 1.0);
    let mut base = Tensor::zeros([1, 4, 16, 16]);
    let wrong_mask = Mask::from_vec([1, 16, 15], vec![1.0; 240]).unwrap();
    let e = layer.forward(&x, &wrong_mask, &mut base).unwrap_err();
    assert!(e.to_string().contains("mask"), "{e}");
    let mask = Mask::from_vec([1, 16, 16], vec![1.0; 256]).unwrap();
    let big = layer.clone().with_block_size(BlockSize::Fixed(17));
    assert!(big
        .forward(&x, &mask, &mut base)
        .unwrap_err()
        .to_string()
        .contains("larger"));
    assert!(layer
        .clone()
        .with_block_size(BlockSize::Fixed(0))
        .forward(&x, &mask, &mut base)
        .is_err());
    assert!(layer
        .forward(&Tensor::zeros([1, 4, 0, 16]), &mask, &mut base)
        .is_err());
    assert!(layer
        .forward(&Tensor::zeros([1, 3, 16, 16]), &mask, &mut base)
        .is_err());
    let mut small_base = Tensor::zeros([1, 4, 8, 8]);
    assert!(layer.forward(&x, &mask, &mut small_base).is_err());
    let mut nan = x.clone();
    nan.data_mut()[17] = f32::NAN;
    let fixed = layer.clone().with_block_size(BlockSize::Fixed(4));
    assert!(fixed
        .forward(&nan, &mask, &mut base)
        .unwrap_err()
        .to_string()
        .contains("non-finite"));
    assert!(
        layer.forward(&nan, &mask, &mut base).is_err(),
        "dense fallback checks too"
    );
    let bad = BlockIndex {
        n: 0,
        by: 99,
        bx: 0,
    };
    let Plan::Sparse { grids, .. } = fixed.plan([1, 4, 16, 16], &mask).unwrap() else {
        panic!()
    };
    let plan = Plan::Sparse {
        block: 4,
        grids,
        blocks: vec![bad],
    };
    assert!(fixed.run(&x, &plan, &mut base).is_err());
    let conv1 = conv(
        &mut rng,
        4,
        4,
        Conv2dParams::same(3).with_stride(2, 2),
        Activation::None,
    );
    let conv2 = conv(&mut rng, 4, 4, Conv2dParams::same(3), Activation::None);
    assert!(
        SparseResidual::basic(conv1, conv2).is_err(),
        "strided branch rejected"
    );
}

#[test]
fn backbone_exact_mode_equals_dense_inside_the_mask() {
    let mut rng = SplitMix64::new(25);
    let net = Backbone::seeded(3, 8, 3, 9)
        .unwrap()
        .with_block_size(BlockSize::Fixed(8));
    let (h, w) = (53, 70);
    let x = tensor(&mut rng, [1, 3, h, w], 1.0);
    let dense = net.forward_dense(&x).unwrap();
    let mask = Mask::from_fn([1, h, w], |_, y, x| {
        (y as isize - 30).pow(2) + (x as isize - 60).pow(2) < 80
    });
    let plans = net.plan(x.shape(), &mask, NetMode::Exact).unwrap();
    let got = net.run(&x, &plans).unwrap();
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for c in 0..8 {
        for (i, &m) in mask.data().iter().enumerate() {
            if m > 0.5 {
                a.push(got.plane(0, c)[i]);
                b.push(dense.plane(0, c)[i]);
            }
        }
    }
    assert!(
        rel_err(&a, &b) < 1e-5,
        "exact mode error {}",
        rel_err(&a, &b)
    );
    let fast = net
        .run(&x, &net.plan(x.shape(), &mask, NetMode::Fast).unwrap())
        .unwrap();
    assert!(
        fast.rel_err(&dense).unwrap() > 1e-3,
        "fast mode skips work outside the mask"
    );
}

#[test]
fn residual_rejects_nan_in_what_it_reads() {
    let mut rng = SplitMix64::new(25);
    let c = 4;
    let unit = SparseResidual::bottleneck(
        conv(&mut rng, c, 2, Conv2dParams::new(1, 1), Activation::None),
        conv(&mut rng, 2, 2, Conv2dParams::same(3), Activation::None),
        conv(&mut rng, 2, c, Conv2dParams::new(1, 1), Activation::None),
    )
    .unwrap();
    let mut x = tensor(&mut rng, [1, c, 20, 20], 1.0);
    x.data_mut()[3 * 400 + 5 * 20 + 7] = f32::INFINITY;
    let full = Mask::from_fn([1, 20, 20], |_, _, _| true);
    let corner = Mask::from_fn([1, 20, 20], |_, y, xx| y < 8 && xx < 10);
    let far = Mask::from_fn([1, 20, 20], |_, y, xx| y > 16 && xx > 16);
    for (mask, size, fails) in [
        (&full, BlockSize::Auto, true),       // dense fallback
        (&corner, BlockSize::Fixed(4), true), // sparse, the value is in a window
        (&far, BlockSize::Fixed(2), false),   // sparse, the value is never read
    ] {
        let u = unit.clone().with_block_size(size);
        let dense = matches!(u.plan(x.shape(), mask).unwrap(), Plan::Dense { .. });
        assert_eq!(dense, size == BlockSize::Auto);
        let mut got = x.clone();
        let r = u.forward_in_place(&mut got, mask);
        assert_eq!(r.is_err(), fails, "{r:?}");
        if fails {
            assert!(r.unwrap_err().to_string().contains("non-finite"));
        }
        // The dense fallback checks before it writes anything.
        if fails && dense {
            assert_eq!(
                got.data()[..1200],
                x.data()[..1200],
                "input changed on error"
            );
        }
    }
}
