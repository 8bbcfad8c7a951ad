//! Tests of LSTM, GRU and RNN against a naive per-step, per-element reference.
use super::*;

fn ctx() -> Ctx<'static> {
    Ctx {
        node: "n",
        op: "RNN",
        arena: None,
    }
}

/// Deterministic values in [-1, 1).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
    }
    fn vec(&mut self, n: usize) -> Vec<f64> {
        (0..n).map(|_| self.next()).collect()
    }
}

/// One test problem in ONNX layout 0 (all optional inputs present).
struct Case {
    cell: Cell,
    dirs: Vec<bool>,
    acts: Vec<Act>,
    clip: Option<f64>,
    seq: usize,
    batch: usize,
    isz: usize,
    hs: usize,
    x: Vec<f64>,
    w: Vec<f64>,
    r: Vec<f64>,
    b: Vec<f64>,
    lens: Vec<usize>,
    h0: Vec<f64>,
    c0: Vec<f64>,
    p: Vec<f64>,
}

fn default_acts(cell: Cell) -> Vec<Act> {
    match cell {
        Cell::Lstm { .. } => vec![Act::Sigmoid, Act::Tanh, Act::Tanh],
        Cell::Gru { .. } => vec![Act::Sigmoid, Act::Tanh],
        Cell::Rnn => vec![Act::Tanh],
    }
}

fn case(cell: Cell, dirs: Vec<bool>, seq: usize, batch: usize, isz: usize, hs: usize) -> Case {
    let mut g = Rng(seq as u64 * 131 + batch as u64 * 17 + hs as u64);
    let nd = dirs.len();
    let gh = cell.gates() * hs;
    let acts = (0..nd).flat_map(|_| default_acts(cell)).collect();
    Case {
        cell,
        acts,
        clip: None,
        x: g.vec(seq * batch * isz),
        w: g.vec(nd * gh * isz),
        r: g.vec(nd * gh * hs),
        b: g.vec(nd * 2 * gh),
        lens: (0..batch).map(|b| seq - (b % (seq + 1))).collect(),
        h0: g.vec(nd * batch * hs),
        c0: g.vec(nd * batch * hs),
        p: g.vec(nd * 3 * hs),
        dirs,
        seq,
        batch,
        isz,
        hs,
    }
}

/// The ONNX equations, one element at a time: (Y [seq, D, batch, H], Y_h, Y_c).
fn reference(c: &Case) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let (nd, hs, batch, isz) = (c.dirs.len(), c.hs, c.batch, c.isz);
    let g = c.cell.gates();
    let na = c.cell.acts();
    let mut y = vec![0.0; c.seq * nd * batch * hs];
    let mut yh = vec![0.0; nd * batch * hs];
    let mut yc = vec![0.0; nd * batch * hs];
    let clip = |v: f64| c.clip.map_or(v, |m| v.clamp(-m, m));
    for (d, &rev) in c.dirs.iter().enumerate() {
        let acts = &c.acts[d * na..(d + 1) * na];
        let f = |i: usize, v: f64| acts[i].apply(clip(v));
        // x_t . W_gate^T + Wb (unit j of gate k) and h . R_gate^T + Rb.
        let xw = |t: usize, b: usize, k: usize, j: usize| {
            let row = (d * g + k) * hs + j;
            let mut s = c.b[d * 2 * g * hs + k * hs + j];
            for i in 0..isz {
                s += c.x[(t * batch + b) * isz + i] * c.w[row * isz + i];
            }
            s
        };
        let hr = |h: &[f64], k: usize, j: usize| {
            let row = (d * g + k) * hs + j;
            let mut s = c.b[d * 2 * g * hs + g * hs + k * hs + j];
            for (i, hv) in h.iter().enumerate() {
                s += hv * c.r[row * hs + i];
            }
            s
        };
        for b in 0..batch {
            let at = (d * batch + b) * hs;
            let mut h = c.h0[at..at + hs].to_vec();
            let mut cs = c.c0[at..at + hs].to_vec();
            let len = c.lens[b];
            for s in 0..len {
                let t = if rev { len - 1 - s } else { s };
                let mut hn = vec![0.0; hs];
                for j in 0..hs {
                    let p = |k: usize| c.p[d * 3 * hs + k * hs + j];
                    hn[j] = match c.cell {
                        Cell::Lstm { input_forget } => {
                            let i = f(0, xw(t, b, 0, j) + hr(&h, 0, j) + p(0) * cs[j]);
                            let fg = if input_forget {
                                1.0 - i
                            } else {
                                f(0, xw(t, b, 2, j) + hr(&h, 2, j) + p(2) * cs[j])
                            };
                            let cc = f(1, xw(t, b, 3, j) + hr(&h, 3, j));
                            let cn = fg * cs[j] + i * cc;
                            let o = f(0, xw(t, b, 1, j) + hr(&h, 1, j) + p(1) * cn);
                            cs[j] = cn;
                            o * acts[2].apply(cn)
                        }
                        Cell::Gru {
                            linear_before_reset,
                        } => {
                            let z = f(0, xw(t, b, 0, j) + hr(&h, 0, j));
                            let n = if linear_before_reset {
                                let r = f(0, xw(t, b, 1, j) + hr(&h, 1, j));
                                f(1, xw(t, b, 2, j) + r * hr(&h, 2, j))
                            } else {
                                let rh: Vec<f64> = (0..hs)
                                    .map(|i| f(0, xw(t, b, 1, i) + hr(&h, 1, i)) * h[i])
                                    .collect();
                                f(1, xw(t, b, 2, j) + hr(&rh, 2, j))
                            };
                            (1.0 - z) * n + z * h[j]
                        }
                        Cell::Rnn => f(0, xw(t, b, 0, j) + hr(&h, 0, j)),
                    };
                }
                h = hn;
                let o = ((t * nd + d) * batch + b) * hs;
                y[o..o + hs].copy_from_slice(&h);
            }
            yh[at..at + hs].copy_from_slice(&h);
            if matches!(c.cell, Cell::Lstm { .. }) {
                yc[at..at + hs].copy_from_slice(&cs);
            }
        }
    }
    (y, yh, yc)
}

