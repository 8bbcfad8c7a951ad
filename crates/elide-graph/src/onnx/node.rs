//! One ONNX node to a typed [`Op`] (or, for Constant, a constant value).
use super::attrs::Attrs;
use super::proto::NodeProto;
use super::registry::{Build, NodeCtx};
use super::tensor::to_value;
use super::Builder;
use crate::graph::Node;
use crate::ops::{
    Binary, ConvOp, ConvTranspose, CoordMode, NearestMode, Op, Pool, PoolKind, Resize, ResizeMode,
    Unary, MAX_ELEMENTS,
};
use crate::{GraphError, Result, Value};
use elide_kernels::conv::{Activation, Conv2d, Conv2dParams, Padding};
use elide_kernels::Tensor;

/// The node's input and output ids; each output gets this node as its one producer.
fn wire(b: &mut Builder, n: &NodeProto, name: &str) -> Result<(Vec<Option<usize>>, Vec<usize>)> {
    let inputs: Vec<Option<usize>> = n
        .input
        .iter()
        .map(|s| (!s.is_empty()).then(|| b.id(s)))
        .collect();
    let outputs: Vec<usize> = n.output.iter().map(|s| b.id(s)).collect();
    let invalid = |detail: String| GraphError::Invalid {
        node: name.to_string(),
        op: n.op_type.clone(),
        detail,
    };
    if outputs.is_empty() {
        return Err(invalid("the node has no outputs".into()));
    }
    // Each value has one producer; "" is an omitted optional output.
    for (o, &id) in n.output.iter().zip(&outputs).filter(|(o, _)| !o.is_empty()) {
        b.produce(id, format!("node '{name}' ({})", n.op_type))
            .map_err(|first| invalid(format!("output '{o}' is already produced by {first}")))?;
    }
    Ok((inputs, outputs))
}

/// Imports a node through its registry builder.
pub(super) fn build(
    b: &mut Builder,
    n: &NodeProto,
    name: &str,
    opset: i64,
    opsets: &[super::proto::OperatorSetIdProto],
    captures: &[String],
    build: Build,
) -> Result<()> {
    let (mut inputs, mut outputs) = wire(b, n, name)?;
    let op = build(&NodeCtx {
        node: n,
        name,
        opset,
        opsets,
        captures,
        inputs: &inputs,
        constants: &b.graph.constants,
    })?;
    // The one-input ops of the fused enum (a Clip with its constant bounds folded in, a
    // Dropout as Identity) read and write their data only, as the passes expect.
    if matches!(op, Op::Unary(_) | Op::Identity) {
        inputs.truncate(1);
        outputs.truncate(1);
    }
    push(b, n, name, op, inputs, outputs)
}

