//! The spike-and-slab prior and the closed-form KL divergence of the variational family from it.
//!
//! Prior per weight: `gamma ~ Bernoulli(lambda)`, `w | gamma=1 ~ N(0, sigma0^2)`, `w | gamma=0 = 0`.
//! Variational family: `gamma ~ Bernoulli(phi)`, `w | gamma=1 ~ N(mu, sigma^2)`. Per weight,
//!
//! ```text
//! KL = phi log(phi/lambda) + (1-phi) log((1-phi)/(1-lambda))
//!    + phi [log(sigma0/sigma) + (sigma^2 + mu^2) / (2 sigma0^2) - 1/2]
//! ```
use crate::error::{BayesError, Result};
use serde::{Deserialize, Serialize};

/// The prior's two hyper-parameters.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Prior {
    /// Prior inclusion probability of each weight, in (0, 1).
    pub lambda: f64,
    /// Standard deviation of the slab.
    pub sigma0: f64,
}

impl Prior {
    /// A checked prior.
    pub fn new(lambda: f64, sigma0: f64) -> Result<Self> {
        if !(lambda > 0.0 && lambda < 1.0) {
            return Err(BayesError::Config(format!(
                "lambda must be in (0, 1), got {lambda}"
            )));
        }
        if !(sigma0 > 0.0 && sigma0.is_finite()) {
            return Err(BayesError::Config(format!(
                "sigma0 must be positive and finite, got {sigma0}"
            )));
        }
        Ok(Self { lambda, sigma0 })
    }
}

/// The sizes that the theory's choice of `lambda` depends on.
#[derive(Clone, Copy, Debug)]
pub struct TheorySizes {
    /// Total number of parameters (weights and biases), `T`.
    pub params: usize,
    /// Number of hidden layers, `L`.
    pub hidden_layers: usize,
    /// Width of the hidden layers, `N` (the largest, when they differ).
    pub width: usize,
    /// Number of training samples, `n`.
    pub samples: usize,
    /// Number of inputs, `p`.
    pub inputs: usize,
}

/// `lambda` from the theory: `-log lambda = log T + delta [(L+1) log N + log(sqrt(n) p)]`.
pub fn theory_lambda(s: TheorySizes, delta: f64) -> Result<f64> {
    for (name, v) in [
        ("parameters", s.params),
        ("width", s.width),
        ("training samples", s.samples),
        ("inputs", s.inputs),
    ] {
        if v == 0 {
            return Err(BayesError::Config(format!(
                "theory lambda: the number of {name} must be at least 1, got 0"
            )));
        }
    }
    if !(delta >= 0.0 && delta.is_finite()) {
        return Err(BayesError::Config(format!(
            "delta must be a finite number >= 0, got {delta}"
        )));
    }
    let a = (s.params as f64).ln()
        + delta
            * ((s.hidden_layers as f64 + 1.0) * (s.width as f64).ln()
                + ((s.samples as f64).sqrt() * s.inputs as f64).ln());
    Ok((-a).exp())
}

/// The closed-form KL of one weight's variational distribution `(phi, mu, sigma)` from the prior.
pub fn kl_weight(prior: &Prior, phi: f64, mu: f64, sigma: f64) -> f64 {
    let lam = prior.lambda;
    let s0 = prior.sigma0;
    let xlogy = |x: f64, r: f64| if x > 0.0 { x * r.ln() } else { 0.0 };
    xlogy(phi, phi / lam)
        + xlogy(1.0 - phi, (1.0 - phi) / (1.0 - lam))
        + phi * ((s0 / sigma).ln() + (sigma * sigma + mu * mu) / (2.0 * s0 * s0) - 0.5)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn theory_lambda_matches_the_simulation_setting() {
        // 200-7-7-7-1: T = 201*7 + 8*7 + 8*7 + 8 = 1527.
        let s = TheorySizes {
            params: 1527,
            hidden_layers: 3,
            width: 7,
            samples: 3000,
            inputs: 200,
        };
        let lam = theory_lambda(s, 0.1).unwrap();
        let expect = -(1527f64.ln() + 0.1 * (4.0 * 7f64.ln() + (3000f64.sqrt() * 200.0).ln()));
        assert!((lam.ln() - expect).abs() < 1e-12);
        assert!(lam > 1e-5 && lam < 1e-3, "{lam}");
    }

    #[test]
    fn kl_is_zero_at_the_prior_and_positive_elsewhere() {
        let p = Prior::new(0.3, 1.5).unwrap();
        assert!(kl_weight(&p, 0.3, 0.0, 1.5).abs() < 1e-12);
        assert!(kl_weight(&p, 0.9, 0.4, 0.2) > 0.0);
        assert!(kl_weight(&p, 0.0, 5.0, 0.01) > 0.0);
    }

    #[test]
    fn bad_priors_are_errors() {
        assert!(Prior::new(0.0, 1.0).is_err());
        assert!(Prior::new(0.5, -1.0).is_err());
        assert!(Prior::new(f64::NAN, 1.0).is_err());
        let e = Prior::new(0.5, f64::INFINITY).unwrap_err().to_string();
        assert!(
            e.contains("sigma0 must be positive and finite, got inf"),
            "{e}"
        );
        let e = Prior::new(1.5, 1.0).unwrap_err().to_string();
        assert!(e.contains("lambda must be in (0, 1), got 1.5"), "{e}");
    }

    #[test]
    fn theory_lambda_names_the_zero_size() {
        let s = TheorySizes {
            params: 10,
            hidden_layers: 1,
            width: 0,
            samples: 5,
            inputs: 2,
        };
        let e = theory_lambda(s, 0.1).unwrap_err().to_string();
        assert!(e.contains("width must be at least 1"), "{e}");
        assert!(!e.contains("TheorySizes"), "{e}");
        let s = TheorySizes { width: 3, ..s };
        let e = theory_lambda(s, f64::NAN).unwrap_err().to_string();
        assert!(e.contains("delta") && e.contains("NaN"), "{e}");
    }
}
