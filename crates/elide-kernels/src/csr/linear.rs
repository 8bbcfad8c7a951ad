//! [`CsrLinear`]: a fully connected layer `y = act(W x + b)` whose weights are stored in CSR,
//! run on the current rayon pool, one output row per task chunk.
use super::{kernel, CsrMatrix};
use crate::error::{param_err, shape_err, Result};
use rayon::prelude::*;

/// Multiply-adds below which a layer runs on one thread (waking a second costs more).
const PAR_MIN_WORK: usize = 1 << 15;

/// A sparse fully connected layer: `y = act(W x + b)` with `W` `[outputs, inputs]` in CSR.
#[derive(Clone, Debug)]
pub struct CsrLinear {
    /// The weights, one row per output.
    pub weight: CsrMatrix,
    /// One bias per output.
    pub bias: Vec<f32>,
    /// ReLU after the layer.
    pub relu: bool,
}

impl CsrLinear {
    /// `dst` (`[outputs, batch]`) from `src` (`[inputs, batch]`), both feature-major.
    pub fn forward(&self, src: &[f32], batch: usize, dst: &mut [f32]) -> Result<()> {
        let (m, k) = (self.weight.rows, self.weight.cols);
        if src.len() != k * batch || dst.len() != m * batch || batch == 0 {
            return shape_err(
                "csr linear",
                format!(
                    "{k} -> {m}: src {} / dst {} values for batch {batch}",
                    src.len(),
                    dst.len()
                ),
            );
        }
        if self.bias.len() != m || self.weight.indptr.len() != m + 1 {
            return param_err(
                "csr linear",
                format!(
                    "{} biases, {} row pointers for {m} rows",
                    self.bias.len(),
                    self.weight.indptr.len()
                ),
            );
        }
        let w = &self.weight;
        let one = |(r, out): (usize, &mut [f32])| -> Option<()> {
            let (a, b) = (w.indptr[r], w.indptr[r + 1]);
            kernel::row(
                out,
                src,
                batch,
                w.indices.get(a..b)?,
                w.values.get(a..b)?,
                self.bias[r],
            )?;
            if self.relu {
                out.iter_mut().for_each(|v| *v = v.max(0.0));
            }
            Some(())
        };
        let ok = if w.nnz() * batch >= PAR_MIN_WORK && rayon::current_num_threads() > 1 {
            dst.par_chunks_mut(batch)
                .enumerate()
                .map(one)
                .all(|r| r.is_some())
        } else {
            dst.chunks_mut(batch)
                .enumerate()
                .map(one)
                .all(|r| r.is_some())
        };
        if !ok {
            return param_err("csr linear", "a column index or row range is out of bounds");
        }
        Ok(())
    }

    /// Row-major outputs `[n, outputs]` for row-major inputs `x` (`[n, inputs]`): at `n = 1`
    /// the two layouts coincide; otherwise the block is transposed in and out.
    pub fn forward_rows(&self, x: &[f32], n: usize) -> Result<Vec<f32>> {
        let (m, k) = (self.weight.rows, self.weight.cols);
        let mut y = vec![0.0; m * n];
        if n == 1 {
            self.forward(x, 1, &mut y)?;
            return Ok(y);
        }
        if x.len() != n * k {
            return shape_err(
                "csr linear",
                format!("{} inputs for {n} rows of {k}", x.len()),
            );
        }
        let xt = transpose(x, n, k);
        self.forward(&xt, n, &mut y)?;
        Ok(transpose(&y, m, n))
    }
}

/// Row-major `[r, c]` to row-major `[c, r]`.
pub fn transpose(a: &[f32], r: usize, c: usize) -> Vec<f32> {
    let mut t = vec![0.0; a.len()];
    for i in 0..r {
        for j in 0..c {
            t[j * r + i] = a[i * c + j];
        }
    }
    t
}
