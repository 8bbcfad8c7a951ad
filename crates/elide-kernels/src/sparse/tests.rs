//! Block primitives against element-by-element references on random grids and shapes.
use super::*;
use crate::conv::{Activation, Conv2dParams, Padding};
use crate::rng::SplitMix64;
use crate::{KernelError, Tensor};

fn random_grid(rng: &mut SplitMix64, h: usize, w: usize) -> BlockGrid {
    let size = [rng.int(1, 9), rng.int(1, 9)];
    let stride = [rng.int(1, 9), rng.int(1, 9)];
    let offset = [-(rng.int(0, 3) as isize), -(rng.int(0, 3) as isize)];
    BlockGrid {
        size,
        stride,
        offset,
        count: [h.div_ceil(stride[0]), w.div_ceil(stride[1])],
    }
}

/// Value of image `n`, channel `c` at `(y, x)`, or 0 outside the image.
fn at(x: &Tensor, n: usize, c: usize, y: isize, xx: isize) -> f32 {
    let [_, _, h, w] = x.shape();
    if y < 0 || xx < 0 || y >= h as isize || xx >= w as isize {
        0.0
    } else {
        x.plane(n, c)[y as usize * w + xx as usize]
    }
}

#[test]
fn reduce_mask_matches_brute_force() {
    let mut rng = SplitMix64::new(1);
    for _ in 0..200 {
        let (n, h, w) = (rng.int(1, 2), rng.int(1, 30), rng.int(1, 30));
        let density = rng.uniform();
        let mask = Mask::from_vec(
            [n, h, w],
            (0..n * h * w)
                .map(|_| (rng.uniform() < density * 0.2) as u8 as f32)
                .collect(),
        )
        .unwrap();
        let grid = random_grid(&mut rng, h, w);
        let thr = rng.range(0.0, 0.5);
        for pooling in [Pooling::Max, Pooling::Avg] {
            let got = reduce_mask(&mask, &grid, pooling, thr).unwrap();
            let mut want = Vec::new();
            for b in 0..n {
                for by in 0..grid.count[0] {
                    for bx in 0..grid.count[1] {
                        let [y0, x0] = grid.origin(by, bx);
                        let mut vals = Vec::new();
                        for y in y0..y0 + grid.size[0] as isize {
                            for x in x0..x0 + grid.size[1] as isize {
                                if y >= 0 && x >= 0 && (y as usize) < h && (x as usize) < w {
                                    vals.push(mask.data()[(b * h + y as usize) * w + x as usize]);
                                }
                            }
                        }
                        let on = !vals.is_empty()
                            && match pooling {
                                Pooling::Max => vals.iter().any(|&v| v > thr),
                                Pooling::Avg => vals.iter().sum::<f32>() / vals.len() as f32 > thr,
                            };
                        if on {
                            want.push(BlockIndex {
                                n: b as u32,
                                by: by as u32,
                                bx: bx as u32,
                            });
                        }
                    }
                }
            }
            assert_eq!(got, want, "{grid:?} {pooling:?}");
        }
    }
}

#[test]
fn empty_mask_gives_no_blocks() {
    let mask = Mask::from_vec([1, 16, 16], vec![0.0; 256]).unwrap();
    let cb = ConvBlocks::new(&Conv2dParams::same(3), [16, 16], [4, 4]).unwrap();
    assert!(reduce_mask(&mask, &cb.input, Pooling::Max, 0.5)
        .unwrap()
        .is_empty());
    let x = Tensor::zeros([1, 3, 16, 16]);
    assert_eq!(
        sparse_gather(&x, &[], &cb.input).unwrap().shape(),
        [0, 3, 6, 6]
    );
}

