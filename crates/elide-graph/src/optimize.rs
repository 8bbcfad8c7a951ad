//! Load-time rewrites: constant folding, batch-norm folded into convs, activations fused into
//! convs' epilogues. Each keeps the graph's outputs bit-for-bit what the unoptimised graph
//! computes, up to float rounding of the folded weights.
use crate::graph::Graph;
use crate::ops::{batch_norm_affine, eval, Ctx, Op};
use crate::{Result, Value};

/// Fraction of zero weights from which [`optimize`] runs a Gemm or MatMul in CSR (where CSR
/// starts to pay for batches of several rows).
pub const SPARSE_MIN_ZEROS: f64 = crate::ops::sparse_linear::CSR_FROM_MANY_ROWS;

/// Runs every rewrite; returns how many nodes were folded (constants), folded into convs
/// (batch-norms, affines), fused (activations), and how many products became sparse.
pub fn optimize(g: &mut Graph) -> Result<[usize; 4]> {
    let folded = fold_constants(g)?;
    // Lowering: convs whose weights folding made constant get their prepared kernels.
    crate::ops::lower_convs(g)?;
    // Batch-norms and affines fold in either order (a ConvTranspose's bias Add before its
    // batch-norm, a Mul after a conv's): repeat until neither finds more.
    let (mut bn, mut affine) = (0, 0);
    loop {
        let (b, a) = (fold_batch_norms(g)?, fold_affine(g)?);
        (bn, affine) = (bn + b, affine + a);
        if b + a == 0 {
            break;
        }
    }
    let act = fuse_hardswish(g) + fuse_activations(g) + fuse_silu(g);
    let after = fold_affine_into_next(g)?;
    let sparse = sparse_weights(g, SPARSE_MIN_ZEROS);
    pretranspose_gemm_weights(g);
    Ok([folded, bn + affine + after, act, sparse])
}

/// Gemm with constant weights and `transB` (PyTorch's `Linear` exports this way): the weights
/// are transposed once at load, because the `gemm` crate reads a column-major right operand
/// about 3x slower than a row-major one (64 x 1024 x 1024 on one core: 4.1 against 1.3-1.4 ms,
/// `elide-kernels` example `probes -- gemm-layout`).
/// Returns how many nodes changed.
pub fn pretranspose_gemm_weights(g: &mut Graph) -> usize {
    // One transposed copy per original weight, however many Gemms share it.
    let mut done: std::collections::HashMap<usize, usize> = Default::default();
    let mut count = 0;
    for i in 0..g.nodes.len() {
        let Op::Gemm { trans_b: true, .. } = g.nodes[i].op else {
            continue;
        };
        let Some(b) = g.nodes[i].inputs.get(1).copied().flatten() else {
            continue;
        };
        let id = match done.get(&b) {
            Some(&id) => id,
            None => {
                let Some(bt) = g.constants.get(&b).and_then(|v| v.as_f32()) else {
                    continue;
                };
                if bt.ndim() != 2 {
                    continue;
                }
                let t = bt.t().as_standard_layout().into_owned().into_dyn();
                let id = g.names.len();
                // A name no other value has (`Graph::value` finds the first match).
                let mut name = format!("{}_transposed", g.names[b]);
                while g.names.contains(&name) {
                    name.push('_');
                }
                g.names.push(name);
                g.constants.insert(id, Value::F32(t));
                done.insert(b, id);
                id
            }
        };
        g.nodes[i].inputs[1] = Some(id);
        if let Op::Gemm { trans_b, .. } = &mut g.nodes[i].op {
            *trans_b = false;
        }
        count += 1;
    }
    // Keep one copy of the weights unless something else reads the original.
    for &b in done.keys() {
        let read = g.outputs.contains(&b) || g.nodes.iter().any(|n| n.inputs.contains(&Some(b)));
        if !read {
            g.constants.remove(&b);
        }
    }
    count
}

