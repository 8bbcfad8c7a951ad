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

/// Beyond this `|s (x - b)|` a sigmoid is taken as exactly 0 or 1 (`e^-20 ~ 2e-9`).
const SATURATED: f64 = 20.0;

/// One video and transcript, ready for repeated energy and gradient evaluations.
///
/// Positions and lengths are in *units*: the cells of a boundary grid (`M` of them, each
/// `step` frames, the last maybe shorter), as in the subsampled exact decoder; with a step of
/// one frame, units are frames. A unit's cost is the summed cost of its frames, so the
/// energy keeps its per-frame meaning: `E = (1/T) (sum_n sum_u cost_n(u) mask_n(u) +
/// beta w sum_n |l_n - lambda_n|)`, with `w = T / M` frames per unit.
#[derive(Clone, Debug)]
pub struct Problem {
    frames: usize,
    units: usize,
    segs: usize,
    bins: usize,
    /// Bin width in units; bin `g`'s centre is `(g + 0.5) * width`.
    width: f64,
    /// `pooled[n * G + g]`: summed cost of segment `n`'s class over bin `g`.
    pooled: Vec<f64>,
    /// `prefix[n * (G + 1) + g]`: `pooled` of segment `n` summed over bins `< g`.
    prefix: Vec<f64>,
    /// `cum[n * (M + 1) + u]`: summed cost of segment `n`'s class over units `< u`.
    cum: Vec<f64>,
    /// Frame of each unit boundary (`M + 1` values, from 0 to `T`).
    points: Vec<usize>,
    /// Target lengths (units).
    target: Vec<f64>,
    /// Sharpness per unit: `sharpness / M`.
    s: f64,
    /// `beta * w`: the length term's weight per unit of length.
    beta_unit: f64,
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
        let (t, m) = (cums.frames(), cums.units());
        let g = bins.clamp(1, m);
        let n = transcript.len();
        let mut pooled = vec![0.0; n * g];
        let mut prefix = Vec::with_capacity(n * (g + 1));
        let mut cum = Vec::with_capacity(n * (m + 1));
        for (k, &c) in transcript.iter().enumerate() {
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
            frames: t,
            units: m,
            segs: n,
            bins: g,
            width: m as f64 / g as f64,
            pooled,
            prefix,
            cum,
            points: cums.points().to_vec(),
            target,
            s: sharpness / m as f64,
            beta_unit: beta * t as f64 / m as f64,
        }
    }

    /// Units `M` (the lengths' total).
    pub fn units(&self) -> usize {
        self.units
    }

    /// Frame lengths of a segmentation given by integer unit lengths.
    pub fn frame_lengths(&self, units: &[usize]) -> Vec<usize> {
        let mut b = 0;
        units
            .iter()
            .map(|&u| {
                let len = self.points[b + u] - self.points[b];
                b += u;
                len
            })
            .collect()
    }

    /// Frames `T`.
    pub fn frames(&self) -> usize {
        self.frames
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
        let scale = self.units as f64 / out.iter().sum::<f64>();
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
        self.eval(z, grad, w, true)
    }

    /// Only `dE/dz` into `grad` (the optimisation loop needs no soft energy: iterates are
    /// ranked by their hard energy), skipping the masked sums of the energy itself.
    pub fn grad_with(&self, z: &[f64], grad: &mut [f64], w: &mut Work) {
        self.eval(z, grad, w, false);
    }

    fn eval(&self, z: &[f64], grad: &mut [f64], w: &mut Work, energy: bool) -> f64 {
        let (n, g) = (self.segs, self.bins);
        // Energies are per frame; the lengths total M units.
        let (norm, total) = (self.frames as f64, self.units as f64);
        let mut l = std::mem::take(&mut w.lengths);
        self.lengths_into(z, &mut l);
        self.windows(&l, w);
        let pooled = |k: usize| &self.pooled[k * g..(k + 1) * g];
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
                let pre = &self.prefix[seg * (g + 1)..(seg + 1) * (g + 1)];
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
            let mut d = 0.0;
            for i in 0..hi - lo {
                d += sk[i] * (1.0 - sk[i]) * (pk[i] * (1.0 - next[i]) - pprev[i] * prev[i]);
            }
            suffix += -self.s * d / norm;
            gl[k - 1] = suffix;
        }
        let mut len_term = 0.0;
        for ((gl, l), lam) in gl.iter_mut().zip(&l).zip(&self.target) {
            len_term += (l - lam).abs();
            *gl += self.beta_unit / norm * sign(l - lam);
        }
        let dot: f64 = gl.iter().zip(&l).map(|(g, l)| g * l).sum::<f64>() / total;
        for ((gz, gl), l) in grad.iter_mut().zip(&gl).zip(&l) {
            *gz = l * (gl - dot);
        }
        w.lengths = l;
        w.grad_l = gl;
        (e + self.beta_unit * len_term) / norm
    }

    /// Fills the sigmoid rows of every boundary for lengths `l`.
    fn windows(&self, l: &[f64], w: &mut Work) {
        let (n, g) = (self.segs, self.bins);
        let (s, dx) = (self.s, self.width);
        w.lo.clear();
        w.hi.clear();
        w.rows.resize((n + 1) * g, 0.0);
        // S_0 = 1 everywhere, S_N = 0 everywhere.
        w.rows[..g].fill(1.0);
        w.rows[n * g..].fill(0.0);
        w.lo.push(0);
        w.hi.push(0);
        let r = (-s * dx).exp();
        let reach = SATURATED / s;
        let mut b = 0.0;
        for (k, len) in l[..n - 1].iter().enumerate() {
            b += len;
            // Bins whose centre (i + 0.5) dx lies within SATURATED / s of b.
            let lo = (((b - reach) / dx - 0.5).ceil().max(0.0) as usize).min(g);
            let hi = ((((b + reach) / dx - 0.5).floor() + 1.0).max(0.0) as usize).clamp(lo, g);
            let row = &mut w.rows[(k + 1) * g..(k + 2) * g];
            row[..lo].fill(0.0);
            row[hi..].fill(1.0);
            // e_i = exp(-s (x_i - b)), geometric with ratio r.
            let mut e = (-s * ((lo as f64 + 0.5) * dx - b)).exp();
            for v in &mut row[lo..hi] {
                *v = 1.0 / (1.0 + e);
                e *= r;
            }
            w.lo.push(lo);
            w.hi.push(hi);
        }
        w.lo.push(g);
        w.hi.push(g);
    }

    /// Integer lengths (units) from continuous ones: boundaries rounded, each segment at
    /// least a unit.
    pub fn round(&self, l: &[f64], out: &mut Vec<usize>) {
        let (n, t) = (self.segs, self.units);
        out.clear();
        let (mut acc, mut prev) = (0.0, 0usize);
        for (k, len) in l.iter().enumerate() {
            acc += len;
            let b = if k + 1 == n {
                t
            } else {
                (acc.round() as usize).clamp(prev + 1, t - (n - k - 1))
            };
            out.push(b - prev);
            prev = b;
        }
    }

    /// The energy of a hard segmentation with integer lengths in units (masks exactly 0 or
    /// 1): what the anytime loop ranks iterates and transcripts by.
    pub fn hard_energy(&self, lengths: &[usize]) -> f64 {
        let t1 = self.units + 1;
        let (mut e, mut start) = (0.0, 0);
        for (n, (&len, lam)) in lengths.iter().zip(&self.target).enumerate() {
            let row = &self.cum[n * t1..(n + 1) * t1];
            e += row[start + len] - row[start] + self.beta_unit * (len as f64 - lam).abs();
            start += len;
        }
        e / self.frames as f64
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
