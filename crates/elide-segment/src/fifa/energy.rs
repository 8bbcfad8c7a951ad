//! FIFA's differentiable energy and its analytic gradient.
//!
//! Lengths are `l = M softmax(z)` over the `M` units of a boundary grid (frames, or chunks of
//! `step` frames as the subsampled exact decoder uses), so every iterate is a valid
//! segmentation. Segment `n`'s
//! soft mask is the plateau `S_n(x) (1 - S_{n+1}(x))`, with `S_k(x) = sigmoid(s (x - b_k))`
//! rising at boundary `b_k = l_0 + ... + l_{k-1}` (`S_0 = 1`, `S_N = 0`); this equals the
//! paper's product of two sigmoids centred at the segment's centre with half-width `l_n / 2`.
//! `E = (1/T) sum_n sum_u cost_n(u) mask_n(u) + (beta w/T) sum_n |l_n - lambda_n|`, `w = T/M`.
//!
//! Speed, without changing the maths beyond float precision and the pooling:
//! - units are pooled into `G` equal bins (summed costs at bin centres): the mask varies on a
//!   scale of `T / s`, several bins wide, and an iteration then costs the same for any `T`;
//! - a sigmoid is exactly 0 or 1 (to `e^-SATURATED`) outside a window around its boundary, so
//!   only windows are evaluated and a segment's saturated middle is a prefix-sum difference;
//! - on equally spaced centres `exp(-s (x_g - b))` is geometric in `g`: one `exp` per boundary,
//!   then one multiplication per bin.
use crate::scores::{grid, FrameScores, GridCums};
use std::sync::Arc;

/// Beyond this `|s (x - b)|` a sigmoid is taken as exactly 0 or 1 (`e^-20 ~ 2e-9`).
const SATURATED: f64 = 20.0;

/// Per-class unit costs on one boundary grid, built once and shared by the [`Problem`]s of
/// every transcript decoded on that grid (segmentation decodes several; a class that occurs
/// in several of them, or twice in one, is prepared once).
#[derive(Clone, Debug)]
pub struct UnitCosts {
    frames: usize,
    units: usize,
    bins: usize,
    /// `slot[c]`: class `c`'s row in the tables below (`usize::MAX`: not held).
    slot: Vec<usize>,
    /// `pooled[k * G + g]`: summed cost of the `k`-th held class over bin `g`.
    pooled: Vec<f64>,
    /// `prefix[k * (G + 1) + g]`: `pooled` of the `k`-th held class summed over bins `< g`.
    prefix: Vec<f64>,
    /// `cum[k * (M + 1) + u]`: summed cost of the `k`-th held class over units `< u`.
    cum: Vec<f64>,
    /// Frame of each unit boundary (`M + 1` values, from 0 to `T`).
    points: Vec<usize>,
}

impl UnitCosts {
    /// The costs of `classes` (duplicates allowed, all held by `cums`) pooled into `bins`
    /// bins (clamped to `1..=M`).
    pub fn new(cums: &GridCums, classes: &[usize], bins: usize) -> Self {
        let m = cums.units();
        let g = bins.clamp(1, m);
        let top = classes.iter().max().map_or(0, |&c| c + 1);
        let mut slot = vec![usize::MAX; top];
        let mut held = 0;
        for &c in classes {
            if slot[c] == usize::MAX {
                slot[c] = held;
                held += 1;
            }
        }
        let mut pooled = vec![0.0; held * g];
        let mut prefix = Vec::with_capacity(held * (g + 1));
        let mut cum = Vec::with_capacity(held * (m + 1));
        let mut order: Vec<(usize, usize)> = slot
            .iter()
            .enumerate()
            .filter(|(_, &k)| k != usize::MAX)
            .map(|(c, &k)| (k, c))
            .collect();
        order.sort_unstable();
        for (k, c) in order {
            let row = cums.row(c);
            cum.extend(row.iter().map(|v| -v));
            let bin = &mut pooled[k * g..(k + 1) * g];
            if g == m {
                for (b, w) in bin.iter_mut().zip(row.windows(2)) {
                    *b = w[0] - w[1];
                }
            } else {
                for (u, w) in row.windows(2).enumerate() {
                    bin[u * g / m] += w[0] - w[1];
                }
            }
            let mut acc = 0.0;
            prefix.push(0.0);
            for v in bin.iter() {
                acc += v;
                prefix.push(acc);
            }
        }
        Self {
            frames: cums.frames(),
            units: m,
            bins: g,
            slot,
            pooled,
            prefix,
            cum,
            points: cums.points().to_vec(),
        }
    }

