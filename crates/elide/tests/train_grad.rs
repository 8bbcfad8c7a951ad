//! Gradients of `elide::train` against central finite differences (F64), a small training
//! loop, and the hand-off of a trained layer to the inference kernels.
//!
//! Tolerance: every analytic gradient element `a` must match its central difference `f` with
//! `|a - f| <= 1e-6 * max(|a|, |f|, 1e-2)`. The losses are linear in every variable except
//! through the squared tiles and the SiLU activation, so the O(h^2) truncation error of the
//! central difference (h = 1e-4) is at most ~1e-9, and the rounding error of two f64 losses of
//! size ~10 divided by 2h is ~1e-11: both far below the bound. A wrong or missing gradient
//! term (a dropped overlap, a zeroed border) shows up as an error of order 1.
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use elide::kernels::conv::{Activation, Conv2dParams, Padding};
use elide::kernels::rng::SplitMix64;
use elide::kernels::sparse::{BlockGrid, BlockIndex, ConvBlocks};
use elide::train::{gather, scatter, ScatterMode, TrainableSparseConv2d};

const H: f64 = 1e-4;
const TOL: f64 = 1e-6;

fn rand(rng: &mut SplitMix64, dims: &[usize], dtype: DType) -> Tensor {
    let v = rng.vec(dims.iter().product(), -1.0, 1.0);
    Tensor::from_vec(v, dims, &Device::Cpu)
        .unwrap()
        .to_dtype(dtype)
        .unwrap()
}

fn values(t: &Tensor) -> Vec<f64> {
    t.flatten_all().unwrap().to_vec1::<f64>().unwrap()
}

/// Compares the gradient of `loss` w.r.t. `var` with central differences on (up to 80
/// sampled) elements; returns the largest scaled error.
fn check(name: &str, var: &Var, analytic: Option<&Tensor>, loss: &dyn Fn() -> f64) -> f64 {
    let analytic = values(analytic.unwrap_or_else(|| panic!("no gradient for {name}")));
    let orig = var.as_tensor().copy().unwrap();
    let mut v = values(&orig);
    let mut rng = SplitMix64::new(v.len() as u64);
    let idx: Vec<usize> = if v.len() <= 80 {
        (0..v.len()).collect()
    } else {
        (0..80).map(|_| rng.int(0, v.len() - 1)).collect()
    };
    let mut worst = 0f64;
    for i in idx {
        let mut at = |d: f64| {
            v[i] += d;
            var.set(&Tensor::from_vec(v.clone(), orig.shape(), &Device::Cpu).unwrap())
                .unwrap();
            v[i] -= d;
            loss()
        };
        let fd = (at(H) - at(-H)) / (2.0 * H);
        let a = analytic[i];
        let err = (a - fd).abs() / a.abs().max(fd.abs()).max(1e-2);
        assert!(
            err < TOL,
            "{name}[{i}]: analytic {a}, finite difference {fd}"
        );
        worst = worst.max(err);
    }
    var.set(&orig).unwrap();
    worst
}

fn sum_dot(a: &Tensor, b: &Tensor) -> Tensor {
    (a * b).unwrap().sum_all().unwrap()
}

fn var(rng: &mut SplitMix64, dims: &[usize]) -> Var {
    Var::from_tensor(&rand(rng, dims, DType::F64)).unwrap()
}

#[test]
fn train_ops_gradients_match_finite_differences() {
    let mut rng = SplitMix64::new(3);
    let (n, c, h, w) = (2, 3, 7, 6);
    // Overlapping windows that cross every border.
    let ov = BlockGrid {
        size: [4, 3],
        stride: [2, 2],
        offset: [-2, -1],
        count: [5, 4],
    };
    // Non-overlapping windows for Write, also crossing the borders.
    let tiles = BlockGrid {
        size: [3, 4],
        stride: [3, 4],
        offset: [-1, -2],
        count: [3, 3],
    };
    let pick = |grid: &BlockGrid, rng: &mut SplitMix64| -> Vec<BlockIndex> {
        let mut out = Vec::new();
        for i in 0..n as u32 {
            for by in 0..grid.count[0] as u32 {
                for bx in 0..grid.count[1] as u32 {
                    if rng.uniform() < 0.7 {
                        out.push(BlockIndex { n: i, by, bx });
                    }
                }
            }
        }
        out
    };
    let (bo, bt) = (pick(&ov, &mut rng), pick(&tiles, &mut rng));
    let x = var(&mut rng, &[n, c, h, w]);
    let base_a = var(&mut rng, &[n, c, h, w]);
    let base_w = var(&mut rng, &[n, c, h, w]);
    let stack_a = var(&mut rng, &[bo.len(), c, 4, 3]);
    let stack_w = var(&mut rng, &[bt.len(), c, 3, 4]);
    // Fixed random weights of the loss: one for the gathered stack, three for images.
    let img = [n, c, h, w];
    let r = [
        rand(&mut rng, &[bo.len(), c, 4, 3], DType::F64),
        rand(&mut rng, &img, DType::F64),
        rand(&mut rng, &img, DType::F64),
        rand(&mut rng, &img, DType::F64),
    ];
    let forward = || -> Tensor {
        let g = gather(&x, &bo, &ov).unwrap();
        let add = scatter(&base_a, &stack_a, &bo, &ov, ScatterMode::Add).unwrap();
        let write = scatter(&base_w, &stack_w, &bt, &tiles, ScatterMode::Write).unwrap();
        // A chain with a nonlinearity: gather -> square -> scatter-add.
        let chain = scatter(&base_a, &g.sqr().unwrap(), &bo, &ov, ScatterMode::Add).unwrap();
        let parts = [
            sum_dot(&g, &r[0]),
            sum_dot(&add, &r[1]),
            sum_dot(&write, &r[2]),
            sum_dot(&chain, &r[3]),
        ];
        parts
            .iter()
            .fold(parts[0].zeros_like().unwrap(), |a, p| (a + p).unwrap())
    };
    let grads = forward().backward().unwrap();
    let loss = || forward().to_scalar::<f64>().unwrap();
    for (name, v) in [
        ("x", &x),
        ("base_add", &base_a),
        ("base_write", &base_w),
        ("stack_add", &stack_a),
        ("stack_write", &stack_w),
    ] {
        let worst = check(name, v, grads.get(v), &loss);
        println!("{name}: worst scaled error {worst:.2e}");
    }
}

