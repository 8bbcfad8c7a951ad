#!/usr/bin/env python3
"""Summarise ONNX models for the importer: opsets, inputs/outputs, op counts, attributes.

Usage: python3 scripts/onnx_summary.py data/models/*.onnx  [--json out.json]
Needs: onnx (python3 -m pip install onnx).
"""
import collections
import json
import sys

import onnx
from onnx import helper, numpy_helper


def dims(vi):
    t = vi.type.tensor_type
    out = []
    for d in t.shape.dim:
        if d.HasField("dim_value"):
            out.append(d.dim_value)
        elif d.HasField("dim_param"):
            out.append(d.dim_param)
        else:
            out.append("?")
    return out, onnx.TensorProto.DataType.Name(t.elem_type)


def attr_value(a):
    v = helper.get_attribute_value(a)
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, list):
        return [x.decode() if isinstance(x, bytes) else x for x in v]
    if isinstance(v, onnx.TensorProto):
        arr = numpy_helper.to_array(v)
        return f"tensor{list(arr.shape)}:{arr.dtype}"
    return v


def summarise(path):
    m = onnx.load(path)
    g = m.graph
    init_names = {i.name for i in g.initializer}
    s = {
        "file": path,
        "ir_version": m.ir_version,
        "producer": f"{m.producer_name} {m.producer_version}".strip(),
        "opsets": {(o.domain or "ai.onnx"): o.version for o in m.opset_import},
        "inputs": [
            {"name": i.name, "shape": dims(i)[0], "dtype": dims(i)[1]}
            for i in g.input
            if i.name not in init_names
        ],
        "outputs": [{"name": o.name, "shape": dims(o)[0], "dtype": dims(o)[1]} for o in g.output],
        "n_nodes": len(g.node),
        "n_initializers": len(g.initializer),
        "initializer_params": int(sum(numpy_helper.to_array(i).size for i in g.initializer)),
    }
    ops = collections.Counter(n.op_type for n in g.node)
    s["ops"] = dict(sorted(ops.items(), key=lambda kv: (-kv[1], kv[0])))
    # attribute value histograms per op type
    attrs = collections.defaultdict(collections.Counter)
    n_inputs = collections.defaultdict(collections.Counter)
    const_params = 0
    const_count = 0
    for n in g.node:
        n_inputs[n.op_type][len([x for x in n.input if x])] += 1
        for a in n.attribute:
            v = attr_value(a)
            if n.op_type == "Constant" and a.name == "value":
                t = numpy_helper.to_array(a.t)
                const_params += t.size
                const_count += 1
                v = "tensor(rank %d)" % t.ndim
            key = json.dumps(v) if not isinstance(v, str) else v
            attrs[n.op_type][f"{a.name}={key}"] += 1
    s["attributes"] = {k: dict(v) for k, v in sorted(attrs.items())}
    s["input_arity"] = {k: dict(v) for k, v in sorted(n_inputs.items())}
    s["constant_nodes"] = const_count
    s["constant_node_params"] = int(const_params)
    # which Clip nodes use inputs for min/max
    return s


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    out = None
    if "--json" in sys.argv:
        out = sys.argv[sys.argv.index("--json") + 1]
        args = [a for a in args if a != out]
    res = [summarise(p) for p in args]
    for s in res:
        print(json.dumps(s, indent=1))
    if out:
        with open(out, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
