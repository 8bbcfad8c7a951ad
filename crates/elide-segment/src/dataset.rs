//! Loaders for the layout of MS-TCN / Breakfast / 50Salads, read unchanged:
//! `mapping.txt` ("id name"), `groundTruth/<video>.txt` (one class name per frame),
//! `features/<video>.npy` (`D x T`), `splits/<split>.bundle` (one `<video>.txt` per line).
//! Frame-wise probabilities come from a folder of `<video>.npy` (`T x C`), by default
//! `probs/` beside the others.
use crate::error::{Result, SegError};
use crate::labels::Mapping;
use crate::npy;
use crate::scores::{FrameScores, ProbKind};
use std::path::{Path, PathBuf};

/// An opened dataset folder.
#[derive(Clone, Debug)]
pub struct Dataset {
    root: PathBuf,
    mapping: Mapping,
}

impl Dataset {
    /// Opens `root`, reading `mapping.txt`.
    pub fn open(root: &Path) -> Result<Self> {
        Ok(Self {
            root: root.to_path_buf(),
            mapping: Mapping::read(&root.join("mapping.txt"))?,
        })
    }

    /// The class mapping.
    pub fn mapping(&self) -> &Mapping {
        &self.mapping
    }

    /// The dataset folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Video names listed in `splits/<name>` (`.bundle` added if missing), without `.txt`.
    pub fn bundle(&self, name: &str) -> Result<Vec<String>> {
        let file = if name.ends_with(".bundle") {
            name.to_string()
        } else {
            format!("{name}.bundle")
        };
        let path = self.root.join("splits").join(file);
        let text = std::fs::read_to_string(&path).map_err(|e| SegError::io(&path, e))?;
        let videos: Vec<String> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(|l| l.strip_suffix(".txt").unwrap_or(l).to_string())
            .collect();
        if videos.is_empty() {
            return Err(SegError::Parse {
                path,
                line: 0,
                msg: "no videos".into(),
            });
        }
        Ok(videos)
    }

    /// Frame-wise ground-truth class ids of `video`.
    pub fn ground_truth(&self, video: &str) -> Result<Vec<usize>> {
        let path = self.root.join("groundTruth").join(format!("{video}.txt"));
        let text = std::fs::read_to_string(&path).map_err(|e| SegError::io(&path, e))?;
        let labels = text
            .lines()
            .map(str::trim)
            .enumerate()
            .filter(|(_, l)| !l.is_empty())
            .map(|(i, l)| {
                self.mapping.id(l).map_err(|e| SegError::Parse {
                    path: path.clone(),
                    line: i + 1,
                    msg: e.to_string(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        if labels.is_empty() {
            return Err(SegError::Parse {
                path,
                line: 0,
                msg: "no frames".into(),
            });
        }
        Ok(labels)
    }

    /// `(D, T)` of `features/<video>.npy`, from its header only.
    pub fn feature_shape(&self, video: &str) -> Result<(usize, usize)> {
        let path = self.root.join("features").join(format!("{video}.npy"));
        match npy::read_shape(&path)?[..] {
            [d, t] => Ok((d, t)),
            ref s => Err(SegError::Npy {
                path: Some(path),
                msg: format!("features must be D x T, got {s:?}"),
            }),
        }
    }

    /// Frame-wise scores of `video` from `<dir>/<video>.npy` (`T x C`, probabilities or
    /// log-probabilities); `dir` defaults to `<root>/probs`.
    pub fn scores(&self, dir: Option<&Path>, video: &str) -> Result<FrameScores> {
        let dir = dir.map_or_else(|| self.root.join("probs"), Path::to_path_buf);
        let path = dir.join(format!("{video}.npy"));
        let a = npy::read(&path)?;
        let s = FrameScores::from_npy(&a, ProbKind::Auto).map_err(|e| match e {
            SegError::NotDistribution(m) => {
                SegError::NotDistribution(format!("{}: {m}", path.display()))
            }
            e => e,
        })?;
        if s.classes() != self.mapping.len() {
            return Err(SegError::Mismatch(format!(
                "{}: {} classes, mapping has {}",
                path.display(),
                s.classes(),
                self.mapping.len()
            )));
        }
        Ok(s)
    }

    /// Ground truth of every video of a bundle.
    pub fn split_ground_truth(&self, bundle: &str) -> Result<Vec<(String, Vec<usize>)>> {
        self.bundle(bundle)?
            .into_iter()
            .map(|v| self.ground_truth(&v).map(|g| (v, g)))
            .collect()
    }
}

/// Fraction of frames per class over ground-truth videos (the class prior), with every class
/// given at least one frame so its log is finite.
pub fn class_prior<'a>(videos: impl IntoIterator<Item = &'a [usize]>, classes: usize) -> Vec<f64> {
    let mut n = vec![1.0; classes];
    for v in videos {
        for &c in v {
            if c < classes {
                n[c] += 1.0;
            }
        }
    }
    let total: f64 = n.iter().sum();
    n.iter().map(|v| v / total).collect()
}
