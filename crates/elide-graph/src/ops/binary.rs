//! Broadcasting arithmetic: `Add`, `Sub`, `Mul`, `Div`.
//!
//! The shapes real CNNs use — equal shapes (residual adds) and one operand holding a scalar
//! or one value per channel (SE-block scales, normalisation) — run as contiguous loops split
//! across threads, in place when the executor hands over a dying operand, else into a buffer
//! from the graph's arena. Anything else goes through `ndarray` broadcasting; the other
//! element types take the generic path of [`super::arith`].
use super::elementwise::co_broadcast;
use super::Ctx;
use crate::{GraphError, Result, Value};
use ndarray::{ArrayD, Zip};
use rayon::prelude::*;

/// Broadcasting binary arithmetic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Binary {
    /// `a + b`.
    Add,
    /// `a - b`.
    Sub,
    /// `a * b`.
    Mul,
    /// `a / b`.
    Div,
}

/// Floats per parallel task: large enough to amortise scheduling, small enough to split a
/// 60x60 map across two threads.
const CHUNK: usize = 1 << 14;

/// How the other operand lines up with a full-shaped one.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Fit {
    /// Same shape.
    Same,
    /// One value per plane of `inner` floats, cycling over `c` channels (`c = 1`: a scalar).
    PerPlane { inner: usize, c: usize },
}

/// The other operand's data as the kernel reads it.
#[derive(Clone, Copy)]
enum Other<'a> {
    Full(&'a [f32]),
    PerPlane { vals: &'a [f32], inner: usize },
}

impl Binary {
    #[inline(always)]
    fn op(self, x: f32, y: f32) -> f32 {
        match self {
            Binary::Add => x + y,
            Binary::Sub => x - y,
            Binary::Mul => x * y,
            Binary::Div => x / y,
        }
    }

    /// Numpy broadcasting into a new value: f32 on the fast paths, every other numeric
    /// type through [`super::arith`].
    pub fn apply(&self, a: &Value, b: &Value, ctx: Ctx) -> Result<Value> {
        Ok(match (a, b) {
            (Value::F32(a), Value::F32(b)) => Value::F32(self.f32(a, b, ctx)?),
            // Every other type (integers wrap, integer division truncates toward zero and
            // refuses a zero divisor), and mixed types as an error.
            _ => super::arith::binary(*self, a, b, ctx)?,
        })
    }

    /// `a = a op b` when `a` already has the output's shape and the layouts are contiguous;
    /// false (nothing written) otherwise.
    pub fn assign_left(&self, a: &mut ArrayD<f32>, b: &ArrayD<f32>) -> bool {
        let Some(fit) = fit(a.shape(), b.shape()) else {
            return false;
        };
        let (Some(bs), Some(asl)) = (b.as_slice(), a.as_slice_mut()) else {
            return false;
        };
        self.run(asl, None, other(fit, bs), true);
        true
    }

    /// `b = a op b` when both have the same shape and contiguous layouts; false otherwise.
    pub fn assign_right(&self, a: &ArrayD<f32>, b: &mut ArrayD<f32>) -> bool {
        if a.shape() != b.shape() {
            return false;
        }
        let (Some(asl), Some(bs)) = (a.as_slice(), b.as_slice_mut()) else {
            return false;
        };
        self.run(bs, None, Other::Full(asl), false);
        true
    }

    fn f32(&self, a: &ArrayD<f32>, b: &ArrayD<f32>, ctx: Ctx) -> Result<ArrayD<f32>> {
        let bad = |e| broadcast_err(a, b, e, ctx);
        if let (Some(asl), Some(bsl)) = (a.as_slice(), b.as_slice()) {
            // The full operand on either side.
            let fast = match (fit(a.shape(), b.shape()), fit(b.shape(), a.shape())) {
                (Some(f), _) => Some((a, asl, other(f, bsl), true)),
                (None, Some(f)) => Some((b, bsl, other(f, asl), false)),
                _ => None,
            };
            if let Some((full, main, oth, main_left)) = fast {
                let mut out = ctx.alloc(main.len());
                self.run(&mut out, Some(main), oth, main_left);
                return ArrayD::from_shape_vec(full.raw_dim(), out).map_err(bad);
            }
        }
        // Two small operands can broadcast to a huge result ([n, 1] with [1, n]).
        let (av, bv) = co_broadcast(a, b).map_err(bad)?;
        ctx.sized("output", av.shape())?;
        let mut out = av.as_standard_layout().into_owned();
        let op = *self;
        Zip::from(&mut out)
            .and(&bv)
            .for_each(|o, &b| *o = op.op(*o, b));
        Ok(out)
    }

    /// `dst = main op other` (`main_left`) or `other op main`; `main: None` means `dst`
    /// holds it already.
    fn run(&self, dst: &mut [f32], main: Option<&[f32]>, other: Other, main_left: bool) {
        macro_rules! go {
            ($f:expr) => {
                if main_left {
                    kernel($f, dst, main, other)
                } else {
                    kernel(|x, y| $f(y, x), dst, main, other)
                }
            };
        }
        match self {
            Binary::Add => go!(|x: f32, y: f32| x + y),
            Binary::Sub => go!(|x: f32, y: f32| x - y),
            Binary::Mul => go!(|x: f32, y: f32| x * y),
            Binary::Div => go!(|x: f32, y: f32| x / y),
        }
    }
}

/// The error of operands that do not broadcast, naming the node.
fn broadcast_err<T>(a: &ArrayD<T>, b: &ArrayD<T>, e: ndarray::ShapeError, ctx: Ctx) -> GraphError {
    ctx.err(format!(
        "cannot broadcast {:?} with {:?}: {e}",
        a.shape(),
        b.shape()
    ))
}

/// How `b` fits a full-shaped `a` (`a` must be the broadcast result's shape).
fn fit(a: &[usize], b: &[usize]) -> Option<Fit> {
    let n: usize = a.iter().product();
    if a == b {
        return Some(Fit::Same);
    }
    if b.len() > a.len() || n == 0 {
        return None;
    }
    if b.iter().product::<usize>() == 1 {
        // Any plane size will do for one value: chunk-sized, so it splits across threads.
        return Some(Fit::PerPlane {
            inner: n.min(CHUNK),
            c: 1,
        });
    }
    // b right-aligned against a: all 1 except at axis 1, where it matches a's channels.
    let off = a.len() - b.len();
    let per_channel = a.len() >= 2
        && b.iter()
            .enumerate()
            .all(|(i, &d)| d == 1 || (i + off == 1 && d == a[1]));
    per_channel.then(|| Fit::PerPlane {
        inner: a[2..].iter().product(),
        c: a[1],
    })
}

fn other(fit: Fit, data: &[f32]) -> Other<'_> {
    match fit {
        Fit::Same => Other::Full(data),
        Fit::PerPlane { inner, .. } => Other::PerPlane { vals: data, inner },
    }
}

