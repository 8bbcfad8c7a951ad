//! The measurements behind design choices cited in the docs, one per argument (medians):
//!
//! - `wake`: two 5 us parallel tasks after 0-1000 us of idle, with and without
//!   `threads::Spinner` (rayon parks an idle worker; waking it delays the section).
//! - `gemm-layout`: `gemm` on 64 x 1024 x 1024 with the right operand column-major (a Gemm's
//!   `transB` weights) and row-major, one thread.
//! - `split`: 512 x 512 x 49 (a 1x1 conv on a 7x7 map) as one `gemm` call and split 48 + 1
//!   columns, warm and with a 64 MB buffer touched between runs.
//! - `transpose`: a 1024 x 64 block transposed element by element and by `csr::transpose_into`.
//!
//! `cargo run --release -p elide-kernels --example probes -- wake|gemm-layout|split|transpose`
use elide_kernels::csr::transpose_into;
use elide_kernels::threads::{with_threads, Spinner};
use rayon::prelude::*;
use std::hint::black_box;
use std::time::{Duration, Instant};

/// Median wall time of `f` in microseconds, `before` run untimed ahead of each call.
fn median_us(reps: usize, mut before: impl FnMut(), mut f: impl FnMut()) -> f64 {
    f();
    let mut t: Vec<f64> = (0..reps)
        .map(|_| {
            before();
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

fn busy(us: u64) {
    let s = Instant::now();
    while s.elapsed() < Duration::from_micros(us) {
        std::hint::spin_loop();
    }
}

fn wake() {
    with_threads(2, || {
        for spin in [false, true] {
            let guard = spin.then(Spinner::start).flatten();
            for gap in [0, 20, 50, 100, 1000] {
                let t = median_us(
                    200,
                    || busy(gap),
                    || (0..2).into_par_iter().for_each(|_| busy(5)),
                );
                println!("spinner {spin:5}  idle {gap:>4} us before: 2 x 5 us tasks {t:.1} us");
            }
            drop(guard);
        }
    })
    .expect("a 2-thread pool");
}

/// `dst[m x n] = lhs[m x k] rhs[k x n]`, row-major `lhs` and `dst`, `rhs` at the given strides.
#[allow(clippy::too_many_arguments)]
fn gemm(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [f32],
    dst_rs: usize,
    lhs: &[f32],
    rhs: &[f32],
    rhs_cs: isize,
    rhs_rs: isize,
) {
    assert!(dst.len() >= (m - 1) * dst_rs + n && lhs.len() >= m * k);
    // SAFETY: the callers size every operand for these shapes and strides.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            dst_rs as isize,
            false,
            lhs.as_ptr(),
            1,
            k as isize,
            rhs.as_ptr(),
            rhs_cs,
            rhs_rs,
            0.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        )
    }
}

fn gemm_layout() {
    let (m, n, k) = (64, 1024, 1024);
    let (x, w) = (vec![0.5f32; m * k], vec![0.01f32; n * k]);
    let mut y = vec![0f32; m * n];
    // w as [n, k] read transposed (column-major k x n), then as [k, n] row-major.
    let col = median_us(
        21,
        || {},
        || gemm(m, n, k, &mut y, n, &x, &w, k as isize, 1),
    );
    let row = median_us(
        21,
        || {},
        || gemm(m, n, k, &mut y, n, &x, &w, 1, n as isize),
    );
    println!(
        "64 x 1024 x 1024, right operand column-major {:.2} ms, row-major {:.2} ms",
        col / 1e3,
        row / 1e3
    );
}

fn split() {
    let (m, k, n) = (512, 512, 49);
    let (w, x) = (vec![0.01f32; m * k], vec![0.5f32; k * n]);
    let mut y = vec![0f32; m * n];
    let mut junk = vec![1u8; 64 << 20];
    for flush in [false, true] {
        let mut touch = || {
            if flush {
                junk.iter_mut()
                    .step_by(64)
                    .for_each(|b| *b = b.wrapping_add(1));
            }
        };
        let one = median_us(41, &mut touch, || {
            gemm(m, n, k, &mut y, n, &w, &x, 1, n as isize)
        });
        let two = median_us(41, &mut touch, || {
            gemm(m, 48, k, &mut y, n, &w, &x, 1, n as isize);
            gemm(m, 1, k, &mut y[48..], n, &w, &x[48..], 1, n as isize);
        });
        println!(
            "512 x 512 x 49, caches flushed {flush:5}: one call {:.3} ms, 48 + 1 {:.3} ms",
            one / 1e3,
            two / 1e3
        );
    }
    black_box(&junk);
}

fn transpose() {
    let (r, c) = (1024, 64);
    let a: Vec<f32> = (0..r * c).map(|i| i as f32).collect();
    let mut t = vec![0f32; r * c];
    let naive = median_us(
        41,
        || {},
        || {
            for i in 0..r {
                for j in 0..c {
                    t[j * r + i] = a[i * c + j];
                }
            }
            black_box(&t);
        },
    );
    let blocked = median_us(
        41,
        || {},
        || transpose_into(&a, r, c, &mut t).expect("sizes"),
    );
    println!(
        "1024 x 64 transpose: element by element {naive:.1} us, transpose_into {blocked:.1} us"
    );
}

fn main() {
    match std::env::args().nth(1).as_deref() {
        Some("wake") => wake(),
        Some("gemm-layout") => gemm_layout(),
        Some("split") => split(),
        Some("transpose") => transpose(),
        _ => eprintln!("usage: probes wake|gemm-layout|split|transpose"),
    }
}
