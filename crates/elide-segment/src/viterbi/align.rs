//! Exact alignment of a given transcript.
use super::kernel::{fill_a, ClassTables, Grid, GridFactorials};
use super::{Decoded, ExactOptions};
use crate::error::{Result, SegError};
use crate::length::LengthModel;
use crate::scores::{grid_step, FrameScores};
use crate::segments::{check_transcript, Segment};

/// The best segmentation of `scores` into `transcript`'s segments, in order: maximises the
/// summed frame scores plus `length_weight * log Poisson(len; mean_class)` per segment.
pub fn align(
    scores: &FrameScores,
    transcript: &[usize],
    lengths: &LengthModel,
    opt: &ExactOptions,
) -> Result<Decoded> {
    let t = scores.frames();
    check_transcript(transcript, t)?;
    scores.check_labels(transcript)?;
    check_lengths(lengths, scores)?;
    let n = transcript.len();
    // Each segment needs at least one grid step, so the step may not exceed T / N.
    let step = grid_step(t, opt.subsample, n);
    let grid = Grid::new(t, step, opt.max_len);
    let m = grid.m();
    let cums = scores.grid_cums(&grid.points, transcript);
    let facts = GridFactorials::new(&grid);
    let tables: Vec<ClassTables> = transcript
        .iter()
        .map(|&c| ClassTables::new(&cums, &facts, lengths, c, &grid, opt.length_weight))
        .collect();

    // q[k][j]: best score of the first k segments covering frames < g_j.
    let mut q = vec![vec![f64::NEG_INFINITY; m + 1]; n + 1];
    q[0][0] = 0.0;
    let mut a = vec![0.0; m + 1];
    for k in 1..=n {
        let tab = &tables[k - 1];
        fill_a(&mut a, &q[k - 1], &tab.cum);
        let row = &mut q[k];
        // Segment k ends at j >= k and leaves a step for each of the n - k segments after it.
        for (j, r) in row.iter_mut().enumerate().take(m - (n - k) + 1).skip(k) {
            *r = tab.best(&a, &grid, grid.lo(k - 1, j), j) + tab.cum[j];
        }
    }
    let score = q[n][m];
    if score == f64::NEG_INFINITY {
        return Err(SegError::Invalid(format!(
            "max_len {:?} cannot cover {t} frames with {n} segments",
            opt.max_len
        )));
    }
    let mut segments = Vec::with_capacity(n);
    let mut j = m;
    for k in (1..=n).rev() {
        let tab = &tables[k - 1];
        fill_a(&mut a, &q[k - 1], &tab.cum);
        let lo = grid.lo(k - 1, j);
        let i = tab.argbest(&a, &grid, lo, j);
        segments.push(Segment {
            label: transcript[k - 1],
            start: grid.points[i],
            end: grid.points[j],
        });
        j = i;
    }
    segments.reverse();
    Ok(Decoded { segments, score })
}

pub(super) fn check_lengths(lengths: &LengthModel, scores: &FrameScores) -> Result<()> {
    if lengths.classes() != scores.classes() {
        return Err(SegError::Mismatch(format!(
            "length model has {} classes, scores {}",
            lengths.classes(),
            scores.classes()
        )));
    }
    Ok(())
}
