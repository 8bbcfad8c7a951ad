//! ONNX RotaryEmbedding (opset 23): rotates pairs of each head's first
//! `rotary_embedding_dim` features by per-position angles from cos/sin caches (halves or
//! interleaved pairs), on 4-D `[B, heads, S, H]` or 3-D `[B, S, heads * H]` inputs, the caches
//! indexed by `position_ids` when given. Computed in f64, rounded once to the input type.
use super::operator::Operator;
use super::typed::{input, FLOATS};
use super::{Ctx, Op};
use crate::onnx::registry::{NodeCtx, Registry};
use crate::{DType, Result, Value};
use std::sync::Arc;

/// The RotaryEmbedding op's attributes.
#[derive(Clone, Debug)]
pub struct Rotary {
    /// Pairs are (2j, 2j+1) instead of (j, j + dim/2).
    interleaved: bool,
    /// Features rotated per head (0: all of them).
    dim: usize,
    /// Heads of a 3-D input.
    num_heads: Option<usize>,
}

impl Operator for Rotary {
    fn name(&self) -> &'static str {
        "RotaryEmbedding"
    }

    fn run(&self, inputs: &[Option<&Value>], ctx: Ctx) -> Result<Vec<Value>> {
        let x = input(inputs, 0, &FLOATS, ctx)?;
        let cos = input(inputs, 1, &FLOATS, ctx)?;
        let sin = input(inputs, 2, &FLOATS, ctx)?;
        let pos = inputs.get(3).copied().flatten();
        let sh = x.shape();
        // (batch, seq, heads, head size, offset of (b, s, h) element 0)
        let (b, s, h, d, four) = match *sh {
            [b, h, s, d] => (b, s, h, d, true),
            [b, s, hid] => {
                let h = self
                    .num_heads
                    .ok_or_else(|| ctx.err("a 3-D input needs the num_heads attribute"))?;
                if !hid.is_multiple_of(h) {
                    return Err(
                        ctx.err(format!("hidden size {hid} is not a multiple of {h} heads"))
                    );
                }
                (b, s, h, hid / h, false)
            }
            _ => return Err(ctx.err(format!("input has shape {sh:?}; expected 3-D or 4-D"))),
        };
        let rd = if self.dim == 0 { d } else { self.dim };
        if rd > d || !rd.is_multiple_of(2) {
            return Err(ctx.err(format!(
                "rotary_embedding_dim {rd} must be even and at most the head size {d}"
            )));
        }
        let half = rd / 2;
        if cos.shape() != sin.shape() || cos.shape().last().copied() != Some(half) {
            return Err(ctx.err(format!(
                "cos_cache {:?} and sin_cache {:?} must agree and end in {half}",
                cos.shape(),
                sin.shape()
            )));
        }
        let (cv, sv) = (cos.to_f64_vec(), sin.to_f64_vec());
        // Row of the caches for (batch, position).
        let rows: Vec<usize> = match pos {
            Some(p) => {
                if !matches!(p.dtype(), DType::I64 | DType::I32) || p.shape() != [b, s] {
                    return Err(ctx.err(format!(
                        "position_ids is {} of shape {:?}; expected int64 [{b}, {s}]",
                        p.dtype(),
                        p.shape()
                    )));
                }
                let n = cos.shape()[0];
                if cos.shape().len() != 2 {
                    return Err(ctx.err("with position_ids the caches must be 2-D"));
                }
                p.to_i64_vec()
                    .into_iter()
                    .map(|i| {
                        usize::try_from(i).ok().filter(|&i| i < n).ok_or_else(|| {
                            ctx.err(format!("position id {i} outside the {n}-row cache"))
                        })
                    })
                    .collect::<Result<_>>()?
            }
            None => match *cos.shape() {
                [cb, cs, _] if cb == b && cs == s => (0..b * s).collect(),
                [cs, _] if cs == s => (0..b * s).map(|i| i % s).collect(),
                _ => {
                    return Err(ctx.err(format!(
                        "without position_ids the caches must be [{b}, {s}, {half}], not {:?}",
                        cos.shape()
                    )))
                }
            },
        };
        let mut out = x.to_f64_vec();
        for bi in 0..b {
            for si in 0..s {
                let row = rows[bi * s + si] * half;
                for hi in 0..h {
                    let o = if four {
                        ((bi * h + hi) * s + si) * d
                    } else {
                        (bi * s + si) * h * d + hi * d
                    };
                    for j in 0..half {
                        let (i1, i2) = if self.interleaved {
                            (o + 2 * j, o + 2 * j + 1)
                        } else {
                            (o + j, o + j + half)
                        };
                        let (c, sn) = (cv[row + j], sv[row + j]);
                        let (x1, x2) = (out[i1], out[i2]);
                        out[i1] = c * x1 - sn * x2;
                        out[i2] = sn * x1 + c * x2;
                    }
                }
            }
        }
        Ok(vec![Value::from_vec(sh, out)?.cast(x.dtype())])
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

fn build_rotary(n: &NodeCtx) -> Result<Op> {
    let a = n.attrs(&["interleaved", "rotary_embedding_dim", "num_heads"])?;
    n.arity((3, 4), (1, 1))?;
    let dim = a.int("rotary_embedding_dim", 0);
    let heads = a.int("num_heads", 0);
    let (Ok(dim), Ok(heads)) = (usize::try_from(dim), usize::try_from(heads)) else {
        return Err(a.unsupported(format!("rotary_embedding_dim = {dim}, num_heads = {heads}")));
    };
    Ok(Op::Dyn(Arc::new(Rotary {
        interleaved: a.int("interleaved", 0) != 0,
        dim,
        num_heads: (heads > 0).then_some(heads),
    })))
}

/// Registers RotaryEmbedding.
pub(crate) fn register(r: &mut Registry) {
    r.add("", "RotaryEmbedding", 23, build_rotary);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Ctx<'static> {
        Ctx {
            node: "n",
            op: "RotaryEmbedding",
            arena: None,
        }
    }

    #[test]
    fn halves_interleaved_partial_and_errors() {
        // One batch, one head, one position, head size 6, rotating 4 features.
        let x = Value::f32(&[1, 1, 1, 6], vec![1., 2., 3., 4., 5., 6.]).unwrap();
        let c = Value::f32(&[1, 1, 2], vec![0.0, 1.0]).unwrap();
        let s = Value::f32(&[1, 1, 2], vec![1.0, 0.0]).unwrap();
        let r = Rotary {
            interleaved: false,
            dim: 4,
            num_heads: None,
        };
        let y = r.run(&[Some(&x), Some(&c), Some(&s)], ctx()).unwrap();
        // pair (x0, x2) rotated by 90 degrees, pair (x1, x3) by 0.
        assert_eq!(y[0].to_f64_vec(), vec![-3., 2., 1., 4., 5., 6.]);
        let r = Rotary {
            interleaved: true,
            ..r
        };
        let y = r.run(&[Some(&x), Some(&c), Some(&s)], ctx()).unwrap();
        assert_eq!(y[0].to_f64_vec(), vec![-2., 1., 3., 4., 5., 6.]);
        // 3-D with position ids into a 2-row cache.
        let x3 = Value::f32(&[1, 1, 6], vec![1., 2., 3., 4., 5., 6.]).unwrap();
        let c2 = Value::f32(&[2, 2], vec![1.0, 1.0, 0.0, 1.0]).unwrap();
        let s2 = Value::f32(&[2, 2], vec![0.0, 0.0, 1.0, 0.0]).unwrap();
        let p = Value::i64(&[1, 1], vec![1]).unwrap();
        let r3 = Rotary {
            interleaved: true,
            dim: 4,
            num_heads: Some(1),
        };
        let y = r3
            .run(&[Some(&x3), Some(&c2), Some(&s2), Some(&p)], ctx())
            .unwrap();
        assert_eq!(y[0].to_f64_vec(), vec![-2., 1., 3., 4., 5., 6.]);
        let bad = Value::i64(&[1, 1], vec![2]).unwrap();
        assert!(r3
            .run(&[Some(&x3), Some(&c2), Some(&s2), Some(&bad)], ctx())
            .is_err());
        let odd = Rotary { dim: 3, ..r3 };
        assert!(odd
            .run(&[Some(&x3), Some(&c2), Some(&s2), Some(&p)], ctx())
            .is_err());
        let e = Value::f32(&[0, 1, 1, 6], vec![]).unwrap();
        let ce = Value::f32(&[0, 1, 3], vec![]).unwrap();
        let full = Rotary {
            interleaved: false,
            dim: 0,
            num_heads: None,
        };
        assert_eq!(
            full.run(&[Some(&e), Some(&ce), Some(&ce)], ctx()).unwrap()[0].shape(),
            &[0, 1, 1, 6]
        );
    }
}
