//! `elide bayes export`: a saved model's posterior network (weights and biases with `phi > 0.5`,
//! at their means) written as an ONNX model, so `elide run` (which runs its mostly zero
//! weights in CSR) or any ONNX runtime can serve it. The model reads the raw input columns
//! (`meta.columns`, in order) and answers in the target's units: the input standardisation is
//! folded into the first fully connected layer (with a conv front, it is a Mul and an Add
//! before the image Reshape) and, for regression, the target's scale into the last.
use super::fit::{load_model, Meta};
use anyhow::{bail, Context, Result};
use clap::Args;
use elide_bayes::io;
use elide_bayes::sparse::SparseNet;
use elide_bayes::SpikeSlabNet;
use elide_graph::onnx::write::{attr_int, attr_ints, Dim, ModelWriter};
use std::path::{Path, PathBuf};

/// Opset of the written model (Gemm, Relu, Softmax as in opset 13).
const OPSET: i64 = 13;

/// Options of `elide bayes export`.
#[derive(Args)]
pub struct ExportArgs {
    /// A model saved by `elide bayes fit`.
    model: PathBuf,
    /// The ONNX file to write.
    #[arg(long)]
    onnx: PathBuf,
}

/// One exported layer: row-major `[outputs, inputs]` weights (zeros where dropped), bias, ReLU.
struct Layer {
    rows: usize,
    cols: usize,
    weight: Vec<f32>,
    bias: Vec<f32>,
    relu: bool,
}

/// The fully connected layers of the posterior network, the target scale folded into the
/// last and, when `fold_inputs`, the input standardisation into the first.
fn folded_layers(net: &SparseNet, meta: &Meta, fold_inputs: bool) -> Result<Vec<Layer>> {
    let mut layers: Vec<Layer> = net
        .layers
        .iter()
        .map(|l| Layer {
            rows: l.weight.rows,
            cols: l.weight.cols,
            weight: l.weight.to_dense(),
            bias: l.bias.clone(),
            relu: l.relu,
        })
        .collect();
    let Some(first) = layers.first_mut() else {
        bail!("the network has no layers")
    };
    if !fold_inputs {
        scale_target(&mut layers, meta);
        return Ok(layers);
    }
    let (mean, std) = (&meta.inputs.mean, &meta.inputs.std);
    if mean.len() != first.cols || std.len() != first.cols {
        bail!(
            "the model's description has {} means and {} standard deviations, the network \
             reads {} columns",
            mean.len(),
            std.len(),
            first.cols
        );
    }
    // W ((x - m) / s) + b = (W / s) x + (b - W (m / s)).
    for o in 0..first.rows {
        let row = &mut first.weight[o * first.cols..(o + 1) * first.cols];
        let mut shift = 0.0f64;
        for (j, w) in row.iter_mut().enumerate() {
            shift += *w as f64 * mean[j] / std[j];
            *w = (*w as f64 / std[j]) as f32;
        }
        first.bias[o] = (first.bias[o] as f64 - shift) as f32;
    }
    scale_target(&mut layers, meta);
    Ok(layers)
}

/// Regression: `y = s f + m` folded into the last layer.
fn scale_target(layers: &mut [Layer], meta: &Meta) {
    if let (Some((m, s)), Some(last)) = (meta.target_scale, layers.last_mut()) {
        last.weight
            .iter_mut()
            .for_each(|w| *w = (*w as f64 * s) as f32);
        last.bias
            .iter_mut()
            .for_each(|b| *b = (*b as f64 * s + m) as f32);
    }
}

