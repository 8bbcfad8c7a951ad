//! Element-wise comparisons (`Equal`, `Less`, `Greater`, `LessOrEqual`, `GreaterOrEqual`:
//! bool outputs), bool logic (`And`, `Or`, `Xor`, `Not`), integer bit operations
//! (`BitwiseAnd`/`Or`/`Xor`/`Not`, `BitShift` on unsigned types) and `Where`. Binary and
//! ternary ops broadcast as numpy does.
use super::arith::{numeric_pair, pair_err};
use super::operator::Operator;
use super::typed::{broadcast_shape, input, zip_map};
use super::{Ctx, Op};
use crate::onnx::registry::{NodeCtx, Registry};
use crate::{DType, Elem, Result, Value};
use ndarray::{ArrayD, IxDyn, Zip};
use std::ops::{BitAnd, BitOr, BitXor, Not};
use std::sync::Arc;

/// A comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmp {
    /// `a == b` (bool inputs too).
    Equal,
    /// `a < b`.
    Less,
    /// `a > b`.
    Greater,
    /// `a <= b`.
    LessOrEqual,
    /// `a >= b`.
    GreaterOrEqual,
}

impl Cmp {
    const ALL: [(&'static str, Cmp); 5] = [
        ("Equal", Cmp::Equal),
        ("Less", Cmp::Less),
        ("Greater", Cmp::Greater),
        ("LessOrEqual", Cmp::LessOrEqual),
        ("GreaterOrEqual", Cmp::GreaterOrEqual),
    ];

    /// The comparison of two elements (false wherever a NaN takes part, but for nothing).
    fn test<T: PartialOrd>(self, a: T, b: T) -> bool {
        match self {
            Cmp::Equal => a == b,
            Cmp::Less => a < b,
            Cmp::Greater => a > b,
            Cmp::LessOrEqual => a <= b,
            Cmp::GreaterOrEqual => a >= b,
        }
    }
}

/// A comparison as an op: two numeric inputs of one type (bool too for `Equal`), a bool
/// output.
#[derive(Clone, Debug)]
pub struct Compare {
    cmp: Cmp,
    name: &'static str,
}

impl Operator for Compare {
    fn name(&self) -> &'static str {
        self.name
    }

    fn run(&self, inputs: &[Option<&Value>], ctx: Ctx) -> Result<Vec<Value>> {
        let a = input(inputs, 0, &[], ctx)?;
        let b = input(inputs, 1, &[], ctx)?;
        let c = self.cmp;
        let out = match (a, b) {
            (Value::Bool(x), Value::Bool(y)) if c == Cmp::Equal => {
                zip_map(x, y, |p, q| p == q, ctx)?
            }
            _ => numeric_pair!(a, b, x, y => zip_map(x, y, |p, q| c.test(p, q), ctx)?,
                return Err(pair_err(a, b, ctx))),
        };
        Ok(vec![Value::Bool(out)])
    }

