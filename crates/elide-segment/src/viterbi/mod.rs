//! Exact inference: Viterbi over (transcript position, segment end) with Poisson lengths, as
//! in NeuralNetwork-Viterbi, CDFL and MuCon. A segment's frame score is a difference of two
//! cumulative sums (O(1)); the inner maximisation over the segment start is a branch-free
//! max-plus loop over contiguous slices that the compiler vectorises; backpointers are not
//! stored but recovered by recomputing the winning cell, keeping the hot loop store-free.
mod align;
mod grammar;
mod kernel;

pub use align::align;
pub use grammar::segment;

use crate::segments::Segment;

/// Options of the exact decoders.
#[derive(Clone, Debug)]
pub struct ExactOptions {
    /// Boundaries only every `subsample` frames (1 = every frame, exact); the reference codes
    /// decode with 30. Reduced automatically so that every segment still gets a grid step.
    pub subsample: usize,
    /// Longest segment allowed, in frames (`None`: the whole video, exact).
    pub max_len: Option<usize>,
    /// Weight of the log-Poisson length score against the frame scores.
    pub length_weight: f64,
}

impl Default for ExactOptions {
    fn default() -> Self {
        Self {
            subsample: 1,
            max_len: None,
            length_weight: 1.0,
        }
    }
}

/// A decoded video: its segments and the model score they reach.
#[derive(Clone, Debug)]
pub struct Decoded {
    /// Segments covering all frames, in order.
    pub segments: Vec<Segment>,
    /// Sum of frame scores plus weighted log-Poisson length scores (higher is better).
    pub score: f64,
}
