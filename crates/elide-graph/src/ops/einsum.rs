//! ONNX Einsum (opset 12): Einstein summation over any number of inputs, with explicit
//! (`ij,jk->ik`) or implicit (`ij,jk`: the labels seen once, sorted) outputs, repeated labels
//! (diagonals) and broadcast ellipses. A plain loop over the output's and the summed labels'
//! index space: floats in f64, rounded once to the input type; integers exactly (wrapping).
use super::operator::Operator;
use super::typed::{input, NUMERIC};
use super::{Ctx, Op};
use crate::onnx::registry::{NodeCtx, Registry};
use crate::{Result, Value};
use std::sync::Arc;

/// One term's labels: letters and at most one ellipsis.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Label {
    Letter(u8),
    Ellipsis,
}

/// The Einsum op: its parsed equation.
#[derive(Clone, Debug)]
pub struct Einsum {
    inputs: Vec<Vec<Label>>,
    /// `None`: implicit output.
    output: Option<Vec<Label>>,
}

/// Parses one term ("ij", "...ij", "i...j").
fn term(s: &str) -> std::result::Result<Vec<Label>, String> {
    let mut out = Vec::new();
    let b = s.trim().as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(b"...") {
            if out.contains(&Label::Ellipsis) {
                return Err(format!("term '{s}' has two ellipses"));
            }
            out.push(Label::Ellipsis);
            i += 3;
        } else if b[i].is_ascii_alphabetic() {
            out.push(Label::Letter(b[i]));
            i += 1;
        } else if b[i] == b' ' {
            i += 1;
        } else {
            return Err(format!("term '{s}' has character '{}'", b[i] as char));
        }
    }
    Ok(out)
}

/// Label ids: ellipsis dims are 0..ELL, letters ELL + byte.
const ELL: usize = 64;

