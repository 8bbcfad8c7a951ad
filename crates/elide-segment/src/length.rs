//! The length model: a mean length per class, scored as a Poisson (exact decoders) or as the
//! target of FIFA's L1 length term.
use crate::error::{Result, SegError};
use crate::labels::Mapping;
use crate::segments::from_frames;
use std::path::Path;

/// Mean segment length (frames) per class.
#[derive(Clone, Debug, PartialEq)]
pub struct LengthModel {
    means: Vec<f64>,
}

impl LengthModel {
    /// Means per class id; each must be finite and positive.
    pub fn new(means: Vec<f64>) -> Result<Self> {
        if means.is_empty() {
            return Err(SegError::Invalid("length model without classes".into()));
        }
        if let Some(c) = means.iter().position(|m| !(m.is_finite() && *m > 0.0)) {
            return Err(SegError::Invalid(format!(
                "mean length of class {c} is {}, must be positive and finite",
                means[c]
            )));
        }
        Ok(Self { means })
    }

    /// The same mean for every class.
    pub fn uniform(classes: usize, mean: f64) -> Result<Self> {
        Self::new(vec![mean; classes])
    }

    /// Mean segment lengths per class from frame-wise ground truth; a class never seen gets
    /// the mean over all segments.
    pub fn from_ground_truth<'a>(
        videos: impl IntoIterator<Item = &'a [usize]>,
        classes: usize,
    ) -> Result<Self> {
        let (mut sum, mut count) = (vec![0.0; classes], vec![0usize; classes]);
        for v in videos {
            for s in from_frames(v) {
                if s.label >= classes {
                    return Err(SegError::UnknownLabel(format!("class id {}", s.label)));
                }
                sum[s.label] += s.len() as f64;
                count[s.label] += 1;
            }
        }
        let total: usize = count.iter().sum();
        if total == 0 {
            return Err(SegError::Invalid("no ground truth segments".into()));
        }
        let overall = sum.iter().sum::<f64>() / total as f64;
        Self::new(
            sum.iter()
                .zip(&count)
                .map(|(s, &n)| if n > 0 { s / n as f64 } else { overall })
                .collect(),
        )
    }

    /// Reads a lengths file: one "name mean" per line (names from `mapping`), or one mean per
    /// line in class-id order. Errors name the file and the 1-based line.
    pub fn read(path: &Path, mapping: &Mapping) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| SegError::io(path, e))?;
        let perr = |line: usize, msg: String| SegError::Parse {
            path: path.to_path_buf(),
            line,
            msg,
        };
        // Per class: the mean and the line it came from.
        let mut named: Vec<Option<(f64, usize)>> = vec![None; mapping.len()];
        let mut plain = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let n = i + 1;
            let mean = |s: &str| -> Result<f64> {
                match s.parse::<f64>() {
                    Ok(m) if m.is_finite() && m > 0.0 => Ok(m),
                    Ok(m) => Err(perr(
                        n,
                        format!("mean length {m} must be positive and finite"),
                    )),
                    Err(_) => Err(perr(n, format!("{s:?} is not a number"))),
                }
            };
            match line.split_whitespace().collect::<Vec<_>>()[..] {
                [] => {}
                [v] => plain.push(mean(v)?),
                [name, v] => {
                    let c = mapping.id(name).map_err(|e| perr(n, e.to_string()))?;
                    if let Some((_, first)) = named[c] {
                        return Err(perr(n, format!("{name} given twice (line {first} too)")));
                    }
                    named[c] = Some((mean(v)?, n));
                }
                _ => return Err(perr(n, "expected \"name mean\" or \"mean\"".into())),
            }
        }
        let means = match (plain.is_empty(), named.iter().flatten().next()) {
            (false, Some(&(_, line))) => {
                return Err(perr(line, "mixes \"name mean\" and \"mean\" lines".into()))
            }
            (false, None) if plain.len() == mapping.len() => plain,
            (false, None) => {
                return Err(perr(
                    0,
                    format!("{} lengths for {} classes", plain.len(), mapping.len()),
                ))
            }
            (true, _) => named
                .iter()
                .enumerate()
                .map(|(c, m)| {
                    m.map(|m| m.0)
                        .ok_or_else(|| perr(0, format!("no length for class {}", mapping.name(c))))
                })
                .collect::<Result<Vec<_>>>()?,
        };
        Self::new(means)
    }

    /// Classes covered.
    pub fn classes(&self) -> usize {
        self.means.len()
    }

    /// Mean length of class `c`.
    pub fn mean(&self, c: usize) -> f64 {
        self.means[c]
    }

    /// `weight * log Poisson(l; mean_c)` for one length, with `ln l!` from [`ln_factorial`]:
    /// what the subsampled exact decoder needs at its few grid lengths.
    pub fn log_poisson(&self, c: usize, l: usize, weight: f64) -> f64 {
        let lam = self.means[c];
        weight * (l as f64 * lam.ln() - lam - ln_factorial(l))
    }

    /// `weight * log Poisson(l; mean_c)` for `l = 0..=max_len`, built by a running sum of
    /// `ln l!` so no special function is needed.
    pub fn log_poisson_table(&self, c: usize, max_len: usize, weight: f64) -> Vec<f64> {
        let lam = self.means[c];
        let ln_lam = lam.ln();
        let mut ln_fact = 0.0;
        (0..=max_len)
            .map(|l| {
                if l > 0 {
                    ln_fact += (l as f64).ln();
                }
                weight * (l as f64 * ln_lam - lam - ln_fact)
            })
            .collect()
    }
}