pub(super) fn import(b: &mut Builder, n: &NodeProto, name: &str, opset: i64) -> Result<()> {
    let (inputs, outputs) = wire(b, n, name)?;
    let invalid = |detail: String| GraphError::Invalid {
        node: name.to_string(),
        op: n.op_type.clone(),
        detail,
    };
    let constant = |b: &Builder, i: usize| -> Option<Value> {
        inputs
            .get(i)
            .copied()
            .flatten()
            .and_then(|id| b.graph.constants.get(&id).cloned())
    };
    let op = match n.op_type.as_str() {
        "Constant" => {
            let a = Attrs::new(
                n,
                name,
                &[
                    "value",
                    "value_float",
                    "value_floats",
                    "value_int",
                    "value_ints",
                ],
            )?;
            let v = if let Some(t) = a.raw("value").and_then(|r| r.t.as_ref()) {
                to_value(t, name)?
            } else if let Some(r) = a.raw("value_float") {
                Value::f32(&[], vec![r.f])?
            } else if let Some(r) = a.raw("value_floats") {
                Value::f32(&[r.floats.len()], r.floats.clone())?
            } else if let Some(r) = a.raw("value_int") {
                Value::i64(&[], vec![r.i])?
            } else if let Some(r) = a.raw("value_ints") {
                Value::i64(&[r.ints.len()], r.ints.clone())?
            } else {
                return Err(invalid("Constant without a value".into()));
            };
            let out = *outputs.first().ok_or_else(|| invalid("no output".into()))?;
            b.graph.constants.insert(out, v);
            return Ok(());
        }
        "Conv" => conv(b, n, name, &inputs, &invalid)?,
        "BatchNormalization" => {
            let a = Attrs::new(
                n,
                name,
                &["epsilon", "momentum", "training_mode", "spatial"],
            )?;
            if a.int("training_mode", 0) != 0 {
                return Err(a.unsupported("training_mode = 1 (training-mode batch statistics)"));
            }
            if outputs.len() > 1 {
                return Err(a.unsupported("running-statistics outputs (training mode)"));
            }
            Op::BatchNorm {
                eps: a.float("epsilon", 1e-5),
            }
        }
        "Relu" | "Sigmoid" | "Tanh" | "HardSwish" => {
            Attrs::new(n, name, &[])?;
            Op::Unary(match n.op_type.as_str() {
                "Relu" => Unary::Relu,
                "Sigmoid" => Unary::Sigmoid,
                "Tanh" => Unary::Tanh,
                _ => Unary::HardSwish,
            })
        }
        "HardSigmoid" => {
            let a = Attrs::new(n, name, &["alpha", "beta"])?;
            Op::Unary(Unary::HardSigmoid {
                alpha: a.float("alpha", 0.2),
                beta: a.float("beta", 0.5),
            })
        }
        "LeakyRelu" => {
            let a = Attrs::new(n, name, &["alpha"])?;
            Op::Unary(Unary::LeakyRelu {
                alpha: a.float("alpha", 0.01),
            })
        }
        "Clip" => {
            let a = Attrs::new(n, name, &["min", "max"])?;
            let bound = |i: usize, attr: &str, default: f32| -> Result<f32> {
                if inputs.get(i).copied().flatten().is_none() {
                    return Ok(a.float(attr, default));
                }
                match constant(b, i) {
                    Some(v) if v.len() == 1 && v.dtype().is_float() => Ok(v.to_f64_vec()[0] as f32),
                    _ => {
                        Err(a
                            .unsupported(format!("Clip bound input {i} must be a constant scalar")))
                    }
                }
            };
            let (min, max) = (
                bound(1, "min", f32::NEG_INFINITY)?,
                bound(2, "max", f32::INFINITY)?,
            );
            // A NaN bound would silently turn the clamp off.
            if min.is_nan() || max.is_nan() {
                return Err(invalid(format!("Clip bounds [{min}, {max}] hold NaN")));
            }
            return push(
                b,
                n,
                name,
                Op::Unary(Unary::Clip { min, max }),
                vec![inputs[0]],
                outputs,
            );
        }
        "Add" | "Sub" | "Mul" | "Div" => {
            Attrs::new(n, name, &[])?;
            Op::Binary(match n.op_type.as_str() {
                "Add" => Binary::Add,
                "Sub" => Binary::Sub,
                "Mul" => Binary::Mul,
                _ => Binary::Div,
            })
        }
        "MaxPool" | "AveragePool" => pool(n, name, &outputs)?,
        "GlobalAveragePool" => {
            Attrs::new(n, name, &[])?;
            Op::GlobalAveragePool
        }
        "MatMul" => {
            Attrs::new(n, name, &[])?;
            Op::MatMul
        }
        "Gemm" => {
            let a = Attrs::new(n, name, &["alpha", "beta", "transA", "transB"])?;
            Op::Gemm {
                alpha: a.float("alpha", 1.0),
                beta: a.float("beta", 1.0),
                trans_a: a.int("transA", 0) != 0,
                trans_b: a.int("transB", 0) != 0,
            }
        }
        "Softmax" => {
            let a = Attrs::new(n, name, &["axis"])?;
            // Before opset 13 Softmax flattened to 2-D at `axis`; equal for axis = last.
            let axis = a.int("axis", if opset >= 13 { -1 } else { 1 });
            Op::Softmax { axis }
        }
        "Flatten" => Op::Flatten {
            axis: Attrs::new(n, name, &["axis"])?.int("axis", 1),
        },
        "Reshape" => Op::Reshape {
            allowzero: Attrs::new(n, name, &["allowzero"])?.int("allowzero", 0) != 0,
        },
        "Transpose" => {
            let a = Attrs::new(n, name, &["perm"])?;
            Op::Transpose {
                perm: a.sizes("perm", vec![])?,
            }
        }
        "Concat" => Op::Concat {
            axis: Attrs::new(n, name, &["axis"])?.int("axis", 0),
        },
        "Slice" => {
            Attrs::new(n, name, &[])?;
            Op::Slice
        }
        "Shape" => {
            let a = Attrs::new(n, name, &["start", "end"])?;
            Op::Shape {
                start: a.int("start", 0),
                end: a.raw("end").map(|r| r.i),
            }
        }
        "Gather" => Op::Gather {
            axis: Attrs::new(n, name, &["axis"])?.int("axis", 0),
        },
        "Unsqueeze" => Op::Unsqueeze {
            axes: Attrs::new(n, name, &["axes"])?.ints("axes"),
        },
        "Squeeze" => Op::Squeeze {
            axes: Attrs::new(n, name, &["axes"])?.ints("axes"),
        },
        "Cast" => {
            // round_mode only changes casts to FLOAT8E8M0, which elide does not hold.
            let a = Attrs::new(n, name, &["to", "saturate", "round_mode"])?;
            let code = a.int("to", 0) as i32;
            let saturate = match a.int("saturate", 1) {
                0 => false,
                1 => true,
                v => return Err(a.unsupported(format!("saturate = {v} (0 or 1)"))),
            };
            match crate::DType::from_onnx(code) {
                Some(to) => Op::Cast { to, saturate },
                None => {
                    return Err(a.unsupported(format!(
                        "Cast to {} ({code})",
                        crate::DType::onnx_name(code)
                    )))
                }
            }
        }
        "Identity" | "Dropout" => {
            Attrs::new(n, name, &["seed", "ratio"])?;
            return push(
                b,
                n,
                name,
                Op::Identity,
                vec![inputs[0]],
                outputs[..1].to_vec(),
            );
        }
        "ConvTranspose" => conv_transpose(b, n, name, &inputs, &invalid)?,
        "Resize" => {
            let a = Attrs::new(
                n,
                name,
                &[
                    "mode",
                    "coordinate_transformation_mode",
                    "nearest_mode",
                    "cubic_coeff_a",
                    "exclude_outside",
                    "extrapolation_value",
                    "antialias",
                    "keep_aspect_ratio_policy",
                ],
            )?;
            if a.int("exclude_outside", 0) != 0 || a.int("antialias", 0) != 0 {
                return Err(a.unsupported("exclude_outside / antialias"));
            }
            let coord = match a
                .string("coordinate_transformation_mode", "half_pixel")
                .as_str()
            {
                "half_pixel" => CoordMode::HalfPixel,
                "pytorch_half_pixel" => CoordMode::PytorchHalfPixel,
                "align_corners" => CoordMode::AlignCorners,
                "asymmetric" => CoordMode::Asymmetric,
                other => {
                    return Err(a.unsupported(format!("coordinate_transformation_mode {other}")))
                }
            };
            let mode = match a.string("mode", "nearest").as_str() {
                "nearest" => ResizeMode::Nearest(
                    match a.string("nearest_mode", "round_prefer_floor").as_str() {
                        "floor" => NearestMode::Floor,
                        "ceil" => NearestMode::Ceil,
                        "round_prefer_floor" => NearestMode::RoundPreferFloor,
                        "round_prefer_ceil" => NearestMode::RoundPreferCeil,
                        other => return Err(a.unsupported(format!("nearest_mode {other}"))),
                    },
                ),
                "linear" => ResizeMode::Linear,
                other => return Err(a.unsupported(format!("mode {other}"))),
            };
            Op::Resize(Resize { mode, coord })
        }
        "Split" => {
            let a = Attrs::new(n, name, &["axis", "split", "num_outputs"])?;
            Op::Split {
                axis: a.int("axis", 0),
                split: a.ints("split"),
                parts: outputs.len(),
            }
        }
        "Expand" => {
            Attrs::new(n, name, &[])?;
            Op::Expand
        }
        "Range" => {
            Attrs::new(n, name, &[])?;
            Op::Range
        }
        "ConstantOfShape" => {
            let a = Attrs::new(n, name, &["value"])?;
            let value = match a.raw("value").and_then(|r| r.t.as_ref()) {
                Some(t) => to_value(t, name)?,
                None => Value::f32(&[1], vec![0.0])?,
            };
            Op::ConstantOfShape { value }
        }
        "Pad" => {
            let a = Attrs::new(n, name, &["mode"])?;
            if a.string("mode", "constant") != "constant" {
                return Err(a.unsupported(format!("Pad mode {}", a.string("mode", "constant"))));
            }
            Op::Pad
        }
        other => {
            return Err(GraphError::Unsupported {
                what: "op",
                node: name.to_string(),
                op: other.to_string(),
                detail: "not implemented".into(),
            })
        }
    };
    push(b, n, name, op, inputs, outputs)
}

