//! Adam (Kingma & Ba) on a small parameter vector.

/// Adam state for `n` parameters.
#[derive(Clone, Debug)]
pub struct Adam {
    lr: f64,
    m: Vec<f64>,
    v: Vec<f64>,
    /// `B1^t` and `B2^t`, kept as running products.
    b1t: f64,
    b2t: f64,
}

const B1: f64 = 0.9;
const B2: f64 = 0.999;
const EPS: f64 = 1e-8;

impl Adam {
    /// Fresh state with learning rate `lr`.
    pub fn new(n: usize, lr: f64) -> Self {
        Self {
            lr,
            m: vec![0.0; n],
            v: vec![0.0; n],
            b1t: 1.0,
            b2t: 1.0,
        }
    }

    /// One step: `x -= lr * m_hat / (sqrt(v_hat) + eps)`.
    pub fn step(&mut self, x: &mut [f64], g: &[f64]) {
        self.b1t *= B1;
        self.b2t *= B2;
        let (c1, c2) = (1.0 - self.b1t, 1.0 - self.b2t);
        for (((x, g), m), v) in x.iter_mut().zip(g).zip(&mut self.m).zip(&mut self.v) {
            *m = B1 * *m + (1.0 - B1) * g;
            *v = B2 * *v + (1.0 - B2) * g * g;
            *x -= self.lr * (*m / c1) / ((*v / c2).sqrt() + EPS);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimises_a_quadratic() {
        let mut x = [3.0, -2.0];
        let mut opt = Adam::new(2, 0.1);
        for _ in 0..500 {
            let g = [2.0 * (x[0] - 1.0), 2.0 * (x[1] + 0.5)];
            opt.step(&mut x, &g);
        }
        assert!(
            (x[0] - 1.0).abs() < 1e-2 && (x[1] + 0.5).abs() < 1e-2,
            "{x:?}"
        );
    }
}
