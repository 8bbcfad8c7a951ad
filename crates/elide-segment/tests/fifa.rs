//! FIFA: the analytic gradient against central finite differences, the anytime loop, and
//! agreement with the exact decoder where the answer is clear.
use elide_segment::fifa::{self, FifaOptions, Init, Problem};
use elide_segment::rng::Rng;
use elide_segment::synth::{generate, SynthConfig};
use elide_segment::viterbi::{self, ExactOptions};
use elide_segment::{metrics, segments, FrameScores, Grammar, LengthModel, ProbKind, SegError};
use std::time::Duration;

fn random_scores(rng: &mut Rng, t: usize, c: usize) -> FrameScores {
    let mut v = Vec::with_capacity(t * c);
    for _ in 0..t {
        let row: Vec<f64> = (0..c).map(|_| rng.uniform().powi(3) + 1e-3).collect();
        let s: f64 = row.iter().sum();
        v.extend(row.iter().map(|x| x / s));
    }
    FrameScores::new(t, c, &v, ProbKind::Probs).unwrap()
}

#[test]
fn gradient_matches_finite_differences() {
    let mut rng = Rng::new(3);
    for case in 0..24 {
        let t = 40 + rng.below(300);
        let c = 4;
        let s = random_scores(&mut rng, t, c);
        let n = 1 + rng.below(6);
        let tr: Vec<usize> = (0..n).map(|_| rng.below(c)).collect();
        let target: Vec<f64> = (0..n)
            .map(|_| t as f64 / n as f64 * (0.5 + rng.uniform()))
            .collect();
        let sharp = [10.0, 80.0, 300.0][case % 3];
        let bins = [0, 64, t][case % 3].max(1);
        let p = Problem::new(&s, &tr, target, sharp, 0.1 + rng.uniform(), bins);
        let z: Vec<f64> = (0..n).map(|_| rng.normal() * 0.7).collect();
        let mut g = vec![0.0; n];
        p.energy_grad(&z, &mut g);
        let h = 1e-6;
        for i in 0..n {
            let (mut zp, mut zm) = (z.clone(), z.clone());
            zp[i] += h;
            zm[i] -= h;
            let mut scratch = vec![0.0; n];
            let fd =
                (p.energy_grad(&zp, &mut scratch) - p.energy_grad(&zm, &mut scratch)) / (2.0 * h);
            let scale = g.iter().map(|v| v.abs()).fold(1e-3, f64::max);
            assert!(
                (fd - g[i]).abs() <= 1e-5 * scale,
                "case {case} coordinate {i}: analytic {} vs finite difference {fd}",
                g[i]
            );
        }
    }
}

#[test]
fn energy_is_invariant_to_shifting_the_logits() {
    let mut rng = Rng::new(5);
    let s = random_scores(&mut rng, 100, 3);
    let p = Problem::new(&s, &[0, 1, 2], vec![30.0, 40.0, 30.0], 80.0, 0.1, 50);
    let mut g = vec![0.0; 3];
    let a = p.energy_grad(&[0.1, 0.5, -0.2], &mut g);
    let b = p.energy_grad(&[1.1, 1.5, 0.8], &mut g);
    assert!((a - b).abs() < 1e-12);
    // Lengths always fill the video: the gradient has no component along (1, 1, 1).
    assert!(g.iter().sum::<f64>().abs() < 1e-12);
}

fn clean_video(gt: &[usize], c: usize) -> FrameScores {
    let mut p = Vec::new();
    for &g in gt {
        p.extend((0..c).map(|k| if k == g { 0.8 } else { 0.2 / (c - 1) as f64 }));
    }
    FrameScores::new(gt.len(), c, &p, ProbKind::Probs).unwrap()
}