fn push(
    b: &mut Builder,
    n: &NodeProto,
    name: &str,
    op: Op,
    inputs: Vec<Option<usize>>,
    outputs: Vec<usize>,
) -> Result<()> {
    b.graph.nodes.push(Node {
        name: name.to_string(),
        op_type: n.op_type.clone(),
        op,
        inputs,
        outputs,
    });
    Ok(())
}

/// Conv with constant weights (and bias) into a kernels layer.
fn conv(
    b: &Builder,
    n: &NodeProto,
    name: &str,
    inputs: &[Option<usize>],
    invalid: &dyn Fn(String) -> GraphError,
) -> Result<Op> {
    Attrs::new(n, name, CONV_ATTRS)?;
    let constant = |i: usize| {
        inputs
            .get(i)
            .copied()
            .flatten()
            .and_then(|id| b.graph.constants.get(&id))
    };
    let bias_known = inputs.get(2).copied().flatten().is_none() || constant(2).is_some();
    // Pads that depend on the input size, or spatial ranks other than 2: the general op.
    let a = Attrs::new(n, name, CONV_ATTRS)?;
    let same = matches!(
        a.string("auto_pad", "NOTSET").as_str(),
        "SAME_UPPER" | "SAME_LOWER"
    );
    let strided = a.ints("strides").is_some_and(|s| s.iter().any(|&v| v != 1));
    let rank2 = constant(1).is_none_or(|w| w.shape().len() == 4 && matches!(w, Value::F32(_)));
    if (same && strided) || !rank2 {
        return Ok(Op::Dyn(std::sync::Arc::new(crate::ops::conv_nd::ConvNd {
            auto_pad: a.string("auto_pad", "NOTSET"),
            dilations: a.ints("dilations"),
            group: a.int("group", 1),
            kernel_shape: a.ints("kernel_shape"),
            pads: a.ints("pads"),
            strides: a.ints("strides"),
        })));
    }
    match constant(1) {
        Some(w) if bias_known => conv_layer(n, name, w, constant(2), invalid),
        // Weights (or bias) computed at run time: built per run until a lowering pass finds
        // them constant (after folding).
        _ => Ok(Op::Dyn(std::sync::Arc::new(crate::ops::RuntimeConv::new(
            n.clone(),
            name,
        )))),
    }
}

