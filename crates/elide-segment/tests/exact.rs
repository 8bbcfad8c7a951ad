//! The exact decoders against brute-force enumeration of every segmentation on tiny cases.
use elide_segment::rng::Rng;
use elide_segment::viterbi::{self, ExactOptions};
use elide_segment::{FrameScores, Grammar, LengthModel, ProbKind, SegError};

fn random_scores(rng: &mut Rng, t: usize, c: usize) -> FrameScores {
    let mut v = Vec::with_capacity(t * c);
    for _ in 0..t {
        let row: Vec<f64> = (0..c).map(|_| rng.uniform() + 0.05).collect();
        let s: f64 = row.iter().sum();
        v.extend(row.iter().map(|x| x / s));
    }
    FrameScores::new(t, c, &v, ProbKind::Probs).unwrap()
}

/// Every way of cutting `t` frames into `n` segments with boundaries on multiples of `step`
/// (and `t`), each at most `max_len` frames; the best total score.
fn brute(
    s: &FrameScores,
    tr: &[usize],
    lm: &LengthModel,
    step: usize,
    max_len: usize,
    w: f64,
) -> f64 {
    fn rec(
        s: &FrameScores,
        tr: &[usize],
        lm: &LengthModel,
        step: usize,
        max_len: usize,
        w: f64,
        start: usize,
    ) -> f64 {
        let t = s.frames();
        let Some((&c, rest)) = tr.split_first() else {
            return if start == t { 0.0 } else { f64::NEG_INFINITY };
        };
        let table = lm.log_poisson_table(c, t, w);
        let mut best = f64::NEG_INFINITY;
        let mut end = start + 1;
        while end <= t {
            let on_grid = end.is_multiple_of(step) || end == t;
            if on_grid && end - start <= max_len {
                let seg: f64 = (start..end).map(|f| s.get(f, c)).sum();
                let v = seg + table[end - start] + rec(s, rest, lm, step, max_len, w, end);
                best = best.max(v);
            }
            end += 1;
        }
        best
    }
    rec(s, tr, lm, step, max_len, w, 0)
}

/// The score the decoder claims must be the score of the segments it returns.
fn rescore(s: &FrameScores, d: &viterbi::Decoded, lm: &LengthModel, w: f64) -> f64 {
    let mut prev = 0;
    let mut total = 0.0;
    for seg in &d.segments {
        assert_eq!(seg.start, prev, "segments must be contiguous");
        assert!(seg.end > seg.start, "empty segment");
        total += (seg.start..seg.end)
            .map(|f| s.get(f, seg.label))
            .sum::<f64>();
        total += lm.log_poisson_table(seg.label, s.frames(), w)[seg.len()];
        prev = seg.end;
    }
    assert_eq!(prev, s.frames());
    total
}

#[test]
fn alignment_matches_brute_force() {
    let mut rng = Rng::new(7);
    for case in 0..300 {
        let c = 2 + rng.below(3);
        let n = 1 + rng.below(4);
        let t = n + rng.below(9);
        let s = random_scores(&mut rng, t, c);
        let tr: Vec<usize> = (0..n).map(|_| rng.below(c)).collect();
        let lm = LengthModel::new((0..c).map(|_| 1.0 + 4.0 * rng.uniform()).collect()).unwrap();
        let w = [1.0, 0.3][case % 2];
        let step = [1, 2, 3][case % 3];
        let max_len = if case % 4 == 0 { t.div_ceil(n) + 2 } else { t };
        let opt = ExactOptions {
            subsample: step,
            max_len: Some(max_len),
            length_weight: w,
        };
        let eff_step = step.clamp(1, t / n);
        let limit = (max_len / eff_step).max(1) * eff_step;
        let want = brute(&s, &tr, &lm, eff_step, limit, w);
        match viterbi::align(&s, &tr, &lm, &opt) {
            Ok(d) => {
                assert!(
                    (d.score - want).abs() < 1e-9,
                    "case {case}: {} vs {want}",
                    d.score
                );
                assert!(
                    (rescore(&s, &d, &lm, w) - d.score).abs() < 1e-9,
                    "case {case}"
                );
                let labels: Vec<usize> = d.segments.iter().map(|s| s.label).collect();
                assert_eq!(labels, tr);
            }
            Err(SegError::Invalid(_)) => assert_eq!(want, f64::NEG_INFINITY, "case {case}"),
            Err(e) => panic!("case {case}: {e}"),
        }
    }
}

