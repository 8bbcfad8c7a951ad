//! `elide bayes fit` / `predict` end to end on small CSV files, and their errors on bad input.
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn elide(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_elide"))
        .args(args)
        .output()
        .expect("runs")
}

/// `elide ARGS`, which must succeed (else the test fails with its stderr).
fn ok(args: &[&str]) -> Output {
    let out = elide(args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("elide-bayes-cli-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `y = 2 a - c + small noise` over columns a, b, c, d; `label = (a > 0)`.
fn write_csv(path: &Path, rows: usize) {
    let mut s = String::from("a,b,c,d,y,label\n");
    let mut z = 12345u64;
    let mut u = || {
        z = z
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((z >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
    };
    for _ in 0..rows {
        let (a, b, c, d, e) = (u(), u(), u(), u(), u());
        let y = 2.0 * a - c + 0.1 * e;
        s += &format!("{a},{b},{c},{d},{y},{}\n", u8::from(a > 0.0));
    }
    std::fs::write(path, s).unwrap();
}

/// `elide bayes export MODEL`, then `elide run` on `x`: the export's summary line, the first
/// output's name and shape, its values, and the paths of the ONNX file and the input `.npy`.
struct Served {
    summary: String,
    output: serde_json::Value,
    values: Vec<f64>,
    onnx: PathBuf,
    npy: PathBuf,
}

fn export_and_run(d: &Path, model: &Path, x: &ndarray::Array2<f32>) -> Served {
    let onnx = d.join("m.onnx");
    let out = ok(&[
        "bayes",
        "export",
        model.to_str().unwrap(),
        "--onnx",
        onnx.to_str().unwrap(),
    ]);
    let summary = String::from_utf8_lossy(&out.stdout).to_string();
    let npy = d.join("x.npy");
    ndarray_npy::write_npy(&npy, x).unwrap();
    let json = d.join("run.json");
    ok(&[
        "run",
        onnx.to_str().unwrap(),
        "--input",
        npy.to_str().unwrap(),
        "--reps",
        "1",
        "--json",
        json.to_str().unwrap(),
    ]);
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let output = r["outputs"][0].clone();
    let values = output["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    Served {
        summary,
        output,
        values,
        onnx,
        npy,
    }
}

/// ONNX Runtime (when python3 can import it) gives the same outputs as `elide run` on the
/// exported model: the writer makes a model a standard runtime reads the same way.
fn ort_agrees(onnx: &Path, npy: &Path, elide_values: &[f64]) {
    let script = "import sys, numpy as np, onnxruntime as o\n\
        s = o.InferenceSession(sys.argv[1], providers=['CPUExecutionProvider'])\n\
        y = s.run(None, {'x': np.load(sys.argv[2])})[0]\n\
        print(' '.join(repr(float(v)) for v in y.ravel()))";
    let out = Command::new("python3")
        .args(["-c", script, onnx.to_str().unwrap(), npy.to_str().unwrap()])
        .output();
    let out = match out {
        Ok(o) if o.status.success() => o,
        Ok(o) => {
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(
                err.contains("No module named"),
                "ONNX Runtime could not run the exported model: {err}"
            );
            eprintln!("SKIPPED the ONNX Runtime check: onnxruntime is not importable");
            return;
        }
        Err(e) => {
            eprintln!("SKIPPED the ONNX Runtime check: no python3 ({e})");
            return;
        }
    };
    let ort: Vec<f64> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(|v| v.parse().unwrap())
        .collect();
    assert_eq!(ort.len(), elide_values.len());
    for (a, b) in ort.iter().zip(elide_values) {
        assert!(
            (a - b).abs() <= 1e-4 * (1.0 + b.abs()),
            "ORT {a} vs elide {b}"
        );
    }
}

#[test]
fn fit_then_predict_regression() {
    let d = dir("reg");
    let csv = d.join("train.csv");
    write_csv(&csv, 300);
    let model = d.join("m.safetensors");
    let out = ok(&[
        "bayes",
        "fit",
        "--data",
        csv.to_str().unwrap(),
        "--target",
        "y",
        "--layers",
        "1",
        "--width",
        "4",
        "--epochs",
        "150",
        "--batch",
        "100",
        "--out",
        model.to_str().unwrap(),
        "--json",
    ]);
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(r["train_rmse"].as_f64().unwrap() < 0.5, "{r}");
    let sel: Vec<&str> = r["selected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(sel.contains(&"a") && sel.contains(&"c"), "{sel:?}");
    assert!(model.exists() && d.join("m.json").exists());
    let out = ok(&[
        "bayes",
        "predict",
        model.to_str().unwrap(),
        "--data",
        csv.to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.lines().next(), Some("mean,lower95,upper95"));
    assert_eq!(text.lines().count(), 301);
    assert!(String::from_utf8_lossy(&out.stderr).contains("RMSE"));

    // Export to ONNX; `elide run` on raw (unstandardised) rows answers in y's units.
    let text = std::fs::read_to_string(&csv).unwrap();
    let rows: Vec<Vec<f32>> = text
        .lines()
        .skip(1)
        .take(50)
        .map(|l| l.split(',').map(|v| v.parse().unwrap()).collect())
        .collect();
    // Inputs: every column but the target (a, b, c, d, label).
    let x = ndarray::Array2::from_shape_fn((rows.len(), 5), |(i, j)| rows[i][[0, 1, 2, 3, 5][j]]);
    let s = export_and_run(&d, &model, &x);
    assert!(s.summary.contains("5-4-1 network"), "{}", s.summary);
    assert_eq!(s.output["name"], "y", "{}", s.output);
    assert_eq!(s.output["shape"], serde_json::json!([50, 1]));
    let mse = s
        .values
        .iter()
        .zip(&rows)
        .map(|(p, r)| (p - r[4] as f64).powi(2))
        .sum::<f64>()
        / 50.0;
    assert!(mse.sqrt() < 0.5, "exported model's RMSE {}", mse.sqrt());
    ort_agrees(&s.onnx, &s.npy, &s.values);
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn bad_input_gives_clear_errors() {
    let d = dir("bad");
    let csv = d.join("train.csv");
    write_csv(&csv, 20);
    let run = |args: &[&str]| {
        let mut all = vec!["bayes", "fit", "--epochs", "1", "--out"];
        let m = d.join("x.safetensors");
        all.push(m.to_str().unwrap());
        all.extend_from_slice(args);
        let o = elide(&all);
        assert!(!o.status.success());
        String::from_utf8_lossy(&o.stderr).to_string()
    };
    let e = run(&["--data", csv.to_str().unwrap(), "--target", "nope"]);
    assert!(e.contains("no column \"nope\""), "{e}");
    let e = run(&[
        "--data",
        csv.to_str().unwrap(),
        "--target",
        "y",
        "--classes",
        "2",
    ]);
    assert!(e.contains("not an integer in 0..2"), "{e}");
    let nan = d.join("nan.csv");
    std::fs::write(&nan, "a,y\n1,2\nNaN,3\n").unwrap();
    let e = run(&["--data", nan.to_str().unwrap(), "--target", "y"]);
    assert!(e.contains("NaN"), "{e}");
    let e = run(&[
        "--data",
        d.join("missing.csv").to_str().unwrap(),
        "--target",
        "y",
    ]);
    assert!(e.contains("missing.csv"), "{e}");
    std::fs::remove_dir_all(&d).ok();
}

/// Writes an uncompressed IDX file of unsigned bytes.
fn write_idx(path: &Path, dims: &[u32], data: &[u8]) {
    let mut b = vec![0, 0, 8, dims.len() as u8];
    for d in dims {
        b.extend(d.to_be_bytes());
    }
    b.extend(data);
    std::fs::write(path, b).unwrap();
}

/// The four MNIST-style files in `d`: `side x side` images and their labels, the same set as
/// training and test data.
fn write_idx_set(d: &Path, side: u32, images: &[u8], labels: &[u8]) {
    let n = labels.len() as u32;
    for (f, dims, data) in [
        ("train-images-idx3-ubyte", vec![n, side, side], images),
        ("train-labels-idx1-ubyte", vec![n], labels),
        ("t10k-images-idx3-ubyte", vec![n, side, side], images),
        ("t10k-labels-idx1-ubyte", vec![n], labels),
    ] {
        write_idx(&d.join(f), &dims, data);
    }
}

#[test]
fn fit_idx_on_a_tiny_synthetic_set_and_its_errors() {
    let d = dir("idx");
    // 40 "images" of 4 pixels: class = index of the bright pixel (classes 0..3 of 10).
    let n = 40;
    let mut im = vec![0u8; n * 4];
    let mut lb = vec![0u8; n];
    for i in 0..n {
        lb[i] = (i % 4) as u8;
        im[i * 4 + i % 4] = 255;
    }
    write_idx_set(&d, 2, &im, &lb);
    let model = d.join("m.safetensors");
    let out = ok(&[
        "bayes",
        "fit",
        "--idx",
        d.to_str().unwrap(),
        "--layers",
        "1",
        "--width",
        "4",
        "--epochs",
        "30",
        "--batch",
        "20",
        "--dense",
        "--json",
        "--out",
        model.to_str().unwrap(),
    ]);
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["inputs"], 4);
    assert_eq!(r["test_rows"], 40);
    assert!(r["dense"]["test_accuracy"].as_f64().unwrap() >= 0.0);
    assert!(model.exists());
    // A label out of range and a gzip file are clear errors.
    write_idx(&d.join("t10k-labels-idx1-ubyte"), &[n as u32], &[10; 40]);
    let o = elide(&[
        "bayes",
        "fit",
        "--idx",
        d.to_str().unwrap(),
        "--epochs",
        "1",
    ]);
    let e = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(!o.status.success() && e.contains("not in 0..10"), "{e}");
    std::fs::write(d.join("t10k-labels-idx1-ubyte"), [0x1f, 0x8b, 8, 0]).unwrap();
    let o = elide(&[
        "bayes",
        "fit",
        "--idx",
        d.to_str().unwrap(),
        "--epochs",
        "1",
    ]);
    let e = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(e.contains("gzip-compressed"), "{e}");
    // A label file with an image file's header (rank 3) says so, not "sizes ... need".
    let mut b = vec![0u8, 0, 8, 3, 0, 0, 0, n as u8];
    b.extend(&lb);
    std::fs::write(d.join("t10k-labels-idx1-ubyte"), b).unwrap();
    let o = elide(&[
        "bayes",
        "fit",
        "--idx",
        d.to_str().unwrap(),
        "--epochs",
        "1",
    ]);
    let e = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(
        !o.status.success() && e.contains("rank 3") && e.contains("an image file"),
        "{e}"
    );
    let o = elide(&[
        "bayes",
        "fit",
        "--idx",
        "/nonexistent-elide-dir",
        "--epochs",
        "1",
    ]);
    let e = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(e.contains("train-images-idx3-ubyte not found"), "{e}");
    std::fs::remove_dir_all(&d).ok();
}

/// A conv front on 8x8 images (a bright 2x2 spot in one of four quadrants = the class): fit,
/// export, and `elide run` on the raw pixels classifies them; ONNX Runtime agrees.
#[test]
fn fit_idx_with_a_conv_front_exports_and_runs() {
    let d = dir("idx-conv");
    let n = 240;
    let mut im = vec![0u8; n * 64];
    let mut lb = vec![0u8; n];
    let mut z = 7u64;
    let mut next = || {
        z = z
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (z >> 33) as usize
    };
    for i in 0..n {
        let class = i % 4;
        lb[i] = class as u8;
        let (y0, x0) = ((class / 2) * 4 + next() % 3, (class % 2) * 4 + next() % 3);
        let img = &mut im[i * 64..(i + 1) * 64];
        img.iter_mut().for_each(|v| *v = (next() % 60) as u8);
        for (y, x) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
            img[(y0 + y) * 8 + x0 + x] = 255;
        }
    }
    write_idx_set(&d, 8, &im, &lb);
    let model = d.join("m.safetensors");
    let out = ok(&[
        "bayes",
        "fit",
        "--idx",
        d.to_str().unwrap(),
        "--conv",
        "4",
        "--layers",
        "1",
        "--width",
        "8",
        "--epochs",
        "40",
        "--batch",
        "40",
        "--lr",
        "0.02",
        "--json",
        "--out",
        model.to_str().unwrap(),
    ]);
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["conv"], serde_json::json!([4]));
    assert!(r["test_accuracy"].as_f64().unwrap() > 0.8, "{r}");
    let x = ndarray::Array2::from_shape_fn((n, 64), |(i, j)| im[i * 64 + j] as f32);
    let s = export_and_run(&d, &model, &x);
    assert!(s.summary.contains("conv4-64-8-10 network"), "{}", s.summary);
    assert_eq!(s.values.len(), n * 10);
    let correct = s
        .values
        .chunks(10)
        .zip(&lb)
        .filter(|(p, &l)| (0..10).max_by(|&a, &b| p[a].total_cmp(&p[b])) == Some(l as usize))
        .count();
    assert!(
        correct as f64 > 0.8 * n as f64,
        "exported model: {correct} of {n} right"
    );
    ort_agrees(&s.onnx, &s.npy, &s.values);
    // The dense baseline with the same conv front runs beside it.
    let out = ok(&[
        "bayes",
        "fit",
        "--idx",
        d.to_str().unwrap(),
        "--conv",
        "4",
        "--layers",
        "1",
        "--width",
        "8",
        "--epochs",
        "2",
        "--batch",
        "40",
        "--dense",
        "--json",
        "--out",
        model.to_str().unwrap(),
    ]);
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(r["dense"]["test_accuracy"].as_f64().is_some(), "{r}");
    // The structure search chooses the head after the front (two starts of each width).
    let out = ok(&[
        "bayes",
        "fit",
        "--idx",
        d.to_str().unwrap(),
        "--conv",
        "4",
        "--search",
        "--search-layers",
        "1",
        "--search-widths",
        "2,8",
        "--restarts",
        "2",
        "--epochs",
        "5",
        "--batch",
        "40",
        "--json",
        "--out",
        model.to_str().unwrap(),
    ]);
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let grid = r["search"].as_array().unwrap();
    assert_eq!(grid.len(), 4, "{r}");
    let chosen = grid
        .iter()
        .max_by(|a, b| {
            let e = |c: &serde_json::Value| c["elbo"]["elbo"].as_f64().unwrap();
            e(a).total_cmp(&e(b))
        })
        .unwrap();
    assert_eq!(r["hidden"], serde_json::json!([chosen["width"]]), "{r}");
    assert_eq!(r["conv"], serde_json::json!([4]));
    // 4 3x3 filters and biases, then 64 features into the head.
    let w = chosen["width"].as_u64().unwrap();
    assert_eq!(
        chosen["params"].as_u64().unwrap(),
        40 + 65 * w + (w + 1) * 10
    );
    let (_, desc) = elide_bayes::io::load(&model).unwrap();
    assert!(desc.arch.conv.is_some());
    // --conv needs image data.
    let o = elide(&[
        "bayes", "fit", "--data", "x.csv", "--target", "y", "--conv", "4",
    ]);
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && e.contains("cannot be used with"),
        "{e}"
    );
    std::fs::remove_dir_all(&d).ok();
}

/// The real Fashion-MNIST files (scripts/fetch-data.sh), a short smoke run on 2,000 images.
#[test]
fn fit_idx_on_fashion_mnist() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/fashion-mnist");
    if !root.join("train-images-idx3-ubyte").is_file() {
        println!(
            "SKIPPED: {} has no Fashion-MNIST (run scripts/fetch-data.sh)",
            root.display()
        );
        return;
    }
    let d = dir("fmnist");
    let model = d.join("m.safetensors");
    let out = ok(&[
        "bayes",
        "fit",
        "--idx",
        root.to_str().unwrap(),
        "--train-limit",
        "2000",
        "--layers",
        "1",
        "--width",
        "32",
        "--epochs",
        "5",
        "--batch",
        "200",
        "--json",
        "--out",
        model.to_str().unwrap(),
    ]);
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["inputs"], 784);
    assert_eq!(r["test_rows"], 10_000);
    let acc = r["test_accuracy"].as_f64().unwrap();
    assert!(acc > 0.3, "test accuracy {acc}");
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn fit_search_reports_the_grid_and_saves_the_chosen_structure() {
    let d = dir("search");
    let csv = d.join("train.csv");
    write_csv(&csv, 200);
    let model = d.join("s.safetensors");
    let out = ok(&[
        "bayes",
        "fit",
        "--data",
        csv.to_str().unwrap(),
        "--target",
        "y",
        "--search",
        "--search-layers",
        "1,2",
        "--search-widths",
        "2,4",
        "--epochs",
        "40",
        "--batch",
        "100",
        "--out",
        model.to_str().unwrap(),
        "--json",
    ]);
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let grid = r["search"].as_array().unwrap();
    assert_eq!(grid.len(), 4, "{r}");
    let best = grid
        .iter()
        .max_by(|a, b| {
            let e = |v: &serde_json::Value| v["elbo"]["elbo"].as_f64().unwrap();
            e(a).total_cmp(&e(b))
        })
        .unwrap();
    let hidden: Vec<u64> = r["hidden"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    let want = vec![best["width"].as_u64().unwrap(); best["layers"].as_u64().unwrap() as usize];
    assert_eq!(hidden, want, "{r}");
    let w: f64 = grid.iter().map(|c| c["weight"].as_f64().unwrap()).sum();
    assert!((w - 1.0).abs() < 1e-9);
    // The saved model has the chosen structure and predicts.
    ok(&[
        "bayes",
        "predict",
        model.to_str().unwrap(),
        "--data",
        csv.to_str().unwrap(),
    ]);
    // --search with --layers is refused, grid flags need --search, and a zero width in the
    // grid is a clear error.
    let csv_s = csv.to_str().unwrap();
    let base = ["bayes", "fit", "--data", csv_s, "--target", "y"];
    let o = elide(&[&base[..], &["--search", "--layers", "2"]].concat());
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && e.contains("cannot be used with"),
        "{e}"
    );
    let o = elide(&[&base[..], &["--search-widths", "3"]].concat());
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && e.contains("--search"), "{e}");
    let o = elide(&[
        "bayes",
        "fit",
        "--data",
        csv.to_str().unwrap(),
        "--target",
        "y",
        "--search",
        "--search-widths",
        "0,4",
        "--out",
        model.to_str().unwrap(),
    ]);
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && e.contains("--search-widths") && e.contains("at least 1"),
        "{e}"
    );
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn teacher_experiment_runs_and_writes_json() {
    let d = dir("teacher");
    let json = d.join("t.json");
    let out = elide(&[
        "bayes",
        "teacher",
        "--dims",
        "10,40",
        "--replicates",
        "1",
        "--epochs",
        "30",
        "--n",
        "300",
        "--json",
        json.to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("excess MSE ~ a + b ln p"), "{text}");
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let pts = r["points"].as_array().unwrap();
    assert_eq!(pts.len(), 2);
    let f = |p: &serde_json::Value, k: &str| p[k].as_f64().unwrap();
    for p in pts {
        let rmse = p["scores"]["rmse"].as_f64().unwrap();
        assert!(
            (f(p, "excess_mse") - (rmse * rmse - 1.0)).abs() < 1e-9,
            "{p}"
        );
    }
    // More inputs, more parameters: the theory's lambda falls with p.
    assert_eq!(
        (pts[0]["p"].as_u64(), pts[1]["p"].as_u64()),
        (Some(10), Some(40))
    );
    assert!(f(&pts[1], "lambda") < f(&pts[0], "lambda"));
    assert!(r["excess_mse_vs_ln_p"]["slope"]
        .as_f64()
        .unwrap()
        .is_finite());
    let o = elide(&["bayes", "teacher", "--dims", "3", "--relevant", "5"]);
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && e.contains("the teacher reads 5"),
        "{e}"
    );
    std::fs::remove_dir_all(&d).ok();
}

/// `elide ARGS`, which must fail within `secs` seconds (a hang is killed and fails the test)
/// without a panic; its stderr and stdout.
fn fails_fast(args: &[&str], secs: u64) -> (String, String) {
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_elide"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runs");
    let t0 = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t0.elapsed().as_secs() >= secs {
            child.kill().ok();
            child.wait().ok();
            panic!("elide {args:?} still running after {secs} s");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let (err, stdout) = (
        String::from_utf8_lossy(&out.stderr).to_string(),
        String::from_utf8_lossy(&out.stdout).to_string(),
    );
    assert!(!out.status.success(), "elide {args:?} succeeded: {stdout}");
    assert!(!err.contains("panicked"), "elide {args:?} panicked: {err}");
    (err, stdout)
}

/// Each command fails at once with every one of `want` in its stderr.
fn refused(cases: &[(&[&str], &[&str])]) {
    for (args, want) in cases {
        let (e, _) = fails_fast(args, 20);
        for w in *want {
            assert!(e.contains(w), "elide {args:?}: {w:?} not in {e}");
        }
        for dump in ["TrainConfig", "TheorySizes", "{ "] {
            assert!(!e.contains(dump), "elide {args:?}: a Debug dump in {e}");
        }
    }
}

#[test]
fn bad_flag_values_name_the_flag_and_the_value() {
    let d = dir("flags");
    let csv = d.join("train.csv");
    write_csv(&csv, 20);
    let c = csv.to_str().unwrap();
    let fit = |extra: &[&'static str]| -> Vec<&str> {
        let mut v = vec!["bayes", "fit", "--data", c, "--target", "y"];
        v.extend_from_slice(extra);
        v
    };
    let positive = "must be a positive finite number";
    refused(&[
        (&fit(&["--lr", "0"]), &["'0'", "--lr", positive]),
        (&fit(&["--lr", "-0.1"]), &["'-0.1'", "--lr", positive]),
        (&fit(&["--lr", "nan"]), &["'nan'", "--lr", positive]),
        (&fit(&["--lr", "inf"]), &["'inf'", "--lr", positive]),
        (&fit(&["--sigma0", "inf"]), &["--sigma0", positive]),
        (&fit(&["--batch", "0"]), &["'0'", "--batch", "at least 1"]),
        (&fit(&["--epochs", "0"]), &["--epochs", "at least 1"]),
        (
            &fit(&["--classes", "1"]),
            &["'1'", "--classes", "at least 2"],
        ),
        (
            &fit(&["--layers", "100000000", "--width", "1"]),
            &["--layers", "at most 1000"],
        ),
        (&fit(&["--dense"]), &["--dense", "cannot be used with"]),
        (
            &fit(&["--train-limit", "5"]),
            &["--train-limit", "cannot be used with"],
        ),
        (
            &fit(&["--classes", "2", "--noise", "0.5"]),
            &["--noise", "cannot be used with"],
        ),
        (
            &["bayes", "simulate", "--epochs", "0"],
            &["--epochs", "at least 1"],
        ),
        (
            &["bayes", "simulate", "--threads", "100000"],
            &["--threads", "0 (all cores) to 256"],
        ),
        (
            &["bayes", "teacher", "--threads", "100000"],
            &["--threads", "0 (all cores) to 256"],
        ),
        (
            &["bayes", "bench", "--threads", "1,100000"],
            &["--threads", "0 (all cores) to 256"],
        ),
        (
            &["bayes", "simulate", "--replicates", "0"],
            &["--replicates", "at least 1"],
        ),
        (
            &["bayes", "simulate", "--theta-lr-scale", "0"],
            &["--theta-lr-scale", positive],
        ),
        (
            &["bayes", "teacher", "--epochs", "0"],
            &["--epochs", "at least 1"],
        ),
        (
            &["bayes", "teacher", "--student", "0"],
            &["--student", "at least 1"],
        ),
        (
            &["bayes", "teacher", "--relevant", "0"],
            &["--relevant", "at least 1"],
        ),
        (
            &[
                "bayes",
                "predict",
                "m.safetensors",
                "--data",
                c,
                "--samples",
                "0",
            ],
            &["--samples", "at least 1"],
        ),
        (
            &["bayes", "bench", "--batch", "0"],
            &["--batch", "at least 1"],
        ),
        (
            &["bayes", "bench", "--reps", "0"],
            &["--reps", "at least 1"],
        ),
        (
            &["bayes", "bench", "--sparsity", "1.5"],
            &["'1.5'", "--sparsity", "[0, 1]"],
        ),
        (
            &["bayes", "bench", "--sparsity", "-0.5"],
            &["'-0.5'", "--sparsity", "[0, 1]"],
        ),
        (
            &["bayes", "bench", "--sparsity", "nan"],
            &["--sparsity", "[0, 1]"],
        ),
    ]);
    std::fs::remove_dir_all(&d).ok();
}

/// Sizes past what can be allocated (or trained in any reasonable time) are refused before
/// anything is built, naming the flags that set them.
#[test]
fn oversized_networks_and_shapes_are_refused_at_once() {
    let d = dir("sizes");
    let csv = d.join("train.csv");
    write_csv(&csv, 40);
    let c = csv.to_str().unwrap();
    let m = d.join("m.safetensors");
    let m = m.to_str().unwrap();
    let fit = |extra: &[&'static str]| -> Vec<&str> {
        let mut v = vec!["bayes", "fit", "--data", c, "--target", "label", "--out", m];
        v.extend_from_slice(extra);
        v
    };
    refused(&[
        (
            &fit(&["--width", "1000000000"]),
            &["2^31", "--width 1000000000"],
        ),
        (
            &fit(&["--classes", "1000000000000"]),
            &["--classes 1000000000000", "40 rows"],
        ),
        (
            &fit(&["--classes", "1000000"]),
            &["--classes 1000000", "40 rows"],
        ),
        (
            &fit(&["--classes", "20", "--width", "100000"]),
            &["2^31", "--width 100000", "--classes 20"],
        ),
        (
            &["bayes", "teacher", "--student", "1000000000"],
            &["2^31", "--student 1000000000"],
        ),
        (
            &["bayes", "teacher", "--dims", "1000000000"],
            &["--dims 1000000000", "2^31"],
        ),
        (
            &["bayes", "bench", "--shape", "100000x100000"],
            &["--shape 100000x100000", "2^31"],
        ),
        (
            &["bayes", "bench", "--shape", "0x8"],
            &["--shape 0x8", "at least 1"],
        ),
        (
            &["bayes", "bench", "--shape", "8by8"],
            &["--shape", "OUTxIN"],
        ),
    ]);
    assert!(!Path::new(m).exists(), "nothing saved");
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn csv_problems_and_output_paths_are_named() {
    let d = dir("csvpaths");
    let write = |name: &str, text: &str| {
        let p = d.join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_string()
    };
    let dup_target = write("dup_target.csv", "y,b,c,y\n1,2,3,4\n2,3,4,5\n3,1,2,3\n");
    let dup_input = write("dup_input.csv", "a,a,c,y\n1,2,3,4\n2,3,4,5\n3,1,2,3\n");
    let huge = write("huge.csv", "a,b,y\n1,2,3\n2,3,4\n1e308,1,2\n");
    let good = d.join("good.csv");
    write_csv(&good, 20);
    let good = good.to_str().unwrap();
    let m = d.join("m.safetensors");
    let fit = |data: &str, out: &str| -> (String, String) {
        fails_fast(
            &[
                "bayes", "fit", "--data", data, "--target", "y", "--epochs", "1", "--out", out,
            ],
            60,
        )
    };
    let (e, _) = fit(&dup_target, m.to_str().unwrap());
    assert!(e.contains("column \"y\" twice"), "{e}");
    let (e, _) = fit(&dup_input, m.to_str().unwrap());
    assert!(e.contains("column \"a\" twice"), "{e}");
    let (e, _) = fit(&huge, m.to_str().unwrap());
    assert!(
        e.contains("line 4, column \"a\"") && e.contains("1e308"),
        "{e}"
    );
    // --out X.json would be overwritten by the description: refused, nothing written.
    let json = d.join("X.json");
    let (e, _) = fit(good, json.to_str().unwrap());
    assert!(
        e.contains("--out") && e.contains("cannot end in .json"),
        "{e}"
    );
    assert!(!json.exists());
    // A directory, and a file in a directory that does not exist: the path given is named.
    let (e, _) = fit(good, d.to_str().unwrap());
    assert!(
        e.contains(d.to_str().unwrap()) && e.contains("is a directory"),
        "{e}"
    );
    let gone = d.join("nowhere").join("m.safetensors");
    let (e, _) = fit(good, gone.to_str().unwrap());
    assert!(
        e.contains(gone.to_str().unwrap()) && !e.contains(".tmp"),
        "{e}"
    );
    std::fs::remove_dir_all(&d).ok();
}

/// `predict` and `export` check the model's description against its network and the data
/// before printing anything; `export` never writes over the model.
#[test]
fn predict_and_export_check_the_model_and_the_data_first() {
    let d = dir("checks");
    let csv = d.join("train.csv");
    write_csv(&csv, 40);
    let c = csv.to_str().unwrap();
    let model = d.join("m.safetensors");
    let m = model.to_str().unwrap();
    let common = [
        "--layers", "1", "--width", "3", "--epochs", "3", "--batch", "40", "--out",
    ];
    ok(&[
        &["bayes", "fit", "--data", c, "--target", "y"],
        &common[..],
        &[m],
    ]
    .concat());
    let cls = d.join("c.safetensors");
    let mc = cls.to_str().unwrap();
    ok(&[
        &[
            "bayes",
            "fit",
            "--data",
            c,
            "--target",
            "label",
            "--classes",
            "2",
        ],
        &common[..],
        &[mc],
    ]
    .concat());
    let write = |name: &str, text: &str| {
        let p = d.join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_string()
    };
    let predict =
        |model: &str, data: &str| fails_fast(&["bayes", "predict", model, "--data", data], 60);

    // Data: a value beyond f32, and (classification) a fractional or out-of-range label;
    // nothing is printed before the error.
    let big = write("big.csv", "a,b,c,d,label,y\n1e39,0,0,0,1,0\n");
    let (e, out) = predict(m, &big);
    assert!(
        e.contains("line 2, column \"a\"") && e.contains("too large"),
        "{e}"
    );
    assert!(out.is_empty(), "{out}");
    let big_y = write("big_y.csv", "a,b,c,d,label,y\n1,0,0,0,1,1e39\n");
    let (e, _) = predict(m, &big_y);
    assert!(e.contains("column \"y\""), "{e}");
    for bad in ["0.5", "7"] {
        let f = write("frac.csv", &format!("a,b,c,d,y,label\n1,0,0,0,1,{bad}\n"));
        let (e, out) = predict(mc, &f);
        assert!(
            e.contains(&format!("label {bad} in column \"label\"")),
            "{e}"
        );
        assert!(out.is_empty(), "printed before the error: {out}");
    }

    // A missing model is named as the model, not as its description.
    let gone = d.join("gone.safetensors");
    let (e, _) = predict(gone.to_str().unwrap(), c);
    assert!(
        e.contains("gone.safetensors") && e.contains("model file not found"),
        "{e}"
    );

    // Corrupt descriptions: short or zero standard deviations, columns that do not match.
    let json_path = d.join("m.json");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json_path).unwrap()).unwrap();
    let onnx = d.join("m.onnx");
    let o = onnx.to_str().unwrap();
    let json5 = serde_json::json!([0.0, 0.0, 0.0, 0.0, 0.0]);
    for (field, value, want) in [
        (
            "/meta/inputs/std",
            serde_json::json!([1.0]),
            "1 standard deviations for 5 columns",
        ),
        (
            "/meta/inputs/std",
            json5,
            "standard deviation 0 of column 0",
        ),
        (
            "/meta/columns",
            serde_json::json!(["a", "b"]),
            "lists 2 columns, the network reads 5",
        ),
    ] {
        let mut j = json.clone();
        *j.pointer_mut(field).unwrap() = value;
        std::fs::write(&json_path, serde_json::to_string(&j).unwrap()).unwrap();
        let (e, out) = predict(m, c);
        assert!(e.contains(want) && e.contains("m.json"), "{e}");
        assert!(out.is_empty());
        let (e, _) = fails_fast(&["bayes", "export", m, "--onnx", o], 60);
        assert!(e.contains(want), "{e}");
        assert!(
            !onnx.exists(),
            "an ONNX file was written from a corrupt model"
        );
    }
    std::fs::write(&json_path, serde_json::to_string(&json).unwrap()).unwrap();

    // export refuses to write over the model or its description.
    let before = std::fs::read(&model).unwrap();
    for target in [m, json_path.to_str().unwrap()] {
        let (e, _) = fails_fast(&["bayes", "export", m, "--onnx", target], 60);
        assert!(
            e.contains("--onnx") && e.contains("write the ONNX model elsewhere"),
            "{e}"
        );
    }
    assert_eq!(std::fs::read(&model).unwrap(), before);
    ok(&["bayes", "predict", m, "--data", c]);
    std::fs::remove_dir_all(&d).ok();
}
