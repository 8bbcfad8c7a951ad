//! IDX files (the MNIST / Fashion-MNIST format): big-endian header `0 0 type ndim`, `ndim`
//! big-endian `u32` sizes, then the values. Only unsigned bytes (type `0x08`) are read, which
//! is what the image and label files are; `scripts/fetch-data.sh` stores them uncompressed.
use crate::data::{Dataset, Targets};
use crate::error::{BayesError, Result};
use std::path::{Path, PathBuf};

/// An IDX array of unsigned bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct IdxU8 {
    /// Sizes, outermost first.
    pub dims: Vec<usize>,
    /// Values, row-major.
    pub data: Vec<u8>,
}

/// Parses the bytes of an IDX file; `name` is used in errors.
pub fn parse_u8(bytes: &[u8], name: &str) -> Result<IdxU8> {
    let bad = |msg: String| BayesError::Data(format!("{name}: {msg}"));
    if bytes.len() >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b {
        return Err(bad(
            "gzip-compressed; decompress it first (scripts/fetch-data.sh stores plain IDX files)"
                .into(),
        ));
    }
    if bytes.len() < 4 || bytes[0] != 0 || bytes[1] != 0 {
        return Err(bad(
            "not an IDX file (the header must start with two zero bytes)".into(),
        ));
    }
    if bytes[2] != 0x08 {
        return Err(bad(format!(
            "IDX value type 0x{:02x}; only unsigned bytes (0x08) are supported",
            bytes[2]
        )));
    }
    let ndim = bytes[3] as usize;
    if ndim == 0 {
        return Err(bad("IDX file with no dimensions".into()));
    }
    let header = 4 + 4 * ndim;
    if bytes.len() < header {
        return Err(bad(format!(
            "truncated header: {} bytes for {ndim} dimensions",
            bytes.len()
        )));
    }
    let dims: Vec<usize> = bytes[4..header]
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let count = dims
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| bad(format!("sizes {dims:?} overflow")))?;
    let body = bytes.len() - header;
    if body != count {
        return Err(bad(format!(
            "sizes {dims:?} need {count} values, the file has {body}"
        )));
    }
    Ok(IdxU8 {
        dims,
        data: bytes[header..].to_vec(),
    })
}

/// Reads an IDX file of unsigned bytes.
pub fn read_u8(path: &Path) -> Result<IdxU8> {
    let bytes = std::fs::read(path).map_err(|source| BayesError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_u8(&bytes, &path.display().to_string())
}

/// What an MNIST-style IDX file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdxKind {
    /// Images: `[n, rows, cols]` (any rank >= 2).
    Images,
    /// Labels: `[n]`.
    Labels,
}