fn op(c: &Case, batch_first: bool) -> Recurrent {
    Recurrent {
        cell: c.cell,
        dirs: c.dirs.clone(),
        hidden: Some(c.hs),
        acts: c.acts.clone(),
        clip: c.clip,
        batch_first,
    }
}

/// Swaps the first two axes of a `[a, b, rest]` buffer.
fn swap01(v: &[f64], a: usize, b: usize, rest: usize) -> Vec<f64> {
    let mut o = vec![0.0; v.len()];
    for i in 0..a {
        for j in 0..b {
            let (s, d) = ((i * b + j) * rest, (j * a + i) * rest);
            o[d..d + rest].copy_from_slice(&v[s..s + rest]);
        }
    }
    o
}

/// Runs the op on `c` as `dt` (layout 0 or 1) and compares with the reference.
fn check(c: &Case, dt: DType, batch_first: bool, tol: f64) {
    let (nd, hs, batch, seq) = (c.dirs.len(), c.hs, c.batch, c.seq);
    let gh = c.cell.gates() * hs;
    let val = |shape: &[usize], v: &[f64]| Value::from_vec(shape, v.to_vec()).unwrap().cast(dt);
    let (x, h0, c0) = if batch_first {
        (
            val(&[batch, seq, c.isz], &swap01(&c.x, seq, batch, c.isz)),
            val(&[batch, nd, hs], &swap01(&c.h0, nd, batch, hs)),
            val(&[batch, nd, hs], &swap01(&c.c0, nd, batch, hs)),
        )
    } else {
        (
            val(&[seq, batch, c.isz], &c.x),
            val(&[nd, batch, hs], &c.h0),
            val(&[nd, batch, hs], &c.c0),
        )
    };
    let w = val(&[nd, gh, c.isz], &c.w);
    let r = val(&[nd, gh, hs], &c.r);
    let b = val(&[nd, 2 * gh], &c.b);
    let lens = Value::from_vec(&[batch], c.lens.iter().map(|&l| l as i32).collect()).unwrap();
    let p = val(&[nd, 3 * hs], &c.p);
    let mut inputs = vec![
        Some(&x),
        Some(&w),
        Some(&r),
        Some(&b),
        Some(&lens),
        Some(&h0),
    ];
    if matches!(c.cell, Cell::Lstm { .. }) {
        inputs.extend([Some(&c0), Some(&p)]);
    }
    let out = op(c, batch_first).run(&inputs, ctx()).unwrap();
    let (y, yh, yc) = reference(c);
    let (y, yh, yc) = if batch_first {
        // [seq, D, batch, H] -> [batch, seq, D, H]; [D, batch, H] -> [batch, D, H].
        let mut yb = vec![0.0; y.len()];
        for t in 0..seq {
            for d in 0..nd {
                for bi in 0..batch {
                    let s = ((t * nd + d) * batch + bi) * hs;
                    let o = ((bi * seq + t) * nd + d) * hs;
                    yb[o..o + hs].copy_from_slice(&y[s..s + hs]);
                }
            }
        }
        (yb, swap01(&yh, nd, batch, hs), swap01(&yc, nd, batch, hs))
    } else {
        (y, yh, yc)
    };
    let state = if batch_first {
        vec![batch, nd, hs]
    } else {
        vec![nd, batch, hs]
    };
    let y_shape = if batch_first {
        vec![batch, seq, nd, hs]
    } else {
        vec![seq, nd, batch, hs]
    };
    assert_eq!(out[0].shape(), y_shape.as_slice());
    assert_eq!(out[1].shape(), state.as_slice());
    let mut want = vec![y, yh];
    if matches!(c.cell, Cell::Lstm { .. }) {
        want.push(yc);
    }
    assert_eq!(out.len(), want.len());
    for (k, (o, w)) in out.iter().zip(&want).enumerate() {
        assert_eq!(o.dtype(), dt);
        let got = o.to_f64_vec();
        assert_eq!(got.len(), w.len());
        for (i, (a, b)) in got.iter().zip(w).enumerate() {
            assert!(
                (a - b).abs() <= tol,
                "{:?} output {k} [{i}]: {a} vs {b}",
                c.cell
            );
        }
    }
}

