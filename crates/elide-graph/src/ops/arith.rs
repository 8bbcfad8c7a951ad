//! Element-wise arithmetic on every numeric type: the [`Arith`] element trait (wrapping
//! integer arithmetic, integer division by zero reported rather than a panic), the generic
//! path of `Add`/`Sub`/`Mul`/`Div` for the types the f32 fast paths of [`super::Binary`] do
//! not cover, and the ops `Pow` and `Mod`. Operands broadcast as numpy does.
use super::operator::Operator;
use super::typed::{input, zip_map, NUMERIC};
use super::{Binary, Ctx, Op};
use crate::onnx::registry::{NodeCtx, Registry};
use crate::{DType, Elem, Result, Value};
use half::{bf16, f16};
use ndarray::ArrayD;
use std::cell::Cell;
use std::sync::Arc;

/// Arithmetic on one element type as ONNX defines it: integers wrap (two's complement) and
/// divide truncating toward zero; floats of 16 bits compute in f32 and round once.
pub(crate) trait Arith: Elem + PartialOrd {
    /// Whether the type is a float.
    const FLOAT: bool;
    /// `a + b`.
    fn add(self, o: Self) -> Self;
    /// `a - b`.
    fn sub(self, o: Self) -> Self;
    /// `a * b`.
    fn mul(self, o: Self) -> Self;
    /// `a / b`; `None` for an integer division by zero.
    fn div(self, o: Self) -> Option<Self>;
    /// The remainder with the sign of the divisor (Python's `%`); `None` for a zero integer
    /// divisor.
    fn modulo(self, o: Self) -> Option<Self>;
    /// The remainder with the sign of the dividend (C's `fmod`, `%` on integers); `None` for
    /// a zero integer divisor.
    fn fmod(self, o: Self) -> Option<Self>;
    /// Whether the value is a NaN.
    fn is_nan(self) -> bool;
}

macro_rules! arith_int {
    ($t:ty, $signed:expr) => {
        impl Arith for $t {
            const FLOAT: bool = false;
            fn add(self, o: Self) -> Self {
                self.wrapping_add(o)
            }
            fn sub(self, o: Self) -> Self {
                self.wrapping_sub(o)
            }
            fn mul(self, o: Self) -> Self {
                self.wrapping_mul(o)
            }
            fn div(self, o: Self) -> Option<Self> {
                (o != 0).then(|| self.wrapping_div(o))
            }
            fn modulo(self, o: Self) -> Option<Self> {
                let r = self.fmod(o)?;
                // Signed only: a nonzero remainder whose sign differs from the divisor's.
                let flip = $signed && r != 0 && (r > Self::default()) != (o > Self::default());
                Some(if flip { r.wrapping_add(o) } else { r })
            }
            fn fmod(self, o: Self) -> Option<Self> {
                (o != 0).then(|| self.wrapping_rem(o))
            }
            fn is_nan(self) -> bool {
                false
            }
        }
    };
}
arith_int!(i8, true);
arith_int!(i16, true);
arith_int!(i32, true);
arith_int!(i64, true);
arith_int!(u8, false);
arith_int!(u16, false);
arith_int!(u32, false);
arith_int!(u64, false);

/// Floats: `$up` widens an element to the type computed in, `$down` rounds back.
macro_rules! arith_float {
    ($t:ty, $up:expr, $down:expr) => {
        impl Arith for $t {
            const FLOAT: bool = true;
            fn add(self, o: Self) -> Self {
                $down($up(self) + $up(o))
            }
            fn sub(self, o: Self) -> Self {
                $down($up(self) - $up(o))
            }
            fn mul(self, o: Self) -> Self {
                $down($up(self) * $up(o))
            }
            fn div(self, o: Self) -> Option<Self> {
                Some($down($up(self) / $up(o)))
            }
            fn modulo(self, o: Self) -> Option<Self> {
                let (a, b) = ($up(self), $up(o));
                let r = a % b;
                let flip = r != 0.0 && (r < 0.0) != (b < 0.0);
                Some($down(if flip { r + b } else { r }))
            }
            fn fmod(self, o: Self) -> Option<Self> {
                Some($down($up(self) % $up(o)))
            }
            fn is_nan(self) -> bool {
                $up(self).is_nan()
            }
        }
    };
}
arith_float!(f32, |x| x, |x| x);
arith_float!(f64, |x| x, |x| x);
arith_float!(f16, f16::to_f32, f16::from_f32);
arith_float!(bf16, bf16::to_f32, bf16::from_f32);

