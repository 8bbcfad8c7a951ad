//! Per-node wall times of a dense run (medians of repeated runs), slowest first, with each
//! conv's kernel and geometry. The in-network per-layer figures in the README come from this.
//!
//!     cargo run --release -p elide-graph --example node_times -- MODEL.onnx INPUT.npy THREADS [TOP]
use elide_graph::{onnx, ops::Op, Value};
use std::time::Instant;

fn main() {
    let a: Vec<String> = std::env::args().skip(1).collect();
    if a.len() < 3 {
        eprintln!("usage: node_times MODEL.onnx INPUT.npy THREADS [TOP]");
        std::process::exit(2);
    }
    let mut g = onnx::load(&a[0]).expect("an ONNX model");
    elide_graph::optimize::optimize(&mut g).expect("optimisable");
    let x: ndarray::ArrayD<f32> = ndarray_npy::read_npy(&a[1]).expect("a float32 .npy");
    let threads: usize = a[2].parse().expect("a thread count");
    let top: usize = a.get(3).map_or(25, |t| t.parse().expect("a count"));
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    let reps = 11;
    let mut times = vec![Vec::with_capacity(reps); g.nodes.len()];
    let mut shapes = vec![Vec::new(); g.nodes.len()];
    let mut totals = Vec::with_capacity(reps);
    pool.install(|| {
        for rep in 0..=reps {
            let input = vec![Value::F32(x.clone())];
            let t0 = Instant::now();
            let mut last = Instant::now();
            g.run_with(input, |k, outs| {
                // The first run warms the arena and caches; it is not counted.
                if rep > 0 {
                    times[k].push(last.elapsed().as_secs_f64() * 1e3);
                }
                shapes[k] = outs[0].shape().to_vec();
                last = Instant::now();
            })
            .expect("the model runs on this input");
            if rep > 0 {
                totals.push(t0.elapsed().as_secs_f64() * 1e3);
            }
        }
    });
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    println!(
        "{} nodes, {threads} thread(s): run median {:.3} ms",
        g.nodes.len(),
        median(&mut totals)
    );
    let mut rows: Vec<(f64, usize)> = times
        .iter_mut()
        .enumerate()
        .map(|(k, t)| (median(t), k))
        .collect();
    rows.sort_by(|a, b| b.0.total_cmp(&a.0));
    for &(ms, k) in rows.iter().take(top) {
        let node = &g.nodes[k];
        let what = match &node.op {
            Op::Conv(c) => {
                let p = c.conv.params();
                let s = &shapes[k];
                format!(
                    "Conv/{:?} {}->{} k{:?} s{:?} g{}",
                    c.conv.kernel_for(s[2], s[3]),
                    c.conv.in_channels(),
                    c.conv.out_channels(),
                    p.kernel,
                    p.stride,
                    p.groups
                )
            }
            op => op.kind().to_string(),
        };
        println!("{ms:8.3} ms  {what:<44} out {:?}  {}", shapes[k], node.name);
    }
}