/// Gemm (without `transA`) and MatMul nodes whose weights (input 1) are a constant 2-D matrix
/// with at least `min_zeros` of its entries zero, and whose bias is constant, become
/// [`SparseLinear`](crate::ops::SparseLinear) nodes; a Relu that alone reads one is fused into
/// it. Returns how many products were converted.
pub fn sparse_weights(g: &mut Graph, min_zeros: f64) -> usize {
    use crate::ops::{SparseLinear, Unary};
    let mut count = 0;
    let mut i = 0;
    while i < g.nodes.len() {
        let node = &g.nodes[i];
        let weights = node.inputs.get(1).copied().flatten();
        let bias = node.inputs.get(2).copied().flatten();
        let sparse = match (&node.op, weights.and_then(|w| g.constants.get(&w))) {
            (Op::Gemm { .. } | Op::MatMul, Some(w)) if zero_fraction(w) >= min_zeros => {
                match bias.map(|b| g.constants.get(&b)) {
                    Some(None) => None,
                    c => SparseLinear::from_op(&node.op, w, c.flatten()),
                }
            }
            _ => None,
        };
        let Some(mut sparse) = sparse else {
            i += 1;
            continue;
        };
        let out = g.nodes[i].outputs[0];
        if let Some(j) =
            sole_reader(g, out).filter(|&j| matches!(g.nodes[j].op, Op::Unary(Unary::Relu)))
        {
            sparse.layer.relu = true;
            g.nodes[i].outputs[0] = g.nodes[j].outputs[0];
            g.nodes.remove(j);
        }
        // At sparsities where every batch runs in CSR the dense weights are never read again:
        // drop them unless something else reads them.
        if sparse.uses_csr(1) {
            if let Some(w) = weights {
                let others = g.outputs.contains(&w)
                    || g.nodes
                        .iter()
                        .enumerate()
                        .any(|(k, n)| k != i && n.inputs.contains(&Some(w)));
                if !others {
                    g.constants.remove(&w);
                    g.nodes[i].inputs[1] = None;
                }
            }
        }
        g.nodes[i].op = Op::SparseLinear(Box::new(sparse));
        count += 1;
        i += 1;
    }
    count
}