/// `dst[i] = f(main[i], other(i))`, in parallel chunks (whole planes for per-plane values).
fn kernel<F: Fn(f32, f32) -> f32 + Sync + Copy>(
    f: F,
    dst: &mut [f32],
    main: Option<&[f32]>,
    other: Other,
) {
    let chunk = match other {
        Other::Full(_) => CHUNK,
        Other::PerPlane { inner, .. } => inner.max(1) * (CHUNK / inner.max(1)).max(1),
    };
    dst.par_chunks_mut(chunk).enumerate().for_each(|(ci, d)| {
        let at = ci * chunk;
        let m = main.map(|m| &m[at..at + d.len()]);
        match other {
            Other::Full(o) => line(f, d, m, &o[at..at + d.len()]),
            Other::PerPlane { vals, inner } => {
                let first = at / inner.max(1);
                for (p, plane) in d.chunks_mut(inner.max(1)).enumerate() {
                    let y = vals[(first + p) % vals.len()];
                    let mp = m.map(|m| &m[p * inner..p * inner + plane.len()]);
                    scalar_line(f, plane, mp, y);
                }
            }
        }
    });
}

#[inline(always)]
fn line<F: Fn(f32, f32) -> f32>(f: F, d: &mut [f32], m: Option<&[f32]>, o: &[f32]) {
    match m {
        Some(m) => d
            .iter_mut()
            .zip(m.iter().zip(o))
            .for_each(|(d, (&x, &y))| *d = f(x, y)),
        None => d.iter_mut().zip(o).for_each(|(d, &y)| *d = f(*d, y)),
    }
}

