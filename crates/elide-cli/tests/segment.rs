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
    assert!(text(&out).contains("frame 19 sums to"), "{}", text(&out));
    std::fs::remove_file(bad).unwrap();
}

/// The fixture's first video (20 x 4 `f4` probabilities, C order) with one value replaced.
fn probs_with(frame: usize, class: usize, v: f32) -> PathBuf {
    let probs = fixture().join("probs/P01_cam01_P01_coffee.npy");
    let mut bytes = std::fs::read(probs).unwrap();
    let at = bytes.len() - 20 * 4 * 4 + (frame * 4 + class) * 4;
    bytes[at..at + 4].copy_from_slice(&v.to_le_bytes());
    let path = tmp(&format!("probs-{frame}-{class}-{v}.npy"));
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn bad_probabilities_name_the_frame_and_class() {
    for (v, want) in [
        (f32::NAN, "frame 3, class 1: NaN"),
        (f32::INFINITY, "frame 3, class 1: inf"),
        (f32::NEG_INFINITY, "frame 3, class 1: -inf"),
        (-0.5, "frame 3, class 1: -0.5"),
    ] {
        let path = probs_with(3, 1, v);
        let out = elide(&[
            "segment",
            "--probs",
            path.to_str().unwrap(),
            "--transcript",
            "0 1",
        ]);
        assert!(!out.status.success(), "{v}");
        assert!(text(&out).contains(want), "{v}: {}", text(&out));
        // Frame 0 is valid: it is not blamed.
        assert!(
            !text(&out).contains("frame 0, class 0"),
            "{v}: {}",
            text(&out)
        );
        std::fs::remove_file(path).unwrap();
    }
}

#[test]
fn subsample_must_leave_a_step_per_segment() {
    let f = fixture();
    let probs = f.join("probs/P01_cam01_P01_coffee.npy");
    let (p, m) = (probs.to_str().unwrap(), f.join("mapping.txt"));
    let m = m.to_str().unwrap();
    let tr = "SIL take_cup pour_coffee SIL";
    let run = |extra: &[&str]| {
        let mut args = vec!["segment", "--probs", p, "--mapping", m, "--transcript", tr];
        args.extend_from_slice(extra);
        elide(&args)
    };
    let out = run(&["--subsample", "0"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("'0' for '--subsample"),
        "{}",
        text(&out)
    );
    // 20 frames, 4 segments: steps of 5 fit, of 6 (or far more) do not.
    for method in ["exact", "fifa"] {
        for sub in ["6", "1000", &usize::MAX.to_string()] {
            let out = run(&["--subsample", sub, "--method", method]);
            assert!(!out.status.success(), "{method} {sub}");
            let want = format!("--subsample {sub}: 20 frames hold");
            assert!(text(&out).contains(&want), "{}", text(&out));
            assert!(
                text(&out).contains("use --subsample 5 or less"),
                "{}",
                text(&out)
            );
        }
        let out = run(&["--subsample", "5", "--method", method, "--json"]);
        assert!(out.status.success(), "{}", text(&out));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        for s in v["segments"].as_array().unwrap() {
            assert_eq!(s["end"].as_u64().unwrap() % 5, 0, "{s}");
        }
    }
    // A dataset: videos too short for the step are decoded on a finer one, with a warning.
    let d = fixture();
    let args = [
        "segment",
        "--dataset",
        d.to_str().unwrap(),
        "--task",
        "align",
    ];
    let out = elide(&[&args[..], &["--subsample", "100"]].concat());
    assert!(out.status.success(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("warning: --subsample 100") && err.contains("2 of 2 videos"),
        "{err}"
    );
    let out = elide(&[&args[..], &["--subsample", "2"]].concat());
    assert!(out.status.success(), "{}", text(&out));
    assert!(!text(&out).contains("warning"), "{}", text(&out));
}

#[test]
fn bad_flags_are_named_with_their_value() {
    let f = fixture();
    let probs = f.join("probs/P01_cam01_P01_coffee.npy");
    let p = probs.to_str().unwrap();
    let synth = tmp("never-written");
    let s = synth.to_str().unwrap();
    fn seg<'a>(extra: &[&'a str]) -> Vec<&'a str> {
        [&["segment"][..], extra].concat()
    }
    fn bench<'a>(extra: &[&'a str]) -> Vec<&'a str> {
        [&["bench", "fifa"][..], extra].concat()
    }
    for (args, want) in [
        (
            seg(&[
                "--probs",
                p,
                "--transcript",
                "0 1",
                "--method",
                "fifa",
                "--top-k",
                "0",
            ]),
            "invalid value '0' for '--top-k <TOP_K>': must be at least 1",
        ),
        (
            seg(&[
                "--probs",
                p,
                "--transcript",
                "0 1",
                "--method",
                "fifa",
                "--budget-ms",
                "-2",
            ]),
            "invalid value '-2' for '--budget-ms <BUDGET_MS>': must be positive",
        ),
        (
            seg(&["--probs", p, "--transcript", "0 1", "--top-k", "2"]),
            "--top-k and --no-race are FIFA options",
        ),
        (
            seg(&["--make-synthetic", s, "--videos", "1"]),
            "invalid value '1' for '--videos <VIDEOS>': must be at least 2",
        ),
        (
            seg(&["--make-synthetic", s, "--videos", "0"]),
            "invalid value '0' for '--videos <VIDEOS>'",
        ),
        (bench(&["--lr", "-1"]), "invalid value '-1' for '--lr <LR>'"),
        (
            bench(&["--beta", "-1"]),
            "invalid value '-1' for '--beta <BETA>'",
        ),
        (
            bench(&["--sharpness", "0"]),
            "invalid value '0' for '--sharpness <SHARPNESS>'",
        ),
        (
            bench(&["--top-k", "0"]),
            "invalid value '0' for '--top-k <TOP_K>'",
        ),
        (
            bench(&["--subsample", "1"]),
            "'1' for '--subsample <SUBSAMPLE>'",
        ),
        (bench(&["--reps", "0"]), "'0' for '--reps <REPS>'"),
        (bench(&["--train", "0"]), "'0' for '--train <TRAIN>'"),
    ] {
        let out = elide(&args);
        assert!(!out.status.success(), "{args:?}");
        let t = text(&out);
        assert!(t.contains(want), "{args:?}: {t}");
        assert!(!t.contains("Options {") && !t.contains("Config {"), "{t}");
    }
    assert!(!synth.exists());
}

