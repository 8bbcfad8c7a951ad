//! The adaptive structure search: the ELBO estimate, and a planted problem whose target a
//! one-unit network cannot represent, so the search must choose the wider candidate.
use candle_core::DType;
use elide_bayes::rng::Rng;
use elide_bayes::search::{estimate_elbo, search, FitSettings, Grid};
use elide_bayes::train::TrainConfig;
use elide_bayes::{Arch, Dataset, Init, Likelihood, Prior, SpikeSlabNet, Targets};
use std::sync::atomic::{AtomicUsize, Ordering};

/// `y = x0^2 + x1^2 + 0.1 eps`, 6 inputs uniform in (-1, 1).
fn bowl(n: usize, seed: u64) -> Dataset {
    let p = 6;
    let mut r = Rng::new(seed);
    let x: Vec<f32> = (0..n * p).map(|_| r.range(-1.0, 1.0) as f32).collect();
    let y: Vec<f32> = (0..n)
        .map(|i| x[i * p].powi(2) + x[i * p + 1].powi(2) + 0.1 * r.normal() as f32)
        .collect();
    Dataset::new(n, p, x, Targets::Values(y), 0).unwrap()
}

fn gaussian(sigma: f64) -> Likelihood {
    Likelihood::Gaussian {
        sigma,
        learned: false,
    }
}

#[test]
fn elbo_of_a_deterministic_network_is_its_log_likelihood_minus_kl() {
    // phi ~ 1 and sigma ~ 0: every sample is the mean network, so the Monte Carlo average is
    // exact and two estimates with different seeds agree.
    let data = bowl(50, 1);
    let init = Init {
        mu_range: 0.5,
        rho: -30.0,
        phi: 1.0 - 1e-12,
    };
    let prior = Prior::new(0.1, 1.0).unwrap();
    let net = SpikeSlabNet::new(
        Arch::uniform(6, 1, 3, 1),
        prior,
        gaussian(0.5),
        &init,
        3,
        DType::F64,
    )
    .unwrap();
    let a = estimate_elbo(&net, &data, 3, 1).unwrap();
    let b = estimate_elbo(&net, &data, 1, 2).unwrap();
    assert!((a.elbo - b.elbo).abs() < 1e-9 * a.elbo.abs(), "{a:?} {b:?}");
    assert!((a.elbo - (-a.nll - a.kl)).abs() < 1e-9);
    assert!(a.kl > 0.0 && a.nll.is_finite());
    assert!(estimate_elbo(&net, &data, 0, 1).is_err());
}

#[test]
fn search_chooses_the_structure_that_can_fit() {
    let data = bowl(600, 7);
    let settings = FitSettings {
        likelihood: gaussian(0.1),
        sigma0: 1.3,
        delta: 0.1,
        init: Init::default(),
        seed: 5,
        train: TrainConfig {
            epochs: 200,
            batch_size: 128,
            lr: 1e-2,
            ..Default::default()
        },
        elbo_samples: 5,
    };
    let grid = Grid::new(vec![1], vec![1, 8]).unwrap();
    let seen = AtomicUsize::new(0);
    let s = search(&data, 1, &grid, &settings, |_| {
        seen.fetch_add(1, Ordering::Relaxed);
    })
    .unwrap();
    assert_eq!(seen.load(Ordering::Relaxed), 2);
    let (narrow, wide) = (&s.candidates[0], &s.candidates[1]);
    assert_eq!((narrow.width, wide.width), (1, 8));
    assert_eq!(s.chosen, 1, "{:?}", s.candidates);
    assert_eq!(s.net.arch.hidden, vec![8]);
    assert!(
        wide.elbo.elbo > narrow.elbo.elbo + 100.0,
        "{:?}",
        s.candidates
    );
    assert!((narrow.weight + wide.weight - 1.0).abs() < 1e-12 && wide.weight > 0.99);
    // Each structure has its own theory lambda: more parameters, smaller lambda.
    assert!(wide.lambda < narrow.lambda && wide.params > narrow.params);
    assert_eq!(s.history.len(), 200);
}

