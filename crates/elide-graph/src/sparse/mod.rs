//! Whole-network sparse inference: run an imported graph where a mask says output matters.
//!
//! [`Graph::run_masked`] takes a mask `[N, H, W]` at the input's resolution and runs every
//! Conv node block-sparsely (elide's [`SparseConv2d`] on the kernels' fused blockwise
//! executor) onto a zero base. Element-wise ops, batch-norm, pooling, resizing, channel
//! concatenation and transposed convolutions run on the pixels of their output the run needs
//! ([`crate::ops::eval_runs`]): in place on an input read for the last time (only those pixels
//! touched), else into a new buffer with zeros elsewhere where skipping the work outweighs
//! writing the zeros ([`crate::ops::worth_masking`]); other ops (global pooling, products,
//! reshapes) run densely as [`Graph::run`] does. Outside the needed pixels values are
//! unspecified: zeros, or what the input held there (a later dense op may turn those into
//! anything, e.g. a division by a zero left outside the region).
//! - [`Mode::Fast`] (SBNet's behaviour): each conv computes the blocks whose receptive field
//!   touches the mask max-pooled to the conv's input resolution. Outputs are only
//!   approximately dense inside the mask: features outside it are zero, which shifts the
//!   outputs near the mask's border and, through global ops (squeeze-excitation's
//!   GlobalAveragePool), everywhere.
//! - [`Mode::Exact`]: the pixels each value must hold are propagated backwards from the
//!   outputs (the mask resized to the output resolution) through every node
//!   ([`region`]: receptive fields of convs and pools, resizes, broadcasts; global ops need all
//!   of their input), and each conv computes the blocks that cover its needed output pixels
//!   (dense when it needs everything, nothing when it needs nothing). Contract: inside the
//!   mask the outputs equal the dense outputs (up to the kernels' rounding), tested.
//!
//! Masks come from arrays, thresholds, frame differences ([`mask_from_array`],
//! [`mask_from_threshold`], [`mask_from_difference`]) or from a cheap dense pass of the model
//! on a downscaled input ([`mask_from_low_res`]).
//!
//! Both modes need every value's shape before computing it; [`MaskedRunner`] learns them from
//! one dense run (the first masked run per input shape) and keeps them (and the sparse layers)
//! for later runs on inputs of the same shape.
//!
//! ```no_run
//! # fn main() -> elide_graph::Result<()> {
//! use elide_graph::sparse::{mask_from_threshold, Mode};
//! let g = elide_graph::onnx::load("model.onnx")?;
//! let x = elide_graph::Value::f32(&[1, 3, 64, 64], vec![0.5; 3 * 64 * 64])?;
//! let mask = mask_from_threshold(x.as_f32().unwrap(), 0.4)?;
//! let outs = g.run_masked(vec![x], &mask, Mode::Exact)?;
//! # Ok(()) }
//! ```
mod masks;
pub mod region;

pub use masks::{
    dilate_mask, mask_from_array, mask_from_difference, mask_from_low_res, mask_from_threshold,
    resample_max, resize_bilinear, LowRes,
};

use crate::graph::Graph;
use crate::ops::runs::Runs;
use crate::ops::{eval_runs, eval_runs_in_place, worth_masking, Ctx, Op};
use crate::{GraphError, Result, Value};
pub use elide::sbnet::BlockSize;
use elide::sbnet::{Plan, SparseConv2d};
use elide_kernels::sparse::{reduce_mask, Mask, Pooling};
use elide_kernels::Tensor;
use ndarray::{ArrayD, IxDyn};
use region::{propagate, spatial, Need};
use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// How a masked run treats the pixels outside the mask.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Outputs equal dense inside the mask; convs compute everything those pixels depend on.
    Exact,
    /// SBNet: every conv, element-wise op, pool and resize computes only near the mask (the
    /// mask at its resolution); outside it features are zero or what the op's input held.
    Fast,
}

/// What a masked run computed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Stats {
    /// Convs run densely.
    pub dense: usize,
    /// Convs run block-sparsely.
    pub sparse: usize,
    /// Convs skipped (no needed output).
    pub skipped: usize,
    /// Conv multiply-accumulates computed (blocks clipped to the output), over the dense total.
    pub work: f64,
    /// Other ops computed only on the pixels their output needs (element-wise, pooling,
    /// resizing, concatenation, transposed convolution).
    pub masked_ops: usize,
    /// Other ops run densely (their output needed whole, or no masked form).
    pub dense_ops: usize,
}

