//! The crate's error type: every bad input is one of these, never a panic.
use std::path::PathBuf;

/// Errors of decoding, loading and metrics.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SegError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A `.npy` file that this reader does not understand or that is corrupt.
    #[error("bad .npy{}: {msg}", .path.as_ref().map(|p| format!(" {}", p.display())).unwrap_or_default())]
    Npy {
        /// The file, when known.
        path: Option<PathBuf>,
        /// What is wrong.
        msg: String,
    },
    /// Frame-wise scores that are not (log-)probabilities: NaN, negative, rows not summing to 1.
    #[error("not a distribution: {0}")]
    NotDistribution(String),
    /// A label name or id that the mapping does not know.
    #[error("unknown label {0:?}")]
    UnknownLabel(String),
    /// A transcript with no segment.
    #[error("empty transcript")]
    EmptyTranscript,
    /// Fewer frames than segments: no segmentation gives each segment a frame.
    #[error("{frames} frames cannot hold a transcript of {segments} segments")]
    TooShort {
        /// Frames in the video.
        frames: usize,
        /// Segments in the transcript.
        segments: usize,
    },
    /// Two inputs that must agree do not (shapes, lengths, class counts).
    #[error("mismatch: {0}")]
    Mismatch(String),
    /// A malformed text file (mapping, ground truth, grammar, lengths, bundle).
    #[error("{}{}: {msg}", .path.display(), if *.line > 0 { format!(":{line}") } else { String::new() })]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line number (0: the whole file).
        line: usize,
        /// What is wrong.
        msg: String,
    },
    /// An option out of its range.
    #[error("invalid option: {0}")]
    Invalid(String),
}

/// The crate's result type.
pub type Result<T> = std::result::Result<T, SegError>;

impl SegError {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}
