//! The recurrent ops LSTM, GRU and RNN (opsets 7+, `layout` from 14): attributes,
//! input checks, directions (forward, reverse, bidirectional) and the output layouts. The
//! cells themselves are in [`super::rnn_cell`].
//!
//! Inputs: X, W, R, then optional B, sequence_lens (i32), initial_h, initial_c and P (LSTM);
//! outputs Y, Y_h and Y_c (LSTM), each optional. f32 and f64 run natively, f16 and bf16
//! through f32.
use super::operator::Operator;
use super::rnn_cell::{run_direction, Act, Cell, Direction};
use super::typed::{input, FLOATS};
use super::{Ctx, Op};
use crate::onnx::registry::{NodeCtx, Registry};
use crate::{DType, Elem, Result, Value};
use ndarray::{Array2, ArrayD, ArrayView2, Axis, Ix2, Ix3, IxDyn, LinalgScalar};
use std::sync::Arc;

/// An LSTM, GRU or RNN node.
#[derive(Clone, Debug)]
pub struct Recurrent {
    cell: Cell,
    /// Directions in order: `false` forward, `true` reverse.
    dirs: Vec<bool>,
    /// The `hidden_size` attribute, checked against R.
    hidden: Option<usize>,
    /// `cell.acts()` activations per direction.
    acts: Vec<Act>,
    clip: Option<f64>,
    /// `layout = 1`: batch first.
    batch_first: bool,
}

