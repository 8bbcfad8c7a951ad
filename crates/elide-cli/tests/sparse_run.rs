//! `elide run MODEL --mask M.npy --mode exact|fast` on the committed PP-OCRv4 detector.
use std::path::Path;
use std::process::Command;

fn fixture(rel: &str) -> String {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures"))
        .join(rel)
        .display()
        .to_string()
}

/// A float32 `.npy` `[h, w]` with ones in rows `y0..y1`, columns `x0..x1`.
fn write_mask(path: &Path, [h, w]: [usize; 2], rect: [usize; 4]) {
    write_mask_shaped(path, &format!("{h}, {w}"), [h, w], rect);
}

/// [`write_mask`] with the header's shape written as `shape` (the values are `h x w`).
fn write_mask_shaped(path: &Path, shape: &str, [h, w]: [usize; 2], [y0, y1, x0, x1]: [usize; 4]) {
    let header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({shape}), }}");
    let pad = 64 - (10 + header.len() + 1) % 64;
    let header = format!("{header}{}\n", " ".repeat(pad % 64));
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    for y in 0..h {
        for x in 0..w {
            let v: f32 = if (y0..y1).contains(&y) && (x0..x1).contains(&x) {
                1.0
            } else {
                0.0
            };
            bytes.extend_from_slice(&v.to_le_bytes());
        }
    }
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn run_with_a_mask_prints_dense_and_sparse_times() {
    let model = fixture("models/ch_PP-OCRv4_det_infer.onnx");
    let input = fixture("onnx/ppocr_det_input.npy");
    let dir = std::env::temp_dir();
    let mask = dir.join(format!("elide-mask-{}.npy", std::process::id()));
    write_mask(&mask, [320, 256], [80, 160, 64, 128]);
    for mode in ["exact", "fast"] {
        let out = Command::new(env!("CARGO_BIN_EXE_elide"))
            .args(["run", &model, "--input", &input, "--reps", "1"])
            .args(["--mask", mask.to_str().unwrap(), "--mode", mode])
            .output()
            .expect("run elide");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("dense:") && text.contains("sparse ("),
            "{text}"
        );
        assert!(text.contains("inside the mask"), "{text}");
        if mode == "exact" {
            // Exact mode: the reported error inside the mask is at rounding level.
            let line = text
                .lines()
                .find(|l| l.contains("inside the mask"))
                .unwrap();
            let err: f32 = line
                .split("inside the mask ")
                .nth(1)
                .and_then(|s| s.split(' ').next())
                .unwrap()
                .parse()
                .unwrap();
            assert!(err < 1e-4, "{line}");
        }
    }
    // A mask of the wrong shape is a clear error.
    write_mask(&mask, [32, 32], [0, 8, 0, 8]);
    let out = Command::new(env!("CARGO_BIN_EXE_elide"))
        .args(["run", &model, "--input", &input, "--reps", "1"])
        .args(["--mask", mask.to_str().unwrap()])
        .output()
        .expect("run elide");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("mask"));
    std::fs::remove_file(&mask).ok();
}

#[test]
fn an_image_mask_is_resized_to_the_input() {
    let model = fixture("models/ch_PP-OCRv4_det_infer.onnx");
    let input = fixture("onnx/ppocr_det_input.npy");
    let dir = std::env::temp_dir();
    // 64x32 image for a 320x256 input: bright square = active.
    let png = dir.join(format!("elide-mask-{}.png", std::process::id()));
    let img = image::GrayImage::from_fn(32, 64, |x, y| {
        image::Luma([if (8..16).contains(&x) && (16..32).contains(&y) {
            255
        } else {
            0
        }])
    });
    img.save(&png).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_elide"))
        .args(["run", &model, "--input", &input, "--reps", "1"])
        .args(["--mask", png.to_str().unwrap(), "--mode", "exact"])
        .output()
        .expect("run elide");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    // 8x16 of 32x64 pixels: 6.25% of the image.
    assert!(text.contains("mask 6.2%"), "{text}");
    // A file that is not an image is a clear error.
    std::fs::write(&png, b"not a png").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_elide"))
        .args(["run", &model, "--input", &input, "--reps", "1"])
        .args(["--mask", png.to_str().unwrap()])
        .output()
        .expect("run elide");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("mask image"));
    std::fs::remove_file(&png).ok();
}

#[test]
fn mask_shapes_and_their_errors_agree() {
    let model = fixture("models/ch_PP-OCRv4_det_infer.onnx");
    let input = fixture("onnx/ppocr_det_input.npy");
    let mask = std::env::temp_dir().join(format!("elide-mask4-{}.npy", std::process::id()));
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_elide"))
            .args(["run", &model, "--input", &input, "--reps", "1"])
            .args(["--mask", mask.to_str().unwrap()])
            .output()
            .expect("run elide")
    };
    // [N, 1, H, W] is accepted: 80x64 of 320x256 pixels = 6.25%.
    write_mask_shaped(&mask, "1, 1, 320, 256", [320, 256], [80, 160, 64, 128]);
    let out = run();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("mask 6.2%"));
    // Other ranks, and several channels, get one message listing the accepted shapes.
    for (shape, hw) in [("81920,", [1, 81920]), ("1, 2, 160, 256", [320, 256])] {
        write_mask_shaped(&mask, shape, hw, [0, 8, 0, 8]);
        let out = run();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{shape}");
        let shown = format!("[{}]", shape.trim_end_matches(','));
        assert!(
            err.contains("must be [H, W], [N, H, W] or [N, 1, H, W]") && err.contains(&shown),
            "{shape}: {err}"
        );
    }
    std::fs::remove_file(&mask).ok();
}
