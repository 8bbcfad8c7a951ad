//! Reductions over a set of axes: ReduceSum, ReduceMean, ReduceMax, ReduceMin, ReduceProd,
//! ReduceL1, ReduceL2, ReduceSumSquare, ReduceLogSum, ReduceLogSumExp, in both ONNX forms
//! (axes as an attribute before opset 13 for ReduceSum and 18 for the others, as input 1
//! from then on), with `keepdims` and `noop_with_empty_axes`.
//!
//! Floats accumulate in f64 and are rounded once to the input's type; integer sums,
//! products and means accumulate in i64 (wrapping, as two's complement hardware does); Max
//! and Min compare in the input's own type (bool included). An empty reduction gives the
//! identity ONNX defines: 0 for sums, 1 for products, the lowest (highest) value for Max
//! (Min), `-inf` for ReduceLogSum and ReduceLogSumExp, NaN for a float mean.
//!
//! [`OutIndex`] and [`reduced_axes`] are shared with the normalizations.
use super::operator::Operator;
use super::typed::{input, NUMERIC};
use super::{Ctx, Op};
use crate::onnx::registry::{NodeCtx, Registry};
use crate::{with_array, DType, Elem, Result, Value};
use ndarray::ArrayD;
use std::sync::Arc;

/// Which reduction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReduceKind {
    /// Sum.
    Sum,
    /// Arithmetic mean.
    Mean,
    /// Maximum.
    Max,
    /// Minimum.
    Min,
    /// Product.
    Prod,
    /// Sum of absolute values.
    L1,
    /// Square root of the sum of squares.
    L2,
    /// Sum of squares.
    SumSquare,
    /// Natural log of the sum.
    LogSum,
    /// Natural log of the sum of exponentials.
    LogSumExp,
}

/// `(ONNX name, reduction, first opset of the axes-as-input form)` of every reduction.
const ALL: [(&str, ReduceKind, i64); 10] = [
    ("ReduceSum", ReduceKind::Sum, 13),
    ("ReduceMean", ReduceKind::Mean, 18),
    ("ReduceMax", ReduceKind::Max, 18),
    ("ReduceMin", ReduceKind::Min, 18),
    ("ReduceProd", ReduceKind::Prod, 18),
    ("ReduceL1", ReduceKind::L1, 18),
    ("ReduceL2", ReduceKind::L2, 18),
    ("ReduceSumSquare", ReduceKind::SumSquare, 18),
    ("ReduceLogSum", ReduceKind::LogSum, 18),
    ("ReduceLogSumExp", ReduceKind::LogSumExp, 18),
];

/// The output position (in the keep-dims output, standard layout) of each element of an
/// input of `shape` visited in standard (row-major) order, reduced axes collapsed to 0.
pub struct OutIndex {
    shape: Vec<usize>,
    stride: Vec<usize>,
    idx: Vec<usize>,
    cur: usize,
    left: usize,
}

impl OutIndex {
    /// The walk over an input of `shape` with the axes flagged in `reduced` collapsed.
    pub fn new(shape: &[usize], reduced: &[bool]) -> Self {
        let mut stride = vec![0; shape.len()];
        let mut s = 1;
        for d in (0..shape.len()).rev() {
            if !reduced.get(d).copied().unwrap_or(false) {
                stride[d] = s;
                s *= shape[d];
            }
        }
        Self {
            shape: shape.to_vec(),
            stride,
            idx: vec![0; shape.len()],
            cur: 0,
            left: shape.iter().product(),
        }
    }
}

impl Iterator for OutIndex {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let r = self.cur;
        for d in (0..self.shape.len()).rev() {
            self.idx[d] += 1;
            self.cur += self.stride[d];
            if self.idx[d] < self.shape[d] {
                break;
            }
            self.cur -= self.stride[d] * self.shape[d];
            self.idx[d] = 0;
        }
        Some(r)
    }
}

/// The flags of the axes named in `axes` (negative counting from the end) for a rank;
/// repeated or out-of-range axes are errors.
pub fn reduced_axes(axes: &[i64], rank: usize, ctx: Ctx) -> Result<Vec<bool>> {
    let mut flags = vec![false; rank];
    for &a in axes {
        let d = ctx.axis(a, rank)?;
        if flags[d] {
            return Err(ctx.err(format!("axis {a} repeated in {axes:?}")));
        }
        flags[d] = true;
    }
    Ok(flags)
}

