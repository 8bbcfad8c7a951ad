//! Upsample (opsets 7-9): every axis scaled by its factor (an attribute in opsets 7-8, input 1
//! from opset 9), output length `floor(len * scale)`, with asymmetric coordinates
//! (`x_in = x_out / scale`, as ONNX Runtime). Nearest on every element type (the input index
//! rounded down); linear on floats, separable along each scaled axis, in f64. Written here
//! rather than on [`super::Resize`], which only scales the two trailing axes of f32 inputs.
use super::indexing::{next_index, strides, with_slice};
use super::operator::Operator;
use super::typed::{input, FLOATS};
use super::{Ctx, Op};
use crate::onnx::registry::{NodeCtx, Registry};
use crate::{map_array, Elem, Result, Value};
use ndarray::{ArrayD, Axis, IxDyn};
use std::sync::Arc;

/// An Upsample node: its mode and, before opset 9, its scales.
#[derive(Clone, Debug)]
pub struct Upsample {
    linear: bool,
    scales: Option<Vec<f32>>,
}

/// Input index of each output index along an axis (nearest).
fn nearest_taps(out: usize, inp: usize, scale: f32) -> Vec<usize> {
    (0..out)
        .map(|o| ((o as f32 / scale).floor().max(0.0) as usize).min(inp.saturating_sub(1)))
        .collect()
}

fn nearest<T: Elem>(a: &ArrayD<T>, out_shape: &[usize], scales: &[f32]) -> Result<ArrayD<T>> {
    let shape = a.shape();
    let taps: Vec<Vec<usize>> = (0..shape.len())
        .map(|d| nearest_taps(out_shape[d], shape[d], scales[d]))
        .collect();
    let st = strides(shape);
    let n: usize = out_shape.iter().product();
    let data = with_slice(a, |src| {
        let mut out = Vec::with_capacity(n);
        if n == 0 {
            return out;
        }
        let mut idx = vec![0usize; out_shape.len()];
        loop {
            let off: usize = idx
                .iter()
                .enumerate()
                .map(|(d, &i)| taps[d][i] * st[d])
                .sum();
            out.push(src[off]);
            if !next_index(&mut idx, out_shape) {
                break;
            }
        }
        out
    });
    Ok(ArrayD::from_shape_vec(IxDyn(out_shape), data)?)
}

/// Linear interpolation along each axis whose length changes.
fn linear(x: &Value, out_shape: &[usize], scales: &[f32]) -> ArrayD<f64> {
    let mut cur = ArrayD::from_shape_vec(IxDyn(x.shape()), x.to_f64_vec())
        .unwrap_or_else(|_| ArrayD::zeros(IxDyn(x.shape())));
    for (d, &out) in out_shape.iter().enumerate() {
        let inp = cur.shape()[d];
        if out == inp && scales[d] == 1.0 {
            continue;
        }
        let mut shape = cur.shape().to_vec();
        shape[d] = out;
        let mut next = ArrayD::<f64>::zeros(IxDyn(&shape));
        if inp > 0 {
            for o in 0..out {
                let s = (o as f64 / scales[d] as f64).clamp(0.0, (inp - 1) as f64);
                let lo = s.floor() as usize;
                let hi = (lo + 1).min(inp - 1);
                let f = s - lo as f64;
                let (a, b) = (cur.index_axis(Axis(d), lo), cur.index_axis(Axis(d), hi));
                next.index_axis_mut(Axis(d), o)
                    .assign(&(&a * (1.0 - f) + &b * f));
            }
        }
        cur = next;
    }
    cur
}

