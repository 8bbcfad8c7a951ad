//! Control flow: If (run one of two subgraphs) and Loop (run a body graph while a trip count
//! and a condition allow, carrying values and stacking scan outputs).
//!
//! Subgraphs are imported as graphs of their own whose inputs are their declared inputs
//! followed by the enclosing values they read (see `onnx::control`); the node passes those
//! values as its extra inputs, in the same order.
use super::operator::Operator;
use super::{Ctx, Op};
use crate::graph::Graph;
use crate::onnx::registry::{NodeCtx, Registry};
use crate::{GraphError, Result, Value};
use std::sync::Arc;

/// A subgraph run as a function: errors inside it name the node that runs it.
fn call(g: &Graph, inputs: Vec<Value>, ctx: Ctx) -> Result<Vec<Value>> {
    g.run(inputs)
        .map_err(|e| ctx.err(format!("in its subgraph: {e}")))
}

/// The present inputs from `from` on, cloned (a subgraph takes its inputs by value).
fn owned(inputs: &[Option<&Value>], from: usize, ctx: Ctx) -> Result<Vec<Value>> {
    (from..inputs.len())
        .map(|i| ctx.input(inputs, i).cloned())
        .collect()
}

/// `If`: input 0 (a one-element bool) picks `then` or `otherwise`.
#[derive(Clone, Debug)]
pub struct If {
    then: Graph,
    otherwise: Graph,
}