    fn pointwise(&self) -> bool {
        true
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// A two-input element-wise function: bool logic or integer bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bits {
    /// `a & b`.
    And,
    /// `a | b`.
    Or,
    /// `a ^ b`.
    Xor,
    /// `a << b` (unsigned; a shift by the width or more gives 0).
    ShiftLeft,
    /// `a >> b` (unsigned; a shift by the width or more gives 0).
    ShiftRight,
}

/// Shifts of an unsigned integer by an amount of its own type.
trait Shift: Copy {
    fn shl(self, n: Self) -> Self;
    fn shr(self, n: Self) -> Self;
}

macro_rules! shift {
    ($($t:ty),*) => {$(
        impl Shift for $t {
            fn shl(self, n: Self) -> Self {
                u32::try_from(n).ok().and_then(|n| self.checked_shl(n)).unwrap_or(0)
            }
            fn shr(self, n: Self) -> Self {
                u32::try_from(n).ok().and_then(|n| self.checked_shr(n)).unwrap_or(0)
            }
        }
    )*};
}
shift!(u8, u16, u32, u64);

/// `And`/`Or`/`Xor` on bools (`logic`), or `BitwiseAnd`/`Or`/`Xor` and `BitShift` on
/// integers.
#[derive(Clone, Debug)]
pub struct Bitwise {
    f: Bits,
    /// Bool inputs (And, Or, Xor) rather than integers.
    logic: bool,
    name: &'static str,
}

fn bits<T>(f: Bits, a: &ArrayD<T>, b: &ArrayD<T>, ctx: Ctx) -> Result<Value>
where
    T: Elem + BitAnd<Output = T> + BitOr<Output = T> + BitXor<Output = T>,
{
    let g: fn(T, T) -> T = match f {
        Bits::And => |x, y| x & y,
        Bits::Or => |x, y| x | y,
        Bits::Xor => |x, y| x ^ y,
        Bits::ShiftLeft | Bits::ShiftRight => return Err(ctx.err("shifts take unsigned integers")),
    };
    Ok(T::wrap(zip_map(a, b, g, ctx)?))
}

fn shifts<T: Elem + Shift>(left: bool, a: &ArrayD<T>, b: &ArrayD<T>, ctx: Ctx) -> Result<Value> {
    let out = zip_map(a, b, |x, y| if left { x.shl(y) } else { x.shr(y) }, ctx)?;
    Ok(T::wrap(out))
}

impl Operator for Bitwise {
    fn name(&self) -> &'static str {
        self.name
    }

    fn run(&self, inputs: &[Option<&Value>], ctx: Ctx) -> Result<Vec<Value>> {
        let a = input(inputs, 0, &[], ctx)?;
        let b = input(inputs, 1, &[], ctx)?;
        let f = self.f;
        let wrong = || {
            let takes = if self.logic {
                "bool"
            } else if matches!(f, Bits::ShiftLeft | Bits::ShiftRight) {
                "unsigned integers"
            } else {
                "integers"
            };
            if a.dtype() == b.dtype() {
                ctx.err(format!("inputs are {}; this op takes {takes}", a.dtype()))
            } else {
                ctx.err(format!(
                    "mixed element types {} and {}",
                    a.dtype(),
                    b.dtype()
                ))
            }
        };
        let out = match (a, b, f) {
            (Value::Bool(x), Value::Bool(y), _) if self.logic => bits(f, x, y, ctx)?,
            _ if self.logic => return Err(wrong()),
            (Value::U8(x), Value::U8(y), Bits::ShiftLeft | Bits::ShiftRight) => {
                shifts(f == Bits::ShiftLeft, x, y, ctx)?
            }
            (Value::U16(x), Value::U16(y), Bits::ShiftLeft | Bits::ShiftRight) => {
                shifts(f == Bits::ShiftLeft, x, y, ctx)?
            }
            (Value::U32(x), Value::U32(y), Bits::ShiftLeft | Bits::ShiftRight) => {
                shifts(f == Bits::ShiftLeft, x, y, ctx)?
            }
            (Value::U64(x), Value::U64(y), Bits::ShiftLeft | Bits::ShiftRight) => {
                shifts(f == Bits::ShiftLeft, x, y, ctx)?
            }
            (_, _, Bits::ShiftLeft | Bits::ShiftRight) => return Err(wrong()),
            (Value::I8(x), Value::I8(y), _) => bits(f, x, y, ctx)?,
            (Value::I16(x), Value::I16(y), _) => bits(f, x, y, ctx)?,
            (Value::I32(x), Value::I32(y), _) => bits(f, x, y, ctx)?,
            (Value::I64(x), Value::I64(y), _) => bits(f, x, y, ctx)?,
            (Value::U8(x), Value::U8(y), _) => bits(f, x, y, ctx)?,
            (Value::U16(x), Value::U16(y), _) => bits(f, x, y, ctx)?,
            (Value::U32(x), Value::U32(y), _) => bits(f, x, y, ctx)?,
            (Value::U64(x), Value::U64(y), _) => bits(f, x, y, ctx)?,
            _ => return Err(wrong()),
        };
        Ok(vec![out])
    }

