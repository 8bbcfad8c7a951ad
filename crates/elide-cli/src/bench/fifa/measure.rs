//! The measurements: every method on every test video, and the scaling with `T`.
use super::super::timing::median_ms;
use anyhow::Result;
use elide_segment::dataset::class_prior;
use elide_segment::fifa::FifaOptions;
use elide_segment::metrics::{self, Accumulator};
use elide_segment::segments::to_frames;
use elide_segment::synth::{SynthDataset, SynthVideo};
use elide_segment::viterbi::ExactOptions;
use elide_segment::{decode, FrameScores, Grammar, LengthModel, Method, ProbKind, Task};
use serde::Serialize;

/// One JSON record: a video, a method summary over the test set, or a scaling point.
#[derive(Clone, Serialize)]
pub struct Record {
    /// `video`, `summary` or `scaling`.
    pub kind: &'static str,
    /// `alignment` or `segmentation`.
    pub task: &'static str,
    /// `exact`, `exact-subN`, `fifa` or `fifa-subN`.
    pub method: String,
    /// FIFA's iteration budget (0 for exact).
    pub iters: usize,
    /// Frames (mean over videos for a summary).
    #[serde(rename = "T")]
    pub t: f64,
    /// Video name (`ALL` for a summary).
    pub video: String,
    /// Milliseconds per video (median of the repetitions; mean over videos for a summary).
    pub ms: f64,
    /// Metrics in percent.
    pub mof: f64,
    pub iou: f64,
    pub iod: f64,
    pub f1_10: f64,
    pub f1_25: f64,
    pub f1_50: f64,
    pub edit: f64,
}

/// What every measurement shares: the grammar, length model and prior from training data.
pub struct Setup {
    pub grammar: Grammar,
    pub lengths: LengthModel,
    prior: Option<Vec<f64>>,
    fifa: FifaOptions,
    subsample: usize,
}

impl Setup {
    pub fn new(
        ds: &SynthDataset,
        fifa: FifaOptions,
        subsample: usize,
        prior: bool,
    ) -> Result<Self> {
        let c = ds.mapping.len();
        let gts = || ds.train().iter().map(|v| v.gt.as_slice());
        Ok(Self {
            grammar: Grammar::new(ds.train().iter().map(|v| v.transcript()))?,
            lengths: LengthModel::from_ground_truth(gts(), c)?,
            prior: prior.then(|| class_prior(gts(), c)),
            fifa,
            subsample,
        })
    }

    fn scores(&self, v: &SynthVideo) -> Result<FrameScores> {
        let lp: Vec<f64> = v.log_probs.iter().map(|&x| x as f64).collect();
        let c = lp.len() / v.frames();
        let s = FrameScores::new(v.frames(), c, &lp, ProbKind::LogProbs)?;
        Ok(match &self.prior {
            Some(p) => s.with_prior(p)?,
            None => s,
        })
    }

    /// The methods: exact, exact subsampled, FIFA at each budget; for segmentation also
    /// FIFA on chunks without racing (`fifa-subN-full`: every top-K transcript for the whole
    /// budget).
    fn methods(&self, iters: &[usize], task: &str) -> Vec<(String, usize, Method)> {
        let mut m = vec![
            (
                "exact".to_string(),
                0,
                Method::Exact(ExactOptions::default()),
            ),
            (
                format!("exact-sub{}", self.subsample),
                0,
                Method::Exact(ExactOptions {
                    subsample: self.subsample,
                    ..Default::default()
                }),
            ),
        ];
        // FIFA on frames (its energy pooled into bins), then on the exact decoder's grid of
        // `subsample`-frame chunks.
        for sub in [1, self.subsample] {
            for &i in iters {
                m.push((
                    fifa_name(sub),
                    i,
                    Method::Fifa(FifaOptions {
                        iters: i,
                        subsample: sub,
                        ..self.fifa.clone()
                    }),
                ));
            }
        }
        if task == "segmentation" && self.fifa.race {
            for &i in iters {
                m.push((
                    format!("{}-full", fifa_name(self.subsample)),
                    i,
                    Method::Fifa(FifaOptions {
                        iters: i,
                        subsample: self.subsample,
                        race: false,
                        ..self.fifa.clone()
                    }),
                ));
            }
        }
        m
    }
}

const TASKS: [&str; 2] = ["alignment", "segmentation"];

/// `fifa` on frames, `fifa-subN` on chunks of `N` frames.
pub fn fifa_name(subsample: usize) -> String {
    if subsample <= 1 {
        "fifa".to_string()
    } else {
        format!("fifa-sub{subsample}")
    }
}

fn task<'a>(setup: &'a Setup, name: &str, transcript: &'a [usize]) -> Task<'a> {
    if name == "alignment" {
        Task::Align(transcript)
    } else {
        Task::Segment(&setup.grammar)
    }
}

