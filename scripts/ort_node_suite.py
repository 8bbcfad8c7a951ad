#!/usr/bin/env python3
"""Run ONNX Runtime (CPU) over ONNX's operator conformance suite (data/onnx-node, fetched by
scripts/fetch-data.sh) and compare its outputs the way ONNX's own backend runner does
(onnx/backend/test/runner: Runner._load_proto and Runner.assert_similar_outputs), for the record
of what a mature runtime scores on the same tests.

Per test, every test_data_set_*: inputs and expected outputs are read with onnx.numpy_helper as
the runner reads them (input_<i>.pb / output_<i>.pb with the type of graph input/output <i>), and
for each output: same count, same shape, same dtype, np.testing.assert_allclose(rtol, atol).
The tolerances are ONNX's per-test defaults rtol=1e-3, atol=1e-7 (onnx.backend.test.case.node)
unless --tolerances ort is given: then ONNX Runtime's own backend-test settings are used
(rtol 1e-3, atol 1e-5 by default, per-test atol from tests/onnx-node/tolerance-overrides.tsv).

Usage:
  python3 scripts/ort_node_suite.py [--suite DIR] [--tests FILE|all] [--tolerances onnx|ort]
                                    [--out FILE]
  --suite defaults to $ELIDE_DATA/onnx-node (data/onnx-node), --tests to tests/onnx-node/in-scope.txt.

Writes name<TAB>pass|fail|error<TAB>short message per test to --out (by default
tests/onnx-node/ort-results.tsv with --tolerances onnx, nothing with --tolerances ort) and prints
the counts. Needs: pip install onnx onnxruntime numpy.
"""

import argparse
import glob
import os
import re
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LISTS = os.path.join(ROOT, "tests", "onnx-node")
DATA = os.environ.get("ELIDE_DATA") or os.path.join(ROOT, "data")  # as scripts/fetch-data.sh

ONNX_RTOL, ONNX_ATOL = 1e-3, 1e-7  # onnx.backend.test.case.node expect() defaults
ORT_RTOL, ORT_ATOL = 1e-3, 1e-5    # onnx_backend_test_series_overrides.jsonc defaults


class Mismatch(Exception):
    pass


def load_proto(path, type_proto):
    """onnx.backend.test.runner.Runner._load_proto."""
    with open(path, "rb") as f:
        content = f.read()
    if type_proto.HasField("sequence_type"):
        seq = onnx.SequenceProto()
        seq.ParseFromString(content)
        return numpy_helper.to_list(seq)
    if type_proto.HasField("tensor_type"):
        t = onnx.TensorProto()
        t.ParseFromString(content)
        return numpy_helper.to_array(t)
    if type_proto.HasField("optional_type"):
        opt = onnx.OptionalProto()
        opt.ParseFromString(content)
        return numpy_helper.to_optional(opt)
    raise Mismatch(f"unsupported proto type for {os.path.basename(path)}")


def allclose_summary(msg):
    """The useful lines of an assert_allclose message, on one line."""
    keep = [ln.strip() for ln in msg.splitlines()
            if re.match(r"\s*(Mismatched elements|Max absolute difference|Max relative difference"
                        r"|\(shapes)", ln)]
    loc = re.search(r"[+-]?\w+ location mismatch", msg)
    if loc:
        keep.insert(0, loc.group(0))
    return "; ".join(keep) if keep else " ".join(msg.split())[:200]


def assert_similar(ref, out, rtol, atol, where="output"):
    """onnx.backend.test.runner.Runner.assert_similar_outputs, with short messages."""
    if len(out) != len(ref):
        raise Mismatch(f"{len(out)} outputs, expected {len(ref)}")
    for i, (r, o) in enumerate(zip(ref, out)):
        name = f"{where} {i}"
        if isinstance(o, (list, tuple)):
            if not isinstance(r, (list, tuple)):
                raise Mismatch(f"{name}: got a sequence, expected {type(r).__name__}")
            assert_similar(r, o, rtol, atol, where=f"{name}[]")
            continue
        o = np.asarray(o)
        if tuple(o.shape) != tuple(r.shape):
            raise Mismatch(f"{name}: shape {tuple(o.shape)}, expected {tuple(r.shape)}")
        if r.dtype == object:
            try:
                np.testing.assert_array_equal(o, r)
            except AssertionError as e:
                raise Mismatch(f"{name}: {allclose_summary(str(e))}") from None
            continue
        if o.dtype != r.dtype:
            raise Mismatch(f"{name}: dtype {o.dtype}, expected {r.dtype}")
        try:
            np.testing.assert_allclose(o, r, rtol=rtol, atol=atol)
        except AssertionError as e:
            raise Mismatch(f"{name} ({r.dtype}): {allclose_summary(str(e))}") from None
        except TypeError as e:  # dtypes numpy cannot subtract (e.g. ml_dtypes float8)
            raise Mismatch(f"{name} ({r.dtype}): cannot compare: {e}") from None