/// The conv front as ONNX nodes from `x`: standardisation (Mul, Add), Reshape to the image,
/// Conv + Relu per stage, Flatten; returns the name of the flattened features.
fn write_conv_front(m: &mut ModelWriter, net: &SpikeSlabNet, meta: &Meta) -> Result<String> {
    let front = net.arch.conv.as_ref().context("no conv front")?;
    let p = net.arch.inputs;
    let (mean, std) = (&meta.inputs.mean, &meta.inputs.std);
    if mean.len() != p || std.len() != p {
        bail!(
            "the model's description has {} means and {} standard deviations, the network \
             reads {p} columns",
            mean.len(),
            std.len()
        );
    }
    let scale: Vec<f32> = std.iter().map(|s| (1.0 / s) as f32).collect();
    let shift: Vec<f32> = mean.iter().zip(std).map(|(m, s)| (-m / s) as f32).collect();
    m.initializer("in_scale", &[1, p], &scale)?;
    m.initializer("in_shift", &[1, p], &shift)?;
    m.node("Mul", &["x", "in_scale"], &["xs"], vec![]);
    m.node("Add", &["xs", "in_shift"], &["xn"], vec![]);
    let [c, h, w] = front.image;
    m.initializer_i64("image_shape", &[4], &[-1, c as i64, h as i64, w as i64])?;
    m.node("Reshape", &["xn", "image_shape"], &["img"], vec![]);
    let mut prev = "img".to_string();
    for (i, conv) in net.convs.iter().enumerate() {
        let post = conv.posterior()?;
        let cfg = post.config;
        let (wn, cn, rn) = (format!("cw{i}"), format!("c{i}"), format!("cr{i}"));
        m.initializer(&wn, &post.shape, &post.weight)?;
        let mut ins = vec![prev.clone(), wn];
        if let Some(b) = &post.bias {
            let bn = format!("cb{i}");
            m.initializer(&bn, &[post.shape[0]], b)?;
            ins.push(bn);
        }
        let [ph, pw] = cfg.padding.map(|v| v as i64);
        let attrs = vec![
            attr_ints(
                "kernel_shape",
                &[post.shape[2] as i64, post.shape[3] as i64],
            ),
            attr_ints("strides", &cfg.stride.map(|v| v as i64)),
            attr_ints("pads", &[ph, pw, ph, pw]),
            attr_ints("dilations", &cfg.dilation.map(|v| v as i64)),
            attr_int("group", cfg.groups as i64),
        ];
        let ins: Vec<&str> = ins.iter().map(String::as_str).collect();
        m.node("Conv", &ins, &[&cn], attrs);
        m.node("Relu", &[&cn], &[&rn], vec![]);
        prev = rn;
    }
    m.node(
        "Flatten",
        &[&prev],
        &["features"],
        vec![attr_int("axis", 1)],
    );
    Ok("features".into())
}

/// The ONNX model of `net`'s posterior under `meta`: input `x` `[N, inputs]`, the conv front
/// if any, Gemm (+ Relu) per fully connected layer, output `y` `[N, 1]` for regression or
/// `probs` `[N, K]` (a Softmax) for classification. `head` is
/// [`SparseNet::head_from_posterior`] of `net`.
pub(super) fn to_onnx(net: &SpikeSlabNet, head: &SparseNet, meta: &Meta) -> Result<Vec<u8>> {
    let has_front = !net.convs.is_empty();
    let layers = folded_layers(head, meta, !has_front)?;
    let batch = || Dim::Named("N".into());
    let mut m = ModelWriter::new("elide-bayes-posterior", OPSET);
    m.input("x", &[batch(), Dim::Fixed(net.arch.inputs)]);
    let mut prev = if has_front {
        write_conv_front(&mut m, net, meta)?
    } else {
        "x".to_string()
    };
    for (i, l) in layers.iter().enumerate() {
        let (w, b, out) = (format!("w{i}"), format!("b{i}"), format!("h{i}"));
        m.initializer(&w, &[l.rows, l.cols], &l.weight)?;
        m.initializer(&b, &[l.rows], &l.bias)?;
        m.node(
            "Gemm",
            &[&prev, &w, &b],
            &[&out],
            vec![attr_int("transB", 1)],
        );
        prev = out;
        if l.relu {
            let act = format!("r{i}");
            m.node("Relu", &[&prev], &[&act], vec![]);
            prev = act;
        }
    }
    let k = layers.last().map_or(0, |l| l.rows);
    let name = if matches!(net.likelihood, elide_bayes::Likelihood::Categorical) {
        m.node("Softmax", &[&prev], &["probs"], vec![attr_int("axis", 1)]);
        "probs"
    } else {
        m.node("Identity", &[&prev], &["y"], vec![]);
        "y"
    };
    m.output(name, &[batch(), Dim::Fixed(k)]);
    Ok(m.to_bytes())
}