const CELLS: [Cell; 5] = [
    Cell::Lstm {
        input_forget: false,
    },
    Cell::Lstm { input_forget: true },
    Cell::Gru {
        linear_before_reset: false,
    },
    Cell::Gru {
        linear_before_reset: true,
    },
    Cell::Rnn,
];

#[test]
fn every_cell_and_direction_matches_the_reference() {
    let dirs = [vec![false], vec![true], vec![false, true]];
    for cell in CELLS {
        for d in &dirs {
            for &(seq, batch, isz, hs) in &[(3, 4, 2, 5), (1, 1, 1, 1), (4, 2, 3, 2)] {
                let c = case(cell, d.clone(), seq, batch, isz, hs);
                check(&c, DType::F64, false, 1e-12);
                check(&c, DType::F64, true, 1e-12);
                check(&c, DType::F32, false, 1e-5);
                check(&c, DType::F32, true, 1e-5);
            }
        }
    }
}

#[test]
fn f16_runs_through_f32() {
    let c = case(
        Cell::Gru {
            linear_before_reset: true,
        },
        vec![false],
        2,
        3,
        2,
        3,
    );
    check(&c, DType::F16, false, 1e-2);
    check(&c, DType::BF16, true, 5e-2);
}

#[test]
fn other_activations_and_clip() {
    let acts = [
        Act::Relu,
        Act::Affine(0.5, 0.1),
        Act::LeakyRelu(0.2),
        Act::ThresholdedRelu(0.3),
        Act::ScaledTanh(1.5, 0.7),
        Act::HardSigmoid(0.3, 0.4),
        Act::Elu(0.9),
        Act::Softsign,
        Act::Softplus,
    ];
    for &a in &acts {
        let mut c = case(Cell::Rnn, vec![false, true], 3, 2, 2, 3);
        c.acts = vec![a, Act::Sigmoid];
        c.clip = Some(0.6);
        check(&c, DType::F64, false, 1e-12);
        let mut c = case(
            Cell::Lstm {
                input_forget: false,
            },
            vec![true],
            3,
            2,
            2,
            3,
        );
        c.acts = vec![Act::HardSigmoid(0.2, 0.5), a, a];
        c.clip = Some(0.8);
        check(&c, DType::F64, true, 1e-12);
    }
}

