//! One entry point over both decoders and both tasks, for the CLI and benchmarks.
use crate::error::Result;
use crate::fifa::{self, FifaOptions};
use crate::grammar::Grammar;
use crate::length::LengthModel;
use crate::scores::FrameScores;
use crate::segments::Segment;
use crate::viterbi::{self, ExactOptions};

/// What to decode.
#[derive(Clone, Copy, Debug)]
pub enum Task<'a> {
    /// Align to this transcript.
    Align(&'a [usize]),
    /// Segment with one of the grammar's transcripts.
    Segment(&'a Grammar),
}

/// How to decode.
#[derive(Clone, Debug)]
pub enum Method {
    /// Exact Viterbi.
    Exact(ExactOptions),
    /// FIFA.
    Fifa(FifaOptions),
}

impl Method {
    /// The requested boundary step in frames (`subsample`; 0 acts as 1).
    pub fn subsample(&self) -> usize {
        match self {
            Method::Exact(o) => o.subsample,
            Method::Fifa(o) => o.subsample,
        }
        .max(1)
    }
}

/// A decoded video, whichever the method.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The segments.
    pub segments: Vec<Segment>,
    /// Exact: the model score (higher is better). FIFA: the hard energy (lower is better).
    pub objective: f64,
    /// FIFA's gradient steps (0 for exact).
    pub iters: usize,
}

/// Decodes one video.
pub fn decode(
    scores: &FrameScores,
    task: Task<'_>,
    lengths: &LengthModel,
    method: &Method,
) -> Result<Outcome> {
    Ok(match (method, task) {
        (Method::Exact(o), Task::Align(tr)) => exact(viterbi::align(scores, tr, lengths, o)?),
        (Method::Exact(o), Task::Segment(g)) => exact(viterbi::segment(scores, g, lengths, o)?),
        (Method::Fifa(o), Task::Align(tr)) => approx(fifa::align(scores, tr, lengths, o)?),
        (Method::Fifa(o), Task::Segment(g)) => approx(fifa::segment(scores, g, lengths, o)?),
    })
}

fn exact(d: viterbi::Decoded) -> Outcome {
    Outcome {
        segments: d.segments,
        objective: d.score,
        iters: 0,
    }
}

fn approx(d: fifa::FifaDecoded) -> Outcome {
    Outcome {
        segments: d.segments,
        objective: d.energy,
        iters: d.iters,
    }
}
