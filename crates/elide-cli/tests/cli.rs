//! The binary end to end: help on every verb, a small demo, a small benchmark's JSON, bad flags.
use std::process::Command;

fn elide(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_elide"))
        .args(args)
        .output()
        .expect("run elide")
}

#[test]
fn every_verb_has_help() {
    for verb in [
        &["--help"][..],
        &["demo", "--help"],
        &["bench", "--help"],
        &["bench", "sbnet", "--help"],
        &["bench", "conv", "--help"],
        &["inspect", "--help"],
        &["run", "--help"],
    ] {
        let out = elide(verb);
        assert!(out.status.success(), "{verb:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Usage"),
            "{verb:?}"
        );
    }
}

#[test]
fn small_demo_reports_exact_mode_without_error() {
    let out = elide(&[
        "demo",
        "--height",
        "48",
        "--width",
        "80",
        "--channels",
        "8",
        "--units",
        "2",
        "--reps",
        "1",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let exact = text
        .lines()
        .find(|l| l.starts_with("exact"))
        .expect("exact row");
    let err: f64 = exact.split_whitespace().nth(3).unwrap().parse().unwrap();
    assert!(err < 1e-5, "exact mode error {err}");
}

#[test]
fn sbnet_bench_writes_complete_records() {
    let dir = std::env::temp_dir().join(format!("elide-cli-test-{}", std::process::id()));
    let json = dir.join("sbnet.json");
    let svg = dir.join("sbnet.svg");
    let out = elide(&[
        "bench",
        "sbnet",
        "--layers",
        "bottleneck128",
        "--sparsity",
        "0.9",
        "--reps",
        "1",
        "--json",
        json.to_str().unwrap(),
        "--plot",
        svg.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let recs = v.as_array().unwrap();
    assert_eq!(recs.len(), 3, "one record per mask kind");
    for r in recs {
        for key in [
            "layer",
            "input_shape",
            "mask",
            "sparsity",
            "block_size",
            "dense_ms",
            "sparse_ms",
            "speedup",
            "ort_ms",
            "max_rel_err",
        ] {
            assert!(r.get(key).is_some(), "record lacks {key}: {r}");
        }
        assert!(r["max_rel_err"].as_f64().unwrap() < 1e-5);
    }
    assert!(std::fs::read_to_string(&svg).unwrap().contains("<svg"));
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn bad_flags_are_errors_not_panics() {
    let out = elide(&[
        "bench",
        "sbnet",
        "--layers",
        "nope",
        "--reps",
        "1",
        "--plot",
        "/tmp/elide-nope.svg",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown layer"));
    // Rejected while parsing or before anything is allocated or timed.
    let sbnet = ["bench", "sbnet", "--layers", "conv64"];
    let conv = ["bench", "conv", "--threads", "1"];
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["demo", "--reps", "0"], "at least 1"),
        (vec!["demo", "--threads", "100000"], "to 256"),
        (vec!["demo", "--coverage", "2"], "(0, 1]"),
        (vec!["demo", "--coverage", "-1"], "(0, 1]"),
        (vec!["demo", "--coverage", "nan"], "(0, 1]"),
        (
            vec!["demo", "--height", "100000", "--width", "100000"],
            "1 GiB",
        ),
        (vec!["demo", "--channels", "0"], "at least 1"),
        (vec!["demo", "--units", "1000"], "at most 64"),
        ([&sbnet[..], &["--reps", "0"]].concat(), "at least 1"),
        ([&sbnet[..], &["--threads", "257"]].concat(), "to 256"),
        ([&sbnet[..], &["--sparsity", "0.5,1.5"]].concat(), "[0, 1]"),
        ([&sbnet[..], &["--sparsity", "-1"]].concat(), "[0, 1]"),
        ([&sbnet[..], &["--sparsity", "nan"]].concat(), "[0, 1]"),
        ([&conv[..], &["--reps", "0"]].concat(), "at least 1"),
        (vec!["bench", "conv", "--threads", "1,300"], "to 256"),
        (
            [&conv[..], &["--shape", "1,64,100000,100000"]].concat(),
            "1 GiB",
        ),
        ([&conv[..], &["--shape", "1,64,8"]].concat(), "N,C,H,W"),
    ];
    for (args, want) in cases {
        let out = elide(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        // The message names the flag it is about.
        let flag = args.iter().rev().find(|a| a.starts_with("--")).unwrap();
        assert!(err.contains(flag), "{args:?}: {err}");
    }
}
