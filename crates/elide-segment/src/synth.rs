//! Synthetic datasets calibrated to Breakfast's statistics, for benchmarks without real
//! features: 48 classes with background (`SIL`), 10 activities with scripted step orders
//! (steps dropped or swapped per video), about 6 segments per video, per-class log-normal
//! lengths, videos of 300 to 10,000 frames. Frame-wise probabilities come from a noisy
//! classifier model: the true class gets `signal` logits, a per-class confuser a fraction
//! `confusion` of it, boundaries are blurred over `blur` frames, and temporally correlated
//! Gaussian noise of std `noise` is added before the softmax.
use crate::error::{Result, SegError};
use crate::labels::Mapping;
use crate::npy;
use crate::rng::Rng;
use crate::segments::{from_frames, from_lengths, to_frames};
use std::path::Path;

/// Generator settings.
#[derive(Clone, Debug)]
pub struct SynthConfig {
    /// Videos to generate.
    pub videos: usize,
    /// Fraction of the videos in the training split.
    pub train_fraction: f64,
    /// Seed.
    pub seed: u64,
    /// Logit of the true class.
    pub signal: f64,
    /// Std of the logit noise.
    pub noise: f64,
    /// Noise correlation time, in frames.
    pub noise_frames: f64,
    /// Logit of the confused class, as a fraction of `signal`.
    pub confusion: f64,
    /// Boundary blur (sigmoid scale), in frames.
    pub blur: f64,
    /// Shortest and longest video, in frames.
    pub frames: (usize, usize),
}

impl Default for SynthConfig {
    fn default() -> Self {
        Self {
            videos: 40,
            train_fraction: 0.5,
            seed: 1,
            signal: 3.0,
            noise: 1.5,
            noise_frames: 15.0,
            confusion: 0.7,
            blur: 15.0,
            frames: (300, 10_000),
        }
    }
}

/// Classes, including background 0.
pub const CLASSES: usize = 48;
const ACTIVITIES: [&str; 10] = [
    "coffee",
    "cereals",
    "tea",
    "milk",
    "juice",
    "sandwich",
    "scrambledegg",
    "friedegg",
    "salat",
    "pancake",
];

/// One generated video.
#[derive(Clone, Debug)]
pub struct SynthVideo {
    /// Name, Breakfast-like (`S0007_tea`).
    pub name: String,
    /// Frame-wise ground truth.
    pub gt: Vec<usize>,
    /// Log-probabilities, `T x C` row-major.
    pub log_probs: Vec<f32>,
}

impl SynthVideo {
    /// Frames.
    pub fn frames(&self) -> usize {
        self.gt.len()
    }

    /// The ground-truth transcript.
    pub fn transcript(&self) -> Vec<usize> {
        from_frames(&self.gt).iter().map(|s| s.label).collect()
    }
}

/// A generated dataset.
#[derive(Clone, Debug)]
pub struct SynthDataset {
    /// Class names (`SIL`, `action_01`, ...).
    pub mapping: Mapping,
    /// Mean length of each class that generated the data.
    pub class_means: Vec<f64>,
    /// All videos; the first `train` are the training split.
    pub videos: Vec<SynthVideo>,
    /// Videos in the training split.
    pub train: usize,
}

impl SynthDataset {
    /// Training videos.
    pub fn train(&self) -> &[SynthVideo] {
        &self.videos[..self.train]
    }

    /// Test videos.
    pub fn test(&self) -> &[SynthVideo] {
        &self.videos[self.train..]
    }
}

