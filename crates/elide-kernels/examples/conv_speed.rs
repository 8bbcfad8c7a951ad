//! Quick median timing of the dense conv kernels: `cargo run --release --example conv_speed -- THREADS`.
use elide_kernels::conv::{Activation, Conv2d, Conv2dParams};
use elide_kernels::{rng::SplitMix64, threads::with_threads, Tensor};
use std::time::Instant;

fn main() {
    let threads: usize = std::env::args().nth(1).map_or(1, |s| s.parse().unwrap());
    let mut rng = SplitMix64::new(1);
    let wd: usize = std::env::var("W")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(256);
    let x = Tensor::from_vec([1, 64, 256, wd], rng.vec(64 * 256 * wd, -1.0, 1.0)).unwrap();
    for (name, cout, p) in [
        ("conv3x3", 64, Conv2dParams::same(3)),
        ("conv1x1", 64, Conv2dParams::new(1, 1)),
        ("dw3x3", 64, Conv2dParams::same(3).with_groups(64)),
    ] {
        let w = Tensor::from_vec(
            [cout, 64 / p.groups, p.kernel[0], p.kernel[1]],
            rng.vec(cout * 64 / p.groups * p.kernel[0] * p.kernel[1], -0.1, 0.1),
        )
        .unwrap();
        let conv = Conv2d::new(&w, None, p, Activation::None).unwrap();
        let mut out = Tensor::zeros(conv.out_shape(x.shape()).unwrap());
        let ms = with_threads(threads, || {
            let mut t = Vec::new();
            for _ in 0..11 {
                let s = Instant::now();
                conv.forward_into(&x, &mut out).unwrap();
                t.push(s.elapsed().as_secs_f64() * 1e3);
            }
            t.sort_by(f64::total_cmp);
            t[t.len() / 2]
        })
        .unwrap();
        let gf = conv.macs(256, wd).unwrap() as f64 * 2.0 / ms / 1e6;
        println!("{name} threads={threads}: {ms:.2} ms, {gf:.1} GFLOP/s");
    }
}
