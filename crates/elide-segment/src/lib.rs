//! Action segmentation decoding: from frame-wise class probabilities to segments.
//!
//! - [`viterbi`]: exact inference, the baseline of NeuralNetwork-Viterbi, CDFL and MuCon —
//!   alignment to a given transcript and segmentation over a grammar of transcripts, with a
//!   Poisson length model.
//! - [`fifa`]: FIFA (Souri et al., GCPR 2021), gradient descent on a differentiable
//!   approximation of the same problem; anytime, with iteration or time budgets.
//! - [`decode`]: one call over both decoders and both tasks; [`evaluate`] a whole split.
//! - [`metrics`]: MoF, IoU, IoD, F1@{10,25,50}, Edit.
//! - [`dataset`] (MS-TCN / Breakfast / 50Salads layout) and [`synth`] (Breakfast-calibrated
//!   synthetic data), [`npy`] for the arrays.
//!
//! ```
//! use elide_segment::{fifa, viterbi, FrameScores, LengthModel, ProbKind};
//! // Three frames, two classes: class 0 then class 1.
//! let p = [0.9, 0.1, 0.8, 0.2, 0.3, 0.7];
//! let scores = FrameScores::new(3, 2, &p, ProbKind::Probs)?;
//! let lengths = LengthModel::uniform(2, 1.5)?;
//! let exact = viterbi::align(&scores, &[0, 1], &lengths, &Default::default())?;
//! assert_eq!(exact.segments[1].start, 2);
//! let fast = fifa::align(&scores, &[0, 1], &lengths, &Default::default())?;
//! assert_eq!(fast.segments.len(), 2);
//! # Ok::<(), elide_segment::SegError>(())
//! ```
#![deny(missing_docs)]

pub mod dataset;
pub mod decode;
pub mod error;
pub mod evaluate;
pub mod fifa;
pub mod grammar;
pub mod labels;
pub mod length;
pub mod metrics;
pub mod npy;
pub mod rng;
pub mod scores;
pub mod segments;
pub mod synth;
pub mod viterbi;

pub use decode::{decode, Method, Outcome, Task};
pub use error::{Result, SegError};
pub use grammar::Grammar;
pub use labels::Mapping;
pub use length::LengthModel;
pub use scores::{FrameScores, ProbKind};
pub use segments::Segment;