    /// Units `M`.
    pub fn units(&self) -> usize {
        self.units
    }

    /// Whether class `c` is held.
    pub fn holds(&self, c: usize) -> bool {
        self.slot.get(c).is_some_and(|&k| k != usize::MAX)
    }
}

/// One video and transcript, ready for repeated energy and gradient evaluations.
///
/// Positions and lengths are in *units*: the cells of a boundary grid (`M` of them, each
/// `step` frames, the last maybe shorter), as in the subsampled exact decoder; with a step of
/// one frame, units are frames. A unit's cost is the summed cost of its frames, so the
/// energy keeps its per-frame meaning: `E = (1/T) (sum_n sum_u cost_n(u) mask_n(u) +
/// beta w sum_n |l_n - lambda_n|)`, with `w = T / M` frames per unit.
#[derive(Clone, Debug)]
pub struct Problem {
    costs: Arc<UnitCosts>,
    /// Row of each segment's class in `costs`.
    rows: Vec<usize>,
    segs: usize,
    /// Bin width in units; bin `g`'s centre is `(g + 0.5) * width`.
    width: f64,
    /// Target lengths (units).
    target: Vec<f64>,
    /// Sharpness per unit: `sharpness / M`.
    s: f64,
    /// `beta * w`: the length term's weight per unit of length.
    beta_unit: f64,
    /// `r = exp(-s dx)`, the ratio of `exp(-s (x - b))` between neighbouring bins, and `r^4`.
    ratio: (f64, f64),
}

/// Reusable buffers of one optimisation: the sigmoid rows and their windows.
#[derive(Clone, Debug, Default)]
pub struct Work {
    /// Per boundary `k = 0..=N`: the bins `[lo, hi)` where `S_k` is strictly between 0 and 1.
    lo: Vec<usize>,
    hi: Vec<usize>,
    /// `rows[k * G + g] = S_k` at bin `g`, saturated parts filled with 0 and 1.
    rows: Vec<f64>,
    lengths: Vec<f64>,
    grad_l: Vec<f64>,
    /// Boundary positions `b_k` (units), `b_0 = 0`.
    bounds: Vec<f64>,
}

impl Problem {
    /// On every frame (units are frames). `transcript` must be non-empty, its labels classes
    /// of `scores`, and fit in the frames (checked by the caller); `target` holds one target
    /// length (frames) per segment; `bins` is clamped to `1..=T`.
    pub fn new(
        scores: &FrameScores,
        transcript: &[usize],
        target: Vec<f64>,
        sharpness: f64,
        beta: f64,
        bins: usize,
    ) -> Self {
        let cums = scores.grid_cums(&grid(scores.frames(), 1), transcript);
        Self::on_grid(&cums, transcript, target, sharpness, beta, bins)
    }

    /// On the units of `cums`' grid, which must hold every class of `transcript` and have at
    /// least one unit per segment; `target` in units; `bins` is clamped to `1..=M`.
    pub fn on_grid(
        cums: &GridCums,
        transcript: &[usize],
        target: Vec<f64>,
        sharpness: f64,
        beta: f64,
        bins: usize,
    ) -> Self {
        let costs = Arc::new(UnitCosts::new(cums, transcript, bins));
        Self::with_costs(costs, transcript, target, sharpness, beta)
    }

    /// On shared unit costs, which must hold every class of `transcript` and have at least
    /// one unit per segment; `target` in units.
    pub fn with_costs(
        costs: Arc<UnitCosts>,
        transcript: &[usize],
        target: Vec<f64>,
        sharpness: f64,
        beta: f64,
    ) -> Self {
        let (t, m, g) = (costs.frames, costs.units, costs.bins);
        let rows = transcript
            .iter()
            .map(|&c| {
                assert!(costs.holds(c), "class {c} not in the unit costs");
                costs.slot[c]
            })
            .collect();
        let (s, width) = (sharpness / m as f64, m as f64 / g as f64);
        let r = (-s * width).exp();
        Self {
            rows,
            segs: transcript.len(),
            width,
            target,
            s,
            ratio: (r, (r * r) * (r * r)),
            beta_unit: beta * t as f64 / m as f64,
            costs,
        }
    }

