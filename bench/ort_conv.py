#!/usr/bin/env python3
"""Times a convolution layer or residual unit in ONNX Runtime: the dense CPU reference.

elide's benchmarks call this with the same layer, shape and thread count they time, e.g.
    python3 bench/ort_conv.py --layer conv3x3 --shape 1,64,256,256 --cout 64 --threads 1
and read one JSON object from stdout: {"ort_ms": median, "threads": N, "ort_version": ...}.
Layers: conv3x3, conv1x1, dw3x3 (depthwise), basic (3x3-relu-3x3 + shortcut, relu),
bottleneck (1x1 to cout/4, relu, 3x3, relu, 1x1 back, + shortcut, relu).
Weights are random: timing does not depend on their values.
"""
import argparse
import json
import statistics
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper


def conv(nodes, inits, name, x, cin, cout, k, groups=1, relu=True):
    rng = np.random.default_rng(len(inits))
    w = rng.standard_normal((cout, cin // groups, k, k)).astype(np.float32) * 0.05
    b = np.zeros(cout, np.float32)
    inits += [numpy_helper.from_array(w, name + "_w"), numpy_helper.from_array(b, name + "_b")]
    p = k // 2
    nodes.append(helper.make_node("Conv", [x, name + "_w", name + "_b"], [name], kernel_shape=[k, k],
                                  pads=[p, p, p, p], group=groups))
    if relu:
        nodes.append(helper.make_node("Relu", [name], [name + "_r"]))
        return name + "_r"
    return name


def build(layer, c, cout):
    nodes, inits = [], []
    if layer == "conv3x3":
        y = conv(nodes, inits, "c", "x", c, cout, 3, relu=False)
    elif layer == "conv1x1":
        y = conv(nodes, inits, "c", "x", c, cout, 1, relu=False)
    elif layer == "dw3x3":
        y = conv(nodes, inits, "c", "x", c, c, 3, groups=c, relu=False)
        cout = c
    elif layer == "basic":
        h = conv(nodes, inits, "c1", "x", c, c, 3)
        h = conv(nodes, inits, "c2", h, c, c, 3, relu=False)
        nodes += [helper.make_node("Add", [h, "x"], ["s"]), helper.make_node("Relu", ["s"], ["sr"])]
        y, cout = "sr", c
    elif layer == "bottleneck":
        m = max(c // 4, 1)
        h = conv(nodes, inits, "c1", "x", c, m, 1)
        h = conv(nodes, inits, "c2", h, m, m, 3)
        h = conv(nodes, inits, "c3", h, m, c, 1, relu=False)
        nodes += [helper.make_node("Add", [h, "x"], ["s"]), helper.make_node("Relu", ["s"], ["sr"])]
        y, cout = "sr", c
    else:
        raise SystemExit(f"unknown layer {layer}")
    return nodes, inits, y, cout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--layer", required=True)
    ap.add_argument("--shape", required=True, help="N,C,H,W")
    ap.add_argument("--cout", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=9)
    a = ap.parse_args()
    if a.reps < 1:
        ap.error(f"--reps must be at least 1, got {a.reps}")
    if a.threads < 0:
        ap.error(f"--threads must be 0 (ORT's default) or more, got {a.threads}")
    try:
        n, c, h, w = (int(v) for v in a.shape.split(","))
    except ValueError:
        ap.error(f"--shape must be N,C,H,W, got {a.shape!r}")
    if min(n, c, h, w) < 1:
        ap.error(f"--shape dimensions must be at least 1, got {a.shape}")
    nodes, inits, y, cout = build(a.layer, c, a.cout or c)
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [n, c, h, w])],
        [helper.make_tensor_value_info(y, TensorProto.FLOAT, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    so = ort.SessionOptions()
    so.intra_op_num_threads = a.threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal((n, c, h, w)).astype(np.float32)
    for _ in range(2):
        sess.run(None, {"x": x})
    times = []
    for _ in range(a.reps):
        t = time.perf_counter()
        sess.run(None, {"x": x})
        times.append((time.perf_counter() - t) * 1e3)
    print(json.dumps({"ort_ms": statistics.median(times), "threads": a.threads,
                      "ort_version": ort.__version__}))


if __name__ == "__main__":
    main()
