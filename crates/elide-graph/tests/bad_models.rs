//! Malformed and hostile models (an audit's findings): zero strides and kernels, duplicate
//! producers, undeclared outputs, mistyped inputs and sizes that would exhaust memory are
//! typed errors naming the node and op, found before anything large is allocated.
use elide_graph::onnx::proto::*;
use elide_graph::onnx::write::{attr_int, attr_ints};
use elide_graph::ops::MAX_ELEMENTS;
use elide_graph::sparse::Mode;
use elide_graph::{onnx, optimize, GraphError, Value};
use elide_kernels::sparse::Mask;
use prost::Message;

fn value_info(name: &str, elem_type: i32, dims: &[i64]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|&d| Dimension {
            dim_value: Some(d),
            dim_param: None,
        })
        .collect();
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            tensor_type: Some(TypeProtoTensor {
                elem_type,
                shape: Some(TensorShapeProto { dim }),
            }),
            ..Default::default()
        }),
    }
}

fn node(op: &str, name: &str, io: (&[&str], &[&str]), attrs: Vec<AttributeProto>) -> NodeProto {
    NodeProto {
        input: io.0.iter().map(|s| s.to_string()).collect(),
        output: io.1.iter().map(|s| s.to_string()).collect(),
        name: name.into(),
        op_type: op.into(),
        attribute: attrs,
        ..Default::default()
    }
}

fn f32s(name: &str, dims: &[i64], data: Vec<f32>) -> TensorProto {
    TensorProto {
        dims: dims.to_vec(),
        data_type: data_type::FLOAT,
        float_data: data,
        name: name.into(),
        ..Default::default()
    }
}

fn i64s(name: &str, data: &[i64]) -> TensorProto {
    TensorProto {
        dims: vec![data.len() as i64],
        data_type: data_type::INT64,
        int64_data: data.to_vec(),
        name: name.into(),
        ..Default::default()
    }
}

/// A graph of `nodes` and `init` with the given inputs, writing output `y`.
fn graph(nodes: Vec<NodeProto>, init: Vec<TensorProto>, input: Vec<ValueInfoProto>) -> GraphProto {
    GraphProto {
        node: nodes,
        name: "g".into(),
        initializer: init,
        input,
        output: vec![value_info("y", data_type::FLOAT, &[])],
        ..Default::default()
    }
}

fn encode(g: GraphProto) -> Vec<u8> {
    ModelProto {
        ir_version: 8,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: 13,
        }],
        graph: Some(g),
        ..Default::default()
    }
    .encode_to_vec()
}

/// A model on input `x` `[1, 3, 8, 8]`.
fn model(nodes: Vec<NodeProto>, init: Vec<TensorProto>) -> Vec<u8> {
    encode(graph(
        nodes,
        init,
        vec![value_info("x", data_type::FLOAT, &[1, 3, 8, 8])],
    ))
}

fn x() -> Value {
    Value::f32(&[1, 3, 8, 8], (0..192).map(|i| i as f32).collect()).unwrap()
}

fn load_err(bytes: &[u8]) -> GraphError {
    onnx::from_bytes(bytes).expect_err("the model should be refused at load")
}

fn run_err(bytes: &[u8], input: Value) -> GraphError {
    let g = onnx::from_bytes(bytes).expect("the model loads");
    g.run(vec![input]).expect_err("the run should fail")
}

/// An `Invalid` error about node `name` whose message contains `want`.
fn assert_invalid(e: &GraphError, name: &str, op: &str, want: &str) {
    match e {
        GraphError::Invalid {
            node,
            op: o,
            detail,
        } => {
            assert_eq!((node.as_str(), o.as_str()), (name, op), "{e}");
            assert!(detail.contains(want), "{e}");
        }
        other => panic!("expected an invalid-node error about {want}, got {other:?}"),
    }
}

/// A `TooLarge` error about node `name` (op `op`) mentioning `dim` in the shape.
fn assert_too_large(e: &GraphError, name: &str, op: &str, dim: &str) {
    match e {
        GraphError::TooLarge {
            node, op: o, shape, ..
        } => {
            assert_eq!((node.as_str(), o.as_str()), (name, op), "{e}");
            assert!(shape.contains(dim), "{e}");
            assert!(e.to_string().contains(&MAX_ELEMENTS.to_string()), "{e}");
        }
        other => panic!("expected a too-large error for {name}, got {other:?}"),
    }
}

