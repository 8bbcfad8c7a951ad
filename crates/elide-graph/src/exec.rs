//! Running a graph: values live in slots that are freed after their last reader (their
//! buffers go to the graph's arena for later outputs), conv inputs are moved into the
//! kernels' tensors and back rather than copied, and element-wise ops overwrite an input
//! that dies with them.
use crate::graph::Graph;
use crate::ops::{eval, Ctx, Op};
use crate::{GraphError, Result, Value};

impl Graph {
    /// Runs the graph on `inputs` (in the model's input order); returns the outputs in the
    /// model's output order.
    pub fn run(&self, inputs: Vec<Value>) -> Result<Vec<Value>> {
        self.run_with(inputs, |_, _| {})
    }

    /// [`Graph::run`], calling `observe(node index, outputs)` after every node (for
    /// `inspect`, profiling and tests).
    pub fn run_with(
        &self,
        inputs: Vec<Value>,
        mut observe: impl FnMut(usize, &[&Value]),
    ) -> Result<Vec<Value>> {
        let mut slots: Vec<Option<Value>> = vec![None; self.names.len()];
        self.check_inputs(&inputs)?;
        // The pool's other workers stay awake between the nodes' parallel sections.
        let _spin = elide_kernels::threads::Spinner::start();
        for (inp, v) in self.inputs.iter().zip(inputs) {
            slots[inp.id] = Some(v);
        }
        let last = self.last_use();
        for (k, node) in self.nodes.iter().enumerate() {
            let ctx = Ctx {
                node: &node.name,
                op: &node.op_type,
                arena: Some(&self.arena),
            };
            let outs = self.eval_node(k, &mut slots, &last, ctx)?;
            {
                let refs: Vec<&Value> = outs.iter().collect();
                observe(k, &refs);
            }
            self.store_outputs(k, outs, &mut slots, &last, ctx)?;
        }
        self.take_outputs(&mut slots)
    }

    /// Runs node `k` on the values in `slots`. Convs move their input into the kernels and
    /// back (no copy); element-wise ops write into an input this node reads last when it
    /// has the output's shape; other outputs come from the arena.
    pub(crate) fn eval_node(
        &self,
        k: usize,
        slots: &mut [Option<Value>],
        last: &[Option<usize>],
        ctx: Ctx,
    ) -> Result<Vec<Value>> {
        let node = &self.nodes[k];
        let first = node.inputs.first().copied().flatten();
        match (&node.op, first) {
            (Op::Conv(c), Some(id)) if slots[id].is_some() => {
                let Some(Value::F32(x)) = slots[id].take() else {
                    return Err(ctx.err("conv input is not f32"));
                };
                let (y, back) = c.run_owned(x, ctx)?;
                slots[id] = Some(Value::F32(back));
                return Ok(vec![y]);
            }
            (Op::Unary(u), Some(id)) if self.dies_at(id, k, slots, last) => {
                if let Some(Value::F32(mut x)) = slots[id].take() {
                    if let Some(xs) = x.as_slice_mut() {
                        u.apply_slice(xs);
                        return Ok(vec![Value::F32(x)]);
                    }
                    slots[id] = Some(Value::F32(x));
                } else {
                    return Err(ctx.err("input 0 is not f32"));
                }
            }
            // Identity (and Dropout) of a dying input passes it on.
            (Op::Identity, Some(id)) if self.dies_at(id, k, slots, last) => {
                if let Some(v) = slots[id].take() {
                    return Ok(vec![v]);
                }
            }
            // Reshapes of a dying input keep its buffer.
            (Op::Reshape { allowzero }, Some(id)) if self.dies_at(id, k, slots, last) => {
                let shape = {
                    let ins = self.node_inputs(node, slots, ctx)?;
                    crate::ops::reshape_target(&ins, *allowzero, ctx)?
                };
                if let Some(Value::F32(x)) = slots[id].take() {
                    if x.is_standard_layout() {
                        return Ok(vec![Value::F32(x.into_shape_with_order(shape)?)]);
                    }
                    slots[id] = Some(Value::F32(x));
                }
            }
            (Op::Binary(b), Some(ia)) => {
                if let Some(v) = self.binary_in_place(*b, k, ia, slots, last) {
                    return Ok(vec![v]);
                }
            }
            _ => {}
        }
        let ins = self.node_inputs(node, slots, ctx)?;
        eval(&node.op, &ins, ctx)
    }