#[test]
fn train_sparse_conv_gradients_match_finite_differences() {
    let mut rng = SplitMix64::new(8);
    let asym = Padding {
        top: 2,
        left: 1,
        bottom: 0,
        right: 1,
    };
    let cases = [
        (Conv2dParams::same(3), 3, 4, Activation::None, [3, 3]),
        (
            Conv2dParams::new(3, 3)
                .with_pad(asym)
                .with_stride(2, 2)
                .with_dilation(2, 2)
                .with_groups(2),
            4,
            2,
            Activation::Silu,
            [2, 3],
        ),
    ];
    for (i, (p, cin, cout, act, block)) in cases.into_iter().enumerate() {
        let conv =
            TrainableSparseConv2d::init(cin, cout, p, act, DType::F64, &Device::Cpu, i as u64)
                .unwrap();
        let (hh, ww) = (9, 10);
        let (ho, wo) = p.out_size(hh, ww).unwrap();
        let cb = ConvBlocks::new(&p, [hh, ww], block).unwrap();
        let blocks: Vec<BlockIndex> = (0..cb.output.count[0] as u32)
            .flat_map(|by| (0..cb.output.count[1] as u32).map(move |bx| (by, bx)))
            .flat_map(|(by, bx)| (0..2).map(move |n| BlockIndex { n, by, bx }))
            .filter(|_| rng.uniform() < 0.6)
            .collect();
        let x = var(&mut rng, &[2, cin, hh, ww]);
        let base = var(&mut rng, &[2, cout, ho, wo]);
        let r = rand(&mut rng, &[2, cout, ho, wo], DType::F64);
        let forward = || sum_dot(&conv.forward(&x, &blocks, &cb, &base).unwrap(), &r);
        let grads = forward().backward().unwrap();
        let loss = || forward().to_scalar::<f64>().unwrap();
        for (name, v) in [
            ("x", &x),
            ("base", &base),
            ("weight", conv.weight()),
            ("bias", conv.bias()),
        ] {
            let worst = check(name, v, grads.get(v), &loss);
            println!("case {i} {name}: worst scaled error {worst:.2e}");
        }
    }
}

#[test]
fn train_loop_reduces_loss_and_hands_off_to_kernels() {
    let dev = Device::Cpu;
    let p = Conv2dParams::same(3);
    let teacher =
        TrainableSparseConv2d::init(3, 4, p, Activation::None, DType::F32, &dev, 1).unwrap();
    let student =
        TrainableSparseConv2d::init(3, 4, p, Activation::None, DType::F32, &dev, 2).unwrap();
    let mut rng = SplitMix64::new(4);
    let x = rand(&mut rng, &[4, 3, 12, 12], DType::F32);
    let cb = ConvBlocks::new(&p, [12, 12], [4, 4]).unwrap();
    let blocks: Vec<BlockIndex> = (0..4u32)
        .flat_map(|n| {
            (0..9u32).map(move |i| BlockIndex {
                n,
                by: i / 3,
                bx: i % 3,
            })
        })
        .filter(|b| (b.n + b.by + b.bx) % 2 == 0)
        .collect();
    let base = Tensor::zeros((4, 4, 12, 12), DType::F32, &dev).unwrap();
    let target = teacher.forward(&x, &blocks, &cb, &base).unwrap().detach();
    let params = ParamsAdamW {
        lr: 0.02,
        weight_decay: 0.0,
        ..Default::default()
    };
    let mut opt = AdamW::new(student.vars(), params).unwrap();
    let mut losses = Vec::new();
    for _ in 0..300 {
        let out = student.forward(&x, &blocks, &cb, &base).unwrap();
        let loss = (out - &target).unwrap().sqr().unwrap().mean_all().unwrap();
        losses.push(loss.to_scalar::<f32>().unwrap());
        opt.backward_step(&loss).unwrap();
    }
    let (first, last) = (losses[0], losses[losses.len() - 1]);
    println!("loss {first:.3e} -> {last:.3e}");
    assert!(last < first * 1e-3, "loss only went from {first} to {last}");

    // The trained layer runs on elide's kernels and agrees with candle's dense conv.
    let k = student.to_kernels_conv().unwrap();
    let kx = elide::kernels::Tensor::from_vec(
        [4, 3, 12, 12],
        x.flatten_all().unwrap().to_vec1().unwrap(),
    )
    .unwrap();
    let ky = k.forward(&kx).unwrap();
    let dense = student
        .forward_dense(&x)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    let err = ky
        .data()
        .iter()
        .zip(&dense)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(err < 1e-4, "kernels vs candle: max error {err}");
    // And back again, unchanged.
    let back = TrainableSparseConv2d::from_kernels_conv(&k).unwrap();
    let same = (back.weight().as_tensor() - student.weight().as_tensor())
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap();
    assert_eq!(same.to_scalar::<f32>().unwrap(), 0.0);
}