#[test]
fn gather_and_scatter_match_elementwise_reference() {
    let mut rng = SplitMix64::new(2);
    for _ in 0..100 {
        let (n, c, h, w) = (rng.int(1, 2), rng.int(1, 4), rng.int(1, 25), rng.int(1, 25));
        let x = Tensor::from_vec([n, c, h, w], rng.vec(n * c * h * w, -1.0, 1.0)).unwrap();
        let grid = random_grid(&mut rng, h, w);
        let blocks: Vec<BlockIndex> = (0..n)
            .flat_map(|b| {
                (0..grid.count[0]).flat_map(move |by| (0..grid.count[1]).map(move |bx| (b, by, bx)))
            })
            .filter(|_| rng.uniform() < 0.5)
            .map(|(b, by, bx)| BlockIndex {
                n: b as u32,
                by: by as u32,
                bx: bx as u32,
            })
            .collect();
        let stack = sparse_gather(&x, &blocks, &grid).unwrap();
        let [th, tw] = grid.size;
        for (i, b) in blocks.iter().enumerate() {
            let [y0, x0] = grid.origin(b.by as usize, b.bx as usize);
            for ci in 0..c {
                for ty in 0..th {
                    for tx in 0..tw {
                        let got = stack.data()[((i * c + ci) * th + ty) * tw + tx];
                        assert_eq!(
                            got,
                            at(&x, b.n as usize, ci, y0 + ty as isize, x0 + tx as isize)
                        );
                    }
                }
            }
        }
        let tiles = Tensor::from_vec(stack.shape(), rng.vec(stack.len(), -1.0, 1.0)).unwrap();
        for (mode, act) in [
            (ScatterMode::Write, Activation::None),
            (ScatterMode::Add, Activation::None),
            (ScatterMode::Add, Activation::Relu),
            (ScatterMode::Write, Activation::Sigmoid),
        ] {
            let mut got = x.clone();
            sparse_scatter(&tiles, &blocks, &grid, &mut got, mode, act).unwrap();
            let mut want = x.clone();
            let wd = want.data_mut();
            for (i, b) in blocks.iter().enumerate() {
                let [y0, x0] = grid.origin(b.by as usize, b.bx as usize);
                for ci in 0..c {
                    for ty in 0..th {
                        for tx in 0..tw {
                            let (y, xx) = (y0 + ty as isize, x0 + tx as isize);
                            if y < 0 || xx < 0 || y >= h as isize || xx >= w as isize {
                                continue;
                            }
                            let idx = ((b.n as usize * c + ci) * h + y as usize) * w + xx as usize;
                            let t = tiles.data()[((i * c + ci) * th + ty) * tw + tx];
                            wd[idx] = match mode {
                                ScatterMode::Write => act.apply(t),
                                ScatterMode::Add => act.apply(wd[idx] + t),
                            };
                        }
                    }
                }
            }
            assert_eq!(got, want, "{grid:?} {mode:?}");
        }
    }
}

#[test]
fn conv_blocks_cover_receptive_fields() {
    let p = Conv2dParams::new(3, 5)
        .with_stride(2, 1)
        .with_dilation(1, 2)
        .with_pad(Padding {
            top: 1,
            left: 4,
            bottom: 0,
            right: 3,
        });
    let cb = ConvBlocks::new(&p, [31, 40], [4, 6]).unwrap();
    let (ho, wo) = p.out_size(31, 40).unwrap();
    assert_eq!(cb.output.count, [ho.div_ceil(4), wo.div_ceil(6)]);
    // Block (1, 2): outputs rows 4..8, cols 12..18 read input rows 4*2-1 .. 7*2-1+3, cols 12-4 .. 17-4+9.
    assert_eq!(cb.input.origin(1, 2), [7, 8]);
    assert_eq!(cb.input.size, [3 * 2 + 3, 5 + 9]);
}