#[test]
fn fifa_bench_checks_scaling_before_running() {
    let start = std::time::Instant::now();
    let small = [
        "bench", "fifa", "--train", "6", "--test", "2", "--reps", "1",
    ];
    for (scaling, want) in [
        ("1", "--scaling 1: the shortest grammar transcript has"),
        ("400,200000", "--scaling 200000: at most 100000 frames"),
    ] {
        let out = elide(&[&small[..], &["--iters", "5", "--scaling", scaling]].concat());
        assert!(!out.status.success(), "{scaling}");
        assert!(text(&out).contains(want), "{scaling}: {}", text(&out));
        // Nothing was decoded (no progress lines, no tables).
        assert!(!text(&out).contains("iters"), "{scaling}: {}", text(&out));
    }
    assert!(start.elapsed().as_secs() < 60);
}

#[test]
fn options_of_another_mode_are_errors() {
    let f = fixture();
    let probs = f.join("probs/P01_cam01_P01_coffee.npy");
    let (p, d) = (probs.to_str().unwrap(), f.to_str().unwrap());
    let m = f.join("mapping.txt");
    let m = m.to_str().unwrap();
    let one = ["segment", "--probs", p, "--transcript", "0 1"];
    let ds = ["segment", "--dataset", d];
    for (base, extra, flag) in [
        (&ds[..], &["--transcript", "SIL"][..], "--transcript"),
        (&ds, &["--grammar", m], "--grammar"),
        (&ds, &["--mapping", m], "--mapping"),
        (&ds, &["--lengths", m], "--lengths"),
        (&ds, &["--init", m], "--init"),
        (&ds, &["--videos", "4"], "--videos"),
        (&one, &["--split", "2"], "--split"),
        (&one, &["--task", "align"], "--task"),
        (&one, &["--prior"], "--prior"),
        (&one, &["--probs-dir", d], "--probs-dir"),
        (&one, &["--bg", "SIL"], "--bg"),
        (&one, &["--seed", "3"], "--seed"),
        (
            &["segment", "--make-synthetic", d],
            &["--method", "fifa"],
            "--method",
        ),
    ] {
        let out = elide(&[base, extra].concat());
        assert!(!out.status.success(), "{extra:?}");
        let t = text(&out);
        assert!(
            t.contains("cannot be used with") && t.contains(flag),
            "{extra:?}: {t}"
        );
    }
}

