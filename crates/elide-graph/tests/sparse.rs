//! Masked runs (`Graph::run_masked`) against dense runs: small graphs built in code (stride-2
//! conv chains, residual Add, Resize, dilation, squeeze-excitation) and the committed
//! PP-OCRv4 detector.
use elide_graph::graph::{Graph, Input, Node};
use elide_graph::ops::{Binary, ConvOp, CoordMode, NearestMode, Op, Resize, ResizeMode, Unary};
use elide_graph::sparse::{
    mask_from_array, mask_from_difference, mask_from_threshold, resample_max, BlockSize,
    MaskedRunner, Mode,
};
use elide_graph::{onnx, optimize, Value};
use elide_kernels::conv::{Activation, Conv2d, Conv2dParams};
use elide_kernels::rng::SplitMix64;
use elide_kernels::sparse::Mask;
use elide_kernels::Tensor;
use ndarray::ArrayD;

struct B {
    g: Graph,
    rng: SplitMix64,
}

impl B {
    fn new(seed: u64) -> (Self, usize) {
        let mut b = B {
            g: Graph::default(),
            rng: SplitMix64::new(seed),
        };
        let x = b.value();
        b.g.inputs.push(Input {
            id: x,
            shape: vec![],
            dtype: None,
        });
        (b, x)
    }
    fn value(&mut self) -> usize {
        self.g.names.push(format!("v{}", self.g.names.len()));
        self.g.names.len() - 1
    }
    fn node_opt(&mut self, op: Op, inputs: &[Option<usize>]) -> usize {
        let out = self.value();
        self.g.nodes.push(Node {
            name: format!("n{}", self.g.nodes.len()),
            op_type: op.kind().to_string(),
            op,
            inputs: inputs.to_vec(),
            outputs: vec![out],
        });
        out
    }
    fn node(&mut self, op: Op, inputs: &[usize]) -> usize {
        let ins: Vec<Option<usize>> = inputs.iter().map(|&i| Some(i)).collect();
        self.node_opt(op, &ins)
    }
    fn constant(&mut self, v: Value) -> usize {
        let id = self.value();
        self.g.constants.insert(id, v);
        id
    }
    fn conv(&mut self, x: usize, cin: usize, cout: usize, p: Conv2dParams) -> usize {
        let [kh, kw] = p.kernel;
        let w = Tensor::from_vec(
            [cout, cin / p.groups, kh, kw],
            self.rng.vec(cout * cin / p.groups * kh * kw, -0.5, 0.5),
        )
        .unwrap();
        let b = self.rng.vec(cout, -0.2, 0.2);
        let conv = Conv2d::new(&w, Some(&b), p, Activation::Relu).unwrap();
        self.node(Op::Conv(Box::new(ConvOp { conv })), &[x])
    }
    fn resize(&mut self, x: usize, mode: ResizeMode, coord: CoordMode, s: f32) -> usize {
        let scales = self.constant(Value::f32(&[4], vec![1.0, 1.0, s, s]).unwrap());
        self.node_opt(
            Op::Resize(Resize { mode, coord }),
            &[Some(x), None, Some(scales)],
        )
    }
    fn finish(mut self, out: usize) -> Graph {
        self.g.outputs.push(out);
        self.g
    }
}

