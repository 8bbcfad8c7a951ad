//! ONNX `TensorProto` to [`Value`]: raw little-endian bytes or the typed repeated fields.
use super::proto::{data_type as dt, TensorProto};
use crate::ops::MAX_ELEMENTS;
use crate::{GraphError, Result, Value};

/// Converts a tensor; `owner` names the initializer or node for errors.
pub fn to_value(t: &TensorProto, owner: &str) -> Result<Value> {
    let unsupported = |detail: String| GraphError::Unsupported {
        what: "tensor",
        node: owner.to_string(),
        op: "initializer".into(),
        detail,
    };
    if t.data_location == 1 || !t.external_data.is_empty() {
        return Err(unsupported("external data files are not supported".into()));
    }
    let shape: Vec<usize> = t
        .dims
        .iter()
        .map(|&d| {
            usize::try_from(d).map_err(|_| unsupported(format!("negative dim in {:?}", t.dims)))
        })
        .collect::<Result<_>>()?;
    // Checked: a product that wraps could match a short buffer.
    let n = shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .filter(|&n| n <= MAX_ELEMENTS)
        .ok_or_else(|| {
            unsupported(format!(
                "shape {shape:?} holds more than {MAX_ELEMENTS} elements"
            ))
        })?;
    let raw = &t.raw_data;
    let bad_len = |got: usize| {
        GraphError::Model(format!(
            "tensor '{}' of {owner}: {got} values for shape {shape:?} ({n})",
            t.name
        ))
    };
    let from_raw = |width: usize| -> Result<Option<std::slice::ChunksExact<'_, u8>>> {
        if raw.is_empty() {
            return Ok(None);
        }
        if raw.len() != n * width {
            return Err(bad_len(raw.len() / width));
        }
        Ok(Some(raw.chunks_exact(width)))
    };
    let v = match t.data_type {
        dt::FLOAT => {
            let data: Vec<f32> = match from_raw(4)? {
                Some(c) => c
                    .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")))
                    .collect(),
                None => t.float_data.clone(),
            };
            if data.len() != n {
                return Err(bad_len(data.len()));
            }
            Value::f32(&shape, data)?
        }
        dt::DOUBLE => {
            let data: Vec<f32> = match from_raw(8)? {
                Some(c) => c
                    .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")) as f32)
                    .collect(),
                None => t.double_data.iter().map(|&d| d as f32).collect(),
            };
            if data.len() != n {
                return Err(bad_len(data.len()));
            }
            Value::f32(&shape, data)?
        }
        dt::INT64 => {
            let data: Vec<i64> = match from_raw(8)? {
                Some(c) => c
                    .map(|b| i64::from_le_bytes(b.try_into().expect("8 bytes")))
                    .collect(),
                None => t.int64_data.clone(),
            };
            if data.len() != n {
                return Err(bad_len(data.len()));
            }
            Value::i64(&shape, data)?
        }
        dt::INT32 | dt::INT8 | dt::UINT8 | dt::BOOL => {
            let width = match t.data_type {
                dt::INT32 => 4,
                _ => 1,
            };
            let data: Vec<i64> = match from_raw(width)? {
                Some(c) => c
                    .map(|b| match t.data_type {
                        dt::INT32 => i32::from_le_bytes(b.try_into().expect("4 bytes")) as i64,
                        dt::INT8 => b[0] as i8 as i64,
                        _ => b[0] as i64,
                    })
                    .collect(),
                None => t.int32_data.iter().map(|&v| v as i64).collect(),
            };
            if data.len() != n {
                return Err(bad_len(data.len()));
            }
            Value::i64(&shape, data)?
        }
        other => return Err(unsupported(format!("data type {other}"))),
    };
    Ok(v)
}
