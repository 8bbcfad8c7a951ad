//! `elide demo`: a seeded backbone on a synthetic road scene, dense versus block-sparse.
use crate::bench::{masked_err, masks, timing::median_ms};
use anyhow::Result;
use clap::Args;
use elide::kernels::{rng::SplitMix64, threads::with_threads, Tensor};
use elide::sbnet::{Backbone, NetMode};
use indicatif::{ProgressBar, ProgressStyle};

/// Options of `elide demo`.
#[derive(Args)]
pub struct DemoArgs {
    /// Input height.
    #[arg(long, default_value_t = 256)]
    height: usize,
    /// Input width.
    #[arg(long, default_value_t = 448)]
    width: usize,
    /// Feature channels.
    #[arg(long, default_value_t = 64)]
    channels: usize,
    /// Residual units after the stem (at most 64).
    #[arg(long, default_value_t = 4)]
    units: usize,
    /// Fraction of the image the road mask covers, in (0, 1].
    #[arg(long, default_value_t = 0.15, value_parser = parse_coverage, allow_negative_numbers = true)]
    coverage: f64,
    /// Worker threads (0 = all cores, at most 256).
    #[arg(long, default_value_t = 0, value_parser = crate::parse_threads, allow_negative_numbers = true)]
    threads: usize,
    /// Timed repetitions (the median is reported; at least 1).
    #[arg(long, default_value_t = 5, value_parser = crate::parse_reps, allow_negative_numbers = true)]
    reps: usize,
}

/// The most residual units `--units` takes.
const MAX_UNITS: usize = 64;

/// `--coverage`: a fraction in (0, 1].
fn parse_coverage(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 1.0 => Ok(v),
        _ => Err("expected a fraction of the image in (0, 1], e.g. 0.15".into()),
    }
}

/// Checks the sizes: the feature maps and each conv's weights within [`crate::MAX_VALUES`].
fn check_sizes(a: &DemoArgs) -> Result<()> {
    anyhow::ensure!(
        a.units <= MAX_UNITS,
        "--units {}: at most {MAX_UNITS} residual units",
        a.units
    );
    let maps = "--channels x --height x --width";
    crate::checked_size(maps, &[a.channels, a.height, a.width])?;
    // The stem and two 3x3 convs per unit.
    let weights = "convs x --channels x --channels x 3x3";
    crate::checked_size(weights, &[2 * a.units + 1, a.channels, a.channels, 9])?;
    Ok(())
}

/// Runs the demo.
pub fn run(a: &DemoArgs) -> Result<()> {
    check_sizes(a)?;
    let (h, w) = (a.height, a.width);
    let net = Backbone::seeded(3, a.channels, a.units, 42)?;
    let mut rng = SplitMix64::new(7);
    let x = Tensor::from_vec([1, 3, h, w], rng.vec(3 * h * w, 0.0, 1.0))?;
    let mask = masks::road([1, h, w], 1.0 - a.coverage);
    println!(
        "elide demo: backbone of {} layers ({} channels, 3x3 convs), input 1x3x{h}x{w}, {:.2} GMAC dense",
        net.layers(),
        a.channels,
        net.macs(h, w)? as f64 / 1e9
    );
    println!(
        "mask: a road band covering {:.1}% of the image",
        100.0 * mask.density(0.5)
    );
    let bar = ProgressBar::new(3 * a.reps as u64 + 1).with_style(ProgressStyle::with_template(
        "{msg:>8} [{bar:30}] {pos}/{len}",
    )?);
    let r = with_threads(a.threads, || -> Result<_> {
        bar.set_message("dense");
        let dense = net.forward_dense(&x)?;
        let dense_ms = median_ms(a.reps, || {
            bar.inc(1);
            net.forward_dense(&x).map(drop)
        })?;
        let mut results = Vec::new();
        for mode in [NetMode::Exact, NetMode::Fast] {
            bar.set_message(format!("{mode:?}").to_lowercase());
            let ms = median_ms(a.reps, || {
                bar.inc(1);
                net.run(&x, &net.plan(x.shape(), &mask, mode)?).map(drop)
            })?;
            let plans = net.plan(x.shape(), &mask, mode)?;
            let y = net.run(&x, &plans)?;
            let sparsity: Vec<String> = plans
                .iter()
                .map(|p| format!("{:.0}%", 100.0 * p.block_sparsity()))
                .collect();
            results.push((
                mode,
                ms,
                masked_err(&y, &dense, &mask),
                sparsity,
                plans[0].block(),
            ));
        }
        bar.inc(1);
        Ok((
            dense_ms,
            results,
            elide::kernels::threads::current_threads(),
        ))
    })??;
    bar.finish_and_clear();
    let (dense_ms, results, threads) = r;
    println!(
        "threads: {threads}; times are medians of {} runs, sparse times include planning",
        a.reps
    );
    println!(
        "{:<7} {:>10} {:>9} {:>22} {:>26}",
        "mode", "ms", "speed-up", "max rel err in mask", "block sparsity per layer"
    );
    println!(
        "{:<7} {:>10.1} {:>9} {:>22} {:>26}",
        "dense", dense_ms, "1.00x", "-", "-"
    );
    for (mode, ms, err, sp, _) in &results {
        println!(
            "{:<7} {:>10.1} {:>8.2}x {:>22.2e} {:>26}",
            format!("{mode:?}").to_lowercase(),
            ms,
            dense_ms / ms,
            err,
            sp.join(" ")
        );
    }
    Ok(())
}
