//! ONNX `TensorProto` to [`Value`] and back: raw little-endian bytes or the typed repeated
//! fields, for every [`DType`] elide holds.
use super::proto::TensorProto;
use crate::dtype::DType;
use crate::ops::MAX_ELEMENTS;
use crate::small_floats::{F4E2M1, F8E4M3FN, F8E4M3FNUZ, F8E5M2, F8E5M2FNUZ, I4, U4};
use crate::{with_array, Elem, GraphError, Result, Value};
use half::{bf16, f16};

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
    let dtype = DType::from_onnx(t.data_type).ok_or_else(|| {
        unsupported(format!(
            "element type {} ({})",
            DType::onnx_name(t.data_type),
            t.data_type
        ))
    })?;
    let raw = &t.raw_data;
    let bad_len = |got: usize| {
        GraphError::Model(format!(
            "tensor '{}' of {owner}: {got} values for shape {shape:?} ({n})",
            t.name
        ))
    };
    if dtype.is_4bit() {
        // Packed two per byte, low nibble first; in int32_data one packed byte per entry.
        let bytes: Vec<u8> = if raw.is_empty() {
            t.int32_data.iter().map(|&v| v as u8).collect()
        } else {
            raw.clone()
        };
        if bytes.len() != n.div_ceil(2) {
            return Err(bad_len(bytes.len() * 2));
        }
        let nib = |i: usize| (bytes[i / 2] >> ((i % 2) * 4)) & 0xF;
        return match dtype {
            DType::U4 => Value::from_vec(&shape, (0..n).map(|i| U4(nib(i))).collect()),
            DType::I4 => Value::from_vec(&shape, (0..n).map(|i| I4(nib(i))).collect()),
            _ => Value::from_vec(&shape, (0..n).map(|i| F4E2M1(nib(i))).collect()),
        };
    }
    if !raw.is_empty() {
        if raw.len() != n * dtype.size() {
            return Err(bad_len(raw.len() / dtype.size()));
        }
        return from_raw(dtype, &shape, raw);
    }
    // The typed fields: ONNX keeps every type narrower than 32 bits (and f16/bf16 as bit
    // patterns) in int32_data, u32/u64 in uint64_data.
    let len = match dtype {
        DType::F32 => t.float_data.len(),
        DType::F64 => t.double_data.len(),
        DType::I64 => t.int64_data.len(),
        DType::U32 | DType::U64 => t.uint64_data.len(),
        _ => t.int32_data.len(),
    };
    if len != n {
        return Err(bad_len(len));
    }
    let i32s = &t.int32_data;
    match dtype {
        DType::F32 => Value::from_vec(&shape, t.float_data.clone()),
        DType::F64 => Value::from_vec(&shape, t.double_data.clone()),
        DType::I64 => Value::from_vec(&shape, t.int64_data.clone()),
        DType::U32 => Value::from_vec(&shape, t.uint64_data.iter().map(|&v| v as u32).collect()),
        DType::U64 => Value::from_vec(&shape, t.uint64_data.clone()),
        DType::F16 => Value::from_vec(
            &shape,
            i32s.iter().map(|&v| f16::from_bits(v as u16)).collect(),
        ),
        DType::BF16 => Value::from_vec(
            &shape,
            i32s.iter().map(|&v| bf16::from_bits(v as u16)).collect(),
        ),
        DType::I8 => Value::from_vec(&shape, i32s.iter().map(|&v| v as i8).collect()),
        DType::I16 => Value::from_vec(&shape, i32s.iter().map(|&v| v as i16).collect()),
        DType::I32 => Value::from_vec(&shape, i32s.clone()),
        DType::U8 => Value::from_vec(&shape, i32s.iter().map(|&v| v as u8).collect()),
        DType::U16 => Value::from_vec(&shape, i32s.iter().map(|&v| v as u16).collect()),
        DType::Bool => Value::from_vec(&shape, i32s.iter().map(|&v| v != 0).collect()),
        _ => from_raw(
            dtype,
            &shape,
            &i32s.iter().map(|&v| v as u8).collect::<Vec<u8>>(),
        ),
    }
}

