//! `elide segment`: decode frame-wise probabilities into action segments (exact Viterbi or
//! FIFA), for one `.npy` file or a whole dataset split; also writes synthetic datasets.
use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, ValueEnum};
use elide_segment::evaluate::{evaluate, SplitSpec, TaskKind, VideoResult};
use elide_segment::fifa::{FifaOptions, Init};
use elide_segment::segments::from_frames;
use elide_segment::synth::{generate, write, SynthConfig};
use elide_segment::viterbi::ExactOptions;
use elide_segment::{
    dataset::Dataset, decode, npy, FrameScores, Grammar, LengthModel, Mapping, Method, ProbKind,
    Task,
};
use serde::Serialize;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Decoder choice.
#[derive(Clone, Copy, ValueEnum)]
enum MethodArg {
    /// Exact Viterbi with a Poisson length model.
    Exact,
    /// FIFA: gradient descent on an approximate energy (anytime).
    Fifa,
}

/// Task in dataset mode.
#[derive(Clone, Copy, ValueEnum)]
enum TaskArg {
    /// Align each test video to its ground-truth transcript.
    Align,
    /// Segment with the training transcripts as grammar.
    Segment,
}

/// Options of one video (`--probs`).
const FILE_ONLY: [&str; 2] = ["dataset", "make_synthetic"];
/// Options of dataset mode.
const DATASET_ONLY: [&str; 2] = ["probs", "make_synthetic"];
/// Options of the synthetic dataset.
const SYNTH_ONLY: [&str; 2] = ["probs", "dataset"];
/// Options of decoding (one video or a dataset).
const DECODE_ONLY: [&str; 1] = ["make_synthetic"];

/// Options of `elide segment`. Each mode's options conflict with the other modes, so none is
/// silently ignored.
#[derive(Args)]
#[command(group(clap::ArgGroup::new("mode").required(true).args(["probs", "dataset", "make_synthetic"])))]
pub struct SegmentArgs {
    /// Frame-wise probabilities or log-probabilities, `T x C` `.npy`.
    #[arg(long, requires = "target")]
    probs: Option<PathBuf>,
    /// The transcript to align to: class names (or ids without --mapping), space separated.
    #[arg(long, group = "target", conflicts_with_all = FILE_ONLY)]
    transcript: Option<String>,
    /// A grammar file: one allowed transcript per line.
    #[arg(long, group = "target", conflicts_with_all = FILE_ONLY)]
    grammar: Option<PathBuf>,
    /// `mapping.txt` ("id name" per line); without it classes are named by their ids.
    #[arg(long, conflicts_with_all = FILE_ONLY)]
    mapping: Option<PathBuf>,
    /// Mean length per class ("name mean" or one mean per line); default: T / segments.
    #[arg(long, conflicts_with_all = FILE_ONLY)]
    lengths: Option<PathBuf>,
    /// Dataset mode: a folder in the MS-TCN / Breakfast layout.
    #[arg(long)]
    dataset: Option<PathBuf>,
    /// Dataset mode: the split number (uses `train.splitN` and `test.splitN` bundles).
    #[arg(long, default_value_t = 1, conflicts_with_all = DATASET_ONLY)]
    split: usize,
    /// Dataset mode: folder of `<video>.npy` probabilities (default `<dataset>/probs`).
    #[arg(long, conflicts_with_all = DATASET_ONLY)]
    probs_dir: Option<PathBuf>,
    /// Dataset mode: the task.
    #[arg(long, value_enum, default_value_t = TaskArg::Segment, conflicts_with_all = DATASET_ONLY)]
    task: TaskArg,
    /// Dataset mode: background classes left out of IoU, IoD, F1, Edit (default: SIL if known).
    #[arg(long, value_delimiter = ',', conflicts_with_all = DATASET_ONLY)]
    bg: Option<Vec<String>>,
    /// Dataset mode: divide posteriors by the class prior of the training frames.
    #[arg(long, conflicts_with_all = DATASET_ONLY)]
    prior: bool,
    /// Write a synthetic Breakfast-like dataset to this folder and exit.
    #[arg(long)]
    make_synthetic: Option<PathBuf>,
    /// Videos of the synthetic dataset (at least 2: one training, one test).
    #[arg(long, default_value_t = 40, value_parser = at_least(2), conflicts_with_all = SYNTH_ONLY)]
    videos: usize,
    /// Seed of the synthetic dataset.
    #[arg(long, default_value_t = 1, conflicts_with_all = SYNTH_ONLY)]
    seed: u64,
    /// Decoder.
    #[arg(long, value_enum, default_value_t = MethodArg::Exact, conflicts_with_all = DECODE_ONLY)]
    method: MethodArg,
    /// FIFA: gradient steps.
    #[arg(long, conflicts_with = "budget_ms", conflicts_with_all = DECODE_ONLY)]
    iters: Option<usize>,
    /// FIFA: time budget per video in milliseconds (anytime; the best iterate is returned).
    #[arg(long, value_parser = positive, allow_negative_numbers = true,
          conflicts_with_all = DECODE_ONLY)]
    budget_ms: Option<f64>,
    /// FIFA: transcripts decoded in segmentation [default: 8].
    #[arg(long, value_parser = at_least(1), conflicts_with_all = DECODE_ONLY)]
    top_k: Option<usize>,
    /// FIFA segmentation: decode every one of the top-k transcripts for the whole budget
    /// instead of racing them (successive halving).
    #[arg(long, conflicts_with_all = DECODE_ONLY)]
    no_race: bool,
    /// FIFA: start from this segmentation instead of the mean lengths: one label per frame
    /// (class names, or ids without --mapping), whitespace or newline separated. Alignment:
    /// its labels must be the transcript; segmentation: its transcript must be in the grammar.
    #[arg(long, conflicts_with_all = FILE_ONLY)]
    init: Option<PathBuf>,
    /// Frame step of the boundaries, for both decoders (1 = every frame; the reference codes
    /// decode with 30). FIFA then works on chunks of this many frames. One video: at most
    /// T / segments, so that each segment gets a whole step.
    #[arg(long, default_value_t = 1, value_parser = at_least(1), conflicts_with_all = DECODE_ONLY)]
    subsample: usize,
    /// Print JSON instead of text.
    #[arg(long, conflicts_with_all = DECODE_ONLY)]
    json: bool,
}

