//! Load-time rewrites of products with constant weights: mostly zero weights to CSR
//! (`optimize::sparse_weights`) and transposed Gemm weights stored row-major
//! (`optimize::pretranspose_gemm_weights`). Models written by `onnx::write`, read back, and
//! run with and without the rewrites on random inputs.
use elide_graph::onnx::{
    self,
    write::{attr_float, attr_int, Dim, ModelWriter},
};
use elide_graph::ops::Op;
use elide_graph::optimize::{optimize, pretranspose_gemm_weights, sparse_weights};
use elide_graph::Value;
use elide_kernels::rng::SplitMix64;

/// `[rows, cols]` values, each nonzero with probability `density`.
fn sparse_values(r: &mut SplitMix64, n: usize, density: f32) -> Vec<f32> {
    (0..n)
        .map(|_| {
            if r.uniform() < density {
                r.range(-1.0, 1.0)
            } else {
                0.0
            }
        })
        .collect()
}

fn run(model: &[u8], rewrite: bool, x: &Value) -> (Vec<f32>, Vec<usize>, usize) {
    let mut g = onnx::from_bytes(model).unwrap();
    let sparse = if rewrite {
        optimize(&mut g).unwrap()[3]
    } else {
        0
    };
    let y = g.run(vec![x.clone()]).unwrap().remove(0);
    let a = y.as_f32().unwrap();
    (a.iter().copied().collect(), a.shape().to_vec(), sparse)
}

fn close(a: &[f32], b: &[f32], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= 1e-5 * (1.0 + y.abs()),
            "{what} [{i}]: {x} vs {y}"
        );
    }
}

/// Gemm (both weight layouts; bias of shape [n], [1, n], scalar or none; alpha, beta) then
/// Relu, on batches of 1 and 5: the rewritten graph equals the plain one.
#[test]
fn gemm_rewrite_equals_the_dense_graph() {
    let mut r = SplitMix64::new(1);
    let (k, n) = (61, 37);
    let biases: [Option<Vec<usize>>; 6] = [
        Some(vec![n]),
        Some(vec![1, n]),
        Some(vec![1]),
        Some(vec![1, 1]),
        Some(vec![]),
        None,
    ];
    for density in [0.03f32, 0.08] {
        for trans_b in [false, true] {
            for bias in &biases {
                let wdims = if trans_b { [n, k] } else { [k, n] };
                let mut m = ModelWriter::new("t", 13);
                m.input("x", &[Dim::Named("N".into()), Dim::Fixed(k)]);
                m.initializer("w", &wdims, &sparse_values(&mut r, k * n, density))
                    .unwrap();
                let mut ins = vec!["x", "w"];
                if let Some(d) = bias {
                    let len = d.iter().product();
                    m.initializer("c", d, &r.vec(len, -1.0, 1.0)).unwrap();
                    ins.push("c");
                }
                let attrs = vec![
                    attr_int("transB", trans_b as i64),
                    attr_float("alpha", 0.7),
                    attr_float("beta", 1.3),
                ];
                m.node("Gemm", &ins, &["g"], attrs);
                m.node("Relu", &["g"], &["y"], vec![]);
                m.output("y", &[Dim::Named("N".into()), Dim::Fixed(n)]);
                let bytes = m.to_bytes();
                for rows in [1, 5] {
                    let x = Value::f32(&[rows, k], r.vec(rows * k, -2.0, 2.0)).unwrap();
                    let (want, shape, _) = run(&bytes, false, &x);
                    let (got, gshape, converted) = run(&bytes, true, &x);
                    let what =
                        format!("density {density} transB {trans_b} bias {bias:?} rows {rows}");
                    assert_eq!(converted, 1, "{what}");
                    assert_eq!(gshape, shape, "{what}");
                    close(&got, &want, &what);
                }
            }
        }
    }
}

