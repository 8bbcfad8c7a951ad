//! Fused spike-and-slab kernels, registered as candle custom ops with their own backward.
//!
//! A group's weight sample `gamma * (mu + softplus(rho) * eps)` and its closed-form KL were a
//! dozen element-wise tensor ops each, every one allocating its result and its gradient; on a
//! 784-400-400-10 network they dominated a training step. Here one parallel pass over
//! `(mu, rho, theta)` computes the value and, at the same time, the partial derivatives, which
//! the op keeps for its backward (a multiply by the incoming gradient). Arithmetic is in `f64`
//! whatever the tensors' type (f32 or f64).
use candle_core::backend::BackendStorage;
use candle_core::{
    CpuStorage, CustomOp3, DType, Device, Error, Layout, Result, Shape, Tensor, WithDType,
};
use rayon::prelude::*;
use std::sync::Mutex;

use crate::prior::Prior;
use crate::rng::Rng;

/// Elements per parallel task.
const CHUNK: usize = 4096;

/// The contiguous elements of a custom op's argument.
fn elements<'a, T: WithDType>(s: &'a CpuStorage, l: &Layout) -> Result<&'a [T]> {
    let (a, b) = l
        .contiguous_offsets()
        .ok_or_else(|| Error::Msg("spike-and-slab op: non-contiguous argument".into()))?;
    Ok(&s.as_slice::<T>()?[a..b])
}

/// `n` elements of four outputs, `f(state, i)` giving element `i` of each, in parallel
/// chunks of [`CHUNK`]; `init(k)` makes chunk `k`'s state.
fn map4<T: WithDType, S>(
    n: usize,
    init: impl Fn(usize) -> S + Sync,
    f: impl Fn(&mut S, usize) -> [f64; 4] + Sync,
) -> [Vec<T>; 4] {
    let zero = T::from_f64(0.0);
    let mut out = [vec![zero; n], vec![zero; n], vec![zero; n], vec![zero; n]];
    let [a, b, c, d] = &mut out;
    a.par_chunks_mut(CHUNK)
        .zip(b.par_chunks_mut(CHUNK))
        .zip(c.par_chunks_mut(CHUNK))
        .zip(d.par_chunks_mut(CHUNK))
        .enumerate()
        .for_each(|(k, (((a, b), c), d))| {
            let mut state = init(k);
            for j in 0..a.len() {
                let v = f(&mut state, k * CHUNK + j);
                a[j] = T::from_f64(v[0]);
                b[j] = T::from_f64(v[1]);
                c[j] = T::from_f64(v[2]);
                d[j] = T::from_f64(v[3]);
            }
        });
    out
}

/// `log(1 + exp(x))` and `sigmoid(x)` from one exponential.
#[inline]
fn softplus_sigmoid(x: f64) -> (f64, f64) {
    let e = (-x.abs()).exp();
    let sp = x.max(0.0) + e.ln_1p();
    let sg = if x >= 0.0 {
        1.0 / (1.0 + e)
    } else {
        e / (1.0 + e)
    };
    (sp, sg)
}

/// The partial derivatives a forward pass saved for its backward: `d out / d (mu, rho, theta)`
/// element by element.
type Saved = Mutex<Option<[Tensor; 3]>>;

fn save<T: WithDType>(saved: &Saved, parts: [Vec<T>; 3], shape: &Shape) -> Result<()> {
    let [a, b, c] = parts;
    let t = |v: Vec<T>| Tensor::from_vec(v, shape.clone(), &Device::Cpu);
    let mut slot = saved.lock().map_err(|_| Error::Msg("poisoned".into()))?;
    if slot.is_some() {
        // A second forward would overwrite the first one's partials under its backward.
        return Err(Error::Msg(
            "spike-and-slab op applied twice: build a new op per forward".into(),
        ));
    }
    *slot = Some([t(a)?, t(b)?, t(c)?]);
    Ok(())
}

fn saved(saved: &Saved, name: &str) -> Result<[Tensor; 3]> {
    saved
        .lock()
        .map_err(|_| Error::Msg("poisoned".into()))?
        .clone()
        .ok_or_else(|| Error::Msg(format!("{name}: backward before forward")))
}

