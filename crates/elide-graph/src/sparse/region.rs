//! Which pixels of each value the graph's outputs depend on, propagated backwards from the
//! outputs through every node.
//!
//! A region is per 4-D NCHW value a set of `(n, y, x)` pixels (all channels). Convs and pools
//! map a region to its receptive field (stride, padding, dilation), transposed convs and
//! resizes to the inputs their interpolation reads (with a margin), element-wise ops and
//! channel concatenation pass it through (a broadcast input of size 1 needs all of itself),
//! and every other op (global pooling, Gemm/MatMul, Flatten, Reshape, Slice, ...) needs all of
//! its inputs. Over-approximating is always safe: it only costs work.
use crate::graph::Graph;
use crate::ops::Op;

/// What part of a value is needed.
#[derive(Clone, Debug, PartialEq)]
pub enum Need {
    /// Nothing (the value is only read for its shape, or not at all).
    None,
    /// Every element.
    All,
    /// These `(n, y, x)` pixels of a 4-D value, row-major `[n, h, w]`.
    Pixels {
        /// `[n, h, w]`.
        shape: [usize; 3],
        /// Marked pixels.
        px: Vec<bool>,
    },
}

impl Need {
    /// A pixel region, simplified to `None` or `All` when empty or full.
    pub fn pixels(shape: [usize; 3], px: Vec<bool>) -> Need {
        if !px.iter().any(|&p| p) {
            Need::None
        } else if px.iter().all(|&p| p) {
            Need::All
        } else {
            Need::Pixels { shape, px }
        }
    }

    /// Adds `other` to this region.
    pub fn union(&mut self, other: Need) {
        match (&mut *self, other) {
            (_, Need::None) | (Need::All, _) => {}
            (Need::None, o) => *self = o,
            (_, Need::All) => *self = Need::All,
            (Need::Pixels { shape, px }, Need::Pixels { shape: s2, px: p2 }) => {
                if *shape == s2 {
                    px.iter_mut().zip(p2).for_each(|(a, b)| *a |= b);
                } else {
                    *self = Need::All;
                }
            }
        }
    }

    /// Number of marked pixels out of a `[n, h, w]` total.
    pub fn count(&self, total: usize) -> usize {
        match self {
            Need::None => 0,
            Need::All => total,
            Need::Pixels { px, .. } => px.iter().filter(|&&p| p).count(),
        }
    }
}

/// `[n, h, w]` of a 4-D NCHW shape.
pub fn spatial(shape: &[usize]) -> Option<[usize; 3]> {
    match shape {
        &[n, _, h, w] => Some([n, h, w]),
        _ => None,
    }
}

/// The region of every value (by id) that the outputs' regions `out` depend on; `shapes` holds
/// every value's shape (from a dense run).
pub fn propagate(g: &Graph, shapes: &[Option<Vec<usize>>], out: Vec<Need>) -> Vec<Need> {
    let mut need = vec![Need::None; g.names.len()];
    for (&id, n) in g.outputs.iter().zip(out) {
        need[id].union(n);
    }
    for node in g.nodes.iter().rev() {
        let mut want = Need::None;
        let first = node.outputs.first().and_then(|&o| shapes[o].as_deref());
        for &o in &node.outputs {
            let n = need[o].clone();
            let same = shapes[o].as_deref().and_then(spatial) == first.and_then(spatial);
            want.union(if same || n == Need::None {
                n
            } else {
                Need::All
            });
        }
        if want == Need::None {
            continue;
        }
        for (i, id) in node.inputs.iter().enumerate() {
            let Some(id) = *id else { continue };
            if g.constants.contains_key(&id) {
                continue;
            }
            let n = input_need(&node.op, i, &want, first, shapes[id].as_deref());
            need[id].union(n);
        }
    }
    need
}

