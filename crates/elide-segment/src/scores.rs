//! Frame-wise scores: validated (log-)probabilities `T x C`, turned into the decoders' frame
//! scores `log p(c|x_t) - log prior(c)` and their per-class cumulative sums.
use crate::error::{Result, SegError};
use crate::npy::NpyArray;

/// Log-probabilities are floored here (`ln 1e-16`, as the reference codes add `1e-16`), so
/// that a zero probability is a large but finite cost and cumulative sums never see `-inf`.
pub const LOG_FLOOR: f64 = -36.841_361_487_904_734;

/// How much a row may miss summing to one (files hold `f32`, softmax is not exact).
const SUM_TOL: f64 = 1e-3;

/// How a `.npy` of frame-wise values is to be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbKind {
    /// Probabilities if every row is a distribution, else log-probabilities if every row's
    /// `logsumexp` is 0; anything else is an error.
    Auto,
    /// Probabilities in `[0, 1]` summing to 1 per frame.
    Probs,
    /// Log-probabilities whose exponentials sum to 1 per frame.
    LogProbs,
}

/// Validated frame-wise scores, `T x C` row-major, as `log p(c|x_t) - log prior(c)`.
#[derive(Clone, Debug)]
pub struct FrameScores {
    frames: usize,
    classes: usize,
    data: Vec<f64>,
}

impl FrameScores {
    /// Builds from `T x C` values of the given kind, checking every row.
    pub fn new(frames: usize, classes: usize, values: &[f64], kind: ProbKind) -> Result<Self> {
        if values.len() != frames * classes {
            return Err(SegError::Mismatch(format!(
                "{} values for {frames} frames x {classes} classes",
                values.len()
            )));
        }
        if frames == 0 || classes == 0 {
            return Err(SegError::Mismatch(format!(
                "no scores: {frames} frames x {classes} classes"
            )));
        }
        let kind = match kind {
            ProbKind::Auto => detect(values, classes),
            ProbKind::Probs => check_probs(values, classes)
                .map(|()| ProbKind::Probs)
                .map_err(|e| format!("probabilities: {}", e.1)),
            ProbKind::LogProbs => check_log_probs(values, classes)
                .map(|()| ProbKind::LogProbs)
                .map_err(|e| format!("log-probabilities: {}", e.1)),
        }
        .map_err(SegError::NotDistribution)?;
        let data = match kind {
            ProbKind::Probs => values.iter().map(|&p| p.ln().max(LOG_FLOOR)).collect(),
            _ => values.iter().map(|&l| l.max(LOG_FLOOR)).collect(),
        };
        Ok(Self {
            frames,
            classes,
            data,
        })
    }

    /// Builds from a 2-D `.npy` array laid out `T x C`.
    pub fn from_npy(a: &NpyArray, kind: ProbKind) -> Result<Self> {
        match a.shape[..] {
            [t, c] => Self::new(t, c, &a.data, kind),
            _ => Err(SegError::Mismatch(format!(
                "need a 2-D T x C array, got shape {:?}",
                a.shape
            ))),
        }
    }

    /// Subtracts `log prior(c)` from every frame (the hybrid-model scores of
    /// NeuralNetwork-Viterbi / CDFL); `prior` must be positive and have `C` entries.
    pub fn with_prior(mut self, prior: &[f64]) -> Result<Self> {
        if prior.len() != self.classes {
            return Err(SegError::Mismatch(format!(
                "prior has {} classes, scores {}",
                prior.len(),
                self.classes
            )));
        }
        if prior.iter().any(|p| !(p.is_finite() && *p > 0.0)) {
            return Err(SegError::NotDistribution(
                "class prior must be positive".into(),
            ));
        }
        let lp: Vec<f64> = prior.iter().map(|p| p.ln()).collect();
        for row in self.data.chunks_exact_mut(self.classes) {
            for (v, l) in row.iter_mut().zip(&lp) {
                *v -= l;
            }
        }
        Ok(self)
    }

