//! A small `.npy` reader and writer: little-endian `f4`/`f8`, C or Fortran order, any rank.
//!
//! Enough for frame-wise probabilities and MS-TCN features; anything else (big-endian, object
//! arrays, a header that does not parse, a payload of the wrong size) is a typed error.
use crate::error::{Result, SegError};
use std::path::Path;

const MAGIC: &[u8] = b"\x93NUMPY";

/// An array read from `.npy`: its shape and its values in C (row-major) order, as `f64`.
#[derive(Clone, Debug, PartialEq)]
pub struct NpyArray {
    /// Dimensions, outermost first.
    pub shape: Vec<usize>,
    /// Values in row-major order.
    pub data: Vec<f64>,
}

fn bad(msg: impl Into<String>) -> SegError {
    SegError::Npy {
        path: None,
        msg: msg.into(),
    }
}

/// Parses `.npy` bytes.
pub fn parse(bytes: &[u8]) -> Result<NpyArray> {
    let h = header(bytes)?;
    let payload = &bytes[h.data_start..];
    let count: usize = h.shape.iter().product();
    if payload.len() != count * h.width {
        return Err(bad(format!(
            "payload of {} bytes, shape {:?} needs {}",
            payload.len(),
            h.shape,
            count * h.width
        )));
    }
    let mut data: Vec<f64> = if h.width == 4 {
        payload
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64)
            .collect()
    } else {
        payload
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect()
    };
    if h.fortran && h.shape.len() > 1 {
        data = fortran_to_c(&data, &h.shape);
    }
    Ok(NpyArray {
        shape: h.shape,
        data,
    })
}

/// What the header says.
struct Header {
    shape: Vec<usize>,
    width: usize,
    fortran: bool,
    data_start: usize,
}

/// Reads only the shape of a `.npy` file (features can be large; loaders need only `T`).
pub fn read_shape(path: &Path) -> Result<Vec<usize>> {
    use std::io::Read;
    let mut f = std::fs::File::open(path).map_err(|e| SegError::io(path, e))?;
    let mut buf = Vec::new();
    f.by_ref()
        .take(1 << 16)
        .read_to_end(&mut buf)
        .map_err(|e| SegError::io(path, e))?;
    header(&buf).map(|h| h.shape).map_err(|e| match e {
        SegError::Npy { msg, .. } => SegError::Npy {
            path: Some(path.to_path_buf()),
            msg,
        },
        e => e,
    })
}

fn header(bytes: &[u8]) -> Result<Header> {
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err(bad("missing \\x93NUMPY magic"));
    }
    let (hlen, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        v => return Err(bad(format!("unsupported version {v}"))),
    };
    let header = bytes
        .get(start..start + hlen)
        .ok_or_else(|| bad("header longer than the file"))?;
    let header = std::str::from_utf8(header).map_err(|_| bad("header is not text"))?;
    let descr = dict_value(header, "descr")?;
    let descr = descr.trim_matches(|c| c == '\'' || c == '"');
    let width = match descr {
        "<f4" => 4,
        "<f8" => 8,
        d => return Err(bad(format!("unsupported dtype {d} (need <f4 or <f8)"))),
    };
    let fortran = match dict_value(header, "fortran_order")? {
        "True" => true,
        "False" => false,
        v => return Err(bad(format!("fortran_order {v}"))),
    };
    let shape = parse_shape(dict_value(header, "shape")?)?;
    shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d)?.checked_mul(width))
        .ok_or_else(|| bad("shape overflows"))?;
    Ok(Header {
        shape,
        width,
        fortran,
        data_start: start + hlen,
    })
}

/// The text of `key`'s value in the header dict (up to the next top-level comma or brace).
fn dict_value<'a>(header: &'a str, key: &str) -> Result<&'a str> {
    let k1 = format!("'{key}'");
    let k2 = format!("\"{key}\"");
    let at = header
        .find(&k1)
        .or_else(|| header.find(&k2))
        .ok_or_else(|| bad(format!("header has no {key}")))?;
    let rest = &header[at + k1.len()..];
    let rest = rest
        .trim_start()
        .strip_prefix(':')
        .ok_or_else(|| bad(format!("no ':' after {key}")))?
        .trim_start();
    let end = if rest.starts_with('(') {
        rest.find(')').map(|i| i + 1)
    } else {
        rest.find([',', '}'])
    }
    .ok_or_else(|| bad(format!("unterminated {key}")))?;
    Ok(rest[..end].trim())
}

