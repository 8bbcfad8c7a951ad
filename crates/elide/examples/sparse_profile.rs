//! Times the stages of one block-sparse conv: `cargo run --release --example sparse_profile -- BLOCK DENSITY`.
use elide::kernels::conv::{Activation, Conv2d, Conv2dParams};
use elide::kernels::sparse::{
    reduce_mask, sparse_gather, sparse_gather_into, sparse_scatter, ConvBlocks, Mask, Pooling,
    ScatterMode,
};
use elide::kernels::{rng::SplitMix64, Tensor};
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let b: usize = args.get(1).map_or(16, |s| s.parse().unwrap());
    let density: f32 = args.get(2).map_or(0.1, |s| s.parse().unwrap());
    let mut rng = SplitMix64::new(1);
    let (c, h, w) = (64, 256, 448);
    let x = Tensor::from_vec([1, c, h, w], rng.vec(c * h * w, -1.0, 1.0)).unwrap();
    let wt = Tensor::from_vec([c, c, 3, 3], rng.vec(c * c * 9, -0.1, 0.1)).unwrap();
    let conv = Conv2d::new(&wt, None, Conv2dParams::same(3), Activation::None).unwrap();
    let valid = conv.to_valid();
    let cells: Vec<bool> = (0..(h / 16) * (w / 16))
        .map(|_| rng.uniform() < density)
        .collect();
    let mask = Mask::from_fn([1, h, w], |_, y, x| cells[(y / 16) * (w / 16) + x / 16]);
    let grids = ConvBlocks::new(conv.params(), [h, w], [b, b]).unwrap();
    let mut out = Tensor::zeros([1, c, h, w]);
    let t = |name: &str, f: &mut dyn FnMut()| {
        f();
        let s = Instant::now();
        for _ in 0..10 {
            f();
        }
        println!("{name:<10} {:.3} ms", s.elapsed().as_secs_f64() * 100.0);
    };
    let blocks = reduce_mask(&mask, &grids.input, Pooling::Max, 0.5).unwrap();
    println!("{} blocks of {}", blocks.len(), grids.output.len());
    t("reduce", &mut || {
        drop(reduce_mask(&mask, &grids.input, Pooling::Max, 0.5).unwrap())
    });
    let stack = sparse_gather(&x, &blocks, &grids.input).unwrap();
    t("gather", &mut || {
        drop(sparse_gather(&x, &blocks, &grids.input).unwrap())
    });
    let mut st = stack.clone();
    t("gather_in", &mut || {
        sparse_gather_into(&x, &blocks, &grids.input, &mut st).unwrap()
    });
    let tiles = valid.forward(&stack).unwrap();
    t("conv", &mut || drop(valid.forward(&stack).unwrap()));
    let mut tt = tiles.clone();
    t("conv_in", &mut || {
        valid.forward_into(&stack, &mut tt).unwrap()
    });
    t("scatter", &mut || {
        sparse_scatter(
            &tiles,
            &blocks,
            &grids.output,
            &mut out,
            ScatterMode::Write,
            Activation::None,
        )
        .unwrap()
    });
    t("dense", &mut || conv.forward_into(&x, &mut out).unwrap());
}