    /// The first `t` frames (`1 <= t <= T`).
    pub fn truncated(mut self, t: usize) -> Result<Self> {
        if t == 0 || t > self.frames {
            return Err(SegError::Mismatch(format!(
                "cannot keep {t} of {} frames",
                self.frames
            )));
        }
        self.data.truncate(t * self.classes);
        self.frames = t;
        Ok(self)
    }

    /// Frames `T`.
    pub fn frames(&self) -> usize {
        self.frames
    }

    /// Classes `C`.
    pub fn classes(&self) -> usize {
        self.classes
    }

    /// The score of class `c` at frame `t`.
    pub fn get(&self, t: usize, c: usize) -> f64 {
        self.data[t * self.classes + c]
    }

    /// Per-frame argmax (the decoder-free baseline).
    pub fn argmax(&self) -> Vec<usize> {
        self.data
            .chunks_exact(self.classes)
            .map(|r| {
                (0..r.len())
                    .max_by(|&a, &b| r[a].total_cmp(&r[b]))
                    .unwrap_or(0)
            })
            .collect()
    }

    /// Checks that every label in `labels` is a class of these scores.
    pub fn check_labels(&self, labels: &[usize]) -> Result<()> {
        match labels.iter().find(|&&c| c >= self.classes) {
            Some(c) => Err(SegError::UnknownLabel(format!(
                "class id {c} (scores have {} classes)",
                self.classes
            ))),
            None => Ok(()),
        }
    }

    /// Cumulative sums of class `c`'s score at the grid points: `out[j] = sum_{t < grid[j]}`.
    pub fn cumsum_at(&self, c: usize, grid: &[usize]) -> Vec<f64> {
        let mut out = Vec::with_capacity(grid.len());
        let (mut acc, mut t) = (0.0, 0);
        for &g in grid {
            while t < g {
                acc += self.data[t * self.classes + c];
                t += 1;
            }
            out.push(acc);
        }
        out
    }
}

/// Per-class cumulative scores at the points of a boundary grid, for a set of classes, built
/// in one pass over the frames: what both decoders read segment scores from.
#[derive(Clone, Debug)]
pub struct GridCums {
    frames: usize,
    points: Vec<usize>,
    /// `slot[c]`: the row of class `c` in `cum`, `usize::MAX` when not held.
    slot: Vec<usize>,
    /// `cum[k * (M + 1) + j]`: summed score of the `k`-th held class over frames `< points[j]`.
    cum: Vec<f64>,
}

impl GridCums {
    /// The grid points `0 = g_0 < ... < g_M = T`.
    pub fn points(&self) -> &[usize] {
        &self.points
    }

    /// `M`: the number of grid cells (units).
    pub fn units(&self) -> usize {
        self.points.len() - 1
    }

    /// Frames `T`.
    pub fn frames(&self) -> usize {
        self.frames
    }

    /// Whether class `c` is held.
    pub fn holds(&self, c: usize) -> bool {
        self.slot.get(c).is_some_and(|&k| k != usize::MAX)
    }

    /// Class `c`'s cumulative scores at the grid points (`M + 1` values); panics when `c` is
    /// not held.
    pub fn row(&self, c: usize) -> &[f64] {
        let k = self.slot[c];
        assert!(k != usize::MAX, "class {c} not in the grid table");
        let m1 = self.points.len();
        &self.cum[k * m1..(k + 1) * m1]
    }
}

impl FrameScores {
    /// Cumulative scores of `classes` (duplicates allowed, all `< C`) at the grid `points`
    /// (increasing, from 0 to `T`). One pass over the frames, chunk by chunk: each chunk's
    /// rows are summed into a block of accumulators held in registers (contiguous blocks of
    /// the row when most classes are wanted, gathered entries otherwise), two rows at a time
    /// to halve the dependency chains, then added to the running sums. Compiled for AVX2 as
    /// well as the baseline and picked at run time; both decoders read this table.
    pub fn grid_cums(&self, points: &[usize], classes: &[usize]) -> GridCums {
        let c_all = self.classes;
        let mut slot = vec![usize::MAX; c_all];
        let mut held = Vec::new();
        for &c in classes {
            if slot[c] == usize::MAX {
                slot[c] = held.len();
                held.push(c);
            }
        }
        let m1 = points.len();
        let mut cum = vec![0.0; held.len() * m1];
        grid_pass(&self.data, c_all, points, &held, &mut cum);
        GridCums {
            frames: self.frames,
            points: points.to_vec(),
            slot,
            cum,
        }
    }
}