    /// Segment `k`'s pooled costs (`G` bins).
    fn pooled(&self, k: usize) -> &[f64] {
        let g = self.costs.bins;
        &self.costs.pooled[self.rows[k] * g..(self.rows[k] + 1) * g]
    }

    /// Segment `k`'s prefix sums of pooled costs (`G + 1`).
    fn prefix(&self, k: usize) -> &[f64] {
        let g1 = self.costs.bins + 1;
        &self.costs.prefix[self.rows[k] * g1..(self.rows[k] + 1) * g1]
    }

    /// Segment `k`'s cumulative unit costs (`M + 1`).
    fn cum(&self, k: usize) -> &[f64] {
        let m1 = self.costs.units + 1;
        &self.costs.cum[self.rows[k] * m1..(self.rows[k] + 1) * m1]
    }

    /// Units `M` (the lengths' total).
    pub fn units(&self) -> usize {
        self.costs.units
    }

    /// Frame lengths of a segmentation given by integer unit lengths.
    pub fn frame_lengths(&self, units: &[usize]) -> Vec<usize> {
        let mut b = 0;
        units
            .iter()
            .map(|&u| {
                let len = self.costs.points[b + u] - self.costs.points[b];
                b += u;
                len
            })
            .collect()
    }

    /// Frames `T`.
    pub fn frames(&self) -> usize {
        self.costs.frames
    }

    /// Segments `N`.
    pub fn segs(&self) -> usize {
        self.segs
    }

    /// Target lengths.
    pub fn target(&self) -> &[f64] {
        &self.target
    }

    /// Lengths `M softmax(z)` (units) into `out`.
    pub fn lengths_into(&self, z: &[f64], out: &mut Vec<f64>) {
        let mx = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        out.clear();
        out.extend(z.iter().map(|v| (v - mx).exp()));
        let scale = self.costs.units as f64 / out.iter().sum::<f64>();
        out.iter_mut().for_each(|v| *v *= scale);
    }

    /// Lengths `M softmax(z)` (units).
    pub fn lengths(&self, z: &[f64]) -> Vec<f64> {
        let mut out = Vec::new();
        self.lengths_into(z, &mut out);
        out
    }

    /// The energy at `z`; writes `dE/dz` into `grad`.
    pub fn energy_grad(&self, z: &[f64], grad: &mut [f64]) -> f64 {
        self.energy_grad_with(z, grad, &mut Work::default())
    }

    /// [`Self::energy_grad`] reusing `work`'s buffers.
    pub fn energy_grad_with(&self, z: &[f64], grad: &mut [f64], w: &mut Work) -> f64 {
        let mut l = std::mem::take(&mut w.lengths);
        self.lengths_into(z, &mut l);
        let e = self.eval(&l, grad, w, true);
        w.lengths = l;
        e
    }

    /// Only `dE/dz` into `grad` (the optimisation loop needs no soft energy: iterates are
    /// ranked by their hard energy), skipping the masked sums of the energy itself.
    pub fn grad_with(&self, z: &[f64], grad: &mut [f64], w: &mut Work) {
        let mut l = std::mem::take(&mut w.lengths);
        self.lengths_into(z, &mut l);
        self.eval(&l, grad, w, false);
        w.lengths = l;
    }

    /// [`Self::grad_with`] at the lengths `l = M softmax(z)` the caller already holds (the
    /// softmax's Jacobian needs only `l`): the optimisation loop computes them once per step.
    pub fn grad_at(&self, l: &[f64], grad: &mut [f64], w: &mut Work) {
        self.eval(l, grad, w, false);
    }