/// The attributes Conv understands.
const CONV_ATTRS: &[&str] = &[
    "auto_pad",
    "dilations",
    "group",
    "kernel_shape",
    "pads",
    "strides",
];

/// A Conv node's kernels layer from its attributes, weights and bias.
pub(crate) fn conv_layer(
    n: &NodeProto,
    name: &str,
    weight: &Value,
    bias: Option<&Value>,
    invalid: &dyn Fn(String) -> GraphError,
) -> Result<Op> {
    let a = Attrs::new(n, name, CONV_ATTRS)?;
    let Value::F32(w) = weight else {
        return Err(invalid(format!("weights are {}", weight.dtype())));
    };
    let [cout, cin_g, kh, kw]: [usize; 4] = w
        .shape()
        .try_into()
        .map_err(|_| a.unsupported(format!("only 2-D convolutions (weights {:?})", w.shape())))?;
    if let Some(ks) = a.ints("kernel_shape") {
        if ks != [kh as i64, kw as i64] {
            return Err(invalid(format!(
                "kernel_shape {ks:?} but weights {:?}",
                w.shape()
            )));
        }
    }
    let strides = a.sizes("strides", vec![1, 1])?;
    let dil = a.sizes("dilations", vec![1, 1])?;
    let groups = group(&a, invalid)?;
    if strides.len() != 2 || dil.len() != 2 {
        return Err(invalid(format!(
            "strides {strides:?} / dilations {dil:?} need 2 values"
        )));
    }
    check_geometry(&[kh, kw], &strides, &dil, &[], invalid)?;
    let pads = match a.string("auto_pad", "NOTSET").as_str() {
        "NOTSET" => a.sizes("pads", vec![0; 4])?,
        "VALID" => vec![0; 4],
        mode @ ("SAME_UPPER" | "SAME_LOWER") => {
            if strides != [1, 1] {
                return Err(a.unsupported(format!(
                    "auto_pad {mode} with strides {strides:?} (pads depend on the input size)"
                )));
            }
            let total = [(kh - 1) * dil[0], (kw - 1) * dil[1]];
            let small = [total[0] / 2, total[1] / 2];
            let large = [total[0] - small[0], total[1] - small[1]];
            if mode == "SAME_UPPER" {
                vec![small[0], small[1], large[0], large[1]]
            } else {
                vec![large[0], large[1], small[0], small[1]]
            }
        }
        other => return Err(a.unsupported(format!("auto_pad {other}"))),
    };
    if pads.len() != 4 {
        return Err(invalid(format!("pads {pads:?} need 4 values")));
    }
    check_geometry(&[], &[], &[], &pads, invalid)?; // explicit or from auto_pad
    let params = Conv2dParams::new(kh, kw)
        .with_stride(strides[0], strides[1])
        .with_dilation(dil[0], dil[1])
        .with_groups(groups)
        .with_pad(Padding {
            top: pads[0],
            left: pads[1],
            bottom: pads[2],
            right: pads[3],
        });
    let wt = Tensor::from_vec([cout, cin_g, kh, kw], w.iter().copied().collect())?;
    let bias: Option<Vec<f32>> = match bias {
        None => None,
        Some(Value::F32(v)) => Some(v.iter().copied().collect()),
        Some(v) => return Err(invalid(format!("bias is {}", v.dtype()))),
    };
    let conv = Conv2d::new(&wt, bias.as_deref(), params, Activation::None)
        .map_err(|e| invalid(e.to_string()))?;
    Ok(Op::Conv(Box::new(ConvOp { conv })))
}