/// Fraction of a constant's f32 entries that are zero (0 for other types and empty tensors).
fn zero_fraction(v: &Value) -> f64 {
    match v.as_f32() {
        Some(a) if !a.is_empty() => a.iter().filter(|&&x| x == 0.0).count() as f64 / a.len() as f64,
        _ => 0.0,
    }
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
            arena: None,
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

/// The output channels of a Conv or ConvTranspose with no activation fused yet: an affine map
/// after it folds into its weights and bias.
fn affine_target(op: &Op) -> Option<usize> {
    use elide_kernels::conv::Activation;
    match op {
        Op::Conv(c) if c.conv.activation() == Activation::None => Some(c.conv.out_channels()),
        Op::ConvTranspose(t) if t.act == Activation::None => Some(t.shape[1]),
        _ => None,
    }
}

/// Folds `y * scale + shift` (per output channel) into an [`affine_target`].
fn fold_into(op: &mut Op, scale: &[f32], shift: &[f32]) -> std::result::Result<(), String> {
    match op {
        Op::Conv(c) => {
            // An affine map is a batch-norm with mean 0, variance 1 and epsilon 0.
            let (zeros, ones) = (vec![0.0; scale.len()], vec![1.0; scale.len()]);
            c.conv
                .fold_batch_norm(scale, shift, &zeros, &ones, 0.0)
                .map_err(|e| e.to_string())
        }
        Op::ConvTranspose(t) => {
            t.fold_scale_shift(scale, shift);
            Ok(())
        }
        _ => Err("not a convolution".into()),
    }
}

/// Conv or ConvTranspose followed only by an inference BatchNormalization with constant
/// statistics: folds the statistics into the weights and bias.
pub fn fold_batch_norms(g: &mut Graph) -> Result<usize> {
    let mut count = 0;
    let mut i = 0;
    while i < g.nodes.len() {
        let Some(cout) = affine_target(&g.nodes[i].op) else {
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
        let (node, op) = (g.nodes[j].name.clone(), g.nodes[j].op_type.clone());
        let invalid = |detail: String| crate::GraphError::Invalid {
            node: node.clone(),
            op: op.clone(),
            detail,
        };
        if s.iter().any(|v| v.len() != cout) {
            return Err(invalid(format!(
                "statistics of lengths {:?} for {cout} channels",
                s.iter().map(Vec::len).collect::<Vec<_>>()
            )));
        }
        let (scale, shift) = batch_norm_affine([&s[0], &s[1], &s[2], &s[3]], eps);
        if scale.iter().chain(&shift).any(|v| !v.is_finite()) {
            return Err(invalid("statistics fold to a non-finite scale".into()));
        }
        let err = fold_into(&mut g.nodes[i].op, &scale, &shift).err();
        if let Some(e) = err {
            return Err(invalid(e));
        }
        g.nodes[i].outputs[0] = g.nodes[j].outputs[0];
        g.nodes.remove(j);
        count += 1;
    }
    Ok(count)
}

/// Conv or ConvTranspose followed only by an activation the kernels can apply in their
/// epilogue.
pub fn fuse_activations(g: &mut Graph) -> usize {
    use elide_kernels::conv::Activation;
    let mut count = 0;
    let mut i = 0;
    while i < g.nodes.len() {
        let current = match &g.nodes[i].op {
            Op::Conv(c) => c.conv.activation(),
            Op::ConvTranspose(t) => t.act,
            _ => {
                i += 1;
                continue;
            }
        };
        if current != Activation::None {
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
        match &mut g.nodes[i].op {
            Op::Conv(c) => c.conv = c.conv.clone().with_activation(act),
            Op::ConvTranspose(t) => t.act = act,
            _ => unreachable!("checked above"),
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

/// A constant that is one value or one per channel of a `[N, C, ...]` tensor with `c`
/// channels, expanded to `c` values.
fn per_channel(v: &Value, c: usize) -> Option<Vec<f32>> {
    let a = v.as_f32()?;
    let s = a.shape();
    // Aligned from the right with a 4-D `[N, C, H, W]` output: rank 1 or 2 lands on H, W;
    // rank 5 or more would change the output's rank.
    let channel_shaped = match s.len() {
        0 => true,
        1 | 2 => s.iter().all(|&d| d == 1),
        3 | 4 => {
            let lead = s.len() - 3;
            s[..lead].iter().all(|&d| d == 1)
                && (s[lead] == c || s[lead] == 1)
                && s[lead + 1..].iter().all(|&d| d == 1)
        }
        _ => false,
    };
    if !channel_shaped {
        return None;
    }
    let vals: Vec<f32> = a.iter().copied().collect();
    Some(if vals.len() == 1 {
        vec![vals[0]; c]
    } else {
        vals
    })
}

/// The constant operand of a binary node reading `x`, and whether it is on the left.
fn const_operand(g: &Graph, node: usize, x: usize) -> Option<(&Value, bool)> {
    let n = &g.nodes[node];
    match n.inputs[..] {
        [Some(a), Some(b)] if a == x => g.constants.get(&b).map(|v| (v, false)),
        [Some(a), Some(b)] if b == x => g.constants.get(&a).map(|v| (v, true)),
        _ => None,
    }
}

/// Conv or ConvTranspose (no activation yet) followed only by `* c`, `/ c`, `+ c` or `- c`
/// with a scalar or per-channel constant: folded into the weights and bias (batch-norm by
/// another name, as paddle2onnx exports MobileOne/PP-LCNet blocks, or a ConvTranspose's bias).
pub fn fold_affine(g: &mut Graph) -> Result<usize> {
    use crate::ops::Binary;
    let mut count = 0;
    let mut i = 0;
    while i < g.nodes.len() {
        let Some(cout) = affine_target(&g.nodes[i].op) else {
            i += 1;
            continue;
        };
        let out = g.nodes[i].outputs[0];
        let Some(j) = sole_reader(g, out) else {
            i += 1;
            continue;
        };
        let Op::Binary(op) = g.nodes[j].op else {
            i += 1;
            continue;
        };
        let Some((k, left)) = const_operand(g, j, out) else {
            i += 1;
            continue;
        };
        let Some(k) = per_channel(k, cout) else {
            i += 1;
            continue;
        };
        let (scale, shift): (Vec<f32>, Vec<f32>) = match (op, left) {
            (Binary::Mul, _) => (k, vec![0.0; cout]),
            (Binary::Div, false) => (k.iter().map(|v| 1.0 / v).collect(), vec![0.0; cout]),
            (Binary::Add, _) => (vec![1.0; cout], k),
            (Binary::Sub, false) => (vec![1.0; cout], k.iter().map(|v| -v).collect()),
            (Binary::Sub, true) => (vec![-1.0; cout], k),
            (Binary::Div, true) => {
                i += 1;
                continue;
            }
        };
        if scale.iter().chain(&shift).any(|v| !v.is_finite()) {
            i += 1;
            continue;
        }
        if let Err(detail) = fold_into(&mut g.nodes[i].op, &scale, &shift) {
            return Err(crate::GraphError::Invalid {
                node: g.nodes[j].name.clone(),
                op: g.nodes[j].op_type.clone(),
                detail,
            });
        }
        g.nodes[i].outputs[0] = g.nodes[j].outputs[0];
        g.nodes.remove(j);
        count += 1;
    }
    Ok(count)
}

/// `x * clip(x + 3, 0, 6) / 6` (hard-swish as exporters spell it) after a conv: fused into
/// the conv's epilogue.
pub fn fuse_hardswish(g: &mut Graph) -> usize {
    use crate::ops::{Binary, Unary};
    let mut count = 0;
    let mut i = 0;
    'convs: while i < g.nodes.len() {
        let is_plain_conv = matches!(&g.nodes[i].op, Op::Conv(c) if c.conv.activation() == elide_kernels::conv::Activation::None);
        if !is_plain_conv || g.outputs.contains(&g.nodes[i].outputs[0]) {
            i += 1;
            continue;
        }
        let a = g.nodes[i].outputs[0];
        let readers: Vec<usize> = (0..g.nodes.len())
            .filter(|&k| g.nodes[k].inputs.contains(&Some(a)))
            .collect();
        let [r0, r1] = readers[..] else {
            i += 1;
            continue;
        };
        let scalar =
            |v: Option<(&Value, bool)>| v.and_then(|(v, _)| per_channel(v, 1)).map(|v| v[0]);
        // Which reader is the `+ 3`?
        for (add, mul) in [(r0, r1), (r1, r0)] {
            if !matches!(g.nodes[add].op, Op::Binary(Binary::Add))
                || scalar(const_operand(g, add, a)) != Some(3.0)
            {
                continue;
            }
            let t1 = g.nodes[add].outputs[0];
            let Some(clip) = sole_reader(g, t1) else {
                continue;
            };
            if !matches!(g.nodes[clip].op, Op::Unary(Unary::Clip { min, max }) if min == 0.0 && max == 6.0)
            {
                continue;
            }
            let t2 = g.nodes[clip].outputs[0];
            let ins = &g.nodes[mul].inputs;
            if !(matches!(g.nodes[mul].op, Op::Binary(Binary::Mul))
                && ins.contains(&Some(a))
                && ins.contains(&Some(t2)))
            {
                continue;
            }
            if sole_reader(g, t2) != Some(mul) {
                continue;
            }
            let t3 = g.nodes[mul].outputs[0];
            let Some(div) = sole_reader(g, t3) else {
                continue;
            };
            let k = scalar(const_operand(g, div, t3));
            let ok = match g.nodes[div].op {
                Op::Binary(Binary::Div) => {
                    k == Some(6.0) && const_operand(g, div, t3).is_some_and(|(_, left)| !left)
                }
                Op::Binary(Binary::Mul) => k.is_some_and(|k| (k - 1.0 / 6.0).abs() < 1e-7),
                _ => false,
            };
            if !ok {
                continue;
            }
            let out = g.nodes[div].outputs[0];
            if let Op::Conv(c) = &mut g.nodes[i].op {
                c.conv = c
                    .conv
                    .clone()
                    .with_activation(elide_kernels::conv::Activation::HardSwish);
            }
            g.nodes[i].outputs[0] = out;
            let mut gone = [add, clip, mul, div];
            gone.sort_unstable();
            for k in gone.iter().rev() {
                g.nodes.remove(*k);
            }
            count += 1;
            continue 'convs;
        }
        i += 1;
    }
    count
}

/// `y * s + t` (constants per channel) read only by an unpadded conv: folded into that conv's
/// weights and bias (exact without padding), as for the affine after each activation in
/// PP-LCNetV3.
pub fn fold_affine_into_next(g: &mut Graph) -> Result<usize> {
    use crate::ops::Binary;
    let mut count = 0;
    let mut j = 0;
    while j < g.nodes.len() {
        // j: Mul(y, s) with constant s; k: Add(., t) with constant t; m: the conv.
        let (Op::Binary(Binary::Mul), [Some(p), Some(q)]) =
            (&g.nodes[j].op, &g.nodes[j].inputs[..])
        else {
            j += 1;
            continue;
        };
        let (y, sv) = match (g.constants.get(p), g.constants.get(q)) {
            (Some(s), None) => (*q, s),
            (None, Some(s)) => (*p, s),
            _ => {
                j += 1;
                continue;
            }
        };
        let mul_out = g.nodes[j].outputs[0];
        let Some(k) = sole_reader(g, mul_out) else {
            j += 1;
            continue;
        };
        let add_const = match (&g.nodes[k].op, const_operand(g, k, mul_out)) {
            (Op::Binary(Binary::Add), Some((t, _))) => Some(t.clone()),
            _ => None,
        };
        let Some(t) = add_const else {
            j += 1;
            continue;
        };
        let add_out = g.nodes[k].outputs[0];
        let Some(m) = sole_reader(g, add_out) else {
            j += 1;
            continue;
        };
        let target = match &g.nodes[m].op {
            Op::Conv(c) if g.nodes[m].inputs.first() == Some(&Some(add_out)) => {
                Some(c.conv.in_channels())
            }
            _ => None,
        };
        let Some(cin) = target else {
            j += 1;
            continue;
        };
        let (Some(s), Some(t)) = (per_channel(sv, cin), per_channel(&t, cin)) else {
            j += 1;
            continue;
        };
        let Op::Conv(c) = &mut g.nodes[m].op else {
            unreachable!("matched above")
        };
        if c.conv.fold_input_affine(&s, &t).is_err() {
            j += 1;
            continue; // padded: not exact
        }
        g.nodes[m].inputs[0] = Some(y);
        let (first, second) = (k.max(j), k.min(j));
        g.nodes.remove(first);
        g.nodes.remove(second);
        count += 1;
    }
    Ok(count)
}
