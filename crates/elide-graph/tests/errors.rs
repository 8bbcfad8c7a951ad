//! Bad models and bad inputs are typed errors that name the node and op, never panics.
use elide_graph::onnx::proto::*;
use elide_graph::{onnx, GraphError, Value};
use prost::Message;

fn value_info(name: &str, dims: &[i64]) -> ValueInfoProto {
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            tensor_type: Some(TypeProtoTensor {
                elem_type: data_type::FLOAT,
                shape: Some(TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|&d| Dimension {
                            dim_value: Some(d),
                            dim_param: None,
                        })
                        .collect(),
                }),
            }),
            ..Default::default()
        }),
    }
}

fn node(op: &str, name: &str, inputs: &[&str], outputs: &[&str]) -> NodeProto {
    NodeProto {
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        name: name.into(),
        op_type: op.into(),
        ..Default::default()
    }
}

fn model(nodes: Vec<NodeProto>, opset: i64) -> Vec<u8> {
    ModelProto {
        ir_version: 8,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: opset,
        }],
        graph: Some(GraphProto {
            node: nodes,
            name: "g".into(),
            input: vec![value_info("x", &[1, 2, 4, 4])],
            output: vec![value_info("y", &[1, 2, 4, 4])],
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_to_vec()
}

#[test]
fn a_small_model_runs() {
    let g = onnx::from_bytes(&model(vec![node("Relu", "r", &["x"], &["y"])], 13)).unwrap();
    let x = Value::f32(&[1, 2, 4, 4], (0..32).map(|i| i as f32 - 16.0).collect()).unwrap();
    let y = g.run(vec![x]).unwrap();
    assert_eq!(
        y[0].as_f32().unwrap().iter().filter(|&&v| v == 0.0).count(),
        17
    );
}

#[test]
fn unsupported_op_names_node_and_op() {
    let e =
        onnx::from_bytes(&model(vec![node("NoSuchOp", "mix", &["x"], &["y"])], 13)).unwrap_err();
    assert!(matches!(e, GraphError::Unsupported { .. }), "{e}");
    let msg = e.to_string();
    // Node, op, domain and opset.
    for want in ["NoSuchOp", "mix", "ai.onnx", "opset 13"] {
        assert!(msg.contains(want), "{msg}");
    }
}

#[test]
fn unknown_attribute_is_an_error() {
    let mut n = node("Relu", "r", &["x"], &["y"]);
    n.attribute.push(AttributeProto {
        name: "fancy".into(),
        r#type: attr_type::INT,
        i: 1,
        ..Default::default()
    });
    let msg = onnx::from_bytes(&model(vec![n], 13))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("fancy") && msg.contains("'r'"), "{msg}");
}

#[test]
fn corrupt_and_unsupported_files_are_errors() {
    assert!(matches!(
        onnx::from_bytes(b"\xff\xff\xff not protobuf"),
        Err(GraphError::Decode(_))
    ));
    let bytes = model(vec![node("Relu", "r", &["x"], &["y"])], 13);
    assert!(
        onnx::from_bytes(&bytes[..bytes.len() / 2]).is_err(),
        "truncated file"
    );
    let msg = onnx::from_bytes(&model(vec![node("Relu", "r", &["x"], &["y"])], 6))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("opset 6"), "{msg}");
    assert!(onnx::load("/nonexistent/model.onnx").is_err());
    // A node reading a value nobody produces.
    let msg = onnx::from_bytes(&model(vec![node("Relu", "r", &["ghost"], &["y"])], 13))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("ghost"), "{msg}");
    // Conv weights computed at run time: the layer is built per run (here x conv x, one
    // output: the sum of x squared).
    let g = onnx::from_bytes(&model(vec![node("Conv", "c", &["x", "x"], &["y"])], 13)).unwrap();
    let x: Vec<f32> = (0..32).map(|i| i as f32 * 0.25 - 3.0).collect();
    let y = g
        .run(vec![Value::f32(&[1, 2, 4, 4], x.clone()).unwrap()])
        .unwrap();
    let want: f32 = x.iter().map(|v| v * v).sum();
    assert_eq!(y[0].shape(), &[1, 1, 1, 1]);
    assert!(
        (y[0].to_f64_vec()[0] as f32 - want).abs() < 1e-3,
        "{:?} vs {want}",
        y[0]
    );
}

#[test]
fn bad_inputs_are_errors() {
    let g = onnx::from_bytes(&model(vec![node("Relu", "r", &["x"], &["y"])], 13)).unwrap();
    let wrong = Value::f32(&[1, 3, 4, 4], vec![0.0; 48]).unwrap();
    assert!(g
        .run(vec![wrong])
        .unwrap_err()
        .to_string()
        .contains("shape"));
    let mut data = vec![0.0; 32];
    data[5] = f32::NAN;
    let nan = Value::f32(&[1, 2, 4, 4], data).unwrap();
    assert!(g
        .run(vec![nan])
        .unwrap_err()
        .to_string()
        .contains("non-finite"));
    assert!(g.run(vec![]).is_err());
    // Shape mismatch deep inside: Add of incompatible shapes names the node.
    let mut bad = model(vec![node("Add", "sum", &["x", "k"], &["y"])], 13);
    let mut m = ModelProto::decode(bad.as_slice()).unwrap();
    m.graph.as_mut().unwrap().initializer.push(TensorProto {
        dims: vec![3],
        data_type: data_type::FLOAT,
        float_data: vec![1.0, 2.0, 3.0],
        name: "k".into(),
        ..Default::default()
    });
    bad = m.encode_to_vec();
    let g = onnx::from_bytes(&bad).unwrap();
    let msg = g
        .run(vec![Value::f32(&[1, 2, 4, 4], vec![0.0; 32]).unwrap()])
        .unwrap_err()
        .to_string();
    assert!(msg.contains("sum") && msg.contains("broadcast"), "{msg}");
}
