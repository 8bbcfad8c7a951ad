#!/usr/bin/env python3
"""How much of PP-OCRv4's feature maps a blank page background leaves uniform.

Features of a constant input region are one value per channel away from its border, so an
engine could compute a global average pool exactly from the non-uniform pixels alone. This
runs the detector through ONNX Runtime (optimisations off, every Conv/ConvTranspose output
exposed) on the README's page at 960x960 and prints, per conv output, the fraction of pixels
(and of 8x8 / 4x4 blocks) where any channel differs from its most common value by more than
1e-4 of the map's largest magnitude. Needs scripts/fetch-data.sh's data/ and
`pip install onnxruntime onnx numpy opencv-python-headless`.

    python3 bench/ppocr_uniform.py
"""
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import ort_reference as ref  # noqa: E402  (the detector's preprocessing)


def main():
    m = onnx.load(os.path.join(ref.DATA, "models", "ch_PP-OCRv4_det_infer.onnx"))
    convs = [n for n in m.graph.node if n.op_type in ("Conv", "ConvTranspose")]
    for n in convs:
        m.graph.output.append(helper.make_tensor_value_info(n.output[0], onnx.TensorProto.FLOAT, None))
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    x = ref.pre_ppocr_det(os.path.join(ref.DATA, "images", "linn_page.png"), (960, 960))
    outs = sess.run(None, {sess.get_inputs()[0].name: x})[1:]
    print("op             output           non-uniform pixels  blocks")
    for n, o in zip(convs, outs):
        c, h, w = o.shape[1:]
        flat = o[0].reshape(c, -1)
        modes = np.array([np.unique(r, return_counts=True)[0][np.unique(r, return_counts=True)[1].argmax()] for r in flat])
        dev = (np.abs(flat - modes[:, None]).max(0) > 1e-4 * (np.abs(flat).max() + 1e-6)).reshape(h, w)
        b = 8 if h >= 64 else 4
        hb, wb = -(-h // b), -(-w // b)
        pad = np.zeros((hb * b, wb * b), bool)
        pad[:h, :w] = dev
        blocks = pad.reshape(hb, b, wb, b).any((1, 3)).mean()
        print(f"{n.op_type:14s} {c:4d}x{h:4d}x{w:4d}  {dev.mean():18.3f}  {blocks:.3f} ({b}x{b})")


if __name__ == "__main__":
    main()
