//! The transcript model for FIFA's segmentation: grammar transcripts ranked by the energy of
//! their initial (mean-length) segmentation, which costs O(N) per transcript from the grid's
//! cumulative sums.
use super::energy::round_pos;
use super::{cums, FifaOptions};
use crate::error::Result;
use crate::length::LengthModel;
use crate::scores::{FrameScores, GridCums};

/// Indices of `transcripts`, best (lowest initial energy) first, on the grid of
/// `opt.subsample`; transcripts with more segments than grid units are left out.
pub fn rank_transcripts(
    scores: &FrameScores,
    transcripts: &[Vec<usize>],
    lengths: &LengthModel,
    opt: &FifaOptions,
) -> Result<Vec<usize>> {
    for tr in transcripts {
        scores.check_labels(tr)?;
    }
    let shortest = transcripts.iter().map(Vec::len).filter(|&n| n > 0).min();
    let classes: Vec<usize> = transcripts.iter().flatten().copied().collect();
    let g = cums(scores, opt.subsample, shortest.unwrap_or(1), &classes);
    Ok(rank_on(&g, transcripts, lengths, opt.beta))
}

/// [`rank_transcripts`] on a grid table holding every class of `transcripts`.
pub(super) fn rank_on(
    cums: &GridCums,
    transcripts: &[Vec<usize>],
    lengths: &LengthModel,
    beta: f64,
) -> Vec<usize> {
    let m = cums.units();
    // The length term per unit of length, as in the energy.
    let beta_unit = beta * cums.frames() as f64 / m as f64;
    let mut ranked: Vec<(f64, usize)> = Vec::new();
    for (i, tr) in transcripts.iter().enumerate() {
        if tr.is_empty() || tr.len() > m {
            continue;
        }
        // The targets of [`targets`], without allocating them.
        let sum: f64 = tr.iter().map(|&c| lengths.mean(c)).sum();
        let (mut e, mut acc, mut prev) = (0.0, 0.0, 0usize);
        for (k, &c) in tr.iter().enumerate() {
            let lam = lengths.mean(c) * m as f64 / sum;
            acc += lam;
            let b = if k + 1 == tr.len() {
                m
            } else {
                round_pos(acc).clamp(prev + 1, m - (tr.len() - k - 1))
            };
            let row = cums.row(c);
            // Costs are negated scores; the length term is |round - target|.
            e += -(row[b] - row[prev]) + beta_unit * ((b - prev) as f64 - lam).abs();
            prev = b;
        }
        ranked.push((e, i));
    }
    ranked.sort_by(|a, b| a.0.total_cmp(&b.0));
    ranked.into_iter().map(|r| r.1).collect()
}