/// Runs `$body` with `$x` and `$y` bound to the arrays of two values of the same numeric
/// type (floats and integers, not bool); `$other` for any other pair.
macro_rules! numeric_pair {
    ($a:expr, $b:expr, $x:ident, $y:ident => $body:expr, $other:expr) => {
        match ($a, $b) {
            ($crate::Value::F32($x), $crate::Value::F32($y)) => $body,
            ($crate::Value::F64($x), $crate::Value::F64($y)) => $body,
            ($crate::Value::F16($x), $crate::Value::F16($y)) => $body,
            ($crate::Value::BF16($x), $crate::Value::BF16($y)) => $body,
            ($crate::Value::I8($x), $crate::Value::I8($y)) => $body,
            ($crate::Value::I16($x), $crate::Value::I16($y)) => $body,
            ($crate::Value::I32($x), $crate::Value::I32($y)) => $body,
            ($crate::Value::I64($x), $crate::Value::I64($y)) => $body,
            ($crate::Value::U8($x), $crate::Value::U8($y)) => $body,
            ($crate::Value::U16($x), $crate::Value::U16($y)) => $body,
            ($crate::Value::U32($x), $crate::Value::U32($y)) => $body,
            ($crate::Value::U64($x), $crate::Value::U64($y)) => $body,
            _ => $other,
        }
    };
}
pub(crate) use numeric_pair;

/// Runs `$body` with `$x` bound to the array of a numeric value (not bool); `$other` for a
/// bool.
macro_rules! numeric_one {
    ($v:expr, $x:ident => $body:expr, $other:expr) => {
        match $v {
            $crate::Value::F32($x) => $body,
            $crate::Value::F64($x) => $body,
            $crate::Value::F16($x) => $body,
            $crate::Value::BF16($x) => $body,
            $crate::Value::I8($x) => $body,
            $crate::Value::I16($x) => $body,
            $crate::Value::I32($x) => $body,
            $crate::Value::I64($x) => $body,
            $crate::Value::U8($x) => $body,
            $crate::Value::U16($x) => $body,
            $crate::Value::U32($x) => $body,
            $crate::Value::U64($x) => $body,
            _ => $other,
        }
    };
}
pub(crate) use numeric_one;

/// The error for two operands of different types, or of a type the op does not take.
pub(crate) fn pair_err(a: &Value, b: &Value, ctx: Ctx) -> crate::GraphError {
    if a.dtype() == b.dtype() {
        ctx.err(format!(
            "inputs are {}; this op takes numeric types",
            a.dtype()
        ))
    } else {
        ctx.err(format!(
            "mixed element types {} and {}",
            a.dtype(),
            b.dtype()
        ))
    }
}

/// `f` over `a` and `b` broadcast together; an element where `f` gives `None` makes the
/// whole result the error `what`.
pub(crate) fn zip_checked<T: Elem, U: Elem, V: Elem>(
    a: &ArrayD<T>,
    b: &ArrayD<U>,
    f: impl Fn(T, U) -> Option<V>,
    what: &str,
    ctx: Ctx,
) -> Result<ArrayD<V>> {
    let bad = Cell::new(false);
    let out = zip_map(
        a,
        b,
        |x, y| {
            f(x, y).unwrap_or_else(|| {
                bad.set(true);
                V::default()
            })
        },
        ctx,
    )?;
    if bad.get() {
        return Err(ctx.err(what.to_string()));
    }
    Ok(out)
}