#[test]
fn aligns_clear_boundaries_like_the_exact_decoder() {
    let lens = [300, 900, 500, 1300];
    let tr = [0, 2, 1, 3];
    let gt = segments::to_frames(&segments::from_lengths(&tr, &lens).unwrap());
    let s = clean_video(&gt, 4);
    // A length model that is off by a lot: the frames must win.
    let lm = LengthModel::uniform(4, 750.0).unwrap();
    let opt = FifaOptions {
        iters: 300,
        ..Default::default()
    };
    let f = fifa::align(&s, &tr, &lm, &opt).unwrap();
    let e = viterbi::align(&s, &tr, &lm, &ExactOptions::default()).unwrap();
    let fm = metrics::mof(&segments::to_frames(&f.segments), &gt).unwrap();
    let em = metrics::mof(&segments::to_frames(&e.segments), &gt).unwrap();
    assert!(em > 99.0, "exact {em}");
    assert!(fm > 98.0, "fifa {fm}");
    assert!(f.iters == 300);
}

#[test]
fn budget_and_init_give_valid_segmentations() {
    let mut rng = Rng::new(9);
    let s = random_scores(&mut rng, 500, 5);
    let lm = LengthModel::uniform(5, 80.0).unwrap();
    let tr = [0, 3, 1, 4, 2, 0];
    for init in [
        Init::Uniform,
        Init::Means,
        Init::Lengths(vec![1.0, 2.0, 3.0, 1.0, 1.0, 5.0]),
    ] {
        for (iters, budget) in [
            (0, None),
            (5, None),
            (100_000, Some(Duration::from_millis(20))),
        ] {
            let opt = FifaOptions {
                iters,
                budget,
                init: init.clone(),
                ..Default::default()
            };
            let d = fifa::align(&s, &tr, &lm, &opt).unwrap();
            assert_eq!(d.segments.len(), tr.len());
            assert_eq!(d.segments[0].start, 0);
            assert_eq!(d.segments.last().unwrap().end, 500);
            assert!(d.segments.iter().all(|x| x.end > x.start));
            assert!(d.segments.windows(2).all(|w| w[0].end == w[1].start));
            if budget.is_some() {
                assert!(d.iters < 100_000, "the time budget must stop the loop");
            } else {
                assert_eq!(d.iters, iters);
            }
        }
    }
    // More iterations never return a worse energy (the best iterate is kept).
    let e = |iters| {
        let o = FifaOptions {
            iters,
            ..Default::default()
        };
        fifa::align(&s, &tr, &lm, &o).unwrap().energy
    };
    assert!(e(50) <= e(10) && e(10) <= e(0));
}

#[test]
fn segmentation_finds_the_transcript_on_clear_data() {
    let tr = [0, 2, 1, 0];
    let lens = [200, 700, 400, 300];
    let gt = segments::to_frames(&segments::from_lengths(&tr, &lens).unwrap());
    let s = clean_video(&gt, 4);
    let g = Grammar::new([
        vec![0, 1, 2, 0],
        vec![0, 2, 1, 0],
        vec![0, 3, 0],
        vec![0, 2, 0],
    ])
    .unwrap();
    let lm = LengthModel::new(vec![250.0, 400.0, 700.0, 500.0]).unwrap();
    let opt = FifaOptions {
        iters: 200,
        top_k: 2,
        ..Default::default()
    };
    let f = fifa::segment(&s, &g, &lm, &opt).unwrap();
    let labels: Vec<usize> = f.segments.iter().map(|s| s.label).collect();
    assert_eq!(labels, tr);
    let e = viterbi::segment(&s, &g, &lm, &ExactOptions::default()).unwrap();
    let labels: Vec<usize> = e.segments.iter().map(|s| s.label).collect();
    assert_eq!(labels, tr);
}

