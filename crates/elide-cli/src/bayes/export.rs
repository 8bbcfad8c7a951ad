//! `elide bayes export`: a saved model's posterior network (weights and biases with `phi > 0.5`,
//! at their means) written as an ONNX model, so `elide run` (which runs its mostly zero
//! weights in CSR) or any ONNX runtime can serve it. The input standardisation and, for
//! regression, the target's scale are folded into the first and last layers, so the model
//! reads the raw CSV columns (`meta.columns`, in order) and answers in the target's units.
use super::fit::Meta;
use anyhow::{bail, Context, Result};
use clap::Args;
use elide_bayes::io;
use elide_bayes::sparse::SparseNet;
use elide_graph::onnx::write::{attr_int, Dim, ModelWriter};
use std::path::PathBuf;

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

/// The posterior network's layers with the input standardisation folded into the first and
/// the target scale into the last.
fn folded_layers(net: &SparseNet, meta: &Meta) -> Result<Vec<Layer>> {
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
    let (mean, std) = (&meta.inputs.mean, &meta.inputs.std);
    if mean.len() != first.cols || std.len() != first.cols {
        bail!(
            "the model's description standardises {} columns, the network reads {}",
            mean.len(),
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
    if let Some((m, s)) = meta.target_scale {
        let last = layers.last_mut().expect("non-empty");
        last.weight
            .iter_mut()
            .for_each(|w| *w = (*w as f64 * s) as f32);
        last.bias
            .iter_mut()
            .for_each(|b| *b = (*b as f64 * s + m) as f32);
    }
    Ok(layers)
}

/// The ONNX model of `net` under `meta`: input `x` `[N, inputs]`, Gemm (+ Relu) per layer,
/// output `y` `[N, 1]` for regression or `probs` `[N, K]` (a Softmax) for classification.
pub(super) fn to_onnx(net: &SparseNet, meta: &Meta) -> Result<Vec<u8>> {
    let layers = folded_layers(net, meta)?;
    let batch = || Dim::Named("N".into());
    let mut m = ModelWriter::new("elide-bayes-posterior", OPSET);
    m.input("x", &[batch(), Dim::Fixed(layers[0].cols)]);
    let mut prev = "x".to_string();
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
    let name = if meta.target_scale.is_some() {
        m.node("Identity", &[&prev], &["y"], vec![]);
        "y"
    } else {
        m.node("Softmax", &[&prev], &["probs"], vec![attr_int("axis", 1)]);
        "probs"
    };
    m.output(name, &[batch(), Dim::Fixed(k)]);
    Ok(m.to_bytes())
}

/// Runs `elide bayes export`.
pub fn run(a: &ExportArgs) -> Result<()> {
    let (net, desc) = io::load(&a.model)?;
    let meta: Meta = serde_json::from_value(desc.meta).context(
        "the model's description has no CLI metadata (was it saved by `elide bayes fit`?)",
    )?;
    let sparse = SparseNet::from_posterior(&net)?;
    let bytes = to_onnx(&sparse, &meta)?;
    std::fs::write(&a.onnx, &bytes).with_context(|| format!("writing {}", a.onnx.display()))?;
    let widths: Vec<String> = std::iter::once(sparse.layers[0].weight.cols)
        .chain(sparse.layers.iter().map(|l| l.weight.rows))
        .map(|w| w.to_string())
        .collect();
    let nnz: usize = sparse.layers.iter().map(|l| l.weight.nnz()).sum();
    println!(
        "{}: {} network, {nnz} nonzero weights ({:.1}% zeros), input x = the columns {:?}{}",
        a.onnx.display(),
        widths.join("-"),
        100.0 * sparse.sparsity(),
        meta.columns.iter().take(8).collect::<Vec<_>>(),
        if meta.columns.len() > 8 { " ..." } else { "" },
    );
    println!(
        "run it: elide run {} --input X.npy   (X: float32 [N, {}])",
        a.onnx.display(),
        widths[0]
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
    fn random_net(p: usize, hidden: usize, out: usize, likelihood: Likelihood) -> SpikeSlabNet {
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
                    .map(|_| r.normal() as f32)
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
        let (p, n) = (7, 6);
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
            let net = random_net(p, 5, out, likelihood);
            let sparse = SparseNet::from_posterior(&net).unwrap();
            let m = meta(p, scale);
            let mut xs = raw.clone();
            m.inputs.apply(&mut xs);
            let want = sparse.forward(&xs, n).unwrap();
            let mut g = onnx::from_bytes(&to_onnx(&sparse, &m).unwrap()).unwrap();
            optimize::optimize(&mut g).unwrap();
            // Every Gemm in CSR, whatever the drawn sparsity.
            optimize::sparse_weights(&mut g, 0.0);
            assert!(g
                .nodes
                .iter()
                .all(|nd| !matches!(nd.op, elide_graph::ops::Op::Gemm { .. })));
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
        );
        let sparse = SparseNet::from_posterior(&net).unwrap();
        let err = to_onnx(&sparse, &meta(6, None)).unwrap_err().to_string();
        assert!(
            err.contains("6 columns") && err.contains("reads 7"),
            "{err}"
        );
    }
}