fn dtype_error(name: &str, dt: DType) -> Error {
    Error::Msg(format!("{name}: unsupported dtype {dt:?} (f32 or f64)"))
}

/// A fused pass over a group's `(mu, rho, theta)`, for one element type.
trait GroupPass {
    /// Runs the pass; saves the partial derivatives for the backward.
    fn run<T: WithDType>(
        &self,
        mu: &[T],
        rho: &[T],
        theta: &[T],
        shape: &Shape,
    ) -> Result<CpuStorage>;
}

/// The forward shared by both ops: dtype dispatch over contiguous arguments.
#[allow(clippy::too_many_arguments)]
fn forward<P: GroupPass>(
    pass: &P,
    name: &str,
    s1: &CpuStorage,
    l1: &Layout,
    s2: &CpuStorage,
    l2: &Layout,
    s3: &CpuStorage,
    l3: &Layout,
) -> Result<CpuStorage> {
    let shape = l1.shape();
    let n = shape.elem_count();
    if l2.shape().elem_count() != n || l3.shape().elem_count() != n {
        return Err(Error::Msg(format!("{name}: mu, rho, theta lengths differ")));
    }
    match s1.dtype() {
        DType::F32 => pass.run::<f32>(
            elements(s1, l1)?,
            elements(s2, l2)?,
            elements(s3, l3)?,
            shape,
        ),
        DType::F64 => pass.run::<f64>(
            elements(s1, l1)?,
            elements(s2, l2)?,
            elements(s3, l3)?,
            shape,
        ),
        dt => Err(dtype_error(name, dt)),
    }
}

/// The backward shared by both ops: the saved partials times the incoming gradient (a tensor of
/// the output's shape, or a scalar for the KL).
type Grads = (Option<Tensor>, Option<Tensor>, Option<Tensor>);
fn backward(saved_parts: &Saved, name: &str, grad: &Tensor) -> Result<Grads> {
    let [a, b, c] = saved(saved_parts, name)?;
    Ok((
        Some(a.broadcast_mul(grad)?),
        Some(b.broadcast_mul(grad)?),
        Some(c.broadcast_mul(grad)?),
    ))
}

/// The generator of chunk `k`'s noise: its own SplitMix64 stream, so the noise is drawn in
/// parallel and still fixed by the seed.
pub(crate) fn chunk_rng(seed: u64, k: usize) -> Rng {
    Rng::new(seed ^ (k as u64 + 1).wrapping_mul(0xD1B5_4A32_D192_ED03))
}

/// The weight sample `gamma * (mu + softplus(rho) * eps)` with `gamma = 1[theta + L > 0]`
/// (the hard binary Concrete sample) and the straight-through gradient of the relaxation
/// `sigmoid((theta + L) / tau)` for `theta`. Element `i` draws its slab noise `eps ~ N(0, 1)`
/// and then its logistic noise `L` from [`chunk_rng`]`(seed, i / CHUNK)`.
pub(crate) struct SlabSample {
    seed: u64,
    temperature: f64,
    saved: Saved,
}

impl SlabSample {
    pub(crate) fn new(seed: u64, temperature: f64) -> Self {
        Self {
            seed,
            temperature,
            saved: Mutex::new(None),
        }
    }
}

impl GroupPass for SlabSample {
    fn run<T: WithDType>(
        &self,
        mu: &[T],
        rho: &[T],
        theta: &[T],
        shape: &Shape,
    ) -> Result<CpuStorage> {
        let n = mu.len();
        let tau = self.temperature;
        let init = |k| chunk_rng(self.seed, k);
        let [w, d_mu, d_rho, d_theta] = map4::<T, Rng>(n, init, |rng, i| {
            let eps = rng.normal();
            let logistic = rng.logistic();
            let (sigma, sig_rho) = softplus_sigmoid(rho[i].to_f64());
            let slab = mu[i].to_f64() + sigma * eps;
            let z = (theta[i].to_f64() + logistic) / tau;
            let hard = if z > 0.0 { 1.0 } else { 0.0 };
            // sigmoid'(z) = e / (1 + e)^2 with e = exp(-|z|), without the cancellation of s (1 - s).
            let e = (-z.abs()).exp();
            let ds = e / ((1.0 + e) * (1.0 + e));
            [hard * slab, hard, hard * eps * sig_rho, slab * ds / tau]
        });
        save(&self.saved, [d_mu, d_rho, d_theta], shape)?;
        Ok(T::to_cpu_storage_owned(w))
    }
}

