//! Loaders on a small fixture in the real MS-TCN / Breakfast layout (written by numpy:
//! `f4`, `f8` log-probabilities and a Fortran-ordered array), and a synthetic round trip.
use elide_segment::dataset::Dataset;
use elide_segment::evaluate::{evaluate, SplitSpec, TaskKind};
use elide_segment::fifa::FifaOptions;
use elide_segment::synth::{generate, write, SynthConfig};
use elide_segment::viterbi::ExactOptions;
use elide_segment::{Method, SegError};
use std::path::{Path, PathBuf};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mini")
}

fn spec() -> SplitSpec {
    SplitSpec {
        train: "train.split1".into(),
        test: "test.split1".into(),
        probs: None,
        prior: false,
        background: vec![0],
    }
}

#[test]
fn reads_the_fixture() {
    let ds = Dataset::open(&fixture()).unwrap();
    assert_eq!(
        ds.mapping().names(),
        ["SIL", "take_cup", "pour_coffee", "add_sugar"]
    );
    let test = ds.bundle("test.split1").unwrap();
    assert_eq!(test, ["P03_cam02_P03_coffee", "P04_stereo01_P04_coffee"]);
    let gt = ds.ground_truth("P02_webcam01_P02_coffee").unwrap();
    assert_eq!(gt.len(), 20);
    assert_eq!(&gt[..8], &[0, 0, 1, 1, 1, 1, 1, 3]);
    assert_eq!(ds.feature_shape("P03_cam02_P03_coffee").unwrap(), (6, 22));
    for v in [
        "P01_cam01_P01_coffee",
        "P02_webcam01_P02_coffee",
        "P03_cam02_P03_coffee",
    ] {
        let s = ds.scores(None, v).unwrap();
        let gt = ds.ground_truth(v).unwrap();
        assert_eq!(s.frames(), gt.len());
        // Every layout (f4 probabilities, f8 log-probabilities, Fortran order) reads the same.
        assert_eq!(s.argmax(), gt, "{v}");
        assert!((s.get(0, 0) - 0.7f64.ln()).abs() < 1e-6);
    }
}