impl Graph {
    /// Runs the graph computing convs only where `mask` (`[N, H, W]` at the input's
    /// resolution, active > 0.5) asks; see [`crate::sparse`]. Builds a [`MaskedRunner`] each
    /// call (in exact mode that includes one dense run to learn shapes): keep a runner to
    /// run many masks.
    pub fn run_masked(&self, inputs: Vec<Value>, mask: &Mask, mode: Mode) -> Result<Vec<Value>> {
        MaskedRunner::new(self).run(inputs, mask, mode)
    }
}

/// Value shapes learnt from a dense run, for one set of input shapes.
struct Shapes {
    inputs: Vec<Vec<usize>>,
    values: Vec<Option<Vec<usize>>>,
}

/// A graph prepared for masked runs: its convs as sparse layers, and (after the first masked
/// run) every value's shape.
pub struct MaskedRunner<'g> {
    graph: &'g Graph,
    convs: Vec<Option<SparseConv2d>>,
    shapes: Mutex<Option<std::sync::Arc<Shapes>>>,
}

fn sparse_err(ctx: Ctx, e: elide::Error) -> GraphError {
    ctx.err(e.to_string())
}

fn to_tensor(x: ArrayD<f32>, ctx: Ctx) -> Result<Tensor> {
    let shape: [usize; 4] = x
        .shape()
        .try_into()
        .map_err(|_| ctx.err(format!("expected a 4-D NCHW input, got {:?}", x.shape())))?;
    let data = if x.is_standard_layout() && x.as_slice().is_some() {
        x.into_raw_vec_and_offset().0
    } else {
        x.iter().copied().collect()
    };
    Ok(Tensor::from_vec(shape, data)?)
}

fn from_tensor(t: Tensor) -> ArrayD<f32> {
    let shape = t.shape();
    ArrayD::from_shape_vec(IxDyn(&shape), t.into_vec()).expect("length matches shape")
}

/// Per-pixel multiply-accumulates of a conv.
fn macs_per_pixel(sc: &SparseConv2d) -> f64 {
    let c = sc.conv();
    let p = c.params();
    (c.out_channels() * c.in_channels() / p.groups * p.kernel[0] * p.kernel[1]) as f64
}

impl<'g> MaskedRunner<'g> {
    /// Wraps every Conv node of `graph` as a sparse layer.
    pub fn new(graph: &'g Graph) -> Self {
        let convs = graph
            .nodes
            .iter()
            .map(|n| match &n.op {
                Op::Conv(c) => Some(SparseConv2d::new(c.conv.clone())),
                _ => None,
            })
            .collect();
        Self {
            graph,
            convs,
            shapes: Mutex::new(None),
        }
    }

    /// Sets every conv's block size policy (default [`BlockSize::Auto`]: the cost model picks
    /// a size per layer, or dense when the needed region is too large to gain).
    pub fn with_block_size(mut self, size: BlockSize) -> Self {
        self.convs = self
            .convs
            .into_iter()
            .map(|c| c.map(|c| c.with_block_size(size)))
            .collect();
        self
    }

    /// Every value's shape for these inputs (a dense run the first time, cached after).
    fn shapes(&self, inputs: &[Value]) -> Result<std::sync::Arc<Shapes>> {
        let in_shapes: Vec<Vec<usize>> = inputs.iter().map(|v| v.shape().to_vec()).collect();
        let mut guard = self.shapes.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = guard.as_ref().filter(|s| s.inputs == in_shapes) {
            return Ok(s.clone());
        }
        let g = self.graph;
        let mut values: Vec<Option<Vec<usize>>> = vec![None; g.names.len()];
        for (id, v) in &g.constants {
            values[*id] = Some(v.shape().to_vec());
        }
        for (inp, s) in g.inputs.iter().zip(&in_shapes) {
            values[inp.id] = Some(s.clone());
        }
        g.run_with(inputs.to_vec(), |k, outs| {
            for (&id, v) in g.nodes[k].outputs.iter().zip(outs) {
                values[id] = Some(v.shape().to_vec());
            }
        })?;
        let s = std::sync::Arc::new(Shapes {
            inputs: in_shapes,
            values,
        });
        *guard = Some(s.clone());
        Ok(s)
    }