/// Accumulators per block (a multiple of the vector width; 16 `f64` fill 8 SSE2 or 4 AVX2
/// registers).
const BLOCK: usize = 16;

/// Fills `cum[k * M1 + j]` with the sum of class `held[k]` over the rows `< points[j]` of the
/// row-major `data` (`c_all` values per row).
fn grid_pass(data: &[f64], c_all: usize, points: &[usize], held: &[usize], cum: &mut [f64]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked just above); the body is safe code.
        unsafe { grid_pass_avx2(data, c_all, points, held, cum) };
        return;
    }
    grid_pass_generic(data, c_all, points, held, cum);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn grid_pass_avx2(
    data: &[f64],
    c_all: usize,
    points: &[usize],
    held: &[usize],
    cum: &mut [f64],
) {
    grid_pass_generic(data, c_all, points, held, cum);
}

#[inline(always)]
fn grid_pass_generic(
    data: &[f64],
    c_all: usize,
    points: &[usize],
    held: &[usize],
    cum: &mut [f64],
) {
    let (m1, h) = (points.len(), held.len());
    // Dense: every class summed from contiguous blocks of the rows, held ones copied out.
    let dense = 4 * h >= c_all;
    if !dense {
        return gather_pass(data, c_all, points, held, cum);
    }
    let blocks = c_all.div_ceil(BLOCK);
    let mut acc = vec![0.0; blocks * BLOCK];
    let mut t = 0;
    for (j, &g) in points.iter().enumerate() {
        let rows = &data[t * c_all..g * c_all];
        for b in 0..blocks {
            let mut s0 = [0.0f64; BLOCK];
            let mut s1 = [0.0f64; BLOCK];
            let lo = b * BLOCK;
            let n = (c_all - lo).min(BLOCK);
            if n == BLOCK {
                let mut pairs = rows.chunks_exact(2 * c_all);
                for pair in &mut pairs {
                    let (r0, r1) = pair.split_at(c_all);
                    let (r0, r1) = (&r0[lo..lo + BLOCK], &r1[lo..lo + BLOCK]);
                    for i in 0..BLOCK {
                        s0[i] += r0[i];
                        s1[i] += r1[i];
                    }
                }
                for r in pairs.remainder().chunks_exact(c_all) {
                    let r = &r[lo..lo + BLOCK];
                    for i in 0..BLOCK {
                        s0[i] += r[i];
                    }
                }
            } else {
                for r in rows.chunks_exact(c_all) {
                    for (s, v) in s0.iter_mut().zip(&r[lo..lo + n]) {
                        *s += v;
                    }
                }
            }
            for (i, a) in acc[b * BLOCK..(b + 1) * BLOCK].iter_mut().enumerate() {
                *a += s0[i] + s1[i];
            }
        }
        for (k, &c) in held.iter().enumerate() {
            cum[k * m1 + j] = acc[c];
        }
        t = g;
    }
}

/// Gathered columns per block in the sparse pass.
const GATHER: usize = 8;