#[test]
fn bad_input_is_a_typed_error() {
    let p = Conv2dParams::same(3);
    assert!(matches!(
        ConvBlocks::new(&p, [8, 8], [9, 4]),
        Err(KernelError::Param { .. })
    ));
    assert!(ConvBlocks::new(&p, [8, 8], [0, 4]).is_err());
    assert!(matches!(
        Mask::from_vec([1, 2, 2], vec![0.0, f32::NAN, 0.0, 0.0]),
        Err(KernelError::NonFinite { .. })
    ));
    assert!(Mask::from_vec([1, 2, 2], vec![0.0; 3]).is_err());
    let cb = ConvBlocks::new(&p, [8, 8], [4, 4]).unwrap();
    let mask = Mask::from_vec([1, 8, 8], vec![1.0; 64]).unwrap();
    assert!(reduce_mask(&mask, &cb.input, Pooling::Max, f32::NAN).is_err());
    let x = Tensor::zeros([1, 2, 8, 8]);
    let far = [BlockIndex { n: 0, by: 2, bx: 0 }];
    assert!(matches!(
        sparse_gather(&x, &far, &cb.input),
        Err(KernelError::Shape { .. })
    ));
    let mut nan = x.clone();
    nan.data_mut()[3] = f32::NAN;
    let blocks = reduce_mask(&mask, &cb.input, Pooling::Max, 0.5).unwrap();
    assert!(matches!(
        sparse_gather(&nan, &blocks, &cb.input),
        Err(KernelError::NonFinite { .. })
    ));
    let mut base = x.clone();
    let bad_stack = Tensor::zeros([blocks.len(), 2, 5, 4]);
    assert!(sparse_scatter(
        &bad_stack,
        &blocks,
        &cb.output,
        &mut base,
        ScatterMode::Write,
        Activation::None
    )
    .is_err());
}

#[test]
fn dilate_marks_the_chebyshev_neighbourhood() {
    let mask = Mask::from_fn([2, 9, 11], |n, y, x| n == 1 && y == 4 && x == 9);
    let d = mask.dilate(2);
    for y in 0usize..9 {
        for x in 0usize..11 {
            let want = y.abs_diff(4) <= 2 && x.abs_diff(9) <= 2;
            assert_eq!(d.data()[(9 + y) * 11 + x] == 1.0, want, "({y},{x})");
            assert_eq!(d.data()[y * 11 + x], 0.0);
        }
    }
}

#[test]
fn block_runs_join_horizontal_neighbours_only() {
    let b = |n, by, bx| BlockIndex { n, by, bx };
    let blocks = [
        b(0, 0, 0),
        b(0, 0, 1),
        b(0, 0, 2),
        b(0, 0, 4),
        b(0, 1, 5),
        b(0, 1, 6),
        b(1, 1, 7),
        b(1, 1, 8),
    ];
    assert_eq!(
        block_runs(&blocks, 2),
        vec![(0, 2), (2, 1), (3, 1), (4, 2), (6, 2)]
    );
    assert_eq!(block_runs(&blocks, 8), vec![(0, 3), (3, 1), (4, 2), (6, 2)]);
    assert_eq!(block_runs(&blocks, 0).len(), blocks.len());
    assert!(block_runs(&[], 4).is_empty());
}

