//! Element-wise activations with attributes: Elu, Selu, Celu, Gelu (exact and tanh
//! approximation), Mish, ThresholdedRelu (floats of every width, f16/bf16 computed in f32),
//! Shrink (every numeric type, computed in f64 and converted back) and PRelu (a slope
//! broadcast unidirectionally to the input's shape; floats and integers).
use super::math::erf;
use super::operator::Operator;
use super::typed::{broadcast_shape, input, map_float, zip_map, FLOATS, NUMERIC};
use super::{Ctx, Op};
use crate::onnx::registry::{NodeCtx, Registry};
use crate::{map_array, Elem, Result, Value};
use std::sync::Arc;

/// Which activation, with its attributes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ActFn {
    /// `x` for `x >= 0`, else `alpha * (e^x - 1)`.
    Elu {
        /// Scale of the negative part.
        alpha: f64,
    },
    /// `gamma * x` for `x > 0`, else `gamma * alpha * (e^x - 1)`.
    Selu {
        /// Scale of the negative part.
        alpha: f64,
        /// Overall scale.
        gamma: f64,
    },
    /// `max(0, x) + min(0, alpha * (e^(x / alpha) - 1))`.
    Celu {
        /// Scale (not zero).
        alpha: f64,
    },
    /// `x * Phi(x)`, Phi exact (through erf) or its tanh approximation.
    Gelu {
        /// The tanh approximation.
        tanh: bool,
    },
    /// `x * tanh(softplus(x))`.
    Mish,
    /// `x` for `x > alpha`, else 0.
    ThresholdedRelu {
        /// The threshold.
        alpha: f64,
    },
}

impl ActFn {
    fn f64(self, x: f64) -> f64 {
        match self {
            ActFn::Elu { alpha } => {
                if x >= 0.0 {
                    x
                } else {
                    alpha * x.exp_m1()
                }
            }
            ActFn::Selu { alpha, gamma } => {
                if x > 0.0 {
                    gamma * x
                } else {
                    gamma * alpha * x.exp_m1()
                }
            }
            ActFn::Celu { alpha } => x.max(0.0) + (alpha * (x / alpha).exp_m1()).min(0.0),
            ActFn::Gelu { tanh: false } => {
                0.5 * x * (1.0 + erf(x * std::f64::consts::FRAC_1_SQRT_2))
            }
            ActFn::Gelu { tanh: true } => {
                let c = (2.0 / std::f64::consts::PI).sqrt();
                0.5 * x * (1.0 + (c * (x + 0.044715 * x * x * x)).tanh())
            }
            ActFn::Mish => {
                // Stable softplus: max(x, 0) + ln(1 + e^-|x|).
                let sp = x.max(0.0) + (-x.abs()).exp().ln_1p();
                x * sp.tanh()
            }
            ActFn::ThresholdedRelu { alpha } => {
                if x > alpha {
                    x
                } else {
                    0.0
                }
            }
        }
    }
}

/// One of the activations above as an op.
#[derive(Clone, Debug)]
pub struct Activation {
    f: ActFn,
    name: &'static str,
}