/// Refuses an `--onnx` path that is the model file or its description (the same file, by
/// any path to it).
fn refuse_overwriting_the_model(model: &Path, onnx: &Path) -> Result<()> {
    let Ok(out) = onnx.canonicalize() else {
        return Ok(()); // not there yet, so neither of the two (which were just read)
    };
    for (what, p) in [
        ("model", model.to_path_buf()),
        ("model's description", io::description_path(model)),
    ] {
        if p.canonicalize().is_ok_and(|p| p == out) {
            bail!(
                "--onnx {} is the {what} file {}; write the ONNX model elsewhere",
                onnx.display(),
                p.display()
            );
        }
    }
    Ok(())
}

/// Runs `elide bayes export`.
pub fn run(a: &ExportArgs) -> Result<()> {
    let (net, meta) = load_model(&a.model)?;
    refuse_overwriting_the_model(&a.model, &a.onnx)?;
    let sparse = SparseNet::head_from_posterior(&net)?;
    let bytes = to_onnx(&net, &sparse, &meta)?;
    std::fs::write(&a.onnx, &bytes).with_context(|| format!("writing {}", a.onnx.display()))?;
    let mut widths: Vec<String> = net
        .convs
        .iter()
        .map(|c| format!("conv{}", c.out_channels))
        .collect();
    widths.extend(
        std::iter::once(sparse.layers[0].weight.cols)
            .chain(sparse.layers.iter().map(|l| l.weight.rows))
            .map(|w| w.to_string()),
    );
    let mut nnz: usize = sparse.layers.iter().map(|l| l.weight.nnz()).sum();
    let mut all: usize = sparse
        .layers
        .iter()
        .map(|l| l.weight.rows * l.weight.cols)
        .sum();
    for c in &net.convs {
        let p = c.posterior()?;
        nnz += p.nnz();
        all += p.weight.len();
    }
    println!(
        "{}: {} network, {nnz} nonzero weights ({:.1}% zeros), input x = the columns {:?}{}",
        a.onnx.display(),
        widths.join("-"),
        100.0 * (1.0 - nnz as f64 / all.max(1) as f64),
        meta.columns.iter().take(8).collect::<Vec<_>>(),
        if meta.columns.len() > 8 { " ..." } else { "" },
    );
    println!(
        "run it: elide run {} --input X.npy   (X: float32 [N, {}])",
        a.onnx.display(),
        net.arch.inputs
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device, Tensor};
    use elide_bayes::data::Standardizer;
    use elide_bayes::rng::Rng;
    use elide_bayes::{Arch, Init, Likelihood, Prior, SpikeSlabNet};
    use elide_graph::{onnx, optimize, Value};

    /// A random posterior (phi spread around 0.5, so about half the weights are kept).
    /// A random posterior; `keep`: the fraction of gates drawn open (`None`: `theta ~ N(0, 1)`,
    /// about half).
    fn random_net(
        p: usize,
        hidden: usize,
        out: usize,
        likelihood: Likelihood,
        keep: Option<f64>,
    ) -> SpikeSlabNet {
        let arch = Arch::uniform(p, 2, hidden, out);
        let prior = Prior::new(0.1, 1.0).unwrap();
        let init = Init {
            phi: 0.5,
            ..Init::default()
        };
        let net = SpikeSlabNet::new(arch, prior, likelihood, &init, 4, DType::F32).unwrap();
        let mut r = Rng::new(3);
        for l in &net.layers {
            for g in [&l.weight, &l.bias] {
                let v: Vec<f32> = (0..g.theta.elem_count())
                    .map(|_| match keep {
                        None => r.normal() as f32,
                        Some(k) if r.uniform() < k => 3.0,
                        Some(_) => -3.0,
                    })
                    .collect();
                g.theta
                    .set(&Tensor::from_vec(v, g.theta.shape(), &Device::Cpu).unwrap())
                    .unwrap();
            }
        }
        net
    }

    fn meta(p: usize, target_scale: Option<(f64, f64)>) -> Meta {
        Meta {
            target: "t".into(),
            columns: (0..p).map(|i| format!("c{i}")).collect(),
            inputs: Standardizer {
                mean: (0..p).map(|j| j as f64 - 2.0).collect(),
                std: (0..p).map(|j| 0.5 + j as f64).collect(),
            },
            target_scale,
        }
    }

    /// The exported model on raw inputs, through the graph engine with the CSR rewrite on
    /// every layer, equals the sparse network on standardised inputs, scaled back (regression)
    /// or through a softmax (classification).
    #[test]
    fn onnx_export_equals_the_sparse_network() {
        let (p, n) = (40, 6);
        let mut r = Rng::new(8);
        let raw: Vec<f32> = (0..n * p).map(|_| 3.0 * r.normal() as f32).collect();
        for (likelihood, out, scale) in [
            (
                Likelihood::Gaussian {
                    sigma: 1.0,
                    learned: false,
                },
                1,
                Some((4.0, 2.5)),
            ),
            (Likelihood::Categorical, 3, None),
        ] {
            // 4% of the gates open: every product is rewritten and runs in CSR.
            let net = random_net(p, 30, out, likelihood, Some(0.04));
            let sparse = SparseNet::from_posterior(&net).unwrap();
            let m = meta(p, scale);
            let mut xs = raw.clone();
            m.inputs.apply(&mut xs).unwrap();
            let want = sparse.forward(&xs, n).unwrap();
            let mut g = onnx::from_bytes(&to_onnx(&net, &sparse, &m).unwrap()).unwrap();
            optimize::optimize(&mut g).unwrap();
            let mut products = 0;
            for nd in &g.nodes {
                assert!(
                    !matches!(nd.op, elide_graph::ops::Op::Gemm { .. }),
                    "a dense Gemm left"
                );
                if let elide_graph::ops::Op::SparseLinear(s) = &nd.op {
                    assert!(s.uses_csr(n), "sparsity {}", s.sparsity());
                    products += 1;
                }
            }
            assert_eq!(products, 3);
            let x = Value::f32(&[n, p], raw.clone()).unwrap();
            let got = g.run(vec![x]).unwrap().remove(0);
            assert_eq!(got.shape(), [n, out]);
            let got: Vec<f32> = got.as_f32().unwrap().iter().copied().collect();
            for row in 0..n {
                let w = &want[row * out..(row + 1) * out];
                let expect: Vec<f64> = match scale {
                    Some((mu, s)) => w.iter().map(|&v| v as f64 * s + mu).collect(),
                    None => {
                        let mx = w.iter().fold(f32::MIN, |a, &b| a.max(b)) as f64;
                        let e: Vec<f64> = w.iter().map(|&v| (v as f64 - mx).exp()).collect();
                        let z: f64 = e.iter().sum();
                        e.iter().map(|v| v / z).collect()
                    }
                };
                for (a, b) in got[row * out..(row + 1) * out].iter().zip(&expect) {
                    assert!((*a as f64 - b).abs() < 1e-4 * (1.0 + b.abs()), "{a} vs {b}");
                }
            }
        }
    }

    /// A conv front (two stages, stride 2 and 1, with and without bias) exported with its
    /// standardisation as Mul/Add: the graph's output on raw pixels equals candle's posterior
    /// convs followed by the sparse head, through a softmax.
    #[test]
    fn conv_front_export_equals_the_posterior_network() {
        use elide_bayes::conv::Conv2dConfig;
        use elide_bayes::net::{ConvFront, ConvStage};
        let (c, h, w, n) = (2, 7, 6, 3);
        let p = c * h * w;
        let front = ConvFront {
            image: [c, h, w],
            stages: vec![
                ConvStage {
                    channels: 3,
                    kernel: [3, 3],
                    config: Conv2dConfig {
                        stride: [2, 2],
                        padding: [1, 1],
                        ..Default::default()
                    },
                },
                ConvStage {
                    channels: 4,
                    kernel: [2, 2],
                    config: Conv2dConfig {
                        bias: false,
                        ..Default::default()
                    },
                },
            ],
        };
        let arch = Arch {
            conv: Some(front),
            ..Arch::uniform(p, 1, 5, 3)
        };
        let prior = Prior::new(0.1, 1.0).unwrap();
        let init = Init {
            phi: 0.5,
            ..Init::default()
        };
        let net =
            SpikeSlabNet::new(arch, prior, Likelihood::Categorical, &init, 4, DType::F32).unwrap();
        let mut r = Rng::new(9);
        for g in net.groups() {
            let v: Vec<f32> = (0..g.theta.elem_count())
                .map(|_| r.normal() as f32)
                .collect();
            g.theta
                .set(&Tensor::from_vec(v, g.theta.shape(), &Device::Cpu).unwrap())
                .unwrap();
        }
        let m = meta(p, None);
        let raw: Vec<f32> = (0..n * p).map(|_| 3.0 * r.normal() as f32).collect();
        // Reference: standardise, posterior convs + ReLU in candle, flatten, sparse head.
        let mut xs = raw.clone();
        m.inputs.apply(&mut xs).unwrap();
        let mut t = Tensor::from_vec(xs, (n, c, h, w), &Device::Cpu).unwrap();
        for conv in &net.convs {
            t = conv.forward_posterior(&t).unwrap().relu().unwrap();
        }
        let feats: Vec<f32> = t
            .flatten_from(1)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let head = SparseNet::head_from_posterior(&net).unwrap();
        let logits = head.forward(&feats, n).unwrap();
        let mut g = onnx::from_bytes(&to_onnx(&net, &head, &m).unwrap()).unwrap();
        optimize::optimize(&mut g).unwrap();
        let got = g
            .run(vec![Value::f32(&[n, p], raw).unwrap()])
            .unwrap()
            .remove(0);
        assert_eq!(got.shape(), [n, 3]);
        let got: Vec<f32> = got.as_f32().unwrap().iter().copied().collect();
        for row in 0..n {
            let l = &logits[row * 3..row * 3 + 3];
            let mx = l.iter().fold(f32::MIN, |a, &b| a.max(b));
            let z: f32 = l.iter().map(|v| (v - mx).exp()).sum();
            for k in 0..3 {
                let want = (l[k] - mx).exp() / z;
                let have = got[row * 3 + k];
                assert!(
                    (have - want).abs() < 1e-4,
                    "row {row} class {k}: {have} vs {want}"
                );
            }
        }
        assert!(
            SparseNet::from_posterior(&net).is_err(),
            "a conv net is not a plain SparseNet"
        );
    }

    #[test]
    fn a_description_of_other_width_is_an_error() {
        let net = random_net(
            7,
            3,
            1,
            Likelihood::Gaussian {
                sigma: 1.0,
                learned: false,
            },
            None,
        );
        let head = SparseNet::head_from_posterior(&net).unwrap();
        let err = to_onnx(&net, &head, &meta(6, None))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("6 means and 6 standard deviations") && err.contains("reads 7 columns"),
            "{err}"
        );
    }
}