#[test]
fn bad_inputs_are_errors() {
    let mut rng = Rng::new(2);
    let s = random_scores(&mut rng, 5, 3);
    let lm = LengthModel::uniform(3, 2.0).unwrap();
    let opt = FifaOptions::default();
    assert!(matches!(
        fifa::align(&s, &[], &lm, &opt),
        Err(SegError::EmptyTranscript)
    ));
    assert!(matches!(
        fifa::align(&s, &[0; 6], &lm, &opt),
        Err(SegError::TooShort {
            frames: 5,
            segments: 6
        })
    ));
    assert!(matches!(
        fifa::align(&s, &[0, 3], &lm, &opt),
        Err(SegError::UnknownLabel(_))
    ));
    // Option errors name the field and its value.
    for (bad, want) in [
        (
            FifaOptions {
                lr: f64::NAN,
                ..Default::default()
            },
            "lr must be positive and finite, got NaN",
        ),
        (
            FifaOptions {
                sharpness: 0.0,
                ..Default::default()
            },
            "sharpness must be positive and finite, got 0",
        ),
        (
            FifaOptions {
                beta: -1.0,
                ..Default::default()
            },
            "beta must be non-negative and finite, got -1",
        ),
        (
            FifaOptions {
                top_k: 0,
                ..Default::default()
            },
            "top_k must be at least 1, got 0",
        ),
    ] {
        let e = fifa::align(&s, &[0, 1], &lm, &bad).unwrap_err();
        assert!(matches!(e, SegError::Invalid(_)), "{e}");
        assert!(e.to_string().contains(want), "{e}");
        assert!(!e.to_string().contains("FifaOptions"), "{e}");
    }
    let bad_init = FifaOptions {
        init: Init::Lengths(vec![1.0]),
        ..Default::default()
    };
    assert!(matches!(
        fifa::align(&s, &[0, 1], &lm, &bad_init),
        Err(SegError::Mismatch(_))
    ));
}

#[test]
fn synthetic_data_is_calibrated_to_breakfast() {
    let ds = generate(&SynthConfig {
        videos: 60,
        ..Default::default()
    })
    .unwrap();
    let segs: Vec<usize> = ds.videos.iter().map(|v| v.transcript().len()).collect();
    let mean_segs = segs.iter().sum::<usize>() as f64 / segs.len() as f64;
    assert!(
        (5.0..=7.5).contains(&mean_segs),
        "{mean_segs} segments per video"
    );
    assert!(ds
        .videos
        .iter()
        .all(|v| (300..=10_000).contains(&v.frames())));
    assert_eq!(ds.mapping.len(), 48);
    // Frame-wise argmax is a weak but informative classifier.
    let mut acc = metrics::Accumulator::default();
    for v in &ds.videos {
        let s = FrameScores::new(
            v.frames(),
            48,
            &v.log_probs.iter().map(|&x| x as f64).collect::<Vec<_>>(),
            ProbKind::LogProbs,
        )
        .unwrap();
        acc.add(&s.argmax(), &v.gt, &[0]).unwrap();
    }
    let mof = acc.summary().mof;
    assert!((30.0..85.0).contains(&mof), "argmax MoF {mof}");
    // Same seed, same data.
    let again = generate(&SynthConfig {
        videos: 60,
        ..Default::default()
    })
    .unwrap();
    assert_eq!(again.videos[7].gt, ds.videos[7].gt);
}

/// The energy from its definition, one bin per frame, every sigmoid evaluated: the windows,
/// prefix sums and geometric `exp` recurrence must agree with it.
fn naive_energy(
    s: &FrameScores,
    tr: &[usize],
    target: &[f64],
    sharp: f64,
    beta: f64,
    z: &[f64],
) -> f64 {
    let t = s.frames() as f64;
    let mx = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let ez: Vec<f64> = z.iter().map(|v| (v - mx).exp()).collect();
    let l: Vec<f64> = ez.iter().map(|v| t * v / ez.iter().sum::<f64>()).collect();
    let sig = |x: f64| 1.0 / (1.0 + (-x).exp());
    let k = sharp / t;
    let mut e = 0.0;
    let mut start = 0.0;
    for (n, &c) in tr.iter().enumerate() {
        let end = start + l[n];
        for f in 0..s.frames() {
            let x = f as f64 + 0.5;
            let rise = if n == 0 { 1.0 } else { sig(k * (x - start)) };
            let fall = if n + 1 == tr.len() {
                1.0
            } else {
                sig(k * (end - x))
            };
            e += -s.get(f, c) * rise * fall;
        }
        start = end;
    }
    let len: f64 = l.iter().zip(target).map(|(l, m)| (l - m).abs()).sum();
    e / t + beta / t * len
}

