//! Times one dense conv layer on random data: the kernel `Conv2d` picks for it, the median of
//! 200 runs, and GFLOP/s. The per-layer figures in the README come from this.
//!
//!     cargo run --release -p elide-kernels --example conv_layer -- \
//!         CIN COUT K STRIDE H W THREADS [GROUPS] [silu|hardswish|none]
//!
//! Padding is `K / 2` on every side.
use elide_kernels::conv::{Activation, Conv2d, Conv2dParams, Padding};
use elide_kernels::Tensor;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 7 {
        eprintln!("usage: conv_layer CIN COUT K STRIDE H W THREADS [GROUPS] [silu|hardswish|none]");
        std::process::exit(2);
    }
    let n: Vec<usize> = args[..7]
        .iter()
        .map(|s| s.parse().expect("a whole number"))
        .collect();
    let (cin, cout, k, s, h, w, threads) = (n[0], n[1], n[2], n[3], n[4], n[5], n[6]);
    let groups: usize = args
        .get(7)
        .map_or(1, |g| g.parse().expect("a whole number"));
    let act = match args.get(8).map(String::as_str) {
        None | Some("silu") => Activation::Silu,
        Some("hardswish") => Activation::HardSwish,
        Some("none") => Activation::None,
        Some(other) => panic!("unknown activation {other}"),
    };
    let mut rng = elide_kernels::rng::SplitMix64::new(1);
    let wt = Tensor::from_vec(
        [cout, cin / groups, k, k],
        rng.vec(cout * cin / groups * k * k, -0.1, 0.1),
    )
    .unwrap();
    let p = Conv2dParams::new(k, k)
        .with_stride(s, s)
        .with_pad(Padding::uniform(k / 2))
        .with_groups(groups);
    let conv = Conv2d::new(&wt, None, p, act).unwrap();
    let x = Tensor::from_vec([1, cin, h, w], rng.vec(cin * h * w, -1.0, 1.0)).unwrap();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| {
        let mut out = conv.forward(&x).unwrap();
        let mut ts: Vec<f64> = (0..200)
            .map(|_| {
                let t0 = Instant::now();
                conv.forward_into(&x, &mut out).unwrap();
                t0.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        ts.sort_by(|a, b| a.total_cmp(b));
        let [_, _, ho, wo] = out.shape();
        let flops = 2.0 * (cout * cin / groups * k * k * ho * wo) as f64;
        println!(
            "{:?} {cin}->{cout} k{k} s{s} {h}x{w} g{groups}, {threads} thread(s): median {:.3} ms, {:.1} GFLOP/s",
            conv.kernel_for(h, w),
            ts[100],
            flops / ts[100] / 1e6
        );
    });
}
