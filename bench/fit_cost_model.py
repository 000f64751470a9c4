#!/usr/bin/python3
"""Fits the rates of the planner's cost model to calibration data.

Usage: fit_cost_model.py calibration.csv [kind=rate ...]
Reads the CSV of fastconv_calibrate_cost_model (one row per shape and implementation), fits one
rate per kind of work by non-negative least squares on relative error, with the model's own
parallel speedup, and prints the rates for the defaults table in src/core/machine_model.cpp, then
how well the fitted model picks: the share of shapes where its pick is within 10% of the fastest
(`fastconv calibrate` runs the same fit on the machine itself and keeps it with the wisdom). A kind=rate
argument fixes that kind's rate (units/s) instead of fitting it, for kinds the data cannot separate
(the Winograd transforms always come with their products)."""
import csv
import math
import sys

import numpy as np

KINDS = ["gemm_flops", "pack_elements", "direct_flops", "depthwise_flops", "scalar_flops", "transform_flops",
         "fft_flops", "complex_flops"]
PARALLEL_EFFICIENCY = 0.92  # MachineModel::parallel_efficiency (src/core/machine_model.hpp)


def speedup(tasks, threads):
    tasks = max(1.0, tasks)
    t = min(threads, tasks)
    rounds = math.ceil(tasks / t)
    return tasks / rounds * (PARALLEL_EFFICIENCY if t > 1 else 1.0)


def features(row):
    f = []
    for kind in KINDS:
        v = float(row[kind])
        if kind == "gemm_flops" and v > 0:
            k = float(row["gemm_k"])
            v /= max(0.2, k / (k + 24.0))  # the loss on short k: MachineModel::gemm_short_k_steps
        f.append(v)
    return f


def nnls(a, b, iterations=20000):
    """Projected gradient non-negative least squares (small problems only)."""
    x = np.maximum(np.linalg.lstsq(a, b, rcond=None)[0], 0)
    step = 1.0 / (np.linalg.norm(a, 2) ** 2)
    for _ in range(iterations):
        x = np.maximum(x - step * (a.T @ (a @ x - b)), 0)
    return x


def main():
    rows = list(csv.DictReader(open(sys.argv[1])))
    fixed = {k: float(v) for k, v in (arg.split("=") for arg in sys.argv[2:])}
    threads = int(rows[0]["threads"])
    a, b = [], []
    for r in rows:
        ms = float(r["measured_ms"])
        s = speedup(float(r["parallel_tasks"]), threads)
        f = features(r)
        # relative error: divide the row by the measured time; fixed kinds move to the right side
        known = sum(v / fixed[k] for k, v in zip(KINDS, f) if k in fixed) / s
        a.append([0.0 if k in fixed else v / (ms * 1e-3 * s) for k, v in zip(KINDS, f)] + [1.0 / (ms * 1e-3)])
        b.append(1.0 - known / (ms * 1e-3))
    a, b = np.array(a), np.array(b)
    scale = np.maximum(a.max(axis=0), 1e-30)
    x = nnls(a / scale, b) / scale
    for i, k in enumerate(KINDS):
        if k in fixed:
            x[i] = 1.0 / fixed[k]
    print("fitted single-core rates (units/s) for", rows[0]["isa"])
    for kind, inv in zip(KINDS, x[:-1]):
        used = any(float(r[kind]) > 0 for r in rows)
        print(f"  {kind:16s} {('%.3g' % (1.0 / inv)) if inv > 0 else 'unconstrained' if not used else 'free':>14}")
    print(f"  fixed overhead   {x[-1] * 1e6:.1f} us")
    # pick quality of the fitted model
    by_shape = {}
    for r in rows:
        est = sum(v * inv for v, inv in zip(features(r), x[:-1])) / speedup(float(r["parallel_tasks"]), threads) + x[-1]
        by_shape.setdefault(r["shape"], []).append((est, float(r["measured_ms"]), r["implementation"]))
    good, worst = 0, (1.0, "")
    for shape, cands in by_shape.items():
        best = min(c[1] for c in cands)
        pick = min(cands)[1]
        good += pick <= 1.10 * best
        worst = max(worst, (pick / best, shape))
    print(f"fitted model picks within 10% of the fastest on {good}/{len(by_shape)} shapes; worst {worst[0]:.2f}x ({worst[1]})")
    good, worst = 0, (1.0, "")
    for shape in by_shape:
        cands = [(float(r["estimated_ms"]), float(r["measured_ms"])) for r in rows if r["shape"] == shape]
        best = min(c[1] for c in cands)
        pick = min(cands)[1]
        good += pick <= 1.10 * best
        worst = max(worst, (pick / best, shape))
    print(f"current model picks within 10% of the fastest on {good}/{len(by_shape)} shapes; worst {worst[0]:.2f}x ({worst[1]})")


if __name__ == "__main__":
    main()
