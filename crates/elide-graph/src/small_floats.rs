//! float8 (E4M3FN, E4M3FNUZ, E5M2, E5M2FNUZ), float4 (E2M1) and 4-bit integer (INT4, UINT4)
//! element types: one element per byte in memory, with the conversions ONNX defines (round to
//! nearest even, saturating by default; see [`F8E4M3FN::from_f64_sat`] for `saturate = 0`).
use crate::dtype::DType;
use crate::{Elem, Value};
use ndarray::ArrayD;
use std::cmp::Ordering;

/// Layout of one small float format.
struct Fmt {
    man: u32,
    bias: i32,
    sign: u8,
    /// Code of the largest finite magnitude.
    max: u8,
    /// Code of infinity, when the format has one.
    inf: Option<u8>,
    /// Code of NaN (positive), when the format has one.
    nan: Option<u8>,
    /// No negative zero: its code is the (only) NaN.
    fnuz: bool,
}

const E4M3FN: Fmt = Fmt {
    man: 3,
    bias: 7,
    sign: 0x80,
    max: 0x7E,
    inf: None,
    nan: Some(0x7F),
    fnuz: false,
};
const E4M3FNUZ: Fmt = Fmt {
    man: 3,
    bias: 8,
    sign: 0x80,
    max: 0x7F,
    inf: None,
    nan: Some(0x80),
    fnuz: true,
};
const E5M2: Fmt = Fmt {
    man: 2,
    bias: 15,
    sign: 0x80,
    max: 0x7B,
    inf: Some(0x7C),
    nan: Some(0x7E),
    fnuz: false,
};
const E5M2FNUZ: Fmt = Fmt {
    man: 2,
    bias: 16,
    sign: 0x80,
    max: 0x7F,
    inf: None,
    nan: Some(0x80),
    fnuz: true,
};
const E2M1: Fmt = Fmt {
    man: 1,
    bias: 1,
    sign: 0x8,
    max: 0x7,
    inf: None,
    nan: None,
    fnuz: false,
};

impl Fmt {
    /// Magnitude of a code without its sign bit (at most `max`).
    fn magnitude(&self, code: u8) -> f64 {
        let e = i32::from(code >> self.man);
        let m = f64::from(code & ((1u8 << self.man) - 1));
        let scale = f64::from(1u32 << self.man);
        if e == 0 {
            m / scale * 2f64.powi(1 - self.bias)
        } else {
            (1.0 + m / scale) * 2f64.powi(e - self.bias)
        }
    }

    fn decode(&self, bits: u8) -> f64 {
        if self.fnuz && bits == self.sign {
            return f64::NAN;
        }
        let neg = bits & self.sign != 0;
        let mag = bits & !self.sign;
        let v = if Some(mag) == self.inf {
            f64::INFINITY
        } else if mag > self.max {
            f64::NAN
        } else {
            self.magnitude(mag)
        };
        if neg {
            -v
        } else {
            v
        }
    }

    /// Nearest code to `x`, ties to the even code. Out of range saturates to the largest
    /// finite value when `saturate` (or the format has neither infinity nor NaN), else gives
    /// infinity (or NaN when there is no infinity).
    fn encode(&self, x: f64, saturate: bool) -> u8 {
        let neg = x.is_sign_negative();
        let sign = if neg { self.sign } else { 0 };
        if x.is_nan() {
            return match self.nan {
                Some(n) if self.fnuz => n,
                Some(n) => n | sign,
                None => self.sign, // as ml_dtypes: NaN becomes -0
            };
        }
        let a = x.abs();
        let max = self.magnitude(self.max);
        let code = if a > max {
            let overflow = self.inf.or(self.nan);
            match overflow {
                Some(o) if !saturate => {
                    let half = (max - self.magnitude(self.max - 1)) / 2.0;
                    let keeps = a < max + half || (a == max + half && self.max.is_multiple_of(2));
                    if a.is_infinite() || !keeps {
                        if self.fnuz {
                            return o;
                        }
                        o
                    } else {
                        self.max
                    }
                }
                _ => self.max,
            }
        } else {
            // Smallest code whose magnitude is >= a (codes are monotonic in magnitude).
            let (mut lo, mut hi) = (0u8, self.max);
            while lo < hi {
                let mid = lo + (hi - lo) / 2;
                if self.magnitude(mid) >= a {
                    hi = mid;
                } else {
                    lo = mid + 1;
                }
            }
            let c = lo;
            if c == 0 || self.magnitude(c) == a {
                c
            } else {
                let below = a - self.magnitude(c - 1);
                let above = self.magnitude(c) - a;
                match below.partial_cmp(&above) {
                    Some(Ordering::Less) => c - 1,
                    Some(Ordering::Greater) => c,
                    _ if c % 2 == 0 => c,
                    _ => c - 1,
                }
            }
        };
        if code == 0 && self.fnuz {
            0
        } else {
            code | sign
        }
    }
}

