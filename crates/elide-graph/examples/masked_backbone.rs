//! Whole-network sparse inference through the graph executor on a fully convolutional
//! network (no global ops, so exact mode can skip work): the demo's backbone (a 3 -> C stem
//! and residual units of two 3x3 convs, ReLU, Add, ReLU) built as a `Graph` with seeded
//! weights, run densely and under a road-like mask in both modes. Prints the medians of
//! alternated runs and the error inside the mask; the README's graph-level figures come from
//! this.
//!
//!     cargo run --release -p elide-graph --example masked_backbone -- [THREADS] [COVERAGE]
use elide_graph::graph::{Graph, Input, Node};
use elide_graph::ops::{Binary, ConvOp, Op, Unary};
use elide_graph::sparse::{MaskedRunner, Mode};
use elide_graph::Value;
use elide_kernels::conv::{Activation, Conv2d, Conv2dParams};
use elide_kernels::rng::SplitMix64;
use elide_kernels::sparse::Mask;
use elide_kernels::Tensor;
use std::time::Instant;

const CHANNELS: usize = 64;
const UNITS: usize = 4;
const H: usize = 256;
const W: usize = 448;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let threads: usize = args
        .first()
        .map_or(2, |t| t.parse().expect("a thread count"));
    let coverage: f64 = args.get(1).map_or(0.15, |c| c.parse().expect("a fraction"));
    let g = backbone(1);
    let x = Value::f32(&[1, 3, H, W], SplitMix64::new(2).vec(3 * H * W, -1.0, 1.0)).unwrap();
    let mask = road(coverage);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| {
        let runner = MaskedRunner::new(&g);
        let dense = g.run(vec![x.clone()]).unwrap();
        let mut times = [vec![], vec![], vec![]];
        let mut stats = Vec::new();
        for _ in 0..7 {
            let t = Instant::now();
            g.run(vec![x.clone()]).unwrap();
            times[0].push(t.elapsed().as_secs_f64() * 1e3);
            for (i, mode) in [Mode::Exact, Mode::Fast].into_iter().enumerate() {
                let t = Instant::now();
                let (out, s) = runner.run_stats(vec![x.clone()], &mask, mode).unwrap();
                times[i + 1].push(t.elapsed().as_secs_f64() * 1e3);
                stats.push((mode, s, err_inside(&out[0], &dense[0], &mask)));
            }
        }
        let median = |v: &mut Vec<f64>| {
            v.sort_by(|a, b| a.total_cmp(b));
            v[v.len() / 2]
        };
        let d = median(&mut times[0]);
        println!(
            "backbone {CHANNELS} channels, {UNITS} residual units, input 1x3x{H}x{W}, {threads} thread(s), road mask {:.1}% of pixels; medians of 7 alternated runs",
            100.0 * mask.data().iter().filter(|&&v| v > 0.5).count() as f64 / (H * W) as f64
        );
        println!("dense  {d:8.2} ms");
        for (i, mode) in [Mode::Exact, Mode::Fast].into_iter().enumerate() {
            let t = median(&mut times[i + 1]);
            let (_, s, e) = stats.iter().rev().find(|(m, _, _)| *m == mode).unwrap();
            println!(
                "{:<6} {t:8.2} ms  {:.2}x  max rel err in mask {e:.1e}  convs {} dense / {} sparse, {:.0}% of conv MACs, other ops {} masked / {} dense",
                format!("{mode:?}").to_lowercase(),
                d / t,
                s.dense,
                s.sparse,
                100.0 * s.work,
                s.masked_ops,
                s.dense_ops
            );
        }
    });
}

/// Stem conv, then `UNITS` units `relu(x + conv(relu(conv(x))))`.
fn backbone(seed: u64) -> Graph {
    let mut rng = SplitMix64::new(seed);
    let mut g = Graph::default();
    let value = |g: &mut Graph| {
        g.names.push(format!("v{}", g.names.len()));
        g.names.len() - 1
    };
    let x = value(&mut g);
    g.inputs.push(Input {
        id: x,
        shape: vec![],
        dtype: None,
    });
    let node = |g: &mut Graph, op: Op, inputs: &[usize]| {
        let out = value(g);
        g.nodes.push(Node {
            name: format!("n{}", g.nodes.len()),
            op_type: op.kind().to_string(),
            op,
            inputs: inputs.iter().map(|&i| Some(i)).collect(),
            outputs: vec![out],
        });
        out
    };
    let mut conv = |g: &mut Graph, x: usize, cin: usize, act: Activation| {
        let scale = (2.0 / (9 * cin) as f32).sqrt();
        let w = Tensor::from_vec(
            [CHANNELS, cin, 3, 3],
            rng.vec(CHANNELS * cin * 9, -scale, scale),
        )
        .unwrap();
        let c = Conv2d::new(&w, Some(&vec![0.01; CHANNELS]), Conv2dParams::same(3), act).unwrap();
        node(g, Op::Conv(Box::new(ConvOp { conv: c })), &[x])
    };
    let mut h = conv(&mut g, x, 3, Activation::Relu);
    for _ in 0..UNITS {
        let a = conv(&mut g, h, CHANNELS, Activation::Relu);
        let b = conv(&mut g, a, CHANNELS, Activation::None);
        let s = node(&mut g, Op::Binary(Binary::Add), &[b, h]);
        h = node(&mut g, Op::Unary(Unary::Relu), &[s]);
    }
    g.outputs.push(h);
    g
}

/// A band from the bottom edge narrowing towards a vanishing point, scaled to `coverage`.
fn road(coverage: f64) -> Mask {
    // The trapezoid's area is (bottom + top) / 2 * height; its top is a tenth of its bottom.
    let bottom = (2.0 * coverage / 1.1 * W as f64).min(W as f64);
    Mask::from_fn([1, H, W], |_, y, x| {
        let t = y as f64 / (H - 1) as f64;
        let half = (0.1 + 0.9 * t) * bottom / 2.0;
        (x as f64 - W as f64 / 2.0).abs() <= half
    })
}

/// Max |got - want| inside the mask over the largest |want| there.
fn err_inside(got: &Value, want: &Value, mask: &Mask) -> f32 {
    let (g, w) = (got.as_f32().unwrap(), want.as_f32().unwrap());
    let (mut diff, mut scale) = (0f32, 0f32);
    for ((idx, &a), &b) in g.indexed_iter().zip(w.iter()) {
        if mask.data()[idx[2] * W + idx[3]] > 0.5 {
            diff = diff.max((a - b).abs());
            scale = scale.max(b.abs());
        }
    }
    diff / scale.max(1e-12)
}
