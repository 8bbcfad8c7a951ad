//! The dense baseline of a [`SpikeSlabNet`](crate::SpikeSlabNet): the same ReLU architecture
//! with ordinary weights, initialised like the slab means (`U(-mu_range, mu_range)`), trained
//! the same way (Adam, the same learning rate, batches and epochs, the summed minibatch negative
//! log-likelihood) but with no prior and no KL. Used to compare accuracy and sparsity. A conv
//! front ([`Arch::conv`]) becomes dense convs (kernel and bias) with the same geometry.
use crate::data::{Dataset, Targets};
use crate::error::{BayesError, Result};
use crate::layer::Init;
use crate::net::{Arch, Likelihood};
use crate::rng::Rng;
use crate::train::TrainConfig;
use candle_core::{DType, Device, Tensor, Var, D};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};

/// A dense ReLU network.
#[derive(Debug)]
pub struct DenseNet {
    /// The architecture.
    pub arch: Arch,
    /// Per layer, weights `[inputs, outputs]` and biases `[outputs]`.
    pub layers: Vec<(Var, Var)>,
    /// The conv front's OIHW kernels and optional biases, in order (empty without one).
    pub convs: Vec<(Var, Option<Var>)>,
    /// The likelihood (a Gaussian's noise is fixed, never learned, here).
    pub likelihood: Likelihood,
}

impl DenseNet {
    /// A network initialised like the spike-and-slab means.
    pub fn new(arch: Arch, likelihood: Likelihood, init: &Init, seed: u64) -> Result<Self> {
        arch.check()?;
        let mut rng = Rng::new(seed);
        let mut u = |shape: &[usize]| -> Result<Var> {
            let n = shape.iter().product();
            let v: Vec<f32> = (0..n)
                .map(|_| rng.range(-init.mu_range, init.mu_range) as f32)
                .collect();
            Ok(Var::from_tensor(&Tensor::from_vec(
                v,
                shape,
                &Device::Cpu,
            )?)?)
        };
        let mut convs = Vec::new();
        if let Some(front) = &arch.conv {
            front.check(arch.inputs)?;
            for (st, shape) in front.stages.iter().zip(front.kernel_shapes()) {
                // Kernel before bias: the draw order of the reported runs.
                let w = u(&shape)?;
                let b = if st.config.bias {
                    Some(u(&[st.channels])?)
                } else {
                    None
                };
                convs.push((w, b));
            }
        }
        let sizes = arch.sizes();
        let mut layers = Vec::new();
        for w in sizes.windows(2) {
            let (i, o) = (w[0], w[1]);
            layers.push((u(&[i, o])?, u(&[o])?));
        }
        Ok(Self {
            arch,
            layers,
            convs,
            likelihood,
        })
    }

    /// Every variable: the conv front's, then the fully connected layers'.
    pub fn vars(&self) -> Vec<Var> {
        let mut v: Vec<Var> = Vec::new();
        for (w, b) in &self.convs {
            v.push(w.clone());
            v.extend(b.clone());
        }
        v.extend(self.layers.iter().flat_map(|(w, b)| [w.clone(), b.clone()]));
        v
    }

    /// The network on `x` (`[n, inputs]`).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = x.to_dtype(DType::F32)?;
        if let Some(front) = &self.arch.conv {
            let [c, hh, ww] = front.image;
            h = h.reshape((h.dim(0)?, c, hh, ww))?;
            for ((w, b), st) in self.convs.iter().zip(&front.stages) {
                let b = b.as_ref().map(|b| b.as_tensor());
                h = crate::conv::conv2d(&st.config, st.kernel, &h, w.as_tensor(), b)?.relu()?;
            }
            h = h.flatten_from(1)?;
        }
        for (k, (w, b)) in self.layers.iter().enumerate() {
            h = h.matmul(w.as_tensor())?.broadcast_add(b.as_tensor())?;
            if k + 1 < self.layers.len() {
                h = h.relu()?;
            }
        }
        Ok(h)
    }

    /// Summed negative log-likelihood of a batch (up to constants for the Gaussian).
    fn nll(&self, f: &Tensor, data: &Dataset, idx: &[usize]) -> Result<Tensor> {
        match (&self.likelihood, &data.targets) {
            (Likelihood::Categorical, Targets::Labels(l)) => {
                let y: Vec<u32> = idx.iter().map(|&i| l[i]).collect();
                let y = Tensor::from_vec(y, idx.len(), &Device::Cpu)?;
                Ok((candle_nn::loss::cross_entropy(f, &y)? * idx.len() as f64)?)
            }
            (Likelihood::Gaussian { sigma, .. }, Targets::Values(v)) => {
                let y: Vec<f32> = idx.iter().map(|&i| v[i]).collect();
                let y = Tensor::from_vec(y, (idx.len(), 1), &Device::Cpu)?;
                Ok(((f - y)?.sqr()?.sum_all()? / (2.0 * sigma * sigma))?)
            }
            _ => Err(BayesError::Data(
                "the targets do not match the likelihood".into(),
            )),
        }
    }

    /// Fraction of exactly-zero weights and biases (a trained dense net has none).
    pub fn density(&self) -> Result<f64> {
        let (mut nz, mut all) = (0usize, 0usize);
        for var in self.vars() {
            let v = var.as_tensor().flatten_all()?.to_vec1::<f32>()?;
            nz += v.iter().filter(|&&x| x != 0.0).count();
            all += v.len();
        }
        Ok(nz as f64 / all.max(1) as f64)
    }
}

