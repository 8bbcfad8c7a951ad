//! A thin owned NCHW `f32` tensor: a shape and a contiguous buffer, nothing more.
use crate::error::{shape_err, KernelError, Result};

/// A contiguous 4-D `f32` tensor in NCHW order (weights use the same type as OIHW).
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    shape: [usize; 4],
    data: Vec<f32>,
}

impl Tensor {
    /// A tensor of zeros.
    pub fn zeros(shape: [usize; 4]) -> Self {
        Self {
            shape,
            data: vec![0.0; shape.iter().product()],
        }
    }

    /// Wraps a buffer; its length must equal the product of `shape`.
    pub fn from_vec(shape: [usize; 4], data: Vec<f32>) -> Result<Self> {
        let n: usize = shape.iter().product();
        if data.len() != n {
            return shape_err(
                "Tensor::from_vec",
                format!("shape {shape:?} needs {n} values, got {}", data.len()),
            );
        }
        Ok(Self { shape, data })
    }

    /// The shape `[n, c, h, w]`.
    pub fn shape(&self) -> [usize; 4] {
        self.shape
    }

    /// The values in NCHW order.
    pub fn data(&self) -> &[f32] {
        &self.data
    }

    /// The values in NCHW order, mutable.
    pub fn data_mut(&mut self) -> &mut [f32] {
        &mut self.data
    }

    /// Consumes the tensor, returning its buffer.
    pub fn into_vec(self) -> Vec<f32> {
        self.data
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// True when the tensor holds no element (some dimension is zero).
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// One image-channel plane `[h, w]` as a slice.
    pub fn plane(&self, n: usize, c: usize) -> &[f32] {
        let hw = self.shape[2] * self.shape[3];
        let start = (n * self.shape[1] + c) * hw;
        &self.data[start..start + hw]
    }

    /// Errors when any value is NaN or infinite.
    pub fn check_finite(&self, op: &'static str) -> Result<()> {
        match crate::copy::first_non_finite(&self.data) {
            None => Ok(()),
            Some(i) => Err(KernelError::NonFinite {
                op,
                detail: format!(
                    "element {i} of a tensor of shape {:?} is {}",
                    self.shape, self.data[i]
                ),
            }),
        }
    }

    /// Norm-wise relative error `max|self - want| / max|want|` (0 when both are zero).
    /// Element-wise relative error is meaningless where values cancel to near zero, so this is
    /// the figure tests and benchmarks report; shapes must match.
    pub fn rel_err(&self, want: &Tensor) -> Result<f32> {
        if self.shape != want.shape {
            return shape_err(
                "Tensor::rel_err",
                format!("{:?} vs {:?}", self.shape, want.shape),
            );
        }
        Ok(rel_err(&self.data, &want.data))
    }
}

/// Norm-wise relative error of two equally long slices: `max|got - want| / max|want|`.
pub fn rel_err(got: &[f32], want: &[f32]) -> f32 {
    let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
    let diff = got
        .iter()
        .zip(want)
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    if diff == 0.0 {
        0.0
    } else {
        diff / scale.max(f32::MIN_POSITIVE)
    }
}
