#!/usr/bin/python3
"""`fastconv run` against PyTorch's conv2d (computed in float64) on seeded random layers.

Usage: pytorch_cross_check.py /path/to/fastconv [cases]
Every algorithm that applies is forced in turn; the normwise error must stay within design
section 8 (1e-5; FFT 2e-5; Winograd's larger tiles 1e-4). Some cases use a padding mode other than
zeros (against torch.nn.Conv2d(padding_mode=...)) and some fused post-ops (an activation as
torch.nn.functional has it, a residual with a scale). The backward directions
(`--direction backward-data|backward-weights`) are compared with torch.autograd's gradients of the
same layer, in float64: backward-data within the same tolerances, backward-weights within them
scaled by max(1, N*P*Q/4096) (its sums run over N*P*Q products)."""
import os
import random
import subprocess
import sys
import tempfile

import numpy as np
import torch

TOLERANCE = {"direct": 1e-5, "im2col": 1e-5, "winograd": 1e-4, "fft": 2e-5, "auto": 1e-4}

F = torch.nn.functional
ACTIVATIONS = {
    "relu": F.relu, "relu6": F.relu6, "leaky_relu:0.1": lambda t: F.leaky_relu(t, 0.1),
    "clamp:-0.5,0.75": lambda t: torch.clamp(t, -0.5, 0.75), "silu": F.silu, "hardswish": F.hardswish,
    "gelu": lambda t: F.gelu(t, approximate="tanh"), "sigmoid": torch.sigmoid, "tanh": torch.tanh,
}


def with_padding_mode(case, rng):
    """A padding mode for some cases: symmetric padding (as torch.nn.Conv2d takes it), as large as
    the mode allows (reflect: < size, circular: <= size)."""
    mode = rng.choice(["zeros", "zeros", "reflect", "replicate", "circular"])
    case["mode"] = mode
    if mode == "zeros":
        return case
    lim_h = case["h"] - 1 if mode == "reflect" else case["h"] if mode == "circular" else 10**9
    lim_w = case["w"] - 1 if mode == "reflect" else case["w"] if mode == "circular" else 10**9
    case["pt"] = case["pb"] = min(max(case["pt"], case["pb"]), lim_h)
    case["pl"] = case["pr"] = min(max(case["pl"], case["pr"]), lim_w)
    return case


def random_case(rng):
    while True:
        g = rng.choice([1, 1, 1, 2, 3])
        depthwise = rng.random() < 0.15
        c = g * rng.randint(1, 6)
        k = g * rng.randint(1, 6)
        if depthwise:
            g = c = rng.randint(2, 12)
            k = c * rng.choice([1, 2])
        case = dict(n=rng.randint(1, 3), c=c, h=rng.randint(3, 33), w=rng.randint(3, 33), k=k,
                    r=rng.randint(1, 7), s=rng.randint(1, 7), sh=rng.randint(1, 3), sw=rng.randint(1, 3),
                    dh=rng.choice([1, 1, 2, 3]), dw=rng.choice([1, 1, 2]), g=g,
                    pt=rng.randint(0, 3), pb=rng.randint(0, 3), pl=rng.randint(0, 3), pr=rng.randint(0, 3),
                    bias=rng.random() < 0.7)
        eh = case["dh"] * (case["r"] - 1) + 1
        ew = case["dw"] * (case["s"] - 1) + 1
        case = with_padding_mode(case, rng)
        case["act"] = rng.choice(list(ACTIVATIONS)) if rng.random() < 0.35 else None
        case["residual"] = rng.choice([None, None, 1.0, 0.5])
        if eh <= case["h"] + case["pt"] + case["pb"] and ew <= case["w"] + case["pl"] + case["pr"]:
            return case


def reference(c, x, w, b):
    """PyTorch's convolution in float64, and the magnitude conv(|x|, |w|) + |b| that scales errors."""
    if c["mode"] == "zeros":
        def conv(xd, wd, bd):
            xt = F.pad(xd, (c["pl"], c["pr"], c["pt"], c["pb"]))
            return F.conv2d(xt, wd, bd, stride=(c["sh"], c["sw"]), dilation=(c["dh"], c["dw"]), groups=c["g"])
    else:
        def conv(xd, wd, bd):
            m = torch.nn.Conv2d(c["c"], c["k"], (c["r"], c["s"]), stride=(c["sh"], c["sw"]),
                                padding=(c["pt"], c["pl"]), dilation=(c["dh"], c["dw"]), groups=c["g"],
                                bias=bd is not None, padding_mode=c["mode"]).double()
            with torch.no_grad():
                m.weight.copy_(wd)
                if bd is not None:
                    m.bias.copy_(bd)
                return m(xd)
    xd, wd = torch.from_numpy(x).double(), torch.from_numpy(w).double()
    bd = torch.from_numpy(b).double() if c["bias"] else None
    with torch.no_grad():
        return conv(xd, wd, bd), conv(xd.abs(), wd.abs(), bd.abs() if bd is not None else None)