/// conv s1 -> conv s2 -> conv (dilation 2) -> nearest x2 -> + residual -> conv s2 -> bilinear
/// x2 -> conv: every spatial mapping of the exact mode.
fn chain(seed: u64, se: bool) -> Graph {
    let (mut b, x) = B::new(seed);
    let c1 = b.conv(x, 3, 8, Conv2dParams::same(3));
    let c2 = b.conv(c1, 8, 8, Conv2dParams::same(3).with_stride(2, 2));
    let c3 = b.conv(
        c2,
        8,
        8,
        Conv2dParams::new(3, 3)
            .with_pad(elide_kernels::conv::Padding::uniform(2))
            .with_dilation(2, 2),
    );
    let up = b.resize(
        c3,
        ResizeMode::Nearest(NearestMode::Floor),
        CoordMode::Asymmetric,
        2.0,
    );
    let mut r = b.node(Op::Binary(Binary::Add), &[up, c1]);
    if se {
        // Squeeze-excitation: GlobalAveragePool -> 1x1 conv -> sigmoid -> scale.
        let g = b.node(Op::GlobalAveragePool, &[r]);
        let s = b.conv(g, 8, 8, Conv2dParams::new(1, 1));
        let s = b.node(Op::Unary(Unary::Sigmoid), &[s]);
        r = b.node(Op::Binary(Binary::Mul), &[r, s]);
    }
    let d = b.conv(r, 8, 8, Conv2dParams::same(3).with_stride(2, 2));
    let dw = b.conv(d, 8, 8, Conv2dParams::same(5).with_groups(8));
    let u = b.resize(dw, ResizeMode::Linear, CoordMode::HalfPixel, 2.0);
    let y = b.conv(u, 8, 2, Conv2dParams::same(3));
    b.finish(y)
}

fn input(seed: u64, shape: &[usize]) -> Value {
    let n = shape.iter().product();
    Value::f32(shape, SplitMix64::new(seed).vec(n, -1.0, 1.0)).unwrap()
}

fn rect(shape: [usize; 3], y: std::ops::Range<usize>, x: std::ops::Range<usize>) -> Mask {
    Mask::from_fn(shape, |_, yy, xx| y.contains(&yy) && x.contains(&xx))
}

/// Max |got - want| over the pixels of `region` (`[n, h, w]`, all channels), relative to the
/// largest |want| there.
fn rel_err_in(got: &Value, want: &Value, region: &Mask) -> f32 {
    let (g, w) = (got.as_f32().unwrap(), want.as_f32().unwrap());
    assert_eq!(g.shape(), w.shape());
    let s = g.shape();
    let (h, wd) = (s[2], s[3]);
    let r = resample_max(region, [s[0], h, wd]).unwrap();
    let (mut diff, mut scale) = (0f32, 0f32);
    for ((idx, &a), &b) in g.indexed_iter().zip(w.iter()) {
        let (n, y, x) = (idx[0], idx[2], idx[3]);
        if r.data()[(n * h + y) * wd + x] > 0.5 {
            diff = diff.max((a - b).abs());
            scale = scale.max(b.abs());
        }
    }
    diff / scale.max(1e-12)
}

#[test]
fn exact_equals_dense_inside_the_mask_on_small_graphs() {
    for (seed, se) in [(1, false), (2, true), (3, false)] {
        let g = chain(seed, se);
        let x = input(seed + 10, &[2, 3, 80, 96]);
        let dense = g.run(vec![x.clone()]).unwrap();
        let masks = [
            rect([2, 80, 96], 9..21, 13..30),
            Mask::from_fn([2, 80, 96], |n, y, x| {
                (n == 1 && y == 79 && x < 5) || (y == 0 && x == 95)
            }),
            Mask::from_fn([2, 80, 96], |n, y, x| (y * 7 + x * 3 + n) % 97 == 0),
        ];
        for size in [BlockSize::Auto, BlockSize::Fixed(4), BlockSize::Fixed(7)] {
            let runner = MaskedRunner::new(&g).with_block_size(size);
            for (i, m) in masks.iter().enumerate() {
                let (out, stats) = runner.run_stats(vec![x.clone()], m, Mode::Exact).unwrap();
                let e = rel_err_in(&out[0], &dense[0], m);
                assert!(e < 1e-5, "seed {seed} se {se} {size:?}: rel err {e}");
                // The scattered third mask's receptive fields cover the image.
                if !se && size != BlockSize::Auto && i < 2 {
                    assert!(stats.work < 0.9, "mask {i}: {stats:?}");
                }
                // The residual Add (in place) and the resizes run on their needed pixels.
                if !se && i < 2 {
                    assert!(stats.masked_ops >= 2, "mask {i}: {stats:?}");
                }
            }
        }
    }
}

