//! The closed-form KL against a Monte Carlo estimate, and gradients of the ELBO pieces against
//! central finite differences in f64.
use candle_core::{DType, Device, Tensor, Var};
use elide_bayes::layer::Group;
use elide_bayes::prior::kl_weight;
use elide_bayes::rng::Rng;
use elide_bayes::{Arch, Dataset, Init, Likelihood, Prior, SpikeSlabNet, Targets};

fn log_normal(x: f64, m: f64, s: f64) -> f64 {
    -0.5 * ((x - m) / s).powi(2) - s.ln() - 0.5 * std::f64::consts::TAU.ln()
}

#[test]
fn closed_form_kl_matches_monte_carlo() {
    let prior = Prior::new(0.05, 1.3).unwrap();
    let mut rng = Rng::new(42);
    for &(phi, mu, sigma) in &[(0.9, 0.7, 0.3), (0.2, -1.5, 0.05), (0.6, 0.0, 2.0)] {
        let exact = kl_weight(&prior, phi, mu, sigma);
        let n = 400_000;
        let (mut s, mut s2) = (0.0, 0.0);
        for _ in 0..n {
            // log q(gamma, w) - log p(gamma, w); the spikes at w = 0 cancel.
            let v = if rng.uniform() < phi {
                let w = mu + sigma * rng.normal();
                phi.ln() + log_normal(w, mu, sigma) - prior.lambda.ln() - log_normal(w, 0.0, 1.3)
            } else {
                (1.0 - phi).ln() - (1.0 - prior.lambda).ln()
            };
            s += v;
            s2 += v * v;
        }
        let mean = s / n as f64;
        let se = ((s2 / n as f64 - mean * mean) / n as f64).sqrt();
        assert!(
            (mean - exact).abs() < 4.0 * se + 1e-9,
            "{phi} {mu} {sigma}: mc {mean} ± {se}, exact {exact}"
        );
    }
}

#[test]
fn tensor_kl_equals_the_scalar_formula() {
    let dev = Device::Cpu;
    let prior = Prior::new(1e-3, 1.3).unwrap();
    let mu = Tensor::new(&[0.5f64, -2.0, 0.0, 3.0], &dev).unwrap();
    let rho = Tensor::new(&[-6.0f64, 0.0, 1.0, -2.0], &dev).unwrap();
    let theta = Tensor::new(&[4.6f64, -3.0, 0.0, 20.0], &dev).unwrap();
    let g = Group::from_tensors(&mu, &rho, &theta).unwrap();
    let got = g.kl(&prior).unwrap().to_scalar::<f64>().unwrap();
    let (phi, m, s) = (g.phi().unwrap(), g.mu().unwrap(), g.sigma().unwrap());
    let want: f64 = (0..4).map(|i| kl_weight(&prior, phi[i], m[i], s[i])).sum();
    assert!(
        (got - want).abs() < 1e-9 * want.abs().max(1.0),
        "{got} vs {want}"
    );
}

/// The loss of one minibatch with fixed noise (same seed), as the trainer computes it.
fn loss(net: &SpikeSlabNet, x: &Tensor, y: &Tensor, seed: u64) -> Tensor {
    let f = net.forward_sample(x, &mut Rng::new(seed), 0.5).unwrap();
    (net.nll(&f, y).unwrap() + (net.kl().unwrap() / 3.0).unwrap()).unwrap()
}

fn check_var(net: &SpikeSlabNet, var: &Var, x: &Tensor, y: &Tensor, what: &str) {
    let grads = loss(net, x, y, 9).backward().unwrap();
    let g = grads
        .get(var)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f64>()
        .unwrap();
    let v0 = var.flatten_all().unwrap().to_vec1::<f64>().unwrap();
    let h = 1e-6;
    for i in 0..v0.len() {
        let at = |d: f64| {
            let mut v = v0.clone();
            v[i] += d;
            var.set(&Tensor::from_vec(v, var.shape(), &Device::Cpu).unwrap())
                .unwrap();
            loss(net, x, y, 9).to_scalar::<f64>().unwrap()
        };
        let fd = (at(h) - at(-h)) / (2.0 * h);
        var.set(&Tensor::from_vec(v0.clone(), var.shape(), &Device::Cpu).unwrap())
            .unwrap();
        assert!(
            (fd - g[i]).abs() < 1e-5 * (1.0 + fd.abs()),
            "{what}[{i}]: fd {fd} vs autograd {}",
            g[i]
        );
    }
}

#[test]
fn elbo_gradients_match_finite_differences() {
    let arch = Arch::uniform(3, 1, 4, 1);
    let prior = Prior::new(0.1, 1.3).unwrap();
    let init = Init {
        mu_range: 0.8,
        rho: -1.0,
        phi: 0.7,
    };
    for lik in [
        Likelihood::Gaussian {
            sigma: 0.8,
            learned: true,
        },
        Likelihood::Categorical,
    ] {
        let arch = match lik {
            Likelihood::Categorical => Arch {
                outputs: 3,
                ..arch.clone()
            },
            _ => arch.clone(),
        };
        let net = SpikeSlabNet::new(arch, prior, lik, &init, 3, DType::F64).unwrap();
        let mut r = Rng::new(1);
        let x: Vec<f32> = (0..15).map(|_| r.normal() as f32).collect();
        let targets = match lik {
            Likelihood::Categorical => Targets::Labels(vec![0, 2, 1, 1, 0]),
            _ => Targets::Values((0..5).map(|_| r.normal() as f32).collect()),
        };
        let d = Dataset::new(5, 3, x, targets, 3).unwrap();
        let xt = d.x_tensor(DType::F64).unwrap();
        let yt = net.target_tensor(&d.targets, &[0, 1, 2, 3, 4]).unwrap();
        for (li, l) in net.layers.iter().enumerate() {
            for (name, grp) in [("weight", &l.weight), ("bias", &l.bias)] {
                // mu and rho enter the likelihood and the KL; theta is checked through the KL
                // alone (its likelihood gradient is the straight-through surrogate).
                check_var(
                    &net,
                    &grp.mu,
                    &xt,
                    &yt,
                    &format!("{lik:?} layer{li}.{name}.mu"),
                );
                check_var(
                    &net,
                    &grp.rho,
                    &xt,
                    &yt,
                    &format!("{lik:?} layer{li}.{name}.rho"),
                );
                let kl_only = |v: &Var| {
                    let g = net.kl().unwrap().backward().unwrap();
                    let a = g
                        .get(v)
                        .unwrap()
                        .flatten_all()
                        .unwrap()
                        .to_vec1::<f64>()
                        .unwrap();
                    let v0 = v.flatten_all().unwrap().to_vec1::<f64>().unwrap();
                    for i in 0..v0.len() {
                        let at = |dx: f64| {
                            let mut w = v0.clone();
                            w[i] += dx;
                            v.set(&Tensor::from_vec(w, v.shape(), &Device::Cpu).unwrap())
                                .unwrap();
                            net.kl().unwrap().to_scalar::<f64>().unwrap()
                        };
                        let fd = (at(1e-6) - at(-1e-6)) / 2e-6;
                        v.set(&Tensor::from_vec(v0.clone(), v.shape(), &Device::Cpu).unwrap())
                            .unwrap();
                        assert!(
                            (fd - a[i]).abs() < 1e-5 * (1.0 + fd.abs()),
                            "theta[{i}]: {fd} vs {}",
                            a[i]
                        );
                    }
                };
                kl_only(&grp.theta);
            }
        }
        if let Likelihood::Gaussian { .. } = lik {
            check_var(&net, &net.log_noise, &xt, &yt, "log_noise");
        }
    }
}