#[test]
fn empty_sequence_and_batch() {
    for cell in CELLS {
        for &(seq, batch) in &[(0, 2), (3, 0), (0, 0)] {
            let c = case(cell, vec![false, true], seq, batch, 2, 3);
            check(&c, DType::F32, false, 1e-6);
            check(&c, DType::F32, true, 1e-6);
        }
    }
}

#[test]
fn activation_parameters_are_consumed_in_order() {
    let mut al = [0.7, 0.4].into_iter();
    let mut be = [0.1].into_iter();
    let mut next_a = || al.next();
    let mut next_b = || be.next();
    let a = Act::parse("LeakyRelu", &mut next_a, &mut next_b).unwrap();
    let b = Act::parse("hardsigmoid", &mut next_a, &mut next_b).unwrap();
    let c = Act::parse("Affine", &mut next_a, &mut next_b).unwrap();
    assert_eq!(a, Act::LeakyRelu(0.7));
    assert_eq!(b, Act::HardSigmoid(0.4, 0.1));
    assert_eq!(c, Act::Affine(1.0, 0.0));
    assert!(Act::parse("Gelu", &mut || None, &mut || None).is_none());
    assert!((Act::Sigmoid.apply(-800.0)).abs() < 1e-300);
    assert_eq!(Act::Sigmoid.apply(800.0), 1.0);
}

#[test]
fn bad_inputs_are_errors() {
    let c = case(Cell::Rnn, vec![false], 2, 2, 2, 3);
    let o = op(&c, false);
    let f = |s: &[usize], v: &[f64]| Value::from_vec(s, v.to_vec()).unwrap().cast(DType::F32);
    let x = f(&[2, 2, 2], &c.x);
    let w = f(&[1, 3, 2], &c.w);
    let r = f(&[1, 3, 3], &c.r);
    assert!(o.run(&[Some(&x), Some(&w), Some(&r)], ctx()).is_ok());
    // W of another dtype, R of the wrong shape, X of an integer type, a missing input.
    let w64 = w.cast(DType::F64);
    let e = o.run(&[Some(&x), Some(&w64), Some(&r)], ctx()).unwrap_err();
    assert!(e.to_string().contains("f64"), "{e}");
    assert!(o.run(&[Some(&x), Some(&w), Some(&w)], ctx()).is_err());
    let xi = x.cast(DType::I32);
    assert!(o.run(&[Some(&xi), Some(&w), Some(&r)], ctx()).is_err());
    assert!(o.run(&[Some(&x), Some(&w), None], ctx()).is_err());
    // sequence_lens: wrong type, too long, negative, wrong shape.
    for l in [
        Value::from_vec(&[2], vec![1i64, 2]).unwrap(),
        Value::from_vec(&[2], vec![3i32, 2]).unwrap(),
        Value::from_vec(&[2], vec![-1i32, 2]).unwrap(),
        Value::from_vec(&[1], vec![1i32]).unwrap(),
    ] {
        let ins = [Some(&x), Some(&w), Some(&r), None, Some(&l)];
        assert!(o.run(&ins, ctx()).is_err(), "{l:?}");
    }
    // initial_h and B of the wrong shapes; X not 3-D.
    let h = f(&[2, 1, 3], &c.h0[..6]);
    assert!(o
        .run(&[Some(&x), Some(&w), Some(&r), None, None, Some(&h)], ctx())
        .is_err());
    let b = f(&[1, 5], &c.b[..5]);
    assert!(o
        .run(&[Some(&x), Some(&w), Some(&r), Some(&b)], ctx())
        .is_err());
    let x2 = f(&[4, 2], &c.x);
    assert!(o.run(&[Some(&x2), Some(&w), Some(&r)], ctx()).is_err());
    // An empty sequence over a huge batch is refused before allocating its state.
    let huge = Value::f32(&[0, 1 << 40, 2], vec![]).unwrap();
    let e = o
        .run(&[Some(&huge), Some(&w), Some(&r)], ctx())
        .unwrap_err();
    assert!(matches!(e, crate::GraphError::TooLarge { .. }), "{e}");
    // hidden_size disagreeing with R.
    let mut o2 = o.clone();
    o2.hidden = Some(4);
    assert!(o2.run(&[Some(&x), Some(&w), Some(&r)], ctx()).is_err());
}
