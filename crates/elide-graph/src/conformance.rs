//! ONNX test folders (`model.onnx` + `test_data_set_*/input_*.pb`, `output_*.pb`), run and
//! compared the way ONNX's own backend runner does: every output's element type and shape
//! must match, and its values within `|got - want| <= atol + rtol * |want|` (NaN equal to NaN,
//! infinities equal when of the same sign), with rtol 1e-3 and atol 1e-7 unless a test is
//! given its own.
//!
//! Models go through the same pipeline as `elide run` ([`onnx::load`] then
//! [`optimize::optimize`]), so the suite checks the optimiser as well as the ops. A panic in
//! a test is caught and reported as an error (it is a bug: nothing a model holds may panic).
use crate::onnx::{self, proto::TensorProto, tensor};
use crate::{optimize, GraphError, Value};
use prost::Message;
use serde::Serialize;
use std::path::Path;

/// Comparison tolerance.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tolerance {
    /// Relative.
    pub rtol: f64,
    /// Absolute.
    pub atol: f64,
}

impl Default for Tolerance {
    /// ONNX's backend runner's defaults.
    fn default() -> Self {
        Self {
            rtol: 1e-3,
            atol: 1e-7,
        }
    }
}

/// What became of one test folder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Every output of every data set matched.
    Pass,
    /// It ran, and an output differs (values, shape, type or count).
    Fail,
    /// The model loaded but running it failed, the folder is malformed, or it panicked.
    Error,
    /// The model uses an op, attribute, type or opset elide does not implement.
    Unsupported,
}

/// One folder's result.
#[derive(Clone, Debug, Serialize)]
pub struct Outcome {
    /// The folder's name.
    pub name: String,
    /// What happened.
    pub status: Status,
    /// Why (empty on a pass).
    pub message: String,
}

/// The test folders under `root`: `root` itself when it holds a `model.onnx`, else its
/// subfolders that do, sorted by name.
pub fn find_tests(root: &Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    if root.join("model.onnx").is_file() {
        return Ok(vec![root.to_path_buf()]);
    }
    let mut v: Vec<_> = std::fs::read_dir(root)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("model.onnx").is_file())
        .collect();
    v.sort();
    Ok(v)
}

/// Runs many test folders in parallel (each with the tolerance `tol` gives for its name),
/// calling `done` after each; outcomes in the order of `dirs`.
pub fn run_all(
    dirs: &[std::path::PathBuf],
    tol: impl Fn(&str) -> Tolerance + Sync,
    done: impl Fn(&Outcome) + Sync,
) -> Vec<Outcome> {
    use rayon::prelude::*;
    dirs.par_iter()
        .map(|d| {
            let name = d.file_name().unwrap_or_default().to_string_lossy();
            let o = run_dir(d, tol(&name));
            done(&o);
            o
        })
        .collect()
}

/// Runs one test folder.
pub fn run_dir(dir: &Path, tol: Tolerance) -> Outcome {
    let name = dir.file_name().map_or_else(
        || dir.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let outcome = std::panic::catch_unwind(|| run_checked(dir, tol));
    let (status, message) = match outcome {
        Ok(r) => r,
        Err(p) => {
            let what = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            (Status::Error, format!("panic: {what}"))
        }
    };
    Outcome {
        name,
        status,
        message,
    }
}

fn run_checked(dir: &Path, tol: Tolerance) -> (Status, String) {
    let mut g = match onnx::load(dir.join("model.onnx")) {
        Ok(g) => g,
        Err(e) => return (classify(&e), e.to_string()),
    };
    if let Err(e) = optimize::optimize(&mut g) {
        return (classify(&e), format!("optimising: {e}"));
    }
    g.accept_non_finite = true; // the suite feeds NaN and infinities on purpose
    let mut sets: Vec<_> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.is_dir()
                    && p.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with("test_data_set_"))
            })
            .collect(),
        Err(e) => return (Status::Error, format!("cannot list {}: {e}", dir.display())),
    };
    sets.sort();
    if sets.is_empty() {
        return (Status::Error, "no test_data_set_* folder".into());
    }
    for set in &sets {
        let set_name = set.file_name().unwrap_or_default().to_string_lossy();
        let inputs = match read_numbered(set, "input") {
            Ok(v) => v,
            Err(e) => return (classify(&e), format!("{set_name}: {e}")),
        };
        let want = match read_numbered(set, "output") {
            Ok(v) => v,
            Err(e) => return (classify(&e), format!("{set_name}: {e}")),
        };
        let got = match g.run(inputs) {
            Ok(v) => v,
            Err(e) => return (classify(&e), format!("{set_name}: {e}")),
        };
        if let Err(why) = compare(&got, &want, tol, &g) {
            return (Status::Fail, format!("{set_name}: {why}"));
        }
    }
    (Status::Pass, String::new())
}

