//! Exact segmentation over a grammar: Viterbi on the grammar's prefix tree, so transcripts
//! that share a prefix share its rows.
use super::align::check_lengths;
use super::kernel::{fill_a, ClassTables, Grid, GridFactorials};
use super::{Decoded, ExactOptions};
use crate::error::{Result, SegError};
use crate::grammar::Grammar;
use crate::length::LengthModel;
use crate::scores::{grid_step, FrameScores};
use crate::segments::Segment;
use std::collections::HashMap;

/// The best segmentation of `scores` whose transcript is one of `grammar`'s, with the same
/// score as [`super::align`]. Returns the segments (their labels give the transcript).
pub fn segment(
    scores: &FrameScores,
    grammar: &Grammar,
    lengths: &LengthModel,
    opt: &ExactOptions,
) -> Result<Decoded> {
    let t = scores.frames();
    check_lengths(lengths, scores)?;
    let nodes = grammar.nodes();
    for tr in grammar.transcripts() {
        scores.check_labels(tr)?;
    }
    let shortest = grammar.min_len();
    if t < shortest {
        return Err(SegError::TooShort {
            frames: t,
            segments: shortest,
        });
    }
    let step = grid_step(t, opt.subsample, shortest);
    let grid = Grid::new(t, step, opt.max_len);
    let m = grid.m();
    let labels: Vec<usize> = nodes[1..].iter().map(|n| n.label).collect();
    let cums = scores.grid_cums(&grid.points, &labels);
    let facts = GridFactorials::new(&grid);
    let mut tables: HashMap<usize, ClassTables> = HashMap::new();
    for &c in &labels {
        tables.entry(c).or_insert_with(|| {
            ClassTables::new(&cums, &facts, lengths, c, &grid, opt.length_weight)
        });
    }

    // q[v][j]: best score of node v's prefix covering frames < g_j (empty: unreachable).
    let mut q: Vec<Vec<f64>> = Vec::with_capacity(nodes.len());
    let mut root = vec![f64::NEG_INFINITY; m + 1];
    root[0] = 0.0;
    q.push(root);
    let mut a = vec![0.0; m + 1];
    for node in &nodes[1..] {
        let prev = &q[node.parent];
        // A node needs a step per segment so far and one for each segment still to come.
        if prev.is_empty() || node.depth + node.to_end > m {
            q.push(Vec::new());
            continue;
        }
        let tab = &tables[&node.label];
        fill_a(&mut a, prev, &tab.cum);
        let mut row = vec![f64::NEG_INFINITY; m + 1];
        for (j, r) in row
            .iter_mut()
            .enumerate()
            .take(m - node.to_end + 1)
            .skip(node.depth)
        {
            let lo = grid.lo(node.depth - 1, j);
            *r = tab.best(&a, &grid, lo, j) + tab.cum[j];
        }
        q.push(row);
    }

    let (mut best, mut score) = (None, f64::NEG_INFINITY);
    for (v, n) in nodes.iter().enumerate().skip(1) {
        if n.terminal && !q[v].is_empty() && q[v][m] > score {
            (best, score) = (Some(v), q[v][m]);
        }
    }
    let Some(mut v) = best else {
        return Err(SegError::Invalid(format!(
            "no grammar transcript fits {t} frames with max_len {:?}",
            opt.max_len
        )));
    };
    let mut segments = Vec::new();
    let mut j = m;
    while v != 0 {
        let node = &nodes[v];
        let tab = &tables[&node.label];
        fill_a(&mut a, &q[node.parent], &tab.cum);
        let lo = grid.lo(node.depth - 1, j);
        let i = tab.argbest(&a, &grid, lo, j);
        segments.push(Segment {
            label: node.label,
            start: grid.points[i],
            end: grid.points[j],
        });
        (v, j) = (node.parent, i);
    }
    segments.reverse();
    Ok(Decoded { segments, score })
}