/// Generates a dataset.
pub fn generate(cfg: &SynthConfig) -> Result<SynthDataset> {
    check(cfg)?;
    let mut rng = Rng::new(cfg.seed);
    let mut names = vec!["SIL".to_string()];
    names.extend((1..CLASSES).map(|i| format!("action_{i:02}")));
    let mapping = Mapping::new(names)?;
    // Background is short; actions have a median near 400 frames and vary by class.
    let mut class_means = vec![120.0];
    class_means.extend((1..CLASSES).map(|_| rng.lognormal(450.0, 0.7).clamp(60.0, 2500.0)));
    // Each activity: a script of 4 to 7 steps; some actions are shared between activities.
    let scripts: Vec<Vec<usize>> = ACTIVITIES
        .iter()
        .map(|_| {
            let n = 4 + rng.below(4);
            let mut s = Vec::with_capacity(n);
            while s.len() < n {
                let c = 1 + rng.below(CLASSES - 1);
                if !s.contains(&c) {
                    s.push(c);
                }
            }
            s
        })
        .collect();
    // The class each class is most often mistaken for: another step of an activity it is in.
    let confuser: Vec<usize> = (0..CLASSES)
        .map(|c| {
            let pool: Vec<usize> = scripts
                .iter()
                .filter(|s| s.contains(&c))
                .flatten()
                .copied()
                .filter(|&o| o != c)
                .collect();
            if pool.is_empty() {
                1 + (c % (CLASSES - 1))
            } else {
                pool[rng.below(pool.len())]
            }
        })
        .collect();
    let mut videos = Vec::with_capacity(cfg.videos);
    // Videos outside `frames` are drawn again; a range that (almost) none reaches is an
    // error, not an endless loop.
    let mut tries = 0usize;
    while videos.len() < cfg.videos {
        tries += 1;
        if tries > MAX_TRIES_PER_VIDEO * cfg.videos {
            return Err(SegError::Invalid(format!(
                "synthetic videos: {} of {} drawn in {} tries within frames {}..={}; \
                 widen the range (generated videos are about 300 to 10,000 frames)",
                videos.len(),
                cfg.videos,
                tries - 1,
                cfg.frames.0,
                cfg.frames.1
            )));
        }
        let a = rng.below(ACTIVITIES.len());
        let mut steps: Vec<usize> = scripts[a]
            .iter()
            .copied()
            .filter(|_| rng.uniform() > 0.2)
            .collect();
        if steps.len() < 2 {
            steps = scripts[a][..2].to_vec();
        }
        for i in 1..steps.len() {
            if rng.uniform() < 0.1 {
                steps.swap(i - 1, i);
            }
        }
        let mut transcript = vec![0];
        transcript.extend(&steps);
        transcript.push(0);
        let speed = rng.lognormal(1.0, 0.4);
        let lengths: Vec<usize> = transcript
            .iter()
            .map(|&c| (rng.lognormal(class_means[c] * speed, 0.5).round() as usize).max(8))
            .collect();
        let t: usize = lengths.iter().sum();
        if t < cfg.frames.0 || t > cfg.frames.1 {
            continue;
        }
        let gt = to_frames(&from_lengths(&transcript, &lengths)?);
        let log_probs = classifier(&gt, &confuser, cfg, &mut rng);
        videos.push(SynthVideo {
            name: format!("S{:04}_{}", videos.len(), ACTIVITIES[a]),
            gt,
            log_probs,
        });
    }
    let train =
        ((cfg.videos as f64 * cfg.train_fraction).round() as usize).clamp(1, cfg.videos - 1);
    Ok(SynthDataset {
        mapping,
        class_means,
        videos,
        train,
    })
}

/// Draws per video before [`generate`] gives up on the frame range.
const MAX_TRIES_PER_VIDEO: usize = 1000;

/// The settings in range; the error names the field and its value.
fn check(cfg: &SynthConfig) -> Result<()> {
    let bad = |msg: String| Err(SegError::Invalid(format!("synthetic config: {msg}")));
    if cfg.videos < 2 {
        return bad(format!(
            "videos must be at least 2 (a training and a test video), got {}",
            cfg.videos
        ));
    }
    let (lo, hi) = cfg.frames;
    if lo < 10 || lo >= hi {
        return bad(format!(
            "frames must be (min, max) with 10 <= min < max, got ({lo}, {hi})"
        ));
    }
    if !(0.0..=1.0).contains(&cfg.train_fraction) {
        return bad(format!(
            "train_fraction must be in [0, 1], got {}",
            cfg.train_fraction
        ));
    }
    for (name, v) in [("signal", cfg.signal), ("confusion", cfg.confusion)] {
        if !v.is_finite() {
            return bad(format!("{name} must be finite, got {v}"));
        }
    }
    if !(cfg.noise.is_finite() && cfg.noise >= 0.0) {
        return bad(format!(
            "noise must be non-negative and finite, got {}",
            cfg.noise
        ));
    }
    for (name, v) in [("noise_frames", cfg.noise_frames), ("blur", cfg.blur)] {
        if !(v.is_finite() && v > 0.0) {
            return bad(format!("{name} must be positive and finite, got {v}"));
        }
    }
    Ok(())
}

