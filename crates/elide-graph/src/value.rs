//! Values flowing through a graph: n-dimensional arrays of one of the [`DType`]s, standard
//! (C) layout, so they convert to and from the kernels' NCHW buffers without copies.
use crate::dtype::DType;
use crate::{GraphError, Result};
use half::{bf16, f16};
use ndarray::{ArrayD, IxDyn};

/// A tensor value. Convolutions and the fast element-wise paths run on `F32`; shape arithmetic
/// on integers; every other type is held as ONNX defines it, so ops that take it (Cast,
/// comparisons, shape ops, integer arithmetic, ...) keep it.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// 32-bit floats.
    F32(ArrayD<f32>),
    /// 64-bit floats.
    F64(ArrayD<f64>),
    /// IEEE halves.
    F16(ArrayD<f16>),
    /// bfloat16.
    BF16(ArrayD<bf16>),
    /// 8-bit signed integers.
    I8(ArrayD<i8>),
    /// 16-bit signed integers.
    I16(ArrayD<i16>),
    /// 32-bit signed integers.
    I32(ArrayD<i32>),
    /// 64-bit signed integers (shapes, indices).
    I64(ArrayD<i64>),
    /// 8-bit unsigned integers.
    U8(ArrayD<u8>),
    /// 16-bit unsigned integers.
    U16(ArrayD<u16>),
    /// 32-bit unsigned integers.
    U32(ArrayD<u32>),
    /// 64-bit unsigned integers.
    U64(ArrayD<u64>),
    /// Booleans.
    Bool(ArrayD<bool>),
    /// FLOAT8E4M3FN values.
    F8E4M3FN(ArrayD<crate::small_floats::F8E4M3FN>),
    /// FLOAT8E4M3FNUZ values.
    F8E4M3FNUZ(ArrayD<crate::small_floats::F8E4M3FNUZ>),
    /// FLOAT8E5M2 values.
    F8E5M2(ArrayD<crate::small_floats::F8E5M2>),
    /// FLOAT8E5M2FNUZ values.
    F8E5M2FNUZ(ArrayD<crate::small_floats::F8E5M2FNUZ>),
    /// UINT4 values.
    U4(ArrayD<crate::small_floats::U4>),
    /// INT4 values.
    I4(ArrayD<crate::small_floats::I4>),
    /// FLOAT4E2M1 values.
    F4E2M1(ArrayD<crate::small_floats::F4E2M1>),
}

/// Runs `$body` with `$a` bound to the array inside `$v` (any element type); the arms' results
/// must have one type.
#[macro_export]
macro_rules! with_array {
    ($v:expr, $a:ident => $body:expr) => {
        match $v {
            $crate::Value::F32($a) => $body,
            $crate::Value::F64($a) => $body,
            $crate::Value::F16($a) => $body,
            $crate::Value::BF16($a) => $body,
            $crate::Value::I8($a) => $body,
            $crate::Value::I16($a) => $body,
            $crate::Value::I32($a) => $body,
            $crate::Value::I64($a) => $body,
            $crate::Value::U8($a) => $body,
            $crate::Value::U16($a) => $body,
            $crate::Value::U32($a) => $body,
            $crate::Value::U64($a) => $body,
            $crate::Value::Bool($a) => $body,
            $crate::Value::F8E4M3FN($a) => $body,
            $crate::Value::F8E4M3FNUZ($a) => $body,
            $crate::Value::F8E5M2($a) => $body,
            $crate::Value::F8E5M2FNUZ($a) => $body,
            $crate::Value::U4($a) => $body,
            $crate::Value::I4($a) => $body,
            $crate::Value::F4E2M1($a) => $body,
        }
    };
}

