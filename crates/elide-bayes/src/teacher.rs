//! The teacher-student experiment: the truth is a sparse ReLU network (the teacher) that reads
//! only the first few of `p` inputs; a spike-and-slab student is fitted for growing `p`, and
//! its test error should grow only logarithmically with `p` (the papers' rates depend on the
//! input dimension through `log p`).
use crate::data::{Dataset, Targets};
use crate::error::{BayesError, Result};
use crate::net::{Arch, MAX_ELEMENTS};
use crate::rng::Rng;
use crate::search::{fit_structure, FitSettings};
use crate::simulate::{evaluate, Scores};
use crate::train::TrainConfig;
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// A sparse ReLU teacher on `relevant` inputs, scaled so that its output has standard deviation
/// `signal_sd` over `U(-1, 1)` inputs.
#[derive(Clone, Debug, Serialize)]
pub struct Teacher {
    /// The number of inputs it reads (the first ones).
    pub relevant: usize,
    /// Per layer: weights `[inputs, outputs]` (row-major, zeros where an edge is absent) and
    /// biases.
    pub layers: Vec<(Vec<f64>, Vec<f64>)>,
    /// Layer sizes, inputs first.
    pub sizes: Vec<usize>,
    /// Output scale.
    pub scale: f64,
    /// Output offset (the teacher's mean is 0).
    pub offset: f64,
}

impl Teacher {
    /// A random teacher: each edge present with probability `edge_density` (every unit keeps at
    /// least one input), weights `±U(0.5, 1.5)`, biases `U(-0.5, 0.5)`.
    pub fn new(
        relevant: usize,
        hidden: &[usize],
        edge_density: f64,
        signal_sd: f64,
        seed: u64,
    ) -> Result<Self> {
        let bad = |msg: String| Err(BayesError::Config(format!("teacher: {msg}")));
        if relevant == 0 {
            return bad("relevant inputs must be at least 1, got 0".into());
        }
        if let Some(i) = hidden.iter().position(|&w| w == 0) {
            return bad(format!("hidden layer {} has width 0", i + 1));
        }
        if !(edge_density > 0.0 && edge_density <= 1.0) {
            return bad(format!(
                "edge density must be in (0, 1], got {edge_density}"
            ));
        }
        if !(signal_sd > 0.0 && signal_sd.is_finite()) {
            return bad(format!(
                "output sd must be positive and finite, got {signal_sd}"
            ));
        }
        Arch {
            inputs: relevant,
            hidden: hidden.to_vec(),
            outputs: 1,
            conv: None,
        }
        .check()?;
        let mut rng = Rng::new(seed);
        let mut sizes = vec![relevant];
        sizes.extend(hidden);
        sizes.push(1);
        let mut layers = Vec::new();
        for w in sizes.windows(2) {
            let (i, o) = (w[0], w[1]);
            let mut wt = vec![0.0; i * o];
            for u in 0..o {
                let forced = (rng.next_u64() % i as u64) as usize;
                for k in 0..i {
                    if k == forced || rng.uniform() < edge_density {
                        let sign = if rng.uniform() < 0.5 { -1.0 } else { 1.0 };
                        wt[k * o + u] = sign * rng.range(0.5, 1.5);
                    }
                }
            }
            let b = (0..o).map(|_| rng.range(-0.5, 0.5)).collect();
            layers.push((wt, b));
        }
        let mut t = Self {
            relevant,
            layers,
            sizes,
            scale: 1.0,
            offset: 0.0,
        };
        // Standardise on a fixed sample.
        let mut r = Rng::new(seed ^ 0x7EAC);
        let f: Vec<f64> = (0..20_000)
            .map(|_| {
                let x: Vec<f64> = (0..relevant).map(|_| r.range(-1.0, 1.0)).collect();
                t.eval(&x)
            })
            .collect();
        let m = f.iter().sum::<f64>() / f.len() as f64;
        let sd = (f.iter().map(|v| (v - m).powi(2)).sum::<f64>() / f.len() as f64).sqrt();
        if sd.is_nan() || sd <= 1e-9 {
            return Err(BayesError::Config(
                "teacher: constant output (dead units); try another seed".into(),
            ));
        }
        t.offset = -m * signal_sd / sd;
        t.scale = signal_sd / sd;
        Ok(t)
    }