fn weights(name: &str, dims: [i64; 4]) -> TensorProto {
    let n = dims.iter().product::<i64>() as usize;
    f32s(name, &dims, vec![1.0; n])
}

#[test]
fn zero_strides_kernels_and_dilations_of_pools_are_errors() {
    for op in ["MaxPool", "AveragePool"] {
        let pool = |attrs| model(vec![node(op, "p", (&["x"], &["y"]), attrs)], vec![]);
        let e = load_err(&pool(vec![
            attr_ints("kernel_shape", &[2, 2]),
            attr_ints("strides", &[0, 0]),
        ]));
        assert_invalid(&e, "p", op, "stride [0, 0] has a zero entry");
        let e = load_err(&pool(vec![attr_ints("kernel_shape", &[0, 0])]));
        assert_invalid(&e, "p", op, "kernel [0, 0] has a zero side");
        let e = load_err(&pool(vec![
            attr_ints("kernel_shape", &[2, 2]),
            attr_ints("dilations", &[1, 0]),
        ]));
        assert_invalid(&e, "p", op, "dilation [1, 0] has a zero entry");
        // A window that could sit wholly in the padding pools nothing.
        let e = load_err(&pool(vec![
            attr_ints("kernel_shape", &[2, 2]),
            attr_ints("pads", &[0, 2, 0, 0]),
        ]));
        assert_invalid(&e, "p", op, "smaller than the kernel");
    }
}

#[test]
fn conv_transpose_geometry_is_checked() {
    let w = || weights("w", [3, 4, 3, 3]);
    let convt = |attrs| {
        model(
            vec![node("ConvTranspose", "t", (&["x", "w"], &["y"]), attrs)],
            vec![w()],
        )
    };
    let cases = [
        (
            vec![attr_ints("strides", &[0, 0])],
            "stride [0, 0] has a zero entry",
        ),
        (
            vec![attr_ints("dilations", &[0, 1])],
            "dilation [0, 1] has a zero entry",
        ),
        (vec![attr_int("group", 0)], "groups must be at least 1"),
        (
            vec![
                attr_ints("strides", &[2, 2]),
                attr_ints("output_padding", &[2, 0]),
            ],
            "output_padding [2, 0] must be smaller",
        ),
    ];
    for (attrs, want) in cases {
        assert_invalid(&load_err(&convt(attrs)), "t", "ConvTranspose", want);
    }
    let empty_kernel = model(
        vec![node("ConvTranspose", "t", (&["x", "w"], &["y"]), vec![])],
        vec![f32s("w", &[3, 4, 0, 0], vec![])],
    );
    assert_invalid(
        &load_err(&empty_kernel),
        "t",
        "ConvTranspose",
        "kernel [0, 0] has a zero side",
    );
    // No output (or input) channels: an error at load, not a panic when it runs or folds.
    for dims in [[3, 0, 2, 2], [0, 4, 2, 2]] {
        let no_channels = model(
            vec![node("ConvTranspose", "t", (&["x", "w"], &["y"]), vec![])],
            vec![f32s("w", &dims, vec![])],
        );
        assert_invalid(
            &load_err(&no_channels),
            "t",
            "ConvTranspose",
            "zero dimension",
        );
    }
    // Legal output padding still runs: (8 - 1) * 2 + 3 + 1 = 18 per side.
    let ok = onnx::from_bytes(&convt(vec![
        attr_ints("strides", &[2, 2]),
        attr_ints("output_padding", &[1, 1]),
    ]))
    .unwrap();
    assert_eq!(ok.run(vec![x()]).unwrap()[0].shape(), [1, 4, 18, 18]);
}

#[test]
fn conv_groups_must_be_positive_and_fit_the_channels() {
    let conv = |group, w| {
        model(
            vec![node(
                "Conv",
                "c",
                (&["x", "w"], &["y"]),
                vec![attr_int("group", group)],
            )],
            vec![w],
        )
    };
    let e = load_err(&conv(0, weights("w", [4, 3, 3, 3])));
    assert_invalid(&e, "c", "Conv", "group 0");
    let e = load_err(&conv(-2, weights("w", [4, 3, 3, 3])));
    assert_invalid(&e, "c", "Conv", "group -2");
    let e = load_err(&conv(3, weights("w", [4, 1, 3, 3])));
    assert_invalid(&e, "c", "Conv", "not divisible by 3 groups");
    // Two groups of 3 input channels need 6: the kernels' error names the node.
    let e = run_err(&conv(2, weights("w", [4, 3, 3, 3])), x());
    assert_invalid(&e, "c", "Conv", "input has 3 channels, layer expects 6");
}