/// The keep-dims output shape: reduced axes set to 1.
pub fn kept_shape(shape: &[usize], reduced: &[bool]) -> Vec<usize> {
    shape
        .iter()
        .zip(reduced)
        .map(|(&n, &r)| if r { 1 } else { n })
        .collect()
}

/// One reduction as an op.
#[derive(Clone, Debug)]
pub struct Reduce {
    kind: ReduceKind,
    name: &'static str,
    /// Axes from the attribute (older form), `None` in the input form or when absent.
    axes: Option<Vec<i64>>,
    /// Whether axes come from input 1.
    axes_input: bool,
    keepdims: bool,
    noop_with_empty_axes: bool,
}

impl Reduce {
    /// The reduction of `kind` over `axes` (`None`: every axis).
    pub fn new(kind: ReduceKind, axes: Option<Vec<i64>>, keepdims: bool) -> Self {
        let name = ALL
            .iter()
            .find(|(_, k, _)| *k == kind)
            .map_or("Reduce", |(n, _, _)| n);
        Self {
            kind,
            name,
            axes,
            axes_input: false,
            keepdims,
            noop_with_empty_axes: false,
        }
    }
}

impl Operator for Reduce {
    fn name(&self) -> &'static str {
        self.name
    }

    fn run(&self, inputs: &[Option<&Value>], ctx: Ctx) -> Result<Vec<Value>> {
        let ord = matches!(self.kind, ReduceKind::Max | ReduceKind::Min);
        let mut types = NUMERIC.to_vec();
        if ord {
            types.push(DType::Bool);
        }
        let x = input(inputs, 0, &types, ctx)?;
        let axes = if self.axes_input {
            match inputs.get(1).copied().flatten() {
                Some(a) if a.dtype() == DType::I64 => a.to_i64_vec(),
                Some(a) => return Err(ctx.err(format!("axes are {}; expected int64", a.dtype()))),
                None => Vec::new(),
            }
        } else {
            self.axes.clone().unwrap_or_default()
        };
        if axes.is_empty() && self.noop_with_empty_axes {
            return Ok(vec![x.clone()]);
        }
        let rank = x.shape().len();
        let reduced = if axes.is_empty() {
            vec![true; rank]
        } else {
            reduced_axes(&axes, rank, ctx)?
        };
        let kept = kept_shape(x.shape(), &reduced);
        let out_len = ctx.sized("output", &kept)?;
        let count: usize = x
            .shape()
            .iter()
            .zip(&reduced)
            .filter(|(_, &r)| r)
            .map(|(&n, _)| n)
            .product();
        let shape: Vec<usize> = if self.keepdims {
            kept
        } else {
            x.shape()
                .iter()
                .zip(&reduced)
                .filter(|(_, &r)| !r)
                .map(|(&n, _)| n)
                .collect()
        };
        let walk = || OutIndex::new(x.shape(), &reduced);
        let kind = self.kind;
        let out = if ord {
            with_array!(x, a => Elem::wrap(ordered(a, walk(), out_len, kind == ReduceKind::Max, &shape)?))
        } else if x.dtype().is_float()
            || matches!(
                kind,
                ReduceKind::L2 | ReduceKind::LogSum | ReduceKind::LogSumExp
            )
        {
            let v = with_array!(x, a => in_f64(a, walk, out_len, count, kind));
            Value::from_vec(&shape, v)?.cast(x.dtype())
        } else {
            let unsigned = matches!(x.dtype(), DType::U8 | DType::U16 | DType::U32 | DType::U64);
            let v = with_array!(x, a => in_i64(a, walk(), out_len, count, kind, unsigned));
            Value::from_vec(&shape, v)?.cast(x.dtype())
        };
        Ok(vec![out])
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// Max or Min in the element's own order; NaN wins (as numpy's `maximum.reduce`).
fn ordered<T: Elem + PartialOrd>(
    a: &ArrayD<T>,
    walk: OutIndex,
    out_len: usize,
    max: bool,
    shape: &[usize],
) -> Result<ArrayD<T>> {
    let init = if T::DTYPE == DType::Bool {
        T::from_i64(if max { 0 } else { 1 })
    } else {
        T::from_f64(if max {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        })
    };
    let mut acc = vec![init; out_len];
    for (&x, o) in a.iter().zip(walk) {
        let Some(s) = acc.get_mut(o) else { continue };
        #[allow(clippy::eq_op)]
        let nan = |v: T| v != v;
        if !nan(*s) && (nan(x) || (max && x > *s) || (!max && x < *s)) {
            *s = x;
        }
    }
    ArrayD::from_shape_vec(ndarray::IxDyn(shape), acc)
        .map_err(|e| crate::GraphError::Model(format!("reduction output: {e}")))
}

/// A reduction accumulated in f64.
fn in_f64<T: Elem>(
    a: &ArrayD<T>,
    walk: impl Fn() -> OutIndex,
    out_len: usize,
    count: usize,
    kind: ReduceKind,
) -> Vec<f64> {
    let mut acc = vec![if kind == ReduceKind::Prod { 1.0 } else { 0.0 }; out_len];
    let mut shift = Vec::new();
    if kind == ReduceKind::LogSumExp {
        shift = vec![f64::NEG_INFINITY; out_len];
        for (&x, o) in a.iter().zip(walk()) {
            if let Some(m) = shift.get_mut(o) {
                let x = x.to_f64();
                if x > *m || x.is_nan() {
                    *m = x;
                }
            }
        }
    }
    for (&x, o) in a.iter().zip(walk()) {
        let x = x.to_f64();
        let Some(s) = acc.get_mut(o) else { continue };
        match kind {
            ReduceKind::Sum | ReduceKind::Mean | ReduceKind::LogSum => *s += x,
            ReduceKind::Prod => *s *= x,
            ReduceKind::L1 => *s += x.abs(),
            ReduceKind::L2 | ReduceKind::SumSquare => *s += x * x,
            ReduceKind::LogSumExp => {
                let m = shift.get(o).copied().unwrap_or(0.0);
                *s += if m.is_infinite() { 1.0 } else { (x - m).exp() };
            }
            ReduceKind::Max | ReduceKind::Min => {}
        }
    }
    for (o, s) in acc.iter_mut().enumerate() {
        match kind {
            ReduceKind::Mean => *s /= count as f64,
            ReduceKind::L2 => *s = s.sqrt(),
            ReduceKind::LogSum => *s = s.ln(),
            ReduceKind::LogSumExp => {
                let m = shift.get(o).copied().unwrap_or(f64::NEG_INFINITY);
                // All -inf (or empty): -inf; a +inf term: +inf; else m + ln(sum e^(x-m)).
                *s = if m.is_infinite() { m } else { m + s.ln() };
            }
            _ => {}
        }
    }
    acc
}

/// Sum, mean, product, L1 or sum of squares of integers, in wrapping i64.
fn in_i64<T: Elem>(
    a: &ArrayD<T>,
    walk: OutIndex,
    out_len: usize,
    count: usize,
    kind: ReduceKind,
    unsigned: bool,
) -> Vec<i64> {
    let mut acc = vec![i64::from(kind == ReduceKind::Prod); out_len];
    for (&x, o) in a.iter().zip(walk) {
        let x = x.to_i64();
        let Some(s) = acc.get_mut(o) else { continue };
        *s = match kind {
            ReduceKind::Prod => s.wrapping_mul(x),
            ReduceKind::L1 if !unsigned => s.wrapping_add(x.wrapping_abs()),
            ReduceKind::SumSquare => s.wrapping_add(x.wrapping_mul(x)),
            _ => s.wrapping_add(x),
        };
    }
    if kind == ReduceKind::Mean {
        for s in &mut acc {
            *s = if count == 0 { 0 } else { *s / count as i64 };
        }
    }
    acc
}

fn kind_of(n: &NodeCtx) -> Result<(&'static str, ReduceKind)> {
    ALL.iter()
        .find(|(s, _, _)| *s == n.node.op_type)
        .map(|&(s, k, _)| (s, k))
        .ok_or_else(|| n.err("not a reduction"))
}

/// The older form: axes as an attribute.
fn build_attr(n: &NodeCtx) -> Result<Op> {
    let a = n.attrs(&["axes", "keepdims"])?;
    n.arity((1, 1), (1, 1))?;
    let (name, kind) = kind_of(n)?;
    Ok(Op::Dyn(Arc::new(Reduce {
        kind,
        name,
        axes: a.ints("axes"),
        axes_input: false,
        keepdims: a.int("keepdims", 1) != 0,
        noop_with_empty_axes: false,
    })))
}

/// The newer form: axes as optional input 1.
fn build_input(n: &NodeCtx) -> Result<Op> {
    let a = n.attrs(&["keepdims", "noop_with_empty_axes"])?;
    n.arity((1, 2), (1, 1))?;
    let (name, kind) = kind_of(n)?;
    Ok(Op::Dyn(Arc::new(Reduce {
        kind,
        name,
        axes: None,
        axes_input: true,
        keepdims: a.int("keepdims", 1) != 0,
        noop_with_empty_axes: a.int("noop_with_empty_axes", 0) != 0,
    })))
}

/// Registers the ops of this file.
pub(crate) fn register(r: &mut Registry) {
    for (name, _, since) in ALL {
        r.add("", name, 1, build_attr);
        r.add("", name, since, build_input);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Ctx<'static> {
        Ctx {
            node: "n",
            op: "Reduce",
            arena: None,
        }
    }

    fn op(kind: ReduceKind, keepdims: bool, noop: bool) -> Reduce {
        let mut r = Reduce::new(kind, None, keepdims);
        r.axes_input = true;
        r.noop_with_empty_axes = noop;
        r
    }

    fn run(r: &Reduce, x: &Value, axes: Option<&[i64]>) -> Result<Value> {
        let a = axes.map(|a| Value::i64(&[a.len()], a.to_vec()).unwrap());
        Ok(r.run(&[Some(x), a.as_ref()], ctx())?.remove(0))
    }

    /// Naive reference: reduce `data` of shape [p, q, r] over axis 1 with `f` from `init`.
    fn naive(
        data: &[f64],
        [p, q, r]: [usize; 3],
        init: f64,
        f: impl Fn(f64, f64) -> f64,
    ) -> Vec<f64> {
        let mut out = vec![init; p * r];
        for i in 0..p {
            for j in 0..q {
                for k in 0..r {
                    out[i * r + k] = f(out[i * r + k], data[(i * q + j) * r + k]);
                }
            }
        }
        out
    }

    #[test]
    fn middle_axis_matches_naive_loops_on_odd_shapes() {
        let shape = [3usize, 5, 2];
        let data: Vec<f64> = (0..30).map(|i| ((i * 7) % 11) as f64 * 0.5 - 2.0).collect();
        let x = Value::from_vec(&shape, data.clone()).unwrap();
        type Case = (ReduceKind, f64, fn(f64, f64) -> f64);
        let cases: [Case; 4] = [
            (ReduceKind::Sum, 0.0, |a, b| a + b),
            (ReduceKind::Max, f64::NEG_INFINITY, f64::max),
            (ReduceKind::Min, f64::INFINITY, f64::min),
            (ReduceKind::Prod, 1.0, |a, b| a * b),
        ];
        for (kind, init, f) in cases {
            let got = run(&op(kind, false, false), &x, Some(&[-2])).unwrap();
            assert_eq!(got.shape(), &[3, 2]);
            assert_eq!(got.to_f64_vec(), naive(&data, shape, init, f), "{kind:?}");
        }
        let l2 = run(&op(ReduceKind::L2, true, false), &x, Some(&[1])).unwrap();
        assert_eq!(l2.shape(), &[3, 1, 2]);
        let want: Vec<f64> = naive(&data, shape, 0.0, |a, b| a + b * b)
            .iter()
            .map(|v| v.sqrt())
            .collect();
        for (g, w) in l2.to_f64_vec().iter().zip(want) {
            assert!((g - w).abs() < 1e-12);
        }
        let lse = run(&op(ReduceKind::LogSumExp, false, false), &x, Some(&[1])).unwrap();
        let want = naive(&data, shape, 0.0, |a, b| a + b.exp());
        for (g, w) in lse.to_f64_vec().iter().zip(want) {
            assert!((g - w.ln()).abs() < 1e-12);
        }
    }

    #[test]
    fn empty_axes_reduce_all_or_pass_through() {
        let x = Value::f32(&[2, 3], vec![1., 2., 3., 4., 5., 6.]).unwrap();
        let all = run(&op(ReduceKind::Mean, true, false), &x, None).unwrap();
        assert_eq!(all.shape(), &[1, 1]);
        assert_eq!(all.to_f64_vec(), vec![3.5]);
        let same = run(&op(ReduceKind::Mean, true, true), &x, Some(&[])).unwrap();
        assert_eq!(same, x);
        let scalar = Value::f32(&[], vec![4.0]).unwrap();
        assert_eq!(
            run(&op(ReduceKind::SumSquare, false, false), &scalar, None)
                .unwrap()
                .to_f64_vec(),
            vec![16.0]
        );
    }

    #[test]
    fn empty_sets_give_the_identities() {
        let x = Value::f32(&[2, 0, 3], vec![]).unwrap();
        let want = [
            (ReduceKind::Sum, 0.0),
            (ReduceKind::Prod, 1.0),
            (ReduceKind::Max, f64::NEG_INFINITY),
            (ReduceKind::Min, f64::INFINITY),
            (ReduceKind::L1, 0.0),
            (ReduceKind::L2, 0.0),
            (ReduceKind::LogSum, f64::NEG_INFINITY),
            (ReduceKind::LogSumExp, f64::NEG_INFINITY),
        ];
        for (kind, w) in want {
            let got = run(&op(kind, true, false), &x, Some(&[1])).unwrap();
            assert_eq!(got.shape(), &[2, 1, 3]);
            assert_eq!(got.to_f64_vec(), vec![w; 6], "{kind:?}");
        }
        let i = Value::from_vec(&[0], Vec::<i32>::new()).unwrap();
        let m = run(&op(ReduceKind::Max, false, false), &i, None).unwrap();
        assert_eq!(m.to_i64_vec(), vec![i32::MIN as i64]);
        // A zero-sized kept axis: the output is empty too.
        let z = run(&op(ReduceKind::Sum, true, false), &x, Some(&[2])).unwrap();
        assert_eq!(z.shape(), &[2, 0, 1]);
    }

    #[test]
    fn integers_and_bools_keep_their_type() {
        let x = Value::from_vec(&[2, 2], vec![-3i32, 4, 5, -6]).unwrap();
        let s = run(&op(ReduceKind::L1, false, false), &x, Some(&[0])).unwrap();
        assert_eq!(s.dtype(), DType::I32);
        assert_eq!(s.to_i64_vec(), vec![8, 10]);
        let m = run(&op(ReduceKind::Mean, false, false), &x, Some(&[1])).unwrap();
        assert_eq!(m.to_i64_vec(), vec![0, 0]);
        let big = Value::from_vec(&[2], vec![u64::MAX, 1]).unwrap();
        let mx = run(&op(ReduceKind::Max, false, false), &big, None).unwrap();
        assert_eq!(
            mx.as_array::<u64>()
                .unwrap()
                .iter()
                .copied()
                .collect::<Vec<_>>(),
            vec![u64::MAX]
        );
        let b = Value::from_vec(&[2, 2], vec![true, false, false, false]).unwrap();
        let any = run(&op(ReduceKind::Max, false, false), &b, Some(&[1])).unwrap();
        assert_eq!(any.to_i64_vec(), vec![1, 0]);
        let all = run(&op(ReduceKind::Min, false, false), &b, Some(&[1])).unwrap();
        assert_eq!(all.to_i64_vec(), vec![0, 0]);
    }

    #[test]
    fn bad_inputs_are_errors() {
        let x = Value::f32(&[2, 3], vec![0.0; 6]).unwrap();
        let r = op(ReduceKind::Sum, true, false);
        assert!(run(&r, &x, Some(&[2])).is_err());
        assert!(run(&r, &x, Some(&[-3])).is_err());
        assert!(run(&r, &x, Some(&[1, -1])).is_err());
        let b = Value::from_vec(&[1], vec![true]).unwrap();
        assert!(run(&r, &b, None).is_err());
        let axes32 = Value::from_vec(&[1], vec![0i32]).unwrap();
        assert!(r.run(&[Some(&x), Some(&axes32)], ctx()).is_err());
        let nan = Value::f32(&[3], vec![1.0, f32::NAN, 2.0]).unwrap();
        assert!(run(&op(ReduceKind::Max, false, false), &nan, None)
            .unwrap()
            .to_f64_vec()[0]
            .is_nan());
    }
}
