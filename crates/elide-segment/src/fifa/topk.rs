//! The transcript model for FIFA's segmentation: grammar transcripts ranked by the energy of
//! their initial (mean-length) segmentation, which costs O(N) per transcript after one
//! cumulative sum per class.
use super::{targets, FifaOptions};
use crate::error::Result;
use crate::length::LengthModel;
use crate::scores::FrameScores;
use std::collections::HashMap;

/// Indices of `transcripts`, best (lowest initial energy) first; transcripts longer than the
/// video are left out.
pub fn rank_transcripts(
    scores: &FrameScores,
    transcripts: &[Vec<usize>],
    lengths: &LengthModel,
    opt: &FifaOptions,
) -> Result<Vec<usize>> {
    let t = scores.frames();
    let all: Vec<usize> = (0..=t).collect();
    let mut cum: HashMap<usize, Vec<f64>> = HashMap::new();
    let mut ranked: Vec<(f64, usize)> = Vec::new();
    for (i, tr) in transcripts.iter().enumerate() {
        if tr.is_empty() || tr.len() > t {
            continue;
        }
        let target = targets(tr, lengths, t);
        let (mut e, mut acc, mut prev) = (0.0, 0.0, 0usize);
        for (k, (&c, lam)) in tr.iter().zip(&target).enumerate() {
            acc += lam;
            let b = if k + 1 == tr.len() {
                t
            } else {
                (acc.round() as usize).clamp(prev + 1, t - (tr.len() - k - 1))
            };
            let row = cum.entry(c).or_insert_with(|| scores.cumsum_at(c, &all));
            // Costs are negated scores; the length term is |round - target|.
            e += -(row[b] - row[prev]) + opt.beta * ((b - prev) as f64 - lam).abs();
            prev = b;
        }
        ranked.push((e, i));
    }
    ranked.sort_by(|a, b| a.0.total_cmp(&b.0));
    Ok(ranked.into_iter().map(|r| r.1).collect())
}
