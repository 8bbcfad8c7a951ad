//! `elide onnx-test`: runs ONNX test folders (`model.onnx` + `test_data_set_*`) the way ONNX
//! Runtime's `onnx_test_runner` does and reports pass / fail / error / unsupported per folder.
use anyhow::{Context, Result};
use clap::Args;
use elide_graph::conformance::{self, Outcome, Status, Tolerance};
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

/// `elide onnx-test` arguments.
#[derive(Args)]
pub struct OnnxTestArgs {
    /// Test folders, or folders of test folders (e.g. the ONNX node tests).
    #[arg(required = true)]
    dirs: Vec<PathBuf>,
    /// Run this model on each DIR's test_data_set_* (DIRs then need no model.onnx): for
    /// checking a model of your own against reference outputs.
    #[arg(long)]
    model: Option<PathBuf>,
    /// Relative tolerance (ONNX's backend runner: 1e-3).
    #[arg(long, default_value_t = 1e-3)]
    rtol: f64,
    /// Absolute tolerance (ONNX's backend runner: 1e-7).
    #[arg(long, default_value_t = 1e-7)]
    atol: f64,
    /// Per-test tolerances: lines `name<TAB>rtol<TAB>atol[<TAB>source]`.
    #[arg(long)]
    tolerances: Option<PathBuf>,
    /// Run only the tests named in this file (one per line; `#` starts a comment).
    #[arg(long)]
    only: Option<PathBuf>,
    /// Exit with an error when a test named in this file does not pass.
    #[arg(long)]
    expect: Option<PathBuf>,
    /// Write one record `{name, status, message}` per folder to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Print only failures and the totals.
    #[arg(long, short)]
    quiet: bool,
}

/// Names listed one per line in `path` (blank lines and `#` comments skipped; a line's first
/// tab-separated field).
pub fn read_names(path: &Path) -> Result<BTreeSet<String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(text
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(|l| l.split('\t').next().unwrap_or(l).to_string())
        .collect())
}

fn read_tolerances(path: &Path) -> Result<HashMap<String, Tolerance>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut out = HashMap::new();
    for (k, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let f: Vec<&str> = line.split('\t').collect();
        let parse = |i: usize| -> Result<f64> {
            f.get(i)
                .and_then(|s| s.trim().parse().ok())
                .with_context(|| {
                    format!(
                        "{}:{}: expected name<TAB>rtol<TAB>atol",
                        path.display(),
                        k + 1
                    )
                })
        };
        out.insert(
            f[0].to_string(),
            Tolerance {
                rtol: parse(1)?,
                atol: parse(2)?,
            },
        );
    }
    Ok(out)
}

/// Runs the command.
pub fn run(a: &OnnxTestArgs) -> Result<()> {
    let mut dirs = Vec::new();
    if let Some(model) = &a.model {
        let tol = Tolerance {
            rtol: a.rtol,
            atol: a.atol,
        };
        let outs: Vec<Outcome> = a
            .dirs
            .iter()
            .map(|d| conformance::run_model(model, d, tol))
            .collect();
        return report(a, &outs);
    }
    for d in &a.dirs {
        let found =
            conformance::find_tests(d).with_context(|| format!("listing {}", d.display()))?;
        anyhow::ensure!(
            !found.is_empty(),
            "{}: no model.onnx in it or its subfolders",
            d.display()
        );
        dirs.extend(found);
    }
    if let Some(only) = &a.only {
        let names = read_names(only)?;
        dirs.retain(|d| names.contains(&*d.file_name().unwrap_or_default().to_string_lossy()));
    }
    let overrides = match &a.tolerances {
        Some(p) => read_tolerances(p)?,
        None => HashMap::new(),
    };
    let base = Tolerance {
        rtol: a.rtol,
        atol: a.atol,
    };
    let bar = ProgressBar::new(dirs.len() as u64)
        .with_style(ProgressStyle::with_template("{bar:40} {pos}/{len} {msg}").expect("template"));
    let outcomes = conformance::run_all(
        &dirs,
        |name| overrides.get(name).copied().unwrap_or(base),
        |_| bar.inc(1),
    );
    bar.finish_and_clear();
    report(a, &outcomes)
}

/// Prints the outcomes and totals, writes the JSON, checks `--expect`.
fn report(a: &OnnxTestArgs, outcomes: &[Outcome]) -> Result<()> {
    for o in outcomes {
        if !a.quiet || o.status != Status::Pass {
            println!("{:<11} {}{}", label(o.status), o.name, message(o));
        }
    }
    let count = |s: Status| outcomes.iter().filter(|o| o.status == s).count();
    let n = outcomes.len().max(1);
    println!(
        "onnx-test: {} tests: {} pass ({:.1}%), {} fail, {} error, {} unsupported",
        outcomes.len(),
        count(Status::Pass),
        100.0 * count(Status::Pass) as f64 / n as f64,
        count(Status::Fail),
        count(Status::Error),
        count(Status::Unsupported)
    );
    if let Some(p) = &a.json {
        std::fs::write(p, serde_json::to_string_pretty(outcomes)?)
            .with_context(|| format!("writing {}", p.display()))?;
    }
    if let Some(p) = &a.expect {
        let want = read_names(p)?;
        let passed: BTreeSet<&str> = outcomes
            .iter()
            .filter(|o| o.status == Status::Pass)
            .map(|o| o.name.as_str())
            .collect();
        let lost: Vec<&String> = want
            .iter()
            .filter(|w| !passed.contains(w.as_str()))
            .collect();
        anyhow::ensure!(
            lost.is_empty(),
            "{} test(s) listed in {} did not pass: {lost:?}",
            lost.len(),
            p.display()
        );
    }
    Ok(())
}

fn label(s: Status) -> &'static str {
    match s {
        Status::Pass => "PASS",
        Status::Fail => "FAIL",
        Status::Error => "ERROR",
        Status::Unsupported => "UNSUPPORTED",
    }
}

fn message(o: &Outcome) -> String {
    if o.message.is_empty() {
        String::new()
    } else {
        format!(": {}", o.message)
    }
}