    /// The teacher's output for inputs `x` (it reads the first `relevant`; NaN when `x` is
    /// shorter).
    pub fn eval(&self, x: &[f64]) -> f64 {
        let Some(x) = x.get(..self.relevant) else {
            return f64::NAN;
        };
        let mut h = x.to_vec();
        let last = self.layers.len() - 1;
        for (li, (w, b)) in self.layers.iter().enumerate() {
            let o = b.len();
            let mut next = b.clone();
            for (k, &v) in h.iter().enumerate() {
                for (u, n) in next.iter_mut().enumerate() {
                    *n += v * w[k * o + u];
                }
            }
            if li < last {
                next.iter_mut().for_each(|v| *v = v.max(0.0));
            }
            h = next;
        }
        h[0] * self.scale + self.offset
    }

    /// `n` points with `p >= relevant` inputs `U(-1, 1)` and `y = teacher(x) + noise * eps`.
    pub fn generate(&self, n: usize, p: usize, noise: f64, rng: &mut Rng) -> Result<Dataset> {
        if p < self.relevant {
            return Err(BayesError::Config(format!(
                "{p} inputs, the teacher reads {}",
                self.relevant
            )));
        }
        if n.checked_mul(p).is_none_or(|v| v > MAX_ELEMENTS) {
            return Err(BayesError::Config(format!(
                "{n} points of {p} inputs: more than 2^31 = {MAX_ELEMENTS} values"
            )));
        }
        let mut x = Vec::with_capacity(n * p);
        let mut y = Vec::with_capacity(n);
        for _ in 0..n {
            let r: Vec<f64> = (0..p).map(|_| rng.range(-1.0, 1.0)).collect();
            y.push((self.eval(&r) + noise * rng.normal()) as f32);
            x.extend(r.iter().map(|&v| v as f32));
        }
        Dataset::new(n, p, x, Targets::Values(y), 0)
    }
}

/// Settings of the experiment.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TeacherConfig {
    /// Input dimensions to try.
    pub dims: Vec<usize>,
    /// Inputs the teacher reads.
    pub relevant: usize,
    /// The teacher's hidden widths.
    pub teacher_hidden: Vec<usize>,
    /// Probability of each teacher edge.
    pub edge_density: f64,
    /// Standard deviation of the teacher's output.
    pub signal_sd: f64,
    /// Noise standard deviation (the RMSE floor).
    pub noise: f64,
    /// The student's hidden widths.
    pub student_hidden: Vec<usize>,
    /// Training points.
    pub n_train: usize,
    /// Test points.
    pub n_test: usize,
    /// Slab standard deviation.
    pub sigma0: f64,
    /// `delta` of the theory's `lambda`.
    pub delta: f64,
    /// Monte Carlo samples for prediction.
    pub samples: usize,
    /// Optimisation.
    pub train: TrainConfig,
    /// Seed of the teacher (the same teacher for every `p` and replicate).
    pub teacher_seed: u64,
}

impl Default for TeacherConfig {
    fn default() -> Self {
        Self {
            dims: vec![100, 200, 500, 1000, 2000],
            relevant: 5,
            teacher_hidden: vec![4, 4],
            edge_density: 0.6,
            signal_sd: 2.0,
            noise: 1.0,
            student_hidden: vec![8, 8],
            n_train: 3000,
            n_test: 10_000,
            sigma0: 1.3,
            delta: 0.1,
            samples: 30,
            train: TrainConfig {
                epochs: 2000,
                ..TrainConfig::default()
            },
            teacher_seed: 11,
        }
    }
}

/// One fitted student.
#[derive(Clone, Debug, Serialize)]
pub struct TeacherPoint {
    /// Input dimension.
    pub p: usize,
    /// Replicate (seeds the data and the student).
    pub replicate: usize,
    /// Test RMSE, selection, density.
    pub scores: Scores,
    /// `test MSE - noise^2`: the error above the floor.
    pub excess_mse: f64,
    /// The student's theory `lambda`.
    pub lambda: f64,
    /// Seconds to fit and score.
    pub seconds: f64,
}