/// conv -> ConvTranspose (2x2 stride 2, ReLU) -> concat with a nearest-upsampled branch ->
/// max pool 3x3 -> sigmoid -> conv: the other ops with a masked form, exact inside the mask,
/// and each run on its needed pixels when the mask is small.
#[test]
fn transposed_convs_concat_and_pools_run_masked_and_exact() {
    use elide_graph::ops::{ConvTranspose, Pool, PoolKind};
    let (mut b, x) = B::new(41);
    let c1 = b.conv(x, 3, 6, Conv2dParams::same(3).with_stride(2, 2));
    let t = ConvTranspose {
        weight: b.rng.vec(6 * 4 * 4, -0.5, 0.5),
        shape: [6, 4, 2, 2],
        bias: b.rng.vec(4, -0.2, 0.2),
        stride: [2, 2],
        pads: [0; 4],
        dilation: [1, 1],
        output_padding: [0, 0],
        act: Activation::Relu,
    };
    let up = b.node(Op::ConvTranspose(Box::new(t)), &[c1]);
    let near = b.resize(
        c1,
        ResizeMode::Nearest(NearestMode::Floor),
        CoordMode::Asymmetric,
        2.0,
    );
    let cat = b.node(Op::Concat { axis: 1 }, &[up, near]);
    let pool = Pool {
        kind: PoolKind::Max,
        kernel: [3, 3],
        stride: [1, 1],
        pads: [1; 4],
        dilation: [1, 1],
        ceil_mode: false,
    };
    let p = b.node(Op::Pool(pool), &[cat]);
    let s = b.node(Op::Unary(Unary::Sigmoid), &[p]);
    let y = b.conv(s, 10, 2, Conv2dParams::same(3));
    let g = b.finish(y);
    let x = input(42, &[1, 3, 96, 128]);
    let dense = g.run(vec![x.clone()]).unwrap();
    let runner = MaskedRunner::new(&g);
    for (i, m) in [
        rect([1, 96, 128], 40..46, 10..20),
        rect([1, 96, 128], 0..3, 120..128),
        Mask::from_fn([1, 96, 128], |_, y, x| (y / 8 + x / 8) % 5 == 0),
    ]
    .iter()
    .enumerate()
    {
        let (out, stats) = runner.run_stats(vec![x.clone()], m, Mode::Exact).unwrap();
        let e = rel_err_in(&out[0], &dense[0], m);
        assert!(e < 1e-5, "rel err {e} {stats:?}");
        // The diagonal stripes need most of every map: those ops run densely.
        if i < 2 {
            assert!(stats.masked_ops >= 2, "{stats:?}");
        }
    }
    let small = rect([1, 96, 128], 40..46, 10..20);
    let (_, stats) = runner.run_stats(vec![x], &small, Mode::Exact).unwrap();
    // ConvTranspose, Resize, Concat, Pool and Sigmoid all have their region.
    assert_eq!((stats.masked_ops, stats.dense_ops), (5, 0), "{stats:?}");
}

#[test]
fn all_ones_mask_equals_dense_in_both_modes() {
    let g = chain(4, false);
    let x = input(5, &[1, 3, 40, 48]);
    let dense = g.run(vec![x.clone()]).unwrap();
    let ones = Mask::from_fn([1, 40, 48], |_, _, _| true);
    let runner = MaskedRunner::new(&g).with_block_size(BlockSize::Fixed(5));
    for mode in [Mode::Exact, Mode::Fast] {
        let out = g.run_masked(vec![x.clone()], &ones, mode).unwrap();
        let e = rel_err_in(&out[0], &dense[0], &ones);
        assert!(e < 1e-5, "{mode:?}: {e}");
        let out = runner.run(vec![x.clone()], &ones, mode).unwrap();
        let e = rel_err_in(&out[0], &dense[0], &ones);
        assert!(e < 1e-5, "{mode:?}: {e}");
    }
}