/// The `group` attribute: at least 1 (0 is no grouping at all, not "one group").
fn group(a: &Attrs, invalid: &dyn Fn(String) -> GraphError) -> Result<usize> {
    match a.int("group", 1) {
        g if g >= 1 => Ok(g as usize),
        g => Err(invalid(format!("group {g}: groups must be at least 1"))),
    }
}

/// A conv's or pool's window, strides, dilations and pads: a zero entry means nothing (and
/// would divide by zero), and an entry above [`MAX_ELEMENTS`] fits no input elide can hold
/// (the bound also keeps the size arithmetic far from overflow).
fn check_geometry(
    kernel: &[usize],
    strides: &[usize],
    dil: &[usize],
    pads: &[usize],
    invalid: &dyn Fn(String) -> GraphError,
) -> Result<()> {
    // Conv2dParams' wording, so convs, pools and transposed convs read alike.
    if kernel.contains(&0) {
        return Err(invalid(format!("kernel {kernel:?} has a zero side")));
    }
    if strides.contains(&0) {
        return Err(invalid(format!("stride {strides:?} has a zero entry")));
    }
    if dil.contains(&0) {
        return Err(invalid(format!("dilation {dil:?} has a zero entry")));
    }
    for (what, v) in [
        ("kernel", kernel),
        ("stride", strides),
        ("dilation", dil),
        ("pads", pads),
    ] {
        if v.iter().any(|&x| x > MAX_ELEMENTS) {
            return Err(invalid(format!(
                "{what} {v:?} exceeds {MAX_ELEMENTS}, the most elements a value may hold"
            )));
        }
    }
    Ok(())
}

