//! The official ONNX node tests (the `onnx` 1.19.1 wheel's suite, fetched by
//! `scripts/fetch-data.sh` into `data/onnx-node/`) run through the conformance runner.
//!
//! `tests/onnx-node/in-scope.txt` (computed by `scripts/onnx_node_scope.py`) lists the tests
//! elide aims at; `tests/onnx-node/expected-pass.txt` those that pass today. Any listed test
//! that stops passing fails this test, and so does any panic. Tests that newly pass are
//! printed: add them to the list (`ELIDE_UPDATE_EXPECTED=1` rewrites it, refusing to drop a
//! name), so the list only grows.
use elide_graph::conformance::{self, Status, Tolerance};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn names(path: &Path) -> BTreeSet<String> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
        .lines()
        .map(|l| l.split('\t').next().unwrap_or("").trim().to_string())
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

#[test]
fn onnx_node_suite() {
    let data = std::env::var_os("ELIDE_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("data"))
        .join("onnx-node");
    if !data.is_dir() {
        println!(
            "SKIPPED: {} not found (run scripts/fetch-data.sh to fetch the ONNX node tests)",
            data.display()
        );
        return;
    }
    let lists = repo().join("tests/onnx-node");
    let scope = names(&lists.join("in-scope.txt"));
    let expected = names(&lists.join("expected-pass.txt"));
    assert!(
        expected.is_subset(&scope),
        "expected-pass.txt names tests outside in-scope.txt: {:?}",
        expected.difference(&scope).collect::<Vec<_>>()
    );
    let dirs: Vec<PathBuf> = scope.iter().map(|n| data.join(n)).collect();
    let missing: Vec<_> = dirs.iter().filter(|d| !d.is_dir()).collect();
    assert!(
        missing.is_empty(),
        "in-scope tests missing from {}: {missing:?}",
        data.display()
    );
    let outcomes = conformance::run_all(&dirs, |_| Tolerance::default(), |_| {});
    let count = |s: Status| outcomes.iter().filter(|o| o.status == s).count();
    let passed: BTreeSet<String> = outcomes
        .iter()
        .filter(|o| o.status == Status::Pass)
        .map(|o| o.name.clone())
        .collect();
    println!(
        "ONNX node suite (onnx 1.19.1): {} of {} in-scope tests pass ({:.1}%); {} fail, {} error, {} unsupported",
        passed.len(),
        outcomes.len(),
        100.0 * passed.len() as f64 / outcomes.len().max(1) as f64,
        count(Status::Fail),
        count(Status::Error),
        count(Status::Unsupported)
    );
    let panics: Vec<_> = outcomes
        .iter()
        .filter(|o| o.message.starts_with("panic"))
        .map(|o| format!("{}: {}", o.name, o.message))
        .collect();
    let lost: Vec<_> = outcomes
        .iter()
        .filter(|o| expected.contains(&o.name) && o.status != Status::Pass)
        .map(|o| format!("{}: {:?} {}", o.name, o.status, o.message))
        .collect();
    let new: Vec<_> = passed.difference(&expected).collect();
    if !new.is_empty() {
        println!(
            "{} tests pass that expected-pass.txt does not list: {new:?}",
            new.len()
        );
        if std::env::var_os("ELIDE_UPDATE_EXPECTED").is_some() && lost.is_empty() {
            let text: String = passed.iter().map(|n| format!("{n}\n")).collect();
            std::fs::write(lists.join("expected-pass.txt"), text).expect("writing the list");
            println!("expected-pass.txt rewritten with {} tests", passed.len());
        }
    }
    assert!(panics.is_empty(), "panics: {panics:#?}");
    assert!(lost.is_empty(), "expected to pass but did not: {lost:#?}");
}
