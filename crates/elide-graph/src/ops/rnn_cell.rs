//! The recurrent cells behind [`super::rnn`]: the ONNX activation functions (with their
//! alpha/beta), and one direction of an LSTM, GRU or simple RNN over a whole sequence.
//!
//! A direction projects every time step's input at once (`X · W^T`, one GEMM for all
//! `seq * batch` rows), then per step multiplies the previous hidden state by `R^T` (one GEMM
//! over the batch) and applies the gate equations element-wise in f64. A batch entry whose
//! sequence length is shorter than the input's stops there: its later outputs stay zero and
//! its state (the `Y_h` / `Y_c` outputs) is the one of its last valid step.
use crate::Elem;
use ndarray::linalg::general_mat_mul;
use ndarray::{s, Array2, ArrayView2, LinalgScalar};

/// An ONNX recurrent activation function with its parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Act {
    /// `max(0, x)`.
    Relu,
    /// `tanh(x)`.
    Tanh,
    /// `1 / (1 + e^-x)`.
    Sigmoid,
    /// `alpha * x + beta`.
    Affine(f64, f64),
    /// `x` for `x >= 0`, else `alpha * x`.
    LeakyRelu(f64),
    /// `x` for `x > alpha`, else 0.
    ThresholdedRelu(f64),
    /// `alpha * tanh(beta * x)`.
    ScaledTanh(f64, f64),
    /// `clamp(alpha * x + beta, 0, 1)`.
    HardSigmoid(f64, f64),
    /// `x` for `x >= 0`, else `alpha * (e^x - 1)`.
    Elu(f64),
    /// `x / (1 + |x|)`.
    Softsign,
    /// `ln(1 + e^x)`.
    Softplus,
}

impl Act {
    /// Parses an ONNX activation name (case-insensitive). `alpha` and `beta` are called for
    /// the parameters the function takes, in that order, and return `None` when the model
    /// gave none (then ONNX's default for the function applies).
    pub fn parse(
        name: &str,
        alpha: &mut dyn FnMut() -> Option<f64>,
        beta: &mut dyn FnMut() -> Option<f64>,
    ) -> Option<Act> {
        let mut a = |d: f64| alpha().unwrap_or(d);
        Some(match name.to_ascii_lowercase().as_str() {
            "relu" => Act::Relu,
            "tanh" => Act::Tanh,
            "sigmoid" => Act::Sigmoid,
            "affine" => {
                let al = a(1.0);
                Act::Affine(al, beta().unwrap_or(0.0))
            }
            "leakyrelu" => Act::LeakyRelu(a(0.01)),
            "thresholdedrelu" => Act::ThresholdedRelu(a(1.0)),
            "scaledtanh" => {
                let al = a(1.0);
                Act::ScaledTanh(al, beta().unwrap_or(1.0))
            }
            "hardsigmoid" => {
                let al = a(0.2);
                Act::HardSigmoid(al, beta().unwrap_or(0.5))
            }
            "elu" => Act::Elu(a(1.0)),
            "softsign" => Act::Softsign,
            "softplus" => Act::Softplus,
            _ => return None,
        })
    }

    /// The function at `x`.
    pub fn apply(self, x: f64) -> f64 {
        match self {
            Act::Relu => x.max(0.0),
            Act::Tanh => x.tanh(),
            Act::Sigmoid => {
                // Stable on both sides: never exp of a large positive number.
                if x >= 0.0 {
                    1.0 / (1.0 + (-x).exp())
                } else {
                    let e = x.exp();
                    e / (1.0 + e)
                }
            }
            Act::Affine(a, b) => a * x + b,
            Act::LeakyRelu(a) => {
                if x >= 0.0 {
                    x
                } else {
                    a * x
                }
            }
            Act::ThresholdedRelu(a) => {
                if x > a {
                    x
                } else {
                    0.0
                }
            }
            Act::ScaledTanh(a, b) => a * (b * x).tanh(),
            Act::HardSigmoid(a, b) => (a * x + b).clamp(0.0, 1.0),
            Act::Elu(a) => {
                if x >= 0.0 {
                    x
                } else {
                    a * x.exp_m1()
                }
            }
            Act::Softsign => x / (1.0 + x.abs()),
            Act::Softplus => x.max(0.0) + (-x.abs()).exp().ln_1p(),
        }
    }
}

/// Which cell, with its cell-specific attributes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cell {
    /// LSTM (gates i, o, f, c), `input_forget` couples the forget gate to `1 - i`.
    Lstm {
        /// Whether `f = 1 - i`.
        input_forget: bool,
    },
    /// GRU (gates z, r, h).
    Gru {
        /// Apply the reset gate after the recurrent product (`r * (h R^T + Rb)`).
        linear_before_reset: bool,
    },
    /// Simple RNN (one gate).
    Rnn,
}

impl Cell {
    /// Gates per hidden unit (rows of W and R per unit).
    pub fn gates(self) -> usize {
        match self {
            Cell::Lstm { .. } => 4,
            Cell::Gru { .. } => 3,
            Cell::Rnn => 1,
        }
    }

    /// Activation functions per direction.
    pub fn acts(self) -> usize {
        match self {
            Cell::Lstm { .. } => 3,
            Cell::Gru { .. } => 2,
            Cell::Rnn => 1,
        }
    }
}

