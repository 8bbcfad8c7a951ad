//! Networks with a conv front: training on a planted image problem, the KL, save/load, and
//! bad geometry as errors.
use candle_core::DType;
use elide_bayes::conv::Conv2dConfig;
use elide_bayes::dense::{dense_accuracy, train_dense, DenseNet};
use elide_bayes::net::{ConvFront, ConvStage};
use elide_bayes::predict::{predict, Prediction};
use elide_bayes::prior::theory_lambda;
use elide_bayes::rng::Rng;
use elide_bayes::search::{estimate_elbo, estimate_elbo_in_chunks, search, FitSettings, Grid};
use elide_bayes::select::density;
use elide_bayes::train::{train, TrainConfig};
use elide_bayes::{io, Arch, Dataset, Init, Likelihood, Prior, SpikeSlabNet, Targets};

const SIDE: usize = 8;

/// 8x8 images of noise with a bright 2x2 spot in the top-left (class 0) or bottom-right
/// (class 1) quadrant.
fn spots(n: usize, seed: u64) -> Dataset {
    let mut r = Rng::new(seed);
    let p = SIDE * SIDE;
    let mut x = vec![0f32; n * p];
    let mut labels = Vec::with_capacity(n);
    for i in 0..n {
        let img = &mut x[i * p..(i + 1) * p];
        img.iter_mut().for_each(|v| *v = 0.3 * r.normal() as f32);
        let class = (r.next_u64() % 2) as u32;
        let (y0, x0) = if class == 0 { (0, 0) } else { (4, 4) };
        let (dy, dx) = ((r.next_u64() % 3) as usize, (r.next_u64() % 3) as usize);
        for y in 0..2 {
            for xx in 0..2 {
                img[(y0 + dy + y) * SIDE + x0 + dx + xx] += 2.0;
            }
        }
        labels.push(class);
    }
    Dataset::new(n, p, x, Targets::Labels(labels), 2).unwrap()
}

/// The fraction of `data`'s labels that `pr` predicts.
fn accuracy(pr: &Prediction, data: &Dataset) -> f64 {
    let Targets::Labels(labels) = &data.targets else {
        unreachable!("the spot images are labelled")
    };
    let right = pr
        .classes()
        .iter()
        .zip(labels)
        .filter(|(a, b)| **a == **b as usize)
        .count();
    right as f64 / labels.len() as f64
}

fn front() -> ConvFront {
    ConvFront {
        image: [1, SIDE, SIDE],
        stages: vec![ConvStage {
            channels: 4,
            kernel: [3, 3],
            config: Conv2dConfig {
                stride: [2, 2],
                padding: [1, 1],
                ..Default::default()
            },
        }],
    }
}

fn conv_net(n: usize, seed: u64) -> SpikeSlabNet {
    let arch = Arch {
        conv: Some(front()),
        ..Arch::uniform(SIDE * SIDE, 1, 8, 2)
    };
    let lambda = theory_lambda(arch.theory_sizes(n), 0.1).unwrap();
    let prior = Prior::new(lambda, 1.3).unwrap();
    SpikeSlabNet::new(
        arch,
        prior,
        Likelihood::Categorical,
        &Init::default(),
        seed,
        DType::F32,
    )
    .unwrap()
}

#[test]
fn geometry_and_kl_cover_the_front() {
    let net = conv_net(100, 1);
    assert_eq!(net.convs.len(), 1);
    // 4 channels of 4x4 after the stride-2 stage: 64 features into the hidden layer.
    assert_eq!(net.arch.sizes(), vec![64, 8, 2]);
    assert_eq!(net.arch.params(), 4 * 9 + 4 + 64 * 8 + 8 + 8 * 2 + 2);
    let parts: f64 = net.convs[0]
        .kl(&net.prior)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap() as f64
        + net
            .layers
            .iter()
            .map(|l| l.kl(&net.prior).unwrap().to_scalar::<f32>().unwrap() as f64)
            .sum::<f64>();
    let all = net.kl().unwrap().to_scalar::<f32>().unwrap() as f64;
    assert!((all - parts).abs() < 1e-3 * parts.abs(), "{all} vs {parts}");
    assert_eq!(net.groups().len(), 2 + 4);
}