#[test]
fn grammar_segmentation_matches_brute_force() {
    let mut rng = Rng::new(11);
    for case in 0..40 {
        let c = 2 + rng.below(3);
        let t = 4 + rng.below(7);
        let s = random_scores(&mut rng, t, c);
        let lm = LengthModel::new((0..c).map(|_| 1.0 + 3.0 * rng.uniform()).collect()).unwrap();
        let transcripts: Vec<Vec<usize>> = (0..1 + rng.below(5))
            .map(|_| (0..1 + rng.below(4)).map(|_| rng.below(c)).collect())
            .collect();
        let g = Grammar::new(transcripts.clone()).unwrap();
        let step = 1 + case % 2;
        let opt = ExactOptions {
            subsample: step,
            ..Default::default()
        };
        let eff = step.clamp(1, t / g.min_len());
        let want = transcripts
            .iter()
            .filter(|tr| tr.len() * eff <= t)
            .map(|tr| brute(&s, tr, &lm, eff, t, 1.0))
            .fold(f64::NEG_INFINITY, f64::max);
        let d = viterbi::segment(&s, &g, &lm, &opt).unwrap();
        assert!(
            (d.score - want).abs() < 1e-9,
            "case {case}: {} vs {want}",
            d.score
        );
        assert!((rescore(&s, &d, &lm, 1.0) - d.score).abs() < 1e-9);
        let labels: Vec<usize> = d.segments.iter().map(|s| s.label).collect();
        assert!(
            transcripts.contains(&labels),
            "case {case}: {labels:?} not in grammar"
        );
    }
}

#[test]
fn clean_probabilities_are_aligned_exactly() {
    // Frames 0..5 are class 1, 5..12 class 0, 12..15 class 2, with confident probabilities.
    let gt: Vec<usize> = [1; 5].into_iter().chain([0; 7]).chain([2; 3]).collect();
    let mut p = Vec::new();
    for &g in &gt {
        p.extend((0..3).map(|c| if c == g { 0.9 } else { 0.05 }));
    }
    let s = FrameScores::new(15, 3, &p, ProbKind::Probs).unwrap();
    let lm = LengthModel::uniform(3, 5.0).unwrap();
    let d = viterbi::align(&s, &[1, 0, 2], &lm, &ExactOptions::default()).unwrap();
    let got: Vec<(usize, usize)> = d.segments.iter().map(|s| (s.start, s.end)).collect();
    assert_eq!(got, [(0, 5), (5, 12), (12, 15)]);
}

#[test]
fn bad_inputs_are_errors() {
    let mut rng = Rng::new(1);
    let s = random_scores(&mut rng, 4, 3);
    let lm = LengthModel::uniform(3, 2.0).unwrap();
    let opt = ExactOptions::default();
    assert!(matches!(
        viterbi::align(&s, &[], &lm, &opt),
        Err(SegError::EmptyTranscript)
    ));
    assert!(matches!(
        viterbi::align(&s, &[0, 1, 2, 0, 1], &lm, &opt),
        Err(SegError::TooShort {
            frames: 4,
            segments: 5
        })
    ));
    assert!(matches!(
        viterbi::align(&s, &[0, 7], &lm, &opt),
        Err(SegError::UnknownLabel(_))
    ));
    let lm2 = LengthModel::uniform(2, 2.0).unwrap();
    assert!(matches!(
        viterbi::align(&s, &[0, 1], &lm2, &opt),
        Err(SegError::Mismatch(_))
    ));
    let g = Grammar::new([vec![0, 1, 2, 0, 1]]).unwrap();
    assert!(matches!(
        viterbi::segment(&s, &g, &lm, &opt),
        Err(SegError::TooShort { .. })
    ));
}
