//! Segmentation metrics, in percent: MoF (frame accuracy), IoU and IoD as in the weakly
//! supervised literature (per ground-truth segment, the best same-class prediction, averaged;
//! background excluded), F1@{10,25,50} and the segmental Edit score of MS-TCN.
use crate::error::{Result, SegError};
use crate::segments::{from_frames, Segment};

/// The F1 overlap thresholds reported.
pub const F1_THRESHOLDS: [f64; 3] = [0.10, 0.25, 0.50];

fn same_len(pred: &[usize], gt: &[usize]) -> Result<()> {
    if pred.len() != gt.len() || gt.is_empty() {
        return Err(SegError::Mismatch(format!(
            "prediction has {} frames, ground truth {}",
            pred.len(),
            gt.len()
        )));
    }
    Ok(())
}

fn foreground(labels: &[usize], bg: &[usize]) -> Vec<Segment> {
    from_frames(labels)
        .into_iter()
        .filter(|s| !bg.contains(&s.label))
        .collect()
}

/// Correct frames.
pub fn correct(pred: &[usize], gt: &[usize]) -> Result<usize> {
    same_len(pred, gt)?;
    Ok(pred.iter().zip(gt).filter(|(p, g)| p == g).count())
}

/// Mean over frames of accuracy, in percent.
pub fn mof(pred: &[usize], gt: &[usize]) -> Result<f64> {
    Ok(100.0 * correct(pred, gt)? as f64 / gt.len() as f64)
}

/// Per foreground ground-truth segment, the best `overlap / denom` over predicted segments
/// of its class (0 if none); averaged. `None` when the ground truth has only background.
fn best_overlap(
    pred: &[usize],
    gt: &[usize],
    bg: &[usize],
    denom: impl Fn(&Segment, &Segment) -> usize,
) -> Result<Option<f64>> {
    same_len(pred, gt)?;
    let (p, g) = (foreground(pred, bg), foreground(gt, bg));
    if g.is_empty() {
        return Ok(None);
    }
    let total: f64 = g
        .iter()
        .map(|gs| {
            p.iter()
                .filter(|ps| ps.label == gs.label)
                .map(|ps| {
                    let inter = ps.end.min(gs.end).saturating_sub(ps.start.max(gs.start));
                    inter as f64 / denom(ps, gs) as f64
                })
                .fold(0.0, f64::max)
        })
        .sum();
    Ok(Some(100.0 * total / g.len() as f64))
}

/// Intersection over union (union = the span from the earlier start to the later end).
pub fn iou(pred: &[usize], gt: &[usize], bg: &[usize]) -> Result<Option<f64>> {
    best_overlap(pred, gt, bg, |p, g| p.end.max(g.end) - p.start.min(g.start))
}

/// Intersection over detection (the predicted segment's length).
pub fn iod(pred: &[usize], gt: &[usize], bg: &[usize]) -> Result<Option<f64>> {
    best_overlap(pred, gt, bg, |p, _| p.len())
}

/// True positives, false positives and false negatives at one overlap threshold.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct F1Counts {
    /// Predicted segments matched to an unmatched same-class ground truth at IoU >= threshold.
    pub tp: usize,
    /// Predicted segments not matched.
    pub fp: usize,
    /// Ground-truth segments not matched.
    pub fn_: usize,
}

impl F1Counts {
    /// F1 in percent (0 when nothing matched).
    pub fn f1(&self) -> f64 {
        let p = self.tp as f64 / (self.tp + self.fp).max(1) as f64;
        let r = self.tp as f64 / (self.tp + self.fn_).max(1) as f64;
        if p + r == 0.0 {
            0.0
        } else {
            100.0 * 2.0 * p * r / (p + r)
        }
    }

    fn add(&mut self, o: F1Counts) {
        self.tp += o.tp;
        self.fp += o.fp;
        self.fn_ += o.fn_;
    }
}