def main():
    exe = os.path.abspath(sys.argv[1])
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 40
    rng = random.Random(20261122)
    failures = 0
    runs = 0
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(count):
            c = random_case(rng)
            x = np.random.default_rng(i).uniform(-1, 1, (c["n"], c["c"], c["h"], c["w"])).astype(np.float32)
            w = np.random.default_rng(i + 1000).uniform(-1, 1, (c["k"], c["c"] // c["g"], c["r"], c["s"])).astype(np.float32)
            b = np.random.default_rng(i + 2000).uniform(-1, 1, (c["k"],)).astype(np.float32)
            np.save(os.path.join(tmp, "x.npy"), x)
            np.save(os.path.join(tmp, "w.npy"), w)
            np.save(os.path.join(tmp, "b.npy"), b)
            ref, mag = reference(c, x, w, b)
            post = []
            if c["residual"] is not None:
                r = np.random.default_rng(i + 3000).uniform(-1, 1, tuple(ref.shape)).astype(np.float32)
                np.save(os.path.join(tmp, "r.npy"), r)
                ref = ref + c["residual"] * torch.from_numpy(r).double()
                mag = mag + abs(c["residual"]) * torch.from_numpy(r).double().abs()
                post += ["--residual", os.path.join(tmp, "r.npy"), "--residual-scale", str(c["residual"])]
            if c["act"]:
                ref = ACTIVATIONS[c["act"]](ref)
                post += ["--activation", c["act"]]
            if c["mode"] != "zeros":
                post += ["--padding-mode", c["mode"]]
            scale = max(float(mag.max()), 1e-30)
            for algo in ["auto", "direct", "im2col", "winograd", "fft"]:
                y_path = os.path.join(tmp, "y.npy")
                if os.path.exists(y_path):
                    os.remove(y_path)
                args = [exe, "run", "--input", os.path.join(tmp, "x.npy"), "--weight", os.path.join(tmp, "w.npy"),
                        "--output", y_path, "--stride", f"{c['sh']},{c['sw']}",
                        "--padding", f"{c['pt']},{c['pb']},{c['pl']},{c['pr']}",
                        "--dilation", f"{c['dh']},{c['dw']}", "--groups", str(c["g"]), "--algo", algo] + post
                if c["bias"]:
                    args += ["--bias", os.path.join(tmp, "b.npy")]
                p = subprocess.run(args, capture_output=True, text=True)
                if p.returncode != 0:
                    if algo != "auto" and "does not apply" in p.stderr:
                        continue  # declined, with its reason
                    print(f"case {i} {c} {algo}: exit {p.returncode}: {p.stderr.strip()}")
                    failures += 1
                    continue
                y = np.load(y_path)
                if y.shape != tuple(ref.shape):
                    print(f"case {i} {c} {algo}: shape {y.shape} != {tuple(ref.shape)}")
                    failures += 1
                    continue
                err = float((torch.from_numpy(y).double() - ref).abs().max()) / scale
                runs += 1
                if err > TOLERANCE[algo]:
                    print(f"case {i} {c} {algo}: normwise error {err:.3e} > {TOLERANCE[algo]}")
                    failures += 1
            if c["mode"] == "zeros":  # backward plans take zero padding only
                f, r = backward_checks(exe, tmp, i, c, x, w, b)
                failures += f
                runs += r
        failures += shape_errors(exe, tmp)
    print(f"{runs} runs of fastconv against PyTorch {torch.__version__}, {failures} failures")
    return 1 if failures or runs == 0 else 0


def conv_args(c):
    return ["--stride", f"{c['sh']},{c['sw']}", "--padding", f"{c['pt']},{c['pb']},{c['pl']},{c['pr']}",
            "--dilation", f"{c['dh']},{c['dw']}", "--groups", str(c["g"])]


def backward_checks(exe, tmp, i, c, x, w, b):
    """Both gradients of the layer against torch.autograd in float64; returns (failures, runs)."""
    def layer(xv, wv, bv):
        xp = torch.nn.functional.pad(xv, (c["pl"], c["pr"], c["pt"], c["pb"]))
        return torch.nn.functional.conv2d(xp, wv, bv, stride=(c["sh"], c["sw"]), dilation=(c["dh"], c["dw"]),
                                          groups=c["g"])
    xt = torch.from_numpy(x).double().requires_grad_()
    wt = torch.from_numpy(w).double().requires_grad_()
    bt = torch.from_numpy(b).double().requires_grad_()
    y = layer(xt, wt, bt)
    dy = np.random.default_rng(i + 3000).uniform(-1, 1, tuple(y.shape)).astype(np.float32)
    dyt = torch.from_numpy(dy).double()
    dx_ref, dw_ref, db_ref = torch.autograd.grad(y, [xt, wt, bt], dyt)
    # Magnitudes that normalise the errors: the same sums over |terms|.
    xa = torch.from_numpy(np.abs(x)).double().requires_grad_()
    wa = torch.from_numpy(np.abs(w)).double().requires_grad_()
    dx_mag, dw_mag = torch.autograd.grad(layer(xa, wa, None), [xa, wa], dyt.abs())
    np.save(os.path.join(tmp, "dy.npy"), dy)
    n, k, p, q = y.shape
    failures = runs = 0
    for algo in ["auto", "direct", "im2col", "winograd", "fft"]:
        for direction in ["backward-data", "backward-weights"]:
            out = os.path.join(tmp, "out.npy")
            db_path = os.path.join(tmp, "db.npy")
            for f in (out, db_path):
                if os.path.exists(f):
                    os.remove(f)
            args = [exe, "run", "--direction", direction, "--grad-output", os.path.join(tmp, "dy.npy"),
                    "--output", out, "--algo", algo] + conv_args(c)
            if direction == "backward-data":
                args += ["--weight", os.path.join(tmp, "w.npy"), "--input-shape", ",".join(map(str, x.shape))]
                want, mag, tol = [dx_ref], [dx_mag], TOLERANCE[algo]
            else:
                args += ["--input", os.path.join(tmp, "x.npy"), "--weight-shape", ",".join(map(str, w.shape)),
                         "--bias-grad", db_path]
                want, mag = [dw_ref, db_ref], [dw_mag, dyt.abs().sum(dim=(0, 2, 3))]
                tol = TOLERANCE[algo] * max(1.0, n * p * q / 4096)
            proc = subprocess.run(args, capture_output=True, text=True)
            if proc.returncode != 0:
                if algo != "auto" and "does not apply" in proc.stderr:
                    continue
                print(f"case {i} {c} {direction} {algo}: exit {proc.returncode}: {proc.stderr.strip()}")
                failures += 1
                continue
            got = [np.load(out)] + ([np.load(db_path)] if direction == "backward-weights" else [])
            for g, r, m in zip(got, want, mag):
                runs += 1
                if g.shape != tuple(r.shape):
                    print(f"case {i} {c} {direction} {algo}: shape {g.shape} != {tuple(r.shape)}")
                    failures += 1
                    continue
                err = float((torch.from_numpy(g).double() - r).abs().max()) / max(float(m.max()), 1e-30)
                if err > tol:
                    print(f"case {i} {c} {direction} {algo}: normwise error {err:.3e} > {tol:.1e}")
                    failures += 1
    return failures, runs


def shape_errors(exe, tmp):
    """A dy that is not the forward output of the shapes given: an error, and no output file."""
    failures = 0
    np.save(os.path.join(tmp, "w3.npy"), np.ones((4, 3, 3, 3), np.float32))
    np.save(os.path.join(tmp, "x3.npy"), np.ones((1, 3, 9, 9), np.float32))
    np.save(os.path.join(tmp, "dy3.npy"), np.ones((1, 4, 5, 5), np.float32))  # stride 2, pad 1 of 9x9 or 10x10
    out = os.path.join(tmp, "never.npy")
    cases = [
        (["--direction", "backward-data", "--weight", "w3.npy", "--input-shape", "1,3,12,12"], "grad-output"),
        (["--direction", "backward-data", "--weight", "w3.npy", "--input-shape", "1,4,9,9"], "groups"),
        (["--direction", "backward-weights", "--input", "x3.npy", "--weight-shape", "4,3,5,5"], "grad-output"),
        (["--direction", "backward-weights", "--input", "x3.npy", "--weight-shape", "4,3,3,3", "--weight", "w3.npy"],
         "does not apply"),
    ]
    for extra, word in cases:
        args = [exe, "run", "--grad-output", "dy3.npy", "--output", out, "--stride", "2", "--padding", "1"] + extra
        proc = subprocess.run(args, capture_output=True, text=True, cwd=tmp)
        if proc.returncode == 0 or word not in proc.stderr or os.path.exists(out):
            print(f"{' '.join(extra)}: expected an error naming '{word}' and no output; got exit {proc.returncode}: "
                  f"{proc.stderr.strip()}")
            failures += 1
    # Both 9x9 and 10x10 inputs give this dy (the transposed convolution's output_padding 0 or 1).
    for size in (9, 10):
        args = [exe, "run", "--direction", "backward-data", "--grad-output", "dy3.npy", "--weight", "w3.npy",
                "--input-shape", f"1,3,{size},{size}", "--output", out, "--stride", "2", "--padding", "1"]
        proc = subprocess.run(args, capture_output=True, text=True, cwd=tmp)
        if proc.returncode != 0 or np.load(out).shape != (1, 3, size, size):
            print(f"backward-data to {size}x{size}: exit {proc.returncode}: {proc.stderr.strip()}")
            failures += 1
        os.remove(out) if os.path.exists(out) else None
    return failures


if __name__ == "__main__":
    sys.exit(main())