/// Decodes and times one video with one method; returns the record and the prediction.
fn one(
    setup: &Setup,
    kind: &'static str,
    task_name: &'static str,
    (name, iters, method): &(String, usize, Method),
    v: &SynthVideo,
    reps: usize,
) -> Result<(Record, Vec<usize>)> {
    let scores = setup.scores(v)?;
    let tr = v.transcript();
    let t = task(setup, task_name, &tr);
    let mut out = None;
    let ms = median_ms(reps, || -> Result<()> {
        out = Some(decode(&scores, t, &setup.lengths, method)?);
        Ok(())
    })?;
    let pred = to_frames(&out.expect("ran").segments);
    let mut acc = Accumulator::default();
    acc.add(&pred, &v.gt, &[0])?;
    let mut r = record(
        kind,
        task_name,
        name,
        *iters,
        &v.name,
        v.frames() as f64,
        ms,
        &acc,
    );
    r.mof = metrics::mof(&pred, &v.gt)?;
    Ok((r, pred))
}

#[allow(clippy::too_many_arguments)]
fn record(
    kind: &'static str,
    task: &'static str,
    method: &str,
    iters: usize,
    video: &str,
    t: f64,
    ms: f64,
    acc: &Accumulator,
) -> Record {
    let s = acc.summary();
    Record {
        kind,
        task,
        method: method.to_string(),
        iters,
        t,
        video: video.to_string(),
        ms,
        mof: s.mof,
        iou: s.iou,
        iod: s.iod,
        f1_10: s.f1[0],
        f1_25: s.f1[1],
        f1_50: s.f1[2],
        edit: s.edit,
    }
}

/// Every method on every test video, both tasks: per-video records and, per method, a
/// summary (MoF over all frames, F1 from pooled counts, the rest averaged over videos).
pub fn videos(
    setup: &Setup,
    test: &[SynthVideo],
    iters: &[usize],
    reps: usize,
) -> Result<(Vec<Record>, Vec<Record>)> {
    let (mut out, mut summary) = (Vec::new(), Vec::new());
    for task_name in TASKS {
        for m in setup.methods(iters, task_name) {
            let start = std::time::Instant::now();
            let mut acc = Accumulator::default();
            let (mut ms, mut frames) = (0.0, 0.0);
            for v in test {
                let (r, pred) = one(setup, "video", task_name, &m, v, reps)?;
                acc.add(&pred, &v.gt, &[0])?;
                ms += r.ms / test.len() as f64;
                frames += r.t / test.len() as f64;
                out.push(r);
            }
            summary.push(record(
                "summary", task_name, &m.0, m.1, "ALL", frames, ms, &acc,
            ));
            eprintln!(
                "{task_name:<12} {:<12} iters {:>4}: {:.1} s",
                m.0,
                m.1,
                start.elapsed().as_secs_f64()
            );
        }
    }
    Ok((out, summary))
}

/// A test video stretched or squeezed to `t` frames (nearest frame), keeping its transcript.
fn resample(v: &SynthVideo, t: usize) -> SynthVideo {
    let (t0, c) = (v.frames(), v.log_probs.len() / v.frames());
    let src = |f: usize| f * t0 / t;
    SynthVideo {
        name: format!("{}@{t}", v.name),
        gt: (0..t).map(|f| v.gt[src(f)]).collect(),
        log_probs: (0..t)
            .flat_map(|f| v.log_probs[src(f) * c..(src(f) + 1) * c].iter().copied())
            .collect(),
    }
}

/// Exact, exact subsampled and both FIFAs at `iters` on the first test videos resampled to each
/// length in `lengths`; one record per method and length (mean over the videos).
pub fn scaling(
    setup: &Setup,
    test: &[SynthVideo],
    lengths: &[usize],
    iters: usize,
    reps: usize,
) -> Result<Vec<Record>> {
    let mut out = Vec::new();
    let videos = &test[..test.len().min(3)];
    for &t in lengths.iter().filter(|&&t| t > 0) {
        let vs: Vec<SynthVideo> = videos.iter().map(|v| resample(v, t)).collect();
        for task_name in TASKS {
            for m in setup.methods(&[iters], task_name) {
                let rs = vs
                    .iter()
                    .map(|v| one(setup, "scaling", task_name, &m, v, reps).map(|r| r.0))
                    .collect::<Result<Vec<_>>>()?;
                let n = rs.len() as f64;
                let mean = |f: fn(&Record) -> f64| rs.iter().map(f).sum::<f64>() / n;
                out.push(Record {
                    video: format!("{} videos", rs.len()),
                    ms: mean(|r| r.ms),
                    mof: mean(|r| r.mof),
                    iou: mean(|r| r.iou),
                    iod: mean(|r| r.iod),
                    f1_10: mean(|r| r.f1_10),
                    f1_25: mean(|r| r.f1_25),
                    f1_50: mean(|r| r.f1_50),
                    edit: mean(|r| r.edit),
                    ..rs[0].clone()
                });
            }
            eprintln!("scaling T={t} {task_name} done");
        }
    }
    Ok(out)
}
