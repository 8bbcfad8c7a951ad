//! Load-time rewrites: constant folding, batch-norm folded into convs, activations fused into
//! convs' epilogues. Each keeps the graph's outputs bit-for-bit what the unoptimised graph
//! computes, up to float rounding of the folded weights.
use crate::graph::Graph;
use crate::ops::{eval, Ctx, Op};
use crate::{Result, Value};

/// Runs every rewrite; returns how many nodes each removed (folded, bn, act).
pub fn optimize(g: &mut Graph) -> Result<[usize; 3]> {
    let folded = fold_constants(g)?;
    let bn = fold_batch_norms(g)?;
    let act = fuse_activations(g) + fuse_silu(g);
    Ok([folded, bn, act])
}

/// Evaluates nodes whose inputs are all constants (shape arithmetic on constant shapes,
/// weight preprocessing) once, at load.
pub fn fold_constants(g: &mut Graph) -> Result<usize> {
    let mut kept = Vec::with_capacity(g.nodes.len());
    let mut folded = 0;
    for node in std::mem::take(&mut g.nodes) {
        let all_const = node
            .inputs
            .iter()
            .flatten()
            .all(|i| g.constants.contains_key(i));
        if !all_const || node.inputs.iter().flatten().next().is_none() {
            kept.push(node);
            continue;
        }
        let ins: Vec<Option<&Value>> = node
            .inputs
            .iter()
            .map(|i| i.map(|i| &g.constants[&i]))
            .collect();
        let ctx = Ctx {
            node: &node.name,
            op: &node.op_type,
        };
        let outs = eval(&node.op, &ins, ctx)?;
        for (id, v) in node.outputs.iter().zip(outs) {
            g.constants.insert(*id, v);
        }
        folded += 1;
    }
    g.nodes = kept;
    Ok(folded)
}

/// The single node reading `value`, if exactly one node (and no graph output) reads it.
fn sole_reader(g: &Graph, value: usize) -> Option<usize> {
    if g.outputs.contains(&value) {
        return None;
    }
    let mut it = g
        .nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| n.inputs.contains(&Some(value)));
    let first = it.next()?;
    it.next().is_none().then_some(first.0)
}

/// Conv followed only by an inference BatchNormalization with constant statistics: folds the
/// statistics into the conv's weights and bias.
pub fn fold_batch_norms(g: &mut Graph) -> Result<usize> {
    let mut count = 0;
    let mut i = 0;
    while i < g.nodes.len() {
        let Op::Conv(_) = g.nodes[i].op else {
            i += 1;
            continue;
        };
        let out = g.nodes[i].outputs[0];
        let Some(j) = sole_reader(g, out) else {
            i += 1;
            continue;
        };
        let (Op::BatchNorm { eps }, true) = (
            &g.nodes[j].op,
            g.nodes[j].inputs.first() == Some(&Some(out)),
        ) else {
            i += 1;
            continue;
        };
        let eps = *eps;
        let stats: Option<Vec<Vec<f32>>> = g.nodes[j].inputs[1..]
            .iter()
            .map(|id| match id.and_then(|id| g.constants.get(&id)) {
                Some(Value::F32(a)) => Some(a.iter().copied().collect()),
                _ => None,
            })
            .collect();
        let Some(s) = stats.filter(|s| s.len() == 4) else {
            i += 1;
            continue;
        };
        let bn_out = g.nodes[j].outputs[0];
        let (name, op_type) = (g.nodes[j].name.clone(), g.nodes[j].op_type.clone());
        let Op::Conv(c) = &mut g.nodes[i].op else {
            unreachable!("checked above")
        };
        c.conv
            .fold_batch_norm(&s[0], &s[1], &s[2], &s[3], eps)
            .map_err(|e| crate::GraphError::Invalid {
                node: name,
                op: op_type,
                detail: e.to_string(),
            })?;
        g.nodes[i].outputs[0] = bn_out;
        g.nodes.remove(j);
        count += 1;
    }
    Ok(count)
}

/// Conv followed only by an activation the kernels can apply in their epilogue.
pub fn fuse_activations(g: &mut Graph) -> usize {
    let mut count = 0;
    let mut i = 0;
    while i < g.nodes.len() {
        let Op::Conv(c) = &g.nodes[i].op else {
            i += 1;
            continue;
        };
        if c.conv.activation() != elide_kernels::conv::Activation::None {
            i += 1;
            continue;
        }
        let out = g.nodes[i].outputs[0];
        let fused = sole_reader(g, out).and_then(|j| match &g.nodes[j].op {
            Op::Unary(u) => u.as_activation().map(|a| (j, a)),
            _ => None,
        });
        let Some((j, act)) = fused else {
            i += 1;
            continue;
        };
        let act_out = g.nodes[j].outputs[0];
        if let Op::Conv(c) = &mut g.nodes[i].op {
            c.conv = c.conv.clone().with_activation(act);
        }
        g.nodes[i].outputs[0] = act_out;
        g.nodes.remove(j);
        count += 1;
    }
    count
}

/// `Mul(a, Sigmoid(a))` (SiLU, as exporters write it) after a conv whose output nothing else
/// reads: fused into the conv's epilogue.
pub fn fuse_silu(g: &mut Graph) -> usize {
    use crate::ops::{Binary, Unary};
    let mut count = 0;
    let mut i = 0;
    while i < g.nodes.len() {
        let Op::Conv(c) = &g.nodes[i].op else {
            i += 1;
            continue;
        };
        if c.conv.activation() != elide_kernels::conv::Activation::None
            || g.outputs.contains(&g.nodes[i].outputs[0])
        {
            i += 1;
            continue;
        }
        let a = g.nodes[i].outputs[0];
        let readers: Vec<usize> = (0..g.nodes.len())
            .filter(|&k| g.nodes[k].inputs.contains(&Some(a)))
            .collect();
        let pattern = match readers[..] {
            [x, y] => {
                let (sig, mul) = if matches!(g.nodes[x].op, Op::Unary(Unary::Sigmoid)) {
                    (x, y)
                } else {
                    (y, x)
                };
                let s = g.nodes[sig].outputs[0];
                let ok = matches!(g.nodes[sig].op, Op::Unary(Unary::Sigmoid))
                    && matches!(g.nodes[mul].op, Op::Binary(Binary::Mul))
                    && g.nodes[mul].inputs.len() == 2
                    && g.nodes[mul].inputs.contains(&Some(a))
                    && g.nodes[mul].inputs.contains(&Some(s))
                    && sole_reader(g, s) == Some(mul);
                ok.then_some((sig, mul))
            }
            _ => None,
        };
        let Some((sig, mul)) = pattern else {
            i += 1;
            continue;
        };
        let out = g.nodes[mul].outputs[0];
        if let Op::Conv(c) = &mut g.nodes[i].op {
            c.conv = c
                .conv
                .clone()
                .with_activation(elide_kernels::conv::Activation::Silu);
        }
        g.nodes[i].outputs[0] = out;
        let (first, second) = (sig.max(mul), sig.min(mul));
        g.nodes.remove(first);
        g.nodes.remove(second);
        count += 1;
    }
    count
}