/// The region of input `i` that a node needs to produce `want` of its (first) output.
fn input_need(
    op: &Op,
    i: usize,
    want: &Need,
    out: Option<&[usize]>,
    inp: Option<&[usize]>,
) -> Need {
    if matches!(op, Op::Shape { .. }) || *want == Need::None {
        return Need::None;
    }
    let (Some(os), Some(is)) = (out.and_then(spatial), inp.and_then(spatial)) else {
        return Need::All;
    };
    let Need::Pixels { px, .. } = want else {
        return Need::All;
    };
    let axis1 = |axis: i64| axis == 1 || axis == -3;
    match op {
        Op::Conv(c) if i == 0 => {
            let p = c.conv.params();
            let (s, d, k) = (p.stride, p.dilation, p.kernel);
            let (pt, pl) = (p.pad.top as isize, p.pad.left as isize);
            window(
                px,
                os,
                is,
                |o| span(o * s[0], pt, (k[0] - 1) * d[0]),
                |o| span(o * s[1], pl, (k[1] - 1) * d[1]),
            )
        }
        Op::Pool(p) if i == 0 => {
            let (s, d, k) = (p.stride, p.dilation, p.kernel);
            window(
                px,
                os,
                is,
                |o| span(o * s[0], p.pads[0] as isize, (k[0] - 1) * d[0]),
                |o| span(o * s[1], p.pads[1] as isize, (k[1] - 1) * d[1]),
            )
        }
        Op::ConvTranspose(t) if i == 0 => {
            // o = i*s - pad + k*d for some tap k: i in [(o + pad - (K-1)d) / s, (o + pad) / s].
            let back = |o: usize, a: usize| {
                let (s, pad) = (t.stride[a] as isize, t.pads[a] as isize);
                let reach = ((t.shape[2 + a] - 1) * t.dilation[a]) as isize;
                let o = o as isize + pad;
                ((o - reach).div_euclid(s), o.div_euclid(s))
            };
            window(px, os, is, |o| back(o, 0), |o| back(o, 1))
        }
        Op::Resize(_) if i == 0 => {
            let scaled = |o: usize, out: usize, inp: usize| {
                let m = 2 + inp.div_ceil(out) as isize;
                let lo = (o * inp / out) as isize - m;
                let hi = ((o + 1) * inp / out) as isize + m;
                (lo, hi)
            };
            window(
                px,
                os,
                is,
                |o| scaled(o, os[1], is[1]),
                |o| scaled(o, os[2], is[2]),
            )
        }
        Op::Unary(_) | Op::BatchNorm { .. } | Op::Identity | Op::Cast { .. } | Op::Binary(_) => {
            broadcast(px, os, is)
        }
        Op::Concat { axis } | Op::Softmax { axis } | Op::Split { axis, .. } if axis1(*axis) => {
            broadcast(px, os, is)
        }
        _ => Need::All,
    }
}

/// Input range `[o - pad, o - pad + reach]` (inclusive) of output position `o` (already
/// multiplied by the stride).
fn span(o: usize, pad: isize, reach: usize) -> (isize, isize) {
    let lo = o as isize - pad;
    (lo, lo + reach as isize)
}

/// An output region seen through an input of shape `is`: the same pixels when the spatial
/// shapes match (the union over the batch when the input has one image), all of a broadcast
/// input otherwise.
fn broadcast(px: &[bool], os: [usize; 3], is: [usize; 3]) -> Need {
    if os == is {
        return Need::pixels(is, px.to_vec());
    }
    if is[0] == 1 && is[1..] == os[1..] {
        let plane = os[1] * os[2];
        let mut u = vec![false; plane];
        for img in px.chunks(plane) {
            u.iter_mut().zip(img).for_each(|(a, &b)| *a |= b);
        }
        return Need::pixels(is, u);
    }
    Need::All
}

/// Marks, for every marked output pixel, the input rectangle `rows(y) x cols(x)` (inclusive
/// ranges, clipped to the input). Separable: columns per output row, then rows.
fn window(
    px: &[bool],
    os: [usize; 3],
    is: [usize; 3],
    rows: impl Fn(usize) -> (isize, isize),
    cols: impl Fn(usize) -> (isize, isize),
) -> Need {
    let [n, ho, wo] = os;
    let [ni, hi, wi] = is;
    if n != ni {
        return Need::All;
    }
    let clip = |(lo, hi): (isize, isize), len: usize| -> Option<(usize, usize)> {
        let lo = lo.max(0) as usize;
        let hi = hi.min(len as isize - 1);
        (hi >= 0 && lo <= hi as usize).then_some((lo, hi as usize))
    };
    let col_ranges: Vec<Option<(usize, usize)>> = (0..wo).map(|x| clip(cols(x), wi)).collect();
    let mut out = vec![false; n * hi * wi];
    let mut line = vec![0i32; wi + 1];
    for b in 0..n {
        for y in 0..ho {
            let row = &px[(b * ho + y) * wo..(b * ho + y + 1) * wo];
            if !row.iter().any(|&p| p) {
                continue;
            }
            let Some((r0, r1)) = clip(rows(y), hi) else {
                continue;
            };
            line.fill(0);
            for (x, _) in row.iter().enumerate().filter(|(_, &p)| p) {
                if let Some((c0, c1)) = col_ranges[x] {
                    line[c0] += 1;
                    line[c1 + 1] -= 1;
                }
            }
            let mut acc = 0;
            for (c, d) in line[..wi].iter().enumerate() {
                acc += d;
                if acc > 0 {
                    for r in r0..=r1 {
                        out[(b * hi + r) * wi + c] = true;
                    }
                }
            }
        }
    }
    Need::pixels(is, out)
}