macro_rules! small_float {
    ($t:ident, $fmt:ident, $variant:ident, $doc:literal) => {
        #[doc = $doc]
        #[derive(Clone, Copy, Default, Debug)]
        pub struct $t(pub u8);

        impl $t {
            /// The element nearest `v`; out of range saturates to the largest finite value
            /// when `saturate`, else becomes infinity or NaN (ONNX Cast's `saturate = 0`).
            pub fn from_f64_sat(v: f64, saturate: bool) -> Self {
                $t($fmt.encode(v, saturate))
            }
            /// The bit pattern.
            pub fn to_bits(self) -> u8 {
                self.0
            }
        }

        impl PartialEq for $t {
            fn eq(&self, o: &Self) -> bool {
                self.to_f64() == o.to_f64()
            }
        }

        impl PartialOrd for $t {
            fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
                self.to_f64().partial_cmp(&o.to_f64())
            }
        }

        impl Elem for $t {
            const DTYPE: DType = DType::$variant;
            fn to_f64(self) -> f64 {
                $fmt.decode(self.0)
            }
            fn from_f64(v: f64) -> Self {
                Self::from_f64_sat(v, true)
            }
            fn to_i64(self) -> i64 {
                self.to_f64() as i64
            }
            fn from_i64(v: i64) -> Self {
                Self::from_f64(v as f64)
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
small_float!(
    F8E4M3FN,
    E4M3FN,
    F8E4M3FN,
    "ONNX `FLOAT8E4M3FN`: 4 exponent bits, 3 mantissa bits, no infinity, NaN 0x7F/0xFF."
);
small_float!(
    F8E4M3FNUZ,
    E4M3FNUZ,
    F8E4M3FNUZ,
    "ONNX `FLOAT8E4M3FNUZ`: bias 8, no infinity or negative zero, NaN 0x80."
);
small_float!(
    F8E5M2,
    E5M2,
    F8E5M2,
    "ONNX `FLOAT8E5M2`: 5 exponent bits, 2 mantissa bits, IEEE infinities and NaNs."
);
small_float!(
    F8E5M2FNUZ,
    E5M2FNUZ,
    F8E5M2FNUZ,
    "ONNX `FLOAT8E5M2FNUZ`: bias 16, no infinity or negative zero, NaN 0x80."
);
small_float!(
    F4E2M1,
    E2M1,
    F4E2M1,
    "ONNX `FLOAT4E2M1` (low nibble): values 0, 0.5, 1, 1.5, 2, 3, 4, 6 and their negatives."
);

macro_rules! small_int {
    ($t:ident, $variant:ident, $signed:literal, $doc:literal) => {
        #[doc = $doc]
        #[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
        pub struct $t(pub u8);

        impl $t {
            fn value(self) -> i64 {
                let v = i64::from(self.0 & 0xF);
                if $signed && v >= 8 {
                    v - 16
                } else {
                    v
                }
            }
            /// The 4-bit pattern (low nibble).
            pub fn to_bits(self) -> u8 {
                self.0 & 0xF
            }
        }

        impl PartialOrd for $t {
            fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
                Some(self.value().cmp(&o.value()))
            }
        }

        impl Elem for $t {
            const DTYPE: DType = DType::$variant;
            fn to_f64(self) -> f64 {
                self.value() as f64
            }
            /// Truncated toward zero, then wrapped to 4 bits as ONNX's Cast tests expect.
            fn from_f64(v: f64) -> Self {
                Self::from_i64(v as i64)
            }
            fn to_i64(self) -> i64 {
                self.value()
            }
            fn from_i64(v: i64) -> Self {
                $t((v & 0xF) as u8)
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
small_int!(
    U4,
    U4,
    false,
    "ONNX `UINT4`: 0..=15, one per byte (low nibble)."
);
small_int!(
    I4,
    I4,
    true,
    "ONNX `INT4`: -8..=7 two's complement, one per byte (low nibble)."
);

/// `v` cast to the float8 type `to` without saturation (ONNX Cast `saturate = 0`); `None` when
/// `to` is not a float8 type (saturation changes nothing there).
pub fn cast_no_saturate(v: &Value, to: DType) -> Option<Value> {
    let data = v.to_f64_vec();
    let shape = v.shape().to_vec();
    let r = match to {
        DType::F8E4M3FN => Value::from_vec(
            &shape,
            data.iter()
                .map(|&x| F8E4M3FN::from_f64_sat(x, false))
                .collect(),
        ),
        DType::F8E4M3FNUZ => Value::from_vec(
            &shape,
            data.iter()
                .map(|&x| F8E4M3FNUZ::from_f64_sat(x, false))
                .collect(),
        ),
        DType::F8E5M2 => Value::from_vec(
            &shape,
            data.iter()
                .map(|&x| F8E5M2::from_f64_sat(x, false))
                .collect(),
        ),
        DType::F8E5M2FNUZ => Value::from_vec(
            &shape,
            data.iter()
                .map(|&x| F8E5M2FNUZ::from_f64_sat(x, false))
                .collect(),
        ),
        _ => return None,
    };
    r.ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trips<T: Elem>(make: fn(u8) -> T, bits: fn(T) -> u8, n: u16) {
        for c in 0..n {
            let x = make(c as u8);
            let v = x.to_f64();
            if v.is_nan() {
                assert!(T::from_f64(v).to_f64().is_nan());
                continue;
            }
            if v.is_infinite() {
                continue;
            }
            assert_eq!(bits(T::from_f64(v)), c as u8, "{:?} {v}", T::DTYPE);
        }
    }

    #[test]
    fn every_code_round_trips() {
        round_trips(F8E4M3FN, F8E4M3FN::to_bits, 256);
        round_trips(F8E5M2, F8E5M2::to_bits, 256);
        round_trips(F4E2M1, F4E2M1::to_bits, 16);
        // FNUZ: 0x80 is NaN, so every other code round-trips.
        round_trips(F8E4M3FNUZ, F8E4M3FNUZ::to_bits, 256);
        round_trips(F8E5M2FNUZ, F8E5M2FNUZ::to_bits, 256);
    }

    #[test]
    fn known_values_and_limits() {
        assert_eq!(F8E4M3FN(0x7E).to_f64(), 448.0);
        assert_eq!(F8E4M3FNUZ(0x7F).to_f64(), 240.0);
        assert_eq!(F8E5M2(0x7B).to_f64(), 57344.0);
        assert_eq!(F8E5M2FNUZ(0x7F).to_f64(), 57344.0);
        assert_eq!(F4E2M1(0x7).to_f64(), 6.0);
        assert_eq!(F4E2M1(0x1).to_f64(), 0.5);
        assert_eq!(F8E4M3FN(0x01).to_f64(), 2f64.powi(-9));
        // Vectors from ml_dtypes (the ONNX reference).
        let e = |x: f64, s: bool| F8E4M3FN::from_f64_sat(x, s).0;
        assert_eq!(e(464.0, false), 0x7E);
        assert_eq!(e(465.0, false), 0x7F);
        assert_eq!(e(1e9, false), 0x7F);
        assert_eq!(e(f64::INFINITY, true), 0x7E);
        assert_eq!(e(-1e9, true), 0xFE);
        assert_eq!(e(-1e-7, true), 0x80);
        assert_eq!(e(0.47892547, true), 0x2F); // 0.46875
        assert_eq!(e(0.7229038, true), 0x34); // 0.75
        let m = |x: f64, s: bool| F8E5M2::from_f64_sat(x, s).0;
        assert_eq!(m(61440.0, false), 0x7C);
        assert_eq!(m(61439.0, false), 0x7B);
        assert_eq!(m(f64::NAN, true), 0x7E);
        assert_eq!(m(f64::NEG_INFINITY, false), 0xFC);
        let z = |x: f64| F8E4M3FNUZ::from_f64_sat(x, false).0;
        assert_eq!(
            [z(248.0), z(250.0), z(f64::INFINITY), z(-0.0)],
            [0x80, 0x80, 0x80, 0]
        );
        let f4: Vec<u8> = [
            0.2,
            0.5,
            1.5,
            2.5,
            -2.5,
            7.4,
            5.5,
            f64::NAN,
            -0.01,
            f64::INFINITY,
        ]
        .iter()
        .map(|&x| F4E2M1::from_f64(x).0)
        .collect();
        assert_eq!(f4, vec![0, 1, 3, 4, 12, 7, 7, 8, 8, 7]);
    }

    #[test]
    fn four_bit_integers_wrap_like_integer_casts() {
        let i: Vec<i64> = [-9.0, -8.0, 7.6, 8.0, 15.0]
            .iter()
            .map(|&x| I4::from_f64(x).to_i64())
            .collect();
        assert_eq!(i, vec![7, -8, 7, -8, -1]);
        let u: Vec<i64> = [-9, -1, 15, 16, 17]
            .iter()
            .map(|&x| U4::from_i64(x).to_i64())
            .collect();
        assert_eq!(u, vec![7, 15, 15, 0, 1]);
        assert!(I4::from_i64(-1) < I4::from_i64(1));
        assert!(F8E4M3FN::from_f64(-1.0) < F8E4M3FN::from_f64(0.5));
    }
}