    /// Runs under `mask`; see [`crate::sparse`].
    pub fn run(&self, inputs: Vec<Value>, mask: &Mask, mode: Mode) -> Result<Vec<Value>> {
        Ok(self.run_stats(inputs, mask, mode)?.0)
    }

    /// [`MaskedRunner::run`], also returning what was computed.
    pub fn run_stats(
        &self,
        inputs: Vec<Value>,
        mask: &Mask,
        mode: Mode,
    ) -> Result<(Vec<Value>, Stats)> {
        let g = self.graph;
        let Some(first) = inputs.first() else {
            return Err(GraphError::Model("a masked run needs an input".into()));
        };
        let Some([n, h, w]) = spatial(first.shape()) else {
            return Err(GraphError::Model(format!(
                "a masked run needs a 4-D NCHW first input, got {:?}",
                first.shape()
            )));
        };
        if mask.shape() != [n, h, w] {
            return Err(GraphError::Model(format!(
                "the mask is {:?}, the input {:?} needs [{n}, {h}, {w}]",
                mask.shape(),
                first.shape()
            )));
        }
        let shapes = self.shapes(&inputs)?;
        // The pixels each value must hold: propagated back from the outputs (exact), or the
        // mask at the value's resolution (fast: SBNet computes only near the mask).
        let mut regions = match mode {
            Mode::Exact => {
                let out: Vec<Need> = g
                    .outputs
                    .iter()
                    .map(|&o| output_need(mask, shapes.values[o].as_deref()))
                    .collect::<Result<_>>()?;
                Regions::Exact(propagate(g, &shapes.values, out))
            }
            Mode::Fast => Regions::Fast(HashMap::new(), spatial_values(g, &shapes.values)),
        };
        let mut resampled: HashMap<[usize; 3], Mask> = HashMap::new();
        let mut stats = Stats::default();
        let (mut done, mut total) = (0f64, 0f64);
        let mut slots: Vec<Option<Value>> = vec![None; g.names.len()];
        g.check_inputs(&inputs)?;
        for (inp, v) in g.inputs.iter().zip(inputs) {
            slots[inp.id] = Some(v);
        }
        let last = g.last_use();
        for (k, node) in g.nodes.iter().enumerate() {
            let ctx = Ctx {
                node: &node.name,
                op: &node.op_type,
                arena: Some(&g.arena),
            };
            let input0 = node.inputs.first().copied().flatten();
            let outs = match (&self.convs[k], input0) {
                (Some(sc), Some(id)) if slots[id].is_some() => {
                    let Some(Value::F32(x)) = slots[id].take() else {
                        return Err(ctx.err("conv input is not f32"));
                    };
                    let t = to_tensor(x, ctx)?;
                    let out_shape = crate::ops::conv_out_shape(sc.conv(), t.shape(), ctx)?;
                    let [on, _, oh, ow] = out_shape;
                    let mpp = macs_per_pixel(sc);
                    total += mpp * (on * oh * ow) as f64;
                    let need = match &regions {
                        Regions::Exact(needs) => node.outputs.first().map(|&o| &needs[o]),
                        Regions::Fast(..) => None,
                    };
                    let plan = match need {
                        None => {
                            let [tn, _, th, tw] = t.shape();
                            let key = [tn, th, tw];
                            let m = match resampled.entry(key) {
                                Entry::Occupied(e) => e.into_mut(),
                                Entry::Vacant(e) => e.insert(resample_max(mask, key)?),
                            };
                            Some(sc.plan(t.shape(), m).map_err(|e| sparse_err(ctx, e))?)
                        }
                        Some(Need::None) => None,
                        Some(Need::All) => Some(Plan::Dense {
                            active: 0,
                            total: 0,
                        }),
                        Some(Need::Pixels { shape, px }) => {
                            Some(exact_plan(sc, &t, *shape, px, ctx)?)
                        }
                    };
                    // Skipped blocks read as zeros; a dense plan writes every output.
                    let mut buf = ctx.alloc(out_shape.iter().product());
                    if !matches!(plan, Some(Plan::Dense { .. })) {
                        buf.fill(0.0);
                    }
                    let mut base = Tensor::from_vec(out_shape, buf)?;
                    match &plan {
                        Some(Plan::Dense { .. }) => {
                            stats.dense += 1;
                            done += mpp * (on * oh * ow) as f64;
                        }
                        Some(Plan::Sparse { block, blocks, .. }) if !blocks.is_empty() => {
                            stats.sparse += 1;
                            let px = (blocks.len() * block * block).min(on * oh * ow);
                            done += mpp * px as f64;
                        }
                        _ => stats.skipped += 1,
                    }
                    if let Some(plan) = &plan {
                        sc.run(&t, plan, &mut base)
                            .map_err(|e| sparse_err(ctx, e))?;
                    }
                    slots[id] = Some(Value::F32(from_tensor(t)));
                    vec![Value::F32(from_tensor(base))]
                }
                _ => {
                    let runs = match node.outputs.first() {
                        Some(&o) => regions.runs(o, &shapes, mask)?,
                        None => None,
                    };
                    let masked = match &runs {
                        Some(r) => masked_node(g, k, r, &mut slots, &last, ctx)?,
                        None => None,
                    };
                    match masked {
                        Some(outs) => {
                            stats.masked_ops += 1;
                            outs
                        }
                        None => {
                            stats.dense_ops += 1;
                            g.eval_node(k, &mut slots, &last, ctx)?
                        }
                    }
                }
            };
            g.store_outputs(k, outs, &mut slots, &last, ctx)?;
        }
        stats.work = if total > 0.0 { done / total } else { 0.0 };
        let outs = g.take_outputs(&mut slots)?;
        Ok((outs, stats))
    }
}