/// MS-TCN's segmental F1 counts: each predicted segment, in order, takes its best-IoU
/// ground truth of the same class if that IoU reaches `threshold` and it is not yet taken.
pub fn f1_counts(pred: &[usize], gt: &[usize], threshold: f64, bg: &[usize]) -> Result<F1Counts> {
    same_len(pred, gt)?;
    let (p, g) = (foreground(pred, bg), foreground(gt, bg));
    let mut hit = vec![false; g.len()];
    let mut c = F1Counts::default();
    for ps in &p {
        let best = g
            .iter()
            .enumerate()
            .filter(|(_, gs)| gs.label == ps.label)
            .map(|(i, gs)| {
                let inter = ps.end.min(gs.end).saturating_sub(ps.start.max(gs.start));
                let union = ps.end.max(gs.end) - ps.start.min(gs.start);
                (i, inter as f64 / union as f64)
            })
            .fold(None, |b: Option<(usize, f64)>, x| match b {
                Some(b) if b.1 >= x.1 => Some(b),
                _ => Some(x),
            });
        match best {
            Some((i, v)) if v >= threshold && !hit[i] => {
                hit[i] = true;
                c.tp += 1;
            }
            _ => c.fp += 1,
        }
    }
    c.fn_ = hit.iter().filter(|h| !**h).count();
    Ok(c)
}

/// Segmental edit score: `100 (1 - levenshtein / max(len))` over the segment label sequences.
pub fn edit(pred: &[usize], gt: &[usize], bg: &[usize]) -> Result<f64> {
    same_len(pred, gt)?;
    let p: Vec<usize> = foreground(pred, bg).iter().map(|s| s.label).collect();
    let g: Vec<usize> = foreground(gt, bg).iter().map(|s| s.label).collect();
    let longest = p.len().max(g.len());
    if longest == 0 {
        return Ok(100.0);
    }
    let mut row: Vec<usize> = (0..=g.len()).collect();
    for (i, a) in p.iter().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, b) in g.iter().enumerate() {
            let sub = diag + usize::from(a != b);
            diag = row[j + 1];
            row[j + 1] = sub.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    Ok(100.0 * (1.0 - row[g.len()] as f64 / longest as f64))
}

/// Metrics summed over a set of videos.
#[derive(Clone, Debug, Default)]
pub struct Accumulator {
    frames: usize,
    correct: usize,
    iou: (f64, usize),
    iod: (f64, usize),
    f1: [F1Counts; 3],
    edit: (f64, usize),
}

/// Dataset-level metrics, in percent.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Summary {
    /// Frame accuracy over all frames of all videos.
    pub mof: f64,
    /// Mean over videos of [`iou`].
    pub iou: f64,
    /// Mean over videos of [`iod`].
    pub iod: f64,
    /// F1 at 10, 25 and 50 % overlap, from counts summed over videos.
    pub f1: [f64; 3],
    /// Mean over videos of [`edit`].
    pub edit: f64,
}

impl Accumulator {
    /// Adds one video (`bg`: classes excluded from IoU, IoD, F1 and Edit).
    pub fn add(&mut self, pred: &[usize], gt: &[usize], bg: &[usize]) -> Result<()> {
        self.correct += correct(pred, gt)?;
        self.frames += gt.len();
        if let Some(v) = iou(pred, gt, bg)? {
            self.iou = (self.iou.0 + v, self.iou.1 + 1);
        }
        if let Some(v) = iod(pred, gt, bg)? {
            self.iod = (self.iod.0 + v, self.iod.1 + 1);
        }
        for (acc, th) in self.f1.iter_mut().zip(F1_THRESHOLDS) {
            acc.add(f1_counts(pred, gt, th, bg)?);
        }
        self.edit = (self.edit.0 + edit(pred, gt, bg)?, self.edit.1 + 1);
        Ok(())
    }

    /// The summary so far (zeros before any video).
    pub fn summary(&self) -> Summary {
        let mean = |(s, n): (f64, usize)| if n == 0 { 0.0 } else { s / n as f64 };
        Summary {
            mof: 100.0 * self.correct as f64 / self.frames.max(1) as f64,
            iou: mean(self.iou),
            iod: mean(self.iod),
            f1: [self.f1[0].f1(), self.f1[1].f1(), self.f1[2].f1()],
            edit: mean(self.edit),
        }
    }
}
