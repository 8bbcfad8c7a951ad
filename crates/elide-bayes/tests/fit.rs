//! Variable selection on a small planted problem, classification, save/load round trip.
use candle_core::DType;
use elide_bayes::predict::{predict, rmse};
use elide_bayes::prior::theory_lambda;
use elide_bayes::rng::Rng;
use elide_bayes::select::{density, selected_inputs, selection_rates};
use elide_bayes::train::{train, TrainConfig};
use elide_bayes::{io, Arch, Dataset, Init, Likelihood, Prior, SpikeSlabNet, Targets};

/// `y = 3 x0 - 2 x1 + 0.3 eps` with `p` inputs uniform in (-1, 1).
fn planted(n: usize, p: usize, seed: u64) -> Dataset {
    let mut r = Rng::new(seed);
    let x: Vec<f32> = (0..n * p).map(|_| r.range(-1.0, 1.0) as f32).collect();
    let y: Vec<f32> = (0..n)
        .map(|i| (3.0 * x[i * p] - 2.0 * x[i * p + 1]) + 0.3 * r.normal() as f32)
        .collect();
    Dataset::new(n, p, x, Targets::Values(y), 0).unwrap()
}

fn regression_net(p: usize, n: usize, seed: u64) -> SpikeSlabNet {
    let arch = Arch::uniform(p, 1, 4, 1);
    let lambda = theory_lambda(arch.theory_sizes(n), 0.1).unwrap();
    let prior = Prior::new(lambda, 1.3).unwrap();
    let lik = Likelihood::Gaussian {
        sigma: 0.3,
        learned: false,
    };
    SpikeSlabNet::new(arch, prior, lik, &Init::default(), seed, DType::F32).unwrap()
}

#[test]
fn selects_the_planted_inputs() {
    let (n, p) = (500, 20);
    let data = planted(n, p, 1);
    let net = regression_net(p, n, 2);
    let cfg = TrainConfig {
        epochs: 600,
        batch_size: 100,
        lr: 2e-2,
        ..Default::default()
    };
    train(&net, &data, &cfg, |_| {}).unwrap();
    let sel = selected_inputs(&net, 0.5).unwrap();
    assert_eq!(sel, [0, 1], "selected {sel:?}");
    assert_eq!(selection_rates(&sel, &[0, 1], p), (0.0, 0.0));
    let d = density(&net).unwrap();
    assert!(d < 0.3, "density {d}");
    let test = planted(1000, p, 3);
    let pr = predict(&net, &test.x_tensor(DType::F32).unwrap(), 20, 0.9, 4).unwrap();
    let Targets::Values(y) = &test.targets else {
        unreachable!()
    };
    let e = rmse(&pr.mean, y);
    assert!(e < 0.45, "test rmse {e} (noise 0.3)");
    assert!(pr
        .interval
        .iter()
        .zip(&pr.mean)
        .all(|(&(a, b), &m)| a <= m + 1e-6 && m <= b + 1e-6));
}

#[test]
fn learns_a_two_class_problem() {
    let (n, p) = (400, 6);
    let mut r = Rng::new(5);
    let x: Vec<f32> = (0..n * p).map(|_| r.range(-1.0, 1.0) as f32).collect();
    let labels: Vec<u32> = (0..n)
        .map(|i| u32::from(x[i * p] + x[i * p + 2] > 0.0))
        .collect();
    let data = Dataset::new(n, p, x, Targets::Labels(labels.clone()), 2).unwrap();
    let arch = Arch::uniform(p, 1, 8, 2);
    let prior = Prior::new(theory_lambda(arch.theory_sizes(n), 0.1).unwrap(), 1.3).unwrap();
    let net = SpikeSlabNet::new(
        arch,
        prior,
        Likelihood::Categorical,
        &Init::default(),
        6,
        DType::F32,
    )
    .unwrap();
    let cfg = TrainConfig {
        epochs: 150,
        batch_size: 100,
        lr: 2e-2,
        ..Default::default()
    };
    let hist = train(&net, &data, &cfg, |_| {}).unwrap();
    // The per-epoch training accuracy starts near chance and ends high.
    let (first, last) = (hist[0].accuracy.unwrap(), hist[149].accuracy.unwrap());
    assert!(first < 0.8 && last > 0.85, "accuracy {first} -> {last}");
    let pr = predict(&net, &data.x_tensor(DType::F32).unwrap(), 10, 0.9, 1).unwrap();
    let acc = pr
        .classes()
        .iter()
        .zip(&labels)
        .filter(|(a, &b)| **a == b as usize)
        .count();
    assert!(acc as f64 / n as f64 > 0.9, "accuracy {acc}/{n}");
}

