//! Helpers for ops written against [`super::Operator`] over every element type: numpy
//! broadcasting of two arrays, float maps (f16 and bf16 computed in f32), and typed input
//! access with errors that name the node, the op and the type.
use super::Ctx;
use crate::{DType, Elem, Result, Value};
use half::{bf16, f16};
use ndarray::{ArrayD, IxDyn, Zip};

/// The numpy broadcast of two shapes, or `None` when they do not broadcast.
pub fn broadcast_shape(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let r = a.len().max(b.len());
    let at = |s: &[usize], i: usize| {
        let k = i + s.len();
        if k < r {
            1
        } else {
            s[k - r]
        }
    };
    (0..r)
        .map(|i| match (at(a, i), at(b, i)) {
            (x, y) if x == y => Some(x),
            (1, y) => Some(y),
            (x, 1) => Some(x),
            _ => None,
        })
        .collect()
}

/// `f` applied element by element to `a` and `b` broadcast together (numpy rules).
pub fn zip_map<A: Elem, B: Elem, C: Elem>(
    a: &ArrayD<A>,
    b: &ArrayD<B>,
    f: impl Fn(A, B) -> C,
    ctx: Ctx,
) -> Result<ArrayD<C>> {
    let shape = broadcast_shape(a.shape(), b.shape()).ok_or_else(|| {
        ctx.err(format!(
            "shapes {:?} and {:?} do not broadcast",
            a.shape(),
            b.shape()
        ))
    })?;
    ctx.sized("output", &shape)?;
    let (Some(av), Some(bv)) = (a.broadcast(IxDyn(&shape)), b.broadcast(IxDyn(&shape))) else {
        return Err(ctx.err("broadcast failed"));
    };
    Ok(Zip::from(&av).and(&bv).map_collect(|&x, &y| f(x, y)))
}

/// A float value mapped element-wise: f32 and f64 natively, f16 and bf16 through f32.
/// `None` for a non-float value.
pub fn map_float(v: &Value, f32f: impl Fn(f32) -> f32, f64f: impl Fn(f64) -> f64) -> Option<Value> {
    Some(match v {
        Value::F32(a) => Value::F32(a.mapv(f32f)),
        Value::F64(a) => Value::F64(a.mapv(f64f)),
        Value::F16(a) => Value::F16(a.mapv(|x| f16::from_f32(f32f(x.to_f32())))),
        Value::BF16(a) => Value::BF16(a.mapv(|x| bf16::from_f32(f32f(x.to_f32())))),
        _ => return None,
    })
}

/// Input `i`, which must be present and of one of `types` (empty: any).
pub fn input<'v>(
    inputs: &[Option<&'v Value>],
    i: usize,
    types: &[DType],
    ctx: Ctx,
) -> Result<&'v Value> {
    let v = ctx.input(inputs, i)?;
    if !types.is_empty() && !types.contains(&v.dtype()) {
        let names: Vec<&str> = types.iter().map(|t| t.name()).collect();
        return Err(ctx.err(format!(
            "input {i} is {}; this op takes {}",
            v.dtype(),
            names.join(", ")
        )));
    }
    Ok(v)
}

/// An N-d attribute (strides, pads, ...) with one value per spatial axis, `default` for each
/// when absent; a list of another length is an error naming `what`.
pub(crate) fn per_dim(
    v: &Option<Vec<i64>>,
    n: usize,
    default: i64,
    what: &str,
    ctx: Ctx,
) -> Result<Vec<i64>> {
    match v {
        None => Ok(vec![default; n]),
        Some(v) if v.len() == n => Ok(v.clone()),
        Some(v) => Err(ctx.err(format!("{what} {v:?}: {n} values expected"))),
    }
}

/// Advances a row-major multi-index over `dims`; `false` after the last one.
pub(crate) fn next_index(idx: &mut [usize], dims: &[usize]) -> bool {
    for d in (0..idx.len()).rev() {
        idx[d] += 1;
        if idx[d] < dims[d] {
            return true;
        }
        idx[d] = 0;
    }
    false
}

/// The float types.
pub const FLOATS: [DType; 4] = [DType::F32, DType::F64, DType::F16, DType::BF16];

/// The numeric types (floats and integers, not bool).
pub const NUMERIC: [DType; 12] = [
    DType::F32,
    DType::F64,
    DType::F16,
    DType::BF16,
    DType::I8,
    DType::I16,
    DType::I32,
    DType::I64,
    DType::U8,
    DType::U16,
    DType::U32,
    DType::U64,
];

/// Runs `$body` with `$a` bound to the array of a float value (f16/bf16 included), wrapping
/// the result in the same variant; `$other` is evaluated for non-float values.
#[macro_export]
macro_rules! map_float_array {
    ($v:expr, $a:ident => $body:expr, $other:expr) => {
        match $v {
            $crate::Value::F32($a) => $crate::Value::F32($body),
            $crate::Value::F64($a) => $crate::Value::F64($body),
            $crate::Value::F16($a) => $crate::Value::F16($body),
            $crate::Value::BF16($a) => $crate::Value::BF16($body),
            _ => $other,
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcast_shapes_follow_numpy() {
        assert_eq!(broadcast_shape(&[2, 3, 4], &[4]), Some(vec![2, 3, 4]));
        assert_eq!(broadcast_shape(&[2, 1, 4], &[3, 1]), Some(vec![2, 3, 4]));
        assert_eq!(broadcast_shape(&[], &[5]), Some(vec![5]));
        assert_eq!(broadcast_shape(&[0, 3], &[1, 3]), Some(vec![0, 3]));
        assert_eq!(broadcast_shape(&[2, 3], &[4, 3]), None);
    }
}
