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
use crate::scores::FrameScores;
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
}

/// FIFA's options. The defaults (Adam 0.2, sharpness 160, beta 0.5, 256 bins, 50 steps,
/// top 8) were chosen on a synthetic dataset of another seed (7) than the benchmark's (2021).
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
    /// Frames are pooled into this many bins for the soft energy (0: one bin per frame).
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

/// Target lengths of a transcript: class means scaled so that they fill the video.
pub fn targets(transcript: &[usize], lengths: &LengthModel, frames: usize) -> Vec<f64> {
    let raw: Vec<f64> = transcript.iter().map(|&c| lengths.mean(c)).collect();
    let sum: f64 = raw.iter().sum();
    raw.iter().map(|m| m * frames as f64 / sum).collect()
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
    Ok(())
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
    let deadline = opt.budget.map(|b| Instant::now() + b);
    run(scores, transcript, lengths, opt, opt.iters, deadline)
}

/// Segments `scores` with FIFA: ranks the grammar's transcripts by the energy of their
/// initial segmentation, decodes the `top_k` best, and keeps the lowest energy.
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
    let ranked = rank_transcripts(scores, grammar.transcripts(), lengths, opt)?;
    let k = ranked.len().min(opt.top_k);
    let mut best: Option<FifaDecoded> = None;
    let mut iters = 0;
    for (idx, &tr) in ranked.iter().take(k).enumerate() {
        // Share what is left of the time budget among the transcripts still to decode.
        let share = deadline.map(|d| {
            let left = d.saturating_duration_since(Instant::now());
            Instant::now() + left / (k - idx) as u32
        });
        let r = run(
            scores,
            &grammar.transcripts()[tr],
            lengths,
            opt,
            opt.iters,
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

/// The optimisation loop for one transcript.
fn run(
    scores: &FrameScores,
    transcript: &[usize],
    lengths: &LengthModel,
    opt: &FifaOptions,
    iters: usize,
    deadline: Option<Instant>,
) -> Result<FifaDecoded> {
    let t = scores.frames();
    let n = transcript.len();
    let target = targets(transcript, lengths, t);
    let bins = if opt.bins == 0 { t } else { opt.bins };
    let p = Problem::new(scores, transcript, target, opt.sharpness, opt.beta, bins);
    let start: Vec<f64> = match &opt.init {
        Init::Uniform => vec![1.0; n],
        Init::Means => p.target().to_vec(),
        Init::Lengths(l) if l.len() == n && l.iter().all(|v| v.is_finite() && *v > 0.0) => {
            l.clone()
        }
        Init::Lengths(l) => {
            return Err(SegError::Mismatch(format!(
                "{} positive initial lengths needed, got {l:?}",
                n
            )))
        }
    };
    let mut z: Vec<f64> = start.iter().map(|v| v.ln()).collect();
    let mut grad = vec![0.0; n];
    let mut adam = Adam::new(n, opt.lr);
    let mut work = Work::default();
    let (mut len, mut cand) = (Vec::new(), Vec::new());
    let mut best_len = Vec::new();
    p.round(&p.lengths(&z), &mut best_len);
    let mut best_e = p.hard_energy(&best_len);
    let mut done = 0;
    while done < iters {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        p.energy_grad_with(&z, &mut grad, &mut work);
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
        segments: from_lengths(transcript, &best_len)?,
        energy: best_e,
        iters: done,
    })
}