/// A clap parser of integers of at least `min`.
pub(crate) fn at_least(
    min: usize,
) -> impl Fn(&str) -> Result<usize, String> + Clone + Send + Sync + 'static {
    move |s| match s.parse::<usize>() {
        Ok(v) if v >= min => Ok(v),
        Ok(_) => Err(format!("must be at least {min}")),
        Err(e) => Err(e.to_string()),
    }
}

/// A clap parser of positive finite numbers.
pub(crate) fn positive(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        Ok(_) => Err("must be positive and finite".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// A clap parser of non-negative finite numbers.
pub(crate) fn non_negative(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        Ok(_) => Err("must be non-negative and finite".into()),
        Err(e) => Err(e.to_string()),
    }
}

#[derive(Serialize)]
struct SegOut {
    label: String,
    start: usize,
    end: usize,
}

/// Runs `elide segment`.
pub fn run(a: &SegmentArgs) -> Result<()> {
    if let Some(dir) = &a.make_synthetic {
        let ds = generate(&SynthConfig {
            videos: a.videos,
            seed: a.seed,
            ..SynthConfig::default()
        })?;
        write(&ds, dir)?;
        println!(
            "wrote {} videos ({} train, {} test) to {}",
            ds.videos.len(),
            ds.train,
            ds.videos.len() - ds.train,
            dir.display()
        );
        return Ok(());
    }
    let mut method = method(a)?;
    if let Some(root) = &a.dataset {
        return dataset_mode(a, root, &method);
    }
    let path = a.probs.as_ref().expect("clap requires a mode");
    let arr = npy::read(path)?;
    let scores = FrameScores::from_npy(&arr, ProbKind::Auto)
        .with_context(|| format!("reading {}", path.display()))?;
    let mapping = match &a.mapping {
        Some(m) => Mapping::read(m)?,
        None => Mapping::numeric(scores.classes()),
    };
    if mapping.len() != scores.classes() {
        bail!(
            "{} has {} classes, the mapping {}",
            path.display(),
            scores.classes(),
            mapping.len()
        );
    }
    let t = scores.frames();
    if let (Some(file), Method::Fifa(opt)) = (&a.init, &mut method) {
        opt.init = Init::Segmentation(read_init(file, &mapping, t)?);
    }
    let (transcript, grammar) = match (&a.transcript, &a.grammar) {
        (Some(tr), _) => (Some(mapping.transcript(tr)?), None),
        (None, Some(g)) => (None, Some(Grammar::read(g, &mapping)?)),
        _ => unreachable!("clap requires a transcript or a grammar"),
    };
    let lengths = match &a.lengths {
        Some(l) => LengthModel::read(l, &mapping)?,
        None => {
            let segs = match (&transcript, &grammar) {
                (Some(tr), _) => tr.len() as f64,
                (_, Some(g)) => {
                    let ts = g.transcripts();
                    ts.iter().map(|t| t.len()).sum::<usize>() as f64 / ts.len() as f64
                }
                _ => unreachable!(),
            };
            LengthModel::uniform(mapping.len(), (t as f64 / segs).max(1.0))?
        }
    };
    let task = match (&transcript, &grammar) {
        (Some(tr), _) => Task::Align(tr),
        (_, Some(g)) => Task::Segment(g),
        _ => unreachable!(),
    };
    check_subsample(a.subsample, t, task)?;
    let start = Instant::now();
    let out = decode(&scores, task, &lengths, &method)?;
    let ms = start.elapsed().as_secs_f64() * 1e3;
    let segs: Vec<SegOut> = out
        .segments
        .iter()
        .map(|s| SegOut {
            label: mapping.name(s.label).to_string(),
            start: s.start,
            end: s.end,
        })
        .collect();
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "frames": t,
                "method": method_name(a),
                "ms": ms,
                "objective": out.objective,
                "iters": out.iters,
                "segments": segs,
            }))?
        );
    } else {
        for s in &segs {
            println!("{:>7} {:>7}  {}", s.start, s.end, s.label);
        }
        eprintln!(
            "{} segments over {t} frames, {} in {ms:.2} ms",
            segs.len(),
            method_name(a)
        );
    }
    Ok(())
}