#[test]
fn every_value_has_one_producer() {
    let two = model(
        vec![
            node("Relu", "first", (&["x"], &["y"]), vec![]),
            node("Sigmoid", "second", (&["x"], &["y"]), vec![]),
        ],
        vec![],
    );
    let e = load_err(&two);
    assert_invalid(
        &e,
        "second",
        "Sigmoid",
        "'y' is already produced by node 'first' (Relu)",
    );
    // A node writing over an initializer or a graph input.
    let over_init = model(
        vec![
            node("Relu", "r", (&["x"], &["k"]), vec![]),
            node("Relu", "s", (&["k"], &["y"]), vec![]),
        ],
        vec![f32s("k", &[1], vec![1.0])],
    );
    assert_invalid(&load_err(&over_init), "r", "Relu", "initializer 'k'");
    let over_input = model(
        vec![node("Relu", "r", (&["x"], &["x", "y"]), vec![])],
        vec![],
    );
    assert_invalid(&load_err(&over_input), "r", "Relu", "graph input 'x'");
    let twice = model(
        vec![node("Relu", "r", (&["x"], &["y"]), vec![])],
        vec![f32s("k", &[1], vec![1.0]), f32s("k", &[1], vec![2.0])],
    );
    assert!(load_err(&twice)
        .to_string()
        .contains("'k' is defined twice"));
}

#[test]
fn a_graph_without_outputs_is_refused() {
    let mut g = graph(
        vec![node("Relu", "r", (&["x"], &["y"]), vec![])],
        vec![],
        vec![value_info("x", data_type::FLOAT, &[1, 3, 8, 8])],
    );
    g.output.clear();
    let e = load_err(&encode(g));
    assert!(matches!(e, GraphError::Model(_)), "{e}");
    assert!(e.to_string().contains("no outputs"), "{e}");
}

#[test]
fn inputs_are_checked_against_their_declared_element_type() {
    let cast = |elem| {
        encode(graph(
            vec![node("Cast", "c", (&["i"], &["y"]), vec![attr_int("to", 1)])],
            vec![],
            vec![value_info("i", elem, &[2, 3])],
        ))
    };
    let g = onnx::from_bytes(&cast(data_type::INT64)).unwrap();
    let e = g
        .run(vec![Value::f32(&[2, 3], vec![1.0; 6]).unwrap()])
        .unwrap_err();
    assert!(matches!(e, GraphError::Model(_)), "{e}");
    assert!(
        e.to_string().contains("'i' is declared i64, got f32"),
        "{e}"
    );
    let ints = Value::i64(&[2, 3], vec![-1, 0, 1, 2, 3, 4]).unwrap();
    let y = g.run(vec![ints]).unwrap();
    assert_eq!(y[0].as_f32().unwrap().iter().sum::<f32>(), 9.0);
    // Float inputs refuse integers; types the engine cannot hold are refused at load.
    let g = onnx::from_bytes(&cast(data_type::FLOAT)).unwrap();
    let e = g
        .run(vec![Value::i64(&[2, 3], vec![0; 6]).unwrap()])
        .unwrap_err();
    assert!(e.to_string().contains("declared f32, got i64"), "{e}");
    const FLOAT16: i32 = 10;
    assert!(
        onnx::from_bytes(&cast(FLOAT16)).is_ok(),
        "f16 inputs are held"
    );
    const FLOAT8E8M0: i32 = 24;
    let e = load_err(&cast(FLOAT8E8M0));
    assert!(matches!(e, GraphError::NotSupported(_)), "{e}");
    assert!(e.to_string().contains("FLOAT8E8M0 (24)"), "{e}");
}

#[test]
fn a_masked_run_checks_its_inputs_too() {
    let g = onnx::from_bytes(&model(
        vec![node("Relu", "r", (&["x"], &["y"]), vec![])],
        vec![],
    ))
    .unwrap();
    let wrong = Value::f32(&[1, 3, 4, 4], vec![0.0; 48]).unwrap();
    let mask = Mask::from_fn([1, 4, 4], |_, _, _| true);
    let e = g.run_masked(vec![wrong], &mask, Mode::Fast).unwrap_err();
    assert!(
        e.to_string()
            .contains("declares [Some(1), Some(3), Some(8), Some(8)]"),
        "{e}"
    );
}

