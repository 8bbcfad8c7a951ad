//! [`SparseNet`]: the posterior network exported to CSR layers ([`SparseLayer`]), and
//! [`DenseLayer`], the `gemm` layer of the same shape used as baseline and reference.
use super::{CsrMatrix, SparseLayer};
use crate::error::{BayesError, Result};
use crate::net::SpikeSlabNet;
use elide_kernels::csr::transpose;

/// A dense fully connected layer run by `gemm` (row-major `[outputs, inputs]` weights).
#[derive(Clone, Debug)]
pub struct DenseLayer {
    /// Outputs.
    pub rows: usize,
    /// Inputs.
    pub cols: usize,
    /// Row-major weights.
    pub weight: Vec<f32>,
    /// One bias per output.
    pub bias: Vec<f32>,
    /// ReLU after the layer.
    pub relu: bool,
}

impl DenseLayer {
    /// The dense layer holding the same values as `s`.
    pub fn from_sparse(s: &SparseLayer) -> Self {
        Self {
            rows: s.weight.rows,
            cols: s.weight.cols,
            weight: s.weight.to_dense(),
            bias: s.bias.clone(),
            relu: s.relu,
        }
    }

    /// `dst` (`[outputs, batch]`) from `src` (`[inputs, batch]`), feature-major, by `gemm`
    /// on the current rayon pool's threads.
    pub fn forward(&self, src: &[f32], batch: usize, dst: &mut [f32]) -> Result<()> {
        let (m, k) = (self.rows, self.cols);
        if batch == 0 {
            return Err(BayesError::Data(format!(
                "dense layer {k} -> {m}: batch must be at least 1, got 0"
            )));
        }
        let sizes = [k.checked_mul(batch), m.checked_mul(batch), m.checked_mul(k)];
        if sizes != [Some(src.len()), Some(dst.len()), Some(self.weight.len())]
            || self.bias.len() != m
        {
            return Err(BayesError::Data(format!(
                "dense layer {k} -> {m}: bad buffer sizes"
            )));
        }
        let threads = rayon::current_num_threads();
        let par = if threads > 1 {
            gemm::Parallelism::Rayon(threads)
        } else {
            gemm::Parallelism::None
        };
        // SAFETY: dst is m x batch, weight m x k, src k x batch, all row-major (checked above).
        unsafe {
            gemm::gemm(
                m,
                batch,
                k,
                dst.as_mut_ptr(),
                1,
                batch as isize,
                false,
                self.weight.as_ptr(),
                1,
                k as isize,
                src.as_ptr(),
                1,
                batch as isize,
                0.0,
                1.0,
                false,
                false,
                false,
                par,
            );
        }
        for (r, row) in dst.chunks_mut(batch).enumerate() {
            let b = self.bias[r];
            if self.relu {
                row.iter_mut().for_each(|v| *v = (*v + b).max(0.0));
            } else {
                row.iter_mut().for_each(|v| *v += b);
            }
        }
        Ok(())
    }
}

/// The posterior's network as sparse layers: weights and biases with `phi > 0.5` at `mu`.
#[derive(Clone, Debug)]
pub struct SparseNet {
    /// The layers, inputs first; ReLU on all but the last.
    pub layers: Vec<SparseLayer>,
}

impl SparseNet {
    /// Export the network's median model (`phi > 0.5`) at the posterior means. A network
    /// with a conv front is an error: its fully connected layers alone are
    /// [`SparseNet::head_from_posterior`], its convs `SpikeSlabConv2d::posterior`.
    pub fn from_posterior(net: &SpikeSlabNet) -> Result<Self> {
        if !net.convs.is_empty() {
            return Err(BayesError::Config(
                "the network has a conv front; SparseNet holds fully connected layers only".into(),
            ));
        }
        Self::head_from_posterior(net)
    }

    /// The median model of the network's fully connected layers (after any conv front).
    pub fn head_from_posterior(net: &SpikeSlabNet) -> Result<Self> {
        let Some(last) = net.layers.len().checked_sub(1) else {
            return Err(BayesError::Config("the network has no layers".into()));
        };
        let layers = net
            .layers
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let (mu, phi) = (l.weight.mu()?, l.weight.phi()?);
                // Stored [inputs, outputs]; the kernel wants rows = outputs.
                let (k, m) = (l.inputs, l.outputs);
                let wt: Vec<f32> = (0..m * k).map(|e| mu[(e % k) * m + e / k] as f32).collect();
                let weight = CsrMatrix::from_dense(&wt, m, k, |o, j| phi[j * m + o] > 0.5)?;
                let (bm, bp) = (l.bias.mu()?, l.bias.phi()?);
                let bias = bm
                    .iter()
                    .zip(&bp)
                    .map(|(&u, &p)| if p > 0.5 { u as f32 } else { 0.0 });
                Ok(SparseLayer {
                    weight,
                    bias: bias.collect(),
                    relu: i < last,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { layers })
    }

    /// Outputs (`[n, outputs]`, row-major) for row-major inputs `x` (`[n, inputs]`).
    pub fn forward(&self, x: &[f32], n: usize) -> Result<Vec<f32>> {
        let Some(first) = self.layers.first() else {
            return Err(BayesError::Config("the network has no layers".into()));
        };
        let p = first.weight.cols;
        if n.checked_mul(p) != Some(x.len()) || n == 0 {
            return Err(BayesError::Data(format!(
                "{} inputs for {n} rows of {p}",
                x.len()
            )));
        }
        let mut h = transpose(x, n, p)?;
        for l in &self.layers {
            let mut out = vec![0.0; l.weight.rows * n];
            l.forward(&h, n, &mut out)?;
            h = out;
        }
        let k = self.layers.last().map_or(0, |l| l.weight.rows);
        Ok(transpose(&h, k, n)?)
    }

    /// Fraction of weights (not biases) that are not stored.
    pub fn sparsity(&self) -> f64 {
        let nnz: usize = self.layers.iter().map(|l| l.weight.nnz()).sum();
        let all: usize = self
            .layers
            .iter()
            .map(|l| l.weight.rows * l.weight.cols)
            .sum();
        1.0 - nnz as f64 / all.max(1) as f64
    }
}
