//! `elide segment` and `elide bench fifa` end to end: file and dataset modes, JSON, clear
//! errors on bad input, and complete benchmark records.
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn elide(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_elide"))
        .args(args)
        .output()
        .expect("run elide")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../elide-segment/tests/fixtures/mini")
}

fn tmp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("elide-cli-seg-{}-{name}", std::process::id()))
}

#[test]
fn help_for_the_new_verbs() {
    for verb in [&["segment", "--help"][..], &["bench", "fifa", "--help"]] {
        let out = elide(verb);
        assert!(out.status.success(), "{verb:?}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("Usage"));
    }
}

#[test]
fn aligns_a_file_with_both_methods() {
    let f = fixture();
    let probs = f.join("probs/P01_cam01_P01_coffee.npy");
    let mapping = f.join("mapping.txt");
    for method in ["exact", "fifa"] {
        let out = elide(&[
            "segment",
            "--probs",
            probs.to_str().unwrap(),
            "--mapping",
            mapping.to_str().unwrap(),
            "--transcript",
            "SIL take_cup pour_coffee SIL",
            "--method",
            method,
            "--json",
        ]);
        assert!(out.status.success(), "{}", text(&out));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let segs = v["segments"].as_array().unwrap();
        let labels: Vec<&str> = segs.iter().map(|s| s["label"].as_str().unwrap()).collect();
        assert_eq!(labels, ["SIL", "take_cup", "pour_coffee", "SIL"]);
        // Ground truth: 3, 6, 8, 3 frames.
        let ends: Vec<u64> = segs.iter().map(|s| s["end"].as_u64().unwrap()).collect();
        if method == "exact" {
            assert_eq!(ends, [3, 9, 17, 20]);
        }
        assert_eq!(*ends.last().unwrap(), 20);
    }
}

#[test]
fn fifa_starts_from_a_given_segmentation() {
    let f = fixture();
    let probs = f.join("probs/P01_cam01_P01_coffee.npy");
    let (p, m) = (probs.to_str().unwrap(), f.join("mapping.txt"));
    let m = m.to_str().unwrap();
    // A labelling that is not the ground truth (3, 6, 8, 3): 5, 5, 5, 5 frames.
    let init = tmp("init.txt");
    let labels = ["SIL", "take_cup", "pour_coffee", "SIL"]
        .iter()
        .flat_map(|l| std::iter::repeat_n(*l, 5))
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&init, labels).unwrap();
    let grammar = tmp("init-grammar.txt");
    std::fs::write(&grammar, "SIL take_cup SIL\nSIL take_cup pour_coffee SIL\n").unwrap();
    let run = |extra: &[&str]| {
        let mut args = vec!["segment", "--probs", p, "--mapping", m, "--json"];
        args.extend_from_slice(extra);
        elide(&args)
    };
    let ends = |out: &Output| -> Vec<u64> {
        assert!(out.status.success(), "{}", text(out));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["segments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["end"].as_u64().unwrap())
            .collect()
    };
    let i = init.to_str().unwrap();
    let g = grammar.to_str().unwrap();
    let tr = "SIL take_cup pour_coffee SIL";
    let fifa = ["--method", "fifa", "--init", i];
    // No step: the given segmentation comes back, aligned or segmented (top 1).
    let zero = [&fifa[..], &["--iters", "0"]].concat();
    assert_eq!(
        ends(&run(&[&zero[..], &["--transcript", tr]].concat())),
        [5, 10, 15, 20]
    );
    assert_eq!(
        ends(&run(
            &[&zero[..], &["--grammar", g, "--top-k", "1"]].concat()
        )),
        [5, 10, 15, 20]
    );
    // With steps it still covers the video with the transcript's segments.
    let out = run(&[&fifa[..], &["--iters", "100", "--transcript", tr]].concat());
    assert_eq!(ends(&out).len(), 4);
    assert_eq!(*ends(&out).last().unwrap(), 20);
    // Clear errors: another transcript, the exact decoder, a wrong frame count.
    for (extra, want) in [
        (
            &["--transcript", "SIL take_cup SIL"][..],
            "not the transcript",
        ),
        (&["--transcript", tr, "--method", "exact"], "FIFA options"),
    ] {
        let mut args = vec!["--init", i];
        args.extend_from_slice(extra);
        if !extra.contains(&"exact") {
            args.extend_from_slice(&["--method", "fifa"]);
        }
        let out = run(&args);
        assert!(!out.status.success(), "{extra:?}");
        assert!(text(&out).contains(want), "{extra:?}: {}", text(&out));
    }
    std::fs::write(&init, "SIL\n".repeat(19)).unwrap();
    let out = run(&[&fifa[..], &["--transcript", "SIL"]].concat());
    assert!(!out.status.success());
    assert!(text(&out).contains("19 labels"), "{}", text(&out));
    std::fs::remove_file(init).unwrap();
    std::fs::remove_file(grammar).unwrap();
}

#[test]
fn bad_input_is_a_clear_error() {
    let f = fixture();
    let probs = f.join("probs/P01_cam01_P01_coffee.npy");
    let (p, m) = (probs.to_str().unwrap(), f.join("mapping.txt"));
    let m = m.to_str().unwrap();
    let run = |extra: &[&str]| {
        let mut args = vec!["segment", "--probs", p, "--mapping", m];
        args.extend_from_slice(extra);
        elide(&args)
    };
    for (extra, want) in [
        (
            &["--transcript", "SIL fry_egg"][..],
            "unknown label \"fry_egg\"",
        ),
        (&["--transcript", " "], "empty transcript"),
        (
            &["--transcript", &"SIL ".repeat(21)],
            "20 frames cannot hold a transcript of 21",
        ),
        (&["--transcript", "SIL", "--iters", "5"], "FIFA options"),
    ] {
        let out = run(extra);
        assert!(!out.status.success(), "{extra:?}");
        assert!(text(&out).contains(want), "{extra:?}: {}", text(&out));
    }
    // Probabilities whose rows do not sum to one.
    let bad = tmp("bad.npy");
    let mut bytes = std::fs::read(&probs).unwrap();
    let n = bytes.len();
    bytes[n - 4..].copy_from_slice(&0.9f32.to_le_bytes());
    std::fs::write(&bad, bytes).unwrap();
    let out = elide(&[
        "segment",
        "--probs",
        bad.to_str().unwrap(),
        "--transcript",
        "0 1",
    ]);
    assert!(!out.status.success());
    assert!(text(&out).contains("not a distribution"), "{}", text(&out));
    std::fs::remove_file(bad).unwrap();
}

#[test]
fn dataset_mode_prints_metrics() {
    let root = tmp("synth");
    let out = elide(&[
        "segment",
        "--make-synthetic",
        root.to_str().unwrap(),
        "--videos",
        "8",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    for method in ["exact", "fifa"] {
        let out = elide(&[
            "segment",
            "--dataset",
            root.to_str().unwrap(),
            "--task",
            "align",
            "--method",
            method,
            "--json",
        ]);
        assert!(out.status.success(), "{}", text(&out));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["videos"], 4);
        let mof = v["mof"].as_f64().unwrap();
        assert!(mof > 70.0 && mof <= 100.0, "{method}: MoF {mof}");
    }
    std::fs::remove_dir_all(root).unwrap();
}

#[test]
fn fifa_bench_writes_complete_records() {
    let dir = tmp("bench");
    let (json, svg, table) = (
        dir.join("fifa.json"),
        dir.join("fifa.svg"),
        dir.join("fifa.txt"),
    );
    let out = elide(&[
        "bench",
        "fifa",
        "--train",
        "20",
        "--test",
        "2",
        "--iters",
        "5,20",
        "--reps",
        "1",
        "--scaling",
        "400",
        "--json",
        json.to_str().unwrap(),
        "--plot",
        svg.to_str().unwrap(),
        "--table",
        table.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let recs = v.as_array().unwrap();
    // Methods: exact, exact-sub30, fifa and fifa-sub30 at 2 budgets each (6), segmentation
    // also fifa-sub30-full (unraced) at both (8); scaling: one budget (4, segmentation 5).
    // 6 + 8 methods x (2 videos + summary) + (4 + 5) methods x 1 length.
    assert_eq!(recs.len(), (6 + 8) * 3 + 4 + 5);
    let full = |task: &str| {
        recs.iter()
            .any(|r| r["task"] == task && r["method"] == "fifa-sub30-full")
    };
    assert!(full("segmentation") && !full("alignment"));
    for r in recs {
        for key in ["task", "method", "iters", "T", "ms", "mof", "iou"] {
            assert!(!r[key].is_null(), "{key} missing in {r}");
        }
        assert!(r["ms"].as_f64().unwrap() > 0.0);
    }
    for task in ["alignment", "segmentation"] {
        assert!(recs
            .iter()
            .any(|r| r["task"] == task && r["method"] == "fifa" && r["iters"] == 20));
        assert!(recs
            .iter()
            .any(|r| r["task"] == task && r["method"] == "fifa-sub30" && r["iters"] == 5));
    }
    assert!(std::fs::read_to_string(&table)
        .unwrap()
        .contains("| exact-sub30 |"));
    assert!(svg.exists() && dir.join("fifa-scaling.svg").exists());
    std::fs::remove_dir_all(dir).unwrap();
}