/// Node `k` computed on `runs` of its output: in place on an input it reads last (Unary,
/// Binary: only the runs are touched), else into a new buffer with zeros between the runs
/// where [`worth_masking`] says that pays; `None`: run it densely.
fn masked_node(
    g: &Graph,
    k: usize,
    runs: &Runs,
    slots: &mut [Option<Value>],
    last: &[Option<usize>],
    ctx: Ctx,
) -> Result<Option<Vec<Value>>> {
    let node = &g.nodes[k];
    let input = |i: usize| node.inputs.get(i).copied().flatten();
    // (the dying operand, the other one, whether the dying one is on the left)
    let candidates: Vec<(usize, Option<usize>, bool)> = match (&node.op, input(0), input(1)) {
        (Op::Unary(_), Some(a), _) => vec![(a, None, true)],
        (Op::Binary(_), Some(a), Some(b)) => vec![(a, Some(b), true), (b, Some(a), false)],
        _ => vec![],
    };
    for (mine, theirs, left) in candidates {
        if !g.dies_at(mine, k, slots, last) {
            continue;
        }
        let Some(Value::F32(mut x)) = slots[mine].take() else {
            continue;
        };
        let other = theirs.map(|t| slots[t].as_ref().or_else(|| g.constants.get(&t)));
        let done = match other {
            None => eval_runs_in_place(&node.op, &mut x, None, left, runs),
            Some(Some(Value::F32(o))) => eval_runs_in_place(&node.op, &mut x, Some(o), left, runs),
            Some(_) => false,
        };
        if done {
            return Ok(Some(vec![Value::F32(x)]));
        }
        slots[mine] = Some(Value::F32(x));
    }
    let [n, h, w] = runs.shape();
    if !worth_masking(&node.op, runs.count() as f64 / (n * h * w).max(1) as f64) {
        return Ok(None);
    }
    let ins = g.node_inputs(node, slots, ctx)?;
    eval_runs(&node.op, &ins, runs, ctx)
}

/// The values computed pixel by pixel on the input's grid: the first input (4-D), and what
/// convs, pools, resizes, element-wise ops and channel concatenation or splits make of such
/// values. Fast mode computes only these near the mask; anything else (a global average, a
/// product, a reshape, an attention map `[n, heads, t, t]`) has no pixels to skip.
fn spatial_values(g: &Graph, shapes: &[Option<Vec<usize>>]) -> Vec<bool> {
    let mut on_grid = vec![false; g.names.len()];
    let Some(first) = g.inputs.first() else {
        return on_grid;
    };
    on_grid[first.id] = shapes[first.id].as_deref().and_then(spatial).is_some();
    let axis1 = |a: i64| a == 1 || a == -3;
    for node in &g.nodes {
        let runtime: Vec<usize> = node
            .inputs
            .iter()
            .flatten()
            .copied()
            .filter(|i| !g.constants.contains_key(i))
            .collect();
        let out_shape = node.outputs.first().and_then(|&o| shapes[o].as_deref());
        let from_spatial = match &node.op {
            Op::Conv(_)
            | Op::ConvTranspose(_)
            | Op::Pool(_)
            | Op::Resize(_)
            | Op::Unary(_)
            | Op::BatchNorm { .. }
            | Op::Identity => node
                .inputs
                .first()
                .copied()
                .flatten()
                .is_some_and(|i| on_grid[i]),
            // The output has the shape of a spatial operand (the other one broadcasts).
            Op::Binary(_) => runtime
                .iter()
                .any(|&i| on_grid[i] && shapes[i].as_deref() == out_shape),
            Op::Concat { axis } | Op::Split { axis, .. } if axis1(*axis) => {
                !runtime.is_empty() && runtime.iter().all(|&i| on_grid[i])
            }
            _ => false,
        };
        for &o in &node.outputs {
            on_grid[o] = from_spatial && shapes[o].as_deref().and_then(spatial).is_some();
        }
    }
    on_grid
}