/// A frame-wise labelling (one label per frame) as segments covering `frames` frames.
fn read_init(
    path: &std::path::Path,
    mapping: &Mapping,
    frames: usize,
) -> Result<Vec<elide_segment::Segment>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the initial segmentation {}", path.display()))?;
    let labels = text
        .split_whitespace()
        .map(|name| mapping.id(name))
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("in the initial segmentation {}", path.display()))?;
    if labels.len() != frames {
        bail!(
            "the initial segmentation {} has {} labels, the video {frames} frames",
            path.display(),
            labels.len()
        );
    }
    Ok(from_frames(&labels))
}

/// One video: `--subsample` must leave a whole step for each segment of the transcript (of
/// the shortest grammar transcript). The decoders would otherwise shrink the step until it
/// does, decoding on another grid than the one asked for, with the boundaries forced rather
/// than found (e.g. an even split when the grid has as many steps as the transcript has
/// segments); an error that gives the largest valid step is what a user can act on.
fn check_subsample(subsample: usize, frames: usize, task: Task<'_>) -> Result<()> {
    let (segments, what) = match task {
        Task::Align(tr) => (tr.len(), "the transcript"),
        Task::Segment(g) => (g.min_len(), "the shortest grammar transcript"),
    };
    // Fewer frames than segments is the decoders' error, reported as such.
    if segments == 0 || frames < segments || subsample <= frames / segments {
        return Ok(());
    }
    let steps = frames / subsample;
    bail!(
        "--subsample {subsample}: {frames} frames hold {steps} whole step{} of {subsample} \
         frames, fewer than the {segments} segments of {what}; use --subsample {} or less",
        if steps == 1 { "" } else { "s" },
        frames / segments
    )
}

