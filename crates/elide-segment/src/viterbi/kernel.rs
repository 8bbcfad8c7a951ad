//! The per-class tables and the max-plus cell shared by both exact decoders.
use crate::length::{ln_factorial, LengthModel};
use crate::scores::GridCums;

/// One class's tables on a boundary grid `g_0 = 0 < ... < g_M = T`.
pub(super) struct ClassTables {
    /// `cum[j]`: summed frame score of frames `< g_j`.
    pub cum: Vec<f64>,
    /// `rev[x]`: length score of `M - x` full grid steps, reversed so that the candidate
    /// starts `i = lo..j` of cell `j` read `rev[M - j + lo .. M]` forwards.
    rev: Vec<f64>,
    /// `last[i]`: length score of a segment from `g_i` to `T`, for the last cell when the last
    /// step is short (empty otherwise).
    last: Vec<f64>,
}

/// The grid and what the cells need of it.
pub(super) struct Grid {
    pub points: Vec<usize>,
    pub step: usize,
    /// True when `T` is a multiple of `step`, so every length is a whole number of steps.
    pub regular: bool,
    /// Longest segment in grid steps.
    pub max_steps: usize,
}

impl Grid {
    pub fn new(frames: usize, step: usize, max_len: Option<usize>) -> Self {
        let points = crate::scores::grid(frames, step);
        let m = points.len() - 1;
        Self {
            regular: frames.is_multiple_of(step),
            max_steps: max_len.map_or(m, |l| (l / step).clamp(1, m)),
            points,
            step,
        }
    }

    /// `M`: the last grid index.
    pub fn m(&self) -> usize {
        self.points.len() - 1
    }

    /// The first start allowed for a segment ending at grid point `j`: at least `min_i`, and
    /// at most `max_steps` steps of `step` frames back (the last, short step counted in frames).
    pub fn lo(&self, min_i: usize, j: usize) -> usize {
        let m = self.m();
        if j < m || self.regular {
            min_i.max(j.saturating_sub(self.max_steps))
        } else {
            let t = self.points[m];
            min_i.max(
                t.saturating_sub(self.max_steps * self.step)
                    .div_ceil(self.step),
            )
        }
    }
}

/// `ln l!` at the lengths a grid allows, shared by every class (only `l ln(mean) - mean`
/// depends on the class).
pub(super) struct GridFactorials {
    /// `steps[k] = ln (k step)!` for `k = 0..=M`.
    steps: Vec<f64>,
    /// `last[i] = ln (T - g_i)!` for `i < M`, when the last step is short (else empty).
    last: Vec<f64>,
}

impl GridFactorials {
    pub fn new(grid: &Grid) -> Self {
        let m = grid.m();
        let t = grid.points[m];
        let steps = if grid.step == 1 {
            // Every length: a running sum is cheapest.
            let mut acc = 0.0;
            (0..=m)
                .map(|l| {
                    if l > 1 {
                        acc += (l as f64).ln();
                    }
                    acc
                })
                .collect()
        } else {
            (0..=m).map(|k| ln_factorial(k * grid.step)).collect()
        };
        let last = if grid.regular {
            Vec::new()
        } else {
            grid.points[..m]
                .iter()
                .map(|&p| ln_factorial(t - p))
                .collect()
        };
        Self { steps, last }
    }
}

impl ClassTables {
    /// Class `c`'s tables from the shared grid table and factorials: the Poisson scores only
    /// at the `2 M + 1` lengths the grid allows, not at every frame count.
    pub fn new(
        cums: &GridCums,
        facts: &GridFactorials,
        lengths: &LengthModel,
        c: usize,
        grid: &Grid,
        weight: f64,
    ) -> Self {
        let m = grid.m();
        let t = grid.points[m];
        let lam = lengths.mean(c);
        let ln_lam = lam.ln();
        let lp = |l: usize, ln_fact: f64| weight * (l as f64 * ln_lam - lam - ln_fact);
        let rev = (0..=m)
            .map(|x| lp((m - x) * grid.step, facts.steps[m - x]))
            .collect();
        let last = grid.points[..m]
            .iter()
            .zip(&facts.last)
            .map(|(&p, &f)| lp(t - p, f))
            .collect();
        Self {
            cum: cums.row(c).to_vec(),
            rev,
            last,
        }
    }

    /// `max_{i in lo..j} a[i] + len(i, j)`, where `a[i]` is the previous row minus `cum[i]`.
    #[inline]
    pub fn best(&self, a: &[f64], grid: &Grid, lo: usize, j: usize) -> f64 {
        let m = grid.m();
        if j < m || grid.regular {
            max_plus(&a[lo..j], &self.rev[m - j + lo..m])
        } else {
            max_plus(&a[lo..j], &self.last[lo..j])
        }
    }

    /// The `i` that attains [`Self::best`] (first on ties), by recomputing the same sums.
    pub fn argbest(&self, a: &[f64], grid: &Grid, lo: usize, j: usize) -> usize {
        let m = grid.m();
        let mut best = (lo, f64::NEG_INFINITY);
        for (i, &ai) in a.iter().enumerate().take(j).skip(lo) {
            let v = if j < m || grid.regular {
                ai + self.rev[m - j + i]
            } else {
                ai + self.last[i]
            };
            if v > best.1 {
                best = (i, v);
            }
        }
        best.0
    }
}

/// `max_k a[k] + b[k]` over equal-length slices, in eight independent lanes so that it
/// vectorises (the select form maps to `maxpd`).
#[inline]
pub(super) fn max_plus(a: &[f64], b: &[f64]) -> f64 {
    let mut lanes = [f64::NEG_INFINITY; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for k in 0..8 {
            let v = x[k] + y[k];
            lanes[k] = if v > lanes[k] { v } else { lanes[k] };
        }
    }
    for (x, y) in ra.iter().zip(rb) {
        let v = x + y;
        lanes[0] = if v > lanes[0] { v } else { lanes[0] };
    }
    lanes.iter().copied().fold(f64::NEG_INFINITY, f64::max)
}

/// `a[i] = prev[i] - cum[i]` over `range`, `-inf` elsewhere.
pub(super) fn fill_a(a: &mut [f64], prev: &[f64], cum: &[f64]) {
    for ((x, p), c) in a.iter_mut().zip(prev).zip(cum) {
        *x = p - c;
    }
}
