//! Every rewrite keeps the graph's output: optimised against unoptimised on random inputs.
use crate::graph::{Graph, Input, Node};
use crate::ops::{Binary, ConvOp, Op, Unary};
use crate::optimize::optimize;
use crate::Value;
use elide_kernels::conv::{Activation, Conv2d, Conv2dParams};
use elide_kernels::rng::SplitMix64;
use elide_kernels::Tensor;

struct B {
    g: Graph,
    rng: SplitMix64,
}

impl B {
    fn value(&mut self) -> usize {
        self.g.names.push(format!("v{}", self.g.names.len()));
        self.g.names.len() - 1
    }
    fn node(&mut self, op: Op, inputs: &[usize]) -> usize {
        let out = self.value();
        let op_type = op.kind().to_string();
        self.g.nodes.push(Node {
            name: format!("n{}", self.g.nodes.len()),
            op_type,
            op,
            inputs: inputs.iter().map(|&i| Some(i)).collect(),
            outputs: vec![out],
        });
        out
    }
    fn constant(&mut self, shape: &[usize], lo: f32, hi: f32) -> usize {
        let id = self.value();
        let n = shape.iter().product();
        let v = Value::f32(shape, self.rng.vec(n, lo, hi)).unwrap();
        self.g.constants.insert(id, v);
        id
    }
    fn scalar(&mut self, v: f32) -> usize {
        let id = self.value();
        self.g
            .constants
            .insert(id, Value::f32(&[], vec![v]).unwrap());
        id
    }
    fn conv(&mut self, x: usize, cin: usize, cout: usize, k: usize) -> usize {
        let w = Tensor::from_vec(
            [cout, cin, k, k],
            self.rng.vec(cout * cin * k * k, -0.5, 0.5),
        )
        .unwrap();
        let b = self.rng.vec(cout, -0.2, 0.2);
        let conv = Conv2d::new(&w, Some(&b), Conv2dParams::same(k), Activation::None).unwrap();
        self.node(Op::Conv(Box::new(ConvOp { conv })), &[x])
    }
}

#[test]
fn folding_and_fusion_keep_outputs() {
    let mut b = B {
        g: Graph::default(),
        rng: SplitMix64::new(9),
    };
    let x = b.value();
    b.g.inputs.push(Input {
        id: x,
        shape: vec![],
        dtype: None,
    });
    // conv -> * per-channel -> + scalar -> hard-swish spelled out -> * s + t -> 1x1 conv
    let c1 = b.conv(x, 3, 6, 3);
    let s = b.constant(&[1, 6, 1, 1], 0.5, 1.5);
    let m = b.node(Op::Binary(Binary::Mul), &[s, c1]);
    let t = b.scalar(0.3);
    let a = b.node(Op::Binary(Binary::Add), &[m, t]);
    let three = b.scalar(3.0);
    let a3 = b.node(Op::Binary(Binary::Add), &[a, three]);
    let cl = b.node(Op::Unary(Unary::Clip { min: 0.0, max: 6.0 }), &[a3]);
    let mm = b.node(Op::Binary(Binary::Mul), &[a, cl]);
    let six = b.scalar(6.0);
    let hs = b.node(Op::Binary(Binary::Div), &[mm, six]);
    let s2 = b.constant(&[6, 1, 1], 0.5, 1.5);
    let m2 = b.node(Op::Binary(Binary::Mul), &[s2, hs]);
    let t2 = b.constant(&[6, 1, 1], -0.5, 0.5);
    let a2 = b.node(Op::Binary(Binary::Add), &[m2, t2]);
    let c2 = b.conv(a2, 6, 4, 1);
    // A padded conv after an affine must not absorb it.
    let s3 = b.scalar(2.0);
    let m3 = b.node(Op::Binary(Binary::Mul), &[c2, s3]);
    let relu = b.node(Op::Unary(Unary::Relu), &[m3]);
    let s4 = b.scalar(0.5);
    let m4 = b.node(Op::Binary(Binary::Mul), &[relu, s4]);
    let t4 = b.scalar(0.1);
    let a4 = b.node(Op::Binary(Binary::Add), &[m4, t4]);
    let c3 = b.conv(a4, 4, 2, 3);
    b.g.outputs.push(c3);
    let plain = b.g.clone();
    let mut opt = b.g;
    let [_, folded, fused, _] = optimize(&mut opt).unwrap();
    assert!(folded >= 3 && fused >= 1, "folded {folded}, fused {fused}");
    assert!(
        opt.nodes.len() < plain.nodes.len() - 8,
        "{} nodes left",
        opt.nodes.len()
    );
    for seed in 0..3 {
        let data = SplitMix64::new(seed).vec(2 * 3 * 9 * 11, -2.0, 2.0);
        let input = Value::f32(&[2, 3, 9, 11], data).unwrap();
        let want = plain.run(vec![input.clone()]).unwrap();
        let got = opt.run(vec![input]).unwrap();
        let (w, g) = (want[0].as_f32().unwrap(), got[0].as_f32().unwrap());
        let scale = w.iter().fold(1f32, |m, v| m.max(v.abs()));
        let err = w.iter().zip(g).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(err < 1e-5 * scale, "seed {seed}: error {err}");
    }
}

