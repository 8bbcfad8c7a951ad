//! Element types: the ones a [`crate::Value`] holds, their ONNX codes and names.
//!
//! Every ONNX numeric type an inference graph uses is held in its own width (no widening at
//! load), so an op's output has the element type ONNX defines for it; float8 and 4-bit types
//! are held one element per byte ([`crate::small_floats`]).

/// The element types a [`crate::Value`] holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    /// 32-bit float (ONNX `FLOAT`).
    F32,
    /// 64-bit float (`DOUBLE`).
    F64,
    /// IEEE half (`FLOAT16`).
    F16,
    /// bfloat16 (`BFLOAT16`).
    BF16,
    /// `INT8`.
    I8,
    /// `INT16`.
    I16,
    /// `INT32`.
    I32,
    /// `INT64`.
    I64,
    /// `UINT8`.
    U8,
    /// `UINT16`.
    U16,
    /// `UINT32`.
    U32,
    /// `UINT64`.
    U64,
    /// `BOOL`.
    Bool,
    /// `FLOAT8E4M3FN`.
    F8E4M3FN,
    /// `FLOAT8E4M3FNUZ`.
    F8E4M3FNUZ,
    /// `FLOAT8E5M2`.
    F8E5M2,
    /// `FLOAT8E5M2FNUZ`.
    F8E5M2FNUZ,
    /// `UINT4` (one per byte in memory, packed two per byte in tensors).
    U4,
    /// `INT4` (as `UINT4`).
    I4,
    /// `FLOAT4E2M1` (as `UINT4`).
    F4E2M1,
}

/// ONNX `TensorProto.DataType` codes of the types above.
pub mod onnx_code {
    /// FLOAT.
    pub const FLOAT: i32 = 1;
    /// UINT8.
    pub const UINT8: i32 = 2;
    /// INT8.
    pub const INT8: i32 = 3;
    /// UINT16.
    pub const UINT16: i32 = 4;
    /// INT16.
    pub const INT16: i32 = 5;
    /// INT32.
    pub const INT32: i32 = 6;
    /// INT64.
    pub const INT64: i32 = 7;
    /// STRING.
    pub const STRING: i32 = 8;
    /// BOOL.
    pub const BOOL: i32 = 9;
    /// FLOAT16.
    pub const FLOAT16: i32 = 10;
    /// DOUBLE.
    pub const DOUBLE: i32 = 11;
    /// UINT32.
    pub const UINT32: i32 = 12;
    /// UINT64.
    pub const UINT64: i32 = 13;
    /// BFLOAT16.
    pub const BFLOAT16: i32 = 16;
    /// FLOAT8E4M3FN.
    pub const FLOAT8E4M3FN: i32 = 17;
    /// FLOAT8E4M3FNUZ.
    pub const FLOAT8E4M3FNUZ: i32 = 18;
    /// FLOAT8E5M2.
    pub const FLOAT8E5M2: i32 = 19;
    /// FLOAT8E5M2FNUZ.
    pub const FLOAT8E5M2FNUZ: i32 = 20;
    /// UINT4.
    pub const UINT4: i32 = 21;
    /// INT4.
    pub const INT4: i32 = 22;
    /// FLOAT4E2M1.
    pub const FLOAT4E2M1: i32 = 23;
}

impl DType {
    /// Every type, in ONNX code order.
    pub const ALL: [DType; 20] = [
        DType::F32,
        DType::U8,
        DType::I8,
        DType::U16,
        DType::I16,
        DType::I32,
        DType::I64,
        DType::Bool,
        DType::F16,
        DType::F64,
        DType::U32,
        DType::U64,
        DType::BF16,
        DType::F8E4M3FN,
        DType::F8E4M3FNUZ,
        DType::F8E5M2,
        DType::F8E5M2FNUZ,
        DType::U4,
        DType::I4,
        DType::F4E2M1,
    ];