/// `a op b` on two values of one numeric type with numpy broadcasting, for every type.
pub(crate) fn binary(op: Binary, a: &Value, b: &Value, ctx: Ctx) -> Result<Value> {
    fn go<T: Arith>(op: Binary, a: &ArrayD<T>, b: &ArrayD<T>, ctx: Ctx) -> Result<Value> {
        let f = move |x: T, y: T| match op {
            Binary::Add => Some(x.add(y)),
            Binary::Sub => Some(x.sub(y)),
            Binary::Mul => Some(x.mul(y)),
            Binary::Div => x.div(y),
        };
        Ok(T::wrap(zip_checked(
            a,
            b,
            f,
            "integer division by zero",
            ctx,
        )?))
    }
    numeric_pair!(a, b, x, y => go(op, x, y, ctx), Err(pair_err(a, b, ctx)))
}

/// `Mod`: the remainder, with the divisor's sign (`fmod = 0`, integers only, as ONNX
/// requires) or the dividend's (`fmod = 1`, C's `fmod`).
#[derive(Clone, Debug)]
pub struct Mod {
    fmod: bool,
}

impl Operator for Mod {
    fn name(&self) -> &'static str {
        "Mod"
    }

    fn run(&self, inputs: &[Option<&Value>], ctx: Ctx) -> Result<Vec<Value>> {
        let a = input(inputs, 0, &NUMERIC, ctx)?;
        let b = input(inputs, 1, &NUMERIC, ctx)?;
        if !self.fmod && a.dtype().is_float() {
            return Err(ctx.err(format!(
                "fmod = 0 takes integers; the inputs are {}",
                a.dtype()
            )));
        }
        fn go<T: Arith>(fmod: bool, a: &ArrayD<T>, b: &ArrayD<T>, ctx: Ctx) -> Result<Value> {
            let f = |x: T, y: T| if fmod { x.fmod(y) } else { x.modulo(y) };
            Ok(T::wrap(zip_checked(
                a,
                b,
                f,
                "integer modulo by zero",
                ctx,
            )?))
        }
        let out =
            numeric_pair!(a, b, x, y => go(self.fmod, x, y, ctx)?, return Err(pair_err(a, b, ctx)));
        Ok(vec![out])
    }

    fn pointwise(&self) -> bool {
        true
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// `Pow`: the base raised to the exponent, in the base's type; the exponent may be of any
/// numeric type. An integer base with an integer exponent is exact (wrapping); anything
/// else computes in f64 and converts as Cast does.
#[derive(Clone, Debug)]
pub struct Pow;

/// `b^e` in wrapping i64 arithmetic, by squaring.
fn int_pow(mut b: i64, mut e: u64) -> i64 {
    let mut r: i64 = 1;
    while e > 0 {
        if e & 1 == 1 {
            r = r.wrapping_mul(b);
        }
        b = b.wrapping_mul(b);
        e >>= 1;
    }
    r
}

/// An integer base to an integer exponent; a negative exponent truncates `1 / b^-e` toward
/// zero (`None`: zero to a negative power).
fn int_pow_signed(b: i64, e: i64) -> Option<i64> {
    if e >= 0 {
        return Some(int_pow(b, e as u64));
    }
    match b {
        0 => None,
        1 => Some(1),
        -1 => Some(if e % 2 == 0 { 1 } else { -1 }),
        _ => Some(0),
    }
}

impl Operator for Pow {
    fn name(&self) -> &'static str {
        "Pow"
    }

    fn run(&self, inputs: &[Option<&Value>], ctx: Ctx) -> Result<Vec<Value>> {
        let a = input(inputs, 0, &NUMERIC, ctx)?;
        let b = input(inputs, 1, &NUMERIC, ctx)?;
        fn go<T: Arith, U: Elem>(a: &ArrayD<T>, b: &ArrayD<U>, ctx: Ctx) -> Result<Value> {
            let unsigned_exp = matches!(U::DTYPE, DType::U8 | DType::U16 | DType::U32 | DType::U64);
            let out = if T::FLOAT || U::DTYPE.is_float() {
                zip_map(a, b, |x, y| T::from_f64(x.to_f64().powf(y.to_f64())), ctx)?
            } else {
                let f = |x: T, y: U| {
                    let r = if unsigned_exp {
                        // u64 exponents above i64::MAX come back exactly through `as`.
                        int_pow(x.to_i64(), y.to_i64() as u64)
                    } else {
                        int_pow_signed(x.to_i64(), y.to_i64())?
                    };
                    Some(T::from_i64(r))
                };
                zip_checked(a, b, f, "zero to a negative integer power", ctx)?
            };
            Ok(T::wrap(out))
        }
        let bool_err = || ctx.err("bool is not numeric");
        macro_rules! exp {
            ($x:expr) => {
                numeric_one!(b, y => go($x, y, ctx)?, return Err(bool_err()))
            };
        }
        let out = numeric_one!(a, x => exp!(x), return Err(bool_err()));
        Ok(vec![out])
    }

    fn pointwise(&self) -> bool {
        true
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

fn build_mod(n: &NodeCtx) -> Result<Op> {
    let a = n.attrs(&["fmod"])?;
    n.arity((2, 2), (1, 1))?;
    let fmod = match a.int("fmod", 0) {
        0 => false,
        1 => true,
        v => return Err(a.unsupported(format!("fmod = {v} (0 or 1)"))),
    };
    Ok(Op::Dyn(Arc::new(Mod { fmod })))
}

fn build_pow(n: &NodeCtx) -> Result<Op> {
    n.attrs(&[])?;
    n.arity((2, 2), (1, 1))?;
    Ok(Op::Dyn(Arc::new(Pow)))
}

/// Registers the ops of this file.
pub(crate) fn register(r: &mut Registry) {
    r.add("", "Pow", 7, build_pow);
    r.add("", "Mod", 10, build_mod);
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::ops::tests::CTX;
    use ndarray::IxDyn;

    /// Naive numpy broadcasting: every output index read back through size-1 axes.
    pub(crate) fn naive<T: Elem, U: Elem, V: Elem>(
        a: &ArrayD<T>,
        b: &ArrayD<U>,
        f: impl Fn(T, U) -> V,
    ) -> ArrayD<V> {
        let r = a.ndim().max(b.ndim());
        let pad = |s: &[usize]| {
            let mut v = vec![1; r - s.len()];
            v.extend_from_slice(s);
            v
        };
        let (sa, sb) = (pad(a.shape()), pad(b.shape()));
        let out: Vec<usize> = (0..r)
            .map(|i| sa[i].max(sb[i]) * (sa[i].min(sb[i]) != 0) as usize)
            .collect();
        let (ra, rb) = (
            a.clone().into_shape_with_order(IxDyn(&sa)).unwrap(),
            b.clone().into_shape_with_order(IxDyn(&sb)).unwrap(),
        );
        ArrayD::from_shape_fn(IxDyn(&out), |ix| {
            let ia: Vec<usize> = (0..r).map(|k| if sa[k] == 1 { 0 } else { ix[k] }).collect();
            let ib: Vec<usize> = (0..r).map(|k| if sb[k] == 1 { 0 } else { ix[k] }).collect();
            f(ra[IxDyn(&ia)], rb[IxDyn(&ib)])
        })
    }

    pub(crate) fn arr<T: Elem>(shape: &[usize], data: Vec<T>) -> ArrayD<T> {
        ArrayD::from_shape_vec(IxDyn(shape), data).unwrap()
    }

    /// `n` values cycling through `vals`.
    pub(crate) fn cyc<T: Copy>(n: usize, vals: &[T]) -> Vec<T> {
        (0..n).map(|i| vals[(i * 7 + 3) % vals.len()]).collect()
    }

    const SHAPES: [(&[usize], &[usize]); 6] = [
        (&[2, 3], &[2, 3]),
        (&[2, 1, 3], &[4, 1]),
        (&[3], &[]),
        (&[0, 3], &[3]),
        (&[1], &[5, 1, 1]),
        (&[1, 1], &[1]),
    ];

    #[test]
    fn integer_arithmetic_wraps_truncates_and_broadcasts() {
        let vals: [i8; 7] = [-128, -7, -1, 1, 2, 5, 127];
        for (sa, sb) in SHAPES {
            let a = arr(sa, cyc(sa.iter().product(), &vals));
            let b = arr(sb, cyc(sb.iter().product(), &vals[1..]));
            let (va, vb) = (Value::I8(a.clone()), Value::I8(b.clone()));
            for (op, f) in [
                (
                    Binary::Add,
                    (|x: i8, y: i8| x.wrapping_add(y)) as fn(i8, i8) -> i8,
                ),
                (Binary::Sub, |x, y| x.wrapping_sub(y)),
                (Binary::Mul, |x, y| x.wrapping_mul(y)),
                (Binary::Div, |x, y| x.wrapping_div(y)),
            ] {
                let got = op.apply(&va, &vb, CTX).unwrap();
                assert_eq!(got, Value::I8(naive(&a, &b, f)), "{op:?} {sa:?} {sb:?}");
            }
        }
        // Truncation toward zero, as C, on every width; u64 beyond i64's range.
        let q = |a: Value, b: Value| Binary::Div.apply(&a, &b, CTX).unwrap().to_i64_vec();
        assert_eq!(
            q(
                Value::from_vec(&[2], vec![-7i32, 7]).unwrap(),
                Value::from_vec(&[1], vec![2i32]).unwrap()
            ),
            vec![-3, 3]
        );
        let big = Value::from_vec(&[1], vec![u64::MAX]).unwrap();
        let two = Value::from_vec(&[1], vec![2u64]).unwrap();
        assert_eq!(
            Binary::Div.apply(&big, &two, CTX).unwrap(),
            Value::from_vec(&[1], vec![u64::MAX / 2]).unwrap()
        );
        assert_eq!(
            Binary::Add.apply(&big, &two, CTX).unwrap(),
            Value::from_vec(&[1], vec![1u64]).unwrap()
        );
        let i = Value::from_vec(&[1], vec![i64::MIN]).unwrap();
        let m1 = Value::from_vec(&[1], vec![-1i64]).unwrap();
        assert_eq!(
            Binary::Div.apply(&i, &m1, CTX).unwrap().to_i64_vec(),
            vec![i64::MIN]
        );
    }

    #[test]
    fn floats_and_errors() {
        let a = Value::from_vec(&[3], vec![1.0f64, -2.0, 0.5]).unwrap();
        let b = Value::from_vec(&[1], vec![0.0f64]).unwrap();
        let d = Binary::Div.apply(&a, &b, CTX).unwrap().to_f64_vec();
        assert_eq!(d, vec![f64::INFINITY, f64::NEG_INFINITY, f64::INFINITY]);
        let h = Value::from_vec(&[2], vec![f16::from_f32(1.5), f16::from_f32(-3.0)]).unwrap();
        let s = Binary::Mul.apply(&h, &h, CTX).unwrap();
        assert_eq!(s.dtype(), DType::F16);
        assert_eq!(s.to_f64_vec(), vec![2.25, 9.0]);
        // Division by an integer zero, mixed types, bool and bad shapes are errors.
        let i = Value::from_vec(&[2], vec![4i16, 3]).unwrap();
        let z = Value::from_vec(&[2], vec![1i16, 0]).unwrap();
        let e = Binary::Div.apply(&i, &z, CTX).unwrap_err().to_string();
        assert!(e.contains("division by zero"), "{e}");
        // A zero divisor that no output element reads is no error.
        let empty = Value::from_vec(&[0, 2], Vec::<i16>::new()).unwrap();
        assert_eq!(Binary::Div.apply(&empty, &z, CTX).unwrap().shape(), &[0, 2]);
        let e = Binary::Add.apply(&i, &a, CTX).unwrap_err().to_string();
        assert!(e.contains("i16") && e.contains("f64"), "{e}");
        let t = Value::from_vec(&[1], vec![true]).unwrap();
        let e = Binary::Add.apply(&t, &t, CTX).unwrap_err().to_string();
        assert!(e.contains("bool"), "{e}");
        let c = Value::from_vec(&[3], vec![1i16, 2, 3]).unwrap();
        assert!(Binary::Add.apply(&i, &c, CTX).is_err());
    }

    fn run(op: &dyn Operator, a: &Value, b: &Value) -> Result<Value> {
        Ok(op.run(&[Some(a), Some(b)], CTX)?.remove(0))
    }

    #[test]
    fn mod_takes_the_divisor_sign_or_the_dividend_sign() {
        let a = Value::from_vec(&[6], vec![-4i32, 4, -4, 4, 0, 7]).unwrap();
        let b = Value::from_vec(&[6], vec![3i32, -3, -3, 3, -5, 7]).unwrap();
        let m = Mod { fmod: false };
        assert_eq!(
            run(&m, &a, &b).unwrap().to_i64_vec(),
            vec![2, -2, -1, 1, 0, 0]
        );
        let f = Mod { fmod: true };
        assert_eq!(
            run(&f, &a, &b).unwrap().to_i64_vec(),
            vec![-1, 1, -1, 1, 0, 0]
        );
        let u = Value::from_vec(&[2], vec![250u8, 7]).unwrap();
        let v = Value::from_vec(&[1], vec![7u8]).unwrap();
        assert_eq!(
            run(&m, &u, &v).unwrap(),
            Value::from_vec(&[2], vec![5u8, 0]).unwrap()
        );
        let x = Value::from_vec(&[2], vec![-4.5f32, 4.5]).unwrap();
        let y = Value::from_vec(&[1], vec![2.0f32]).unwrap();
        assert_eq!(run(&f, &x, &y).unwrap().to_f64_vec(), vec![-0.5, 0.5]);
        assert!(run(&m, &x, &y).unwrap_err().to_string().contains("fmod"));
        let z = Value::from_vec(&[1], vec![0i32]).unwrap();
        assert!(run(&m, &a, &z).is_err());
        assert!(run(&f, &a, &z).is_err());
        assert!(run(&m, &a, &v).is_err());
    }

    #[test]
    fn pow_keeps_the_base_type() {
        let p = Pow;
        let base = Value::from_vec(&[4], vec![2i32, -3, 0, 5]).unwrap();
        let e = Value::from_vec(&[4], vec![3i64, 3, 0, 2]).unwrap();
        assert_eq!(
            run(&p, &base, &e).unwrap(),
            Value::from_vec(&[4], vec![8i32, -27, 1, 25]).unwrap()
        );
        // Negative exponents truncate 1 / b^n; zero to one is an error.
        let neg = Value::from_vec(&[1], vec![-1i32]).unwrap();
        let b2 = Value::from_vec(&[3], vec![2i32, -1, 1]).unwrap();
        assert_eq!(run(&p, &b2, &neg).unwrap().to_i64_vec(), vec![0, -1, 1]);
        let zero = Value::from_vec(&[1], vec![0i32]).unwrap();
        assert!(run(&p, &zero, &neg).is_err());
        // Wrapping, as the type's arithmetic.
        let b3 = Value::from_vec(&[1], vec![3u8]).unwrap();
        let e3 = Value::from_vec(&[1], vec![6u64]).unwrap();
        assert_eq!(
            run(&p, &b3, &e3).unwrap(),
            Value::from_vec(&[1], vec![217u8]).unwrap()
        );
        // Float base with an integer exponent, integer base with a float exponent.
        let fb = Value::from_vec(&[2, 1], vec![2.0f32, 0.5]).unwrap();
        let ie = Value::from_vec(&[3], vec![2i64, -1, 0]).unwrap();
        let got = run(&p, &fb, &ie).unwrap();
        assert_eq!(got.dtype(), DType::F32);
        assert_eq!(got.to_f64_vec(), vec![4.0, 0.5, 1.0, 0.25, 2.0, 1.0]);
        let fe = Value::from_vec(&[2], vec![0.5f32, 2.5]).unwrap();
        let ib = Value::from_vec(&[2], vec![10i64, 2]).unwrap();
        assert_eq!(
            run(&p, &ib, &fe).unwrap(),
            Value::from_vec(&[2], vec![3i64, 5]).unwrap()
        );
        let t = Value::from_vec(&[1], vec![true]).unwrap();
        assert!(run(&p, &t, &e).unwrap_err().to_string().contains("bool"));
        assert!(run(
            &p,
            &fb,
            &Value::from_vec(&[3, 4], vec![1.0f32; 12]).unwrap()
        )
        .is_err());
    }
}
