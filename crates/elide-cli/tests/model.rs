//! `elide inspect` and `elide run` on the committed PP-OCRv4 detector and its ORT reference.
use std::path::Path;
use std::process::Command;

fn elide(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_elide"))
        .args(args)
        .output()
        .expect("run elide")
}

fn fixture(rel: &str) -> String {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures"))
        .join(rel)
        .display()
        .to_string()
}

#[test]
fn inspect_lists_layers_and_totals() {
    let model = fixture("models/ch_PP-OCRv4_det_infer.onnx");
    let out = elide(&["inspect", &model, "--shape", "1,3,64,64"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Conv") && text.contains("ConvTranspose"),
        "{text}"
    );
    let total = text.lines().last().unwrap();
    assert!(
        total.starts_with("total:") && total.contains("GMAC"),
        "{total}"
    );
    // Without --shape, the symbolic image sides default to 224, the batch to 1.
    let out = elide(&["inspect", &model]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines()
            .last()
            .unwrap()
            .ends_with("for input [1, 3, 224, 224]"),
        "{text}"
    );
}

#[test]
fn run_writes_outputs_and_timing_as_json() {
    let model = fixture("models/ch_PP-OCRv4_det_infer.onnx");
    let input = fixture("onnx/ppocr_det_input.npy");
    let json = std::env::temp_dir().join(format!("elide-run-{}.json", std::process::id()));
    let out = elide(&[
        "run",
        &model,
        "--input",
        &input,
        "--reps",
        "1",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let o = &doc["outputs"][0];
    assert_eq!(o["shape"], serde_json::json!([1, 1, 320, 256]));
    assert_eq!(o["values"].as_array().unwrap().len(), 320 * 256);
    assert!(doc["dense_ms"].as_f64().unwrap() > 0.0);
    std::fs::remove_file(json).ok();
}

#[test]
fn bad_models_and_inputs_are_clear_errors() {
    let model = fixture("models/ch_PP-OCRv4_det_infer.onnx");
    let out = elide(&["inspect", "/nonexistent/model.onnx"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read"));
    // A .pth is not an ONNX protobuf.
    let out = elide(&["inspect", &fixture("models/handwriting_model.pth")]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("ONNX"));
    // Shapes for inspect are checked before anything is allocated: size, rank, the
    // declared channels ([?, 3, ?, ?]), zero sides.
    for (shape, want) in [
        ("1,3,99999999,99999999", "holds 29999999400000003 values"),
        ("1,3,64", "has 3 dimensions"),
        ("1,4,64,64", "dimension 1 is 4"),
        ("1,3,0,64", "at least 1"),
    ] {
        let out = elide(&["inspect", &model, "--shape", shape]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{shape}");
        assert!(
            err.contains("--shape") && err.contains(want),
            "{shape}: {err}"
        );
    }
    // An input of the wrong rank.
    let out = elide(&["run", &model, "--input", &fixture("mnist/mnist_labels.npy")]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
}