/// The DB head's upsampling as paddle2onnx writes it: ConvTranspose -> per-channel bias Add ->
/// BatchNormalization -> Relu -> ConvTranspose -> bias Add -> Sigmoid, here with a per-channel
/// Mul and a constant-minus Sub before the batch-norm. The affines and the batch-norm fold into
/// the first ConvTranspose (in that order: the fold passes repeat), the activations fuse, and
/// the outputs stay those of the unoptimised graph.
#[test]
fn conv_transpose_absorbs_bias_batch_norm_and_activation() {
    use crate::ops::ConvTranspose;
    let mut b = B {
        g: Graph::default(),
        rng: SplitMix64::new(11),
    };
    let x = b.value();
    b.g.inputs.push(Input {
        id: x,
        shape: vec![],
        dtype: None,
    });
    let up = |b: &mut B, x: usize, cin: usize, cout: usize| {
        let t = ConvTranspose {
            weight: b.rng.vec(cin * cout * 4, -0.5, 0.5),
            shape: [cin, cout, 2, 2],
            bias: vec![0.0; cout],
            stride: [2, 2],
            pads: [0; 4],
            dilation: [1, 1],
            output_padding: [0, 0],
            act: Activation::None,
        };
        let y = b.node(Op::ConvTranspose(Box::new(t)), &[x]);
        let bias = b.constant(&[cout, 1, 1], -0.5, 0.5);
        b.node(Op::Binary(Binary::Add), &[y, bias])
    };
    let t1 = up(&mut b, x, 5, 4);
    // A per-channel scale and a constant minus the result fold as affines too.
    let k = b.constant(&[4, 1, 1], 0.5, 1.5);
    let t1 = b.node(Op::Binary(Binary::Mul), &[t1, k]);
    let k = b.constant(&[1, 4, 1, 1], -0.5, 0.5);
    let t1 = b.node(Op::Binary(Binary::Sub), &[k, t1]);
    let stats: Vec<usize> = [(0.5, 1.5), (-0.5, 0.5), (-0.5, 0.5), (0.5, 2.0)]
        .iter()
        .map(|&(lo, hi)| b.constant(&[4], lo, hi))
        .collect();
    let bn = b.node(
        Op::BatchNorm { eps: 1e-5 },
        &[t1, stats[0], stats[1], stats[2], stats[3]],
    );
    let relu = b.node(Op::Unary(Unary::Relu), &[bn]);
    let t2 = up(&mut b, relu, 4, 1);
    let sig = b.node(Op::Unary(Unary::Sigmoid), &[t2]);
    b.g.outputs.push(sig);
    let plain = b.g.clone();
    let mut opt = b.g;
    optimize(&mut opt).unwrap();
    let kinds: Vec<&str> = opt.nodes.iter().map(|n| n.op.kind()).collect();
    assert_eq!(kinds, ["ConvTranspose", "ConvTranspose"]);
    let data = SplitMix64::new(3).vec(2 * 5 * 6 * 7, -2.0, 2.0);
    let input = Value::f32(&[2, 5, 6, 7], data).unwrap();
    let want = plain.run(vec![input.clone()]).unwrap();
    let got = opt.run(vec![input]).unwrap();
    let (w, g) = (want[0].as_f32().unwrap(), got[0].as_f32().unwrap());
    assert_eq!(w.shape(), g.shape());
    let err = w.iter().zip(g).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(err < 1e-5, "error {err}");
}