    fn eval(&self, l: &[f64], grad: &mut [f64], w: &mut Work, energy: bool) -> f64 {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU supports AVX2 and FMA (checked just above).
            return unsafe { self.eval_avx2(l, grad, w, energy) };
        }
        self.eval_loops(l, grad, w, energy)
    }

    /// [`Self::eval`]'s loops compiled for AVX2 + FMA (the workspace targets baseline x86-64).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn eval_avx2(&self, l: &[f64], grad: &mut [f64], w: &mut Work, energy: bool) -> f64 {
        self.eval_loops(l, grad, w, energy)
    }

    #[inline(always)]
    fn eval_loops(&self, l: &[f64], grad: &mut [f64], w: &mut Work, energy: bool) -> f64 {
        let (n, g) = (self.segs, self.costs.bins);
        // Energies are per frame; the lengths total M units.
        let (norm, total) = (self.costs.frames as f64, self.costs.units as f64);
        self.windows(l, w);
        let pooled = |k: usize| self.pooled(k);
        let row = |k: usize| &w.rows[k * g..(k + 1) * g];
        // sum_i p[i] a[i] (1 - c[i]) over a range: a branch-free loop that vectorises.
        let masked = |p: &[f64], a: &[f64], c: &[f64]| -> f64 {
            p.iter()
                .zip(a)
                .zip(c)
                .map(|((p, a), c)| p * a * (1.0 - c))
                .sum()
        };

        let mut e = 0.0;
        for seg in (0..n).filter(|_| energy) {
            // Support: from where S_seg leaves 0 to where S_{seg+1} reaches 1.
            let (lo, hi) = (w.lo[seg], w.hi[seg + 1].max(w.lo[seg]));
            let (a, c, p) = (row(seg), row(seg + 1), pooled(seg));
            // In between both windows the mask is exactly 1: a prefix-sum difference.
            let (mid_lo, mid_hi) = (w.hi[seg], w.lo[seg + 1]);
            if lo <= mid_lo && mid_lo < mid_hi && mid_hi <= hi {
                let pre = self.prefix(seg);
                e += pre[mid_hi] - pre[mid_lo];
                e += masked(&p[lo..mid_lo], &a[lo..mid_lo], &c[lo..mid_lo]);
                e += masked(&p[mid_hi..hi], &a[mid_hi..hi], &c[mid_hi..hi]);
            } else {
                e += masked(&p[lo..hi], &a[lo..hi], &c[lo..hi]);
            }
        }
        // dE/db_k over boundary k's window; l_m collects the boundaries after it.
        let mut gl = std::mem::take(&mut w.grad_l);
        gl.clear();
        gl.resize(n, 0.0);
        let mut suffix = 0.0;
        for k in (1..n).rev() {
            let (lo, hi) = (w.lo[k], w.hi[k]);
            let (pk, pprev) = (&pooled(k)[lo..hi], &pooled(k - 1)[lo..hi]);
            let (sk, prev, next) = (&row(k)[lo..hi], &row(k - 1)[lo..hi], &row(k + 1)[lo..hi]);
            // Four partial sums, so that the loop vectorises.
            let mut acc = [0.0; 4];
            let term =
                |i: usize| sk[i] * (1.0 - sk[i]) * (pk[i] * (1.0 - next[i]) - pprev[i] * prev[i]);
            let quads = (hi - lo) / 4;
            for q in 0..quads {
                for (j, a) in acc.iter_mut().enumerate() {
                    *a += term(4 * q + j);
                }
            }
            for (j, a) in acc.iter_mut().enumerate().take(hi - lo - 4 * quads) {
                *a += term(4 * quads + j);
            }
            let d = (acc[0] + acc[1]) + (acc[2] + acc[3]);
            suffix += -self.s * d / norm;
            gl[k - 1] = suffix;
        }
        let mut len_term = 0.0;
        for ((gl, l), lam) in gl.iter_mut().zip(l).zip(&self.target) {
            len_term += (l - lam).abs();
            *gl += self.beta_unit / norm * sign(l - lam);
        }
        let dot: f64 = gl.iter().zip(l).map(|(g, l)| g * l).sum::<f64>() / total;
        for ((gz, gl), l) in grad.iter_mut().zip(&gl).zip(l) {
            *gz = l * (gl - dot);
        }
        w.grad_l = gl;
        (e + self.beta_unit * len_term) / norm
    }

    /// Fills the sigmoid rows of every boundary for lengths `l`.
    #[inline(always)]
    fn windows(&self, l: &[f64], w: &mut Work) {
        let (n, g) = (self.segs, self.costs.bins);
        let (s, dx) = (self.s, self.width);
        let reach = SATURATED / s;
        // Every boundary's window first (they only move right as k grows).
        w.lo.clear();
        w.hi.clear();
        w.bounds.clear();
        w.lo.push(0);
        w.hi.push(0);
        w.bounds.push(0.0);
        let mut b = 0.0;
        for len in &l[..n - 1] {
            b += len;
            // Bins whose centre (i + 0.5) dx lies within SATURATED / s of b.
            let lo = first_at_least((b - reach) / dx - 0.5).min(g);
            let hi = count_upto((b + reach) / dx - 0.5).clamp(lo, g);
            w.lo.push(lo);
            w.hi.push(hi);
            w.bounds.push(b);
        }
        w.lo.push(g);
        w.hi.push(g);
        w.rows.resize((n + 1) * g, 0.0);
        // Row j (S_0 = 1, S_N = 0) is only read within the windows of boundaries j - 1 to
        // j + 1, i.e. on [lo_{j-1}, hi_{j+1}): only that part is written.
        for j in 0..=n {
            let from = if j == 0 { 0 } else { w.lo[j - 1] };
            let to = if j == n { g } else { w.hi[j + 1] };
            let (lo, hi) = (w.lo[j], w.hi[j]);
            let row = &mut w.rows[j * g..(j + 1) * g];
            row[from..lo].fill(0.0);
            row[hi..to].fill(1.0);
            if j == 0 || j == n {
                continue;
            }
            // e_i = exp(-s (x_i - b)), geometric with ratio r: four interleaved recurrences
            // of ratio r^4, so that the divisions vectorise.
            let (r, r4) = self.ratio;
            let e0 = (-s * ((lo as f64 + 0.5) * dx - w.bounds[j])).exp();
            let mut e = [e0, e0 * r, e0 * r * r, e0 * r * r * r];
            let mut quads = row[lo..hi].chunks_exact_mut(4);
            for q in &mut quads {
                for (v, e) in q.iter_mut().zip(&mut e) {
                    *v = 1.0 / (1.0 + *e);
                    *e *= r4;
                }
            }
            for (v, e) in quads.into_remainder().iter_mut().zip(&e) {
                *v = 1.0 / (1.0 + *e);
            }
        }
    }

    /// Integer lengths (units) from continuous ones: boundaries rounded, each segment at
    /// least a unit.
    pub fn round(&self, l: &[f64], out: &mut Vec<usize>) {
        let (n, t) = (self.segs, self.costs.units);
        out.clear();
        let (mut acc, mut prev) = (0.0, 0usize);
        for (k, len) in l.iter().enumerate() {
            acc += len;
            let b = if k + 1 == n {
                t
            } else {
                round_pos(acc).clamp(prev + 1, t - (n - k - 1))
            };
            out.push(b - prev);
            prev = b;
        }
    }

    /// The energy of a hard segmentation with integer lengths in units (masks exactly 0 or
    /// 1): what the anytime loop ranks iterates and transcripts by.
    pub fn hard_energy(&self, lengths: &[usize]) -> f64 {
        let (mut e, mut start) = (0.0, 0);
        for (n, (&len, lam)) in lengths.iter().zip(&self.target).enumerate() {
            let row = self.cum(n);
            e += row[start + len] - row[start] + self.beta_unit * (len as f64 - lam).abs();
            start += len;
        }
        e / self.costs.frames as f64
    }
}

