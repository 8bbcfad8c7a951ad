//! FIFA (Souri et al., GCPR 2021): action segmentation by gradient descent on a differentiable
//! approximation of the decoding energy. Anytime: every iterate is a valid segmentation, and
//! the best one seen (by the energy of its hard segmentation) is returned when the iteration
//! or time budget runs out.
mod adam;
mod energy;
mod topk;

pub use adam::Adam;
pub use energy::{Problem, UnitCosts, Work};
pub use topk::rank_transcripts;

use crate::error::{Result, SegError};
use crate::grammar::Grammar;
use crate::length::LengthModel;
use crate::scores::{grid, grid_step, FrameScores, GridCums};
use crate::segments::{check_transcript, from_lengths, Segment};
use std::sync::Arc;
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
    /// Segmentation: race the `top_k` transcripts by successive halving instead of decoding
    /// each for `iters` steps: all run a share of the steps, the better half (by the best hard
    /// energy so far) goes on, and so on until one runs to `iters`. With 8 transcripts and
    /// 4 rounds this takes `15/32` of the steps (`iters/4` each round).
    pub race: bool,
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
            race: true,
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
    check_options(opt)?;
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

/// The numeric options in range; the error names the field and its value.
fn check_options(opt: &FifaOptions) -> Result<()> {
    let bad = |field: &str, want: &str, got: String| {
        Err(SegError::Invalid(format!(
            "FIFA option {field} must be {want}, got {got}"
        )))
    };
    let positive = |v: f64| v.is_finite() && v > 0.0;
    if !positive(opt.lr) {
        return bad("lr", "positive and finite", opt.lr.to_string());
    }
    if !positive(opt.sharpness) {
        return bad(
            "sharpness",
            "positive and finite",
            opt.sharpness.to_string(),
        );
    }
    if !(opt.beta.is_finite() && opt.beta >= 0.0) {
        return bad("beta", "non-negative and finite", opt.beta.to_string());
    }
    if opt.top_k == 0 {
        return bad("top_k", "at least 1", "0".into());
    }
    Ok(())
}

/// The grid FIFA works on: chunks of `subsample` frames, reduced so that `segs` segments fit.
fn cums(scores: &FrameScores, subsample: usize, segs: usize, classes: &[usize]) -> GridCums {
    let t = scores.frames();
    scores.grid_cums(&grid(t, grid_step(t, subsample, segs)), classes)
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
    let bins = if opt.bins == 0 {
        cums.units()
    } else {
        opt.bins
    };
    let chosen: Vec<usize> = ranked[..k]
        .iter()
        .flat_map(|&r| grammar.transcripts()[r].iter().copied())
        .collect();
    // The unit costs of the chosen transcripts' classes, prepared once for all of them.
    let costs = Arc::new(UnitCosts::new(&cums, &chosen, bins));
    let mut runners = ranked[..k]
        .iter()
        .enumerate()
        .map(|(idx, &tr)| {
            let given = if idx == 0 { first.as_deref() } else { None };
            Runner::new(&costs, &grammar.transcripts()[tr], lengths, opt, given)
        })
        .collect::<Result<Vec<_>>>()?;
    if opt.race && k > 1 {
        race(&mut runners, opt.iters, deadline);
    } else {
        for (idx, r) in runners.iter_mut().enumerate() {
            // Share what is left of the time budget among the transcripts still to decode.
            let share = deadline.map(|d| {
                let left = d.saturating_duration_since(Instant::now());
                Instant::now() + left / (k - idx) as u32
            });
            r.run_to(opt.iters, share);
        }
    }
    let iters = runners.iter().map(|r| r.done).sum();
    let best = runners
        .into_iter()
        .reduce(|a, b| if b.best_e < a.best_e { b } else { a })
        .map(Runner::finish)
        .transpose()?;
    let mut best = best.ok_or_else(|| SegError::TooShort {
        frames: scores.frames(),
        segments: grammar.min_len(),
    })?;
    best.iters = iters;
    Ok(best)
}