#[test]
fn huge_declared_inputs_and_initializers_are_refused_at_load() {
    let g = graph(
        vec![node("Relu", "r", (&["x"], &["y"]), vec![])],
        vec![],
        vec![value_info("x", data_type::FLOAT, &[1, 3, 100_000, 100_000])],
    );
    let e = load_err(&encode(g));
    assert!(matches!(e, GraphError::Model(_)), "{e}");
    assert!(
        e.to_string().contains("100000") && e.to_string().contains("'x'"),
        "{e}"
    );
    // Dims whose product wraps to the data's length (2^32 * 2^32 = 0 in 64 bits).
    let wraps = f32s("w", &[1 << 32, 1 << 32], vec![]);
    let e = load_err(&model(
        vec![node("Relu", "r", (&["x"], &["y"]), vec![])],
        vec![wraps],
    ));
    assert!(e.to_string().contains("more than"), "{e}");
}

/// Ops whose output would pass the cap: refused when the size is known, before allocating.
#[test]
fn huge_outputs_are_typed_errors_naming_node_op_and_shape() {
    let conv = model(
        vec![node(
            "Conv",
            "c",
            (&["x", "w"], &["y"]),
            vec![attr_ints("pads", &[1_000_000; 4])],
        )],
        vec![weights("w", [4, 3, 3, 3])],
    );
    assert_too_large(&run_err(&conv, x()), "c", "Conv", "2000008");
    let pad = model(
        vec![node("Pad", "p", (&["x", "pads"], &["y"]), vec![])],
        vec![i64s(
            "pads",
            &[0, 0, 100_000, 100_000, 0, 0, 100_000, 100_000],
        )],
    );
    assert_too_large(&run_err(&pad, x()), "p", "Pad", "200008");
    let fill = model(
        vec![node("ConstantOfShape", "f", (&["s"], &["y"]), vec![])],
        vec![i64s("s", &[100_000, 100_000, 100])],
    );
    assert_too_large(&run_err(&fill, x()), "f", "ConstantOfShape", "100000");
    // Constant folding at load meets the same guard.
    let mut g = onnx::from_bytes(&fill).unwrap();
    assert_too_large(
        &optimize::optimize(&mut g).unwrap_err(),
        "f",
        "ConstantOfShape",
        "100",
    );
    let scalar = |n: &str, v: f32| f32s(n, &[], vec![v]);
    let range = model(
        vec![node("Range", "r", (&["a", "b", "d"], &["y"]), vec![])],
        vec![scalar("a", 0.0), scalar("b", 1e12), scalar("d", 1.0)],
    );
    assert_too_large(&run_err(&range, x()), "r", "Range", "999999995904"); // 1e12 in f32
    let expand = model(
        vec![node("Expand", "e", (&["x", "s"], &["y"]), vec![])],
        vec![i64s("s", &[100_000, 100_000, 3, 8, 8])],
    );
    assert_too_large(&run_err(&expand, x()), "e", "Expand", "100000");
    let resize = |extra: TensorProto, inputs: &[&str]| {
        model(
            vec![node("Resize", "z", (inputs, &["y"]), vec![])],
            vec![extra],
        )
    };
    let scales = f32s("sc", &[4], vec![1.0, 1.0, 1e6, 1e6]);
    assert_too_large(
        &run_err(&resize(scales, &["x", "", "sc"]), x()),
        "z",
        "Resize",
        "8000000",
    );
    let sizes = i64s("sz", &[1, 3, 1_000_000_000, 1_000_000_000]);
    assert_too_large(
        &run_err(&resize(sizes, &["x", "", "", "sz"]), x()),
        "z",
        "Resize",
        "1000000000",
    );
    let convt = model(
        vec![node(
            "ConvTranspose",
            "t",
            (&["x", "w"], &["y"]),
            vec![attr_ints("strides", &[100_000, 100_000])],
        )],
        vec![weights("w", [3, 4, 3, 3])],
    );
    assert_too_large(&run_err(&convt, x()), "t", "ConvTranspose", "700003");
    let pool = model(
        vec![node(
            "MaxPool",
            "p",
            (&["x"], &["y"]),
            vec![
                attr_ints("kernel_shape", &[100_000, 100_000]),
                attr_ints("pads", &[99_999; 4]),
            ],
        )],
        vec![],
    );
    assert_too_large(&run_err(&pool, x()), "p", "MaxPool", "100007");
}