/// Maps the array inside `$v` to a new array of the same element type (`$body` may use `?`
/// on [`crate::Result`]s), giving a [`Value`] of the same variant.
#[macro_export]
macro_rules! map_array {
    ($v:expr, $a:ident => $body:expr) => {
        match $v {
            $crate::Value::F32($a) => $crate::Value::F32($body),
            $crate::Value::F64($a) => $crate::Value::F64($body),
            $crate::Value::F16($a) => $crate::Value::F16($body),
            $crate::Value::BF16($a) => $crate::Value::BF16($body),
            $crate::Value::I8($a) => $crate::Value::I8($body),
            $crate::Value::I16($a) => $crate::Value::I16($body),
            $crate::Value::I32($a) => $crate::Value::I32($body),
            $crate::Value::I64($a) => $crate::Value::I64($body),
            $crate::Value::U8($a) => $crate::Value::U8($body),
            $crate::Value::U16($a) => $crate::Value::U16($body),
            $crate::Value::U32($a) => $crate::Value::U32($body),
            $crate::Value::U64($a) => $crate::Value::U64($body),
            $crate::Value::Bool($a) => $crate::Value::Bool($body),
            $crate::Value::F8E4M3FN($a) => $crate::Value::F8E4M3FN($body),
            $crate::Value::F8E4M3FNUZ($a) => $crate::Value::F8E4M3FNUZ($body),
            $crate::Value::F8E5M2($a) => $crate::Value::F8E5M2($body),
            $crate::Value::F8E5M2FNUZ($a) => $crate::Value::F8E5M2FNUZ($body),
            $crate::Value::U4($a) => $crate::Value::U4($body),
            $crate::Value::I4($a) => $crate::Value::I4($body),
            $crate::Value::F4E2M1($a) => $crate::Value::F4E2M1($body),
        }
    };
}

/// An element type a [`Value`] holds, with lossy conversions through `f64` (as ONNX Cast
/// defines them: floats to integers truncate toward zero, out-of-range saturates as Rust's
/// `as` does) and its wrapping in and out of [`Value`].
pub trait Elem: Copy + Default + Send + Sync + PartialEq + std::fmt::Debug + 'static {
    /// Its [`DType`].
    const DTYPE: DType;
    /// The value as f64.
    fn to_f64(self) -> f64;
    /// The element nearest `v` (truncated toward zero for integers).
    fn from_f64(v: f64) -> Self;
    /// The value as i64 (exact for integers, truncated for floats).
    fn to_i64(self) -> i64;
    /// From an i64 (wrapping to the width, as a C cast).
    fn from_i64(v: i64) -> Self;
    /// Wraps an array.
    fn wrap(a: ArrayD<Self>) -> Value;
    /// The array, when `v` holds this type.
    fn view(v: &Value) -> Option<&ArrayD<Self>>;
    /// The array, when `v` holds this type (by value).
    fn take(v: Value) -> std::result::Result<ArrayD<Self>, Value>;
}

macro_rules! elem_num {
    ($t:ty, $variant:ident) => {
        impl Elem for $t {
            const DTYPE: DType = DType::$variant;
            fn to_f64(self) -> f64 {
                self as f64
            }
            fn from_f64(v: f64) -> Self {
                v as $t
            }
            fn to_i64(self) -> i64 {
                self as i64
            }
            fn from_i64(v: i64) -> Self {
                v as $t
            }
            fn wrap(a: ArrayD<Self>) -> Value {
                Value::$variant(a)
            }
            fn view(v: &Value) -> Option<&ArrayD<Self>> {
                match v {
                    Value::$variant(a) => Some(a),
                    _ => None,
                }
            }
            fn take(v: Value) -> std::result::Result<ArrayD<Self>, Value> {
                match v {
                    Value::$variant(a) => Ok(a),
                    other => Err(other),
                }
            }
        }
    };
}
elem_num!(f32, F32);
elem_num!(f64, F64);
elem_num!(i8, I8);
elem_num!(i16, I16);
elem_num!(i32, I32);
elem_num!(i64, I64);
elem_num!(u8, U8);
elem_num!(u16, U16);
elem_num!(u32, U32);
elem_num!(u64, U64);

