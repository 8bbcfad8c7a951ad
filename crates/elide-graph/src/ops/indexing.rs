//! Helpers shared by the indexing ops (Tile, GatherElements, GatherND, the scatters,
//! OneHot, ...): C-order strides, index inputs read at run time and checked against their
//! axis (negative indices count from the end), and contiguous element access.
use super::Ctx;
use crate::{DType, Result, Value};
use ndarray::ArrayD;

/// C-order strides (in elements) of `shape`.
pub fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1usize; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1].saturating_mul(shape[i + 1]);
    }
    s
}

/// The elements of an index input (`what` names it in errors), which must be i32 or i64.
pub fn index_values(v: &Value, what: &str, ctx: Ctx) -> Result<Vec<i64>> {
    match v.dtype() {
        DType::I32 | DType::I64 => Ok(v.to_i64_vec()),
        d => Err(ctx.err(format!("{what} are {d}; this op takes int32 or int64"))),
    }
}

/// `i` as an index into an axis of length `dim`: negative values count from the end;
/// outside `[-dim, dim)` is an error.
pub fn resolve(i: i64, dim: usize, ctx: Ctx) -> Result<usize> {
    let d = dim as i64;
    let r = if i < 0 { i + d } else { i };
    if r < 0 || r >= d {
        return Err(ctx.err(format!(
            "index {i} out of range for an axis of length {dim}"
        )));
    }
    Ok(r as usize)
}

/// Calls `f` with the elements of `a` in C order (borrowed when already contiguous).
pub fn with_slice<T: Clone, R>(a: &ArrayD<T>, f: impl FnOnce(&[T]) -> R) -> R {
    match a.as_slice() {
        Some(s) => f(s),
        None => {
            let v: Vec<T> = a.iter().cloned().collect();
            f(&v)
        }
    }
}

/// Steps the C-order multi-index `idx` within `shape`; false after the last one.
pub fn next_index(idx: &mut [usize], shape: &[usize]) -> bool {
    for d in (0..idx.len()).rev() {
        idx[d] += 1;
        if idx[d] < shape[d] {
            return true;
        }
        idx[d] = 0;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Ctx<'static> {
        Ctx {
            node: "n",
            op: "T",
            arena: None,
        }
    }

    #[test]
    fn strides_resolve_and_odometer() {
        assert_eq!(strides(&[2, 3, 4]), vec![12, 4, 1]);
        assert_eq!(strides(&[]), Vec::<usize>::new());
        assert_eq!(resolve(-1, 3, ctx()).unwrap(), 2);
        assert_eq!(resolve(2, 3, ctx()).unwrap(), 2);
        assert!(resolve(3, 3, ctx()).is_err());
        assert!(resolve(-4, 3, ctx()).is_err());
        assert!(resolve(0, 0, ctx()).is_err());
        let mut idx = vec![0, 0];
        let mut n = 1;
        while next_index(&mut idx, &[2, 3]) {
            n += 1;
        }
        assert_eq!((n, idx), (6, vec![0, 0]));
        assert!(index_values(&Value::f32(&[1], vec![0.0]).unwrap(), "indices", ctx()).is_err());
    }
}