#[inline(always)]
fn scalar_line<F: Fn(f32, f32) -> f32>(f: F, d: &mut [f32], m: Option<&[f32]>, y: f32) {
    match m {
        Some(m) => d.iter_mut().zip(m).for_each(|(d, &x)| *d = f(x, y)),
        None => d.iter_mut().for_each(|d| *d = f(*d, y)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::tests::CTX;
    use elide_kernels::rng::SplitMix64;
    use ndarray::IxDyn;

    fn random(shape: &[usize], rng: &mut SplitMix64) -> ArrayD<f32> {
        let n = shape.iter().product();
        ArrayD::from_shape_vec(IxDyn(shape), rng.vec(n, 0.5, 2.0)).unwrap()
    }

    /// ndarray's own broadcasting, the reference.
    fn reference(op: Binary, a: &ArrayD<f32>, b: &ArrayD<f32>) -> ArrayD<f32> {
        let (av, bv) = co_broadcast(a, b).unwrap();
        let mut out = av.to_owned();
        Zip::from(&mut out)
            .and(&bv)
            .for_each(|o, &y| *o = op.op(*o, y));
        out
    }

    const OPS: [Binary; 4] = [Binary::Add, Binary::Sub, Binary::Mul, Binary::Div];

    #[test]
    fn fast_paths_and_in_place_equal_broadcasting() {
        let mut rng = SplitMix64::new(7);
        // (full, other): same shapes, per channel in several spellings, scalars, odd sizes
        // and maps larger than one parallel chunk.
        let cases: &[(&[usize], &[usize])] = &[
            (&[1, 3, 5, 7], &[1, 3, 5, 7]),
            (&[2, 96, 67, 61], &[2, 96, 67, 61]),
            (&[1, 5, 3, 3], &[1, 5, 1, 1]),
            (&[2, 40, 33, 35], &[40, 1, 1]),
            (&[1, 7, 130, 129], &[1, 7, 1, 1]),
            (&[1, 4, 2, 2], &[1]),
            (&[3, 4], &[]),
            (&[1, 2, 300, 300], &[1, 1, 1, 1]),
            (&[1, 1], &[1, 1]),
        ];
        for &(full, small) in cases {
            let a = random(full, &mut rng);
            let b = random(small, &mut rng);
            for op in OPS {
                let want = reference(op, &a, &b);
                let got = op.f32(&a, &b, CTX).unwrap();
                assert_eq!(got, want, "{op:?} {full:?} {small:?}");
                // The small operand on the left.
                let want_rev = reference(op, &b, &a);
                let got_rev = op.f32(&b, &a, CTX).unwrap();
                assert_eq!(got_rev, want_rev, "{op:?} {small:?} {full:?}");
                let mut left = a.clone();
                assert!(op.assign_left(&mut left, &b));
                assert_eq!(left, want, "in place, left {op:?} {full:?} {small:?}");
                if full == small {
                    let mut right = b.clone();
                    assert!(op.assign_right(&a, &mut right));
                    assert_eq!(right, want, "in place, right {op:?} {full:?}");
                }
            }
        }
    }

    #[test]
    fn in_place_declines_shapes_it_cannot_hold() {
        let mut rng = SplitMix64::new(8);
        let mut small = random(&[1, 3, 1, 1], &mut rng);
        let full = random(&[1, 3, 4, 4], &mut rng);
        let before = small.clone();
        assert!(!Binary::Add.assign_left(&mut small, &full));
        assert!(!Binary::Add.assign_right(&full, &mut small));
        assert_eq!(small, before);
        // General broadcasting ([3,1] with [1,4]) still works through the fallback.
        let a = random(&[3, 1], &mut rng);
        let b = random(&[1, 4], &mut rng);
        let got = Binary::Mul.f32(&a, &b, CTX).unwrap();
        assert_eq!(got, reference(Binary::Mul, &a, &b));
        assert!(Binary::Add
            .f32(&random(&[2, 3], &mut rng), &random(&[4], &mut rng), CTX)
            .is_err());
    }
}
