//! ONNX Runtime, the dense CPU reference, driven through `bench/ort_conv.py`.
use anyhow::{Context, Result};
use std::path::PathBuf;
use std::process::Command;

/// The script, found next to the sources or in `./bench`.
fn script() -> Option<PathBuf> {
    [
        PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../bench/ort_conv.py"
        )),
        PathBuf::from("bench/ort_conv.py"),
    ]
    .into_iter()
    .find(|p| p.exists())
}

/// Whether Python with `onnxruntime` and `onnx` is installed; prints why not when it is not.
pub fn available() -> bool {
    let ok = script().is_some()
        && Command::new("python3")
            .args(["-c", "import onnxruntime, onnx, numpy"])
            .output()
            .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("ONNX Runtime not found (needs python3 with `pip install onnxruntime onnx numpy` and bench/ort_conv.py): ort_ms will be null");
    }
    ok
}

/// Median milliseconds of `layer` (see the script) on `shape` with `threads` intra-op threads.
pub fn time(
    layer: &str,
    shape: [usize; 4],
    cout: usize,
    threads: usize,
    reps: usize,
) -> Result<(f64, String)> {
    let script = script().context("bench/ort_conv.py not found")?;
    let out = Command::new("python3")
        .arg(script)
        .args([
            "--layer",
            layer,
            "--shape",
            &shape.map(|v| v.to_string()).join(","),
            "--cout",
            &cout.to_string(),
        ])
        .args([
            "--threads",
            &threads.to_string(),
            "--reps",
            &reps.to_string(),
        ])
        .output()
        .context("running python3")?;
    anyhow::ensure!(
        out.status.success(),
        "ort_conv.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("parsing ort_conv.py output")?;
    let ms = v["ort_ms"].as_f64().context("ort_ms missing")?;
    Ok((ms, v["ort_version"].as_str().unwrap_or("?").to_string()))
}
