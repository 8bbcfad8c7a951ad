//! FIFA's differentiable energy and its analytic gradient.
//!
//! Lengths are `l = T softmax(z)`, so every iterate is a valid segmentation. Segment `n`'s
//! soft mask is the plateau `S_n(x) (1 - S_{n+1}(x))`, with `S_k(x) = sigmoid(s (x - b_k))`
//! rising at boundary `b_k = l_0 + ... + l_{k-1}` (`S_0 = 1`, `S_N = 0`); this equals the
//! paper's product of two sigmoids centred at the segment's centre with half-width `l_n / 2`.
//! `E = (1/T) sum_n sum_t cost_n(t) mask_n(t) + (beta/T) sum_n |l_n - lambda_n|`.
//!
//! Speed, without changing the maths beyond float precision and the pooling:
//! - frames are pooled into `G` equal bins (summed costs at bin centres): the mask varies on a
//!   scale of `T / s`, several bins wide, and an iteration then costs the same for any `T`;
//! - a sigmoid is exactly 0 or 1 (to `e^-SATURATED`) outside a window around its boundary, so
//!   only windows are evaluated and a segment's saturated middle is a prefix-sum difference;
//! - on equally spaced centres `exp(-s (x_g - b))` is geometric in `g`: one `exp` per boundary,
//!   then one multiplication per bin.
use crate::scores::FrameScores;

/// Beyond this `|s (x - b)|` a sigmoid is taken as exactly 0 or 1 (`e^-20 ~ 2e-9`).
const SATURATED: f64 = 20.0;

/// One video and transcript, ready for repeated energy and gradient evaluations.
#[derive(Clone, Debug)]
pub struct Problem {
    frames: usize,
    segs: usize,
    bins: usize,
    /// Bin width in frames; bin `g`'s centre is `(g + 0.5) * width`.
    width: f64,
    /// `pooled[n * G + g]`: summed cost of segment `n`'s class over bin `g`.
    pooled: Vec<f64>,
    /// `prefix[n * (G + 1) + g]`: `pooled` of segment `n` summed over bins `< g`.
    prefix: Vec<f64>,
    /// `cum[n * (T + 1) + t]`: summed cost of segment `n`'s class over frames `< t`.
    cum: Vec<f64>,
    /// Target lengths (frames).
    target: Vec<f64>,
    /// Sharpness per frame: `sharpness / T`.
    s: f64,
    beta: f64,
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
}

impl Problem {
    /// `transcript` must be non-empty and fit in the frames (checked by the caller);
    /// `target` holds one target length per segment; `bins` is clamped to `1..=T`.
    pub fn new(
        scores: &FrameScores,
        transcript: &[usize],
        target: Vec<f64>,
        sharpness: f64,
        beta: f64,
        bins: usize,
    ) -> Self {
        let t = scores.frames();
        let g = bins.clamp(1, t);
        let n = transcript.len();
        let (mut pooled, mut prefix, mut cum) = (
            vec![0.0; n * g],
            Vec::with_capacity(n * (g + 1)),
            Vec::with_capacity(n * (t + 1)),
        );
        for (k, &c) in transcript.iter().enumerate() {
            let row = &mut pooled[k * g..(k + 1) * g];
            let mut acc = 0.0;
            cum.push(0.0);
            for f in 0..t {
                let cost = -scores.get(f, c);
                row[f * g / t] += cost;
                acc += cost;
                cum.push(acc);
            }
            let mut acc = 0.0;
            prefix.push(0.0);
            for v in row.iter() {
                acc += v;
                prefix.push(acc);
            }
        }
        Self {
            frames: t,
            segs: n,
            bins: g,
            width: t as f64 / g as f64,
            pooled,
            prefix,
            cum,
            target,
            s: sharpness / t as f64,
            beta,
        }
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

    /// Lengths `T softmax(z)` into `out`.
    pub fn lengths_into(&self, z: &[f64], out: &mut Vec<f64>) {
        let mx = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        out.clear();
        out.extend(z.iter().map(|v| (v - mx).exp()));
        let scale = self.frames as f64 / out.iter().sum::<f64>();
        out.iter_mut().for_each(|v| *v *= scale);
    }

    /// Lengths `T softmax(z)`.
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
        let (n, g, t) = (self.segs, self.bins, self.frames as f64);
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
        for seg in 0..n {
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
        let mut gl = vec![0.0; n];
        let mut suffix = 0.0;
        for k in (1..n).rev() {
            let (lo, hi) = (w.lo[k], w.hi[k]);
            let (pk, pprev) = (&pooled(k)[lo..hi], &pooled(k - 1)[lo..hi]);
            let (sk, prev, next) = (&row(k)[lo..hi], &row(k - 1)[lo..hi], &row(k + 1)[lo..hi]);
            let mut d = 0.0;
            for i in 0..hi - lo {
                d += sk[i] * (1.0 - sk[i]) * (pk[i] * (1.0 - next[i]) - pprev[i] * prev[i]);
            }
            suffix += -self.s * d / t;
            gl[k - 1] = suffix;
        }
        let mut len_term = 0.0;
        for ((gl, l), lam) in gl.iter_mut().zip(&l).zip(&self.target) {
            len_term += (l - lam).abs();
            *gl += self.beta / t * sign(l - lam);
        }
        let dot: f64 = gl.iter().zip(&l).map(|(g, l)| g * l).sum::<f64>() / t;
        for ((gz, gl), l) in grad.iter_mut().zip(&gl).zip(&l) {
            *gz = l * (gl - dot);
        }
        w.lengths = l;
        e / t + self.beta / t * len_term
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

    /// Integer lengths from continuous ones: boundaries rounded, each segment at least a frame.
    pub fn round(&self, l: &[f64], out: &mut Vec<usize>) {
        let (n, t) = (self.segs, self.frames);
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

    /// The energy of a hard segmentation with integer lengths (masks exactly 0 or 1): what
    /// the anytime loop ranks iterates and transcripts by.
    pub fn hard_energy(&self, lengths: &[usize]) -> f64 {
        let t1 = self.frames + 1;
        let (mut e, mut start) = (0.0, 0);
        for (n, (&len, lam)) in lengths.iter().zip(&self.target).enumerate() {
            let row = &self.cum[n * t1..(n + 1) * t1];
            e += row[start + len] - row[start] + self.beta * (len as f64 - lam).abs();
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