impl CustomOp3 for SlabSample {
    fn name(&self) -> &'static str {
        "spike-slab-sample"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let out = forward(self, self.name(), s1, l1, s2, l2, s3, l3)?;
        Ok((out, l1.shape().clone()))
    }

    fn bwd(
        &self,
        _mu: &Tensor,
        _rho: &Tensor,
        _theta: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<Grads> {
        backward(&self.saved, self.name(), grad)
    }
}

/// The closed-form KL of a group from the prior, summed (a scalar), with its gradient:
/// `d/dtheta = phi (1 - phi) (theta - logit(lambda) + g)`, `d/dmu = phi mu / sigma0^2`,
/// `d/drho = phi (sigma / sigma0^2 - 1 / sigma) sigmoid(rho)`, where
/// `g = log(sigma0 / sigma) + (sigma^2 + mu^2) / (2 sigma0^2) - 1/2`.
pub(crate) struct SlabKl {
    prior: Prior,
    saved: Saved,
}

impl SlabKl {
    pub(crate) fn new(prior: Prior) -> Self {
        Self {
            prior,
            saved: Mutex::new(None),
        }
    }
}

impl GroupPass for SlabKl {
    fn run<T: WithDType>(
        &self,
        mu: &[T],
        rho: &[T],
        theta: &[T],
        shape: &Shape,
    ) -> Result<CpuStorage> {
        let n = mu.len();
        let lam = self.prior.lambda;
        let (ln_lam, ln_1m_lam) = (lam.ln(), (-lam).ln_1p());
        let s0 = self.prior.sigma0;
        let inv_s0sq = 1.0 / (s0 * s0);
        let [d_mu, d_rho, d_theta, kl] = map4::<f64, ()>(
            n,
            |_| (),
            |_, i| {
                let (m, r, t) = (mu[i].to_f64(), rho[i].to_f64(), theta[i].to_f64());
                let (sigma, sig_rho) = softplus_sigmoid(r);
                // log phi = -softplus(-t), log(1 - phi) = -softplus(t).
                let e = (-t.abs()).exp();
                let phi = if t >= 0.0 {
                    1.0 / (1.0 + e)
                } else {
                    e / (1.0 + e)
                };
                let log_phi = -((-t).max(0.0) + e.ln_1p());
                let log_1m = -(t.max(0.0) + e.ln_1p());
                let gauss = (s0 / sigma).ln() + 0.5 * (sigma * sigma + m * m) * inv_s0sq - 0.5;
                let kl =
                    phi * (log_phi - ln_lam) + (1.0 - phi) * (log_1m - ln_1m_lam) + phi * gauss;
                [
                    phi * m * inv_s0sq,
                    phi * (sigma * inv_s0sq - 1.0 / sigma) * sig_rho,
                    phi * (1.0 - phi) * (t - (ln_lam - ln_1m_lam) + gauss),
                    kl,
                ]
            },
        );
        // In order, so the value is the same whatever the thread count.
        let total: f64 = kl.iter().sum();
        let cast = |v: Vec<f64>| v.into_iter().map(T::from_f64).collect::<Vec<T>>();
        save(&self.saved, [cast(d_mu), cast(d_rho), cast(d_theta)], shape)?;
        Ok(T::to_cpu_storage_owned(vec![T::from_f64(total)]))
    }
}