impl Operator for Einsum {
    fn name(&self) -> &'static str {
        "Einsum"
    }

    fn run(&self, inputs: &[Option<&Value>], ctx: Ctx) -> Result<Vec<Value>> {
        if inputs.len() != self.inputs.len() {
            return Err(ctx.err(format!(
                "{} inputs for an equation of {} terms",
                inputs.len(),
                self.inputs.len()
            )));
        }
        let vals: Vec<&Value> = (0..inputs.len())
            .map(|i| input(inputs, i, &NUMERIC, ctx))
            .collect::<Result<_>>()?;
        let dt = vals[0].dtype();
        if let Some(v) = vals.iter().find(|v| v.dtype() != dt) {
            return Err(ctx.err(format!(
                "inputs are {dt} and {}; they must agree",
                v.dtype()
            )));
        }
        // Each input's dims as label ids; the ellipsis's dims right-aligned.
        let mut n_ell = 0;
        for (t, v) in self.inputs.iter().zip(&vals) {
            let letters = t.iter().filter(|l| **l != Label::Ellipsis).count();
            let rank = v.shape().len();
            let has_ell = t.contains(&Label::Ellipsis);
            if rank < letters || (!has_ell && rank != letters) {
                return Err(ctx.err(format!(
                    "input of shape {:?} does not fit its term",
                    v.shape()
                )));
            }
            if has_ell {
                n_ell = n_ell.max(rank - letters);
            }
        }
        if n_ell > ELL {
            return Err(ctx.err("ellipsis of too many dims"));
        }
        let mut size = [0usize; ELL + 256];
        let mut seen = [0usize; ELL + 256];
        let mut ids: Vec<Vec<usize>> = Vec::new();
        for (t, v) in self.inputs.iter().zip(&vals) {
            let sh = v.shape();
            let k = sh.len() - (t.len() - usize::from(t.contains(&Label::Ellipsis)));
            let mut row = Vec::new();
            for l in t {
                match l {
                    Label::Letter(c) => row.push(ELL + *c as usize),
                    Label::Ellipsis => row.extend(n_ell - k..n_ell),
                }
            }
            for (&id, &d) in row.iter().zip(sh) {
                if seen[id] == 0 || size[id] == d || (id < ELL && size[id] == 1) {
                    size[id] = d;
                } else if !(id < ELL && d == 1) {
                    return Err(ctx.err(format!("label sizes {} and {d} disagree", size[id])));
                }
                seen[id] += 1;
            }
            ids.push(row);
        }
        let out_ids: Vec<usize> = match &self.output {
            Some(t) => {
                let mut row = Vec::new();
                for l in t {
                    match l {
                        Label::Letter(c) => {
                            let id = ELL + *c as usize;
                            if seen[id] == 0 || row.contains(&id) {
                                return Err(ctx.err(format!(
                                    "output label '{}' is repeated or not in the inputs",
                                    *c as char
                                )));
                            }
                            row.push(id);
                        }
                        Label::Ellipsis => row.extend(0..n_ell),
                    }
                }
                row
            }
            None => (0..n_ell)
                .chain((ELL..ELL + 256).filter(|&id| seen[id] == 1))
                .collect(),
        };
        for (sz, &n) in size.iter_mut().zip(&seen).take(n_ell) {
            if n == 0 {
                *sz = 1;
            }
        }
        let sum_ids: Vec<usize> = (0..ELL + 256)
            .filter(|&id| (seen[id] > 0 || id < n_ell) && !out_ids.contains(&id))
            .collect();
        let oshape: Vec<usize> = out_ids.iter().map(|&id| size[id]).collect();
        let out_len = ctx.sized("output", &oshape)?;
        let sum_len = ctx.sized(
            "summed index space",
            &sum_ids.iter().map(|&id| size[id]).collect::<Vec<_>>(),
        )?;
        ctx.sized_wide("work", &[out_len as u128, sum_len as u128])?;
        // Per input: (label id, stride; 0 for a broadcast dim).
        let strides: Vec<Vec<(usize, usize)>> = ids
            .iter()
            .zip(&vals)
            .map(|(row, v)| {
                let sh = v.shape();
                let mut st = 1;
                let mut out = vec![(0, 0); row.len()];
                for ((o, &id), &d) in out.iter_mut().zip(row).zip(sh).rev() {
                    *o = (id, if d == 1 { 0 } else { st });
                    st *= d;
                }
                out
            })
            .collect();
        let plan = Plan {
            out_ids: &out_ids,
            sum_ids: &sum_ids,
            size: &size,
            strides: &strides,
            out_len,
            sum_len,
        };
        let out = if dt.is_float() {
            let data: Vec<Vec<f64>> = vals.iter().map(|v| v.to_f64_vec()).collect();
            Value::from_vec(
                &oshape,
                plan.run(&data, 0.0, 1.0, |a, b| a * b, |a, b| a + b),
            )?
        } else {
            // Integers exactly, wrapping as fixed-width hardware does.
            let data: Vec<Vec<i64>> = vals.iter().map(|v| v.to_i64_vec()).collect();
            let (mul, add) = (i64::wrapping_mul, i64::wrapping_add);
            Value::from_vec(&oshape, plan.run(&data, 0, 1, mul, add))?
        };
        Ok(vec![out.cast(dt)])
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// The index spaces of one contraction.
struct Plan<'a> {
    out_ids: &'a [usize],
    sum_ids: &'a [usize],
    size: &'a [usize],
    /// Per input: (label id, stride; 0 for a broadcast dim).
    strides: &'a [Vec<(usize, usize)>],
    out_len: usize,
    sum_len: usize,
}

impl Plan<'_> {
    /// Every output element: the sum over the summed labels of the inputs' product.
    fn run<T: Copy>(
        &self,
        data: &[Vec<T>],
        zero: T,
        one: T,
        mul: impl Fn(T, T) -> T,
        add: impl Fn(T, T) -> T,
    ) -> Vec<T> {
        let mut cur = [0usize; ELL + 256];
        let mut out = Vec::with_capacity(self.out_len);
        for o in 0..self.out_len {
            let mut rem = o;
            for &id in self.out_ids.iter().rev() {
                cur[id] = rem % self.size[id];
                rem /= self.size[id];
            }
            let mut acc = zero;
            for s in 0..self.sum_len {
                let mut rem = s;
                for &id in self.sum_ids.iter().rev() {
                    cur[id] = rem % self.size[id];
                    rem /= self.size[id];
                }
                let mut p = one;
                for (d, st) in data.iter().zip(self.strides) {
                    let off: usize = st.iter().map(|&(id, s)| cur[id] * s).sum();
                    p = mul(p, d[off]);
                }
                acc = add(acc, p);
            }
            out.push(acc);
        }
        out
    }
}

/// Parses an equation into input terms and an optional explicit output.
fn parse(eq: &str) -> std::result::Result<Einsum, String> {
    let (lhs, rhs) = match eq.split_once("->") {
        Some((l, r)) => (l, Some(r)),
        None => (eq, None),
    };
    let inputs = lhs
        .split(',')
        .map(term)
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let output = rhs.map(term).transpose()?;
    Ok(Einsum { inputs, output })
}

