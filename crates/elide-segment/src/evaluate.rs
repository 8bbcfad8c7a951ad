//! Decoding a whole split of a dataset and scoring it: the training split gives the length
//! model, the grammar and the class prior; test videos are decoded in parallel (rayon).
use crate::dataset::{class_prior, Dataset};
use crate::decode::{decode, Method, Task};
use crate::error::{Result, SegError};
use crate::grammar::Grammar;
use crate::length::LengthModel;
use crate::metrics::{Accumulator, Summary};
use crate::scores::grid_step;
use crate::segments::{from_frames, to_frames, Segment};
use rayon::prelude::*;
use std::path::PathBuf;
use std::time::Instant;

/// Which task to evaluate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskKind {
    /// Align each video to its ground-truth transcript.
    Alignment,
    /// Segment each video with the training transcripts as grammar.
    Segmentation,
}

/// What to evaluate.
#[derive(Clone, Debug)]
pub struct SplitSpec {
    /// Training bundle (lengths, grammar, prior), e.g. `train.split1`.
    pub train: String,
    /// Test bundle, e.g. `test.split1`.
    pub test: String,
    /// Folder of `<video>.npy` probabilities (`None`: `<root>/probs`).
    pub probs: Option<PathBuf>,
    /// Divide posteriors by the training class prior.
    pub prior: bool,
    /// Classes excluded from IoU, IoD, F1 and Edit.
    pub background: Vec<usize>,
}

/// One decoded video.
#[derive(Clone, Debug)]
pub struct VideoResult {
    /// Video name.
    pub video: String,
    /// Frames (the ground truth and the probabilities must have as many).
    pub frames: usize,
    /// The boundary step the decoder used: the method's `subsample`, or less where the video
    /// is too short for its transcript (shortest grammar transcript) on that grid.
    pub step: usize,
    /// Decoded segments.
    pub segments: Vec<Segment>,
    /// Decoding time in milliseconds.
    pub ms: f64,
}

/// Decodes every test video and returns per-video results and the split's metrics.
pub fn evaluate(
    ds: &Dataset,
    spec: &SplitSpec,
    task: TaskKind,
    method: &Method,
) -> Result<(Vec<VideoResult>, Summary)> {
    let c = ds.mapping().len();
    let train = ds.split_ground_truth(&spec.train)?;
    let lengths = LengthModel::from_ground_truth(train.iter().map(|v| v.1.as_slice()), c)?;
    let prior = class_prior(train.iter().map(|v| v.1.as_slice()), c);
    let grammar = Grammar::new(
        train
            .iter()
            .map(|v| from_frames(&v.1).iter().map(|s| s.label).collect()),
    )?;
    let test = ds.bundle(&spec.test)?;
    let results: Vec<(VideoResult, Vec<usize>)> = test
        .par_iter()
        .map(|video| -> Result<_> {
            let gt = ds.ground_truth(video)?;
            let mut scores = ds.scores(spec.probs.as_deref(), video)?;
            let t = gt.len();
            if t != scores.frames() {
                return Err(SegError::Mismatch(format!(
                    "video {video}: the ground truth has {t} frames, the probabilities {}",
                    scores.frames()
                )));
            }
            if spec.prior {
                scores = scores.with_prior(&prior)?;
            }
            let transcript: Vec<usize> = from_frames(&gt).iter().map(|s| s.label).collect();
            let (task, segments) = match task {
                TaskKind::Alignment => (Task::Align(&transcript), transcript.len()),
                TaskKind::Segmentation => (Task::Segment(&grammar), grammar.min_len()),
            };
            let start = Instant::now();
            let out = decode(&scores, task, &lengths, method).map_err(|e| match e {
                SegError::TooShort { .. } | SegError::Invalid(_) => {
                    SegError::Invalid(format!("{video}: {e}"))
                }
                e => e,
            })?;
            let ms = start.elapsed().as_secs_f64() * 1e3;
            Ok((
                VideoResult {
                    video: video.clone(),
                    frames: t,
                    step: grid_step(t, method.subsample(), segments),
                    segments: out.segments,
                    ms,
                },
                gt,
            ))
        })
        .collect::<Result<_>>()?;
    let mut acc = Accumulator::default();
    for (r, gt) in &results {
        acc.add(&to_frames(&r.segments), gt, &spec.background)?;
    }
    Ok((results.into_iter().map(|r| r.0).collect(), acc.summary()))
}