/// Below this, `ln n!` is a sum of logarithms; from here on, Stirling's series.
const STIRLING_FROM: usize = 32;

/// `ln n!`: summed logarithms for small `n`, Stirling's series with terms up to `n^-7` beyond
/// (truncation error below `1 / (1188 n^9)`, under 1e-16 for `n >= 32`).
pub fn ln_factorial(n: usize) -> f64 {
    if n < STIRLING_FROM {
        return (2..=n).map(|k| (k as f64).ln()).sum();
    }
    let x = n as f64 + 1.0; // ln n! = ln Gamma(n + 1)
    let r = 1.0 / x;
    let r2 = r * r;
    let series = r * (1.0 / 12.0 - r2 * (1.0 / 360.0 - r2 * (1.0 / 1260.0 - r2 / 1680.0)));
    (x - 0.5) * x.ln() - x + 0.5 * (2.0 * std::f64::consts::PI).ln() + series
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poisson_table_matches_the_pmf() {
        let m = LengthModel::new(vec![3.0]).unwrap();
        let t = m.log_poisson_table(0, 6, 1.0);
        // P(4; 3) = 3^4 e^-3 / 24
        assert!((t[4] - (81.0f64 * (-3.0f64).exp() / 24.0).ln()).abs() < 1e-12);
        assert!((t[0] + 3.0).abs() < 1e-12);
        let total: f64 = m
            .log_poisson_table(0, 60, 1.0)
            .iter()
            .map(|v| v.exp())
            .sum();
        assert!((total - 1.0).abs() < 1e-9);
    }

    #[test]
    fn ln_factorial_and_pointwise_poisson_match_the_table() {
        let m = LengthModel::new(vec![3.0, 450.0]).unwrap();
        for c in 0..2 {
            let table = m.log_poisson_table(c, 5000, 0.7);
            for l in (0..200).chain((200..=5000).step_by(37)) {
                let (a, b) = (m.log_poisson(c, l, 0.7), table[l]);
                // The table is a running sum: its own rounding grows with l.
                assert!(
                    (a - b).abs() <= 1e-12 * (1.0 + b.abs()),
                    "l {l}: {a} vs {b}"
                );
            }
        }
        assert_eq!(ln_factorial(0), 0.0);
        assert!((ln_factorial(10) - 3_628_800f64.ln()).abs() < 1e-12);
    }

    #[test]
    fn means_from_ground_truth() {
        let a = [0, 0, 1, 1, 1, 1, 0];
        let b = [2, 2, 2, 0, 0, 0, 0];
        let m = LengthModel::from_ground_truth([&a[..], &b[..]], 4).unwrap();
        assert_eq!(m.mean(0), (2.0 + 1.0 + 4.0) / 3.0);
        assert_eq!(m.mean(1), 4.0);
        assert_eq!(m.mean(2), 3.0);
        assert_eq!(m.mean(3), 14.0 / 5.0);
        assert!(LengthModel::new(vec![1.0, 0.0]).is_err());
        assert!(LengthModel::from_ground_truth([&[5usize][..]], 2).is_err());
    }
}