/// With `f` copying the window, blockwise must reproduce gather (into a stack) and
/// gather + scatter (into a base), for runs of every length and windows past the border.
#[test]
fn blockwise_runs_equal_gather_and_scatter() {
    let mut rng = SplitMix64::new(51);
    for case in 0..40 {
        let (n, c) = (rng.int(1, 2), rng.int(1, 4));
        let (h, w) = (rng.int(4, 30), rng.int(4, 30));
        let k = [1, 3][case % 2];
        let p = Conv2dParams::same(k);
        let block = [rng.int(1, h.min(8)), rng.int(1, w.min(8))];
        let grids = ConvBlocks::new(&p, [h, w], block).unwrap();
        let x = Tensor::from_vec([n, c, h, w], rng.vec(n * c * h * w, -1.0, 1.0)).unwrap();
        let seed = rng.next_u64() as usize;
        let mask = Mask::from_fn([n, h, w], |i, y, xx| {
            (i * 31 + y * 17 + xx * 7 + seed) % 19 < 2 || y == h - 1
        });
        let blocks = reduce_mask(&mask, &grids.output, Pooling::Max, 0.5).unwrap();
        let [bh, bw] = block;
        let extra = rng.int(0, 2);
        let layout = TileLayout {
            window_extra_rows: extra,
            result_extra: [extra, 2 * extra],
        };
        // The result is the window's top-left corner shifted by the halo: the input at the
        // output block's own pixels (a 1x1 identity conv).
        let halo = (k - 1) / 2;
        let copy = |win: &Tensor, _: &BlockIndex, res: &mut Tensor| -> crate::Result<()> {
            let [_, _, wr, ww] = win.shape();
            let [_, _, rr, rw] = res.shape();
            for ci in 0..c {
                for y in 0..rr - extra {
                    for xx in 0..rw - 2 * extra {
                        res.data_mut()[(ci * rr + y) * rw + xx] =
                            win.data()[(ci * wr + y + halo) * ww + xx + halo];
                    }
                }
            }
            Ok(())
        };
        let span = rng.int(1, 4);
        let mut stack = Tensor::zeros([blocks.len(), c, bh, bw]);
        blockwise(
            &x,
            &blocks,
            &grids,
            c,
            span,
            layout,
            BlockSink::Stack(&mut stack),
            copy,
        )
        .unwrap();
        let want = sparse_gather(&x, &blocks, &grids.output).unwrap();
        assert_eq!(stack, want, "case {case}: stack");
        let base = Tensor::from_vec([n, c, h, w], rng.vec(n * c * h * w, -1.0, 1.0)).unwrap();
        let mut got = base.clone();
        let sink = BlockSink::Scatter {
            base: &mut got,
            mode: ScatterMode::Add,
            act: Activation::Relu,
        };
        blockwise(&x, &blocks, &grids, c, span, layout, sink, copy).unwrap();
        let mut expect = base.clone();
        sparse_scatter(
            &want,
            &blocks,
            &grids.output,
            &mut expect,
            ScatterMode::Add,
            Activation::Relu,
        )
        .unwrap();
        assert_eq!(got, expect, "case {case}: scatter");
    }
}

#[test]
fn blockwise_rejects_nan_in_a_window_and_bad_sinks() {
    let p = Conv2dParams::same(3);
    let grids = ConvBlocks::new(&p, [8, 8], [4, 4]).unwrap();
    let mut x = Tensor::zeros([1, 2, 8, 8]);
    x.data_mut()[9] = f32::NAN;
    let blocks = [BlockIndex { n: 0, by: 0, bx: 0 }];
    let noop = |_: &Tensor, _: &BlockIndex, _: &mut Tensor| -> crate::Result<()> { Ok(()) };
    let mut stack = Tensor::zeros([1, 2, 4, 4]);
    let r = blockwise(
        &x,
        &blocks,
        &grids,
        2,
        1,
        TileLayout::default(),
        BlockSink::Stack(&mut stack),
        noop,
    );
    assert!(matches!(r, Err(KernelError::NonFinite { .. })), "{r:?}");
    // A NaN outside every active window is never read.
    let far = [BlockIndex { n: 0, by: 1, bx: 1 }];
    blockwise(
        &x,
        &far,
        &grids,
        2,
        1,
        TileLayout::default(),
        BlockSink::Stack(&mut stack),
        noop,
    )
    .unwrap();
    let mut wrong = Tensor::zeros([2, 2, 4, 4]);
    let r = blockwise(
        &x,
        &far,
        &grids,
        2,
        1,
        TileLayout::default(),
        BlockSink::Stack(&mut wrong),
        noop,
    );
    assert!(r.is_err());
    let out_of_grid = [BlockIndex { n: 0, by: 2, bx: 0 }];
    let r = blockwise(
        &x,
        &out_of_grid,
        &grids,
        2,
        1,
        TileLayout::default(),
        BlockSink::Stack(&mut stack),
        noop,
    );
    assert!(r.is_err());
}