fn method_name(a: &SegmentArgs) -> &'static str {
    match a.method {
        MethodArg::Exact => "exact",
        MethodArg::Fifa => "fifa",
    }
}

fn method(a: &SegmentArgs) -> Result<Method> {
    Ok(match a.method {
        MethodArg::Exact => {
            let fifa_only = a.iters.is_some()
                || a.budget_ms.is_some()
                || a.init.is_some()
                || a.top_k.is_some()
                || a.no_race;
            if fifa_only {
                bail!(
                    "--iters, --budget-ms, --init, --top-k and --no-race are FIFA options \
                     (add --method fifa)"
                );
            }
            Method::Exact(ExactOptions {
                subsample: a.subsample,
                ..Default::default()
            })
        }
        MethodArg::Fifa => {
            let budget = match a.budget_ms {
                Some(ms) => Some(
                    Duration::try_from_secs_f64(ms / 1e3)
                        .map_err(|_| anyhow!("--budget-ms {ms:e} is too large"))?,
                ),
                None => None,
            };
            Method::Fifa(FifaOptions {
                // With only a time budget, iterate until it runs out.
                iters: a.iters.unwrap_or(if budget.is_some() {
                    usize::MAX
                } else {
                    FifaOptions::default().iters
                }),
                budget,
                top_k: a.top_k.unwrap_or(FifaOptions::default().top_k),
                race: !a.no_race,
                subsample: a.subsample,
                ..FifaOptions::default()
            })
        }
    })
}

fn dataset_mode(a: &SegmentArgs, root: &std::path::Path, method: &Method) -> Result<()> {
    let ds = Dataset::open(root)?;
    let background = match &a.bg {
        Some(names) => names
            .iter()
            .filter(|n| !n.is_empty())
            .map(|n| ds.mapping().id(n))
            .collect::<Result<Vec<_>, _>>()?,
        None => ds.mapping().id("SIL").into_iter().collect(),
    };
    let spec = SplitSpec {
        train: format!("train.split{}", a.split),
        test: format!("test.split{}", a.split),
        probs: a.probs_dir.clone(),
        prior: a.prior,
        background,
    };
    let task = match a.task {
        TaskArg::Align => TaskKind::Alignment,
        TaskArg::Segment => TaskKind::Segmentation,
    };
    let start = Instant::now();
    let (videos, s) = evaluate(&ds, &spec, task, method)?;
    let wall = start.elapsed().as_secs_f64();
    warn_reduced_steps(a.subsample, &videos);
    let ms: f64 = videos.iter().map(|v| v.ms).sum::<f64>() / videos.len() as f64;
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "videos": videos.len(),
                "method": method_name(a),
                "ms_per_video": ms,
                "mof": s.mof, "iou": s.iou, "iod": s.iod,
                "f1_10": s.f1[0], "f1_25": s.f1[1], "f1_50": s.f1[2], "edit": s.edit,
            }))?
        );
    } else {
        println!(
            "{} videos, {}: {ms:.2} ms per video ({wall:.2} s wall)",
            videos.len(),
            method_name(a)
        );
        println!(
            "MoF {:.1}  IoU {:.1}  IoD {:.1}  F1@{{10,25,50}} {:.1} {:.1} {:.1}  Edit {:.1}",
            s.mof, s.iou, s.iod, s.f1[0], s.f1[1], s.f1[2], s.edit
        );
    }
    Ok(())
}

/// Dataset mode: one `--subsample` serves videos of every length, so where a video is too
/// short for its transcript on that grid the decoders shrink its step (rather than fail the
/// whole split); say so, since those boundaries are then forced more than found.
fn warn_reduced_steps(subsample: usize, videos: &[VideoResult]) {
    let reduced: Vec<&VideoResult> = videos.iter().filter(|v| v.step < subsample).collect();
    if let Some(min) = reduced.iter().map(|v| v.step).min() {
        eprintln!(
            "warning: --subsample {subsample} leaves fewer whole steps than segments in {} of \
             {} videos (e.g. {}, {} frames); their step was reduced to fit (down to {min})",
            reduced.len(),
            videos.len(),
            reduced[0].video,
            reduced[0].frames
        );
    }
}