impl CustomOp3 for SlabKl {
    fn name(&self) -> &'static str {
        "spike-slab-kl"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let out = forward(self, self.name(), s1, l1, s2, l2, s3, l3)?;
        Ok((out, Shape::from(())))
    }

    fn bwd(
        &self,
        _mu: &Tensor,
        _rho: &Tensor,
        _theta: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<Grads> {
        backward(&self.saved, self.name(), grad)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::concrete::hard_concrete;
    use crate::ops::{log_sigmoid, sigmoid, softplus};
    use crate::rng::Rng;
    use candle_core::Var;

    /// `(mu, rho, theta)` of `n` weights with values across the interesting ranges.
    fn group(n: usize, seed: u64, dt: DType) -> [Var; 3] {
        let mut r = Rng::new(seed);
        let mut v = |lo: f64, hi: f64| {
            let x: Vec<f64> = (0..n).map(|_| r.range(lo, hi)).collect();
            Var::from_tensor(
                &Tensor::from_vec(x, n, &Device::Cpu)
                    .unwrap()
                    .to_dtype(dt)
                    .unwrap(),
            )
            .unwrap()
        };
        [v(-2.0, 2.0), v(-6.0, 3.0), v(-8.0, 8.0)]
    }

    fn grads(loss: &Tensor, vars: &[Var; 3]) -> Vec<Vec<f64>> {
        let g = loss.backward().unwrap();
        vars.iter()
            .map(|v| {
                g.get(v)
                    .unwrap()
                    .to_dtype(DType::F64)
                    .unwrap()
                    .to_vec1::<f64>()
                    .unwrap()
            })
            .collect()
    }

    fn close(a: &[f64], b: &[f64], tol: f64, what: &str) {
        assert_eq!(a.len(), b.len());
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!(
                (x - y).abs() <= tol * (1.0 + y.abs()),
                "{what}[{i}]: {x} vs {y}"
            );
        }
    }

    /// Fused sample and gradients equal the composition of candle ops (the former
    /// implementation), for an odd length spanning several chunks, in f64 and f32.
    #[test]
    fn sample_matches_composed_ops() {
        for (dt, tol) in [(DType::F64, 1e-12), (DType::F32, 1e-5)] {
            let n = 2 * CHUNK + 37;
            let vars = group(n, 5, dt);
            let [mu, rho, theta] = &vars;
            let (mut eps, mut lg) = (Vec::new(), Vec::new());
            for i in 0..n {
                if i % CHUNK == 0 {
                    let mut r = chunk_rng(8, i / CHUNK);
                    for _ in i..(i + CHUNK).min(n) {
                        eps.push(r.normal());
                        lg.push(r.logistic());
                    }
                }
            }
            // A weighting so every element's gradient differs.
            let wts = Tensor::from_vec(
                (0..n).map(|i| (i % 7) as f64 - 3.0).collect(),
                n,
                &Device::Cpu,
            )
            .unwrap()
            .to_dtype(dt)
            .unwrap();
            let fused = mu
                .as_tensor()
                .apply_op3(rho.as_tensor(), theta.as_tensor(), SlabSample::new(8, 0.5))
                .unwrap();
            let t = |v: &Vec<f64>| {
                Tensor::from_vec(v.clone(), n, &Device::Cpu)
                    .unwrap()
                    .to_dtype(dt)
                    .unwrap()
            };
            let gamma = hard_concrete(theta.as_tensor(), &t(&lg), 0.5).unwrap();
            let slab =
                (mu.as_tensor() + (softplus(rho.as_tensor()).unwrap() * t(&eps)).unwrap()).unwrap();
            let composed = (gamma * slab).unwrap();
            let f64v = |x: &Tensor| x.to_dtype(DType::F64).unwrap().to_vec1::<f64>().unwrap();
            close(&f64v(&fused), &f64v(&composed), tol, "value");
            let gf = grads(&(fused * &wts).unwrap().sum_all().unwrap(), &vars);
            let gc = grads(&(composed * &wts).unwrap().sum_all().unwrap(), &vars);
            for (k, what) in ["mu", "rho", "theta"].iter().enumerate() {
                close(&gf[k], &gc[k], tol, what);
            }
        }
    }

    #[test]
    fn kl_matches_composed_ops() {
        let prior = Prior::new(1.2e-4, 1.3).unwrap();
        for (dt, tol) in [(DType::F64, 1e-10), (DType::F32, 2e-5)] {
            let n = CHUNK + 11;
            let vars = group(n, 9, dt);
            let [mu, rho, theta] = &vars;
            let fused = mu
                .as_tensor()
                .apply_op3(rho.as_tensor(), theta.as_tensor(), SlabKl::new(prior))
                .unwrap();
            let th = theta.as_tensor();
            let phi = sigmoid(th).unwrap();
            let sigma = softplus(rho.as_tensor()).unwrap();
            let s0 = prior.sigma0;
            let bern = ((&phi * (log_sigmoid(th).unwrap() - prior.lambda.ln()).unwrap()).unwrap()
                + ((1.0 - &phi).unwrap()
                    * (log_sigmoid(&th.neg().unwrap()).unwrap() - (-prior.lambda).ln_1p())
                        .unwrap())
                .unwrap())
            .unwrap();
            let var_term = ((sigma.sqr().unwrap() + mu.as_tensor().sqr().unwrap()).unwrap()
                / (2.0 * s0 * s0))
                .unwrap();
            let gauss = ((var_term - sigma.log().unwrap()).unwrap() + (s0.ln() - 0.5)).unwrap();
            let composed = (bern + (phi * gauss).unwrap()).unwrap().sum_all().unwrap();
            let a = fused
                .to_dtype(DType::F64)
                .unwrap()
                .to_scalar::<f64>()
                .unwrap();
            let b = composed
                .to_dtype(DType::F64)
                .unwrap()
                .to_scalar::<f64>()
                .unwrap();
            assert!((a - b).abs() <= tol * b.abs(), "{a} vs {b}");
            let gf = grads(&(fused * 3.0).unwrap(), &vars);
            let gc = grads(&(composed * 3.0).unwrap(), &vars);
            for (k, what) in ["mu", "rho", "theta"].iter().enumerate() {
                close(&gf[k], &gc[k], tol, what);
            }
        }
    }

    #[test]
    fn a_second_forward_of_one_op_is_refused() {
        use std::sync::Arc;
        let [mu, rho, theta] = group(10, 1, DType::F32);
        let prior = Prior::new(0.1, 1.0).unwrap();
        let op: Arc<Box<dyn CustomOp3 + Send + Sync>> = Arc::new(Box::new(SlabKl::new(prior)));
        let (m, r, t) = (mu.as_tensor(), rho.as_tensor(), theta.as_tensor());
        m.apply_op3_arc(r, t, op.clone()).unwrap();
        let e = m.apply_op3_arc(r, t, op).unwrap_err();
        assert!(e.to_string().contains("applied twice"), "{e}");
    }

    #[test]
    fn extreme_parameters_stay_finite_and_match() {
        // |theta| and |rho| far outside the training range: values and gradients finite and
        // equal to the composed ops where those are finite.
        let n = 6;
        let mk = |v: [f64; 6]| Var::from_tensor(&Tensor::new(&v, &Device::Cpu).unwrap()).unwrap();
        let vars = [
            mk([0.5, -0.5, 2.0, 0.0, 1.0, -1.0]),
            mk([-30.0, 30.0, -12.0, 12.0, 0.0, -40.0]),
            mk([40.0, -40.0, 25.0, -25.0, 0.0, 60.0]),
        ];
        let prior = Prior::new(1e-4, 1.3).unwrap();
        let [mu, rho, theta] = &vars;
        let kl = mu
            .as_tensor()
            .apply_op3(rho.as_tensor(), theta.as_tensor(), SlabKl::new(prior))
            .unwrap();
        let g = grads(&kl, &vars);
        assert!(kl.to_scalar::<f64>().unwrap().is_finite());
        assert!(g.iter().flatten().all(|x| x.is_finite()), "{g:?}");
        let w = mu
            .as_tensor()
            .apply_op3(rho.as_tensor(), theta.as_tensor(), SlabSample::new(3, 0.5))
            .unwrap();
        let g = grads(&w.sum_all().unwrap(), &vars);
        assert!(w.to_vec1::<f64>().unwrap().iter().all(|x| x.is_finite()));
        assert!(
            g.iter().flatten().all(|x| x.is_finite()) && g[0].len() == n,
            "{g:?}"
        );
    }

    #[test]
    fn unsupported_dtype_is_an_error() {
        let t = Tensor::zeros(4, DType::U32, &Device::Cpu).unwrap();
        let prior = Prior::new(0.1, 1.0).unwrap();
        let e = t.apply_op3(&t, &t, SlabKl::new(prior)).unwrap_err();
        assert!(e.to_string().contains("unsupported dtype"), "{e}");
    }
}
