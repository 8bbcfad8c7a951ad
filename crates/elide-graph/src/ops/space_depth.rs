//! DepthToSpace (DCR and CRD modes) and SpaceToDepth on 4-D NCHW inputs of every element
//! type: each a reshape to 6-D, a transpose and a reshape back.
use super::operator::Operator;
use super::typed::input;
use super::{Ctx, Op};
use crate::onnx::registry::{NodeCtx, Registry};
use crate::{map_array, Result, Value};
use ndarray::{ArrayD, IxDyn};
use std::sync::Arc;

/// Which rearrangement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// DepthToSpace, depth-column-row order (channels split as `[b, b, C / b^2]`).
    Dcr,
    /// DepthToSpace, column-row-depth order (channels split as `[C / b^2, b, b]`).
    Crd,
    /// SpaceToDepth.
    ToDepth,
}

/// DepthToSpace or SpaceToDepth with a block size.
#[derive(Clone, Debug)]
pub struct SpaceDepth {
    mode: Mode,
    block: usize,
}

/// `a` reshaped to `mid`, its axes permuted by `perm`, and reshaped to `out`.
fn rearrange<T: Clone>(
    a: &ArrayD<T>,
    mid: &[usize],
    perm: &[usize],
    out: &[usize],
) -> Result<ArrayD<T>> {
    let m = a
        .as_standard_layout()
        .into_owned()
        .into_shape_with_order(IxDyn(mid))?;
    Ok(m.permuted_axes(IxDyn(perm))
        .as_standard_layout()
        .into_owned()
        .into_shape_with_order(IxDyn(out))?)
}

impl Operator for SpaceDepth {
    fn name(&self) -> &'static str {
        if self.mode == Mode::ToDepth {
            "SpaceToDepth"
        } else {
            "DepthToSpace"
        }
    }

    fn run(&self, inputs: &[Option<&Value>], ctx: Ctx) -> Result<Vec<Value>> {
        let x = input(inputs, 0, &[], ctx)?;
        let &[n, c, h, w] = x.shape() else {
            return Err(ctx.err(format!("input of shape {:?} is not 4-D", x.shape())));
        };
        let b = self.block;
        let (mid, perm, out): (Vec<usize>, [usize; 6], Vec<usize>) = match self.mode {
            Mode::Dcr | Mode::Crd => {
                if c % (b * b) != 0 {
                    return Err(
                        ctx.err(format!("{c} channels do not split into blocks of {b}x{b}"))
                    );
                }
                let c2 = c / (b * b);
                // Wide: an empty input may have any other dims.
                let wide = [n, c2, h, w].map(|d| d as u128);
                let out = ctx.sized_wide(
                    "output",
                    &[wide[0], wide[1], wide[2] * b as u128, wide[3] * b as u128],
                )?;
                if self.mode == Mode::Dcr {
                    (vec![n, b, b, c2, h, w], [0, 3, 4, 1, 5, 2], out)
                } else {
                    (vec![n, c2, b, b, h, w], [0, 1, 4, 2, 5, 3], out)
                }
            }
            Mode::ToDepth => {
                if h % b != 0 || w % b != 0 {
                    return Err(ctx.err(format!("{h}x{w} does not split into blocks of {b}x{b}")));
                }
                let (h2, w2) = (h / b, w / b);
                (
                    vec![n, c, h2, b, w2, b],
                    [0, 3, 5, 1, 2, 4],
                    vec![n, c * b * b, h2, w2],
                )
            }
        };
        Ok(vec![map_array!(x, a => rearrange(a, &mid, &perm, &out)?)])
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

fn build(n: &NodeCtx) -> Result<Op> {
    let to_space = n.node.op_type == "DepthToSpace";
    let a = if to_space {
        n.attrs(&["blocksize", "mode"])?
    } else {
        n.attrs(&["blocksize"])?
    };
    n.arity((1, 1), (1, 1))?;
    let bs = a.int("blocksize", 0);
    // Squared in the channel count: keep it far from overflowing.
    let block = match usize::try_from(bs) {
        Ok(b) if (1..=1 << 16).contains(&b) => b,
        _ => return Err(a.unsupported(format!("blocksize = {bs}"))),
    };
    let mode = if !to_space {
        Mode::ToDepth
    } else {
        match a.string("mode", "DCR").as_str() {
            "DCR" => Mode::Dcr,
            "CRD" => Mode::Crd,
            other => return Err(a.unsupported(format!("mode = '{other}'"))),
        }
    };
    Ok(Op::Dyn(Arc::new(SpaceDepth { mode, block })))
}

/// Registers the ops of this file.
pub(crate) fn register(r: &mut Registry) {
    r.add("", "DepthToSpace", 1, build);
    r.add("", "SpaceToDepth", 1, build);
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

    fn run(mode: Mode, block: usize, x: &Value) -> Result<Value> {
        Ok(SpaceDepth { mode, block }.run(&[Some(x)], ctx())?.remove(0))
    }

    /// Naive DepthToSpace: out[n, c, y, x] by the spec's index formulas.
    fn naive_d2s(x: &[i64], [n, c, h, w]: [usize; 4], b: usize, crd: bool) -> Vec<i64> {
        let c2 = c / (b * b);
        let mut out = vec![];
        for ni in 0..n {
            for ci in 0..c2 {
                for y in 0..h * b {
                    for xx in 0..w * b {
                        let (by, bx) = (y % b, xx % b);
                        let src_c = if crd {
                            ci * b * b + by * b + bx
                        } else {
                            (by * b + bx) * c2 + ci
                        };
                        out.push(x[((ni * c + src_c) * h + y / b) * w + xx / b]);
                    }
                }
            }
        }
        out
    }

    #[test]
    fn depth_to_space_matches_the_naive_formula_and_inverts_space_to_depth() {
        for (shape, b) in [
            ([1, 8, 2, 3], 2),
            ([2, 9, 1, 2], 3),
            ([1, 3, 2, 2], 1),
            ([0, 4, 1, 1], 2),
        ] {
            let len: usize = shape.iter().product();
            let data: Vec<i64> = (0..len as i64).collect();
            let x = Value::i64(&shape, data.clone()).unwrap();
            for (mode, crd) in [(Mode::Dcr, false), (Mode::Crd, true)] {
                let out = run(mode, b, &x).unwrap();
                assert_eq!(
                    out.shape(),
                    &[shape[0], shape[1] / (b * b), shape[2] * b, shape[3] * b]
                );
                assert_eq!(
                    out.to_i64_vec(),
                    naive_d2s(&data, shape, b, crd),
                    "{mode:?} {shape:?}"
                );
                if mode == Mode::Dcr {
                    // SpaceToDepth is DCR's inverse.
                    assert_eq!(run(Mode::ToDepth, b, &out).unwrap(), x);
                }
            }
        }
    }

    #[test]
    fn shape_errors() {
        let x = Value::f32(&[1, 3, 2, 2], vec![0.0; 12]).unwrap();
        assert!(run(Mode::Dcr, 2, &x).is_err());
        assert!(run(Mode::ToDepth, 3, &x).is_err());
        assert!(run(
            Mode::ToDepth,
            2,
            &Value::f32(&[4, 2, 2], vec![0.0; 16]).unwrap()
        )
        .is_err());
        let out = run(Mode::ToDepth, 2, &x).unwrap();
        assert_eq!(
            (out.shape(), out.dtype()),
            (&[1usize, 12, 1, 1][..], crate::DType::F32)
        );
    }
}
