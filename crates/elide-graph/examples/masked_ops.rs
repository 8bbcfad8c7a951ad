//! Times ops computed on part of their output (`ops::eval_runs`, into a new buffer with zeros
//! elsewhere) against the dense op, for regions of blocky random masks covering a growing
//! fraction of the map. The crossovers in `ops::worth_masking` come from this.
//!
//!     cargo run --release -p elide-graph --example masked_ops -- [THREADS]
use elide_graph::arena::Arena;
use elide_graph::ops::runs::Runs;
use elide_graph::ops::{
    eval, eval_runs, Binary, ConvTranspose, CoordMode, Ctx, NearestMode, Op, Pool, PoolKind,
    Resize, ResizeMode,
};
use elide_graph::Value;
use elide_kernels::conv::Activation;
use elide_kernels::rng::SplitMix64;
use std::time::Instant;

fn main() {
    let threads: usize = std::env::args()
        .nth(1)
        .map_or(1, |t| t.parse().expect("a thread count"));
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| {
        let mut rng = SplitMix64::new(1);
        let mut value = |shape: &[usize]| {
            Value::f32(shape, rng.vec(shape.iter().product(), -1.0, 1.0)).unwrap()
        };
        let (a, b) = (value(&[1, 32, 480, 480]), value(&[1, 32, 480, 480]));
        let s = value(&[1, 32, 1, 1]);
        let xt = value(&[1, 96, 240, 240]);
        let xr = value(&[1, 32, 240, 240]);
        let scales = Value::f32(&[4], vec![1.0, 1.0, 2.0, 2.0]).unwrap();
        let convt = Op::ConvTranspose(Box::new(ConvTranspose {
            weight: SplitMix64::new(2).vec(96 * 32 * 4, -0.1, 0.1),
            shape: [96, 32, 2, 2],
            bias: vec![0.1; 32],
            stride: [2, 2],
            pads: [0; 4],
            dilation: [1, 1],
            output_padding: [0, 0],
            act: Activation::Relu,
        }));
        let resize = Op::Resize(Resize {
            mode: ResizeMode::Nearest(NearestMode::Floor),
            coord: CoordMode::Asymmetric,
        });
        let add = Op::Binary(Binary::Add);
        let pool = Op::Pool(Pool {
            kind: PoolKind::Max,
            kernel: [5, 5],
            stride: [1, 1],
            pads: [2; 4],
            dilation: [1, 1],
            ceil_mode: false,
        });
        let cases: Vec<(&str, &Op, Vec<Option<&Value>>)> = vec![
            ("Add, same shape", &add, vec![Some(&a), Some(&b)]),
            ("Add, per channel", &add, vec![Some(&a), Some(&s)]),
            ("ConvTranspose 2x2 s2", &convt, vec![Some(&xt)]),
            ("Resize nearest x2", &resize, vec![Some(&xr), None, Some(&scales)]),
            ("MaxPool 5x5 s1", &pool, vec![Some(&xr)]),
        ];
        let arena = Arena::default();
        let ctx = Ctx {
            node: "probe",
            op: "probe",
            arena: Some(&arena),
        };
        let median = |f: &dyn Fn()| {
            let mut t: Vec<f64> = (0..15)
                .map(|_| {
                    let t0 = Instant::now();
                    f();
                    t0.elapsed().as_secs_f64() * 1e3
                })
                .collect();
            t.sort_by(|a, b| a.total_cmp(b));
            t[7]
        };
        println!("{threads} thread(s); medians of 15 runs; 32x32-pixel blocks active at random");
        for (name, op, ins) in cases {
            let dense = median(&|| {
                for v in eval(op, &ins, ctx).unwrap() {
                    arena.recycle(v);
                }
            });
            let out = eval(op, &ins, ctx).unwrap().remove(0);
            let &[n, _, h, w] = out.shape() else {
                panic!("4-D output")
            };
            for target in [0.05f32, 0.1, 0.2, 0.4, 0.7, 0.95] {
                let mut r = SplitMix64::new(3);
                let (bh, bw) = (h.div_ceil(32), w.div_ceil(32));
                let blocks: Vec<bool> = (0..bh * bw).map(|_| r.uniform() < target).collect();
                let px: Vec<bool> = (0..n * h * w)
                    .map(|i| blocks[(i / w % h / 32) * bw + i % w / 32])
                    .collect();
                let runs = Runs::from_mask([n, h, w], &px);
                let cover = runs.count() as f64 / (n * h * w) as f64;
                if eval_runs(op, &ins, &runs, ctx).unwrap().is_none() {
                    println!("{name:22} runs cover {cover:4.2} of the map: declined (too many input rows needed)");
                    continue;
                }
                let masked = median(&|| {
                    for v in eval_runs(op, &ins, &runs, ctx).unwrap().into_iter().flatten() {
                        arena.recycle(v);
                    }
                });
                println!(
                    "{name:22} runs cover {cover:4.2} of the map: masked {masked:7.3} ms, dense {dense:7.3} ms, masked/dense {:.2}",
                    masked / dense
                );
            }
        }
    });
}