/// Operands that exist in memory but multiply into a huge result.
#[test]
fn thin_operands_cannot_broadcast_or_multiply_into_huge_outputs() {
    const N: i64 = 100_000;
    let col = |name: &str| value_info(name, data_type::FLOAT, &[N, 1]);
    let row = f32s("r", &[1, N], vec![1.0; N as usize]);
    for (op, name) in [("Add", "a"), ("MatMul", "m")] {
        let bytes = encode(graph(
            vec![node(op, name, (&["c", "r"], &["y"]), vec![])],
            vec![row.clone()],
            vec![col("c")],
        ));
        let c = Value::f32(&[N as usize, 1], vec![1.0; N as usize]).unwrap();
        assert_too_large(&run_err(&bytes, c), name, op, "100000");
    }
}

/// Window arithmetic on attributes from the model: a window far larger than the image costs
/// only the image (before, 10^10 taps per output), and averages divide by the right counts.
#[test]
fn huge_pool_windows_cost_only_the_image() {
    let attrs = |extra: Vec<AttributeProto>| {
        let mut a = vec![
            attr_ints("kernel_shape", &[100_000, 100_000]),
            attr_ints("pads", &[99_999; 4]),
            attr_ints("strides", &[100_000, 100_000]),
        ];
        a.extend(extra);
        a
    };
    let run = |op: &str, extra| {
        let g = onnx::from_bytes(&model(
            vec![node(op, "p", (&["x"], &["y"]), attrs(extra))],
            vec![],
        ))
        .unwrap();
        g.run(vec![x()]).unwrap().remove(0)
    };
    // Per channel: window (0, 0) covers pixel (0, 0), (0, 1) row 0 columns 1-7, (1, 0)
    // rows 1-7 of column 0, (1, 1) the remaining 7x7 block.
    let y = run("MaxPool", vec![]);
    assert_eq!(y.shape(), [1, 3, 2, 2]);
    let y = y.as_f32().unwrap();
    assert_eq!(
        y.iter().take(4).copied().collect::<Vec<_>>(),
        [0.0, 7.0, 56.0, 63.0]
    );
    assert_eq!(y[[0, 2, 1, 1]], 191.0);
    let y = run("AveragePool", vec![]);
    let y = y.as_f32().unwrap();
    // Mean of row 0 columns 1-7: 4; of the 7x7 block at (1, 1): 36.
    assert_eq!([y[[0, 0, 0, 1]], y[[0, 0, 1, 1]]], [4.0, 36.0]);
    // Counting the padding: window (0, 0) spans 10^10 positions, one of them the image's.
    let y = run("AveragePool", vec![attr_int("count_include_pad", 1)]);
    let y = y.as_f32().unwrap();
    let first = y[[0, 1, 0, 0]];
    assert!((first - 64.0 / 1e10).abs() < 1e-12, "{first}");
}

#[test]
fn empty_and_foreign_files_say_they_are_not_onnx() {
    let e = load_err(&[]);
    assert!(e.to_string().contains("empty"), "{e}");
    // Field 100 (varint 1): valid protobuf, no ONNX field at all.
    let e = load_err(&[0xa0, 0x06, 0x01]);
    assert!(e.to_string().contains("not an ONNX model"), "{e}");
}

#[test]
fn nan_clip_bounds_are_errors_and_finite_ones_clamp() {
    let clip = |lo: f32, hi: f32| {
        model(
            vec![node("Clip", "c", (&["x", "lo", "hi"], &["y"]), vec![])],
            vec![f32s("lo", &[], vec![lo]), f32s("hi", &[], vec![hi])],
        )
    };
    assert_invalid(&load_err(&clip(f32::NAN, 6.0)), "c", "Clip", "NaN");
    assert_invalid(&load_err(&clip(0.0, f32::NAN)), "c", "Clip", "NaN");
    let g = onnx::from_bytes(&clip(2.0, 6.0)).unwrap();
    let y = g.run(vec![x()]).unwrap().remove(0);
    let y = y.as_f32().unwrap();
    assert!(y.iter().all(|&v| (2.0..=6.0).contains(&v)));
    assert_eq!(y.iter().filter(|&&v| v == 6.0).count(), 192 - 6);
}

#[test]
fn nodes_without_outputs_are_errors() {
    let e = load_err(&model(
        vec![node("Relu", "r", (&["x"], &[]), vec![])],
        vec![],
    ));
    assert_invalid(&e, "r", "Relu", "no outputs");
}