#[test]
fn save_load_round_trip() {
    let (n, p) = (200, 5);
    let data = planted(n, p, 7);
    let net = regression_net(p, n, 8);
    let cfg = TrainConfig {
        epochs: 5,
        batch_size: 50,
        ..Default::default()
    };
    train(&net, &data, &cfg, |_| {}).unwrap();
    let dir = std::env::temp_dir().join(format!("elide-bayes-io-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("m.safetensors");
    io::save(&net, &path, serde_json::json!({"columns": ["a"]})).unwrap();
    let (back, desc) = io::load(&path).unwrap();
    assert_eq!(desc.meta["columns"][0], "a");
    assert_eq!(back.arch, net.arch);
    assert_eq!(back.prior, net.prior);
    for (a, b) in net.layers.iter().zip(&back.layers) {
        assert_eq!(a.weight.mu().unwrap(), b.weight.mu().unwrap());
        assert_eq!(a.weight.phi().unwrap(), b.weight.phi().unwrap());
        assert_eq!(a.bias.sigma().unwrap(), b.bias.sigma().unwrap());
    }
    let x = data.x_tensor(DType::F32).unwrap();
    let p1 = predict(&net, &x, 5, 0.9, 3).unwrap();
    let p2 = predict(&back, &x, 5, 0.9, 3).unwrap();
    assert_eq!(p1.mean, p2.mean);
    // A description that disagrees with the tensors is an error, not a panic.
    let json = std::fs::read_to_string(dir.join("m.json")).unwrap();
    std::fs::write(
        dir.join("m.json"),
        json.replace("\"inputs\": 5", "\"inputs\": 6"),
    )
    .unwrap();
    let e = io::load(&path).unwrap_err();
    assert!(e.to_string().contains("shape"), "{e}");
    assert!(io::load(&dir.join("missing.safetensors")).is_err());
    std::fs::remove_dir_all(&dir).ok();
}

/// `io::load` refuses what would make a model predict garbage, and `io::save` names the path
/// the caller gave when it cannot write.
#[test]
fn corrupt_models_and_bad_paths_are_clear_errors() {
    let dir = std::env::temp_dir().join(format!("elide-bayes-corrupt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let net = regression_net(3, 50, 1);
    let path = dir.join("m.safetensors");
    io::save(&net, &path, serde_json::json!({})).unwrap();
    let good = std::fs::read(&path).unwrap();
    let json = std::fs::read_to_string(dir.join("m.json")).unwrap();
    let err = |p: &std::path::Path| io::load(p).unwrap_err().to_string();

    // One tensor with a NaN (then an infinity) in it.
    for (name, bad) in [
        ("layer0.weight.mu", f32::NAN),
        ("layer1.bias.rho", f32::INFINITY),
    ] {
        let mut map = candle_core::safetensors::load(&path, &candle_core::Device::Cpu).unwrap();
        let t = &map[name];
        let mut v = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        v[0] = bad;
        let shape = t.shape().clone();
        map.insert(
            name.into(),
            candle_core::Tensor::from_vec(v, shape, &candle_core::Device::Cpu).unwrap(),
        );
        candle_core::safetensors::save(&map, &path).unwrap();
        let e = err(&path);
        assert!(e.contains(name) && e.contains("must be finite"), "{e}");
        std::fs::write(&path, &good).unwrap();
    }
    // A description with a zero width, an impossible prior, a non-positive noise.
    for (from, to, want) in [
        (
            "\"hidden\": [\n      4\n    ]",
            "\"hidden\": [\n      0\n    ]",
            "width 0",
        ),
        (
            "\"sigma0\": 1.3",
            "\"sigma0\": 0.0",
            "sigma0 must be positive",
        ),
        (
            "\"sigma\": 0.3",
            "\"sigma\": -1.0",
            "noise sigma must be positive",
        ),
    ] {
        assert!(json.contains(from), "{json}");
        std::fs::write(dir.join("m.json"), json.replace(from, to)).unwrap();
        let e = err(&path);
        assert!(e.contains(want) && e.contains("m.json"), "{e}");
    }
    std::fs::write(dir.join("m.json"), &json).unwrap();
    assert!(io::load(&path).is_ok());
    // A missing model is named as such (not its description).
    let e = err(&dir.join("gone.safetensors"));
    assert!(
        e.contains("gone.safetensors") && e.contains("model file not found"),
        "{e}"
    );
    // Saving: a .json path, a directory, a missing directory.
    let e = io::save(&net, &dir.join("x.json"), serde_json::json!({}))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("x.json") && e.contains("cannot be a .json file"),
        "{e}"
    );
    let e = io::save(&net, &dir, serde_json::json!({}))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&*dir.to_string_lossy()) && e.contains("directory"),
        "{e}"
    );
    let gone = dir.join("no-such-dir").join("m.safetensors");
    let e = io::save(&net, &gone, serde_json::json!({}))
        .unwrap_err()
        .to_string();
    assert!(e.contains(&*gone.to_string_lossy()), "{e}");
    assert!(!e.contains(".tmp"), "{e}");
    std::fs::remove_dir_all(&dir).ok();
}

/// Sizes are checked before anything is allocated: a network past 2^31 parameters or with
/// more hidden layers than supported is a configuration error, and so are zero widths.
#[test]
fn oversized_networks_are_refused_before_allocation() {
    let prior = Prior::new(0.1, 1.0).unwrap();
    let lik = Likelihood::Categorical;
    let build = |arch: Arch| {
        SpikeSlabNet::new(arch, prior, lik, &Init::default(), 0, DType::F32)
            .unwrap_err()
            .to_string()
    };
    let e = build(Arch::uniform(3, 2, 16, 1_000_000_000_000));
    assert!(e.contains("at most 2^31"), "{e}");
    let e = build(Arch::uniform(3, 2, 1_000_000_000, 2));
    assert!(
        e.contains("more than 2^64") || e.contains("at most 2^31"),
        "{e}"
    );
    let e = build(Arch::uniform(3, 1001, 1, 2));
    assert!(e.contains("1001 hidden layers"), "{e}");
    let e = build(Arch::uniform(3, 2, 0, 2));
    assert!(e.contains("width 0"), "{e}");
    let e = build(Arch::uniform(3, 1, 4, 1));
    assert!(e.contains("at least 2 outputs"), "{e}");
    assert_eq!(
        Arch::uniform(3, 1, 4, 2).check().unwrap(),
        3 * 4 + 4 + 4 * 2 + 2
    );
}