    /// Whether value `id` is a runtime value that node `k` reads last (so it may be consumed).
    pub(crate) fn dies_at(
        &self,
        id: usize,
        k: usize,
        slots: &[Option<Value>],
        last: &[Option<usize>],
    ) -> bool {
        last[id] == Some(k)
            && matches!(slots[id], Some(Value::F32(_)))
            && !self.outputs.contains(&id)
            && self.nodes[k]
                .inputs
                .iter()
                .flatten()
                .filter(|&&i| i == id)
                .count()
                == 1
    }

    /// A binary op computed into whichever f32 operand dies here and has the output's shape.
    fn binary_in_place(
        &self,
        op: crate::ops::Binary,
        k: usize,
        ia: usize,
        slots: &mut [Option<Value>],
        last: &[Option<usize>],
    ) -> Option<Value> {
        let ib = self.nodes[k].inputs.get(1).copied().flatten()?;
        for (mine, theirs, left) in [(ia, ib, true), (ib, ia, false)] {
            if !self.dies_at(mine, k, slots, last) {
                continue;
            }
            let Some(Value::F32(mut x)) = slots[mine].take() else {
                continue;
            };
            let done = match slots[theirs]
                .as_ref()
                .or_else(|| self.constants.get(&theirs))
            {
                Some(Value::F32(y)) if left => op.assign_left(&mut x, y),
                Some(Value::F32(y)) => op.assign_right(y, &mut x),
                _ => false,
            };
            if done {
                return Some(Value::F32(x));
            }
            slots[mine] = Some(Value::F32(x));
        }
        None
    }

    /// Stores node `k`'s outputs in their slots and frees the inputs it read last.
    pub(crate) fn store_outputs(
        &self,
        k: usize,
        outs: Vec<Value>,
        slots: &mut [Option<Value>],
        last: &[Option<usize>],
        ctx: Ctx,
    ) -> Result<()> {
        let node = &self.nodes[k];
        if outs.len() < node.outputs.len() {
            return Err(ctx.err(format!(
                "produced {} of {} outputs",
                outs.len(),
                node.outputs.len()
            )));
        }
        for (id, v) in node.outputs.iter().zip(outs) {
            slots[*id] = Some(v);
        }
        for id in node.inputs.iter().flatten() {
            if last[*id] == Some(k) && !self.outputs.contains(id) {
                if let Some(v) = slots[*id].take() {
                    self.arena.recycle(v);
                }
            }
        }
        Ok(())
    }

    /// The graph's outputs, moved out of their slots (or copied from constants).
    pub(crate) fn take_outputs(&self, slots: &mut [Option<Value>]) -> Result<Vec<Value>> {
        self.outputs
            .iter()
            .map(|&id| {
                slots[id]
                    .take()
                    .or_else(|| self.constants.get(&id).cloned())
                    .ok_or_else(|| {
                        GraphError::Model(format!("output '{}' was not computed", self.names[id]))
                    })
            })
            .collect()
    }

    /// A node's inputs: runtime values from `slots`, else constants; `None` for omitted
    /// optional inputs. An input nobody computed is an error naming it.
    pub(crate) fn node_inputs<'v>(
        &'v self,
        node: &crate::graph::Node,
        slots: &'v [Option<Value>],
        ctx: Ctx,
    ) -> Result<Vec<Option<&'v Value>>> {
        node.inputs
            .iter()
            .map(|i| match i {
                None => Ok(None),
                Some(id) => slots[*id]
                    .as_ref()
                    .or_else(|| self.constants.get(id))
                    .map(Some)
                    .ok_or_else(|| {
                        ctx.err(format!(
                            "input '{}' has no value (it is never computed)",
                            self.names[*id]
                        ))
                    }),
            })
            .collect()
    }

    /// Input count, declared element type and static dims, finiteness.
    pub(crate) fn check_inputs(&self, inputs: &[Value]) -> Result<()> {
        if inputs.len() != self.inputs.len() {
            return Err(GraphError::Model(format!(
                "the model takes {} inputs, got {}",
                self.inputs.len(),
                inputs.len()
            )));
        }
        for (inp, v) in self.inputs.iter().zip(inputs) {
            let name = &self.names[inp.id];
            let shape = v.shape();
            let fits = inp.shape.is_empty()
                || (inp.shape.len() == shape.len()
                    && inp
                        .shape
                        .iter()
                        .zip(shape)
                        .all(|(d, &s)| d.is_none_or(|d| d == s)));
            if !fits {
                return Err(GraphError::Model(format!(
                    "input '{name}' has shape {shape:?}, the model declares {:?} (None = any)",
                    inp.shape
                )));
            }
            if let Some(t) = inp.dtype.filter(|t| !t.holds(v)) {
                return Err(GraphError::Model(format!(
                    "input '{name}' is declared {}, got {} data",
                    t.name(),
                    v.dtype()
                )));
            }
            if let (Value::F32(a), false) = (v, self.accept_non_finite) {
                if let Some(i) = first_non_finite(a) {
                    return Err(GraphError::Model(format!(
                        "input '{name}' holds a non-finite value at flat index {i}"
                    )));
                }
            }
        }
        Ok(())
    }
}