impl Operator for Recurrent {
    fn name(&self) -> &'static str {
        match self.cell {
            Cell::Lstm { .. } => "LSTM",
            Cell::Gru { .. } => "GRU",
            Cell::Rnn => "RNN",
        }
    }

    fn run(&self, inputs: &[Option<&Value>], ctx: Ctx) -> Result<Vec<Value>> {
        let x = input(inputs, 0, &FLOATS, ctx)?;
        let dt = x.dtype();
        let max_in = if matches!(self.cell, Cell::Lstm { .. }) {
            8
        } else {
            6
        };
        if inputs.len() > max_in {
            return Err(ctx.err(format!("{} inputs, at most {max_in}", inputs.len())));
        }
        for (i, v) in inputs.iter().enumerate() {
            if let Some(v) = v {
                if i != 4 && v.dtype() != dt {
                    return Err(ctx.err(format!("input {i} is {}, X is {dt}", v.dtype())));
                }
            }
        }
        match dt {
            DType::F32 => self.run_t::<f32>(inputs, ctx),
            DType::F64 => self.run_t::<f64>(inputs, ctx),
            _ => {
                // f16 / bf16: computed in f32, rounded once at the end.
                let wide: Vec<Option<Value>> = inputs
                    .iter()
                    .enumerate()
                    .map(|(i, v)| {
                        v.map(|v| {
                            if i == 4 {
                                v.clone()
                            } else {
                                v.cast(DType::F32)
                            }
                        })
                    })
                    .collect();
                let refs: Vec<Option<&Value>> = wide.iter().map(|v| v.as_ref()).collect();
                let out = self.run_t::<f32>(&refs, ctx)?;
                Ok(out.iter().map(|v| v.cast(dt)).collect())
            }
        }
    }

    fn macs(&self, inputs: &[&[usize]], _outputs: &[&[usize]]) -> u64 {
        let (Some(x), Some(r)) = (inputs.first(), inputs.get(2)) else {
            return 0;
        };
        if x.len() != 3 || r.len() != 3 {
            return 0;
        }
        let steps = (x[0] * x[1]) as u64;
        (steps * r[0] as u64 * r[1] as u64).saturating_mul((x[2] + r[2]) as u64)
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

impl Recurrent {
    fn run_t<T: Elem + LinalgScalar>(
        &self,
        inputs: &[Option<&Value>],
        ctx: Ctx,
    ) -> Result<Vec<Value>> {
        let arr = |i: usize| -> Result<Option<&ArrayD<T>>> {
            match inputs.get(i).copied().flatten() {
                None => Ok(None),
                Some(v) => T::view(v)
                    .map(Some)
                    .ok_or_else(|| ctx.err(format!("input {i} is {}", v.dtype()))),
            }
        };
        let need = |i: usize| arr(i)?.ok_or_else(|| ctx.err(format!("input {i} is missing")));
        let x = need(0)?;
        let (w, r) = (need(1)?, need(2)?);
        let dims3 = |a: &ArrayD<T>, what: &str| -> Result<[usize; 3]> {
            match a.shape() {
                &[p, q, s] => Ok([p, q, s]),
                s => Err(ctx.err(format!("{what} has shape {s:?}, expected 3-D"))),
            }
        };
        let [a0, a1, isz] = dims3(x, "X")?;
        let (seq, batch) = if self.batch_first { (a1, a0) } else { (a0, a1) };
        let nd = self.dirs.len();
        let g = self.cell.gates();
        let [rd, rg, hs] = dims3(r, "R")?;
        if let Some(h) = self.hidden {
            if h != hs {
                return Err(ctx.err(format!("hidden_size {h} but R has shape {:?}", r.shape())));
            }
        }
        let gh = g
            .checked_mul(hs)
            .ok_or_else(|| ctx.err("hidden size overflows"))?;
        if rd != nd || rg != gh {
            return Err(ctx.err(format!(
                "R has shape {:?}, expected [{nd}, {gh}, {hs}]",
                r.shape()
            )));
        }
        if w.shape() != [nd, gh, isz] {
            return Err(ctx.err(format!(
                "W has shape {:?}, expected [{nd}, {gh}, {isz}]",
                w.shape()
            )));
        }
        let rows = seq
            .checked_mul(batch)
            .ok_or_else(|| ctx.err("X too large"))?;
        ctx.sized("output", &[seq, nd, batch, hs])?;
        ctx.sized("input projection", &[rows, gh])?;
        // The per-step buffers: an empty sequence must not let a huge batch through.
        ctx.sized("recurrent state", &[nd, batch, gh])?;
        let b = arr(3)?;
        if let Some(b) = b {
            if b.shape() != [nd, 2 * gh] {
                return Err(ctx.err(format!(
                    "B has shape {:?}, expected [{nd}, {}]",
                    b.shape(),
                    2 * gh
                )));
            }
        }
        let lens = self.lens(inputs, seq, batch, ctx)?;
        let state_shape = if self.batch_first {
            [batch, nd, hs]
        } else {
            [nd, batch, hs]
        };
        let state = |i: usize, name: &str| -> Result<Option<&ArrayD<T>>> {
            let s = arr(i)?;
            if let Some(s) = s {
                if s.shape() != state_shape {
                    return Err(ctx.err(format!(
                        "{name} has shape {:?}, expected {state_shape:?}",
                        s.shape()
                    )));
                }
            }
            Ok(s)
        };
        let is_lstm = matches!(self.cell, Cell::Lstm { .. });
        let h0 = state(5, "initial_h")?;
        let c0 = if is_lstm {
            state(6, "initial_c")?
        } else {
            None
        };
        let p = if is_lstm { arr(7)? } else { None };
        if let Some(p) = p {
            if p.shape() != [nd, 3 * hs] {
                return Err(ctx.err(format!(
                    "P has shape {:?}, expected [{nd}, {}]",
                    p.shape(),
                    3 * hs
                )));
            }
        }
        // X as [seq * batch, input], row t * batch + b.
        let x3 = x
            .view()
            .into_dimensionality::<Ix3>()
            .map_err(|e| ctx.err(e.to_string()))?;
        let x3 = if self.batch_first {
            x3.permuted_axes([1, 0, 2])
        } else {
            x3
        };
        let x2 = x3
            .as_standard_layout()
            .into_owned()
            .into_shape_with_order((rows, isz))
            .map_err(|e| ctx.err(e.to_string()))?;
        let state_of = |s: Option<&ArrayD<T>>, d: usize| -> Result<Array2<T>> {
            Ok(match s {
                None => Array2::zeros((batch, hs)),
                Some(s) => {
                    let ax = if self.batch_first { 1 } else { 0 };
                    to2(s.index_axis(Axis(ax), d), ctx)?.to_owned()
                }
            })
        };
        let row = |a: Option<&ArrayD<T>>, d: usize, from: usize, len: usize| -> Vec<f64> {
            match a {
                None => vec![0.0; len],
                Some(a) => a
                    .index_axis(Axis(0), d)
                    .iter()
                    .skip(from)
                    .take(len)
                    .map(|v| v.to_f64())
                    .collect(),
            }
        };
        let na = self.cell.acts();
        let mut y = vec![T::zero(); seq * nd * batch * hs];
        let mut yh = vec![T::zero(); nd * batch * hs];
        let mut yc = vec![T::zero(); nd * batch * hs];
        for (d, &reverse) in self.dirs.iter().enumerate() {
            let dir = Direction {
                cell: self.cell,
                reverse,
                w: to2(w.index_axis(Axis(0), d), ctx)?,
                r: to2(r.index_axis(Axis(0), d), ctx)?,
                wb: row(b, d, 0, gh),
                rb: row(b, d, gh, gh),
                p: row(p, d, 0, 3 * hs),
                acts: self.acts[d * na..(d + 1) * na].to_vec(),
                clip: self.clip,
            };
            let out = run_direction(
                &dir,
                x2.view(),
                &lens,
                state_of(h0, d)?,
                state_of(c0, d)?,
                seq,
            );
            for t in 0..seq {
                for bi in 0..batch {
                    let at = if self.batch_first {
                        ((bi * seq + t) * nd + d) * hs
                    } else {
                        ((t * nd + d) * batch + bi) * hs
                    };
                    let from = (t * batch + bi) * hs;
                    y[at..at + hs].copy_from_slice(&out.y[from..from + hs]);
                }
            }
            for bi in 0..batch {
                let at = if self.batch_first {
                    (bi * nd + d) * hs
                } else {
                    (d * batch + bi) * hs
                };
                for j in 0..hs {
                    yh[at + j] = out.h[(bi, j)];
                    yc[at + j] = out.c[(bi, j)];
                }
            }
        }
        let y_shape = if self.batch_first {
            [batch, seq, nd, hs]
        } else {
            [seq, nd, batch, hs]
        };
        let wrap = |shape: &[usize], v: Vec<T>| -> Result<Value> {
            ArrayD::from_shape_vec(IxDyn(shape), v)
                .map(T::wrap)
                .map_err(|e| ctx.err(e.to_string()))
        };
        let mut outs = vec![wrap(&y_shape, y)?, wrap(&state_shape, yh)?];
        if is_lstm {
            outs.push(wrap(&state_shape, yc)?);
        }
        Ok(outs)
    }

    /// Each batch entry's sequence length (all `seq` when sequence_lens is absent).
    fn lens(
        &self,
        inputs: &[Option<&Value>],
        seq: usize,
        batch: usize,
        ctx: Ctx,
    ) -> Result<Vec<usize>> {
        let Some(v) = inputs.get(4).copied().flatten() else {
            return Ok(vec![seq; batch]);
        };
        if v.dtype() != DType::I32 {
            return Err(ctx.err(format!("sequence_lens is {}, expected int32", v.dtype())));
        }
        if v.shape() != [batch] {
            return Err(ctx.err(format!(
                "sequence_lens has shape {:?}, expected [{batch}]",
                v.shape()
            )));
        }
        v.to_i64_vec()
            .into_iter()
            .map(|l| match usize::try_from(l) {
                Ok(l) if l <= seq => Ok(l),
                _ => Err(ctx.err(format!("sequence length {l} outside 0..={seq}"))),
            })
            .collect()
    }
}

/// A 2-D view of a view known to be 2-D.
fn to2<'a, T>(a: ndarray::ArrayViewD<'a, T>, ctx: Ctx) -> Result<ArrayView2<'a, T>> {
    a.into_dimensionality::<Ix2>()
        .map_err(|e| ctx.err(e.to_string()))
}