/// Frame-wise log-probabilities of a noisy classifier for ground truth `gt`.
fn classifier(gt: &[usize], confuser: &[usize], cfg: &SynthConfig, rng: &mut Rng) -> Vec<f32> {
    let t = gt.len();
    let segs = from_frames(gt);
    let rho = (-1.0 / cfg.noise_frames).exp();
    let innov = cfg.noise * (1.0 - rho * rho).sqrt();
    let mut noise: Vec<f64> = (0..CLASSES).map(|_| cfg.noise * rng.normal()).collect();
    let mut out = Vec::with_capacity(t * CLASSES);
    let mut logit = vec![0.0; CLASSES];
    let mut seg = 0;
    for f in 0..t {
        while segs[seg].end <= f {
            seg += 1;
        }
        for (l, n) in logit.iter_mut().zip(&mut noise) {
            *n = rho * *n + innov * rng.normal();
            *l = *n;
        }
        // Blur: near a boundary the evidence fades into the neighbouring segment's class.
        let x = f as f64 + 0.5;
        let mut add = |c: usize, w: f64| {
            logit[c] += w * cfg.signal;
            logit[confuser[c]] += w * cfg.signal * cfg.confusion;
        };
        let s = &segs[seg];
        let w_prev = if seg > 0 {
            sigmoid((s.start as f64 - x) / cfg.blur)
        } else {
            0.0
        };
        let w_next = if seg + 1 < segs.len() {
            sigmoid((x - s.end as f64) / cfg.blur)
        } else {
            0.0
        };
        add(s.label, 1.0 - w_prev - w_next);
        if seg > 0 {
            add(segs[seg - 1].label, w_prev);
        }
        if seg + 1 < segs.len() {
            add(segs[seg + 1].label, w_next);
        }
        let mx = logit.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let lse = mx + logit.iter().map(|l| (l - mx).exp()).sum::<f64>().ln();
        out.extend(logit.iter().map(|l| (l - lse) as f32));
    }
    out
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Writes the dataset in the MS-TCN layout under `root`: `mapping.txt`, `groundTruth/`,
/// `features/` (the log-probabilities as `C x T` features), `probs/` (`T x C`
/// probabilities), `splits/train.split1.bundle` and `splits/test.split1.bundle`.
pub fn write(ds: &SynthDataset, root: &Path) -> Result<()> {
    for d in ["groundTruth", "features", "probs", "splits"] {
        let p = root.join(d);
        std::fs::create_dir_all(&p).map_err(|e| SegError::io(&p, e))?;
    }
    let put =
        |path: &Path, text: String| std::fs::write(path, text).map_err(|e| SegError::io(path, e));
    let mapping: String = ds
        .mapping
        .names()
        .iter()
        .enumerate()
        .map(|(i, n)| format!("{i} {n}\n"))
        .collect();
    put(&root.join("mapping.txt"), mapping)?;
    for v in &ds.videos {
        let gt: String =
            v.gt.iter()
                .map(|&c| format!("{}\n", ds.mapping.name(c)))
                .collect();
        put(
            &root.join("groundTruth").join(format!("{}.txt", v.name)),
            gt,
        )?;
        let t = v.frames();
        let mut feat = vec![0f32; t * CLASSES];
        for (f, row) in v.log_probs.chunks_exact(CLASSES).enumerate() {
            for (c, &lp) in row.iter().enumerate() {
                feat[c * t + f] = lp;
            }
        }
        npy::write_f32(
            &root.join("features").join(format!("{}.npy", v.name)),
            &[CLASSES, t],
            &feat,
        )?;
        let probs: Vec<f32> = v.log_probs.iter().map(|l| l.exp()).collect();
        npy::write_f32(
            &root.join("probs").join(format!("{}.npy", v.name)),
            &[t, CLASSES],
            &probs,
        )?;
    }
    let list = |vs: &[SynthVideo]| vs.iter().map(|v| format!("{}.txt\n", v.name)).collect();
    put(&root.join("splits/train.split1.bundle"), list(ds.train()))?;
    put(&root.join("splits/test.split1.bundle"), list(ds.test()))?;
    Ok(())
}