#[test]
fn evaluates_a_split_with_both_decoders() {
    let ds = Dataset::open(&fixture()).unwrap();
    for method in [
        Method::Exact(ExactOptions::default()),
        Method::Fifa(FifaOptions {
            iters: 200,
            bins: 0,
            sharpness: 400.0,
            ..Default::default()
        }),
    ] {
        let (videos, s) = evaluate(&ds, &spec(), TaskKind::Alignment, &method).unwrap();
        assert_eq!(videos.len(), 2);
        assert!(s.mof > 90.0, "{method:?}: {s:?}");
        let (_, s) = evaluate(&ds, &spec(), TaskKind::Segmentation, &method).unwrap();
        assert!(s.mof > 60.0, "{method:?}: {s:?}");
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

#[test]
fn broken_files_are_clear_errors() {
    let dir = std::env::temp_dir().join(format!("elide-seg-fixture-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    copy_dir(&fixture(), &dir);
    let ds = Dataset::open(&dir).unwrap();
    std::fs::write(
        dir.join("groundTruth/P03_cam02_P03_coffee.txt"),
        "SIL\nfry_egg\n",
    )
    .unwrap();
    let e = ds.ground_truth("P03_cam02_P03_coffee").unwrap_err();
    assert!(matches!(e, SegError::Parse { line: 2, .. }), "{e}");
    std::fs::write(
        dir.join("probs/P04_stereo01_P04_coffee.npy"),
        b"\x93NUMPY junk",
    )
    .unwrap();
    assert!(matches!(
        ds.scores(None, "P04_stereo01_P04_coffee"),
        Err(SegError::Npy { .. })
    ));
    assert!(matches!(ds.bundle("nope"), Err(SegError::Io { .. })));
    std::fs::write(dir.join("mapping.txt"), "0 SIL\n0 take_cup\n").unwrap();
    assert!(Dataset::open(&dir).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn ground_truth_and_probabilities_must_have_as_many_frames() {
    let dir = std::env::temp_dir().join(format!("elide-seg-frames-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    copy_dir(&fixture(), &dir);
    let video = "P04_stereo01_P04_coffee";
    let gt_file = dir.join(format!("groundTruth/{video}.txt"));
    let gt = std::fs::read_to_string(&gt_file).unwrap();
    let lines: Vec<&str> = gt.lines().collect();
    let probs = Dataset::open(&dir).unwrap().scores(None, video).unwrap();
    assert_eq!(probs.frames(), lines.len());
    let ds = Dataset::open(&dir).unwrap();
    let method = Method::Exact(ExactOptions::default());
    // Cut to 5 frames, or doubled: both are errors naming the video and both lengths.
    for (text, frames) in [
        (lines[..5].join("\n"), 5),
        (format!("{gt}{gt}"), 2 * lines.len()),
    ] {
        std::fs::write(&gt_file, text).unwrap();
        let e = evaluate(&ds, &spec(), TaskKind::Alignment, &method).unwrap_err();
        let want = format!(
            "video {video}: the ground truth has {frames} frames, the probabilities {}",
            lines.len()
        );
        assert!(e.to_string().contains(&want), "{e}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn results_report_a_step_reduced_to_fit_the_transcript() {
    let ds = Dataset::open(&fixture()).unwrap();
    for (subsample, reduced) in [(2, false), (1000, true)] {
        let method = Method::Exact(ExactOptions {
            subsample,
            ..Default::default()
        });
        let (videos, _) = evaluate(&ds, &spec(), TaskKind::Alignment, &method).unwrap();
        for v in &videos {
            let n = v.segments.len();
            assert_eq!(v.step < subsample, reduced, "{}", v.video);
            assert!(v.step * n <= v.frames, "{}: step {}", v.video, v.step);
        }
    }
}

#[test]
fn synthetic_config_errors_name_the_field() {
    for (cfg, want) in [
        (
            SynthConfig {
                videos: 1,
                ..Default::default()
            },
            "videos must be at least 2",
        ),
        (
            SynthConfig {
                frames: (500, 400),
                ..Default::default()
            },
            "got (500, 400)",
        ),
        (
            SynthConfig {
                blur: 0.0,
                ..Default::default()
            },
            "blur must be positive and finite, got 0",
        ),
        (
            SynthConfig {
                noise: f64::NAN,
                ..Default::default()
            },
            "noise must be non-negative and finite, got NaN",
        ),
        // A range no video reaches: an error, not an endless loop.
        (
            SynthConfig {
                videos: 2,
                frames: (1_000_000, 2_000_000),
                ..Default::default()
            },
            "0 of 2 drawn in 2000 tries",
        ),
    ] {
        let e = generate(&cfg).unwrap_err().to_string();
        assert!(e.contains(want), "{e}");
        assert!(!e.contains("SynthConfig"), "{e}");
    }
}

#[test]
fn synthetic_dataset_round_trips_through_the_layout() {
    let dir = std::env::temp_dir().join(format!("elide-seg-synth-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let ds = generate(&SynthConfig {
        videos: 6,
        frames: (300, 1500),
        ..Default::default()
    })
    .unwrap();
    write(&ds, &dir).unwrap();
    let back = Dataset::open(&dir).unwrap();
    assert_eq!(back.mapping(), &ds.mapping);
    for v in &ds.videos {
        assert_eq!(back.ground_truth(&v.name).unwrap(), v.gt);
        assert_eq!(back.feature_shape(&v.name).unwrap(), (48, v.frames()));
        assert_eq!(back.scores(None, &v.name).unwrap().frames(), v.frames());
    }
    assert_eq!(back.bundle("train.split1").unwrap().len(), ds.train);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn reads_lengths_and_grammar_files() {
    use elide_segment::{Grammar, LengthModel};
    let ds = Dataset::open(&fixture()).unwrap();
    let m = ds.mapping();
    let dir = std::env::temp_dir().join(format!("elide-seg-files-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("lengths.txt");
    std::fs::write(
        &f,
        "SIL 30\ntake_cup 120.5\npour_coffee 200\nadd_sugar 80\n",
    )
    .unwrap();
    let l = LengthModel::read(&f, m).unwrap();
    assert_eq!((l.mean(0), l.mean(1), l.mean(3)), (30.0, 120.5, 80.0));
    std::fs::write(&f, "30\n120\n200\n80\n").unwrap();
    assert_eq!(LengthModel::read(&f, m).unwrap().mean(2), 200.0);
    // Errors name the file and the 1-based line of the problem (none for the whole file).
    let name = f.display().to_string();
    for (bad, want) in [
        ("SIL 30\n", format!("{name}: no length for class take_cup")),
        ("30\n120\n", format!("{name}: 2 lengths for 4 classes")),
        (
            "SIL 1\ntake_cup -1\npour_coffee 1\nadd_sugar 1\n",
            format!("{name}:2: mean length -1 must be positive"),
        ),
        (
            "SIL 0\n",
            format!("{name}:1: mean length 0 must be positive"),
        ),
        ("\nSIL nan\n", format!("{name}:2: mean length NaN")),
        (
            "\nfry_egg 3\n",
            format!("{name}:2: unknown label \"fry_egg\""),
        ),
        (
            "SIL 3\nSIL 4\n",
            format!("{name}:2: SIL given twice (line 1 too)"),
        ),
        ("SIL 3\n4\n", format!("{name}:1: mixes")),
        ("SIL x\n", format!("{name}:1: \"x\" is not a number")),
    ] {
        std::fs::write(&f, bad).unwrap();
        let e = LengthModel::read(&f, m).unwrap_err().to_string();
        assert!(e.contains(&want), "{bad:?}: {e}");
    }
    let g = dir.join("grammar.txt");
    std::fs::write(
        &g,
        "SIL take_cup pour_coffee SIL\n\nSIL take_cup add_sugar pour_coffee SIL\n",
    )
    .unwrap();
    let gr = Grammar::read(&g, m).unwrap();
    assert_eq!(gr.transcripts().len(), 2);
    assert_eq!(gr.transcripts()[1], [0, 1, 3, 2, 0]);
    std::fs::write(&g, "SIL take_cup\nSIL fry_egg SIL\n").unwrap();
    assert!(matches!(
        Grammar::read(&g, m),
        Err(SegError::Parse { line: 2, .. })
    ));
    std::fs::write(&g, "\n  \n").unwrap();
    let e = Grammar::read(&g, m).unwrap_err().to_string();
    assert_eq!(e, format!("{}: no transcripts", g.display()));
    std::fs::remove_dir_all(&dir).unwrap();
}