fn build(n: &NodeCtx) -> Result<Op> {
    let op = n.node.op_type.as_str();
    let (cell_attr, max_in, max_out) = match op {
        "LSTM" => (Some("input_forget"), 8, 3),
        "GRU" => (Some("linear_before_reset"), 6, 2),
        _ => (None, 6, 2),
    };
    let mut known = vec![
        "activation_alpha",
        "activation_beta",
        "activations",
        "clip",
        "direction",
        "hidden_size",
    ];
    known.extend(cell_attr);
    if n.opset >= 14 {
        known.push("layout");
    }
    let a = n.attrs(&known)?;
    n.arity((3, max_in), (0, max_out))?;
    let flag = |name: &str| -> Result<bool> {
        match a.int(name, 0) {
            0 => Ok(false),
            1 => Ok(true),
            v => Err(a.unsupported(format!("{name} = {v}"))),
        }
    };
    let cell = match op {
        "LSTM" => Cell::Lstm {
            input_forget: flag("input_forget")?,
        },
        "GRU" => Cell::Gru {
            linear_before_reset: flag("linear_before_reset")?,
        },
        _ => Cell::Rnn,
    };
    let dirs = match a.string("direction", "forward").as_str() {
        "forward" => vec![false],
        "reverse" => vec![true],
        "bidirectional" => vec![false, true],
        d => return Err(a.unsupported(format!("direction '{d}'"))),
    };
    let hidden = match a.raw("hidden_size") {
        None => None,
        Some(h) => Some(
            usize::try_from(h.i)
                .ok()
                .filter(|&h| h > 0)
                .ok_or_else(|| a.unsupported(format!("hidden_size = {}", h.i)))?,
        ),
    };
    let clip = match a.raw("clip") {
        None => None,
        Some(c) if c.f > 0.0 => Some(c.f as f64),
        Some(c) => return Err(a.unsupported(format!("clip = {} (must be positive)", c.f))),
    };
    let na = cell.acts();
    let defaults: &[&str] = match cell {
        Cell::Lstm { .. } => &["Sigmoid", "Tanh", "Tanh"],
        Cell::Gru { .. } => &["Sigmoid", "Tanh"],
        Cell::Rnn => &["Tanh"],
    };
    let names: Vec<String> = match a.raw("activations") {
        Some(s) => s
            .strings
            .iter()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .collect(),
        None => defaults.iter().map(|s| s.to_string()).collect(),
    };
    let names: Vec<String> = if names.len() == na * dirs.len() {
        names
    } else if names.len() == na {
        // One set for both directions.
        names
            .iter()
            .cycle()
            .take(na * dirs.len())
            .cloned()
            .collect()
    } else {
        return Err(a.unsupported(format!(
            "{} activations; this node needs {}",
            names.len(),
            na * dirs.len()
        )));
    };
    // Alphas and betas are consumed in order by the functions that take them.
    let floats = |name: &str| a.raw(name).map(|v| v.floats.clone()).unwrap_or_default();
    let (alphas, betas) = (floats("activation_alpha"), floats("activation_beta"));
    let (mut ai, mut bi) = (alphas.iter(), betas.iter());
    let mut acts = Vec::with_capacity(names.len());
    for name in &names {
        let act = Act::parse(name, &mut || ai.next().map(|&v| v as f64), &mut || {
            bi.next().map(|&v| v as f64)
        })
        .ok_or_else(|| a.unsupported(format!("activation '{name}'")))?;
        acts.push(act);
    }
    if ai.next().is_some() || bi.next().is_some() {
        return Err(a.unsupported(format!(
            "activation_alpha {alphas:?} / activation_beta {betas:?}: more values than \
             the activations {names:?} take"
        )));
    }
    let batch_first = match a.int("layout", 0) {
        0 => false,
        1 => true,
        l => return Err(a.unsupported(format!("layout = {l}"))),
    };
    Ok(Op::Dyn(Arc::new(Recurrent {
        cell,
        dirs,
        hidden,
        acts,
        clip,
        batch_first,
    })))
}

/// Registers LSTM, GRU and RNN (one builder: `layout` is read from opset 14).
pub(crate) fn register(r: &mut Registry) {
    for op in ["LSTM", "GRU", "RNN"] {
        r.add("", op, 7, build);
    }
}

#[cfg(test)]
#[path = "rnn_tests.rs"]
mod tests;