/// Little-endian raw bytes (already checked to hold `shape`'s elements) to a value.
fn from_raw(dtype: DType, shape: &[usize], raw: &[u8]) -> Result<Value> {
    macro_rules! le {
        ($t:ty, $w:literal) => {
            Value::from_vec(
                shape,
                raw.chunks_exact($w)
                    .map(|b| <$t>::from_le_bytes(b.try_into().expect("width")))
                    .collect(),
            )
        };
    }
    match dtype {
        DType::F32 => le!(f32, 4),
        DType::F64 => le!(f64, 8),
        DType::F16 => le!(f16, 2),
        DType::BF16 => le!(bf16, 2),
        DType::I8 => le!(i8, 1),
        DType::I16 => le!(i16, 2),
        DType::I32 => le!(i32, 4),
        DType::I64 => le!(i64, 8),
        DType::U8 => le!(u8, 1),
        DType::U16 => le!(u16, 2),
        DType::U32 => le!(u32, 4),
        DType::U64 => le!(u64, 8),
        DType::Bool => Value::from_vec(shape, raw.iter().map(|&b| b != 0).collect()),
        DType::F8E4M3FN => Value::from_vec(shape, raw.iter().map(|&b| F8E4M3FN(b)).collect()),
        DType::F8E4M3FNUZ => Value::from_vec(shape, raw.iter().map(|&b| F8E4M3FNUZ(b)).collect()),
        DType::F8E5M2 => Value::from_vec(shape, raw.iter().map(|&b| F8E5M2(b)).collect()),
        DType::F8E5M2FNUZ => Value::from_vec(shape, raw.iter().map(|&b| F8E5M2FNUZ(b)).collect()),
        DType::U4 => Value::from_vec(shape, raw.iter().map(|&b| U4(b & 0xF)).collect()),
        DType::I4 => Value::from_vec(shape, raw.iter().map(|&b| I4(b & 0xF)).collect()),
        DType::F4E2M1 => Value::from_vec(shape, raw.iter().map(|&b| F4E2M1(b & 0xF)).collect()),
    }
}

/// A value as a `TensorProto` with raw little-endian data.
pub fn from_value(name: &str, v: &Value) -> TensorProto {
    fn bytes<T: Elem + ToLe>(a: &ndarray::ArrayD<T>) -> Vec<u8> {
        let mut out = Vec::with_capacity(a.len() * T::DTYPE.size());
        for x in a.iter() {
            x.put(&mut out);
        }
        out
    }
    let mut raw_data = with_array!(v, a => bytes(a));
    if v.dtype().is_4bit() {
        raw_data = raw_data
            .chunks(2)
            .map(|p| (p[0] & 0xF) | (p.get(1).copied().unwrap_or(0) << 4))
            .collect();
    }
    TensorProto {
        dims: v.shape().iter().map(|&d| d as i64).collect(),
        data_type: v.dtype().onnx(),
        name: name.to_string(),
        raw_data,
        ..Default::default()
    }
}

/// Little-endian encoding of one element.
trait ToLe {
    fn put(&self, out: &mut Vec<u8>);
}
macro_rules! to_le {
    ($($t:ty),*) => {$(
        impl ToLe for $t {
            fn put(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
        }
    )*};
}
to_le!(f32, f64, f16, bf16, i8, i16, i32, i64, u8, u16, u32, u64);
macro_rules! to_le_byte {
    ($($t:ty),*) => {$(
        impl ToLe for $t {
            fn put(&self, out: &mut Vec<u8>) {
                out.push(self.0);
            }
        }
    )*};
}
to_le_byte!(F8E4M3FN, F8E4M3FNUZ, F8E5M2, F8E5M2FNUZ, U4, I4, F4E2M1);
impl ToLe for bool {
    fn put(&self, out: &mut Vec<u8>) {
        out.push(*self as u8);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_dtype_round_trips_through_raw_data() {
        for d in DType::ALL {
            let v = Value::f32(&[2, 3], vec![0.0, 1.0, 2.0, 3.0, 0.0, 5.0])
                .unwrap()
                .cast(d);
            let back = to_value(&from_value("t", &v), "t").unwrap();
            assert_eq!(back, v, "{d}");
        }
    }

    #[test]
    fn four_bit_types_are_packed_low_nibble_first() {
        let t = TensorProto {
            dims: vec![3],
            data_type: DType::I4.onnx(),
            raw_data: vec![0x8F, 0x07],
            ..Default::default()
        };
        let v = to_value(&t, "t").unwrap();
        assert_eq!(v.to_i64_vec(), vec![-1, -8, 7]);
        assert_eq!(from_value("t", &v).raw_data, vec![0x8F, 0x07]);
        let typed = TensorProto {
            raw_data: vec![],
            int32_data: vec![0x8F, 0x07],
            ..t.clone()
        };
        assert_eq!(to_value(&typed, "t").unwrap(), v);
        let short = TensorProto { dims: vec![5], ..t };
        assert!(to_value(&short, "t").is_err());
    }

    #[test]
    fn typed_fields_of_narrow_types() {
        let t = TensorProto {
            dims: vec![3],
            data_type: DType::F16.onnx(),
            int32_data: vec![0x3c00, 0x4000, 0xbc00], // 1, 2, -1 as f16 bits
            ..Default::default()
        };
        assert_eq!(
            to_value(&t, "t").unwrap().to_f64_vec(),
            vec![1.0, 2.0, -1.0]
        );
        let short = TensorProto { dims: vec![4], ..t };
        assert!(to_value(&short, "t").is_err());
    }
}