/// [`grid_pass_generic`] for a few classes: their entries gathered from each row, in blocks
/// of [`GATHER`] (padded with a held column whose sums are dropped).
#[inline(always)]
fn gather_pass(data: &[f64], c_all: usize, points: &[usize], held: &[usize], cum: &mut [f64]) {
    let (m1, h) = (points.len(), held.len());
    let blocks = h.div_ceil(GATHER);
    let cols: Vec<usize> = (0..blocks * GATHER)
        .map(|i| held.get(i).copied().unwrap_or(held[0]))
        .collect();
    let mut acc = vec![0.0; blocks * GATHER];
    let mut t = 0;
    for (j, &g) in points.iter().enumerate() {
        let rows = &data[t * c_all..g * c_all];
        for b in 0..blocks {
            let idx: &[usize; GATHER] = cols[b * GATHER..(b + 1) * GATHER]
                .try_into()
                .expect("a whole block");
            let mut s0 = [0.0f64; GATHER];
            let mut s1 = [0.0f64; GATHER];
            let mut pairs = rows.chunks_exact(2 * c_all);
            for pair in &mut pairs {
                let (r0, r1) = pair.split_at(c_all);
                for i in 0..GATHER {
                    s0[i] += r0[idx[i]];
                    s1[i] += r1[idx[i]];
                }
            }
            for r in pairs.remainder().chunks_exact(c_all) {
                for i in 0..GATHER {
                    s0[i] += r[idx[i]];
                }
            }
            for (i, a) in acc[b * GATHER..(b + 1) * GATHER].iter_mut().enumerate() {
                *a += s0[i] + s1[i];
            }
        }
        for (k, a) in acc[..h].iter().enumerate() {
            cum[k * m1 + j] = *a;
        }
        t = g;
    }
}

/// Whether `values` are probabilities or log-probabilities. A value that is neither (NaN,
/// `+inf`) is reported first. When both checks fail, the message is the one of the reading
/// the values suggest: all in `[0, 1]`, probabilities; none positive, log-probabilities; else
/// the one whose first bad frame comes later (the other fails on a frame this one accepts);
/// on a tie, both.
fn detect(values: &[f64], classes: usize) -> std::result::Result<ProbKind, String> {
    if let Some(i) = values
        .iter()
        .position(|v| v.is_nan() || *v == f64::INFINITY)
    {
        return Err(format!(
            "{}: {} is not a probability or log-probability",
            at(i, classes),
            num(values[i])
        ));
    }
    let (pt, p) = match check_probs(values, classes) {
        Ok(()) => return Ok(ProbKind::Probs),
        Err(e) => e,
    };
    let (lt, l) = match check_log_probs(values, classes) {
        Ok(()) => return Ok(ProbKind::LogProbs),
        Err(e) => e,
    };
    let probs = format!("probabilities: {p}");
    let logs = format!("log-probabilities: {l}");
    Err(if values.iter().all(|v| (0.0..=1.0).contains(v)) {
        probs
    } else if values.iter().all(|v| *v <= LOG_TOL) {
        logs
    } else if pt != lt {
        if pt > lt {
            probs
        } else {
            logs
        }
    } else {
        format!("neither probabilities ({p}) nor log-probabilities ({l})")
    })
}

/// The largest log-probability accepted (rounding of a log-softmax can leave tiny positives).
const LOG_TOL: f64 = 1e-6;

/// `frame t, class c` of the flat index `i`.
fn at(i: usize, classes: usize) -> String {
    format!("frame {}, class {}", i / classes, i % classes)
}

/// A value for a message: plain, or with an exponent when very large or small.
fn num(v: f64) -> String {
    if v == 0.0 || !v.is_finite() || (1e-4..1e6).contains(&v.abs()) {
        v.to_string()
    } else {
        format!("{v:e}")
    }
}

/// The first frame that is not a distribution of probabilities, and why.
type RowError = (usize, String);

fn check_probs(values: &[f64], classes: usize) -> std::result::Result<(), RowError> {
    for (t, row) in values.chunks_exact(classes).enumerate() {
        if let Some(c) = row.iter().position(|v| !(0.0..=1.0).contains(v)) {
            let v = num(row[c]);
            return Err((
                t,
                format!("{}: {v} is outside [0, 1]", at(t * classes + c, classes)),
            ));
        }
        let s: f64 = row.iter().sum();
        if (s - 1.0).abs() > SUM_TOL {
            return Err((t, format!("frame {t} sums to {}, not 1", num(s))));
        }
    }
    Ok(())
}

fn check_log_probs(values: &[f64], classes: usize) -> std::result::Result<(), RowError> {
    for (t, row) in values.chunks_exact(classes).enumerate() {
        if let Some(c) = row.iter().position(|v| v.is_nan() || *v > LOG_TOL) {
            let v = num(row[c]);
            let why = if row[c].is_nan() { "" } else { " is positive" };
            return Err((t, format!("{}: {v}{why}", at(t * classes + c, classes))));
        }
        let s: f64 = row.iter().map(|v| v.exp()).sum();
        if (s - 1.0).abs() > SUM_TOL {
            return Err((
                t,
                format!("frame {t}: exponentials sum to {}, not 1", num(s)),
            ));
        }
    }
    Ok(())
}

