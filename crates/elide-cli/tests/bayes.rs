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
    assert!(!o.status.success());
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
    assert!(!o.status.success() && e.contains("widths >= 1"), "{e}");
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