/// Flat index of the first NaN/inf (contiguous arrays through the kernels' chunked scan: a
/// dynamic-rank element iterator took ~1 ms on a 640x640 RGB input).
fn first_non_finite(a: &ndarray::ArrayD<f32>) -> Option<usize> {
    match a.as_slice() {
        Some(s) => elide_kernels::first_non_finite(s),
        None => a.iter().position(|x| !x.is_finite()),
    }
}

#[cfg(test)]
mod tests {
    use crate::graph::{Graph, Input, Node};
    use crate::ops::{Binary, Op, Unary};
    use crate::Value;
    use elide_kernels::rng::SplitMix64;
    use ndarray::{ArrayD, IxDyn};

    fn push(g: &mut Graph, op: Op, inputs: &[usize]) -> usize {
        g.names.push(format!("v{}", g.names.len()));
        let out = g.names.len() - 1;
        g.nodes.push(Node {
            name: format!("n{}", g.nodes.len()),
            op_type: op.kind().to_string(),
            op,
            inputs: inputs.iter().map(|&i| Some(i)).collect(),
            outputs: vec![out],
        });
        out
    }

    fn constant(g: &mut Graph, a: ArrayD<f32>) -> usize {
        g.names.push(format!("c{}", g.names.len()));
        let id = g.names.len() - 1;
        g.constants.insert(id, Value::F32(a));
        id
    }

    /// In-place element-wise ops must not overwrite a value that is read again, read twice
    /// by the same node, a graph output or a constant; and reused arena buffers (stale
    /// contents) must not leak into results.
    #[test]
    fn in_place_ops_leave_live_values_alone() {
        let mut rng = SplitMix64::new(3);
        let shape = [2, 3, 11, 70];
        let n: usize = shape.iter().product();
        let x = ArrayD::from_shape_vec(IxDyn(&shape), rng.vec(n, -1.0, 1.0)).unwrap();
        let scale = ArrayD::from_shape_vec(IxDyn(&[1, 3, 1, 1]), vec![0.5, -2.0, 3.0]).unwrap();
        let one = ArrayD::from_shape_vec(IxDyn(&[1]), vec![1.0]).unwrap();

        let mut g = Graph::default();
        g.names.push("x".into());
        g.inputs.push(Input {
            id: 0,
            shape: vec![],
            dtype: None,
        });
        let s = constant(&mut g, scale.clone());
        let c1 = constant(&mut g, one.clone());
        let a = push(&mut g, Op::Unary(Unary::Relu), &[0]);
        let b = push(&mut g, Op::Binary(Binary::Mul), &[a, a]);
        let c = push(&mut g, Op::Binary(Binary::Add), &[b, 0]);
        let d = push(&mut g, Op::Binary(Binary::Sub), &[c1, c]);
        let e = push(&mut g, Op::Binary(Binary::Mul), &[d, s]);
        let e2 = push(&mut g, Op::Identity, &[e]);
        let f = push(&mut g, Op::Unary(Unary::Sigmoid), &[e2]);
        g.outputs = vec![a, f];

        let ra = x.mapv(|v| v.max(0.0));
        let rc = &ra * &ra + &x;
        let re = (1.0 - &rc) * &scale;
        let rf = re.mapv(|v| 1.0 / (1.0 + (-v).exp()));
        for run in 0..3 {
            let out = g.run(vec![Value::F32(x.clone())]).unwrap();
            assert_eq!(
                out[0],
                Value::F32(ra.clone()),
                "run {run}: output a consumed"
            );
            let got = out[1].as_f32().unwrap();
            let err = got
                .iter()
                .zip(rf.iter())
                .map(|(p, q)| (p - q).abs())
                .fold(0f32, f32::max);
            assert!(err < 1e-6, "run {run}: error {err}");
        }
        assert_eq!(g.constants[&s], Value::F32(scale));
        assert_eq!(g.constants[&c1], Value::F32(one));
        assert!(g.arena.held().0 > 0, "freed values were kept for reuse");
    }
}
