//! FIFA (Souri et al., GCPR 2021): action segmentation by gradient descent on a differentiable
//! approximation of the decoding energy. Anytime: every iterate is a valid segmentation, and
//! the best one seen (by the energy of its hard segmentation) is returned when the iteration
//! or time budget runs out.
mod adam;
mod energy;
mod topk;

pub use adam::Adam;
pub use energy::{Problem, Work};
pub use topk::rank_transcripts;

use crate::error::{Result, SegError};
use crate::grammar::Grammar;
use crate::length::LengthModel;
use crate::scores::{grid, FrameScores, GridCums};
use crate::segments::{check_transcript, from_lengths, Segment};
use std::time::{Duration, Instant};

/// Where the lengths start.
#[derive(Clone, Debug, PartialEq)]
pub enum Init {
    /// Every segment `T / N` frames.
    Uniform,
    /// Proportional to the length model's class means (scaled to fill `T`).
    Means,
    /// Given lengths (e.g. a previous segmentation), scaled to fill `T`.
    Lengths(Vec<f64>),
    /// A given segmentation (e.g. another model's output). Alignment: its labels must be the
    /// transcript; it gives the starting lengths. Segmentation: its transcript must be one of
    /// the grammar's; that transcript is decoded first from these lengths, then the `top_k - 1`
    /// best others from their mean lengths.
    Segmentation(Vec<Segment>),
}

/// FIFA's options. The defaults (Adam 0.2, sharpness 160, beta 0.5, 256 bins, 50 steps,
/// top 8) were chosen on a synthetic dataset of another seed (7) than the benchmark's (2021),
/// at frame resolution (`subsample` 1).
#[derive(Clone, Debug)]
pub struct FifaOptions {
    /// Gradient steps at most.
    pub iters: usize,
    /// Wall-time budget per video (all transcripts together in segmentation).
    pub budget: Option<Duration>,
    /// Adam's learning rate on the length logits.
    pub lr: f64,
    /// Mask sharpness for a video scaled to unit length (the paper's `s`).
    pub sharpness: f64,
    /// Weight of the L1 length term.
    pub beta: f64,
    /// Lengths and boundaries in chunks of this many frames (1: frames), the grid of the
    /// subsampled exact decoder: chunk scores are summed once, the energy and the rounding
    /// work on chunks, boundaries come back on chunk edges. Reduced so that every segment
    /// still gets a chunk.
    pub subsample: usize,
    /// Units (frames or chunks) are pooled into this many bins for the soft energy (0: one
    /// bin per unit).
    pub bins: usize,
    /// Starting lengths.
    pub init: Init,
    /// Segmentation: how many transcripts of the grammar to decode.
    pub top_k: usize,
}

impl Default for FifaOptions {
    fn default() -> Self {
        Self {
            iters: 50,
            budget: None,
            lr: 0.2,
            sharpness: 160.0,
            beta: 0.5,
            subsample: 1,
            bins: 256,
            init: Init::Means,
            top_k: 8,
        }
    }
}

/// A FIFA result.
#[derive(Clone, Debug)]
pub struct FifaDecoded {
    /// The best segmentation seen.
    pub segments: Vec<Segment>,
    /// Its hard energy (lower is better).
    pub energy: f64,
    /// Gradient steps taken (summed over transcripts in segmentation).
    pub iters: usize,
}

/// Target lengths of a transcript: class means scaled so that they fill `total` (frames or
/// units: only the proportions matter).
pub fn targets(transcript: &[usize], lengths: &LengthModel, total: usize) -> Vec<f64> {
    let raw: Vec<f64> = transcript.iter().map(|&c| lengths.mean(c)).collect();
    let sum: f64 = raw.iter().sum();
    raw.iter().map(|m| m * total as f64 / sum).collect()
}

fn check(scores: &FrameScores, lengths: &LengthModel, opt: &FifaOptions) -> Result<()> {
    if lengths.classes() != scores.classes() {
        return Err(SegError::Mismatch(format!(
            "length model has {} classes, scores {}",
            lengths.classes(),
            scores.classes()
        )));
    }
    let positive = |v: f64| v.is_finite() && v > 0.0;
    let ok = positive(opt.lr) && positive(opt.sharpness) && opt.beta.is_finite();
    if !ok || opt.beta < 0.0 || opt.top_k == 0 {
        return Err(SegError::Invalid(format!(
            "FIFA needs lr > 0, sharpness > 0, beta >= 0, top_k > 0 (got {opt:?})"
        )));
    }
    if let Init::Segmentation(segs) = &opt.init {
        let covers = segs.first().is_some_and(|s| s.start == 0)
            && segs.last().is_some_and(|s| s.end == scores.frames())
            && segs.windows(2).all(|w| w[0].end == w[1].start)
            && segs.iter().all(|s| s.end > s.start);
        if !covers {
            return Err(SegError::Mismatch(format!(
                "the initial segmentation must cover the {} frames with non-empty segments",
                scores.frames()
            )));
        }
        let labels: Vec<usize> = segs.iter().map(|s| s.label).collect();
        scores.check_labels(&labels)?;
    }
    Ok(())
}

/// The grid FIFA works on: chunks of `subsample` frames, reduced so that `segs` segments fit.
fn cums(scores: &FrameScores, subsample: usize, segs: usize, classes: &[usize]) -> GridCums {
    let t = scores.frames();
    let step = subsample.clamp(1, (t / segs.max(1)).max(1));
    scores.grid_cums(&grid(t, step), classes)
}