/// Boundaries on a grid of step `step` frames, `0, step, 2 step, ..., T` (the last step may be
/// short): where the exact decoders may place segment boundaries.
pub fn grid(frames: usize, step: usize) -> Vec<usize> {
    let step = step.max(1);
    let mut g: Vec<usize> = (0..frames).step_by(step).collect();
    g.push(frames);
    g
}

/// The boundary step both decoders use: `subsample`, reduced (not below 1) so that each of
/// `segments` segments still gets a whole step of the `frames` frames.
pub fn grid_step(frames: usize, subsample: usize, segments: usize) -> usize {
    subsample.clamp(1, (frames / segments.max(1)).max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_probs_and_log_probs_alike() {
        let p = [0.25, 0.75, 1.0, 0.0];
        let a = FrameScores::new(2, 2, &p, ProbKind::Auto).unwrap();
        let l: Vec<f64> = p.iter().map(|v: &f64| v.ln()).collect();
        let b = FrameScores::new(2, 2, &l, ProbKind::Auto).unwrap();
        assert!((a.get(0, 1) - 0.75f64.ln()).abs() < 1e-12);
        assert_eq!(a.get(1, 1), LOG_FLOOR);
        assert_eq!(b.get(1, 1), LOG_FLOOR);
        assert_eq!(a.argmax(), [1, 0]);
    }

    #[test]
    fn rejects_what_is_not_a_distribution() {
        for bad in [[0.5, 0.6], [f64::NAN, 1.0], [-0.1, 1.1], [-1.0, -1.0]] {
            let e = FrameScores::new(1, 2, &bad, ProbKind::Auto).unwrap_err();
            assert!(matches!(e, SegError::NotDistribution(_)), "{bad:?}: {e}");
        }
        assert!(FrameScores::new(1, 2, &[0.5, 0.5], ProbKind::LogProbs).is_err());
        assert!(FrameScores::new(2, 2, &[0.5, 0.5], ProbKind::Probs).is_err());
    }

    #[test]
    fn errors_name_the_first_bad_frame_and_class() {
        let mut p = vec![0.5; 8];
        for (bad, want) in [
            (f64::NAN, "frame 2, class 1: NaN"),
            (f64::INFINITY, "frame 2, class 1: inf"),
            (-0.5, "frame 2, class 1: -0.5"),
            (f64::NEG_INFINITY, "frame 2, class 1: -inf"),
            (1.5, "frame 2, class 1: 1.5"),
        ] {
            p[5] = bad;
            for kind in [ProbKind::Auto, ProbKind::Probs] {
                let e = FrameScores::new(4, 2, &p, kind).unwrap_err().to_string();
                assert!(e.contains(want), "{bad} {kind:?}: {e}");
            }
        }
        let e = FrameScores::new(2, 2, &[0.5, 0.5, 0.5, 0.6], ProbKind::Auto).unwrap_err();
        assert!(
            e.to_string().contains("probabilities: frame 1 sums to 1.1"),
            "{e}"
        );
        let l = [0.5f64.ln(), 0.5f64.ln(), -1.0, -1.0];
        let e = FrameScores::new(2, 2, &l, ProbKind::Auto).unwrap_err();
        assert!(
            e.to_string().contains("frame 1: exponentials sum to 0.73"),
            "{e}"
        );
        let e = FrameScores::new(2, 2, &[0.0; 4], ProbKind::Auto).unwrap_err();
        assert!(e.to_string().contains("frame 0 sums to 0, not 1"), "{e}");
        let e = FrameScores::new(1, 2, &[1e-40, 0.0], ProbKind::Auto).unwrap_err();
        assert!(e.to_string().contains("sums to 1e-40"), "{e}");
        // Only the frame that breaks the reading the earlier frames fit is named.
        let e = FrameScores::new(4, 2, &p, ProbKind::Auto)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("not a distribution: probabilities: frame 2, class 1"),
            "{e}"
        );
        let mut l = vec![0.5f64.ln(); 8];
        l[3] = 0.5;
        let e = FrameScores::new(4, 2, &l, ProbKind::Auto)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("log-probabilities: frame 1, class 1: 0.5 is positive"),
            "{e}"
        );
        assert!(!e.contains("frame 0"), "{e}");
        // One class of log-probability 0 is a distribution.
        assert!(FrameScores::new(2, 1, &[0.0, 0.0], ProbKind::Auto).is_ok());
    }

    #[test]
    fn grid_step_leaves_a_step_per_segment() {
        assert_eq!(grid_step(2838, 30, 3), 30);
        assert_eq!(grid_step(2838, 1000, 3), 946);
        assert_eq!(grid_step(2838, 0, 3), 1);
        assert_eq!(grid_step(2, 30, 3), 1);
    }

    #[test]
    fn prior_and_cumsums() {
        let s = FrameScores::new(3, 2, &[0.5, 0.5, 0.2, 0.8, 0.9, 0.1], ProbKind::Probs)
            .unwrap()
            .with_prior(&[0.5, 0.5])
            .unwrap();
        let c = s.cumsum_at(1, &grid(3, 2));
        assert_eq!(c.len(), 3);
        let want = [0.0, 0.5f64.ln() + 0.8f64.ln() + 2.0 * 2f64.ln(), 0.0];
        assert!((c[1] - want[1]).abs() < 1e-12);
        assert!((c[2] - (want[1] + 0.1f64.ln() + 2f64.ln())).abs() < 1e-12);
        assert!(s.with_prior(&[1.0]).is_err());
    }

    #[test]
    fn grid_cums_match_cumsum_at_sparse_and_dense() {
        let mut v = Vec::new();
        for t in 0..23 {
            let row: Vec<f64> = (0..8).map(|c| 1.0 + ((t * 7 + c * 3) % 5) as f64).collect();
            let sum: f64 = row.iter().sum();
            v.extend(row.iter().map(|x| x / sum));
        }
        let s = FrameScores::new(23, 8, &v, ProbKind::Probs).unwrap();
        let g = grid(23, 5);
        for classes in [&[3usize, 3, 6][..], &[0, 1, 2, 3, 4, 5, 6, 7]] {
            let gc = s.grid_cums(&g, classes);
            assert_eq!(gc.units(), 5);
            for &c in classes {
                let want = s.cumsum_at(c, &g);
                for (a, b) in gc.row(c).iter().zip(&want) {
                    assert!((a - b).abs() < 1e-12);
                }
            }
        }
        assert!(!s.grid_cums(&g, &[1]).holds(2));
    }

    /// The blocked passes: classes not a multiple of the block, several gather blocks, odd
    /// chunk lengths (a row left over after the pairs), a short last chunk.
    #[test]
    fn grid_cums_blocks_and_remainders() {
        let (t, c) = (211, 37);
        let mut v = Vec::new();
        for f in 0..t {
            let row: Vec<f64> = (0..c)
                .map(|k| 1.0 + ((f * 11 + k * 5) % 7) as f64)
                .collect();
            let sum: f64 = row.iter().sum();
            v.extend(row.iter().map(|x| x / sum));
        }
        let s = FrameScores::new(t, c, &v, ProbKind::Probs).unwrap();
        let all: Vec<usize> = (0..c).rev().collect();
        let some = [36, 2, 9, 9, 17, 30, 1, 4, 22, 11];
        for step in [1, 2, 7, 30] {
            let g = grid(t, step);
            for classes in [&all[..], &some[..], &[5]] {
                let gc = s.grid_cums(&g, classes);
                for &k in classes {
                    let want = s.cumsum_at(k, &g);
                    for (a, b) in gc.row(k).iter().zip(&want) {
                        assert!((a - b).abs() < 1e-10, "step {step} class {k}: {a} vs {b}");
                    }
                }
            }
        }
    }
}
