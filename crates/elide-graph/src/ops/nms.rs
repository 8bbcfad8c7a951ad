//! NonMaxSuppression: greedy per (batch, class) selection of boxes by descending score
//! (ties: lower box index first), dropping boxes whose IoU with a selected box exceeds
//! `iou_threshold` and (when given) boxes scoring at most `score_threshold`. Output
//! `[n, 3]` int64 rows `(batch, class, box)` in batch, class, selection order.
use super::operator::Operator;
use super::typed::{input, FLOATS};
use super::{Ctx, Op};
use crate::onnx::registry::{NodeCtx, Registry};
use crate::{DType, Result, Value};
use std::sync::Arc;

/// The op: `center_point_box` picks the box format.
#[derive(Clone, Debug)]
pub struct Nms {
    /// Boxes are `[x_center, y_center, w, h]` (else `[y1, x1, y2, x2]`, corners any order).
    center_point_box: bool,
}

/// `(y_min, x_min, y_max, x_max)` of a box.
fn corners(b: &[f64], center: bool) -> (f64, f64, f64, f64) {
    if center {
        let (xc, yc, w, h) = (b[0], b[1], b[2], b[3]);
        (yc - h / 2.0, xc - w / 2.0, yc + h / 2.0, xc + w / 2.0)
    } else {
        (
            b[0].min(b[2]),
            b[1].min(b[3]),
            b[0].max(b[2]),
            b[1].max(b[3]),
        )
    }
}

/// Whether boxes `a` and `b` overlap by more than `thr` (IoU).
fn suppress(a: (f64, f64, f64, f64), b: (f64, f64, f64, f64), thr: f64) -> bool {
    let iw = a.3.min(b.3) - a.1.max(b.1);
    let ih = a.2.min(b.2) - a.0.max(b.0);
    if iw <= 0.0 || ih <= 0.0 {
        return false;
    }
    let inter = iw * ih;
    let area = |r: (f64, f64, f64, f64)| (r.2 - r.0) * (r.3 - r.1);
    let (a1, a2) = (area(a), area(b));
    let union = a1 + a2 - inter;
    if a1 <= 0.0 || a2 <= 0.0 || union <= 0.0 {
        return false;
    }
    inter / union > thr
}

/// The first element of an optional scalar input, if present and non-empty.
fn scalar(inputs: &[Option<&Value>], i: usize, types: &[DType], ctx: Ctx) -> Result<Option<f64>> {
    match inputs.get(i).copied().flatten() {
        None => Ok(None),
        Some(_) => Ok(input(inputs, i, types, ctx)?.to_f64_vec().first().copied()),
    }
}