/// `x.round() as usize` for `x >= 0` (halves away from zero), without a libm call; negative
/// values give 0.
pub(super) fn round_pos(x: f64) -> usize {
    let t = x as usize;
    if x - t as f64 >= 0.5 {
        t + 1
    } else {
        t
    }
}

/// The first index `i >= 0` with `i >= x`: `max(ceil(x), 0)` without a libm call.
fn first_at_least(x: f64) -> usize {
    if x <= 0.0 {
        return 0;
    }
    let t = x as usize;
    if (t as f64) < x {
        t + 1
    } else {
        t
    }
}

/// How many indices `i >= 0` have `i <= x`: `max(floor(x) + 1, 0)` without a libm call.
fn count_upto(x: f64) -> usize {
    if x < 0.0 {
        0
    } else {
        x as usize + 1
    }
}

fn sign(x: f64) -> f64 {
    if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_helpers_match_libm() {
        for i in 0..4000 {
            let x = i as f64 * 0.0137 - 5.0;
            if x >= 0.0 {
                assert_eq!(round_pos(x), x.round() as usize, "{x}");
            }
            assert_eq!(first_at_least(x), x.ceil().max(0.0) as usize, "{x}");
            assert_eq!(count_upto(x), (x.floor() + 1.0).max(0.0) as usize, "{x}");
        }
        for x in [0.5, 1.5, 2.5, 3.0, 0.0, 7.499_999_999_999_999] {
            assert_eq!(round_pos(x), x.round() as usize, "{x}");
            assert_eq!(first_at_least(x), x.ceil() as usize, "{x}");
            assert_eq!(count_upto(x), x.floor() as usize + 1, "{x}");
        }
    }
}