/// The rewritten node holds the CSR form, fused the Relu, and picks CSR by sparsity and
/// batch (at 92% zeros one row runs dense, several rows CSR; at 97% both CSR).
#[test]
fn rewrite_fuses_relu_and_chooses_by_batch() {
    let mut r = SplitMix64::new(2);
    for (density, one_row_csr) in [(0.08f32, false), (0.03, true)] {
        let mut m = ModelWriter::new("t", 13);
        m.input("x", &[Dim::Fixed(1), Dim::Fixed(500)]);
        // Exactly round(density * n) nonzeros, so the fraction of zeros is known.
        let mut w = vec![0.0; 500 * 400];
        let len = w.len();
        let nnz = (density * len as f32) as usize;
        for i in 0..nnz {
            w[(i * 7919) % len] = r.range(0.1, 1.0);
        }
        m.initializer("w", &[500, 400], &w).unwrap();
        m.node("MatMul", &["x", "w"], &["h"], vec![]);
        m.node("Relu", &["h"], &["y"], vec![]);
        m.output("y", &[Dim::Fixed(1), Dim::Fixed(400)]);
        let mut g = onnx::from_bytes(&m.to_bytes()).unwrap();
        assert_eq!(sparse_weights(&mut g, 0.9), 1);
        assert_eq!(g.nodes.len(), 1, "Relu fused");
        let Op::SparseLinear(s) = &g.nodes[0].op else {
            panic!("not rewritten: {:?}", g.nodes[0].op.kind())
        };
        assert!(s.layer.relu);
        assert_eq!(s.layer.weight.nnz(), nnz);
        assert_eq!(s.uses_csr(1), one_row_csr, "density {density}");
        assert!(s.uses_csr(2));
        // Dense weights are kept only where a batch can still run on them.
        let w = g.value("w").unwrap();
        assert_eq!(g.constants.contains_key(&w), !one_row_csr);
        assert_eq!(g.nodes[0].inputs[1].is_some(), !one_row_csr);
        let x = Value::f32(&[1, 500], vec![0.5; 500]).unwrap();
        assert_eq!(g.run(vec![x]).unwrap()[0].shape(), [1, 400]);
    }
}

/// MatMul with a batched (3-D) input; products that must stay dense are left alone: weights
/// below the threshold, weights computed at run time, a per-row bias, transA.
#[test]
fn matmul_3d_and_what_is_not_rewritten() {
    let mut r = SplitMix64::new(3);
    let (k, n) = (20, 9);
    let mut m = ModelWriter::new("t", 13);
    m.input("x", &[Dim::Fixed(2), Dim::Fixed(3), Dim::Fixed(k)]);
    m.initializer("w", &[k, n], &sparse_values(&mut r, k * n, 0.05))
        .unwrap();
    m.node("MatMul", &["x", "w"], &["y"], vec![]);
    m.output("y", &[Dim::Fixed(2), Dim::Fixed(3), Dim::Fixed(n)]);
    let bytes = m.to_bytes();
    let x = Value::f32(&[2, 3, k], r.vec(6 * k, -1.0, 1.0)).unwrap();
    let (want, shape, _) = run(&bytes, false, &x);
    // Rewritten, and 6 rows run in CSR.
    let mut g = onnx::from_bytes(&bytes).unwrap();
    assert_eq!(sparse_weights(&mut g, 0.0), 1);
    let Op::SparseLinear(s) = &g.nodes[0].op else {
        panic!("not rewritten")
    };
    assert!(s.uses_csr(6), "sparsity {}", s.sparsity());
    let y = g.run(vec![x.clone()]).unwrap().remove(0);
    assert_eq!(y.shape(), shape.as_slice());
    close(
        &y.as_f32().unwrap().iter().copied().collect::<Vec<_>>(),
        &want,
        "3-D MatMul",
    );

    // Dense weights stay dense.
    let mut g = onnx::from_bytes(&bytes).unwrap();
    let dense = Value::f32(&[k, n], r.vec(k * n, 0.5, 1.0)).unwrap();
    let wid = g.value("w").unwrap();
    g.constants.insert(wid, dense);
    assert_eq!(sparse_weights(&mut g, 0.9), 0);

    // Weights from a graph input, a per-row C, transA: not rewritten.
    let mut m = ModelWriter::new("t", 13);
    m.input("x", &[Dim::Fixed(4), Dim::Fixed(k)]);
    m.input("w", &[Dim::Fixed(k), Dim::Fixed(n)]);
    m.initializer("z", &[k, n], &vec![0.0; k * n]).unwrap();
    m.initializer("c", &[4, n], &vec![1.0; 4 * n]).unwrap();
    m.node("MatMul", &["x", "w"], &["a"], vec![]);
    m.node("Gemm", &["x", "z", "c"], &["b"], vec![]);
    m.node("Gemm", &["x", "z"], &["d"], vec![attr_int("transA", 1)]);
    m.output_unshaped("a")
        .output_unshaped("b")
        .output_unshaped("d");
    m.initializer("c3", &[1, 1, n], &vec![1.0; n]).unwrap();
    m.node("Gemm", &["x", "z", "c3"], &["e"], vec![]);
    m.output_unshaped("e");
    let mut g = onnx::from_bytes(&m.to_bytes()).unwrap();
    assert_eq!(sparse_weights(&mut g, 0.5), 0);
}

/// A wrong input width (the model leaves it symbolic) is a clear error naming the node, not a
/// panic.
#[test]
fn wrong_input_width_is_an_error() {
    let mut m = ModelWriter::new("t", 13);
    m.input("x", &[Dim::Named("N".into()), Dim::Named("K".into())]);
    m.initializer("w", &[8, 3], &[0.0; 24]).unwrap();
    m.node("MatMul", &["x", "w"], &["y"], vec![]);
    m.output_unshaped("y");
    let mut g = onnx::from_bytes(&m.to_bytes()).unwrap();
    assert_eq!(sparse_weights(&mut g, 0.9), 1);
    let err = g
        .run(vec![Value::f32(&[2, 7], vec![0.0; 14]).unwrap()])
        .unwrap_err()
        .to_string();
    assert!(err.contains("MatMul") && err.contains("node 'y'"), "{err}");
    assert!(err.contains("8 inputs"), "{err}");
}

