//! Running a graph: values live in slots that are freed after their last reader, and conv
//! inputs are moved into the kernels' tensors and back rather than copied.
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
        for (inp, v) in self.inputs.iter().zip(inputs) {
            slots[inp.id] = Some(v);
        }
        let last = self.last_use();
        for (k, node) in self.nodes.iter().enumerate() {
            let ctx = Ctx {
                node: &node.name,
                op: &node.op_type,
            };
            let outs = match (&node.op, node.inputs.first().copied().flatten()) {
                // Move the input into the kernels and back: no copy of the activation.
                (Op::Conv(c), Some(id)) if slots[id].is_some() => {
                    let Some(Value::F32(x)) = slots[id].take() else {
                        return Err(ctx.err("conv input is not f32"));
                    };
                    let (y, back) = c.run_owned(x, ctx)?;
                    slots[id] = Some(Value::F32(back));
                    vec![y]
                }
                _ => {
                    let ins = self.node_inputs(node, &slots, ctx)?;
                    eval(&node.op, &ins, ctx)?
                }
            };
            {
                let refs: Vec<&Value> = outs.iter().collect();
                observe(k, &refs);
            }
            self.store_outputs(k, outs, &mut slots, &last, ctx)?;
        }
        self.take_outputs(&mut slots)
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
                slots[*id] = None;
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

    /// Input count, element type, declared static dims and finiteness.
    fn check_inputs(&self, inputs: &[Value]) -> Result<()> {
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
            if let Value::F32(a) = v {
                if let Some(i) = a.iter().position(|x| !x.is_finite()) {
                    return Err(GraphError::Model(format!(
                        "input '{name}' holds a non-finite value at flat index {i}"
                    )));
                }
            }
        }
        Ok(())
    }
}
