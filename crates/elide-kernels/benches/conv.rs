//! `cargo bench -p elide-kernels`: the dense kernels on the reference shapes, plus
//! gather/scatter of a 10%-dense block stack. ONNX Runtime comparisons: `elide bench conv`.
use criterion::{criterion_group, criterion_main, Criterion};
use elide_kernels::conv::{Activation, Conv2d, Conv2dParams};
use elide_kernels::sparse::{
    reduce_mask, sparse_gather_into, sparse_scatter, ConvBlocks, Mask, Pooling, ScatterMode,
};
use elide_kernels::{rng::SplitMix64, Tensor};

fn dense(c: &mut Criterion) {
    let mut rng = SplitMix64::new(1);
    let x = Tensor::from_vec([1, 64, 256, 256], rng.vec(64 * 256 * 256, -1.0, 1.0)).unwrap();
    let mut g = c.benchmark_group("conv_1x64x256x256");
    g.sample_size(10);
    for (name, p) in [
        ("conv3x3", Conv2dParams::same(3)),
        ("conv1x1", Conv2dParams::new(1, 1)),
        ("dw3x3", Conv2dParams::same(3).with_groups(64)),
    ] {
        let shape = [64, 64 / p.groups, p.kernel[0], p.kernel[1]];
        let w = Tensor::from_vec(shape, rng.vec(shape.iter().product(), -0.1, 0.1)).unwrap();
        let conv = Conv2d::new(&w, None, p, Activation::None).unwrap();
        let mut out = Tensor::zeros(conv.out_shape(x.shape()).unwrap());
        g.bench_function(name, |b| {
            b.iter(|| conv.forward_into(&x, &mut out).unwrap())
        });
    }
    g.finish();
}

fn gather_scatter(c: &mut Criterion) {
    let mut rng = SplitMix64::new(2);
    let x = Tensor::from_vec([1, 64, 256, 448], rng.vec(64 * 256 * 448, -1.0, 1.0)).unwrap();
    let cells: Vec<bool> = (0..16 * 28).map(|_| rng.uniform() < 0.1).collect();
    let mask = Mask::from_fn([1, 256, 448], |_, y, x| cells[(y / 16) * 28 + x / 16]);
    let grids = ConvBlocks::new(&Conv2dParams::same(3), [256, 448], [16, 16]).unwrap();
    let blocks = reduce_mask(&mask, &grids.input, Pooling::Max, 0.5).unwrap();
    let mut stack = Tensor::zeros([blocks.len(), 64, 18, 18]);
    let tiles = Tensor::zeros([blocks.len(), 64, 16, 16]);
    let mut out = Tensor::zeros([1, 64, 256, 448]);
    let mut g = c.benchmark_group("blocks_1x64x256x448_b16");
    g.bench_function("gather", |b| {
        b.iter(|| sparse_gather_into(&x, &blocks, &grids.input, &mut stack).unwrap())
    });
    g.bench_function("scatter", |b| {
        b.iter(|| {
            sparse_scatter(
                &tiles,
                &blocks,
                &grids.output,
                &mut out,
                ScatterMode::Write,
                Activation::None,
            )
            .unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, dense, gather_scatter);
criterion_main!(benches);
