//! `elide bayes ...`: sparse networks by variational Bayes (spike-and-slab, Bai, Song & Cheng).
mod bench;
mod export;
mod fit;
mod fit_idx;
mod simulate;
mod teacher;

use anyhow::Result;
use clap::Subcommand;

/// The `bayes` verbs.
#[derive(Subcommand)]
pub enum BayesCommand {
    /// The papers' simulation (200 inputs, 5 relevant, 200-7-7-7-1): RMSE, density, FNR, FPR.
    Simulate(simulate::SimulateArgs),
    /// The teacher-student experiment: a sparse teacher network, students for growing input
    /// dimension p; test error against log p.
    Teacher(teacher::TeacherArgs),
    /// Fit a spike-and-slab network to a CSV file or MNIST-style IDX files (--idx); saves
    /// safetensors + JSON.
    Fit(fit::FitArgs),
    /// Predict with a saved model on a CSV file (means, 95% intervals or class probabilities).
    Predict(fit::PredictArgs),
    /// The exported sparse layer (CSR kernel) against the dense gemm layer of the same shape.
    Bench(bench::BenchArgs),
    /// Write a saved model's posterior network (phi > 0.5, at the means) as ONNX, for
    /// `elide run` (mostly zero weights run in CSR) or any ONNX runtime.
    Export(export::ExportArgs),
}

/// Runs a `bayes` verb.
pub fn run(cmd: BayesCommand) -> Result<()> {
    match cmd {
        BayesCommand::Simulate(a) => simulate::run(&a),
        BayesCommand::Teacher(a) => teacher::run(&a),
        BayesCommand::Fit(a) => fit::fit(&a),
        BayesCommand::Predict(a) => fit::predict(&a),
        BayesCommand::Bench(a) => bench::run(&a),
        BayesCommand::Export(a) => export::run(&a),
    }
}

/// A rayon pool of `threads` threads (0: all cores).
fn pool(threads: usize) -> Result<rayon::ThreadPool> {
    Ok(rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()?)
}

/// clap value parsers: a bad value is refused by clap with the flag, the value and the rule
/// (`invalid value '0' for '--lr <LR>': must be a positive finite number`).
mod parse {
    fn number(s: &str) -> Result<f64, String> {
        s.trim()
            .parse::<f64>()
            .map_err(|_| format!("{s:?} is not a number"))
    }

    fn integer(s: &str) -> Result<usize, String> {
        s.trim()
            .parse::<usize>()
            .map_err(|_| format!("{s:?} is not a non-negative integer"))
    }

    /// A number > 0 and finite.
    pub fn positive(s: &str) -> Result<f64, String> {
        let v = number(s)?;
        match v > 0.0 && v.is_finite() {
            true => Ok(v),
            false => Err("must be a positive finite number".into()),
        }
    }

    /// A number >= 0 and finite.
    pub fn non_negative(s: &str) -> Result<f64, String> {
        let v = number(s)?;
        match v >= 0.0 && v.is_finite() {
            true => Ok(v),
            false => Err("must be a finite number >= 0".into()),
        }
    }

    /// A number in [0, 1].
    pub fn fraction(s: &str) -> Result<f64, String> {
        let v = number(s)?;
        match (0.0..=1.0).contains(&v) {
            true => Ok(v),
            false => Err("must be a number in [0, 1]".into()),
        }
    }

    /// A number in (0, 1).
    pub fn probability(s: &str) -> Result<f64, String> {
        let v = number(s)?;
        match v > 0.0 && v < 1.0 {
            true => Ok(v),
            false => Err("must be a number in (0, 1), both ends excluded".into()),
        }
    }

    /// An integer >= 1.
    pub fn count(s: &str) -> Result<usize, String> {
        let v = integer(s)?;
        match v >= 1 {
            true => Ok(v),
            false => Err("must be at least 1".into()),
        }
    }

    /// A number of classes: an integer >= 2.
    pub fn classes(s: &str) -> Result<usize, String> {
        let v = integer(s)?;
        match v >= 2 {
            true => Ok(v),
            false => Err("must be at least 2 (classification needs two classes)".into()),
        }
    }

    /// A number of hidden layers: 1 to [`elide_bayes::net::MAX_HIDDEN_LAYERS`].
    pub fn layers(s: &str) -> Result<usize, String> {
        let v = count(s)?;
        let max = elide_bayes::net::MAX_HIDDEN_LAYERS;
        match v <= max {
            true => Ok(v),
            false => Err(format!("at most {max} hidden layers are supported")),
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn parsers_accept_good_values_and_say_why_bad_ones_are_refused() {
            assert_eq!(positive("0.5"), Ok(0.5));
            for bad in ["0", "-0.1", "nan", "inf"] {
                assert_eq!(
                    positive(bad),
                    Err("must be a positive finite number".into())
                );
            }
            assert!(positive("x").unwrap_err().contains("not a number"));
            assert_eq!(non_negative("0"), Ok(0.0));
            assert!(non_negative("-1").is_err() && non_negative("inf").is_err());
            assert_eq!(fraction("1"), Ok(1.0));
            for bad in ["1.5", "-0.5", "nan"] {
                assert!(fraction(bad).is_err(), "{bad}");
            }
            assert!(probability("0.99").is_ok() && probability("1").is_err());
            assert_eq!(count("3"), Ok(3));
            assert_eq!(count("0"), Err("must be at least 1".into()));
            assert!(count("-1")
                .unwrap_err()
                .contains("not a non-negative integer"));
            assert!(classes("1").unwrap_err().contains("at least 2"));
            assert_eq!(classes("2"), Ok(2));
            assert!(layers("1000").is_ok() && layers("1001").is_err());
        }
    }
}
