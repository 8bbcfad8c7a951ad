//! Convolution geometry: kernel, stride, (asymmetric) padding, dilation, groups.
use crate::error::{param_err, Result};

/// Zero padding on each side of the input, in pixels.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Padding {
    /// Rows added above.
    pub top: usize,
    /// Columns added on the left.
    pub left: usize,
    /// Rows added below.
    pub bottom: usize,
    /// Columns added on the right.
    pub right: usize,
}

impl Padding {
    /// The same padding on all four sides.
    pub fn uniform(p: usize) -> Self {
        Self {
            top: p,
            left: p,
            bottom: p,
            right: p,
        }
    }
}

/// The geometry of a 2-D convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dParams {
    /// Kernel height and width.
    pub kernel: [usize; 2],
    /// Stride along height and width.
    pub stride: [usize; 2],
    /// Zero padding.
    pub pad: Padding,
    /// Dilation along height and width.
    pub dilation: [usize; 2],
    /// Number of groups (input and output channels must both be divisible by it).
    pub groups: usize,
}

impl Conv2dParams {
    /// A `kh x kw` kernel, stride 1, no padding, no dilation, one group (a VALID conv).
    pub fn new(kh: usize, kw: usize) -> Self {
        Self {
            kernel: [kh, kw],
            stride: [1, 1],
            pad: Padding::default(),
            dilation: [1, 1],
            groups: 1,
        }
    }

    /// A `k x k` kernel at stride 1 with the padding that keeps the size ("SAME" for odd `k`).
    pub fn same(k: usize) -> Self {
        Self::new(k, k).with_pad(Padding::uniform(k / 2))
    }

    /// Sets the stride.
    pub fn with_stride(mut self, sh: usize, sw: usize) -> Self {
        self.stride = [sh, sw];
        self
    }

    /// Sets the padding.
    pub fn with_pad(mut self, pad: Padding) -> Self {
        self.pad = pad;
        self
    }

    /// Sets the dilation.
    pub fn with_dilation(mut self, dh: usize, dw: usize) -> Self {
        self.dilation = [dh, dw];
        self
    }

    /// Sets the number of groups.
    pub fn with_groups(mut self, groups: usize) -> Self {
        self.groups = groups;
        self
    }

    /// The same geometry without padding (used on gathered tiles, which carry their halo).
    pub fn valid(mut self) -> Self {
        self.pad = Padding::default();
        self
    }

    /// Extent of the dilated kernel: `(k - 1) * d + 1` per axis.
    pub fn receptive_field(&self) -> [usize; 2] {
        [
            (self.kernel[0] - 1) * self.dilation[0] + 1,
            (self.kernel[1] - 1) * self.dilation[1] + 1,
        ]
    }

    /// Checks the parameters themselves (non-zero kernel, stride, dilation, groups).
    pub fn validate(&self) -> Result<()> {
        let op = "Conv2dParams";
        if self.kernel.contains(&0) {
            return param_err(op, format!("kernel {:?} has a zero side", self.kernel));
        }
        if self.stride.contains(&0) {
            return param_err(op, format!("stride {:?} has a zero entry", self.stride));
        }
        if self.dilation.contains(&0) {
            return param_err(op, format!("dilation {:?} has a zero entry", self.dilation));
        }
        if self.groups == 0 {
            return param_err(op, "groups must be at least 1");
        }
        Ok(())
    }

    /// Output height and width for an `h x w` input; errors when the kernel does not fit.
    pub fn out_size(&self, h: usize, w: usize) -> Result<(usize, usize)> {
        let [rh, rw] = self.receptive_field();
        let ph = h + self.pad.top + self.pad.bottom;
        let pw = w + self.pad.left + self.pad.right;
        if ph < rh || pw < rw {
            return param_err(
                "Conv2d",
                format!("padded input {ph}x{pw} is smaller than the receptive field {rh}x{rw}"),
            );
        }
        Ok((
            (ph - rh) / self.stride[0] + 1,
            (pw - rw) / self.stride[1] + 1,
        ))
    }
}
