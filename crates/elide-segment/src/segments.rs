//! Segments and their conversions to and from frame-wise labels.
use crate::error::{Result, SegError};

/// One action segment: class `label` over frames `start..end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Class id.
    pub label: usize,
    /// First frame.
    pub start: usize,
    /// One past the last frame.
    pub end: usize,
}

impl Segment {
    /// Frames in the segment.
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    /// True for a segment without frames (never produced by the decoders).
    pub fn is_empty(&self) -> bool {
        self.end == self.start
    }
}

/// Runs of equal labels as segments.
pub fn from_frames(labels: &[usize]) -> Vec<Segment> {
    let mut out: Vec<Segment> = Vec::new();
    for (t, &l) in labels.iter().enumerate() {
        match out.last_mut() {
            Some(s) if s.label == l => s.end = t + 1,
            _ => out.push(Segment {
                label: l,
                start: t,
                end: t + 1,
            }),
        }
    }
    out
}

/// Frame-wise labels of contiguous segments.
pub fn to_frames(segments: &[Segment]) -> Vec<usize> {
    let mut out = Vec::with_capacity(segments.last().map_or(0, |s| s.end));
    for s in segments {
        out.resize(s.end, s.label);
    }
    out
}

/// Segments of a transcript with integer lengths (each at least one frame).
pub fn from_lengths(transcript: &[usize], lengths: &[usize]) -> Result<Vec<Segment>> {
    if transcript.len() != lengths.len() {
        return Err(SegError::Mismatch(format!(
            "{} lengths for {} segments",
            lengths.len(),
            transcript.len()
        )));
    }
    let mut start = 0;
    Ok(transcript
        .iter()
        .zip(lengths)
        .map(|(&label, &l)| {
            let s = Segment {
                label,
                start,
                end: start + l,
            };
            start += l;
            s
        })
        .collect())
}

/// Checks the preconditions every decoder shares: a non-empty transcript that fits in `frames`.
pub fn check_transcript(transcript: &[usize], frames: usize) -> Result<()> {
    if transcript.is_empty() {
        return Err(SegError::EmptyTranscript);
    }
    if frames < transcript.len() {
        return Err(SegError::TooShort {
            frames,
            segments: transcript.len(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let f = [3, 3, 1, 1, 1, 3];
        let s = from_frames(&f);
        assert_eq!(s.len(), 3);
        assert_eq!((s[1].label, s[1].start, s[1].end), (1, 2, 5));
        assert_eq!(to_frames(&s), f);
        assert_eq!(from_lengths(&[3, 1, 3], &[2, 3, 1]).unwrap(), s);
        assert!(from_frames(&[]).is_empty());
    }
}