/// Where a masked run computes each value.
enum Regions {
    /// Needs propagated back from the outputs, by value id.
    Exact(Vec<Need>),
    /// The mask resampled to each 4-D resolution met (as runs, by `[n, h, w]`), for the
    /// values [`spatial_values`] marks.
    Fast(HashMap<[usize; 3], Option<Arc<Runs>>>, Vec<bool>),
}

impl Regions {
    /// The runs value `id` is computed on; `None`: all of it.
    fn runs(&mut self, id: usize, shapes: &Shapes, mask: &Mask) -> Result<Option<Arc<Runs>>> {
        match self {
            Regions::Exact(needs) => Ok(match &needs[id] {
                Need::Pixels { shape, px } => Some(Arc::new(Runs::from_mask(*shape, px))),
                // Not needed (or only for its shape): nothing computed, zeros.
                Need::None => shapes.values[id]
                    .as_deref()
                    .and_then(spatial)
                    .map(|s| Arc::new(Runs::empty(s))),
                Need::All => None,
            }),
            Regions::Fast(_, spatial) if !spatial[id] => Ok(None),
            Regions::Fast(cache, _) => {
                let n = mask.shape()[0];
                // Images of the batch (constants such as weights are 4-D too).
                let Some(sp) = shapes.values[id]
                    .as_deref()
                    .and_then(spatial)
                    .filter(|sp| sp[0] == n)
                else {
                    return Ok(None);
                };
                if let Some(r) = cache.get(&sp) {
                    return Ok(r.clone());
                }
                let r = match output_need(mask, Some(&[n, 1, sp[1], sp[2]]))? {
                    Need::Pixels { shape, px } => Some(Arc::new(Runs::from_mask(shape, &px))),
                    Need::None => Some(Arc::new(Runs::empty(sp))),
                    Need::All => None,
                };
                cache.insert(sp, r.clone());
                Ok(r)
            }
        }
    }
}

/// The region of a graph output the mask asks for: the mask max-resampled to a 4-D output's
/// resolution; all of any other output when the mask is not empty.
fn output_need(mask: &Mask, shape: Option<&[usize]>) -> Result<Need> {
    let active = |m: &Mask| m.data().iter().map(|&v| v > 0.5).collect::<Vec<bool>>();
    match shape.and_then(spatial) {
        Some(s) => Ok(Need::pixels(s, active(&resample_max(mask, s)?))),
        None if active(mask).contains(&true) => Ok(Need::All),
        None => Ok(Need::None),
    }
}

/// The plan for a conv whose needed output pixels are `px` (`[n, ho, wo]`): the layer's own
/// planner picks the block size (or dense) from the needed output mapped to input resolution;
/// the active blocks are then exactly those covering a needed output pixel.
fn exact_plan(
    sc: &SparseConv2d,
    x: &Tensor,
    shape: [usize; 3],
    px: &[bool],
    ctx: Ctx,
) -> Result<Plan> {
    let out = Mask::from_vec(shape, px.iter().map(|&p| f32::from(u8::from(p))).collect())?;
    let [n, _, h, w] = x.shape();
    let approx = resample_max(&out, [n, h, w])?;
    let plan = sc
        .plan(x.shape(), &approx)
        .map_err(|e| sparse_err(ctx, e))?;
    Ok(match plan {
        Plan::Sparse { block, grids, .. } => {
            let blocks = reduce_mask(&out, &grids.output, Pooling::Max, 0.5)?;
            Plan::Sparse {
                block,
                grids,
                blocks,
            }
        }
        dense => dense,
    })
}