#[test]
fn windowed_energy_matches_the_definition() {
    let mut rng = Rng::new(13);
    for case in 0..30 {
        let t = 50 + rng.below(800);
        let s = random_scores(&mut rng, t, 5);
        let n = 1 + rng.below(7);
        let tr: Vec<usize> = (0..n).map(|_| rng.below(5)).collect();
        let target: Vec<f64> = (0..n).map(|_| t as f64 / n as f64).collect();
        let sharp = [20.0, 80.0, 400.0][case % 3];
        let p = Problem::new(&s, &tr, target.clone(), sharp, 0.3, t);
        let z: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
        let mut g = vec![0.0; n];
        let got = p.energy_grad(&z, &mut g);
        let want = naive_energy(&s, &tr, &target, sharp, 0.3, &z);
        assert!(
            (got - want).abs() < 1e-7 * want.abs().max(1.0),
            "case {case}: {got} vs {want}"
        );
    }
}

/// FIFA on the subsampled grid: chunk costs summed from the frames, lengths in chunks.
#[test]
fn grid_gradient_matches_finite_differences_and_grad_only_agrees() {
    let mut rng = Rng::new(17);
    for case in 0..24 {
        let t = 60 + rng.below(900);
        let c = 5;
        let s = random_scores(&mut rng, t, c);
        let n = 1 + rng.below(6);
        let tr: Vec<usize> = (0..n).map(|_| rng.below(c)).collect();
        let step = [7, 30, 13][case % 3].min(t / n);
        let cums = s.grid_cums(&elide_segment::scores::grid(t, step), &tr);
        let m = cums.units();
        let target: Vec<f64> = (0..n)
            .map(|_| m as f64 / n as f64 * (0.5 + rng.uniform()))
            .collect();
        let sharp = [10.0, 80.0, 300.0][case % 3];
        let bins = [0, m / 2, m][case % 3].max(1);
        let p = Problem::on_grid(&cums, &tr, target, sharp, 0.1 + rng.uniform(), bins);
        assert_eq!(p.units(), m);
        let z: Vec<f64> = (0..n).map(|_| rng.normal() * 0.7).collect();
        let mut g = vec![0.0; n];
        p.energy_grad(&z, &mut g);
        let mut g_only = vec![0.0; n];
        p.grad_with(&z, &mut g_only, &mut fifa::Work::default());
        assert_eq!(g, g_only, "case {case}: gradient without the energy");
        let h = 1e-6;
        for i in 0..n {
            let (mut zp, mut zm) = (z.clone(), z.clone());
            zp[i] += h;
            zm[i] -= h;
            let mut scratch = vec![0.0; n];
            let fd =
                (p.energy_grad(&zp, &mut scratch) - p.energy_grad(&zm, &mut scratch)) / (2.0 * h);
            let scale = g.iter().map(|v| v.abs()).fold(1e-3, f64::max);
            assert!(
                (fd - g[i]).abs() <= 1e-5 * scale,
                "case {case} coordinate {i}: analytic {} vs finite difference {fd}",
                g[i]
            );
        }
    }
}

/// A chunk-level hard energy is the frame-level one of the same segmentation mapped back to
/// frames (beta 0: the length term is in different units).
#[test]
fn grid_hard_energy_is_the_frame_energy_of_its_segmentation() {
    let mut rng = Rng::new(21);
    for _ in 0..20 {
        let t = 100 + rng.below(700);
        let s = random_scores(&mut rng, t, 4);
        let n = 1 + rng.below(5);
        let tr: Vec<usize> = (0..n).map(|_| rng.below(4)).collect();
        let step = 1 + rng.below(40).min(t / n - 1);
        let cums = s.grid_cums(&elide_segment::scores::grid(t, step), &tr);
        let m = cums.units();
        let on_grid = Problem::on_grid(&cums, &tr, vec![1.0; n], 50.0, 0.0, 0);
        let frames = Problem::new(&s, &tr, vec![1.0; n], 50.0, 0.0, 0);
        // Random unit lengths summing to M, each at least one.
        let mut cuts: Vec<usize> = (0..n - 1).map(|_| 1 + rng.below(m - 1)).collect();
        cuts.sort_unstable();
        cuts.dedup();
        if cuts.len() != n - 1 {
            continue;
        }
        let mut units = Vec::new();
        let mut prev = 0;
        for &c in cuts.iter().chain(std::iter::once(&m)) {
            units.push(c - prev);
            prev = c;
        }
        let fl = on_grid.frame_lengths(&units);
        assert_eq!(fl.iter().sum::<usize>(), t);
        let (a, b) = (on_grid.hard_energy(&units), frames.hard_energy(&fl));
        assert!((a - b).abs() < 1e-9 * b.abs().max(1.0), "{a} vs {b}");
    }
}

