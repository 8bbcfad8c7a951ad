//! `mask_from_low_res` (a mask from a cheap pass of the model on a downscaled input),
//! `resize_bilinear` and `dilate_mask` on tiny graphs built in code.
use elide_graph::graph::{Graph, Input, Node};
use elide_graph::ops::{ConvOp, Op};
use elide_graph::sparse::{dilate_mask, mask_from_low_res, resize_bilinear, LowRes};
use elide_graph::{GraphError, Value};
use elide_kernels::conv::{Activation, Conv2d, Conv2dParams};
use elide_kernels::sparse::Mask;
use elide_kernels::Tensor;
use ndarray::{ArrayD, IxDyn};

/// A graph of one node `op` on its input `x`: the node's output is the graph's.
fn one_node(op: Op) -> Graph {
    let mut g = Graph::default();
    g.names.extend(["x".to_string(), "y".to_string()]);
    g.inputs.push(Input {
        id: 0,
        shape: vec![None; 4],
        dtype: None,
    });
    g.nodes.push(Node {
        name: "n0".into(),
        op_type: op.kind().to_string(),
        op,
        inputs: vec![Some(0)],
        outputs: vec![1],
    });
    g.outputs.push(1);
    g
}

/// A 1x1 conv averaging `c` channels into one: the "model" is its input's mean.
fn mean_conv(c: usize) -> Graph {
    let w = Tensor::from_vec([1, c, 1, 1], vec![1.0 / c as f32; c]).unwrap();
    let conv = Conv2d::new(&w, None, Conv2dParams::new(1, 1), Activation::None).unwrap();
    one_node(Op::Conv(Box::new(ConvOp { conv })))
}

/// `[n, c, h, w]` with ones where `on(b, y, x)`, zeros elsewhere, in every channel.
fn image([n, c, h, w]: [usize; 4], on: impl Fn(usize, usize, usize) -> bool) -> ArrayD<f32> {
    ArrayD::from_shape_fn(IxDyn(&[n, c, h, w]), |i| {
        f32::from(u8::from(on(i[0], i[2], i[3])))
    })
}

fn active(m: &Mask) -> Vec<(usize, usize, usize)> {
    let [_, h, w] = m.shape();
    m.data()
        .iter()
        .enumerate()
        .filter(|(_, &v)| v > 0.5)
        .map(|(i, _)| (i / (h * w), i / w % h, i % w))
        .collect()
}

#[test]
fn a_block_aligned_square_gives_its_cells_dilated() {
    let g = mean_conv(3);
    // A bright 8x8 square at rows 8..16, columns 4..12 of 32x24, on image 1 of 2.
    let x = image([2, 3, 32, 24], |b, y, x| {
        b == 1 && (8..16).contains(&y) && (4..12).contains(&x)
    });
    for dilate in [0, 1, 3] {
        let opts = LowRes {
            scale: 4.0,
            threshold: 0.5,
            dilate,
            multiple: 1,
        };
        assert_eq!(opts.size([32, 24]).unwrap(), [8, 6]);
        let m = mask_from_low_res(&g, &x, &opts).unwrap();
        assert_eq!(m.shape(), [2, 32, 24]);
        // Bilinear at 1/4 reads input pixels 4i+1 and 4i+2: low-res cells 2..4 x 1..3 are 1,
        // the rest 0; each cell covers 4x4 input pixels; then the dilation.
        let d = dilate as isize;
        let want = Mask::from_fn([2, 32, 24], |b, y, x| {
            let (y, x) = (y as isize, x as isize);
            b == 1 && (8 - d..16 + d).contains(&y) && (4 - d..12 + d).contains(&x)
        });
        assert_eq!(active(&m), active(&want), "dilate {dilate}");
    }
}

#[test]
fn threshold_and_multiple_are_applied() {
    let g = mean_conv(1);
    // A ramp 0..1 along x: active where the low-resolution value exceeds the threshold.
    let x = ArrayD::from_shape_fn(IxDyn(&[1, 1, 40, 40]), |i| i[3] as f32 / 39.0);
    let opts = LowRes {
        scale: 4.0,
        threshold: 0.5,
        dilate: 0,
        multiple: 8,
    };
    // 40 / 4 = 10, to the nearest multiple of 8.
    assert_eq!(opts.size([40, 40]).unwrap(), [8, 8]);
    let m = mask_from_low_res(&g, &x, &opts).unwrap();
    let d = m.data();
    // Left half inactive, right half active, every row alike.
    for y in 0..40 {
        let row = &d[y * 40..(y + 1) * 40];
        assert!(row[..15].iter().all(|&v| v == 0.0), "{row:?}");
        assert!(row[25..].iter().all(|&v| v == 1.0), "{row:?}");
    }
    // An impossible threshold: nothing active; a negative one: everything.
    for (t, frac) in [(2.0, 0.0), (-1.0, 1.0)] {
        let o = LowRes {
            threshold: t,
            ..opts
        };
        assert_eq!(mask_from_low_res(&g, &x, &o).unwrap().density(0.5), frac);
    }
    // Halves round up; never below one multiple.
    let o = LowRes {
        scale: 8.0,
        multiple: 32,
        ..opts
    };
    assert_eq!(o.size([384, 100]).unwrap(), [64, 32]);
    assert_eq!(
        LowRes {
            scale: 1.5,
            multiple: 1,
            ..o
        }
        .size([3, 4])
        .unwrap(),
        [2, 3]
    );
}