/// One direction's weights and options (shapes checked by the caller).
pub struct Direction<'a, T> {
    /// The cell.
    pub cell: Cell,
    /// Run from the last valid step to the first.
    pub reverse: bool,
    /// `[gates * hidden, input]`.
    pub w: ArrayView2<'a, T>,
    /// `[gates * hidden, hidden]`.
    pub r: ArrayView2<'a, T>,
    /// Input bias then recurrent bias, `gates * hidden` each (zeros when absent).
    pub wb: Vec<f64>,
    /// The recurrent bias.
    pub rb: Vec<f64>,
    /// LSTM peepholes i, o, f (`3 * hidden`, zeros when absent).
    pub p: Vec<f64>,
    /// The cell's activations (f, g, h as the cell uses them).
    pub acts: Vec<Act>,
    /// Clip of the gates' pre-activations.
    pub clip: Option<f64>,
}

/// The outputs of one direction, step by step and final.
pub struct DirOut<T> {
    /// `[seq][batch][hidden]`, zero past each batch entry's length.
    pub y: Vec<T>,
    /// The final hidden state, `[batch][hidden]`.
    pub h: Array2<T>,
    /// The final cell state (LSTM; zeros for the others).
    pub c: Array2<T>,
}

/// Runs one direction over `x` (`[seq * batch, input]`, row `t * batch + b`), from the
/// states `h0`, `c0` (`[batch, hidden]`); `lens` holds each batch entry's length (at most
/// `seq`).
pub fn run_direction<T: Elem + LinalgScalar>(
    d: &Direction<T>,
    x: ArrayView2<T>,
    lens: &[usize],
    mut h: Array2<T>,
    mut c: Array2<T>,
    seq: usize,
) -> DirOut<T> {
    let batch = h.nrows();
    let hs = h.ncols();
    let gh = d.cell.gates() * hs;
    let mut xw = Array2::<T>::zeros((x.nrows(), gh));
    general_mat_mul(T::one(), &x, &d.w.t(), T::zero(), &mut xw);
    let mut y = vec![T::zero(); seq * batch * hs];
    let mut rec = Array2::<T>::zeros((batch, gh));
    let mut rh = Array2::<T>::zeros((batch, hs));
    let clip = |v: f64| match d.clip {
        Some(c) => v.clamp(-c, c),
        None => v,
    };
    let act = |i: usize, v: f64| d.acts[i].apply(clip(v));
    let time = |s: usize, b: usize| -> Option<usize> {
        let len = lens[b];
        (s < len).then(|| if d.reverse { len - 1 - s } else { s })
    };
    for s in 0..seq {
        let gru_late = matches!(
            d.cell,
            Cell::Gru {
                linear_before_reset: false
            }
        );
        if gru_late {
            // z and r now; h's recurrent product waits for r.
            let mut zr = rec.slice_mut(s![.., 0..2 * hs]);
            general_mat_mul(
                T::one(),
                &h,
                &d.r.slice(s![0..2 * hs, ..]).t(),
                T::zero(),
                &mut zr,
            );
            rh.fill(T::zero());
            for b in 0..batch {
                let Some(t) = time(s, b) else { continue };
                let xr = xw.row(t * batch + b);
                for j in 0..hs {
                    let k = hs + j;
                    let r = act(0, xr[k].to_f64() + rec[(b, k)].to_f64() + d.wb[k] + d.rb[k]);
                    rh[(b, j)] = T::from_f64(r * h[(b, j)].to_f64());
                }
            }
            let mut hh = rec.slice_mut(s![.., 2 * hs..3 * hs]);
            general_mat_mul(
                T::one(),
                &rh,
                &d.r.slice(s![2 * hs..3 * hs, ..]).t(),
                T::zero(),
                &mut hh,
            );
        } else {
            general_mat_mul(T::one(), &h, &d.r.t(), T::zero(), &mut rec);
        }
        for b in 0..batch {
            let Some(t) = time(s, b) else { continue };
            let xr = xw.row(t * batch + b);
            let pre = |k: usize| xr[k].to_f64() + rec[(b, k)].to_f64() + d.wb[k] + d.rb[k];
            let out = &mut y[(t * batch + b) * hs..(t * batch + b + 1) * hs];
            for j in 0..hs {
                let hp = h[(b, j)].to_f64();
                let hn = match d.cell {
                    Cell::Lstm { input_forget } => {
                        let cp = c[(b, j)].to_f64();
                        let i = act(0, pre(j) + d.p[j] * cp);
                        let f = if input_forget {
                            1.0 - i
                        } else {
                            act(0, pre(2 * hs + j) + d.p[2 * hs + j] * cp)
                        };
                        let g = act(1, pre(3 * hs + j));
                        let cn = f * cp + i * g;
                        let o = act(0, pre(hs + j) + d.p[hs + j] * cn);
                        c[(b, j)] = T::from_f64(cn);
                        o * d.acts[2].apply(cn)
                    }
                    Cell::Gru {
                        linear_before_reset,
                    } => {
                        let z = act(0, pre(j));
                        let k = 2 * hs + j;
                        let n = if linear_before_reset {
                            let r = act(0, pre(hs + j));
                            act(
                                1,
                                xr[k].to_f64() + d.wb[k] + r * (rec[(b, k)].to_f64() + d.rb[k]),
                            )
                        } else {
                            act(1, pre(k))
                        };
                        (1.0 - z) * n + z * hp
                    }
                    Cell::Rnn => act(0, pre(j)),
                };
                let hn = T::from_f64(hn);
                h[(b, j)] = hn;
                out[j] = hn;
            }
        }
    }
    if !matches!(d.cell, Cell::Lstm { .. }) {
        c.fill(T::zero());
    }
    DirOut { y, h, c }
}