#[test]
fn file_errors_name_the_file_and_line() {
    let f = fixture();
    let probs = f.join("probs/P01_cam01_P01_coffee.npy");
    let (p, m) = (probs.to_str().unwrap(), f.join("mapping.txt"));
    let m = m.to_str().unwrap();
    let file = tmp("lines.txt");
    let name = file.to_str().unwrap();
    let tr = "SIL take_cup SIL";
    let mapping = "0 SIL\n1 take_cup\n2 pour_coffee\n";
    for (flag, content, want) in [
        ("--lengths", "SIL 0\n", format!("{name}:1: mean length 0")),
        (
            "--lengths",
            "SIL 5\n\nzzz 5\n",
            format!("{name}:3: unknown label \"zzz\""),
        ),
        (
            "--lengths",
            "5\n5\n",
            format!("{name}: 2 lengths for 4 classes"),
        ),
        (
            "--grammar",
            "SIL take_cup\nSIL zzz\n",
            format!("{name}:2: unknown label \"zzz\""),
        ),
        ("--grammar", "\n \n", format!("{name}: no transcripts")),
        (
            "--mapping",
            &format!("{mapping}3 SIL\n"),
            format!("{name}:4: class \"SIL\" named twice"),
        ),
        (
            "--mapping",
            &format!("{mapping}2 add_sugar\n"),
            format!("{name}:4: id 2 given twice"),
        ),
    ] {
        std::fs::write(&file, content).unwrap();
        let mut args = vec!["segment", "--probs", p, flag, name];
        if flag != "--mapping" {
            args.extend_from_slice(&["--mapping", m]);
        }
        if flag != "--grammar" {
            args.extend_from_slice(&["--transcript", tr]);
        }
        let out = elide(&args);
        assert!(!out.status.success(), "{content:?}");
        assert!(text(&out).contains(&want), "{content:?}: {}", text(&out));
    }
    std::fs::remove_file(file).unwrap();
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

#[test]
fn dataset_frame_counts_must_match() {
    let root = tmp("frames");
    let _ = std::fs::remove_dir_all(&root);
    copy_dir(&fixture(), &root);
    let video = "P03_cam02_P03_coffee";
    let gt_file = root.join(format!("groundTruth/{video}.txt"));
    let gt = std::fs::read_to_string(&gt_file).unwrap();
    assert_eq!(gt.lines().count(), 22);
    for (content, frames) in [
        (gt.lines().take(10).collect::<Vec<_>>().join("\n"), 10),
        (gt.repeat(2), 44),
    ] {
        std::fs::write(&gt_file, content).unwrap();
        let out = elide(&[
            "segment",
            "--dataset",
            root.to_str().unwrap(),
            "--task",
            "align",
        ]);
        assert!(!out.status.success(), "{frames}");
        let want =
            format!("video {video}: the ground truth has {frames} frames, the probabilities 22");
        assert!(text(&out).contains(&want), "{}", text(&out));
    }
    std::fs::remove_dir_all(root).unwrap();
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
