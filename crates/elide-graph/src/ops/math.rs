//! Element-wise math of one input: Sqrt, Exp, Log, Abs, Neg, Reciprocal, Floor, Ceil, Round,
//! Sign, Erf, the trigonometric and hyperbolic functions, Softplus, Softsign; IsNaN and IsInf
//! (bool outputs). Floats of every width (f16/bf16 computed in f32); Abs, Neg and Sign also on
//! integers, as ONNX defines them.
use super::operator::Operator;
use super::typed::{input, map_float, FLOATS, NUMERIC};
use super::{Ctx, Op};
use crate::onnx::registry::{NodeCtx, Registry};
use crate::{map_array, DType, Result, Value};
use std::sync::Arc;

/// Which function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MathFn {
    /// `sqrt(x)`.
    Sqrt,
    /// `e^x`.
    Exp,
    /// `ln(x)`.
    Log,
    /// `|x|`.
    Abs,
    /// `-x`.
    Neg,
    /// `1 / x`.
    Reciprocal,
    /// Round down.
    Floor,
    /// Round up.
    Ceil,
    /// Round half to even.
    Round,
    /// -1, 0 or 1.
    Sign,
    /// The error function.
    Erf,
    /// `sin`.
    Sin,
    /// `cos`.
    Cos,
    /// `tan`.
    Tan,
    /// `asin`.
    Asin,
    /// `acos`.
    Acos,
    /// `atan`.
    Atan,
    /// `sinh`.
    Sinh,
    /// `cosh`.
    Cosh,
    /// `asinh`.
    Asinh,
    /// `acosh`.
    Acosh,
    /// `atanh`.
    Atanh,
    /// `ln(1 + e^x)`.
    Softplus,
    /// `x / (1 + |x|)`.
    Softsign,
}