#[test]
fn learns_planted_spots_and_round_trips() {
    let n = 400;
    let data = spots(n, 2);
    let net = conv_net(n, 3);
    let cfg = TrainConfig {
        epochs: 60,
        batch_size: 50,
        lr: 2e-2,
        ..Default::default()
    };
    let hist = train(&net, &data, &cfg, |_| {}).unwrap();
    assert!(hist.last().unwrap().density < 1.0);
    let test = spots(300, 4);
    let x = test.x_tensor(DType::F32).unwrap();
    let pr = predict(&net, &x, 10, 0.9, 5).unwrap();
    let acc = accuracy(&pr, &test);
    assert!(acc > 0.9, "test accuracy {acc}");
    // The conv kernels' gates are trained too: some are pruned.
    let conv_phi = net.convs[0].phi().unwrap();
    assert!(
        conv_phi.iter().any(|&p| p < 0.5),
        "no conv weight pruned: {conv_phi:?}"
    );
    assert!(density(&net).unwrap() < 0.9);

    let dir = std::env::temp_dir().join(format!("elide-conv-net-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("m.safetensors");
    io::save(&net, &path, serde_json::json!({})).unwrap();
    let (back, desc) = io::load(&path).unwrap();
    assert_eq!(desc.arch, net.arch);
    assert_eq!(back.convs[0].phi().unwrap(), conv_phi);
    assert_eq!(
        back.convs[0].weight.mu().unwrap(),
        net.convs[0].weight.mu().unwrap()
    );
    let again = predict(&back, &x, 10, 0.9, 5).unwrap();
    assert_eq!(again.mean, pr.mean);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_fronts_are_config_errors() {
    let prior = Prior::new(0.1, 1.0).unwrap();
    let make = |arch: Arch| {
        SpikeSlabNet::new(
            arch,
            prior,
            Likelihood::Categorical,
            &Init::default(),
            1,
            DType::F32,
        )
    };
    // The image does not match the inputs.
    let wrong = Arch {
        conv: Some(front()),
        ..Arch::uniform(60, 1, 8, 2)
    };
    let e = make(wrong).unwrap_err().to_string();
    assert!(e.contains("64 inputs"), "{e}");
    // A kernel larger than the image.
    let mut tiny = front();
    tiny.image = [1, 2, 2];
    tiny.stages[0].config.padding = [0, 0];
    let e = make(Arch {
        conv: Some(tiny),
        ..Arch::uniform(4, 1, 8, 2)
    })
    .unwrap_err()
    .to_string();
    assert!(e.contains("smaller than the dilated kernel"), "{e}");
    // No stages.
    let mut none = front();
    none.stages.clear();
    assert!(make(Arch {
        conv: Some(none),
        ..Arch::uniform(64, 1, 8, 2)
    })
    .is_err());
}

/// The dense baseline with the same conv front learns the same problem.
#[test]
fn dense_baseline_with_a_conv_front() {
    let arch = Arch {
        conv: Some(front()),
        ..Arch::uniform(SIDE * SIDE, 1, 8, 2)
    };
    let net = DenseNet::new(arch, Likelihood::Categorical, &Init::default(), 3).unwrap();
    assert_eq!(net.convs.len(), 1);
    assert_eq!(net.vars().len(), 2 + 4);
    let cfg = TrainConfig {
        epochs: 40,
        batch_size: 50,
        lr: 1e-2,
        ..Default::default()
    };
    train_dense(&net, &spots(400, 2), &cfg, |_, _| {}).unwrap();
    let acc = dense_accuracy(&net, &spots(300, 4)).unwrap();
    assert!(acc > 0.9, "test accuracy {acc}");
    assert!(net.density().unwrap() > 0.99);
}

#[test]
fn elbo_in_chunks_replays_each_draw() {
    // Random gates and slabs (the default initialisation): every chunk of one draw must see
    // the same weights, or the chunked estimate would differ from the one-pass estimate.
    let data = spots(50, 8);
    let net = conv_net(50, 9);
    let whole = estimate_elbo(&net, &data, 3, 4).unwrap();
    for rows in [1, 7, 49, 50] {
        let part = estimate_elbo_in_chunks(&net, &data, 3, 4, rows).unwrap();
        assert!(
            (part.nll - whole.nll).abs() <= 1e-4 * whole.nll.abs(),
            "{rows} rows per pass: {part:?} against {whole:?}"
        );
        assert_eq!(part.kl, whole.kl);
    }
    // A different seed draws other weights (so the comparison above can fail).
    let other = estimate_elbo(&net, &data, 3, 5).unwrap();
    assert!(other.nll != whole.nll);
    assert!(estimate_elbo_in_chunks(&net, &data, 3, 4, 0).is_err());
}

#[test]
fn search_with_a_conv_front_chooses_the_head() {
    let n = 300;
    let data = spots(n, 10);
    let settings = FitSettings {
        likelihood: Likelihood::Categorical,
        sigma0: 1.3,
        delta: 0.1,
        init: Init::default(),
        seed: 11,
        train: TrainConfig {
            epochs: 30,
            batch_size: 50,
            lr: 2e-2,
            ..Default::default()
        },
        elbo_samples: 3,
    };
    let grid = Grid::new(vec![1, 2], vec![2, 8])
        .unwrap()
        .with_conv(Some(front()));
    let s = search(&data, 2, &grid, &settings, |_| {}).unwrap();
    assert_eq!(s.candidates.len(), 4);
    for c in &s.candidates {
        // Every candidate is the shared front plus its own head.
        let arch = Arch {
            conv: Some(front()),
            ..Arch::uniform(SIDE * SIDE, c.layers, c.width, 2)
        };
        assert_eq!(c.params, arch.params(), "{c:?}");
        assert_eq!(c.lambda, theory_lambda(arch.theory_sizes(n), 0.1).unwrap());
        assert!(c.elbo.elbo.is_finite(), "{c:?}");
    }
    let chosen = &s.candidates[s.chosen];
    let best = s
        .candidates
        .iter()
        .map(|c| c.elbo.elbo)
        .fold(f64::NEG_INFINITY, f64::max);
    assert_eq!(chosen.elbo.elbo, best);
    assert_eq!(s.net.arch.conv, Some(front()));
    assert_eq!(s.net.arch.hidden, vec![chosen.width; chosen.layers]);
    // The chosen network classifies held-out images.
    let test = spots(200, 12);
    let pr = predict(&s.net, &test.x_tensor(DType::F32).unwrap(), 10, 0.9, 13).unwrap();
    let acc = accuracy(&pr, &test);
    assert!(acc > 0.9, "test accuracy {acc}");
}
