//! [`CsrMatrix`]: compressed sparse rows of an `[rows, cols]` `f32` matrix.
use crate::error::{param_err, shape_err, Result};

/// A sparse `[rows, cols]` matrix in CSR form.
#[derive(Clone, Debug, PartialEq)]
pub struct CsrMatrix {
    /// Number of rows.
    pub rows: usize,
    /// Number of columns.
    pub cols: usize,
    /// Row `r`'s entries are `indptr[r]..indptr[r + 1]`.
    pub indptr: Vec<usize>,
    /// Column of each entry.
    pub indices: Vec<u32>,
    /// Value of each entry.
    pub values: Vec<f32>,
}

impl CsrMatrix {
    /// The entries of row-major `dense` (`[rows, cols]`) where `keep` holds.
    pub fn from_dense(
        dense: &[f32],
        rows: usize,
        cols: usize,
        keep: impl Fn(usize, usize) -> bool,
    ) -> Result<Self> {
        if dense.len() != rows * cols {
            return shape_err("csr", format!("{} values for {rows} x {cols}", dense.len()));
        }
        if cols > u32::MAX as usize {
            return param_err("csr", format!("{cols} columns do not fit u32 indices"));
        }
        let mut indptr = Vec::with_capacity(rows + 1);
        let (mut indices, mut values) = (Vec::new(), Vec::new());
        indptr.push(0);
        for r in 0..rows {
            for c in 0..cols {
                if keep(r, c) {
                    indices.push(c as u32);
                    values.push(dense[r * cols + c]);
                }
            }
            indptr.push(indices.len());
        }
        Ok(Self {
            rows,
            cols,
            indptr,
            indices,
            values,
        })
    }

    /// The nonzero entries of row-major `dense` (`[rows, cols]`).
    pub fn from_nonzeros(dense: &[f32], rows: usize, cols: usize) -> Result<Self> {
        Self::from_dense(dense, rows, cols, |r, c| dense[r * cols + c] != 0.0)
    }

    /// Number of stored entries.
    pub fn nnz(&self) -> usize {
        self.values.len()
    }

    /// Fraction of entries that are not stored.
    pub fn sparsity(&self) -> f64 {
        1.0 - self.nnz() as f64 / (self.rows * self.cols).max(1) as f64
    }

    /// The dense row-major matrix (zeros where nothing is stored).
    pub fn to_dense(&self) -> Vec<f32> {
        let mut d = vec![0.0; self.rows * self.cols];
        for r in 0..self.rows {
            for e in self.indptr[r]..self.indptr[r + 1] {
                d[r * self.cols + self.indices[e] as usize] = self.values[e];
            }
        }
        d
    }
}