/// Aligns `scores` to `transcript` with FIFA.
pub fn align(
    scores: &FrameScores,
    transcript: &[usize],
    lengths: &LengthModel,
    opt: &FifaOptions,
) -> Result<FifaDecoded> {
    check(scores, lengths, opt)?;
    check_transcript(transcript, scores.frames())?;
    scores.check_labels(transcript)?;
    let start = match &opt.init {
        Init::Segmentation(segs) => {
            let labels: Vec<usize> = segs.iter().map(|s| s.label).collect();
            if labels != transcript {
                return Err(SegError::Mismatch(format!(
                    "the initial segmentation's labels {labels:?} are not the transcript {transcript:?}"
                )));
            }
            Some(segs.iter().map(|s| s.len() as f64).collect::<Vec<f64>>())
        }
        _ => None,
    };
    let deadline = opt.budget.map(|b| Instant::now() + b);
    let cums = cums(scores, opt.subsample, transcript.len(), transcript);
    run(&cums, transcript, lengths, opt, start.as_deref(), deadline)
}

/// Segments `scores` with FIFA: ranks the grammar's transcripts by the energy of their
/// initial segmentation, decodes the `top_k` best, and keeps the lowest energy. The chunk
/// scores of every grammar class are summed once and shared by the ranking and all decodes.
pub fn segment(
    scores: &FrameScores,
    grammar: &Grammar,
    lengths: &LengthModel,
    opt: &FifaOptions,
) -> Result<FifaDecoded> {
    check(scores, lengths, opt)?;
    for tr in grammar.transcripts() {
        scores.check_labels(tr)?;
    }
    let deadline = opt.budget.map(|b| Instant::now() + b);
    let classes: Vec<usize> = grammar.transcripts().iter().flatten().copied().collect();
    let cums = cums(scores, opt.subsample, grammar.min_len(), &classes);
    let mut ranked = topk::rank_on(&cums, grammar.transcripts(), lengths, opt.beta);
    // A given segmentation: its transcript first, from its lengths.
    let mut first: Option<Vec<f64>> = None;
    if let Init::Segmentation(segs) = &opt.init {
        let labels: Vec<usize> = segs.iter().map(|s| s.label).collect();
        let Some(i) = grammar.transcripts().iter().position(|t| *t == labels) else {
            return Err(SegError::Mismatch(format!(
                "the initial segmentation's transcript {labels:?} is not in the grammar"
            )));
        };
        ranked.retain(|&r| r != i);
        ranked.insert(0, i);
        first = Some(segs.iter().map(|s| s.len() as f64).collect());
    }
    let k = ranked.len().min(opt.top_k);
    let mut best: Option<FifaDecoded> = None;
    let mut iters = 0;
    for (idx, &tr) in ranked.iter().take(k).enumerate() {
        // Share what is left of the time budget among the transcripts still to decode.
        let share = deadline.map(|d| {
            let left = d.saturating_duration_since(Instant::now());
            Instant::now() + left / (k - idx) as u32
        });
        let start = if idx == 0 { first.as_deref() } else { None };
        let r = run(
            &cums,
            &grammar.transcripts()[tr],
            lengths,
            opt,
            start,
            share,
        )?;
        iters += r.iters;
        if best.as_ref().is_none_or(|b| r.energy < b.energy) {
            best = Some(r);
        }
    }
    let mut best = best.ok_or_else(|| SegError::TooShort {
        frames: scores.frames(),
        segments: grammar.min_len(),
    })?;
    best.iters = iters;
    Ok(best)
}

/// The optimisation loop for one transcript on `cums`' grid; `given` overrides the
/// options' initialisation with starting lengths (any unit: only proportions matter).
fn run(
    cums: &GridCums,
    transcript: &[usize],
    lengths: &LengthModel,
    opt: &FifaOptions,
    given: Option<&[f64]>,
    deadline: Option<Instant>,
) -> Result<FifaDecoded> {
    let m = cums.units();
    let n = transcript.len();
    let target = targets(transcript, lengths, m);
    let bins = if opt.bins == 0 { m } else { opt.bins };
    let p = Problem::on_grid(cums, transcript, target, opt.sharpness, opt.beta, bins);
    let start: Vec<f64> = match (given, &opt.init) {
        (Some(l), _) => l.to_vec(),
        (None, Init::Uniform) => vec![1.0; n],
        (None, Init::Means | Init::Segmentation(_)) => p.target().to_vec(),
        (None, Init::Lengths(l)) => l.clone(),
    };
    if start.len() != n || !start.iter().all(|v| v.is_finite() && *v > 0.0) {
        return Err(SegError::Mismatch(format!(
            "{n} positive initial lengths needed, got {start:?}"
        )));
    }
    let mut z: Vec<f64> = start.iter().map(|v| v.ln()).collect();
    let mut grad = vec![0.0; n];
    let mut adam = Adam::new(n, opt.lr);
    let mut work = Work::default();
    let (mut len, mut cand) = (Vec::new(), Vec::new());
    let mut best_len = Vec::new();
    p.round(&p.lengths(&z), &mut best_len);
    let mut best_e = p.hard_energy(&best_len);
    let mut done = 0;
    while done < opt.iters {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        p.grad_with(&z, &mut grad, &mut work);
        adam.step(&mut z, &grad);
        done += 1;
        p.lengths_into(&z, &mut len);
        p.round(&len, &mut cand);
        let e = p.hard_energy(&cand);
        if e < best_e {
            best_e = e;
            std::mem::swap(&mut best_len, &mut cand);
        }
    }
    Ok(FifaDecoded {
        segments: from_lengths(transcript, &p.frame_lengths(&best_len))?,
        energy: best_e,
        iters: done,
    })
}