def run_test(test_dir, rtol, atol):
    model_path = os.path.join(test_dir, "model.onnx")
    model = onnx.load(model_path)
    so = ort.SessionOptions()
    so.log_severity_level = 4
    sess = ort.InferenceSession(model_path, so, providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    sets = sorted(glob.glob(os.path.join(test_dir, "test_data_set*")))
    if not sets:
        raise Mismatch("no test_data_set")
    for ds in sets:
        n_in = len(glob.glob(os.path.join(ds, "input_*.pb")))
        n_out = len(glob.glob(os.path.join(ds, "output_*.pb")))
        inputs = [load_proto(os.path.join(ds, f"input_{i}.pb"), model.graph.input[i].type)
                  for i in range(n_in)]
        ref = [load_proto(os.path.join(ds, f"output_{i}.pb"), model.graph.output[i].type)
               for i in range(n_out)]
        out = sess.run(None, dict(zip(names, inputs)))
        assert_similar(ref, out, rtol, atol, where=f"{os.path.basename(ds)} output")


def read_overrides(path):
    tol = {}
    if not os.path.isfile(path):
        sys.exit(f"ort_node_suite: {path} not found")
    with open(path) as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            name, rtol, atol = line.rstrip("\n").split("\t")[:3]
            tol[name] = (float(rtol), float(atol))
    return tol


def shown(path):
    rel = os.path.relpath(os.path.abspath(path), ROOT)
    return path if rel.startswith("..") else rel


def one_line(s, n=200):
    s = " ".join(str(s).split()).replace("\t", " ")
    return s if len(s) <= n else s[: n - 3] + "..."


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--suite", default=os.path.join(DATA, "onnx-node"))
    ap.add_argument("--tests", default=os.path.join(LISTS, "in-scope.txt"),
                    help="file with one test name per line ('all' for every test of the suite)")
    ap.add_argument("--tolerances", choices=["onnx", "ort"], default="onnx")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    if not os.path.isdir(args.suite):
        sys.exit(f"ort_node_suite: no suite at {args.suite} (run scripts/fetch-data.sh)")
    if args.tests == "all":
        tests = sorted(d for d in os.listdir(args.suite)
                       if os.path.isfile(os.path.join(args.suite, d, "model.onnx")))
    else:
        with open(args.tests) as f:
            tests = [ln.strip() for ln in f if ln.strip() and not ln.startswith("#")]
    out_path = args.out
    if out_path is None and args.tolerances == "onnx":
        out_path = os.path.join(LISTS, "ort-results.tsv")
    overrides = read_overrides(os.path.join(LISTS, "tolerance-overrides.tsv")) \
        if args.tolerances == "ort" else {}

    ort.set_default_logger_severity(4)
    rows, counts = [], {"pass": 0, "fail": 0, "error": 0}
    for name in tests:
        if args.tolerances == "onnx":
            rtol, atol = ONNX_RTOL, ONNX_ATOL
        else:
            rtol, atol = overrides.get(name, (ORT_RTOL, ORT_ATOL))
        try:
            run_test(os.path.join(args.suite, name), rtol, atol)
            status, msg = "pass", ""
        except Mismatch as e:
            status, msg = "fail", one_line(e)
        except Exception as e:  # session creation or run refused by ORT
            status, msg = "error", one_line(f"{type(e).__name__}: {e}")
        counts[status] += 1
        rows.append(f"{name}\t{status}\t{msg}\n")
    if out_path:
        with open(out_path, "w") as f:
            f.writelines(rows)
    tol = "ONNX runner: rtol=1e-3, atol=1e-7" if args.tolerances == "onnx" else \
        f"ORT backend tests: rtol=1e-3, atol=1e-5, {len(overrides)} per-test overrides"
    print(f"onnxruntime {ort.__version__}, onnx {onnx.__version__}, numpy {np.__version__} ({tol})")
    print(f"{len(tests)} tests: {counts['pass']} pass, {counts['fail']} fail, {counts['error']} error"
          + (f"  -> {shown(out_path)}" if out_path else ""))


if __name__ == "__main__":
    main()