#[test]
fn subsampled_fifa_puts_boundaries_on_chunk_edges_and_finds_clear_ones() {
    let lens = [300, 900, 510, 1290];
    let tr = [0, 2, 1, 3];
    let gt = segments::to_frames(&segments::from_lengths(&tr, &lens).unwrap());
    let s = clean_video(&gt, 4);
    let lm = LengthModel::uniform(4, 750.0).unwrap();
    for sub in [30, 7] {
        let opt = FifaOptions {
            iters: 300,
            subsample: sub,
            ..Default::default()
        };
        let f = fifa::align(&s, &tr, &lm, &opt).unwrap();
        assert!(f.segments[1..].iter().all(|x| x.start % sub == 0));
        assert_eq!(f.segments.last().unwrap().end, gt.len());
        let mof = metrics::mof(&segments::to_frames(&f.segments), &gt).unwrap();
        assert!(mof > 98.0, "sub {sub}: {mof}");
        let g = Grammar::new([tr.to_vec(), vec![0, 1, 2, 3], vec![0, 3]]).unwrap();
        let f = fifa::segment(&s, &g, &lm, &opt).unwrap();
        let labels: Vec<usize> = f.segments.iter().map(|s| s.label).collect();
        assert_eq!(labels, tr);
    }
}

#[test]
fn starts_from_a_given_segmentation() {
    let mut rng = Rng::new(4);
    let s = random_scores(&mut rng, 300, 4);
    let lm = LengthModel::uniform(4, 60.0).unwrap();
    let init = segments::from_lengths(&[1, 3, 2], &[40, 200, 60]).unwrap();
    let opt = |iters, top_k| FifaOptions {
        iters,
        top_k,
        init: Init::Segmentation(init.clone()),
        ..Default::default()
    };
    // No step: the given segmentation comes back (alignment and segmentation alike).
    let a = fifa::align(&s, &[1, 3, 2], &lm, &opt(0, 8)).unwrap();
    assert_eq!(a.segments, init);
    let g = Grammar::new([vec![0, 1], vec![1, 3, 2], vec![2, 0, 3, 1]]).unwrap();
    let d = fifa::segment(&s, &g, &lm, &opt(0, 1)).unwrap();
    assert_eq!(d.segments, init);
    // Steps never make it worse than where it started.
    let better = fifa::align(&s, &[1, 3, 2], &lm, &opt(30, 8)).unwrap();
    assert!(better.energy <= a.energy);
    // Labels that are not the transcript, or a transcript outside the grammar: errors.
    assert!(matches!(
        fifa::align(&s, &[1, 2, 3], &lm, &opt(5, 8)),
        Err(SegError::Mismatch(_))
    ));
    let g2 = Grammar::new([vec![0, 1], vec![2, 0, 3, 1]]).unwrap();
    assert!(matches!(
        fifa::segment(&s, &g2, &lm, &opt(5, 8)),
        Err(SegError::Mismatch(_))
    ));
    // A segmentation that does not cover the video.
    let short = FifaOptions {
        init: Init::Segmentation(segments::from_lengths(&[1, 3, 2], &[40, 200, 50]).unwrap()),
        ..Default::default()
    };
    assert!(matches!(
        fifa::align(&s, &[1, 3, 2], &lm, &short),
        Err(SegError::Mismatch(_))
    ));
}

