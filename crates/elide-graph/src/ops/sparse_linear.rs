//! [`SparseLinear`]: a Gemm or MatMul whose weights (input 1) are constant and mostly zero,
//! run by `elide-kernels`' CSR layer ([`elide_kernels::csr`]). Built at load by
//! [`crate::optimize::sparse_weights`]; the op it replaced stays inside and runs the batches
//! for which the dense product measured faster.
use super::{eval, Ctx, Op};
use crate::{Result, Value};
use elide_kernels::csr::{CsrLinear, CsrMatrix};
use ndarray::{ArrayD, IxDyn};

/// Fraction of zero weights from which the CSR kernel runs batches of one row; below it the
/// dense product (a GEMV streaming the weights) was faster in `elide bayes bench` (1024 x 1024,
/// kernel against dense at batch 1: 0.66-0.89x at 90% zeros, 0.97-1.42x at 95%, over three
/// runs and both thread counts; the crossover lies between).
pub const CSR_FROM_ONE_ROW: f64 = 0.93;
/// Fraction of zero weights from which the CSR kernel runs batches of several rows
/// (1024 x 1024 at batch 16, three runs: 1.34-1.64x at 90% zeros, 0.65-0.70x at 80%).
pub const CSR_FROM_MANY_ROWS: f64 = 0.88;

/// A fully connected layer `act(x W + b)` over the last axis of its input, with `W` in CSR.
#[derive(Clone, Debug)]
pub struct SparseLinear {
    /// The weights (one CSR row per output feature), bias and fused ReLU.
    pub layer: CsrLinear,
    /// The Gemm or MatMul it replaced, still reading the same inputs.
    pub dense: Box<Op>,
}

impl SparseLinear {
    /// The sparse form of `op` (a Gemm without `transA`, or a MatMul) with constant weights
    /// `b` (2-D) and optional constant `c` (Gemm's C, one value per output or a scalar), or
    /// `None` when `op` is not such a product.
    pub fn from_op(op: &Op, b: &Value, c: Option<&Value>) -> Option<Self> {
        let b = b.as_f32()?;
        if b.ndim() != 2 {
            return None;
        }
        let (alpha, beta, trans_b) = match *op {
            Op::Gemm {
                alpha,
                beta,
                trans_a: false,
                trans_b,
            } => (alpha, beta, trans_b),
            Op::MatMul if c.is_none() => (1.0, 0.0, false),
            _ => return None,
        };
        // Rows of the CSR matrix are outputs: B is [k, n], or [n, k] with transB.
        let (k, n) = if trans_b {
            (b.shape()[1], b.shape()[0])
        } else {
            (b.shape()[0], b.shape()[1])
        };
        let w: Vec<f32> = if trans_b {
            b.iter().map(|&v| alpha * v).collect()
        } else {
            let bt = b.t();
            bt.iter().map(|&v| alpha * v).collect()
        };
        let bias = match c {
            None => vec![0.0; n],
            Some(c) => {
                let c = c.as_f32()?;
                // Gemm's C broadcasts to [m, n]: rank 2 at most.
                if c.ndim() > 2 {
                    return None;
                }
                match c.len() {
                    1 => vec![beta * c.iter().next().copied()?; n],
                    len if len == n && c.shape().iter().rev().skip(1).all(|&d| d == 1) => {
                        c.iter().map(|&v| beta * v).collect()
                    }
                    _ => return None,
                }
            }
        };
        let weight = CsrMatrix::from_nonzeros(&w, n, k).ok()?;
        Some(Self {
            layer: CsrLinear {
                weight,
                bias,
                relu: false,
            },
            dense: Box::new(op.clone()),
        })
    }

    /// Fraction of the weights that are zero.
    pub fn sparsity(&self) -> f64 {
        self.layer.weight.sparsity()
    }

    /// Whether the CSR kernel runs a batch of `rows` (else the dense product does).
    pub fn uses_csr(&self, rows: usize) -> bool {
        let s = self.sparsity();
        s >= CSR_FROM_ONE_ROW || (rows >= 2 && s >= CSR_FROM_MANY_ROWS)
    }

    /// The layer on `inputs` (those of the op it replaced).
    pub fn apply(&self, inputs: &[Option<&Value>], ctx: Ctx) -> Result<ArrayD<f32>> {
        let x = ctx.f32(inputs, 0)?;
        let k = self.layer.weight.cols;
        let gemm = matches!(*self.dense, Op::Gemm { .. });
        if x.ndim() < 2 || x.shape()[x.ndim() - 1] != k || (gemm && x.ndim() != 2) {
            return Err(ctx.err(format!(
                "input {:?} does not end in the weights' {k} inputs",
                x.shape()
            )));
        }
        let rows = x.len() / k.max(1);
        let mut shape = x.shape().to_vec();
        *shape.last_mut().expect("rank >= 2") = self.layer.weight.rows;
        ctx.sized("output", &shape)?;
        if rows == 0 {
            return Ok(ArrayD::zeros(IxDyn(&shape)));
        }
        if !self.uses_csr(rows) {
            let mut y = eval(&self.dense, inputs, ctx)?;
            let Some(Value::F32(mut y)) = y.pop() else {
                return Err(ctx.err("the dense product gave no f32 output"));
            };
            if self.layer.relu {
                y.mapv_inplace(|v| v.max(0.0));
            }
            return Ok(y);
        }
        let x = x.as_standard_layout();
        let xs = x.as_slice().expect("standard layout");
        let m = self.layer.weight.rows;
        // Output and the transposed scratch from the arena: fresh 100 kB+ buffers would fault
        // in their pages on every run.
        let mut y = ctx.alloc(rows * m);
        let (mut xt, mut yt) = if rows > 1 {
            (ctx.alloc(rows * k), ctx.alloc(rows * m))
        } else {
            (Vec::new(), Vec::new())
        };
        let done = self
            .layer
            .forward_rows_into(xs, rows, [&mut xt, &mut yt], &mut y);
        ctx.give(xt);
        ctx.give(yt);
        done.map_err(|e| ctx.err(e.to_string()))?;
        Ok(ArrayD::from_shape_vec(IxDyn(&shape), y)?)
    }
}
