//! Metrics against hand-computed cases.
use elide_segment::metrics::{self, Accumulator};

// gt:   0 0 1 1 1 1 2 2 2 0      segments: bg[0,2) 1[2,6) 2[6,9) bg[9,10)
// pred: 0 1 1 1 2 2 2 2 0 0      segments: bg[0,1) 1[1,4) 2[4,8) bg[8,10)
const GT: [usize; 10] = [0, 0, 1, 1, 1, 1, 2, 2, 2, 0];
const PRED: [usize; 10] = [0, 1, 1, 1, 2, 2, 2, 2, 0, 0];

#[test]
fn mof_counts_frames() {
    // Equal at frames 0, 2, 3, 6, 7, 9.
    assert_eq!(metrics::mof(&PRED, &GT).unwrap(), 60.0);
    assert!(metrics::mof(&PRED[..9], &GT).is_err());
}

#[test]
fn iou_and_iod_per_ground_truth_segment() {
    // class 1: gt [2,6), pred [1,4): inter 2, union 5, pred length 3.
    // class 2: gt [6,9), pred [4,8): inter 2, union 5, pred length 4.
    let iou = metrics::iou(&PRED, &GT, &[0]).unwrap().unwrap();
    assert!((iou - 100.0 * (2.0 / 5.0 + 2.0 / 5.0) / 2.0).abs() < 1e-12);
    let iod = metrics::iod(&PRED, &GT, &[0]).unwrap().unwrap();
    assert!((iod - 100.0 * (2.0 / 3.0 + 2.0 / 4.0) / 2.0).abs() < 1e-12);
    // With background counted: bg gt [0,2) best pred bg [0,1) 1/2; bg gt [9,10) best [8,10) 1/2.
    let iou_all = metrics::iou(&PRED, &GT, &[]).unwrap().unwrap();
    assert!((iou_all - 100.0 * (0.5 + 0.4 + 0.4 + 0.5) / 4.0).abs() < 1e-12);
    assert_eq!(metrics::iou(&[0, 0], &[0, 0], &[0]).unwrap(), None);
}

#[test]
fn f1_at_thresholds() {
    // Both foreground predictions have IoU 0.4 with their ground truth.
    let c10 = metrics::f1_counts(&PRED, &GT, 0.10, &[0]).unwrap();
    assert_eq!((c10.tp, c10.fp, c10.fn_), (2, 0, 0));
    assert_eq!(c10.f1(), 100.0);
    let c50 = metrics::f1_counts(&PRED, &GT, 0.50, &[0]).unwrap();
    assert_eq!((c50.tp, c50.fp, c50.fn_), (0, 2, 2));
    assert_eq!(c50.f1(), 0.0);
    // A split prediction: the second piece of class 1 is a false positive.
    let split = [1, 1, 1, 0, 1, 1];
    let gt = [1, 1, 1, 1, 1, 1];
    let c = metrics::f1_counts(&split, &gt, 0.25, &[0]).unwrap();
    assert_eq!((c.tp, c.fp, c.fn_), (1, 1, 0));
    assert!((c.f1() - 100.0 * 2.0 * 0.5 * 1.0 / 1.5).abs() < 1e-12);
}

#[test]
fn edit_is_normalised_levenshtein() {
    assert_eq!(metrics::edit(&PRED, &GT, &[0]).unwrap(), 100.0);
    // pred segments: 1 2 1 ; gt: 1 2 -> one insertion over max length 3.
    let pred = [1, 1, 2, 2, 1, 1];
    let gt = [1, 1, 1, 2, 2, 2];
    assert!((metrics::edit(&pred, &gt, &[]).unwrap() - 100.0 * (1.0 - 1.0 / 3.0)).abs() < 1e-12);
    // kitten/sitting-like: 3 2 1 vs 1 2 3 -> two substitutions.
    assert!((metrics::edit(&[3, 2, 1], &[1, 2, 3], &[]).unwrap() - 100.0 / 3.0).abs() < 1e-12);
}

#[test]
fn accumulator_pools_frames_and_counts() {
    let mut acc = Accumulator::default();
    acc.add(&PRED, &GT, &[0]).unwrap();
    acc.add(&GT, &GT, &[0]).unwrap();
    let s = acc.summary();
    assert_eq!(s.mof, 80.0);
    assert!((s.iou - (40.0 + 100.0) / 2.0).abs() < 1e-12);
    // F1@50: tp 2, fp 2, fn 2 -> P = R = 0.5.
    assert!((s.f1[2] - 50.0).abs() < 1e-12);
    assert_eq!(s.edit, 100.0);
}