#[test]
fn fast_differs_only_near_the_mask_border() {
    let g = chain(6, false);
    let x = input(7, &[1, 3, 96, 96]);
    let dense = g.run(vec![x.clone()]).unwrap();
    let m = rect([1, 96, 96], 8..88, 8..88);
    let runner = MaskedRunner::new(&g).with_block_size(BlockSize::Fixed(4));
    let out = runner.run(vec![x.clone()], &m, Mode::Fast).unwrap();
    // Deep inside (here: 32 pixels in, twice the net's receptive radius) it is exact.
    let inner = rect([1, 96, 96], 40..56, 40..56);
    let e = rel_err_in(&out[0], &dense[0], &inner);
    assert!(e < 1e-5, "inner rel err {e}");
    // Outside the mask features are zero, so the output differs there.
    let outer = Mask::from_fn([1, 96, 96], |_, y, x| y < 2 || x < 2);
    assert!(rel_err_in(&out[0], &dense[0], &outer) > 1e-3);
}

#[test]
fn wrong_mask_is_an_error_and_an_empty_mask_skips_every_conv() {
    let g = chain(8, false);
    let x = input(9, &[1, 3, 40, 48]);
    let bad = Mask::from_fn([1, 48, 40], |_, _, _| true);
    let err = g
        .run_masked(vec![x.clone()], &bad, Mode::Exact)
        .unwrap_err();
    assert!(err.to_string().contains("mask"), "{err}");
    assert!(g.run_masked(vec![x.clone()], &bad, Mode::Fast).is_err());
    let empty = Mask::from_fn([1, 40, 48], |_, _, _| false);
    let runner = MaskedRunner::new(&g);
    for mode in [Mode::Exact, Mode::Fast] {
        let (out, stats) = runner.run_stats(vec![x.clone()], &empty, mode).unwrap();
        assert_eq!(out[0].shape(), &[1, 2, 40, 48]);
        assert_eq!((stats.dense, stats.sparse), (0, 0), "{mode:?}: {stats:?}");
        assert_eq!(stats.work, 0.0);
    }
}

fn fixture(rel: &str) -> std::path::PathBuf {
    std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures")).join(rel)
}

#[test]
fn ppocr_exact_equals_dense_inside_the_mask() {
    let mut g = onnx::load(fixture("models/ch_PP-OCRv4_det_infer.onnx")).unwrap();
    optimize::optimize(&mut g).unwrap();
    let x: ArrayD<f32> = ndarray_npy::read_npy(fixture("onnx/ppocr_det_input.npy")).unwrap();
    let [n, h, w] = [x.shape()[0], x.shape()[2], x.shape()[3]];
    let x = Value::F32(x);
    let dense = g.run(vec![x.clone()]).unwrap();
    let m = rect([n, h, w], h / 4..h / 2, w / 3..w / 2);
    let runner = MaskedRunner::new(&g);
    let (out, stats) = runner.run_stats(vec![x.clone()], &m, Mode::Exact).unwrap();
    let e = rel_err_in(&out[0], &dense[0], &m);
    // With AVX-512 the sparse tiles and the dense layers run the same register blocks in the
    // same order, so this is 0; elsewhere (im2col + GEMM against shifted GEMMs) it is float
    // reassociation. A missing halo is far larger (Fast mode, below).
    assert!(e < 1e-5, "rel err {e}");
    // Squeeze-excitation (GlobalAveragePool) blocks need their whole input, so everything
    // upstream of the last one runs densely; the head after it runs sparsely.
    assert!(stats.sparse >= 1 && stats.work < 1.0, "{stats:?}");
    // Fast mode runs and gives a finite map of the same shape.
    let (fast, stats) = runner.run_stats(vec![x.clone()], &m, Mode::Fast).unwrap();
    assert_eq!(fast[0].shape(), dense[0].shape());
    assert!(fast[0].as_f32().unwrap().iter().all(|v| v.is_finite()));
    assert!(stats.work < 1.0, "{stats:?}");
    let fast_err = rel_err_in(&fast[0], &dense[0], &m);
    assert!(fast_err > 1e-3, "fast mode (no halo) err {fast_err}");
    // All ones: dense.
    let ones = Mask::from_fn([n, h, w], |_, _, _| true);
    let out = runner.run(vec![x], &ones, Mode::Exact).unwrap();
    assert!(rel_err_in(&out[0], &dense[0], &ones) < 1e-5);
}