/// MaxPool / AveragePool attributes.
fn pool(n: &NodeProto, name: &str, outputs: &[usize]) -> Result<Op> {
    let invalid = |detail: String| GraphError::Invalid {
        node: name.to_string(),
        op: n.op_type.clone(),
        detail,
    };
    let max = n.op_type == "MaxPool";
    let a = Attrs::new(
        n,
        name,
        &[
            "auto_pad",
            "ceil_mode",
            "dilations",
            "kernel_shape",
            "pads",
            "strides",
            "storage_order",
            "count_include_pad",
        ],
    )?;
    let k = a.sizes("kernel_shape", vec![])?;
    // The 2-D f32 pools run here; the other forms in ops::pool_nd.
    let auto_pad = a.string("auto_pad", "NOTSET");
    if (max && outputs.len() > 1)
        || k.len() != 2
        || !matches!(auto_pad.as_str(), "NOTSET" | "VALID")
    {
        return crate::ops::pool_nd::from_attrs(&n.op_type, &a, outputs.len(), &invalid);
    }
    let strides = a.sizes("strides", vec![1, 1])?;
    let dil = a.sizes("dilations", vec![1, 1])?;
    let pads = match a.string("auto_pad", "NOTSET").as_str() {
        "NOTSET" => a.sizes("pads", vec![0; 4])?,
        "VALID" => vec![0; 4],
        other => return Err(a.unsupported(format!("auto_pad {other} for pooling"))),
    };
    if strides.len() != 2 || dil.len() != 2 || pads.len() != 4 {
        return Err(a.unsupported(format!(
            "strides {strides:?}, dilations {dil:?}, pads {pads:?}"
        )));
    }
    check_geometry(&k, &strides, &dil, &pads, &invalid)?;
    // As ONNX Runtime: a window that could lie wholly in the padding has nothing to pool.
    if (0..4).any(|i| pads[i] >= k[i % 2]) {
        return Err(invalid(format!(
            "pads {pads:?} must be smaller than the kernel {k:?}"
        )));
    }
    Ok(Op::Pool(Pool {
        kind: if max {
            PoolKind::Max
        } else {
            PoolKind::Average {
                count_include_pad: a.int("count_include_pad", 0) != 0,
            }
        },
        kernel: [k[0], k[1]],
        stride: [strides[0], strides[1]],
        pads: [pads[0], pads[1], pads[2], pads[3]],
        dilation: [dil[0], dil[1]],
        ceil_mode: a.int("ceil_mode", 0) != 0,
    }))
}