macro_rules! elem_half {
    ($t:ty, $variant:ident) => {
        impl Elem for $t {
            const DTYPE: DType = DType::$variant;
            fn to_f64(self) -> f64 {
                self.to_f64()
            }
            fn from_f64(v: f64) -> Self {
                <$t>::from_f64(v)
            }
            fn to_i64(self) -> i64 {
                self.to_f64() as i64
            }
            fn from_i64(v: i64) -> Self {
                <$t>::from_f64(v as f64)
            }
            fn wrap(a: ArrayD<Self>) -> Value {
                Value::$variant(a)
            }
            fn view(v: &Value) -> Option<&ArrayD<Self>> {
                match v {
                    Value::$variant(a) => Some(a),
                    _ => None,
                }
            }
            fn take(v: Value) -> std::result::Result<ArrayD<Self>, Value> {
                match v {
                    Value::$variant(a) => Ok(a),
                    other => Err(other),
                }
            }
        }
    };
}
elem_half!(f16, F16);
elem_half!(bf16, BF16);

impl Elem for bool {
    const DTYPE: DType = DType::Bool;
    fn to_f64(self) -> f64 {
        self as u8 as f64
    }
    fn from_f64(v: f64) -> Self {
        v != 0.0
    }
    fn to_i64(self) -> i64 {
        self as i64
    }
    fn from_i64(v: i64) -> Self {
        v != 0
    }
    fn wrap(a: ArrayD<Self>) -> Value {
        Value::Bool(a)
    }
    fn view(v: &Value) -> Option<&ArrayD<Self>> {
        match v {
            Value::Bool(a) => Some(a),
            _ => None,
        }
    }
    fn take(v: Value) -> std::result::Result<ArrayD<Self>, Value> {
        match v {
            Value::Bool(a) => Ok(a),
            other => Err(other),
        }
    }
}

/// Converts every element of `a` to `U` through f64 (integers to integers exactly).
fn convert<T: Elem, U: Elem>(a: &ArrayD<T>) -> ArrayD<U> {
    if T::DTYPE.is_float() || U::DTYPE.is_float() {
        a.mapv(|x| U::from_f64(x.to_f64()))
    } else {
        a.mapv(|x| U::from_i64(x.to_i64()))
    }
}

impl Value {
    /// The shape.
    pub fn shape(&self) -> &[usize] {
        with_array!(self, a => a.shape())
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        with_array!(self, a => a.len())
    }

    /// Whether it holds no element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Element type.
    pub fn dtype(&self) -> DType {
        match self {
            Value::F32(_) => DType::F32,
            Value::F64(_) => DType::F64,
            Value::F16(_) => DType::F16,
            Value::BF16(_) => DType::BF16,
            Value::I8(_) => DType::I8,
            Value::I16(_) => DType::I16,
            Value::I32(_) => DType::I32,
            Value::I64(_) => DType::I64,
            Value::U8(_) => DType::U8,
            Value::U16(_) => DType::U16,
            Value::U32(_) => DType::U32,
            Value::U64(_) => DType::U64,
            Value::Bool(_) => DType::Bool,
            Value::F8E4M3FN(_) => DType::F8E4M3FN,
            Value::F8E4M3FNUZ(_) => DType::F8E4M3FNUZ,
            Value::F8E5M2(_) => DType::F8E5M2,
            Value::F8E5M2FNUZ(_) => DType::F8E5M2FNUZ,
            Value::U4(_) => DType::U4,
            Value::I4(_) => DType::I4,
            Value::F4E2M1(_) => DType::F4E2M1,
        }
    }

    /// A value from a shape and data of any element type.
    pub fn from_vec<T: Elem>(shape: &[usize], data: Vec<T>) -> Result<Self> {
        ArrayD::from_shape_vec(IxDyn(shape), data)
            .map(T::wrap)
            .map_err(|e| GraphError::Model(format!("{} tensor of shape {shape:?}: {e}", T::DTYPE)))
    }

    /// An f32 value from a shape and data.
    pub fn f32(shape: &[usize], data: Vec<f32>) -> Result<Self> {
        Self::from_vec(shape, data)
    }

    /// An i64 value from a shape and data.
    pub fn i64(shape: &[usize], data: Vec<i64>) -> Result<Self> {
        Self::from_vec(shape, data)
    }

    /// The f32 array, or None.
    pub fn as_f32(&self) -> Option<&ArrayD<f32>> {
        f32::view(self)
    }

    /// The array of element type `T`, or None.
    pub fn as_array<T: Elem>(&self) -> Option<&ArrayD<T>> {
        T::view(self)
    }

