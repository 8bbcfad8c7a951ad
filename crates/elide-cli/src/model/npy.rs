//! Reading float32 `.npy` inputs and masks safely: `ndarray_npy` allocates the values the
//! header declares before it reads them (and before it checks the dtype), so a header that
//! declares more than the file holds would abort the process instead of failing. The header
//! is checked against the file's size first.
use anyhow::{bail, Context, Result};
use ndarray::ArrayD;
use std::io::Read;
use std::path::Path;

/// Reads the float32 `.npy` at `path` (`what` names it in errors, e.g. "a float32 .npy mask").
pub fn read_f32(path: &Path, what: &str) -> Result<ArrayD<f32>> {
    let ctx = || format!("reading {} ({what})", path.display());
    check(path).with_context(ctx)?;
    ndarray_npy::read_npy(path).with_context(ctx)
}

/// Checks the header of the `.npy` at `path`: float32, a shape whose values fit in memory
/// arithmetic, and a payload of exactly the size the shape needs.
fn check(path: &Path) -> Result<()> {
    let len = std::fs::metadata(path)?.len();
    let mut head = Vec::new();
    std::fs::File::open(path)?
        .take(1 << 16)
        .read_to_end(&mut head)?;
    if head.len() < 10 || !head.starts_with(b"\x93NUMPY") {
        bail!("not a .npy file (no \\x93NUMPY magic)");
    }
    let (hlen, start) = match head[6] {
        1 => (usize::from(u16::from_le_bytes([head[8], head[9]])), 10),
        2 | 3 if head.len() >= 12 => {
            let n = u32::from_le_bytes([head[8], head[9], head[10], head[11]]);
            (n as usize, 12)
        }
        v => bail!("unsupported .npy version {v}"),
    };
    let end = start + hlen;
    if end as u64 > len {
        bail!("the header declares {hlen} bytes; the file has {len} in all");
    }
    let Some(dict) = head.get(start..end) else {
        bail!("a header of {hlen} bytes is longer than a .npy header can be (64 KiB)");
    };
    let dict = String::from_utf8_lossy(dict);
    let descr = value(&dict, "descr").context("no 'descr' in the .npy header")?;
    if descr != "<f4" && descr != ">f4" {
        bail!("the values are {descr}, not float32 ('<f4'): save them with .astype(np.float32)");
    }
    let shape = value(&dict, "shape")
        .and_then(|s| {
            s.split(',')
                .map(str::trim)
                .filter(|d| !d.is_empty())
                .map(|d| d.parse::<usize>().ok())
                .collect::<Option<Vec<usize>>>()
        })
        .context("cannot read the shape in the .npy header")?;
    let need = shape
        .iter()
        .try_fold(4usize, |a, &d| a.checked_mul(d))
        .with_context(|| format!("shape {shape:?} needs more than 2^64 bytes"))?;
    let payload = len - end as u64;
    if payload != need as u64 {
        bail!("payload of {payload} bytes, shape {shape:?} needs {need} (float32)");
    }
    Ok(())
}

/// The text of `key`'s value in a `.npy` header dict: a quoted string's or a tuple's content,
/// or a bare word (`False`).
fn value<'a>(dict: &'a str, key: &str) -> Option<&'a str> {
    let at = dict
        .find(&format!("'{key}'"))
        .or_else(|| dict.find(&format!("\"{key}\"")))?;
    let rest = dict[at + key.len() + 2..]
        .trim_start()
        .strip_prefix(':')?
        .trim_start();
    let close = match rest.chars().next()? {
        q @ ('\'' | '"') => q,
        '(' => ')',
        '[' => ']',
        _ => return rest.split([',', '}']).next().map(str::trim),
    };
    let body = &rest[1..];
    body.find(close).map(|end| &body[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A version 1 `.npy` with this header dict and `payload` bytes of data.
    fn npy(dict: &str, payload: usize) -> Vec<u8> {
        let mut b = b"\x93NUMPY\x01\x00".to_vec();
        let text = format!("{dict}\n");
        b.extend_from_slice(&(text.len() as u16).to_le_bytes());
        b.extend_from_slice(text.as_bytes());
        b.resize(b.len() + payload, 0);
        b
    }

    fn check_bytes(name: &str, bytes: &[u8]) -> Result<()> {
        let path = std::env::temp_dir().join(format!("elide-npy-{}-{name}", std::process::id()));
        std::fs::write(&path, bytes).unwrap();
        let r = check(&path);
        std::fs::remove_file(&path).ok();
        r
    }

    #[test]
    fn header_values_parse() {
        let d = "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 3, 8), }";
        assert_eq!(value(d, "descr"), Some("<f4"));
        assert_eq!(value(d, "shape"), Some("1, 3, 8"));
        assert_eq!(value(d, "fortran_order"), Some("False"));
        assert_eq!(value("{\"shape\": (2,)}", "shape"), Some("2,"));
        assert_eq!(value(d, "nope"), None);
    }

    #[test]
    fn sizes_are_checked_before_reading() {
        let dict = |shape: &str| {
            format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({shape}), }}")
        };
        check_bytes("ok", &npy(&dict("2, 3"), 24)).unwrap();
        check_bytes("scalar", &npy(&dict(""), 4)).unwrap();
        let err = |name, b: Vec<u8>| check_bytes(name, &b).unwrap_err().to_string();
        let e = err("huge", npy(&dict("1, 3, 100000, 100000"), 1000));
        assert!(
            e.contains("payload of 1000 bytes") && e.contains("needs 120000000000"),
            "{e}"
        );
        let e = err(
            "overflow",
            npy(&dict("4294967296, 4294967296, 4294967296"), 0),
        );
        assert!(e.contains("more than 2^64"), "{e}");
        let e = err("f8", npy(&dict("2").replace("<f4", "<f8"), 16));
        assert!(e.contains("<f8, not float32"), "{e}");
        let e = err("shape", npy(&dict("2, x"), 8));
        assert!(e.contains("cannot read the shape"), "{e}");
        // A version 2 header length of 4 GiB in a 14-byte file.
        let e = err("hlen", b"\x93NUMPY\x02\x00\xf0\xff\xff\xff{}".to_vec());
        assert!(e.contains("the file has 14"), "{e}");
        let e = err("magic", b"not a numpy file".to_vec());
        assert!(e.contains("magic"), "{e}");
    }
}