#[test]
fn simulation_replicate_with_the_search_uses_the_chosen_structure() {
    use elide_bayes::simulate::{run_replicate, SimConfig};
    let d = SimConfig::default();
    let cfg = SimConfig {
        p: 10,
        n_train: 200,
        n_test: 200,
        samples: 3,
        train: TrainConfig {
            epochs: 5,
            batch_size: 100,
            ..d.train
        },
        search: Some((Grid::new(vec![1, 2], vec![3]).unwrap(), 2)),
        ..d
    };
    let r = run_replicate(&cfg, 0, |_| {}).unwrap();
    let grid = r.grid.as_ref().unwrap();
    assert_eq!(grid.len(), 2);
    let best = grid
        .iter()
        .max_by(|a, b| a.elbo.elbo.total_cmp(&b.elbo.elbo))
        .unwrap();
    assert_eq!(r.hidden, vec![best.width; best.layers]);
    assert_eq!(r.lambda, best.lambda);
}

#[test]
fn a_search_whose_candidates_all_diverge_is_an_error_not_a_panic() {
    // An absurd learning rate drives the parameters to overflow: every fit diverges, each is
    // reported with a NaN ELBO, and the search says that none is usable.
    let data = bowl(200, 3);
    let settings = FitSettings {
        likelihood: gaussian(0.1),
        sigma0: 1.3,
        delta: 0.1,
        init: Init::default(),
        seed: 1,
        train: TrainConfig {
            epochs: 50,
            batch_size: 50,
            lr: 1e30,
            ..Default::default()
        },
        elbo_samples: 2,
    };
    let grid = Grid::new(vec![1], vec![2, 3]).unwrap();
    let seen = std::sync::Mutex::new(Vec::new());
    let e = match search(&data, 1, &grid, &settings, |c| {
        seen.lock().unwrap().push(c.elbo.elbo)
    }) {
        Err(e) => e.to_string(),
        Ok(s) => panic!("expected an error, chose {:?}", s.candidates),
    };
    assert!(e.contains("finite ELBO"), "{e}");
    let seen = seen.into_inner().unwrap();
    assert_eq!(seen.len(), 2);
    assert!(seen.iter().all(|v| v.is_nan()), "{seen:?}");
    let zero = FitSettings {
        elbo_samples: 0,
        ..settings
    };
    assert!(search(&data, 1, &grid, &zero, |_| {}).is_err());
}

#[test]
fn restarts_are_distinct_fits_and_the_best_elbo_wins() {
    let data = bowl(300, 11);
    let settings = FitSettings {
        likelihood: gaussian(0.1),
        sigma0: 1.3,
        delta: 0.1,
        init: Init::default(),
        seed: 2,
        train: TrainConfig {
            epochs: 30,
            batch_size: 100,
            lr: 1e-2,
            ..Default::default()
        },
        elbo_samples: 3,
    };
    assert!(Grid::new(vec![1], vec![4])
        .unwrap()
        .with_restarts(0)
        .is_err());
    let grid = Grid::new(vec![1], vec![4])
        .unwrap()
        .with_restarts(3)
        .unwrap();
    let s = search(&data, 1, &grid, &settings, |_| {}).unwrap();
    let starts: Vec<usize> = s.candidates.iter().map(|c| c.restart).collect();
    assert_eq!(starts, vec![0, 1, 2]);
    let e: Vec<f64> = s.candidates.iter().map(|c| c.elbo.elbo).collect();
    assert!(e[0] != e[1] && e[1] != e[2] && e[0] != e[2], "{e:?}");
    let best = e.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    assert_eq!(e[s.chosen], best);
    // Start 0 is the single fit with the settings' own seeds.
    let one = search(
        &data,
        1,
        &Grid::new(vec![1], vec![4]).unwrap(),
        &settings,
        |_| {},
    )
    .unwrap();
    assert_eq!(one.candidates[0].elbo.elbo, e[0]);
}
