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
        let (mut xt, mut yt) = (Vec::new(), Vec::new());
        if n > 1 {
            (xt, yt) = (vec![0.0; k * n], vec![0.0; m * n]);
        }
        self.forward_rows_into(x, n, [&mut xt, &mut yt], &mut y)?;
        Ok(y)
    }

    /// [`CsrLinear::forward_rows`] into `y` (`[n, outputs]`), with caller-owned scratch for
    /// the transposed input (`[inputs, n]`) and output (`[outputs, n]`), unused at `n = 1`.
    pub fn forward_rows_into(
        &self,
        x: &[f32],
        n: usize,
        [xt, yt]: [&mut [f32]; 2],
        y: &mut [f32],
    ) -> Result<()> {
        let (m, k) = (self.weight.rows, self.weight.cols);
        if n == 1 {
            return self.forward(x, 1, y);
        }
        let (nk, nm) = (n.checked_mul(k), n.checked_mul(m));
        let fits = |len: usize, want: Option<usize>| want == Some(len);
        if !(fits(x.len(), nk) && fits(xt.len(), nk) && fits(y.len(), nm) && fits(yt.len(), nm)) {
            return shape_err(
                "csr linear",
                format!(
                    "rows: {} inputs, {} outputs, scratch {} / {} for {n} rows of {k} -> {m}",
                    x.len(),
                    y.len(),
                    xt.len(),
                    yt.len()
                ),
            );
        }
        transpose_into(x, n, k, xt)?;
        self.forward(xt, n, yt)?;
        transpose_into(yt, m, n, y)
    }
}

/// Row-major `[r, c]` to row-major `[c, r]`; `a` must hold exactly `r * c` values.
pub fn transpose(a: &[f32], r: usize, c: usize) -> Result<Vec<f32>> {
    let mut t = vec![0.0; a.len()];
    transpose_into(a, r, c, &mut t)?;
    Ok(t)
}

/// Row-major `[r, c]` into `t` as row-major `[c, r]`: 8 x 8 blocks through registers with
/// AVX2 (a 1024 x 64 block: 0.19-0.23 ms element by element, whose 4 kB-strided writes thrash
/// L1, against 0.02 ms; example `probes -- transpose`),
/// the ragged edges element by element. Both slices must hold exactly `r * c` values.
pub fn transpose_into(a: &[f32], r: usize, c: usize, t: &mut [f32]) -> Result<()> {
    if r.checked_mul(c)
        .is_none_or(|len| len != a.len() || len != t.len())
    {
        return shape_err(
            "transpose",
            format!("{r} x {c} from {} values into {}", a.len(), t.len()),
        );
    }
    let (mut r8, mut c8) = (0, 0);
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        (r8, c8) = (r - r % 8, c - c % 8);
        // SAFETY: AVX2 is present; blocks stay inside the first r8 rows / c8 columns of the
        // r x c values both slices hold (checked above, without overflow).
        unsafe { blocks_avx2(a, r8, c, c8, r, t) };
    }
    for i in 0..r {
        // Columns not covered by the blocks (all of them in rows r8..).
        let from = if i < r8 { c8 } else { 0 };
        for j in from..c {
            t[j * r + i] = a[i * c + j];
        }
    }
    Ok(())
}

/// The 8 x 8 blocks of rows `0..r8`, columns `0..c8` of `a` (`[_, c]`) into `t` (`[_, r]`).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn blocks_avx2(a: &[f32], r8: usize, c: usize, c8: usize, r: usize, t: &mut [f32]) {
    use std::arch::x86_64::*;
    let (pa, pt) = (a.as_ptr(), t.as_mut_ptr());
    for i0 in (0..r8).step_by(8) {
        for j0 in (0..c8).step_by(8) {
            let rows: [__m256; 8] =
                std::array::from_fn(|q| _mm256_loadu_ps(pa.add((i0 + q) * c + j0)));
            let cols = crate::conv::interleave::transpose8(rows);
            for (q, v) in cols.iter().enumerate() {
                _mm256_storeu_ps(pt.add((j0 + q) * r + i0), *v);
            }
        }
    }
}