/// The writer refuses initializers that do not match their shape or are not finite.
#[test]
fn writer_checks_initializers() {
    let mut m = ModelWriter::new("t", 13);
    assert!(m.initializer("a", &[2, 2], &[1.0; 3]).is_err());
    assert!(m.initializer("b", &[2], &[1.0, f32::NAN]).is_err());
    assert!(m.initializer("c", &[2], &[1.0, 2.0]).is_ok());
}

/// Dense weights with transB, shared by a second Gemm without it: the first gets a row-major
/// copy (trans_b off), the second still reads the original, and the outputs are unchanged.
#[test]
fn transposed_gemm_weights_are_stored_row_major() {
    let mut r = SplitMix64::new(4);
    let (k, n, rows) = (19, 23, 3);
    let mut m = ModelWriter::new("t", 13);
    m.input("x", &[Dim::Fixed(rows), Dim::Fixed(k)]);
    m.input("x2", &[Dim::Fixed(rows), Dim::Fixed(n)]);
    m.initializer("w", &[n, k], &r.vec(n * k, 0.1, 1.0))
        .unwrap();
    m.initializer("c", &[n], &r.vec(n, -1.0, 1.0)).unwrap();
    m.node(
        "Gemm",
        &["x", "w", "c"],
        &["y"],
        vec![attr_int("transB", 1), attr_float("alpha", 0.5)],
    );
    m.node("Gemm", &["x2", "w"], &["z"], vec![]);
    m.output_unshaped("y").output_unshaped("z");
    let bytes = m.to_bytes();
    let ins = vec![
        Value::f32(&[rows, k], r.vec(rows * k, -1.0, 1.0)).unwrap(),
        Value::f32(&[rows, n], r.vec(rows * n, -1.0, 1.0)).unwrap(),
    ];
    let plain = onnx::from_bytes(&bytes).unwrap().run(ins.clone()).unwrap();
    let mut g = onnx::from_bytes(&bytes).unwrap();
    assert_eq!(pretranspose_gemm_weights(&mut g), 1);
    assert!(matches!(g.nodes[0].op, Op::Gemm { trans_b: false, .. }));
    assert!(
        g.constants.contains_key(&g.value("w").unwrap()),
        "still read by the second Gemm"
    );
    let got = g.run(ins).unwrap();
    for (a, b) in got.iter().zip(&plain) {
        let (a, b) = (a.as_f32().unwrap(), b.as_f32().unwrap());
        assert_eq!(a.shape(), b.shape());
        close(
            &a.iter().copied().collect::<Vec<_>>(),
            &b.iter().copied().collect::<Vec<_>>(),
            "pretransposed",
        );
    }
}

/// Two transB Gemms sharing one weight get one transposed copy, and the original goes when
/// nothing else reads it.
#[test]
fn shared_transposed_weights_are_copied_once() {
    let mut r = SplitMix64::new(6);
    let (k, n) = (5, 4);
    let mut m = ModelWriter::new("t", 13);
    m.input("x", &[Dim::Fixed(2), Dim::Fixed(k)]);
    m.initializer("w", &[n, k], &r.vec(n * k, -1.0, 1.0))
        .unwrap();
    m.node("Gemm", &["x", "w"], &["y"], vec![attr_int("transB", 1)]);
    m.node("Gemm", &["x", "w"], &["z"], vec![attr_int("transB", 1)]);
    m.output_unshaped("y").output_unshaped("z");
    let bytes = m.to_bytes();
    let x = vec![Value::f32(&[2, k], r.vec(2 * k, -1.0, 1.0)).unwrap()];
    let plain = onnx::from_bytes(&bytes).unwrap().run(x.clone()).unwrap();
    let mut g = onnx::from_bytes(&bytes).unwrap();
    let before = g.constants.len();
    assert_eq!(pretranspose_gemm_weights(&mut g), 2);
    assert_eq!(g.nodes[0].inputs[1], g.nodes[1].inputs[1]);
    assert_eq!(g.constants.len(), before, "one copy replaced the original");
    assert!(!g.constants.contains_key(&g.value("w").unwrap()));
    let got = g.run(x).unwrap();
    for (a, b) in got.iter().zip(&plain) {
        let (a, b) = (a.as_f32().unwrap(), b.as_f32().unwrap());
        close(
            &a.iter().copied().collect::<Vec<_>>(),
            &b.iter().copied().collect::<Vec<_>>(),
            "shared",
        );
    }
}
