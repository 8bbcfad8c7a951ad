//! The tables and plots of `elide bench fifa`.
use super::super::plot::{self, Series};
use super::measure::Record;
use anyhow::Result;
use std::fmt::Write;
use std::path::Path;

const TASKS: [&str; 2] = ["alignment", "segmentation"];

fn find<'a>(rs: &'a [Record], task: &str, method: &str) -> Option<&'a Record> {
    rs.iter().find(|r| r.task == task && r.method == method)
}

fn is_fifa(r: &Record) -> bool {
    r.method.starts_with("fifa")
}

/// Markdown tables: per task, every method with its speed-up over both exact baselines (full
/// resolution and the reference codes' subsampled grid); the fastest FIFA within one MoF
/// point of each; then the scaling.
pub fn tables(summary: &[Record], scaling: &[Record], subsample: usize) -> String {
    let mut s = String::new();
    let sub = format!("exact-sub{subsample}");
    for task in TASKS {
        let (Some(exact), Some(exact_sub)) =
            (find(summary, task, "exact"), find(summary, task, &sub))
        else {
            continue;
        };
        let _ = writeln!(
            s,
            "\n{task} (mean over {:.0}-frame videos on average)\n",
            exact.t
        );
        let _ = writeln!(
            s,
            "| method | iters | ms/video | vs exact | vs {sub} | MoF | IoU | IoD | F1@10 | F1@25 | F1@50 | Edit |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|---|---|");
        for r in summary.iter().filter(|r| r.task == task) {
            let _ = writeln!(
                s,
                "| {} | {} | {:.3} | {:.1}x | {:.1}x | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} |",
                r.method,
                if r.iters == 0 { "-".into() } else { r.iters.to_string() },
                r.ms,
                exact.ms / r.ms,
                exact_sub.ms / r.ms,
                r.mof,
                r.iou,
                r.iod,
                r.f1_10,
                r.f1_25,
                r.f1_50,
                r.edit
            );
        }
        let _ = writeln!(s);
        for base in [exact, exact_sub] {
            let within = summary
                .iter()
                .filter(|r| r.task == task && is_fifa(r) && r.mof >= base.mof - 1.0)
                .min_by(|a, b| a.ms.total_cmp(&b.ms));
            let _ = match within {
                Some(r) => writeln!(
                    s,
                    "fastest FIFA within 1 MoF point of {}: {} at {} iterations, {:.1}x faster ({:.1} vs {:.1} MoF)",
                    base.method,
                    r.method,
                    r.iters,
                    base.ms / r.ms,
                    r.mof,
                    base.mof
                ),
                None => writeln!(s, "no FIFA budget reaches within 1 MoF point of {}", base.method),
            };
        }
    }
    if !scaling.is_empty() {
        let _ = writeln!(s, "\nscaling with T (ms per video, mean over the videos)\n");
        let fsub = super::measure::fifa_name(subsample);
        let iters = scaling.iter().map(|r| r.iters).max().unwrap_or(0);
        let _ = writeln!(
            s,
            "| task | T | exact ms | {sub} ms | fifa ({iters} it) ms | {fsub} ({iters} it) ms | {fsub} vs exact | {fsub} vs {sub} | MoF exact | MoF {sub} | MoF fifa | MoF {fsub} |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|---|---|");
        let mut ts: Vec<f64> = scaling.iter().map(|r| r.t).collect();
        ts.dedup();
        for task in TASKS {
            for &t in &ts {
                let get = |m: &str| {
                    scaling
                        .iter()
                        .find(|r| r.task == task && r.t == t && r.method == m)
                };
                if let (Some(e), Some(es), Some(f), Some(fs)) =
                    (get("exact"), get(&sub), get("fifa"), get(&fsub))
                {
                    let _ = writeln!(
                        s,
                        "| {task} | {t:.0} | {:.3} | {:.3} | {:.3} | {:.3} | {:.1}x | {:.1}x | {:.1} | {:.1} | {:.1} | {:.1} |",
                        e.ms,
                        es.ms,
                        f.ms,
                        fs.ms,
                        e.ms / fs.ms,
                        es.ms / fs.ms,
                        e.mof,
                        es.mof,
                        f.mof,
                        fs.mof
                    );
                }
            }
        }
    }
    s
}

/// The anytime curve (MoF as a fraction against FIFA iterations, exact as flat lines; the
/// dashed line at 1 is a perfect MoF) and the scaling plot (ms against T, log-free).
pub fn plots(path: &Path, summary: &[Record], scaling: &[Record]) -> Result<()> {
    let mut series = Vec::new();
    let max_it = summary.iter().map(|r| r.iters).max().unwrap_or(1) as f64;
    let mut fifas: Vec<&str> = summary
        .iter()
        .filter(|r| is_fifa(r))
        .map(|r| r.method.as_str())
        .collect();
    fifas.sort();
    fifas.dedup();
    for task in TASKS {
        for m in &fifas {
            let fifa: Vec<(f64, f64)> = summary
                .iter()
                .filter(|r| r.task == task && r.method == *m)
                .map(|r| (r.iters as f64, r.mof / 100.0))
                .collect();
            series.push(Series {
                label: format!("{m} {task}"),
                points: fifa,
            });
        }
        for r in summary.iter().filter(|r| r.task == task && !is_fifa(r)) {
            series.push(Series {
                label: format!("{} {task} ({:.1} ms)", r.method, r.ms),
                points: vec![(0.0, r.mof / 100.0), (max_it, r.mof / 100.0)],
            });
        }
    }
    plot::lines(
        path,
        "FIFA anytime curve: MoF against iterations (flat: exact decoders)",
        "FIFA iterations",
        "MoF (fraction)",
        &series,
    )?;
    println!("wrote {}", path.display());
    if scaling.is_empty() {
        return Ok(());
    }
    let mut series = Vec::new();
    let mut methods: Vec<&str> = scaling.iter().map(|r| r.method.as_str()).collect();
    methods.dedup();
    methods.sort();
    methods.dedup();
    for task in TASKS {
        for m in &methods {
            series.push(Series {
                label: format!("{m} {task}"),
                points: scaling
                    .iter()
                    .filter(|r| r.task == task && r.method == *m)
                    .map(|r| (r.t, r.ms))
                    .collect(),
            });
        }
    }
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("fifa");
    let scaling_path = path.with_file_name(format!("{stem}-scaling.svg"));
    plot::lines(
        &scaling_path,
        "Decoding time against video length",
        "T (frames)",
        "ms per video",
        &series,
    )?;
    println!("wrote {}", scaling_path.display());
    Ok(())
}