    /// Short name, as messages spell it ("f32", "i64", "bool", ...).
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F64 => "f64",
            DType::F16 => "f16",
            DType::BF16 => "bf16",
            DType::I8 => "i8",
            DType::I16 => "i16",
            DType::I32 => "i32",
            DType::I64 => "i64",
            DType::U8 => "u8",
            DType::U16 => "u16",
            DType::U32 => "u32",
            DType::U64 => "u64",
            DType::Bool => "bool",
            DType::F8E4M3FN => "f8e4m3fn",
            DType::F8E4M3FNUZ => "f8e4m3fnuz",
            DType::F8E5M2 => "f8e5m2",
            DType::F8E5M2FNUZ => "f8e5m2fnuz",
            DType::U4 => "u4",
            DType::I4 => "i4",
            DType::F4E2M1 => "f4e2m1",
        }
    }

    /// The ONNX `TensorProto.DataType` code.
    pub fn onnx(self) -> i32 {
        use onnx_code::*;
        match self {
            DType::F32 => FLOAT,
            DType::F64 => DOUBLE,
            DType::F16 => FLOAT16,
            DType::BF16 => BFLOAT16,
            DType::I8 => INT8,
            DType::I16 => INT16,
            DType::I32 => INT32,
            DType::I64 => INT64,
            DType::U8 => UINT8,
            DType::U16 => UINT16,
            DType::U32 => UINT32,
            DType::U64 => UINT64,
            DType::Bool => BOOL,
            DType::F8E4M3FN => FLOAT8E4M3FN,
            DType::F8E4M3FNUZ => FLOAT8E4M3FNUZ,
            DType::F8E5M2 => FLOAT8E5M2,
            DType::F8E5M2FNUZ => FLOAT8E5M2FNUZ,
            DType::U4 => UINT4,
            DType::I4 => INT4,
            DType::F4E2M1 => FLOAT4E2M1,
        }
    }

    /// The type of an ONNX code, or `None` for one elide does not hold.
    pub fn from_onnx(code: i32) -> Option<DType> {
        DType::ALL.into_iter().find(|d| d.onnx() == code)
    }

    /// ONNX's name of a data type code, for messages about types elide does not hold.
    pub fn onnx_name(code: i32) -> &'static str {
        match code {
            0 => "UNDEFINED",
            1 => "FLOAT",
            2 => "UINT8",
            3 => "INT8",
            4 => "UINT16",
            5 => "INT16",
            6 => "INT32",
            7 => "INT64",
            8 => "STRING",
            9 => "BOOL",
            10 => "FLOAT16",
            11 => "DOUBLE",
            12 => "UINT32",
            13 => "UINT64",
            14 => "COMPLEX64",
            15 => "COMPLEX128",
            16 => "BFLOAT16",
            17 => "FLOAT8E4M3FN",
            18 => "FLOAT8E4M3FNUZ",
            19 => "FLOAT8E5M2",
            20 => "FLOAT8E5M2FNUZ",
            21 => "UINT4",
            22 => "INT4",
            23 => "FLOAT4E2M1",
            24 => "FLOAT8E8M0",
            _ => "unknown",
        }
    }

    /// Floating point (f32, f64, f16, bf16, and the float8 / float4 types).
    pub fn is_float(self) -> bool {
        matches!(
            self,
            DType::F32 | DType::F64 | DType::F16 | DType::BF16 | DType::F4E2M1
        ) || self.is_float8()
    }

    /// One of the four float8 types.
    pub fn is_float8(self) -> bool {
        matches!(
            self,
            DType::F8E4M3FN | DType::F8E4M3FNUZ | DType::F8E5M2 | DType::F8E5M2FNUZ
        )
    }

    /// A 4-bit type (UINT4, INT4, FLOAT4E2M1), packed two per byte in tensors.
    pub fn is_4bit(self) -> bool {
        matches!(self, DType::U4 | DType::I4 | DType::F4E2M1)
    }

    /// A signed or unsigned integer (not bool).
    pub fn is_int(self) -> bool {
        !self.is_float() && self != DType::Bool
    }

    /// Whether `v` holds this type.
    pub fn holds(self, v: &crate::Value) -> bool {
        v.dtype() == self
    }

    /// Bytes per element in memory (the 4-bit types take one byte each).
    pub fn size(self) -> usize {
        match self {
            DType::I8 | DType::U8 | DType::Bool => 1,
            DType::F8E4M3FN | DType::F8E4M3FNUZ | DType::F8E5M2 | DType::F8E5M2FNUZ => 1,
            DType::U4 | DType::I4 | DType::F4E2M1 => 1,
            DType::I16 | DType::U16 | DType::F16 | DType::BF16 => 2,
            DType::I32 | DType::U32 | DType::F32 => 4,
            DType::I64 | DType::U64 | DType::F64 => 8,
        }
    }
}

impl std::fmt::Display for DType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
