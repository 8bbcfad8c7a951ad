//! Block grids: where each block's window lies, derived from a convolution's geometry.
use crate::conv::Conv2dParams;
use crate::error::{param_err, Result};

/// One active block: image `n`, block row `by`, block column `bx`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BlockIndex {
    /// Image in the batch.
    pub n: u32,
    /// Block row.
    pub by: u32,
    /// Block column.
    pub bx: u32,
}

/// Windows of `size` pixels placed every `stride` pixels from `offset`, `count` per axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockGrid {
    /// Window height and width.
    pub size: [usize; 2],
    /// Distance between window origins.
    pub stride: [usize; 2],
    /// Origin of window (0, 0); negative reaches above / left of the image.
    pub offset: [isize; 2],
    /// Number of windows along height and width.
    pub count: [usize; 2],
}

impl BlockGrid {
    /// Image rows and columns covered by window `(by, bx)`: top-left corner.
    #[inline]
    pub fn origin(&self, by: usize, bx: usize) -> [isize; 2] {
        [
            by as isize * self.stride[0] as isize + self.offset[0],
            bx as isize * self.stride[1] as isize + self.offset[1],
        ]
    }

    /// Total number of windows per image.
    pub fn len(&self) -> usize {
        self.count[0] * self.count[1]
    }

    /// True when the grid has no window.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether windows overlap (so parallel writes to them would race).
    pub fn overlaps(&self) -> bool {
        self.stride[0] < self.size[0] || self.stride[1] < self.size[1]
    }

    /// The same block origins, widened by `halo = [top, left, bottom, right]` pixels.
    pub fn widen(&self, halo: [usize; 4]) -> BlockGrid {
        BlockGrid {
            size: [
                self.size[0] + halo[0] + halo[2],
                self.size[1] + halo[1] + halo[3],
            ],
            stride: self.stride,
            offset: [
                self.offset[0] - halo[0] as isize,
                self.offset[1] - halo[1] as isize,
            ],
            count: self.count,
        }
    }
}

/// The two grids of a block-sparse convolution: output blocks tile the output; the input
/// window of each block is its receptive field, `(b-1)*stride + (k-1)*dilation + 1` wide and
/// starting `pad` pixels before the block's first input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvBlocks {
    /// Windows gathered from the input.
    pub input: BlockGrid,
    /// Blocks written to the output.
    pub output: BlockGrid,
}

impl ConvBlocks {
    /// Grids for a convolution on an `in_hw` input with output blocks of `block` pixels.
    /// Errors when the block is empty or larger than the output.
    pub fn new(p: &Conv2dParams, in_hw: [usize; 2], block: [usize; 2]) -> Result<Self> {
        p.validate()?;
        let (ho, wo) = p.out_size(in_hw[0], in_hw[1])?;
        if block.contains(&0) {
            return param_err("ConvBlocks", format!("block {block:?} has a zero side"));
        }
        if block[0] > ho || block[1] > wo {
            return param_err(
                "ConvBlocks",
                format!("block {block:?} is larger than the {ho}x{wo} output"),
            );
        }
        let rf = p.receptive_field();
        let count = [ho.div_ceil(block[0]), wo.div_ceil(block[1])];
        let output = BlockGrid {
            size: block,
            stride: block,
            offset: [0, 0],
            count,
        };
        let input = BlockGrid {
            size: [
                (block[0] - 1) * p.stride[0] + rf[0],
                (block[1] - 1) * p.stride[1] + rf[1],
            ],
            stride: [block[0] * p.stride[0], block[1] * p.stride[1]],
            offset: [-(p.pad.top as isize), -(p.pad.left as isize)],
            count,
        };
        Ok(Self { input, output })
    }
}