/// Reads an IDX file that must hold `kind`: its rank is checked from the header before the
/// sizes, so a label file with an image header (or the other way round) says so.
pub fn read_kind(path: &Path, kind: IdxKind) -> Result<IdxU8> {
    let bytes = std::fs::read(path).map_err(|source| BayesError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if let [0, 0, 0x08, rank, ..] = bytes[..] {
        let rank = rank as usize;
        let (ok, want, other) = match kind {
            IdxKind::Labels => (rank == 1, "labels (rank 1)", "an image file"),
            IdxKind::Images => (rank >= 2, "images (rank >= 2)", "a label file"),
        };
        if !ok {
            return Err(BayesError::Data(format!(
                "{}: the IDX header says rank {rank} (magic 0x{:08x}), but this file should \
                 hold {want}; is it {other}?",
                path.display(),
                0x800 | rank
            )));
        }
    }
    parse_u8(&bytes, &path.display().to_string())
}

/// Images `[n, ...]` (scaled to `[0, 1]`) and labels `[n]` as a classification data set.
pub fn dataset(images: &IdxU8, labels: &IdxU8, classes: usize) -> Result<Dataset> {
    if images.dims.len() < 2 || labels.dims.len() != 1 {
        return Err(BayesError::Data(format!(
            "images need >= 2 dimensions and labels 1, got {:?} and {:?}",
            images.dims, labels.dims
        )));
    }
    let n = images.dims[0];
    if labels.dims[0] != n {
        return Err(BayesError::Data(format!(
            "{n} images but {} labels",
            labels.dims[0]
        )));
    }
    let p = images.dims[1..].iter().product();
    let x = images.data.iter().map(|&v| v as f32 / 255.0).collect();
    let y = labels.data.iter().map(|&c| c as u32).collect();
    Dataset::new(n, p, x, Targets::Labels(y), classes)
}

/// The four files of an MNIST-style directory: (train images, train labels, test images,
/// test labels).
pub fn mnist_paths(dir: &Path) -> [PathBuf; 4] {
    [
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ]
    .map(|f| dir.join(f))
}

/// The training and test sets of an MNIST-style directory (10 classes). A missing file is an
/// error naming it and how to get it.
pub fn load_mnist_dir(dir: &Path) -> Result<(Dataset, Dataset)> {
    let paths = mnist_paths(dir);
    if let Some(p) = paths.iter().find(|p| !p.is_file()) {
        return Err(BayesError::Data(format!(
            "{} not found (expected the four uncompressed IDX files of MNIST / Fashion-MNIST; \
             scripts/fetch-data.sh puts Fashion-MNIST in data/fashion-mnist)",
            p.display()
        )));
    }
    // Images `paths[i]` and labels `paths[i + 1]`; data errors name the pair.
    let set = |i: usize| {
        let images = read_kind(&paths[i], IdxKind::Images)?;
        let labels = read_kind(&paths[i + 1], IdxKind::Labels)?;
        dataset(&images, &labels, 10).map_err(|e| match e {
            BayesError::Data(m) => BayesError::Data(format!(
                "{} with {}: {m}",
                paths[i].display(),
                paths[i + 1].display()
            )),
            e => e,
        })
    };
    let (train, test) = (set(0)?, set(2)?);
    if train.p != test.p {
        return Err(BayesError::Data(format!(
            "training images have {} pixels, test images {}",
            train.p, test.p
        )));
    }
    Ok((train, test))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut b = vec![0, 0, 8, dims.len() as u8];
        for d in dims {
            b.extend(d.to_be_bytes());
        }
        b.extend(data);
        b
    }

    #[test]
    fn parses_images_and_labels() {
        let im = parse_u8(&idx(&[2, 2, 2], &[0, 255, 0, 0, 51, 0, 0, 0]), "im").unwrap();
        assert_eq!(im.dims, [2, 2, 2]);
        let lb = parse_u8(&idx(&[2], &[3, 9]), "lb").unwrap();
        let d = dataset(&im, &lb, 10).unwrap();
        assert_eq!((d.n, d.p), (2, 4));
        assert_eq!(d.x[1], 1.0);
        assert!((d.x[4] - 0.2).abs() < 1e-6);
        assert_eq!(d.targets, Targets::Labels(vec![3, 9]));
    }

    #[test]
    fn bad_files_are_clear_errors() {
        let e = |b: &[u8]| parse_u8(b, "f").unwrap_err().to_string();
        assert!(e(&[0x1f, 0x8b, 8, 0]).contains("gzip"));
        assert!(e(b"PK\x03\x04").contains("not an IDX file"));
        assert!(e(&[0, 0, 0x0d, 1, 0, 0, 0, 1, 0, 0, 0, 0]).contains("0x0d"));
        assert!(e(&idx(&[3], &[1, 2])).contains("need 3 values, the file has 2"));
        assert!(e(&[0, 0, 8, 2, 0, 0]).contains("truncated header"));
        let im = parse_u8(&idx(&[2, 1], &[0, 0]), "im").unwrap();
        let lb = parse_u8(&idx(&[2], &[0, 10]), "lb").unwrap();
        assert!(dataset(&im, &lb, 10)
            .unwrap_err()
            .to_string()
            .contains("label 10 at row 1 is not in 0..10"));
        let lb1 = parse_u8(&idx(&[1], &[0]), "lb").unwrap();
        assert!(dataset(&im, &lb1, 10).is_err());
        let dir = std::env::temp_dir().join(format!("elide-idx-kind-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // A label file with an image header: 60 labels read as sizes [60, l0 l1 l2 l3, ...].
        let f = dir.join("labels");
        let mut b = vec![0, 0, 8, 3, 0, 0, 0, 60];
        b.extend([1u8; 60]);
        std::fs::write(&f, &b).unwrap();
        let e = read_kind(&f, IdxKind::Labels).unwrap_err().to_string();
        assert!(e.contains("rank 3") && e.contains("an image file"), "{e}");
        std::fs::write(&f, idx(&[2], &[0, 1])).unwrap();
        let e = read_kind(&f, IdxKind::Images).unwrap_err().to_string();
        assert!(e.contains("rank 1") && e.contains("a label file"), "{e}");
        assert_eq!(read_kind(&f, IdxKind::Labels).unwrap().dims, [2]);
        std::fs::remove_dir_all(&dir).ok();
        let missing = load_mnist_dir(Path::new("/nonexistent-dir")).unwrap_err();
        assert!(missing
            .to_string()
            .contains("train-images-idx3-ubyte not found"));
    }
}