#[test]
fn bad_arguments_and_graphs_are_typed_errors() {
    let g = mean_conv(1);
    let x = image([1, 1, 16, 16], |_, y, _| y < 8);
    let base = LowRes::default();
    for (opts, name) in [
        (LowRes { scale: 0.0, ..base }, "scale"),
        (LowRes { scale: 0.5, ..base }, "scale"),
        (
            LowRes {
                scale: f32::NAN,
                ..base
            },
            "scale",
        ),
        (
            LowRes {
                scale: f32::INFINITY,
                ..base
            },
            "scale",
        ),
        (
            LowRes {
                threshold: f32::NAN,
                ..base
            },
            "threshold",
        ),
        (
            LowRes {
                multiple: 0,
                ..base
            },
            "multiple",
        ),
    ] {
        match mask_from_low_res(&g, &x, &opts) {
            Err(GraphError::Argument { name: n, .. }) => assert_eq!(n, name, "{opts:?}"),
            other => panic!("{opts:?}: {:?}", other.map(|m| m.shape())),
        }
    }
    // An input that is not NCHW.
    let flat = ArrayD::<f32>::zeros(IxDyn(&[16, 16]));
    assert!(matches!(
        mask_from_low_res(&g, &flat, &base),
        Err(GraphError::Model(_))
    ));
    // A first output that is not a map: global pooling leaves 1x1.
    let pooled = one_node(Op::GlobalAveragePool);
    let err = mask_from_low_res(&pooled, &x, &base)
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a map"), "{err}");
    // The model failing at the low resolution (a 3x3 VALID conv on a 1x1 input) is its error.
    let w = Tensor::from_vec([1, 1, 3, 3], vec![1.0; 9]).unwrap();
    let conv = Conv2d::new(&w, None, Conv2dParams::new(3, 3), Activation::None).unwrap();
    let valid = one_node(Op::Conv(Box::new(ConvOp { conv })));
    let tiny = image([1, 1, 4, 4], |_, _, _| true);
    assert!(mask_from_low_res(&valid, &tiny, &base).is_err());
}

#[test]
fn bilinear_resize_matches_its_definition() {
    // 1x1x2x4 -> 1x1x1x2 (halving): each output is the mean of its 2x2 block.
    let x = ArrayD::from_shape_vec(
        IxDyn(&[1, 1, 2, 4]),
        vec![0., 2., 4., 6., 8., 10., 12., 14.],
    )
    .unwrap();
    let y = resize_bilinear(&x, [1, 2]).unwrap();
    assert_eq!(y.as_slice().unwrap(), [5.0, 9.0]);
    // Upscaling 1x1x1x2 -> 1x1x1x4: half-pixel centres, clamped at the borders.
    let x = ArrayD::from_shape_vec(IxDyn(&[1, 1, 1, 2]), vec![0., 4.]).unwrap();
    let y = resize_bilinear(&x, [1, 4]).unwrap();
    assert_eq!(y.as_slice().unwrap(), [0.0, 1.0, 3.0, 4.0]);
    // Same size: identity; channels independent.
    let x = ArrayD::from_shape_fn(IxDyn(&[2, 3, 5, 7]), |i| {
        (i[0] * 100 + i[1] * 10 + i[2] * 7 + i[3]) as f32
    });
    assert_eq!(resize_bilinear(&x, [5, 7]).unwrap(), x);
    assert!(resize_bilinear(&x, [0, 7]).is_err());
    assert!(resize_bilinear(&ArrayD::zeros(IxDyn(&[5, 7])), [2, 2]).is_err());
}

#[test]
fn dilation_equals_the_naive_max_filter() {
    let mut s = 12345u64;
    let mut rnd = || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (s >> 33) % 100
    };
    for r in [0, 1, 2, 5, 40] {
        let data: Vec<f32> = (0..2 * 17 * 23)
            .map(|_| f32::from(u8::from(rnd() < 4)))
            .collect();
        let m = Mask::from_vec([2, 17, 23], data).unwrap();
        assert_eq!(dilate_mask(&m, r), m.dilate(r), "r = {r}");
    }
}

#[test]
fn value_inputs_run_through_the_graph() {
    // The graph is run as `Graph::run` runs it: a 4-D input, the conv's output map.
    let g = mean_conv(2);
    let x = Value::f32(&[1, 2, 8, 8], vec![1.0; 128]).unwrap();
    let m = mask_from_low_res(
        &g,
        x.as_f32().unwrap(),
        &LowRes {
            dilate: 0,
            threshold: 0.5,
            ..LowRes::default()
        },
    )
    .unwrap();
    assert_eq!(m.density(0.5), 1.0);
}