    /// Integer view of the data (floats are truncated), for shape-like inputs.
    pub fn to_i64_vec(&self) -> Vec<i64> {
        with_array!(self, a => a.iter().map(|&x| x.to_i64()).collect())
    }

    /// The data as f64 (lossless for every type but 64-bit integers beyond 2^53).
    pub fn to_f64_vec(&self) -> Vec<f64> {
        with_array!(self, a => a.iter().map(|&x| x.to_f64()).collect())
    }

    /// The value converted to `to` (as ONNX Cast: floats to integers truncate toward zero,
    /// to bool is "not zero").
    pub fn cast(&self, to: DType) -> Value {
        self.cast_sat(to, true)
    }

    /// [`Value::cast`] with ONNX Cast's `saturate`: when false, values out of a float8 type's
    /// range become infinity (or NaN) instead of its largest finite value.
    pub fn cast_sat(&self, to: DType, saturate: bool) -> Value {
        if self.dtype() == to {
            return self.clone();
        }
        if !saturate {
            if let Some(v) = crate::small_floats::cast_no_saturate(self, to) {
                return v;
            }
        }
        if self.dtype() == to {
            return self.clone();
        }
        fn go<T: Elem>(a: &ArrayD<T>, to: DType) -> Value {
            match to {
                DType::F32 => Value::F32(convert(a)),
                DType::F64 => Value::F64(convert(a)),
                DType::F16 => Value::F16(convert(a)),
                DType::BF16 => Value::BF16(convert(a)),
                DType::I8 => Value::I8(convert(a)),
                DType::I16 => Value::I16(convert(a)),
                DType::I32 => Value::I32(convert(a)),
                DType::I64 => Value::I64(convert(a)),
                DType::U8 => Value::U8(convert(a)),
                DType::U16 => Value::U16(convert(a)),
                DType::U32 => Value::U32(convert(a)),
                DType::U64 => Value::U64(convert(a)),
                DType::Bool => Value::Bool(convert(a)),
                DType::F8E4M3FN => Value::F8E4M3FN(convert(a)),
                DType::F8E4M3FNUZ => Value::F8E4M3FNUZ(convert(a)),
                DType::F8E5M2 => Value::F8E5M2(convert(a)),
                DType::F8E5M2FNUZ => Value::F8E5M2FNUZ(convert(a)),
                DType::U4 => Value::U4(convert(a)),
                DType::I4 => Value::I4(convert(a)),
                DType::F4E2M1 => Value::F4E2M1(convert(a)),
            }
        }
        with_array!(self, a => go(a, to))
    }

    /// A value of `dtype` and `shape` filled with zeros (false).
    pub fn zeros(dtype: DType, shape: &[usize]) -> Value {
        Value::F32(ArrayD::zeros(IxDyn(shape))).cast(dtype)
    }

    /// The value in standard layout (a copy only when it is not).
    pub fn into_standard(self) -> Value {
        map_array!(self, a => if a.is_standard_layout() { a } else { a.as_standard_layout().into_owned() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cast_truncates_saturates_and_keeps_shape() {
        let v = Value::f32(&[2, 2], vec![1.7, -2.9, 300.0, 0.0]).unwrap();
        assert_eq!(v.cast(DType::I64).to_i64_vec(), vec![1, -2, 300, 0]);
        assert_eq!(v.cast(DType::U8).to_i64_vec(), vec![1, 0, 255, 0]);
        assert_eq!(v.cast(DType::Bool).to_i64_vec(), vec![1, 1, 1, 0]);
        assert_eq!(v.cast(DType::F16).shape(), &[2, 2]);
        let big = Value::i64(&[1], vec![i64::MAX]).unwrap();
        assert_eq!(big.cast(DType::I64).to_i64_vec(), vec![i64::MAX]);
        assert_eq!(big.cast(DType::I32).to_i64_vec(), vec![-1]); // wraps as a C cast
    }

    #[test]
    fn every_dtype_round_trips_its_onnx_code() {
        for d in DType::ALL {
            assert_eq!(DType::from_onnx(d.onnx()), Some(d));
            assert_eq!(Value::zeros(d, &[3]).dtype(), d);
        }
        assert_eq!(DType::from_onnx(8), None); // strings are not held
    }
}