/// Successive halving over `runners` (best ranked first): `R = ceil(log2 K) + 1` rounds; in
/// round `r` every runner still in the race steps on to `ceil(iters (r + 1) / R)` steps, then
/// the half with the higher best energies (ties: the earlier ranked stays) leaves. The winner
/// of the last round runs all `iters` steps; every runner keeps its best iterate, so the
/// result is the lowest energy seen by any of them. With a deadline, each round gets an equal
/// share of the time left and each runner an equal share of its round's.
fn race(runners: &mut [Runner], iters: usize, deadline: Option<Instant>) {
    let k = runners.len();
    let rounds = k.next_power_of_two().trailing_zeros() as usize + 1;
    let share = |end: Instant, parts: usize| {
        let now = Instant::now();
        now + end.saturating_duration_since(now) / parts.max(1) as u32
    };
    let mut alive: Vec<usize> = (0..k).collect();
    for r in 0..rounds {
        // Without overflow when only a time budget bounds the steps (iters = usize::MAX).
        let until = (iters as u128 * (r as u128 + 1)).div_ceil(rounds as u128);
        let until = until.min(iters as u128) as usize;
        let round_end = deadline.map(|d| share(d, rounds - r));
        for (idx, &i) in alive.iter().enumerate() {
            let stop = round_end.map(|e| share(e, alive.len() - idx));
            runners[i].run_to(until, stop);
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return;
        }
        alive.sort_by(|&a, &b| runners[a].best_e.total_cmp(&runners[b].best_e));
        alive.truncate(alive.len().div_ceil(2));
        alive.sort_unstable();
    }
}

/// The optimisation of one transcript on a grid: FIFA's state between steps, so that
/// segmentation can interleave (race) several transcripts.
struct Runner<'a> {
    p: Problem,
    transcript: &'a [usize],
    z: Vec<f64>,
    grad: Vec<f64>,
    adam: Adam,
    work: Work,
    /// Lengths at `z`.
    len: Vec<f64>,
    cand: Vec<usize>,
    best_len: Vec<usize>,
    best_e: f64,
    done: usize,
}

impl<'a> Runner<'a> {
    /// Starts from the options' initialisation, or from `given` lengths (any unit: only
    /// proportions matter); `costs` must hold the transcript's classes.
    fn new(
        costs: &Arc<UnitCosts>,
        transcript: &'a [usize],
        lengths: &LengthModel,
        opt: &FifaOptions,
        given: Option<&[f64]>,
    ) -> Result<Self> {
        let m = costs.units();
        let n = transcript.len();
        let target = targets(transcript, lengths, m);
        let p = Problem::with_costs(costs.clone(), transcript, target, opt.sharpness, opt.beta);
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
        let z: Vec<f64> = start.iter().map(|v| v.ln()).collect();
        let mut len = Vec::with_capacity(n);
        p.lengths_into(&z, &mut len);
        let mut best_len = Vec::with_capacity(n);
        p.round(&len, &mut best_len);
        let best_e = p.hard_energy(&best_len);
        Ok(Self {
            transcript,
            z,
            grad: vec![0.0; n],
            adam: Adam::new(n, opt.lr),
            work: Work::default(),
            len,
            cand: Vec::with_capacity(n),
            best_len,
            best_e,
            done: 0,
            p,
        })
    }

    /// One Adam step on the lengths, keeping the new iterate if its hard energy is the best.
    fn step(&mut self) {
        self.p.grad_at(&self.len, &mut self.grad, &mut self.work);
        self.adam.step(&mut self.z, &self.grad);
        self.done += 1;
        self.p.lengths_into(&self.z, &mut self.len);
        self.p.round(&self.len, &mut self.cand);
        let e = self.p.hard_energy(&self.cand);
        if e < self.best_e {
            self.best_e = e;
            std::mem::swap(&mut self.best_len, &mut self.cand);
        }
    }

    /// Steps until `iters` steps are done or `deadline` passes.
    fn run_to(&mut self, iters: usize, deadline: Option<Instant>) {
        while self.done < iters {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return;
            }
            self.step();
        }
    }

    fn finish(self) -> Result<FifaDecoded> {
        Ok(FifaDecoded {
            segments: from_lengths(self.transcript, &self.p.frame_lengths(&self.best_len))?,
            energy: self.best_e,
            iters: self.done,
        })
    }
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
    let bins = if opt.bins == 0 {
        cums.units()
    } else {
        opt.bins
    };
    let costs = Arc::new(UnitCosts::new(cums, transcript, bins));
    let mut r = Runner::new(&costs, transcript, lengths, opt, given)?;
    r.run_to(opt.iters, deadline);
    r.finish()
}