impl MathFn {
    /// `(ONNX name, function)` of every function.
    const ALL: [(&'static str, MathFn); 23] = [
        ("Sqrt", MathFn::Sqrt),
        ("Exp", MathFn::Exp),
        ("Log", MathFn::Log),
        ("Abs", MathFn::Abs),
        ("Neg", MathFn::Neg),
        ("Reciprocal", MathFn::Reciprocal),
        ("Floor", MathFn::Floor),
        ("Ceil", MathFn::Ceil),
        ("Round", MathFn::Round),
        ("Sign", MathFn::Sign),
        ("Erf", MathFn::Erf),
        ("Sin", MathFn::Sin),
        ("Cos", MathFn::Cos),
        ("Tan", MathFn::Tan),
        ("Asin", MathFn::Asin),
        ("Acos", MathFn::Acos),
        ("Atan", MathFn::Atan),
        ("Sinh", MathFn::Sinh),
        ("Cosh", MathFn::Cosh),
        ("Asinh", MathFn::Asinh),
        ("Acosh", MathFn::Acosh),
        ("Atanh", MathFn::Atanh),
        ("Softplus", MathFn::Softplus),
    ];

    fn f64(self, x: f64) -> f64 {
        match self {
            MathFn::Sqrt => x.sqrt(),
            MathFn::Exp => x.exp(),
            MathFn::Log => x.ln(),
            MathFn::Abs => x.abs(),
            MathFn::Neg => -x,
            MathFn::Reciprocal => 1.0 / x,
            MathFn::Floor => x.floor(),
            MathFn::Ceil => x.ceil(),
            MathFn::Round => x.round_ties_even(),
            MathFn::Sign => {
                if x > 0.0 {
                    1.0
                } else if x < 0.0 {
                    -1.0
                } else {
                    x // 0 (keeping its sign) or NaN
                }
            }
            MathFn::Erf => erf(x),
            MathFn::Sin => x.sin(),
            MathFn::Cos => x.cos(),
            MathFn::Tan => x.tan(),
            MathFn::Asin => x.asin(),
            MathFn::Acos => x.acos(),
            MathFn::Atan => x.atan(),
            MathFn::Sinh => x.sinh(),
            MathFn::Cosh => x.cosh(),
            MathFn::Asinh => x.asinh(),
            MathFn::Acosh => x.acosh(),
            MathFn::Atanh => x.atanh(),
            // Stable for large |x|: ln(1 + e^x) = max(x, 0) + ln(1 + e^-|x|).
            MathFn::Softplus => x.max(0.0) + (-x.abs()).exp().ln_1p(),
            MathFn::Softsign => x / (1.0 + x.abs()),
        }
    }

    /// The f32 form: native where f32 has it, else through f64 (erf), rounded once.
    fn f32(self, x: f32) -> f32 {
        match self {
            MathFn::Sqrt => x.sqrt(),
            MathFn::Exp => x.exp(),
            MathFn::Log => x.ln(),
            MathFn::Abs => x.abs(),
            MathFn::Neg => -x,
            MathFn::Reciprocal => 1.0 / x,
            MathFn::Floor => x.floor(),
            MathFn::Ceil => x.ceil(),
            MathFn::Round => x.round_ties_even(),
            _ => self.f64(x as f64) as f32,
        }
    }

    /// Whether ONNX defines it on integers too.
    fn takes_integers(self) -> bool {
        matches!(self, MathFn::Abs | MathFn::Neg | MathFn::Sign)
    }
}

/// The error function (not in std): Numerical Recipes' Chebyshev fit of erfc (`erfcc`),
/// fractional error below 1.2e-7 everywhere, about f32's round-off.
fn erf(x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let ans = t
        * (-z * z - 1.26551223
            + t * (1.00002368
                + t * (0.37409196
                    + t * (0.09678418
                        + t * (-0.18628806
                            + t * (0.27886807
                                + t * (-1.13520398
                                    + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))))
            .exp();
    let e = 1.0 - ans;
    if x >= 0.0 {
        e
    } else {
        -e
    }
}

/// One of the functions above as an op.
#[derive(Clone, Debug)]
pub struct Math {
    f: MathFn,
    name: &'static str,
}

impl Operator for Math {
    fn name(&self) -> &'static str {
        self.name
    }

    fn run(&self, inputs: &[Option<&Value>], ctx: Ctx) -> Result<Vec<Value>> {
        let types: &[DType] = if self.f.takes_integers() {
            &NUMERIC
        } else {
            &FLOATS
        };
        let x = input(inputs, 0, types, ctx)?;
        let f = self.f;
        if let Some(v) = map_float(x, |v| f.f32(v), |v| f.f64(v)) {
            return Ok(vec![v]);
        }
        // Integers: Abs, Neg (wrapping, as two's complement hardware does) and Sign.
        let out = map_array!(x, a => a.mapv(|v| {
            let i = crate::Elem::to_i64(v);
            crate::Elem::from_i64(match f {
                MathFn::Abs => i.wrapping_abs(),
                MathFn::Neg => i.wrapping_neg(),
                _ => i.signum(),
            })
        }));
        Ok(vec![out])
    }

    fn pointwise(&self) -> bool {
        true
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// IsNaN / IsInf: bool of a float input.
#[derive(Clone, Debug)]
pub struct IsSpecial {
    /// IsInf's detect_positive / detect_negative, or `None` for IsNaN.
    inf: Option<(bool, bool)>,
}

impl Operator for IsSpecial {
    fn name(&self) -> &'static str {
        if self.inf.is_some() {
            "IsInf"
        } else {
            "IsNaN"
        }
    }

    fn run(&self, inputs: &[Option<&Value>], ctx: Ctx) -> Result<Vec<Value>> {
        let x = input(inputs, 0, &FLOATS, ctx)?;
        let inf = self.inf;
        let test = move |v: f64| match inf {
            None => v.is_nan(),
            Some((pos, neg)) => (pos && v == f64::INFINITY) || (neg && v == f64::NEG_INFINITY),
        };
        let vals: Vec<bool> = x.to_f64_vec().into_iter().map(test).collect();
        Ok(vec![Value::from_vec(x.shape(), vals)?])
    }

    fn pointwise(&self) -> bool {
        true
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

fn build_math(n: &NodeCtx) -> Result<Op> {
    n.attrs(&[])?;
    n.arity((1, 1), (1, 1))?;
    let op = n.node.op_type.as_str();
    let (name, f) = MathFn::ALL
        .iter()
        .chain(&[("Softsign", MathFn::Softsign)])
        .find(|(s, _)| *s == op)
        .copied()
        .ok_or_else(|| n.err("not a math op"))?;
    Ok(Op::Dyn(Arc::new(Math { f, name })))
}

fn build_is_nan(n: &NodeCtx) -> Result<Op> {
    n.attrs(&[])?;
    n.arity((1, 1), (1, 1))?;
    Ok(Op::Dyn(Arc::new(IsSpecial { inf: None })))
}

fn build_is_inf(n: &NodeCtx) -> Result<Op> {
    let a = n.attrs(&["detect_positive", "detect_negative"])?;
    n.arity((1, 1), (1, 1))?;
    Ok(Op::Dyn(Arc::new(IsSpecial {
        inf: Some((
            a.int("detect_positive", 1) != 0,
            a.int("detect_negative", 1) != 0,
        )),
    })))
}

/// Registers the ops of this file.
pub(crate) fn register(r: &mut Registry) {
    for (name, _) in MathFn::ALL {
        r.add("", name, 1, build_math);
    }
    r.add("", "Softsign", 1, build_math);
    r.add("", "IsNaN", 9, build_is_nan);
    r.add("", "IsInf", 10, build_is_inf);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Ctx<'static> {
        Ctx {
            node: "n",
            op: "Math",
            arena: None,
        }
    }

    fn run(f: MathFn, v: Value) -> Result<Value> {
        let m = Math { f, name: "t" };
        Ok(m.run(&[Some(&v)], ctx())?.remove(0))
    }

    #[test]
    fn each_function_matches_std_on_f32_and_f64() {
        let xs = [-2.5f64, -0.5, 0.0, 0.3, 0.5, 1.5, 2.5];
        for (name, f) in MathFn::ALL {
            let v64 = Value::from_vec(&[xs.len()], xs.to_vec()).unwrap();
            let got = run(f, v64).unwrap().to_f64_vec();
            let v32 = Value::f32(&[xs.len()], xs.iter().map(|&x| x as f32).collect()).unwrap();
            let got32 = run(f, v32).unwrap().to_f64_vec();
            for (i, &x) in xs.iter().enumerate() {
                let want = f.f64(x);
                let same = |a: f64| {
                    a == want
                        || (a.is_nan() && want.is_nan())
                        || (a - want).abs() <= 1e-6 * (1.0 + want.abs())
                };
                assert!(same(got[i]), "{name}({x}) = {} vs {want}", got[i]);
                assert!(same(got32[i]), "{name} f32 ({x}) = {} vs {want}", got32[i]);
            }
        }
    }

    #[test]
    fn erf_against_known_values() {
        for (x, want) in [
            (0.0, 0.0),
            (0.5, 0.5204998778130465),
            (1.0, 0.8427007929497149),
            (-2.0, -0.9953222650189527),
            (3.0, 0.9999779095030014),
        ] {
            assert!((erf(x) - want).abs() < 2e-7, "erf({x}) = {}", erf(x));
        }
    }

    #[test]
    fn round_is_half_to_even_and_integers_keep_their_type() {
        let v = Value::f32(&[4], vec![0.5, 1.5, 2.5, -0.5]).unwrap();
        assert_eq!(
            run(MathFn::Round, v).unwrap().to_f64_vec(),
            vec![0.0, 2.0, 2.0, -0.0]
        );
        let i = Value::from_vec(&[3], vec![-3i32, 0, 7]).unwrap();
        let a = run(MathFn::Abs, i.clone()).unwrap();
        assert_eq!(a.dtype(), DType::I32);
        assert_eq!(a.to_i64_vec(), vec![3, 0, 7]);
        assert_eq!(run(MathFn::Sign, i).unwrap().to_i64_vec(), vec![-1, 0, 1]);
        assert!(run(MathFn::Sqrt, Value::from_vec(&[1], vec![4i64]).unwrap()).is_err());
    }
}
