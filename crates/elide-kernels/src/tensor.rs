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
        match self.data.iter().position(|v| !v.is_finite()) {
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

    /// Largest relative difference `|a-b| / max(|a|,|b|,floor)` over all elements; shapes must match.
    pub fn max_rel_diff(&self, other: &Tensor, floor: f32) -> Result<f32> {
        if self.shape != other.shape {
            return shape_err(
                "Tensor::max_rel_diff",
                format!("{:?} vs {:?}", self.shape, other.shape),
            );
        }
        Ok(self
            .data
            .iter()
            .zip(&other.data)
            .map(|(a, b)| (a - b).abs() / a.abs().max(b.abs()).max(floor))
            .fold(0.0, f32::max))
    }
}
