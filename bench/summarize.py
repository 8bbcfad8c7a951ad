#!/usr/bin/env python3
"""Turns `elide bench sbnet --json` records into the README's markdown table.

    python3 bench/summarize.py bench/results/sbnet-1t.json [--sparsity 0,0.5,0.9,0.99]
    python3 bench/summarize.py SWEEP1.json SWEEP2.json SWEEP3.json --combined OUT.json
With several sweeps, each point is the sweep with the median speed-up (this VM's speed drifts
for seconds at a time, which moves single points of one sweep), written to --combined.
Each cell: speed-up over our dense / over ONNX Runtime dense (block size chosen, block
sparsity). "dense ms" is the median of the dense timings taken beside each point.
"""
import argparse
import json


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("json", nargs="+")
    ap.add_argument("--combined")
    ap.add_argument("--sparsity", default="0,0.5,0.9,0.99")
    a = ap.parse_args()
    sweeps = [json.load(open(f)) for f in a.json]
    recs = []
    for points in zip(*sweeps):
        keys = {(r["layer"], r["mask"], r["sparsity"]) for r in points}
        if len(keys) != 1:
            raise SystemExit(f"sweeps differ: {keys}")
        recs.append(sorted(points, key=lambda r: r["speedup"])[len(points) // 2])
    if a.combined:
        json.dump(recs, open(a.combined, "w"), indent=1)
    targets = [float(s) for s in a.sparsity.split(",")]
    print(f"threads: {recs[0]['threads']}\n")
    head = "| layer (input) | mask | dense ms | ORT ms | " + " | ".join(f"{t:.0%}" for t in targets) + " |"
    print(head)
    print("|" + "---|" * (4 + len(targets)))
    keys = []
    for r in recs:
        k = (r["layer"], r["mask"])
        if k not in keys:
            keys.append(k)
    for layer, mask in keys:
        rows = [r for r in recs if r["layer"] == layer and r["mask"] == mask]
        r0 = rows[0]
        shape = "x".join(str(v) for v in r0["input_shape"])
        cells = []
        for t in targets:
            m = [r for r in rows if abs(r["sparsity"] - t) < 1e-9]
            if not m:
                cells.append("-")
                continue
            r = m[0]
            ort = f" / {r['speedup_vs_ort']:.2f}x" if r["speedup_vs_ort"] else ""
            blk = r["block_size"] if r["block_size"] else "dense"
            cells.append(f"{r['speedup']:.2f}x{ort} (b={blk}, {r['block_sparsity']:.2f})")
        ort_ms = f"{r0['ort_ms']:.1f}" if r0["ort_ms"] else "-"
        # Dense is re-timed beside every point; show the median of those timings.
        dense = sorted(r["dense_ms"] for r in rows)[len(rows) // 2]
        print(f"| {layer} ({shape}) | {mask} | {dense:.1f} | {ort_ms} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