impl Operator for Upsample {
    fn name(&self) -> &'static str {
        "Upsample"
    }

    fn run(&self, inputs: &[Option<&Value>], ctx: Ctx) -> Result<Vec<Value>> {
        let x = input(inputs, 0, if self.linear { &FLOATS } else { &[] }, ctx)?;
        let scales: Vec<f32> = match &self.scales {
            Some(s) => s.clone(),
            None => {
                let s = input(inputs, 1, &FLOATS, ctx)?;
                s.to_f64_vec().iter().map(|&v| v as f32).collect()
            }
        };
        let s = x.shape();
        if scales.len() != s.len() {
            return Err(ctx.err(format!(
                "{} scales for an input of rank {}",
                scales.len(),
                s.len()
            )));
        }
        if !scales.iter().all(|v| v.is_finite() && *v > 0.0) {
            return Err(ctx.err(format!("scales {scales:?} must be positive and finite")));
        }
        // In f32, as ONNX Runtime; an overflow to inf saturates and is refused.
        let wide: Vec<u128> = s
            .iter()
            .zip(&scales)
            .map(|(&d, &k)| (d as f32 * k).floor() as u128)
            .collect();
        let out_shape = ctx.sized_wide("output", &wide)?;
        let out = if self.linear {
            Value::F64(linear(x, &out_shape, &scales)).cast(x.dtype())
        } else {
            map_array!(x, a => nearest(a, &out_shape, &scales)?)
        };
        Ok(vec![out])
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

fn build(n: &NodeCtx) -> Result<Op> {
    let from_input = n.opset >= 9;
    let a = if from_input {
        n.arity((2, 2), (1, 1))?;
        n.attrs(&["mode"])?
    } else {
        n.arity((1, 1), (1, 1))?;
        n.attrs(&["mode", "scales"])?
    };
    let linear = match a.string("mode", "nearest").as_str() {
        "nearest" => false,
        "linear" | "bilinear" => true,
        other => return Err(a.unsupported(format!("mode = '{other}'"))),
    };
    let scales = if from_input {
        None
    } else {
        let raw = a
            .raw("scales")
            .ok_or_else(|| n.err("the scales attribute is missing"))?;
        Some(raw.floats.clone())
    };
    Ok(Op::Dyn(Arc::new(Upsample { linear, scales })))
}

/// Registers the ops of this file.
pub(crate) fn register(r: &mut Registry) {
    r.add("", "Upsample", 7, build);
    r.add("", "Upsample", 9, build);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DType;

    fn ctx() -> Ctx<'static> {
        Ctx {
            node: "n",
            op: "Upsample",
            arena: None,
        }
    }

    fn up(linear: bool, x: &Value, scales: &[f32]) -> Result<Value> {
        let op = Upsample {
            linear,
            scales: None,
        };
        let s = Value::f32(&[scales.len()], scales.to_vec()).unwrap();
        Ok(op.run(&[Some(x), Some(&s)], ctx())?.remove(0))
    }

    #[test]
    fn nearest_repeats_on_any_type_and_rank() {
        let x = Value::from_vec(&[1, 2, 2], vec![1u8, 2, 3, 4]).unwrap();
        let out = up(false, &x, &[1.0, 2.0, 3.0]).unwrap();
        assert_eq!((out.shape(), out.dtype()), (&[1usize, 4, 6][..], DType::U8));
        assert_eq!(
            out.to_i64_vec(),
            vec![1, 1, 1, 2, 2, 2, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 3, 3, 3, 4, 4, 4]
        );
        // Fractional scale: floor(3 * 1.5) = 4, sources floor(o / 1.5) = 0, 0, 1, 2.
        let x = Value::i64(&[3], vec![5, 6, 7]).unwrap();
        assert_eq!(
            up(false, &x, &[1.5]).unwrap().to_i64_vec(),
            vec![5, 5, 6, 7]
        );
        let e = Value::zeros(DType::F32, &[0, 2]);
        assert_eq!(up(false, &e, &[2.0, 2.0]).unwrap().shape(), &[0, 4]);
    }

    #[test]
    fn linear_is_asymmetric_and_clamped() {
        let x = Value::f32(&[1, 2], vec![1.0, 3.0]).unwrap();
        let out = up(true, &x, &[1.0, 2.0]).unwrap();
        assert_eq!(out.to_f64_vec(), vec![1.0, 2.0, 3.0, 3.0]);
        let x = Value::from_vec(&[2, 2], vec![0.0f64, 2.0, 4.0, 6.0]).unwrap();
        let out = up(true, &x, &[2.0, 2.0]).unwrap();
        assert_eq!(out.to_f64_vec()[..4], [0.0, 1.0, 2.0, 2.0]);
        assert_eq!(out.to_f64_vec()[4..8], [2.0, 3.0, 4.0, 4.0]);
        assert!(up(true, &Value::i64(&[2], vec![1, 2]).unwrap(), &[2.0]).is_err());
    }

    #[test]
    fn scale_errors() {
        let x = Value::f32(&[2], vec![1.0, 2.0]).unwrap();
        assert!(up(false, &x, &[2.0, 2.0]).is_err());
        assert!(up(false, &x, &[0.0]).is_err());
        assert!(up(false, &x, &[f32::NAN]).is_err());
        assert!(up(false, &x, &[1e30]).is_err());
        let attr = Upsample {
            linear: false,
            scales: Some(vec![2.0]),
        };
        assert_eq!(
            attr.run(&[Some(&x)], ctx()).unwrap()[0].to_f64_vec(),
            vec![1.0, 1.0, 2.0, 2.0]
        );
    }
}