/// Racing (successive halving over the top-K transcripts) against decoding every candidate
/// for all its steps: where one transcript is clearly right, both return it, and the race's
/// winner ran the full budget while the losers stopped early.
#[test]
fn racing_returns_the_transcript_of_full_decoding_on_clear_data() {
    let mut rng = Rng::new(31);
    let c = 6;
    for case in 0..12 {
        // A random transcript of 3-5 segments, its lengths, and 7 distractors.
        let n = 3 + rng.below(3);
        let mut tr: Vec<usize> = vec![0];
        while tr.len() < n {
            let k = 1 + rng.below(c - 1);
            if *tr.last().unwrap() != k {
                tr.push(k);
            }
        }
        let lens: Vec<usize> = (0..n).map(|_| 150 + rng.below(400)).collect();
        let gt = segments::to_frames(&segments::from_lengths(&tr, &lens).unwrap());
        let s = clean_video(&gt, c);
        let mut transcripts = vec![tr.clone()];
        while transcripts.len() < 8 {
            let m = 2 + rng.below(4);
            let t: Vec<usize> = (0..m).map(|_| rng.below(c)).collect();
            if t.windows(2).all(|w| w[0] != w[1]) && !transcripts.contains(&t) {
                transcripts.push(t);
            }
        }
        let g = Grammar::new(transcripts).unwrap();
        let lm = LengthModel::uniform(c, 350.0).unwrap();
        let opt = |race| FifaOptions {
            iters: 40,
            subsample: [1, 30][case % 2],
            top_k: 8,
            race,
            ..Default::default()
        };
        let full = fifa::segment(&s, &g, &lm, &opt(false)).unwrap();
        let raced = fifa::segment(&s, &g, &lm, &opt(true)).unwrap();
        let labels = |f: &fifa::FifaDecoded| f.segments.iter().map(|s| s.label).collect::<Vec<_>>();
        assert_eq!(labels(&full), tr, "case {case}: full decoding");
        assert_eq!(labels(&raced), tr, "case {case}: racing");
        // 8 candidates, 4 rounds of 10 steps: 8 x 10 + 4 x 10 + 2 x 10 + 10 = 150 steps.
        assert_eq!(full.iters, 8 * 40, "case {case}");
        assert_eq!(raced.iters, 150, "case {case}");
        assert!((raced.energy - full.energy).abs() < 1e-9 + 1e-3 * full.energy.abs());
    }
}

/// Problems sharing one table of unit costs give the energies and gradients of problems
/// building their own.
#[test]
fn shared_unit_costs_match_per_transcript_problems() {
    let mut rng = Rng::new(37);
    let s = random_scores(&mut rng, 500, 7);
    let cums = s.grid_cums(
        &elide_segment::scores::grid(500, 13),
        &[0, 1, 2, 3, 4, 5, 6],
    );
    let trs = [vec![0, 3, 1, 0], vec![2, 5], vec![6, 4, 6, 1, 3]];
    let all: Vec<usize> = trs.iter().flatten().copied().collect();
    let shared = std::sync::Arc::new(fifa::UnitCosts::new(&cums, &all, 20));
    for tr in &trs {
        let target = fifa::targets(tr, &LengthModel::uniform(7, 50.0).unwrap(), cums.units());
        let own = Problem::on_grid(&cums, tr, target.clone(), 120.0, 0.4, 20);
        let with = Problem::with_costs(shared.clone(), tr, target, 120.0, 0.4);
        let z: Vec<f64> = (0..tr.len()).map(|_| rng.normal()).collect();
        let (mut g1, mut g2) = (vec![0.0; tr.len()], vec![0.0; tr.len()]);
        assert_eq!(own.energy_grad(&z, &mut g1), with.energy_grad(&z, &mut g2));
        assert_eq!(g1, g2);
        let mut l = Vec::new();
        own.lengths_into(&z, &mut l);
        let mut g3 = vec![0.0; tr.len()];
        with.grad_at(&l, &mut g3, &mut fifa::Work::default());
        assert_eq!(g1, g3, "gradient from the lengths");
    }
}
