//! Networks defined in code, built from a state dict's named tensors.
use crate::graph::{DType, Graph, Input, Node};
use crate::ops::{ConvOp, Op, Pool, PoolKind, Unary};
use crate::{GraphError, Result, Value};
use elide_kernels::conv::{Activation, Conv2d, Conv2dParams};
use elide_kernels::Tensor;
use std::collections::HashMap;

/// Appends nodes to a graph, naming values as it goes.
struct Builder {
    g: Graph,
}

impl Builder {
    fn value(&mut self, name: &str) -> usize {
        self.g.names.push(name.to_string());
        self.g.names.len() - 1
    }

    fn node(&mut self, name: &str, op: Op, inputs: Vec<Option<usize>>) -> usize {
        let out = self.value(name);
        self.g.nodes.push(Node {
            name: name.to_string(),
            op_type: op.kind().to_string(),
            op,
            inputs,
            outputs: vec![out],
        });
        out
    }

    fn constant(&mut self, name: &str, v: Value) -> usize {
        let id = self.value(name);
        self.g.constants.insert(id, v);
        id
    }
}

fn tensor<'a>(sd: &'a HashMap<String, Value>, key: &str, shape: &[usize]) -> Result<&'a Value> {
    let v = sd
        .get(key)
        .ok_or_else(|| GraphError::Model(format!("the state dict has no '{key}'")))?;
    if v.shape() != shape {
        return Err(GraphError::Model(format!(
            "'{key}' is {:?}, the network needs {shape:?}",
            v.shape()
        )));
    }
    Ok(v)
}

/// The MNIST CNN of `digit-recognizer-py` 0.1.0 (`handwriting_model.pth`): three blocks of
/// conv 3x3 (padding 1) + ReLU + 2x2 max-pool (32, 64, 128 channels), flatten (1152), FC 256 +
/// ReLU, FC 10. Input `[N, 1, 28, 28]` normalised as `(x/255 - 0.1307) / 0.3081`; output logits.
pub fn mnist_cnn(sd: &HashMap<String, Value>) -> Result<Graph> {
    let mut b = Builder {
        g: Graph::default(),
    };
    let x = b.value("input");
    b.g.inputs.push(Input {
        id: x,
        shape: vec![None, Some(1), Some(28), Some(28)],
        dtype: Some(DType::F32),
    });
    let mut cur = x;
    for (i, (key, cin, cout)) in [
        ("conv_layers.0", 1, 32),
        ("conv_layers.3", 32, 64),
        ("conv_layers.6", 64, 128),
    ]
    .into_iter()
    .enumerate()
    {
        let w = tensor(sd, &format!("{key}.weight"), &[cout, cin, 3, 3])?;
        let bias = tensor(sd, &format!("{key}.bias"), &[cout])?;
        let wt = Tensor::from_vec(
            [cout, cin, 3, 3],
            w.as_f32().expect("checked f32").iter().copied().collect(),
        )?;
        let bias: Vec<f32> = bias.as_f32().expect("f32").iter().copied().collect();
        let conv = Conv2d::new(&wt, Some(&bias), Conv2dParams::same(3), Activation::Relu)?;
        cur = b.node(
            &format!("{key}+relu"),
            Op::Conv(Box::new(ConvOp { conv })),
            vec![Some(cur)],
        );
        let pool = Pool {
            kind: PoolKind::Max,
            kernel: [2, 2],
            stride: [2, 2],
            pads: [0; 4],
            dilation: [1, 1],
            ceil_mode: false,
        };
        cur = b.node(&format!("pool{i}"), Op::Pool(pool), vec![Some(cur)]);
    }
    cur = b.node("flatten", Op::Flatten { axis: 1 }, vec![Some(cur)]);
    for (key, fin, fout, relu) in [
        ("fc_layers.0", 1152, 256, true),
        ("fc_layers.2", 256, 10, false),
    ] {
        let w = b.constant(
            &format!("{key}.weight"),
            tensor(sd, &format!("{key}.weight"), &[fout, fin])?.clone(),
        );
        let bias = b.constant(
            &format!("{key}.bias"),
            tensor(sd, &format!("{key}.bias"), &[fout])?.clone(),
        );
        let gemm = Op::Gemm {
            alpha: 1.0,
            beta: 1.0,
            trans_a: false,
            trans_b: true,
        };
        cur = b.node(key, gemm, vec![Some(cur), Some(w), Some(bias)]);
        if relu {
            cur = b.node(
                &format!("{key}.relu"),
                Op::Unary(Unary::Relu),
                vec![Some(cur)],
            );
        }
    }
    b.g.outputs.push(cur);
    Ok(b.g)
}