/// Fit the student for input dimension `p`, replicate `replicate`.
pub fn run_point(
    cfg: &TeacherConfig,
    teacher: &Teacher,
    p: usize,
    replicate: usize,
) -> Result<TeacherPoint> {
    let t0 = Instant::now();
    let mut rng = Rng::new(0x7EAC_4E00 ^ ((p as u64) << 20) ^ replicate as u64);
    let train_set = teacher.generate(cfg.n_train, p, cfg.noise, &mut rng)?;
    let test_set = teacher.generate(cfg.n_test, p, cfg.noise, &mut rng)?;
    let settings =
        FitSettings::known_noise(cfg.noise, cfg.sigma0, cfg.delta, cfg.train, 1, &mut rng);
    let seed = settings.seed;
    let arch = Arch {
        inputs: p,
        hidden: cfg.student_hidden.clone(),
        outputs: 1,
        conv: None,
    };
    let (net, _, lambda) = fit_structure(&train_set, arch, &settings, |_| {})?;
    let relevant: Vec<usize> = (0..cfg.relevant).collect();
    let scores = evaluate(&net, &train_set, &test_set, &relevant, cfg.samples, seed)?;
    Ok(TeacherPoint {
        p,
        replicate,
        excess_mse: scores.rmse.powi(2) - cfg.noise.powi(2),
        scores,
        lambda,
        seconds: t0.elapsed().as_secs_f64(),
    })
}

/// Least-squares line `y = a + b x`: `(a, b, R^2)`.
pub fn line_fit(x: &[f64], y: &[f64]) -> (f64, f64, f64) {
    let n = x.len() as f64;
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let sxy: f64 = x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum();
    let sxx: f64 = x.iter().map(|a| (a - mx).powi(2)).sum();
    let syy: f64 = y.iter().map(|b| (b - my).powi(2)).sum();
    let b = if sxx > 0.0 { sxy / sxx } else { 0.0 };
    let r2 = if sxx > 0.0 && syy > 0.0 {
        sxy * sxy / (sxx * syy)
    } else {
        0.0
    };
    (my - b * mx, b, r2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn teacher_reads_only_its_inputs_and_is_standardised() {
        let t = Teacher::new(3, &[4, 4], 0.6, 2.0, 5).unwrap();
        let mut r = Rng::new(1);
        let d = t.generate(4000, 10, 0.0, &mut r).unwrap();
        let Targets::Values(y) = &d.targets else {
            unreachable!()
        };
        let m = y.iter().map(|&v| v as f64).sum::<f64>() / y.len() as f64;
        let sd = (y.iter().map(|&v| (v as f64 - m).powi(2)).sum::<f64>() / y.len() as f64).sqrt();
        assert!(
            m.abs() < 0.15 && (sd - 2.0).abs() < 0.15,
            "mean {m} sd {sd}"
        );
        // Changing the inputs it does not read changes nothing.
        let x: Vec<f64> = (0..10).map(|i| i as f64 / 10.0 - 0.5).collect();
        let mut x2 = x.clone();
        x2[3..].iter_mut().for_each(|v| *v = -*v);
        assert_eq!(t.eval(&x), t.eval(&x2));
        assert!(t.generate(5, 2, 1.0, &mut r).is_err());
        let e = Teacher::new(0, &[4], 0.5, 1.0, 1).unwrap_err().to_string();
        assert!(
            e.contains("relevant inputs must be at least 1, got 0"),
            "{e}"
        );
        let e = Teacher::new(3, &[4, 0], 0.5, 1.0, 1)
            .unwrap_err()
            .to_string();
        assert!(e.contains("hidden layer 2 has width 0"), "{e}");
        let e = Teacher::new(3, &[1 << 40], 0.5, 1.0, 1)
            .unwrap_err()
            .to_string();
        assert!(e.contains("2^31"), "{e}");
        let e = t
            .generate(1 << 20, 1 << 20, 1.0, &mut r)
            .unwrap_err()
            .to_string();
        assert!(e.contains("more than 2^31"), "{e}");
        assert!(Teacher::new(3, &[4], 0.5, f64::NAN, 1).is_err());
        assert!(Teacher::new(3, &[4], 0.5, -1.0, 1).is_err());
        assert!(t.eval(&[0.1]).is_nan());
    }

    #[test]
    fn line_fit_recovers_a_line() {
        let x = [1.0, 2.0, 3.0, 4.0];
        let y: Vec<f64> = x.iter().map(|v| 0.5 + 2.0 * v).collect();
        let (a, b, r2) = line_fit(&x, &y);
        assert!((a - 0.5).abs() < 1e-12 && (b - 2.0).abs() < 1e-12 && (r2 - 1.0).abs() < 1e-12);
    }
}