/// Unsupported features are their own status; everything else is an error.
fn classify(e: &GraphError) -> Status {
    match e {
        GraphError::Unsupported { .. } | GraphError::NotSupported(_) => Status::Unsupported,
        _ => Status::Error,
    }
}

/// `{prefix}_0.pb`, `{prefix}_1.pb`, ... in order, until the first missing number.
fn read_numbered(set: &Path, prefix: &str) -> crate::Result<Vec<Value>> {
    let mut out = Vec::new();
    for i in 0.. {
        let p = set.join(format!("{prefix}_{i}.pb"));
        if !p.exists() {
            break;
        }
        out.push(read_tensor(&p)?);
    }
    Ok(out)
}

/// A serialized `TensorProto` file.
pub fn read_tensor(path: &Path) -> crate::Result<Value> {
    let bytes = std::fs::read(path)
        .map_err(|e| GraphError::Model(format!("cannot read {}: {e}", path.display())))?;
    let t = TensorProto::decode(bytes.as_slice())?;
    if t.data_type == crate::dtype::onnx_code::STRING {
        return Err(GraphError::NotSupported(format!(
            "{}: string tensors are not held",
            path.display()
        )));
    }
    tensor::to_value(&t, &path.display().to_string())
}

/// Every output against its expected value: count, element type, shape, then values.
pub fn compare(
    got: &[Value],
    want: &[Value],
    tol: Tolerance,
    g: &crate::Graph,
) -> Result<(), String> {
    if got.len() != want.len() {
        return Err(format!("{} outputs, expected {}", got.len(), want.len()));
    }
    for (k, (a, b)) in got.iter().zip(want).enumerate() {
        let name = g.outputs.get(k).map_or("?", |&id| g.names[id].as_str());
        if a.dtype() != b.dtype() {
            return Err(format!(
                "output '{name}' is {}, expected {}",
                a.dtype(),
                b.dtype()
            ));
        }
        if a.shape() != b.shape() {
            return Err(format!(
                "output '{name}' has shape {:?}, expected {:?}",
                a.shape(),
                b.shape()
            ));
        }
        if let Some(why) = mismatch(a, b, tol) {
            return Err(format!("output '{name}': {why}"));
        }
    }
    Ok(())
}