#[test]
fn masks_from_arrays_thresholds_and_frame_differences() {
    let a = ArrayD::from_shape_vec(vec![2, 3], vec![0.0, 2.0, 0.0, -1.0, 0.0, 0.0]).unwrap();
    let m = mask_from_array(&a).unwrap();
    assert_eq!(m.shape(), [1, 2, 3]);
    assert_eq!(m.data(), &[0.0, 1.0, 0.0, 1.0, 0.0, 0.0]);
    assert!(mask_from_array(&ArrayD::from_elem(vec![1, 1, 2, 2], 1.0)).is_err());
    assert!(mask_from_array(&ArrayD::from_elem(vec![2, 2], f32::NAN)).is_err());

    // [N, C, H, W]: active where any channel exceeds the threshold.
    let t = ArrayD::from_shape_vec(vec![1, 2, 1, 3], vec![0.1, 0.5, 0.2, 0.4, 0.1, 0.0]).unwrap();
    let m = mask_from_threshold(&t, 0.3).unwrap();
    assert_eq!((m.shape(), m.data()), ([1, 1, 3], &[1.0, 1.0, 0.0][..]));

    let f0 = ArrayD::from_shape_vec(vec![1, 1, 2, 2], vec![0.0, 1.0, 2.0, 3.0]).unwrap();
    let mut f1 = f0.clone();
    f1[[0, 0, 1, 0]] += 0.5;
    f1[[0, 0, 0, 0]] += 0.01;
    let m = mask_from_difference(&f0, &f1, 0.1).unwrap();
    assert_eq!(m.data(), &[0.0, 0.0, 1.0, 0.0]);
    assert!(mask_from_difference(&f0, &t, 0.1).is_err());

    // Resampling keeps every active pixel when down-sampling and repeats when up-sampling.
    let m = Mask::from_fn([1, 4, 4], |_, y, x| y == 3 && x == 0);
    let d = resample_max(&m, [1, 2, 2]).unwrap();
    assert_eq!(d.data(), &[0.0, 0.0, 1.0, 0.0]);
    let u = resample_max(&d, [1, 4, 4]).unwrap();
    assert_eq!(u.data().iter().filter(|&&v| v > 0.5).count(), 4);
    let odd = resample_max(&m, [1, 3, 3]).unwrap();
    assert_eq!(odd.data()[6], 1.0);
    assert!(resample_max(&m, [2, 4, 4]).is_err());
}

/// Fast mode computes near the mask only values laid out on the input's grid: a sigmoid of a
/// conv is masked, a sigmoid of the conv's transpose (4-D, same batch, but its pixels are not
/// the image's) runs whole.
#[test]
fn fast_mode_masks_only_values_on_the_input_grid() {
    let (mut b, x) = B::new(51);
    let c = b.conv(x, 3, 4, Conv2dParams::same(3));
    let on_grid = b.node(Op::Unary(Unary::Sigmoid), &[c]);
    let t = b.node(
        Op::Transpose {
            perm: vec![0, 1, 3, 2],
        },
        &[c],
    );
    let off_grid = b.node(Op::Unary(Unary::Sigmoid), &[t]);
    let mut g = b.finish(on_grid);
    g.outputs.push(off_grid);
    let x = input(52, &[1, 3, 64, 64]);
    let m = rect([1, 64, 64], 0..8, 40..64);
    let (out, stats) = MaskedRunner::new(&g)
        .run_stats(vec![x], &m, Mode::Fast)
        .unwrap();
    assert_eq!((stats.masked_ops, stats.dense_ops), (1, 2), "{stats:?}");
    // Masked: zeros far from the mask. Whole: a sigmoid everywhere (> 0).
    let (on, off) = (out[0].as_f32().unwrap(), out[1].as_f32().unwrap());
    assert_eq!(on[[0, 0, 63, 0]], 0.0);
    assert!(off.iter().all(|&v| v > 0.0));
}