impl Operator for Activation {
    fn name(&self) -> &'static str {
        self.name
    }

    fn run(&self, inputs: &[Option<&Value>], ctx: Ctx) -> Result<Vec<Value>> {
        let x = input(inputs, 0, &FLOATS, ctx)?;
        let f = self.f;
        let out = map_float(x, |v| f.f64(v as f64) as f32, |v| f.f64(v))
            .ok_or_else(|| ctx.err(format!("input 0 is {}; this op takes floats", x.dtype())))?;
        Ok(vec![out])
    }

    fn pointwise(&self) -> bool {
        true
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// Shrink: `x + bias` below `-lambd`, `x - bias` above `lambd`, else 0.
#[derive(Clone, Debug)]
pub struct Shrink {
    bias: f64,
    lambd: f64,
}

impl Operator for Shrink {
    fn name(&self) -> &'static str {
        "Shrink"
    }

    fn run(&self, inputs: &[Option<&Value>], ctx: Ctx) -> Result<Vec<Value>> {
        let x = input(inputs, 0, &NUMERIC, ctx)?;
        let (bias, lambd) = (self.bias, self.lambd);
        let f = move |v: f64| {
            if v < -lambd {
                v + bias
            } else if v > lambd {
                v - bias
            } else {
                0.0
            }
        };
        let out = map_array!(x, a => a.mapv(|v| Elem::from_f64(f(Elem::to_f64(v)))));
        Ok(vec![out])
    }

    fn pointwise(&self) -> bool {
        true
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// PRelu: `x` for `x >= 0`, else `slope * x`, the slope broadcast to the input's shape.
#[derive(Clone, Debug)]
pub struct PRelu;

fn prelu_elem<T: Elem + PartialOrd>(x: T, s: T) -> T {
    if x >= T::default() {
        x
    } else if T::DTYPE.is_float() {
        T::from_f64(x.to_f64() * s.to_f64())
    } else {
        T::from_i64(x.to_i64().wrapping_mul(s.to_i64()))
    }
}

impl Operator for PRelu {
    fn name(&self) -> &'static str {
        "PRelu"
    }

    fn run(&self, inputs: &[Option<&Value>], ctx: Ctx) -> Result<Vec<Value>> {
        let x = input(inputs, 0, &NUMERIC, ctx)?;
        let slope = input(inputs, 1, &NUMERIC, ctx)?;
        if slope.dtype() != x.dtype() {
            return Err(ctx.err(format!(
                "slope is {} but the input is {}",
                slope.dtype(),
                x.dtype()
            )));
        }
        // Unidirectional: the slope broadcasts to the input, never the other way.
        if broadcast_shape(x.shape(), slope.shape()).as_deref() != Some(x.shape()) {
            return Err(ctx.err(format!(
                "slope of shape {:?} does not broadcast to the input's shape {:?}",
                slope.shape(),
                x.shape()
            )));
        }
        fn go<T: Elem + PartialOrd>(x: &ndarray::ArrayD<T>, s: &Value, ctx: Ctx) -> Result<Value> {
            let s = T::view(s).ok_or_else(|| ctx.err("slope type"))?;
            Ok(T::wrap(zip_map(x, s, prelu_elem, ctx)?))
        }
        let out = crate::with_array!(x, a => go(a, slope, ctx)?);
        Ok(vec![out])
    }

    fn pointwise(&self) -> bool {
        true
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

fn build_activation(n: &NodeCtx) -> Result<Op> {
    n.arity((1, 1), (1, 1))?;
    let op = n.node.op_type.as_str();
    let (name, f) = match op {
        "Elu" => {
            let a = n.attrs(&["alpha"])?;
            (
                "Elu",
                ActFn::Elu {
                    alpha: a.float("alpha", 1.0) as f64,
                },
            )
        }
        "Selu" => {
            let a = n.attrs(&["alpha", "gamma"])?;
            (
                "Selu",
                ActFn::Selu {
                    alpha: a.float("alpha", 1.673_263_2) as f64,
                    gamma: a.float("gamma", 1.050_701) as f64,
                },
            )
        }
        "Celu" => {
            let a = n.attrs(&["alpha"])?;
            let alpha = a.float("alpha", 1.0) as f64;
            if alpha == 0.0 {
                return Err(a.unsupported("alpha = 0"));
            }
            ("Celu", ActFn::Celu { alpha })
        }
        "Gelu" => {
            let a = n.attrs(&["approximate"])?;
            let tanh = match a.string("approximate", "none").as_str() {
                "none" => false,
                "tanh" => true,
                other => return Err(a.unsupported(format!("approximate = '{other}'"))),
            };
            ("Gelu", ActFn::Gelu { tanh })
        }
        "Mish" => {
            n.attrs(&[])?;
            ("Mish", ActFn::Mish)
        }
        "ThresholdedRelu" => {
            let a = n.attrs(&["alpha"])?;
            (
                "ThresholdedRelu",
                ActFn::ThresholdedRelu {
                    alpha: a.float("alpha", 1.0) as f64,
                },
            )
        }
        _ => return Err(n.err("not an activation")),
    };
    Ok(Op::Dyn(Arc::new(Activation { f, name })))
}

fn build_shrink(n: &NodeCtx) -> Result<Op> {
    let a = n.attrs(&["bias", "lambd"])?;
    n.arity((1, 1), (1, 1))?;
    Ok(Op::Dyn(Arc::new(Shrink {
        bias: a.float("bias", 0.0) as f64,
        lambd: a.float("lambd", 0.5) as f64,
    })))
}

fn build_prelu(n: &NodeCtx) -> Result<Op> {
    n.attrs(&[])?;
    n.arity((2, 2), (1, 1))?;
    Ok(Op::Dyn(Arc::new(PRelu)))
}

/// Registers the ops of this file.
pub(crate) fn register(r: &mut Registry) {
    r.add("", "Elu", 1, build_activation);
    r.add("", "Selu", 1, build_activation);
    r.add("", "Celu", 12, build_activation);
    r.add("", "Gelu", 20, build_activation);
    r.add("", "Mish", 18, build_activation);
    r.add("", "ThresholdedRelu", 10, build_activation);
    r.add("", "Shrink", 9, build_shrink);
    r.add("", "PRelu", 1, build_prelu);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DType;

    fn ctx() -> Ctx<'static> {
        Ctx {
            node: "n",
            op: "Act",
            arena: None,
        }
    }

    fn act(f: ActFn, v: Value) -> Result<Value> {
        Ok(Activation { f, name: "t" }
            .run(&[Some(&v)], ctx())?
            .remove(0))
    }

    fn close(a: &[f64], b: &[f64], tol: f64) {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() <= tol * (1.0 + y.abs()), "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn activations_match_their_formulas() {
        let xs = vec![-3.0f64, -1.0, -0.25, 0.0, 0.5, 1.0, 2.0];
        let v = Value::from_vec(&[7], xs.clone()).unwrap();
        type Naive = (ActFn, fn(f64) -> f64);
        let naive: Vec<Naive> = vec![
            (ActFn::Elu { alpha: 2.0 }, |x| {
                if x >= 0.0 {
                    x
                } else {
                    2.0 * (x.exp() - 1.0)
                }
            }),
            (ActFn::Celu { alpha: 2.0 }, |x| {
                x.max(0.0) + (2.0 * ((x / 2.0).exp() - 1.0)).min(0.0)
            }),
            (ActFn::Mish, |x| x * (1.0 + x.exp()).ln().tanh()),
            (ActFn::ThresholdedRelu { alpha: 0.5 }, |x| {
                if x > 0.5 {
                    x
                } else {
                    0.0
                }
            }),
            (ActFn::Gelu { tanh: true }, |x| {
                0.5 * x
                    * (1.0
                        + ((2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x.powi(3))).tanh())
            }),
        ];
        for (f, want) in naive {
            let got = act(f, v.clone()).unwrap().to_f64_vec();
            close(
                &got,
                &xs.iter().map(|&x| want(x)).collect::<Vec<_>>(),
                1e-12,
            );
        }
        // Exact Gelu against known values of x * Phi(x).
        let g = act(
            ActFn::Gelu { tanh: false },
            Value::f32(&[3], vec![-1.0, 0.0, 1.0]).unwrap(),
        );
        close(
            &g.unwrap().to_f64_vec(),
            &[-0.158_655_25, 0.0, 0.841_344_75],
            1e-6,
        );
        let s = act(
            ActFn::Selu {
                alpha: 2.0,
                gamma: 3.0,
            },
            Value::f32(&[2], vec![-1.0, 1.0]).unwrap(),
        );
        close(
            &s.unwrap().to_f64_vec(),
            &[3.0 * 2.0 * ((-1.0f64).exp() - 1.0), 3.0],
            1e-6,
        );
    }

    #[test]
    fn activations_keep_dtype_and_shape_and_refuse_integers() {
        for d in FLOATS {
            let v = Value::zeros(d, &[2, 0, 3]);
            let out = act(ActFn::Mish, v).unwrap();
            assert_eq!((out.dtype(), out.shape()), (d, &[2usize, 0, 3][..]));
        }
        let e = act(ActFn::Mish, Value::i64(&[1], vec![1]).unwrap()).unwrap_err();
        assert!(
            e.to_string().contains("i64") || e.to_string().contains("int64"),
            "{e}"
        );
    }

    #[test]
    fn shrink_on_floats_and_integers() {
        let s = Shrink {
            bias: 1.0,
            lambd: 1.5,
        };
        let v = Value::f32(&[5], vec![-3.0, -1.5, 0.0, 1.0, 2.0]).unwrap();
        let out = s.run(&[Some(&v)], ctx()).unwrap().remove(0);
        assert_eq!(out.to_f64_vec(), vec![-2.0, 0.0, 0.0, 0.0, 1.0]);
        let i = Value::from_vec(&[3], vec![-5i8, 1, 5]).unwrap();
        let out = s.run(&[Some(&i)], ctx()).unwrap().remove(0);
        assert_eq!((out.dtype(), out.to_i64_vec()), (DType::I8, vec![-4, 0, 4]));
        assert!(s
            .run(&[Some(&Value::from_vec(&[1], vec![true]).unwrap())], ctx())
            .is_err());
    }

    #[test]
    fn prelu_broadcasts_the_slope_one_way() {
        let x = Value::f32(&[2, 3], vec![-1.0, -2.0, 3.0, -4.0, 5.0, -6.0]).unwrap();
        let s = Value::f32(&[3], vec![0.5, 0.25, 2.0]).unwrap();
        let out = PRelu.run(&[Some(&x), Some(&s)], ctx()).unwrap().remove(0);
        assert_eq!(out.to_f64_vec(), vec![-0.5, -0.5, 3.0, -2.0, 5.0, -12.0]);
        let s1 = Value::f32(&[1], vec![0.5]).unwrap();
        let out = PRelu.run(&[Some(&x), Some(&s1)], ctx()).unwrap().remove(0);
        assert_eq!(out.to_f64_vec(), vec![-0.5, -1.0, 3.0, -2.0, 5.0, -3.0]);
        // The slope may not grow the input.
        let big = Value::f32(&[4, 2, 3], vec![1.0; 24]).unwrap();
        assert!(PRelu.run(&[Some(&x), Some(&big)], ctx()).is_err());
        let bad = Value::f32(&[2], vec![1.0; 2]).unwrap();
        assert!(PRelu.run(&[Some(&x), Some(&bad)], ctx()).is_err());
        // Integers, and mismatched types.
        let xi = Value::from_vec(&[3], vec![-2i32, 0, 3]).unwrap();
        let si = Value::from_vec(&[1], vec![3i32]).unwrap();
        let out = PRelu.run(&[Some(&xi), Some(&si)], ctx()).unwrap().remove(0);
        assert_eq!(out.to_i64_vec(), vec![-6, 0, 3]);
        assert!(PRelu.run(&[Some(&xi), Some(&s1)], ctx()).is_err());
        assert!(PRelu.run(&[Some(&xi), None], ctx()).is_err());
    }
}
