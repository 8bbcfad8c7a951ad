//! Forward equality with elide-kernels, sparse-vs-dense conv, and input validation.
use super::*;
use candle_core::{DType, Device, Tensor};
use elide_kernels::conv::{Activation, Conv2dParams, Padding};
use elide_kernels::rng::SplitMix64;
use elide_kernels::sparse::{sparse_gather, sparse_scatter, BlockGrid, BlockIndex, ConvBlocks};

fn rand_pair(rng: &mut SplitMix64, dims: [usize; 4]) -> (Tensor, elide_kernels::Tensor) {
    let v = rng.vec(dims.iter().product(), -1.0, 1.0);
    let c = Tensor::from_vec(v.clone(), dims.to_vec(), &Device::Cpu).unwrap();
    (c, elide_kernels::Tensor::from_vec(dims, v).unwrap())
}

fn to_vec(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

/// A random subset (in random order, possibly empty) of the grid's windows.
fn rand_blocks(rng: &mut SplitMix64, n: usize, grid: &BlockGrid) -> Vec<BlockIndex> {
    let mut out = Vec::new();
    for i in 0..n {
        for by in 0..grid.count[0] {
            for bx in 0..grid.count[1] {
                if rng.uniform() < 0.6 {
                    let b = BlockIndex {
                        n: i as u32,
                        by: by as u32,
                        bx: bx as u32,
                    };
                    out.insert(rng.int(0, out.len()), b);
                }
            }
        }
    }
    out
}

/// A grid whose windows start before the image and reach past it; `overlap` makes
/// the stride smaller than the window.
fn rand_grid(rng: &mut SplitMix64, h: usize, w: usize, overlap: bool) -> BlockGrid {
    let size = [rng.int(1, 5), rng.int(1, 5)];
    let stride = size.map(|s| {
        if overlap {
            rng.int(1, (s - 1).max(1))
        } else {
            s + rng.int(0, 1)
        }
    });
    let offset = [-(rng.int(0, 2) as isize), -(rng.int(0, 2) as isize)];
    let count = [h / stride[0] + 2, w / stride[1] + 2];
    BlockGrid {
        size,
        stride,
        offset,
        count,
    }
}

#[test]
fn ops_match_kernels() {
    let mut rng = SplitMix64::new(11);
    for case in 0..40 {
        let dims = [rng.int(1, 2), rng.int(1, 3), rng.int(1, 11), rng.int(1, 11)];
        let (x, kx) = rand_pair(&mut rng, dims);
        let grid = rand_grid(&mut rng, dims[2], dims[3], case % 2 == 0);
        let blocks = rand_blocks(&mut rng, dims[0], &grid);
        let g = gather(&x, &blocks, &grid).unwrap();
        let kg = sparse_gather(&kx, &blocks, &grid).unwrap();
        assert_eq!(g.dims(), kg.shape(), "case {case}");
        assert_eq!(to_vec(&g), kg.data(), "gather, case {case}");

        let (stack, kstack) = rand_pair(&mut rng, kg.shape());
        let (base, kbase) = rand_pair(&mut rng, dims);
        for mode in [ScatterMode::Add, ScatterMode::Write] {
            if mode == ScatterMode::Write && grid.overlaps() {
                continue;
            }
            let out = scatter(&base, &stack, &blocks, &grid, mode).unwrap();
            let mut kout = kbase.clone();
            sparse_scatter(&kstack, &blocks, &grid, &mut kout, mode, Activation::None).unwrap();
            assert_eq!(to_vec(&out), kout.data(), "{mode:?}, case {case}");
        }
    }
}

#[test]
fn sparse_conv_matches_dense_in_active_blocks() {
    let mut rng = SplitMix64::new(5);
    let geoms = [
        (Conv2dParams::same(3), 3, 4, Activation::None),
        (
            Conv2dParams::same(3).with_stride(2, 2),
            2,
            3,
            Activation::Relu,
        ),
        (
            Conv2dParams::new(3, 3)
                .with_pad(Padding::uniform(2))
                .with_dilation(2, 2),
            4,
            2,
            Activation::Silu,
        ),
        (
            Conv2dParams::same(3).with_groups(2),
            4,
            6,
            Activation::HardSwish,
        ),
        (Conv2dParams::new(1, 1), 3, 5, Activation::LeakyRelu(0.1)),
    ];
    for (i, &(p, cin, cout, act)) in geoms.iter().enumerate() {
        let conv =
            TrainableSparseConv2d::init(cin, cout, p, act, DType::F64, &Device::Cpu, i as u64)
                .unwrap();
        let (x, _) = rand_pair(&mut rng, [2, cin, 13, 11]);
        let x = x.to_dtype(DType::F64).unwrap();
        let dense = conv.forward_dense(&x).unwrap();
        let cb = ConvBlocks::new(&p, [13, 11], [3, 4]).unwrap();
        let blocks = rand_blocks(&mut rng, 2, &cb.output);
        let base = (dense.ones_like().unwrap() * 1e3).unwrap();
        let sparse = conv.forward(&x, &blocks, &cb, &base).unwrap();
        // Expected: the dense output inside active blocks, the base elsewhere.
        let mask = scatter(
            &dense.zeros_like().unwrap(),
            &gather(&dense.ones_like().unwrap(), &blocks, &cb.output).unwrap(),
            &blocks,
            &cb.output,
            ScatterMode::Write,
        )
        .unwrap();
        let want = ((&dense * &mask).unwrap() + (&base * (1.0 - &mask).unwrap()).unwrap()).unwrap();
        let err = (sparse - want)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f64>()
            .unwrap();
        assert!(err < 1e-12, "geometry {i}: max error {err}");
    }
}

#[test]
fn bad_inputs_are_errors() {
    let dev = Device::Cpu;
    let x = Tensor::zeros((1, 2, 6, 6), DType::F32, &dev).unwrap();
    let grid = BlockGrid {
        size: [3, 3],
        stride: [3, 3],
        offset: [0, 0],
        count: [2, 2],
    };
    let ok = [BlockIndex { n: 0, by: 1, bx: 1 }];
    assert!(gather(&x, &ok, &grid).is_ok());
    for bad in [
        BlockIndex { n: 1, by: 0, bx: 0 },
        BlockIndex { n: 0, by: 2, bx: 0 },
        BlockIndex { n: 0, by: 0, bx: 2 },
    ] {
        assert!(gather(&x, &[bad], &grid).is_err());
        let stack = Tensor::zeros((1, 2, 3, 3), DType::F32, &dev).unwrap();
        assert!(scatter(&x, &stack, &[bad], &grid, ScatterMode::Add).is_err());
    }
    let wrong = Tensor::zeros((1, 2, 3, 2), DType::F32, &dev).unwrap();
    assert!(scatter(&x, &wrong, &ok, &grid, ScatterMode::Add).is_err());
    let f64_stack = Tensor::zeros((1, 2, 3, 3), DType::F64, &dev).unwrap();
    assert!(scatter(&x, &f64_stack, &ok, &grid, ScatterMode::Add).is_err());
    let u8x = Tensor::zeros((1, 2, 6, 6), DType::U8, &dev).unwrap();
    assert!(gather(&u8x, &ok, &grid).is_err());
    assert!(gather(&x.flatten_all().unwrap(), &ok, &grid).is_err());
    let twice = [ok[0], ok[0]];
    let stack2 = Tensor::zeros((2, 2, 3, 3), DType::F32, &dev).unwrap();
    assert!(scatter(&x, &stack2, &twice, &grid, ScatterMode::Write).is_err());
    assert!(scatter(&x, &stack2, &twice, &grid, ScatterMode::Add).is_ok());
    // A strided (non-contiguous) input is made contiguous, not rejected.
    let xt = x.transpose(2, 3).unwrap();
    assert!(gather(&xt, &ok, &grid).is_ok());

    let p = Conv2dParams::same(3);
    let conv = TrainableSparseConv2d::init(2, 3, p, Activation::None, DType::F32, &dev, 1).unwrap();
    let cb = ConvBlocks::new(&p, [6, 6], [3, 3]).unwrap();
    let base = Tensor::zeros((1, 3, 6, 6), DType::F32, &dev).unwrap();
    assert!(conv.forward(&x, &ok, &cb, &base).is_ok());
    assert!(conv
        .forward(&x, &[BlockIndex { n: 0, by: 2, bx: 0 }], &cb, &base)
        .is_err());
    assert!(
        conv.forward(&x, &ok, &cb, &x).is_err(),
        "base with the wrong shape"
    );
    let other = ConvBlocks::new(&p, [7, 6], [3, 3]).unwrap();
    assert!(
        conv.forward(&x, &ok, &other, &base).is_err(),
        "blocks for another input size"
    );
    let x3 = Tensor::zeros((1, 3, 6, 6), DType::F32, &dev).unwrap();
    assert!(
        conv.forward(&x3, &ok, &cb, &base).is_err(),
        "wrong channel count"
    );
    let w = Tensor::zeros((3, 2, 3, 3), DType::F32, &dev).unwrap();
    let asym = p.with_stride(1, 2);
    assert!(TrainableSparseConv2d::new(&w, None, asym, Activation::None).is_err());
    assert!(TrainableSparseConv2d::new(&w, None, Conv2dParams::same(5), Activation::None).is_err());
    let b = Tensor::zeros(4, DType::F32, &dev).unwrap();
    assert!(TrainableSparseConv2d::new(&w, Some(&b), p, Activation::None).is_err());
    let lopsided = p.with_pad(Padding {
        top: 1,
        left: 1,
        bottom: 0,
        right: 1,
    });
    let conv = TrainableSparseConv2d::new(&w, None, lopsided, Activation::None).unwrap();
    assert!(conv.forward_dense(&x).is_err());
}