fn build_einsum(n: &NodeCtx) -> Result<Op> {
    let a = n.attrs(&["equation"])?;
    n.arity((1, usize::MAX), (1, 1))?;
    let eq = a.string("equation", "");
    let op = parse(&eq).map_err(|e| a.unsupported(format!("equation '{eq}': {e}")))?;
    if op.inputs.len() != n.node.input.len() {
        return Err(n.err(format!(
            "equation '{eq}' has {} terms for {} inputs",
            op.inputs.len(),
            n.node.input.len()
        )));
    }
    Ok(Op::Dyn(Arc::new(op)))
}

/// Registers Einsum.
pub(crate) fn register(r: &mut Registry) {
    r.add("", "Einsum", 12, build_einsum);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Ctx<'static> {
        Ctx {
            node: "n",
            op: "Einsum",
            arena: None,
        }
    }

    fn run(eq: &str, vals: &[&Value]) -> Result<Value> {
        let op = parse(eq).unwrap();
        let ins: Vec<Option<&Value>> = vals.iter().map(|v| Some(*v)).collect();
        Ok(op.run(&ins, ctx())?.remove(0))
    }

    fn seq(shape: &[usize]) -> Value {
        let n = shape.iter().product();
        Value::f32(shape, (0..n).map(|i| i as f32).collect()).unwrap()
    }

    #[test]
    fn matmul_transpose_trace_and_implicit() {
        let a = seq(&[2, 3]);
        let b = seq(&[3, 2]);
        assert_eq!(
            run("ij,jk->ik", &[&a, &b]).unwrap().to_f64_vec(),
            vec![10., 13., 28., 40.]
        );
        // Implicit: "ij,jk" is "ik".
        assert_eq!(
            run("ij,jk", &[&a, &b]).unwrap().to_f64_vec(),
            vec![10., 13., 28., 40.]
        );
        // Implicit output sorted: "ji" is the transpose.
        let t = run("ji", &[&a]).unwrap();
        assert_eq!(t.shape(), &[3, 2]);
        assert_eq!(t.to_f64_vec(), vec![0., 3., 1., 4., 2., 5.]);
        let sq = seq(&[3, 3]);
        assert_eq!(run("ii", &[&sq]).unwrap().to_f64_vec(), vec![12.]);
        assert_eq!(run("ii->i", &[&sq]).unwrap().to_f64_vec(), vec![0., 4., 8.]);
        let s = run("ij->", &[&a]).unwrap();
        assert_eq!(s.shape(), &[] as &[usize]);
        assert_eq!(s.to_f64_vec(), vec![15.]);
    }

    #[test]
    fn ellipsis_broadcast_empty_and_errors() {
        let a = seq(&[2, 1, 2, 2]);
        let b = seq(&[3, 2, 2]);
        let y = run("...ij,...jk->...ik", &[&a, &b]).unwrap();
        assert_eq!(y.shape(), &[2, 3, 2, 2]);
        let d = run("...ii->...i", &[&seq(&[2, 2, 2])]).unwrap();
        assert_eq!(d.to_f64_vec(), vec![0., 3., 4., 7.]);
        let e = run("ij,j->i", &[&seq(&[0, 3]), &seq(&[3])]).unwrap();
        assert_eq!(e.shape(), &[0]);
        let z = run("ij->i", &[&seq(&[2, 0])]).unwrap();
        assert_eq!(z.to_f64_vec(), vec![0., 0.]);
        assert!(run("ij,jk->ik", &[&seq(&[2, 3]), &seq(&[2, 2])]).is_err());
        assert!(run("ij->ix", &[&seq(&[2, 3])]).is_err());
        assert!(run("ijk", &[&seq(&[2, 3])]).is_err());
        // Integers exactly (beyond f64's 53 bits), keeping their type.
        let big = Value::i64(&[2], vec![1 << 60, 3]).unwrap();
        let one = Value::i64(&[2], vec![1, 1]).unwrap();
        let dot = run("i,i->", &[&big, &one]).unwrap();
        assert_eq!(dot.dtype(), crate::DType::I64);
        assert_eq!(dot.to_i64_vec(), vec![(1 << 60) + 3]);
        let f = Value::f32(&[2], vec![1.0, 2.0]).unwrap();
        assert!(run("i,i->", &[&big, &f]).is_err());
        assert!(run("i->", &[&Value::from_vec(&[1], vec![true]).unwrap()]).is_err());
        assert!(parse("i$j").is_err());
        assert!(parse("......").is_err());
    }
}