/// ConvTranspose with constant weights `[cin, cout, kh, kw]` (groups 1).
fn conv_transpose(
    b: &Builder,
    n: &NodeProto,
    name: &str,
    inputs: &[Option<usize>],
    invalid: &dyn Fn(String) -> GraphError,
) -> Result<Op> {
    let a = Attrs::new(
        n,
        name,
        &[
            "auto_pad",
            "dilations",
            "group",
            "kernel_shape",
            "output_padding",
            "output_shape",
            "pads",
            "strides",
        ],
    )?;
    let general = || -> Result<Op> {
        Ok(Op::Dyn(std::sync::Arc::new(
            crate::ops::conv_transpose_nd::ConvTransposeNd {
                auto_pad: a.string("auto_pad", "NOTSET"),
                dilations: a.ints("dilations"),
                group: a.int("group", 1),
                kernel_shape: a.ints("kernel_shape"),
                output_padding: a.ints("output_padding"),
                output_shape: a.ints("output_shape"),
                pads: a.ints("pads"),
                strides: a.ints("strides"),
            },
        )))
    };
    // Checked here for both forms: the general op would only fail when it runs.
    group(&a, invalid)?;
    if a.int("group", 1) != 1
        || a.ints("output_shape").is_some()
        || !matches!(a.string("auto_pad", "NOTSET").as_str(), "NOTSET" | "VALID")
    {
        return general();
    }
    let Some(Value::F32(w)) = inputs
        .get(1)
        .copied()
        .flatten()
        .and_then(|id| b.graph.constants.get(&id))
    else {
        return general();
    };
    if w.ndim() != 4
        || inputs
            .get(2)
            .copied()
            .flatten()
            .is_some_and(|id| !matches!(b.graph.constants.get(&id), Some(Value::F32(_))))
    {
        return general();
    }
    let shape: [usize; 4] = w
        .shape()
        .try_into()
        .map_err(|_| a.unsupported(format!("only 2-D (weights {:?})", w.shape())))?;
    let bias = match inputs.get(2).copied().flatten() {
        None => vec![0.0; shape[1]],
        Some(id) => match b.graph.constants.get(&id) {
            Some(Value::F32(v)) if v.len() == shape[1] => v.iter().copied().collect(),
            _ => {
                return Err(invalid(
                    "bias must be a constant with one value per output channel".into(),
                ))
            }
        },
    };
    let two = |name: &str, d: usize| -> Result<[usize; 2]> {
        let v = a.sizes(name, vec![d, d])?;
        v.try_into()
            .map_err(|v| invalid(format!("{name} {v:?} needs 2 values")))
    };
    let pads: [usize; 4] = a
        .sizes("pads", vec![0; 4])?
        .try_into()
        .map_err(|p| invalid(format!("pads {p:?} need 4 values")))?;
    let (stride, dilation) = (two("strides", 1)?, two("dilations", 1)?);
    let output_padding = two("output_padding", 0)?;
    check_geometry(&shape[2..], &stride, &dilation, &pads, invalid)?;
    // As PyTorch, which exports it: the extra rows are part of one stride (or dilation) step.
    if (0..2).any(|i| output_padding[i] >= stride[i].max(dilation[i])) {
        return Err(invalid(format!(
            "output_padding {output_padding:?} must be smaller than the stride {stride:?} or the dilation {dilation:?}"
        )));
    }
    if shape.contains(&0) {
        return Err(invalid(format!("weights {shape:?} have a zero dimension")));
    }
    Ok(Op::ConvTranspose(Box::new(ConvTranspose {
        weight: w.iter().copied().collect(),
        shape,
        bias,
        stride,
        pads,
        dilation,
        output_padding,
        act: elide_kernels::conv::Activation::None,
    })))
}