    fn pointwise(&self) -> bool {
        true
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// `Not` (bool) or `BitwiseNot` (integers).
#[derive(Clone, Debug)]
pub struct Negate {
    /// `Not` rather than `BitwiseNot`.
    logic: bool,
}

fn not<T: Elem + Not<Output = T>>(a: &ArrayD<T>) -> Value {
    T::wrap(a.mapv(|x| !x))
}

impl Operator for Negate {
    fn name(&self) -> &'static str {
        if self.logic {
            "Not"
        } else {
            "BitwiseNot"
        }
    }

    fn run(&self, inputs: &[Option<&Value>], ctx: Ctx) -> Result<Vec<Value>> {
        let x = input(inputs, 0, &[], ctx)?;
        let out = match x {
            Value::Bool(a) if self.logic => not(a),
            Value::I8(a) if !self.logic => not(a),
            Value::I16(a) if !self.logic => not(a),
            Value::I32(a) if !self.logic => not(a),
            Value::I64(a) if !self.logic => not(a),
            Value::U8(a) if !self.logic => not(a),
            Value::U16(a) if !self.logic => not(a),
            Value::U32(a) if !self.logic => not(a),
            Value::U64(a) if !self.logic => not(a),
            _ => {
                let takes = if self.logic { "bool" } else { "integers" };
                return Err(ctx.err(format!("input 0 is {}; this op takes {takes}", x.dtype())));
            }
        };
        Ok(vec![out])
    }

    fn pointwise(&self) -> bool {
        true
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// `Where`: `x` where the bool condition holds, else `y`; the three broadcast together.
#[derive(Clone, Debug)]
pub struct Where;

fn select<T: Elem>(c: &ArrayD<bool>, x: &ArrayD<T>, y: &ArrayD<T>, ctx: Ctx) -> Result<Value> {
    let shape = broadcast_shape(c.shape(), x.shape())
        .and_then(|s| broadcast_shape(&s, y.shape()))
        .ok_or_else(|| {
            ctx.err(format!(
                "shapes {:?}, {:?} and {:?} do not broadcast",
                c.shape(),
                x.shape(),
                y.shape()
            ))
        })?;
    ctx.sized("output", &shape)?;
    let dim = IxDyn(&shape);
    let (Some(cv), Some(xv), Some(yv)) = (
        c.broadcast(dim.clone()),
        x.broadcast(dim.clone()),
        y.broadcast(dim),
    ) else {
        return Err(ctx.err("broadcast failed"));
    };
    let out = Zip::from(&cv)
        .and(&xv)
        .and(&yv)
        .map_collect(|&c, &x, &y| if c { x } else { y });
    Ok(T::wrap(out))
}

impl Operator for Where {
    fn name(&self) -> &'static str {
        "Where"
    }

    fn run(&self, inputs: &[Option<&Value>], ctx: Ctx) -> Result<Vec<Value>> {
        let c = input(inputs, 0, &[DType::Bool], ctx)?;
        let x = input(inputs, 1, &[], ctx)?;
        let y = input(inputs, 2, &[], ctx)?;
        let Value::Bool(c) = c else {
            return Err(ctx.err(format!("condition is {}; Where takes bool", c.dtype())));
        };
        let out = match (x, y) {
            (Value::Bool(x), Value::Bool(y)) => select(c, x, y, ctx)?,
            _ => numeric_pair!(x, y, a, b => select(c, a, b, ctx)?,
                return Err(ctx.err(format!("mixed element types {} and {}", x.dtype(), y.dtype())))),
        };
        Ok(vec![out])
    }

    fn pointwise(&self) -> bool {
        true
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

fn build_compare(n: &NodeCtx) -> Result<Op> {
    n.attrs(&[])?;
    n.arity((2, 2), (1, 1))?;
    let op = n.node.op_type.as_str();
    let (name, cmp) = Cmp::ALL
        .iter()
        .find(|(s, _)| *s == op)
        .copied()
        .ok_or_else(|| n.err("not a comparison"))?;
    Ok(Op::Dyn(Arc::new(Compare { cmp, name })))
}

/// `(ONNX name, function, bool logic)` of the two-input ops but BitShift.
const BITS: [(&str, Bits, bool); 6] = [
    ("And", Bits::And, true),
    ("Or", Bits::Or, true),
    ("Xor", Bits::Xor, true),
    ("BitwiseAnd", Bits::And, false),
    ("BitwiseOr", Bits::Or, false),
    ("BitwiseXor", Bits::Xor, false),
];

fn build_bits(n: &NodeCtx) -> Result<Op> {
    n.attrs(&[])?;
    n.arity((2, 2), (1, 1))?;
    let op = n.node.op_type.as_str();
    let (name, f, logic) = BITS
        .iter()
        .find(|(s, _, _)| *s == op)
        .copied()
        .ok_or_else(|| n.err("not a bit op"))?;
    Ok(Op::Dyn(Arc::new(Bitwise { f, logic, name })))
}

fn build_bitshift(n: &NodeCtx) -> Result<Op> {
    let a = n.attrs(&["direction"])?;
    n.arity((2, 2), (1, 1))?;
    let f = match a.string("direction", "").as_str() {
        "LEFT" => Bits::ShiftLeft,
        "RIGHT" => Bits::ShiftRight,
        d => return Err(a.unsupported(format!("direction = '{d}' (LEFT or RIGHT)"))),
    };
    Ok(Op::Dyn(Arc::new(Bitwise {
        f,
        logic: false,
        name: "BitShift",
    })))
}

fn build_not(n: &NodeCtx) -> Result<Op> {
    n.attrs(&[])?;
    n.arity((1, 1), (1, 1))?;
    Ok(Op::Dyn(Arc::new(Negate {
        logic: n.node.op_type == "Not",
    })))
}

fn build_where(n: &NodeCtx) -> Result<Op> {
    n.attrs(&[])?;
    n.arity((3, 3), (1, 1))?;
    Ok(Op::Dyn(Arc::new(Where)))
}

/// Registers the ops of this file.
pub(crate) fn register(r: &mut Registry) {
    for (name, _) in Cmp::ALL {
        r.add("", name, 1, build_compare);
    }
    for (name, _, logic) in BITS {
        r.add("", name, if logic { 1 } else { 18 }, build_bits);
    }
    r.add("", "BitShift", 11, build_bitshift);
    r.add("", "Not", 1, build_not);
    r.add("", "BitwiseNot", 18, build_not);
    r.add("", "Where", 9, build_where);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::arith::tests::{arr, cyc, naive};
    use crate::ops::tests::CTX;

    fn run(op: &dyn Operator, ins: &[&Value]) -> Result<Value> {
        let ins: Vec<Option<&Value>> = ins.iter().map(|v| Some(*v)).collect();
        Ok(op.run(&ins, CTX)?.remove(0))
    }

    #[test]
    fn comparisons_match_a_naive_reference_with_nan_and_broadcasting() {
        let vals = [f32::NAN, -1.0, 0.0, 2.5, -0.0];
        for (sa, sb) in [
            (&[2, 3][..], &[3][..]),
            (&[4, 1], &[1, 5]),
            (&[0, 2], &[1]),
            (&[], &[]),
        ] {
            let a = arr(sa, cyc(sa.iter().product(), &vals));
            let b = arr(sb, cyc(sb.iter().product(), &vals[1..]));
            for (name, c) in Cmp::ALL {
                let op = Compare { cmp: c, name };
                let got = run(&op, &[&Value::F32(a.clone()), &Value::F32(b.clone())]).unwrap();
                assert_eq!(
                    got,
                    Value::Bool(naive(&a, &b, |x, y| c.test(x, y))),
                    "{name}"
                );
            }
        }
        let x = Value::from_vec(&[3], vec![u64::MAX, 1, 0]).unwrap();
        let y = Value::from_vec(&[1], vec![1u64]).unwrap();
        let gt = Compare {
            cmp: Cmp::Greater,
            name: "Greater",
        };
        assert_eq!(run(&gt, &[&x, &y]).unwrap().to_i64_vec(), vec![1, 0, 0]);
        let t = Value::from_vec(&[2], vec![true, false]).unwrap();
        let eq = Compare {
            cmp: Cmp::Equal,
            name: "Equal",
        };
        assert_eq!(run(&eq, &[&t, &t]).unwrap().to_i64_vec(), vec![1, 1]);
        assert!(run(&gt, &[&t, &t])
            .unwrap_err()
            .to_string()
            .contains("bool"));
        assert!(run(&eq, &[&x, &t]).is_err());
    }

    #[test]
    fn logic_bits_and_shifts() {
        let p = arr(&[2, 2], vec![true, true, false, false]);
        let q = arr(&[2], vec![true, false]);
        for (name, f, logic) in BITS.iter().copied().filter(|b| b.2) {
            let op = Bitwise { f, logic, name };
            let want = naive(&p, &q, |x, y| match f {
                Bits::And => x & y,
                Bits::Or => x | y,
                _ => x ^ y,
            });
            let got = run(&op, &[&Value::Bool(p.clone()), &Value::Bool(q.clone())]).unwrap();
            assert_eq!(got, Value::Bool(want), "{name}");
            let i = Value::from_vec(&[1], vec![1i32]).unwrap();
            assert!(run(&op, &[&i, &i]).unwrap_err().to_string().contains("i32"));
        }
        let a = Value::from_vec(&[3], vec![-6i16, 5, 0x7f0f]).unwrap();
        let b = Value::from_vec(&[1], vec![3i16]).unwrap();
        let and = Bitwise {
            f: Bits::And,
            logic: false,
            name: "BitwiseAnd",
        };
        let xor = Bitwise {
            f: Bits::Xor,
            logic: false,
            name: "BitwiseXor",
        };
        assert_eq!(run(&and, &[&a, &b]).unwrap().to_i64_vec(), vec![2, 1, 3]);
        assert_eq!(
            run(&xor, &[&a, &b]).unwrap().to_i64_vec(),
            vec![-7, 6, 0x7f0c]
        );
        let f = Value::from_vec(&[1], vec![1.0f32]).unwrap();
        assert!(run(&and, &[&f, &f])
            .unwrap_err()
            .to_string()
            .contains("f32"));
        let x = Value::from_vec(&[4], vec![1u8, 16, 255, 3]).unwrap();
        let n = Value::from_vec(&[4], vec![1u8, 2, 8, 200]).unwrap();
        let shl = Bitwise {
            f: Bits::ShiftLeft,
            logic: false,
            name: "BitShift",
        };
        let shr = Bitwise {
            f: Bits::ShiftRight,
            logic: false,
            name: "BitShift",
        };
        assert_eq!(
            run(&shl, &[&x, &n]).unwrap(),
            Value::from_vec(&[4], vec![2u8, 64, 0, 0]).unwrap()
        );
        assert_eq!(
            run(&shr, &[&x, &n]).unwrap(),
            Value::from_vec(&[4], vec![0u8, 4, 0, 0]).unwrap()
        );
        assert!(run(&shl, &[&a, &b])
            .unwrap_err()
            .to_string()
            .contains("unsigned"));
        let not = Negate { logic: true };
        let bnot = Negate { logic: false };
        assert_eq!(
            run(&not, &[&Value::Bool(q.clone())]).unwrap().to_i64_vec(),
            vec![0, 1]
        );
        assert_eq!(
            run(&bnot, &[&a]).unwrap().to_i64_vec(),
            vec![5, -6, !0x7f0f]
        );
        assert!(run(&not, &[&a]).is_err());
        assert!(run(&bnot, &[&Value::Bool(q)]).is_err());
    }

    #[test]
    fn where_broadcasts_three_ways() {
        let c = arr(&[2, 1, 1], vec![true, false]);
        let x = arr(&[1, 3, 1], vec![1i64, 2, 3]);
        let y = arr(&[4], vec![-1i64, -2, -3, -4]);
        let got = run(
            &Where,
            &[
                &Value::Bool(c.clone()),
                &Value::I64(x.clone()),
                &Value::I64(y.clone()),
            ],
        )
        .unwrap();
        assert_eq!(got.shape(), &[2, 3, 4]);
        let want = ArrayD::from_shape_fn(IxDyn(&[2, 3, 4]), |ix| {
            if c[IxDyn(&[ix[0], 0, 0])] {
                x[IxDyn(&[0, ix[1], 0])]
            } else {
                y[IxDyn(&[ix[2]])]
            }
        });
        assert_eq!(got, Value::I64(want));
        let e = run(
            &Where,
            &[
                &Value::I64(x.clone()),
                &Value::I64(x.clone()),
                &Value::I64(x.clone()),
            ],
        );
        assert!(e.unwrap_err().to_string().contains("i64"));
        let f = Value::from_vec(&[1], vec![1.0f32]).unwrap();
        assert!(run(&Where, &[&Value::Bool(c.clone()), &Value::I64(x), &f]).is_err());
        let z = Value::from_vec(&[0], Vec::<f32>::new()).unwrap();
        let got = run(&Where, &[&Value::Bool(arr(&[1], vec![true])), &z, &f]).unwrap();
        assert_eq!(got.shape(), &[0]);
        let bad = Value::from_vec(&[3], vec![1.0f32; 3]).unwrap();
        assert!(run(
            &Where,
            &[
                &Value::Bool(c),
                &bad,
                &Value::from_vec(&[2], vec![1.0f32; 2]).unwrap()
            ]
        )
        .is_err());
    }

    /// Imports a one-node model over inputs `a`, `b` (and `c` for three inputs).
    fn import(
        op: &str,
        inputs: usize,
        attrs: Vec<crate::onnx::proto::AttributeProto>,
    ) -> Result<crate::Graph> {
        use crate::onnx::write::{Dim, ModelWriter};
        let names = ["a", "b", "c"];
        let d = [Dim::Fixed(2)];
        let mut w = ModelWriter::new("t", 18);
        for n in &names[..inputs] {
            w.input(n, &d);
        }
        w.output("y", &d).node(op, &names[..inputs], &["y"], attrs);
        crate::onnx::from_bytes(&w.to_bytes())
    }

    #[test]
    fn import_refuses_bad_attributes_and_arity() {
        use crate::onnx::proto::{attr_type, AttributeProto};
        use crate::onnx::write::attr_int;
        let dir = |s: &str| AttributeProto {
            name: "direction".into(),
            r#type: attr_type::STRING,
            s: s.as_bytes().to_vec(),
            ..Default::default()
        };
        assert!(import("BitShift", 2, vec![dir("LEFT")]).is_ok());
        assert!(import("BitShift", 2, vec![dir("UP")]).is_err());
        assert!(import("BitShift", 2, vec![]).is_err());
        assert!(import("Mod", 2, vec![attr_int("fmod", 1)]).is_ok());
        assert!(import("Mod", 2, vec![attr_int("fmod", 2)]).is_err());
        assert!(import("CastLike", 2, vec![attr_int("saturate", 0)]).is_ok());
        assert!(import("CastLike", 2, vec![attr_int("saturate", 3)]).is_err());
        assert!(import("Equal", 2, vec![attr_int("broadcast", 1)]).is_err());
        assert!(import("Where", 2, vec![]).is_err());
        assert!(import("Where", 3, vec![]).is_ok());
        assert!(import("Max", 3, vec![]).is_ok());
        assert!(import("Pow", 3, vec![]).is_err());
    }
}