fn parse_shape(s: &str) -> Result<Vec<usize>> {
    let inner = s
        .strip_prefix('(')
        .and_then(|s| s.strip_suffix(')'))
        .ok_or_else(|| bad(format!("shape {s}")))?;
    inner
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| p.parse().map_err(|_| bad(format!("shape entry {p:?}"))))
        .collect()
}

fn fortran_to_c(data: &[f64], shape: &[usize]) -> Vec<f64> {
    let n = data.len();
    let mut out = vec![0.0; n];
    let mut idx = vec![0usize; shape.len()];
    for v in data {
        // Fortran order: the first index runs fastest.
        let mut c = 0;
        for (d, &i) in shape.iter().zip(&idx) {
            c = c * d + i;
        }
        out[c] = *v;
        for (i, d) in idx.iter_mut().zip(shape) {
            *i += 1;
            if *i < *d {
                break;
            }
            *i = 0;
        }
    }
    out
}

/// Reads a `.npy` file.
pub fn read(path: &Path) -> Result<NpyArray> {
    let bytes = std::fs::read(path).map_err(|e| SegError::io(path, e))?;
    parse(&bytes).map_err(|e| match e {
        SegError::Npy { msg, .. } => SegError::Npy {
            path: Some(path.to_path_buf()),
            msg,
        },
        e => e,
    })
}

/// Encodes a row-major `f32` array as `.npy` (version 1.0).
pub fn encode_f32(shape: &[usize], data: &[f32]) -> Result<Vec<u8>> {
    if shape.iter().product::<usize>() != data.len() {
        return Err(SegError::Mismatch(format!(
            "shape {shape:?} for {} values",
            data.len()
        )));
    }
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let dims = if dims.len() == 1 {
        format!("{},", dims[0])
    } else {
        dims.join(", ")
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({dims}), }}");
    // Pad so that the payload starts at a multiple of 64 bytes, ending the header with '\n'.
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + 4 * data.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for v in data {
        out.extend_from_slice(&v.to_le_bytes());
    }
    Ok(out)
}

/// Writes a row-major `f32` array to a `.npy` file.
pub fn write_f32(path: &Path, shape: &[usize], data: &[f32]) -> Result<()> {
    std::fs::write(path, encode_f32(shape, data)?).map_err(|e| SegError::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_shape_and_values() {
        let data: Vec<f32> = (0..12).map(|i| i as f32 * 0.5 - 2.0).collect();
        let a = parse(&encode_f32(&[3, 4], &data).unwrap()).unwrap();
        assert_eq!(a.shape, vec![3, 4]);
        assert_eq!(a.data, data.iter().map(|&v| v as f64).collect::<Vec<_>>());
        let b = parse(&encode_f32(&[5], &data[..5]).unwrap()).unwrap();
        assert_eq!(b.shape, vec![5]);
    }

    #[test]
    fn fortran_order_is_transposed_to_c() {
        let mut bytes = encode_f32(&[2, 3], &[0., 3., 1., 4., 2., 5.]).unwrap();
        replace(&mut bytes, b"False", b"True ");
        let a = parse(&bytes).unwrap();
        assert_eq!(a.data, vec![0., 1., 2., 3., 4., 5.]);
    }

    #[test]
    fn corrupt_files_are_errors() {
        assert!(parse(b"not numpy").is_err());
        let mut bytes = encode_f32(&[2, 2], &[1., 2., 3., 4.]).unwrap();
        bytes.truncate(bytes.len() - 1);
        assert!(matches!(parse(&bytes), Err(SegError::Npy { .. })));
        let mut h = encode_f32(&[2], &[1., 2.]).unwrap();
        replace(&mut h, b"<f4", b">f4");
        assert!(parse(&h).is_err());
    }

    fn replace(bytes: &mut [u8], from: &[u8], to: &[u8]) {
        let at = bytes.windows(from.len()).position(|w| w == from).unwrap();
        bytes[at..at + to.len()].copy_from_slice(to);
    }
}