/// The first value outside the tolerance and how many there are, or `None`.
fn mismatch(got: &Value, want: &Value, tol: Tolerance) -> Option<String> {
    let (a, b) = (got.to_f64_vec(), want.to_f64_vec());
    // 64-bit integers beyond 2^53 compare exactly.
    let (ai, bi) = match got.dtype() {
        crate::DType::I64 | crate::DType::U64 => (got.to_i64_vec(), want.to_i64_vec()),
        _ => (vec![], vec![]),
    };
    let mut bad = 0usize;
    let mut first = None;
    let mut worst = 0f64;
    for i in 0..a.len() {
        let (x, y) = (a[i], b[i]);
        let ok = if !ai.is_empty() {
            ai[i] == bi[i]
        } else if x.is_nan() || y.is_nan() {
            x.is_nan() && y.is_nan()
        } else if x.is_infinite() || y.is_infinite() {
            x == y
        } else {
            (x - y).abs() <= tol.atol + tol.rtol * y.abs()
        };
        if !ok {
            bad += 1;
            first.get_or_insert(i);
            worst = worst.max((x - y).abs());
        }
    }
    first.map(|i| {
        format!(
            "{bad} of {} values differ (first at {i}: {} vs {}; max abs diff {worst:e}; rtol {}, atol {})",
            a.len(),
            a[i],
            b[i],
            tol.rtol,
            tol.atol
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onnx::write::{Dim, ModelWriter};

    /// A Relu model with one data set whose expected output is `relu(x)` edited by `edit`.
    fn folder(tag: &str, edit: impl FnOnce(&mut Vec<Value>)) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("elide-conformance-{tag}-{}", std::process::id()));
        let set = dir.join("test_data_set_0");
        std::fs::create_dir_all(&set).unwrap();
        let mut w = ModelWriter::new("relu", 13);
        let d = [Dim::Fixed(2), Dim::Fixed(3)];
        w.input("x", &d)
            .output("y", &d)
            .node("Relu", &["x"], &["y"], vec![]);
        w.save(dir.join("model.onnx")).unwrap();
        let x = Value::f32(&[2, 3], vec![-1.0, 2.0, -3.0, 4.0, 0.5, -0.0]).unwrap();
        let mut want = vec![Value::f32(&[2, 3], vec![0.0, 2.0, 0.0, 4.0, 0.5, 0.0]).unwrap()];
        edit(&mut want);
        let put = |p: std::path::PathBuf, v: &Value| {
            std::fs::write(p, tensor::from_value("t", v).encode_to_vec()).unwrap()
        };
        put(set.join("input_0.pb"), &x);
        for (i, v) in want.iter().enumerate() {
            put(set.join(format!("output_{i}.pb")), v);
        }
        dir
    }

    fn status(dir: &Path) -> Status {
        let o = run_dir(dir, Tolerance::default());
        let _ = std::fs::remove_dir_all(dir);
        o.status
    }

    #[test]
    fn a_correct_output_passes() {
        assert_eq!(status(&folder("ok", |_| {})), Status::Pass);
    }

    #[test]
    fn a_perturbed_output_fails() {
        let dir = folder("perturbed", |w| {
            let mut v = w[0].to_f64_vec();
            v[3] += 4.0 * 2e-3; // outside rtol * |want| (want is the perturbed value)
            w[0] = Value::f32(&[2, 3], v.iter().map(|&x| x as f32).collect()).unwrap();
        });
        assert_eq!(status(&dir), Status::Fail);
    }

    #[test]
    fn a_missing_or_extra_output_fails() {
        assert_eq!(status(&folder("missing", |w| w.clear())), Status::Fail);
        let extra = folder("extra", |w| w.push(w[0].clone()));
        assert_eq!(status(&extra), Status::Fail);
    }

    #[test]
    fn a_wrong_dtype_or_shape_fails() {
        let dir = folder("dtype", |w| w[0] = w[0].cast(crate::DType::F64));
        assert_eq!(status(&dir), Status::Fail);
        let dir = folder("shape", |w| {
            w[0] = Value::f32(
                &[3, 2],
                w[0].to_f64_vec().iter().map(|&x| x as f32).collect(),
            )
            .unwrap()
        });
        assert_eq!(status(&dir), Status::Fail);
    }

    #[test]
    fn nan_equals_nan_and_infinities_must_agree() {
        let t = Tolerance::default();
        let v = |x: Vec<f32>| Value::f32(&[x.len()], x).unwrap();
        assert!(mismatch(&v(vec![f32::NAN, 1.0]), &v(vec![f32::NAN, 1.0]), t).is_none());
        assert!(mismatch(&v(vec![f32::INFINITY]), &v(vec![f32::NEG_INFINITY]), t).is_some());
        assert!(mismatch(&v(vec![1.0]), &v(vec![f32::NAN]), t).is_some());
    }

    #[test]
    fn a_missing_folder_is_an_error_not_a_panic() {
        let o = run_dir(Path::new("/nonexistent/elide-test"), Tolerance::default());
        assert_eq!(o.status, Status::Error);
    }
}