/// Train `net` on `data` as [`crate::train::train`] trains a spike-and-slab network (without
/// the KL); `on_epoch` sees the epoch and its summed loss.
pub fn train_dense(
    net: &DenseNet,
    data: &Dataset,
    cfg: &TrainConfig,
    mut on_epoch: impl FnMut(usize, f64),
) -> Result<()> {
    cfg.check()?;
    if data.p != net.arch.inputs {
        return Err(BayesError::Data(format!(
            "data has {} inputs, the network {}",
            data.p, net.arch.inputs
        )));
    }
    let vars = net.vars();
    let params = ParamsAdamW {
        lr: cfg.lr,
        weight_decay: 0.0,
        ..Default::default()
    };
    let mut opt = AdamW::new(vars, params)?;
    let mut rng = Rng::new(cfg.seed);
    for epoch in 0..cfg.epochs {
        let perm = rng.permutation(data.n);
        let mut total = 0.0;
        for idx in perm.chunks(cfg.batch_size) {
            let f = net.forward(&data.rows(idx, DType::F32)?)?;
            let loss = net.nll(&f, data, idx)?;
            let l = loss.to_scalar::<f32>()? as f64;
            if !l.is_finite() {
                return Err(BayesError::Diverged { epoch, loss: l });
            }
            total += l;
            opt.backward_step(&loss)?;
        }
        on_epoch(epoch, total);
    }
    Ok(())
}

/// Classification accuracy of `net` on `data`, in batches of 4096 rows.
pub fn dense_accuracy(net: &DenseNet, data: &Dataset) -> Result<f64> {
    let Targets::Labels(l) = &data.targets else {
        return Err(BayesError::Data("accuracy needs class labels".into()));
    };
    let all: Vec<usize> = (0..data.n).collect();
    let mut ok = 0usize;
    for idx in all.chunks(4096) {
        let pred = net
            .forward(&data.rows(idx, DType::F32)?)?
            .argmax(D::Minus1)?
            .to_vec1::<u32>()?;
        ok += pred.iter().zip(idx).filter(|(p, &i)| **p == l[i]).count();
    }
    Ok(ok as f64 / data.n as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learns_a_two_class_problem() {
        let mut rng = Rng::new(3);
        let n = 400;
        let x: Vec<f32> = (0..n * 3).map(|_| rng.range(-1.0, 1.0) as f32).collect();
        let y: Vec<u32> = x.chunks(3).map(|r| u32::from(r[0] + r[1] > 0.0)).collect();
        let data = Dataset::new(n, 3, x, Targets::Labels(y), 2).unwrap();
        let net = DenseNet::new(
            Arch::uniform(3, 1, 8, 2),
            Likelihood::Categorical,
            &Init::default(),
            1,
        )
        .unwrap();
        let cfg = TrainConfig {
            epochs: 100,
            batch_size: 100,
            lr: 1e-2,
            ..Default::default()
        };
        train_dense(&net, &data, &cfg, |_, _| {}).unwrap();
        let acc = dense_accuracy(&net, &data).unwrap();
        assert!(acc > 0.93, "accuracy {acc}");
        assert!(net.density().unwrap() > 0.99);
    }
}