impl Operator for If {
    fn name(&self) -> &'static str {
        "If"
    }

    fn run(&self, inputs: &[Option<&Value>], ctx: Ctx) -> Result<Vec<Value>> {
        let cond = ctx.input(inputs, 0)?;
        if cond.len() != 1 {
            return Err(ctx.err(format!(
                "the condition has shape {:?}; it must hold one element",
                cond.shape()
            )));
        }
        let g = if cond.to_i64_vec()[0] != 0 {
            &self.then
        } else {
            &self.otherwise
        };
        call(g, owned(inputs, 1, ctx)?, ctx)
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// `Loop`: inputs `M` (trip count, optional), `cond` (optional), the loop-carried values, then
/// the captured enclosing values. The body takes `(i, cond, carried..., captured...)` and
/// returns `(cond, carried..., scan outputs...)`.
#[derive(Clone, Debug)]
pub struct Loop {
    body: Graph,
    /// Number of loop-carried values.
    carried: usize,
}

impl Operator for Loop {
    fn name(&self) -> &'static str {
        "Loop"
    }

    fn run(&self, inputs: &[Option<&Value>], ctx: Ctx) -> Result<Vec<Value>> {
        let scalar = |i: usize| -> Result<Option<i64>> {
            match inputs.get(i).copied().flatten() {
                None => Ok(None),
                Some(v) if v.len() == 1 => Ok(Some(v.to_i64_vec()[0])),
                Some(v) => Err(ctx.err(format!(
                    "input {i} has shape {:?}, not one element",
                    v.shape()
                ))),
            }
        };
        let (trip, mut cond) = (scalar(0)?, scalar(1)?.map(|c| c != 0));
        if trip.is_none() && cond.is_none() {
            return Err(ctx.err("neither a trip count nor a condition: the loop would not end"));
        }
        let end = 2 + self.carried;
        let mut carried: Vec<Value> = (2..end)
            .map(|i| ctx.input(inputs, i).cloned())
            .collect::<Result<_>>()?;
        let captured = owned(inputs, end, ctx)?;
        let mut scans: Vec<Vec<Value>> = Vec::new();
        let mut i = 0i64;
        while trip.is_none_or(|m| i < m) && cond.unwrap_or(true) {
            // Scalars, or one-element 1-D tensors where the body declares them so (as
            // exporters such as paddle2onnx do).
            let shape = |k: usize| -> &[usize] {
                match self.body.inputs.get(k).map(|inp| inp.shape.as_slice()) {
                    Some([Some(1)]) => &[1],
                    _ => &[],
                }
            };
            let mut args = vec![
                Value::i64(shape(0), vec![i])?,
                Value::from_vec(shape(1), vec![cond.unwrap_or(true)])?,
            ];
            args.extend(carried.iter().cloned());
            args.extend(captured.iter().cloned());
            let mut outs = call(&self.body, args, ctx)?;
            if outs.len() < 1 + self.carried {
                return Err(ctx.err(format!(
                    "the body returned {} values; it must return the condition and {} carried",
                    outs.len(),
                    self.carried
                )));
            }
            let rest = outs.split_off(1 + self.carried);
            let c = &outs[0];
            if c.len() != 1 {
                return Err(ctx.err("the body's condition must hold one element"));
            }
            if cond.is_some() {
                cond = Some(c.to_i64_vec()[0] != 0);
            }
            carried = outs.split_off(1);
            if scans.is_empty() {
                scans = vec![Vec::new(); rest.len()];
            }
            for (s, v) in scans.iter_mut().zip(rest) {
                s.push(v);
            }
            i += 1;
        }
        let mut out = carried;
        for (k, s) in scans.into_iter().enumerate() {
            out.push(stack(&s, ctx).map_err(|e| ctx.err(format!("scan output {k}: {e}")))?);
        }
        Ok(out)
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// Values of one shape and type stacked along a new leading axis.
fn stack(vals: &[Value], ctx: Ctx) -> Result<Value> {
    let first = &vals[0];
    if let Some(v) = vals
        .iter()
        .find(|v| v.shape() != first.shape() || v.dtype() != first.dtype())
    {
        return Err(ctx.err(format!(
            "iterations produced {} {:?} and {} {:?}",
            first.dtype(),
            first.shape(),
            v.dtype(),
            v.shape()
        )));
    }
    let mut shape = vec![vals.len()];
    shape.extend_from_slice(first.shape());
    ctx.sized("scan output", &shape)?;
    fn join<T: crate::Elem>(vals: &[Value], shape: &[usize]) -> Result<Value> {
        let data: Vec<T> = vals
            .iter()
            .filter_map(|v| T::view(v))
            .flat_map(|a| a.iter().copied())
            .collect();
        Value::from_vec(shape, data)
    }
    crate::with_array!(first, a => {
        fn hint<T: crate::Elem>(_: &ndarray::ArrayD<T>, vals: &[Value], shape: &[usize]) -> Result<Value> {
            join::<T>(vals, shape)
        }
        hint(a, vals, &shape)
    })
}

/// A graph attribute's subgraph, imported with the node's captured names.
fn subgraph(n: &NodeCtx, attr: &str, captures: &[String]) -> Result<Graph> {
    let g = n
        .node
        .attribute
        .iter()
        .find(|a| a.name == attr)
        .and_then(|a| a.g.as_ref())
        .ok_or_else(|| n.err(format!("the '{attr}' subgraph is missing")))?;
    crate::onnx::import_graph(g, n.opsets, captures).map_err(|e| match e {
        GraphError::Unsupported { .. } | GraphError::NotSupported(_) => e,
        other => n.err(format!("in '{attr}': {other}")),
    })
}

fn build_if(n: &NodeCtx) -> Result<Op> {
    n.attrs(&["then_branch", "else_branch"])?;
    let own = n.node.input.len() - n.captures.len();
    if own != 1 {
        return Err(n.err(format!("{own} inputs; If takes one (the condition)")));
    }
    let caps = n.captures;
    Ok(Op::Dyn(Arc::new(If {
        then: subgraph(n, "then_branch", caps)?,
        otherwise: subgraph(n, "else_branch", caps)?,
    })))
}

fn build_loop(n: &NodeCtx) -> Result<Op> {
    n.attrs(&["body"])?;
    let own = n.node.input.len() - n.captures.len();
    if own < 2 {
        return Err(n.err("Loop takes a trip count and a condition (either may be empty)"));
    }
    let caps = n.captures;
    let body = subgraph(n, "body", caps)?;
    let carried = own - 2;
    if body.inputs.len() != 2 + carried + caps.len() {
        return Err(n.err(format!(
            "the body takes {} inputs; the node gives 2 + {carried} carried",
            body.inputs.len() - caps.len()
        )));
    }
    Ok(Op::Dyn(Arc::new(Loop { body, carried })))
}

/// Registers If and Loop.
pub(crate) fn register(r: &mut Registry) {
    r.add("", "If", 1, build_if);
    r.add("", "Loop", 1, build_loop);
}
