//! [`Dataset`]: inputs `[n, p]` (row-major `f32`) and targets, validated once on construction.
use crate::error::{BayesError, Result};
use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};

/// Regression values or class labels.
#[derive(Clone, Debug, PartialEq)]
pub enum Targets {
    /// One real value per row.
    Values(Vec<f32>),
    /// One class id per row, in `0..classes`.
    Labels(Vec<u32>),
}

/// A validated data set.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// Rows.
    pub n: usize,
    /// Inputs per row.
    pub p: usize,
    /// Inputs, row-major `[n, p]`.
    pub x: Vec<f32>,
    /// Targets, one per row.
    pub targets: Targets,
}

impl Dataset {
    /// A data set; errors on shape mismatch, non-finite values, or labels `>= classes`
    /// (`classes` is only checked for [`Targets::Labels`]).
    pub fn new(n: usize, p: usize, x: Vec<f32>, targets: Targets, classes: usize) -> Result<Self> {
        if n == 0 || p == 0 {
            return Err(BayesError::Data(format!(
                "empty data set ({n} rows, {p} inputs)"
            )));
        }
        if n.checked_mul(p) != Some(x.len()) {
            return Err(BayesError::Data(format!(
                "{} input values for {n} x {p}",
                x.len()
            )));
        }
        if let Some(i) = x.iter().position(|v| !v.is_finite()) {
            return Err(BayesError::Data(format!(
                "non-finite input at row {}, column {} (0-based)",
                i / p,
                i % p
            )));
        }
        match &targets {
            Targets::Values(v) => {
                if v.len() != n {
                    return Err(BayesError::Data(format!(
                        "{} targets for {n} rows",
                        v.len()
                    )));
                }
                if let Some(i) = v.iter().position(|v| !v.is_finite()) {
                    return Err(BayesError::Data(format!(
                        "non-finite target at row {i} (0-based)"
                    )));
                }
            }
            Targets::Labels(l) => {
                if l.len() != n {
                    return Err(BayesError::Data(format!("{} labels for {n} rows", l.len())));
                }
                if let Some(i) = l.iter().position(|&c| c as usize >= classes) {
                    return Err(BayesError::Data(format!(
                        "label {} at row {i} is not in 0..{classes}",
                        l[i]
                    )));
                }
            }
        }
        Ok(Self { n, p, x, targets })
    }

    /// The inputs as a `[n, p]` tensor.
    pub fn x_tensor(&self, dtype: DType) -> Result<Tensor> {
        Ok(Tensor::from_slice(&self.x, (self.n, self.p), &Device::Cpu)?.to_dtype(dtype)?)
    }

    /// Rows `idx` of the inputs as a tensor.
    pub fn rows(&self, idx: &[usize], dtype: DType) -> Result<Tensor> {
        let mut b = Vec::with_capacity(idx.len() * self.p);
        for &i in idx {
            b.extend_from_slice(&self.x[i * self.p..(i + 1) * self.p]);
        }
        Ok(Tensor::from_vec(b, (idx.len(), self.p), &Device::Cpu)?.to_dtype(dtype)?)
    }
}

/// Per-column mean and standard deviation, to standardise inputs (and a regression target).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Standardizer {
    /// Column means.
    pub mean: Vec<f64>,
    /// Column standard deviations (1 where a column is constant).
    pub std: Vec<f64>,
}

impl Standardizer {
    /// Fit on row-major `[n, p]` values.
    pub fn fit(x: &[f32], n: usize, p: usize) -> Self {
        let mut mean = vec![0.0; p];
        let mut sq = vec![0.0; p];
        for r in x.chunks_exact(p) {
            for (j, &v) in r.iter().enumerate() {
                mean[j] += v as f64;
                sq[j] += (v as f64) * (v as f64);
            }
        }
        let nf = n.max(1) as f64;
        let std = (0..p)
            .map(|j| {
                mean[j] /= nf;
                let v = (sq[j] / nf - mean[j] * mean[j]).max(0.0).sqrt();
                if v > 1e-12 {
                    v
                } else {
                    1.0
                }
            })
            .collect();
        Self { mean, std }
    }

    /// Checks a standardiser (e.g. one read from a model's description) for `columns` columns:
    /// one mean and one standard deviation per column, finite means, standard deviations
    /// positive and finite.
    pub fn check(&self, columns: usize) -> Result<()> {
        let bad = |msg: String| Err(BayesError::Model(format!("input standardisation: {msg}")));
        if self.mean.len() != columns || self.std.len() != columns {
            return bad(format!(
                "{} means and {} standard deviations for {columns} columns",
                self.mean.len(),
                self.std.len()
            ));
        }
        if let Some(j) = self.mean.iter().position(|m| !m.is_finite()) {
            return bad(format!("mean {} of column {j} is not finite", self.mean[j]));
        }
        if let Some(j) = self.std.iter().position(|s| !(*s > 0.0 && s.is_finite())) {
            return bad(format!(
                "standard deviation {} of column {j} is not positive and finite",
                self.std[j]
            ));
        }
        Ok(())
    }

    /// Standardise row-major values in place; errors (changing nothing) when the standardiser
    /// is not valid ([`Standardizer::check`]) for whole rows of its columns.
    pub fn apply(&self, x: &mut [f32]) -> Result<()> {
        let p = self.mean.len();
        self.check(p)?;
        if p == 0 || !x.len().is_multiple_of(p) {
            return Err(BayesError::Data(format!(
                "{} values are not whole rows of {p} columns",
                x.len()
            )));
        }
        for r in x.chunks_exact_mut(p) {
            for (j, v) in r.iter_mut().enumerate() {
                *v = ((*v as f64 - self.mean[j]) / self.std[j]) as f32;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_standardiser_is_an_error_not_a_panic() {
        let short = Standardizer {
            mean: vec![0.0; 3],
            std: vec![1.0],
        };
        let mut x = vec![1.0f32; 6];
        let e = short.apply(&mut x).unwrap_err().to_string();
        assert!(
            e.contains("3 means and 1 standard deviations for 3 columns"),
            "{e}"
        );
        assert_eq!(x, vec![1.0; 6], "nothing changed");
        let zero = Standardizer {
            mean: vec![0.0; 2],
            std: vec![1.0, 0.0],
        };
        let e = zero.check(2).unwrap_err().to_string();
        assert!(e.contains("standard deviation 0 of column 1"), "{e}");
        let ok = Standardizer {
            mean: vec![1.0, 2.0],
            std: vec![2.0, 4.0],
        };
        assert!(ok.check(3).is_err());
        let mut x = vec![3.0f32, 6.0, 1.0];
        assert!(ok.apply(&mut x).is_err(), "not whole rows");
        let mut x = vec![3.0f32, 6.0];
        ok.apply(&mut x).unwrap();
        assert_eq!(x, vec![1.0, 1.0]);
    }
}