impl Operator for Nms {
    fn name(&self) -> &'static str {
        "NonMaxSuppression"
    }

    fn run(&self, inputs: &[Option<&Value>], ctx: Ctx) -> Result<Vec<Value>> {
        let boxes = input(inputs, 0, &FLOATS, ctx)?;
        let scores = input(inputs, 1, &FLOATS, ctx)?;
        let max_out = match inputs.get(2).copied().flatten() {
            None => 0,
            Some(_) => input(inputs, 2, &[DType::I64], ctx)?
                .to_i64_vec()
                .first()
                .copied()
                .unwrap_or(0)
                .max(0) as u64,
        };
        let iou = scalar(inputs, 3, &FLOATS, ctx)?.unwrap_or(0.0);
        let score_thr = scalar(inputs, 4, &FLOATS, ctx)?;
        let (bs, ss) = (boxes.shape(), scores.shape());
        if bs.len() != 3 || bs[2] != 4 || ss.len() != 3 || ss[0] != bs[0] || ss[2] != bs[1] {
            return Err(ctx.err(format!(
                "boxes {bs:?} and scores {ss:?}: need [B, N, 4] and [B, C, N]"
            )));
        }
        let (nb, nc, n) = (ss[0], ss[1], ss[2]);
        let bv = boxes.to_f64_vec();
        let sv = scores.to_f64_vec();
        let mut out: Vec<i64> = Vec::new();
        for b in 0..nb {
            let rects: Vec<_> = (0..n)
                .map(|i| {
                    corners(
                        &bv[(b * n + i) * 4..(b * n + i) * 4 + 4],
                        self.center_point_box,
                    )
                })
                .collect();
            for c in 0..nc {
                let sc = &sv[(b * nc + c) * n..(b * nc + c + 1) * n];
                let mut cand: Vec<usize> = (0..n)
                    .filter(|&i| score_thr.is_none_or(|t| sc[i] > t))
                    .collect();
                cand.sort_by(|&i, &j| sc[j].total_cmp(&sc[i]).then(i.cmp(&j)));
                let mut sel: Vec<usize> = Vec::new();
                for i in cand {
                    if sel.len() as u64 >= max_out {
                        break;
                    }
                    if sel.iter().all(|&s| !suppress(rects[i], rects[s], iou)) {
                        sel.push(i);
                        out.extend([b as i64, c as i64, i as i64]);
                    }
                }
            }
        }
        let rows = out.len() / 3;
        Ok(vec![Value::i64(&[rows, 3], out)?])
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

fn build(n: &NodeCtx) -> Result<Op> {
    let a = n.attrs(&["center_point_box"])?;
    n.arity((2, 5), (1, 1))?;
    let center_point_box = match a.int("center_point_box", 0) {
        0 => false,
        1 => true,
        v => return Err(a.unsupported(format!("center_point_box = {v}"))),
    };
    Ok(Op::Dyn(Arc::new(Nms { center_point_box })))
}

/// Registers the ops of this file.
pub(crate) fn register(r: &mut Registry) {
    r.add("", "NonMaxSuppression", 10, build);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Ctx<'static> {
        Ctx {
            node: "n",
            op: "NonMaxSuppression",
            arena: None,
        }
    }

    #[test]
    fn suppresses_overlaps_and_respects_limits() {
        // Three boxes: 0 and 1 overlap heavily, 2 is apart.
        let boxes = Value::f32(
            &[1, 3, 4],
            vec![0., 0., 1., 1., 0., 0.1, 1., 1.1, 0., 10., 1., 11.],
        )
        .unwrap();
        let scores = Value::f32(&[1, 1, 3], vec![0.9, 0.95, 0.3]).unwrap();
        let mo = Value::i64(&[1], vec![3]).unwrap();
        let iou = Value::f32(&[1], vec![0.5]).unwrap();
        let op = Nms {
            center_point_box: false,
        };
        let r = op
            .run(&[Some(&boxes), Some(&scores), Some(&mo), Some(&iou)], ctx())
            .unwrap();
        assert_eq!(r[0].shape(), &[2, 3]);
        assert_eq!(r[0].to_i64_vec(), vec![0, 0, 1, 0, 0, 2]);
        let st = Value::f32(&[1], vec![0.3]).unwrap();
        let r = op
            .run(
                &[
                    Some(&boxes),
                    Some(&scores),
                    Some(&mo),
                    Some(&iou),
                    Some(&st),
                ],
                ctx(),
            )
            .unwrap();
        assert_eq!(r[0].to_i64_vec(), vec![0, 0, 1]);
        // No max_output input: nothing selected.
        let r = op.run(&[Some(&boxes), Some(&scores)], ctx()).unwrap();
        assert_eq!(r[0].shape(), &[0, 3]);
    }

    #[test]
    fn bad_shapes_are_errors() {
        let boxes = Value::f32(&[1, 2, 3], vec![0.; 6]).unwrap();
        let scores = Value::f32(&[1, 1, 2], vec![0.; 2]).unwrap();
        let op = Nms {
            center_point_box: true,
        };
        assert!(op.run(&[Some(&boxes), Some(&scores)], ctx()).is_err());
    }
}
