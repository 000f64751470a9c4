"""Whole networks: torchvision models on PyTorch's CPU paths against fastconv.torch.optimize.

    python3 -m fastconv.bench_models [--models resnet50,vgg16,mobilenet_v2] [--batch 1,8] [--threads N]
                                     [--size 224] [--reps R] [--json F] [--plot F] [--profile]

Models are built with weights=None (random weights, nothing is downloaded). For each model and batch
it times, interleaved in one process, PyTorch eager (NCHW), eager channels_last, TorchScript
(torch.jit.optimize_for_inference(torch.jit.script(model))) and fastconv.torch.optimize(model); prints
the medians, the speedup of fastconv against the fastest PyTorch path (the median over rounds of the
two times' ratio in the same round: robust to a shared host's slow seconds; a path whose output is
more than 1e-3 off eager's is not counted), and each path's normwise difference from eager,
max|y - y_eager| / max|y_eager|. torch.set_num_threads(N) and fastconv's
threads=N alike. --profile adds, per conv layer of the optimized model, fastconv (the C++ execute and
the whole Python call) against torch's conv of the same layer, and each layer's time inside the
network (its step in the native chain, recorded while the whole model runs).

PyTorch's paths allocate their activations afresh on every forward, and glibc's malloc gives large
blocks back to the system when they are freed (each is a new mapping, each of its pages a page fault
when next used); fastconv's chains reuse theirs. Where page faults are slow (a virtual machine under
memory pressure: 11-16 us per page seen, where a quiet host takes well under 1) that alone made
TorchScript's MobileNetV2 at batch 8 run 200-280 ms instead of 31-44. So that the comparison does not
depend on the host's page faults, the bench runs (run as a program: it starts itself again) with
malloc keeping freed memory (--malloc keep, the default: GLIBC_TUNABLES with a 4 GiB mmap threshold
and no trimming), the fastest setting for the torch paths; --malloc system leaves malloc as it is.
Each model and batch also records the host's cost of a first touch of fresh memory (us per page)
just before its rounds.
"""

import argparse
import copy
import json
import mmap
import os
import platform
import statistics
import sys
import time

import torch
import torch.nn as nn

import fastconv
import fastconv.torch as fct

PATHS = ("eager", "channels_last", "torchscript", "fastconv")
DEFAULT_MODELS = "resnet50,vgg16,mobilenet_v2"


class TinyResNet(nn.Module):
    """A small CNN with BatchNorm, a BasicBlock-like residual and a strided conv (tests, smoke runs)."""

    def __init__(self, classes=10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(inplace=True))
        self.block = nn.Sequential(nn.Conv2d(16, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU6(),
                                   nn.Conv2d(16, 16, 1), nn.BatchNorm2d(16))
        self.down = nn.Sequential(nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.SiLU(),
                                  nn.Conv2d(32, 32, 3, padding=1, groups=32), nn.Hardswish())
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, classes))

    def forward(self, x):
        x = self.stem(x)
        x = torch.relu(x + self.block(x))
        return self.head(self.down(x))


def build_model(name):
    if name == "tiny":
        return TinyResNet()
    import torchvision.models as tvm

    builder = getattr(tvm, name, None)
    if builder is None or not callable(builder):
        raise SystemExit(f"bench_models: unknown model {name!r} (a torchvision.models builder, or 'tiny')")
    kwargs = {"weights": None}
    if name.startswith(("fcn_", "deeplabv3", "lraspp")):
        kwargs["weights_backbone"] = None
    if name in ("googlenet", "inception_v3"):
        kwargs["aux_logits"] = False
        kwargs["init_weights"] = False
    return builder(**kwargs)


def _first_tensor(y):
    if isinstance(y, torch.Tensor):
        return y
    if isinstance(y, dict):
        return _first_tensor(next(iter(y.values())))
    if isinstance(y, (tuple, list)):
        return _first_tensor(y[0])
    return y.logits if hasattr(y, "logits") else y


def normwise_diff(y, ref):
    y, ref = _first_tensor(y).double(), _first_tensor(ref).double()
    return float((y - ref).abs().max() / ref.abs().max().clamp_min(1e-30))


# glibc's malloc keeping what is freed: no block up to 4 GiB is its own mapping, and the heap is never
# trimmed (see the module's docstring).
KEPT_MEMORY_TUNABLES = "glibc.malloc.mmap_threshold=4294967296:glibc.malloc.trim_threshold=68719476736"


def malloc_keeps_memory():
    """Whether this process's malloc runs with KEPT_MEMORY_TUNABLES (glibc reads them at start-up)."""
    return platform.libc_ver()[0] == "glibc" and KEPT_MEMORY_TUNABLES in os.environ.get("GLIBC_TUNABLES", "")


def restart_keeping_memory(argv):
    """Runs the bench again in a fresh process with KEPT_MEMORY_TUNABLES, unless asked not to
    (--malloc system), already so, or not on glibc. Returns only when it does not restart."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--malloc", default="keep")
    if pre.parse_known_args(argv)[0].malloc != "keep" or platform.libc_ver()[0] != "glibc" or \
            KEPT_MEMORY_TUNABLES in os.environ.get("GLIBC_TUNABLES", ""):
        return
    env = dict(os.environ)
    env["GLIBC_TUNABLES"] = ":".join(t for t in (env.get("GLIBC_TUNABLES"), KEPT_MEMORY_TUNABLES) if t)
    sys.stdout.flush(), sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, "-m", "fastconv.bench_models", *argv], env)


def first_touch_us(mib=32, reps=3):
    """The host's cost of one page fault: us per page to write the first byte of each page of a fresh
    anonymous mapping of `mib` MiB (numpy writes them: no Python loop in the timing); the median of
    `reps` mappings."""
    import numpy as np

    page = mmap.PAGESIZE
    times = []
    for _ in range(reps):
        m = mmap.mmap(-1, mib << 20)
        try:
            view = np.frombuffer(m, dtype=np.uint8)
            t0 = time.perf_counter()
            view[::page] = 1
            times.append(1e6 * (time.perf_counter() - t0) / ((mib << 20) // page))
            del view
        finally:
            m.close()
    return statistics.median(times)


def make_paths(model, x, threads, mode):
    """name -> (callable, input) for the four paths, each made ready (traced, planned) by one run."""
    paths = {}
    paths["eager"] = (model, x)
    cl = copy.deepcopy(model).to(memory_format=torch.channels_last)
    paths["channels_last"] = (cl, x.contiguous(memory_format=torch.channels_last))
    with torch.no_grad():
        scripted = torch.jit.optimize_for_inference(torch.jit.script(copy.deepcopy(model).eval()))
    paths["torchscript"] = (scripted, x)
    fast = fct.optimize(model, mode=mode, threads=threads)
    paths["fastconv"] = (fast, x)
    return paths, fast.fastconv_report


def time_paths(paths, reps, progress, max_seconds, pause_ms=20):
    """Interleaved: each round runs every path once, the order rotating; medians in ms. Each path is
    warmed up first, and every run waits pause_ms before it starts: the OpenMP workers of torch and the
    oneTBB workers of fastconv spin for a while after their last parallel region, and would otherwise
    take a core from whichever path runs next (measured on ResNet-50: TorchScript 66.8 ms after a
    pause, 101.9 ms right after fastconv)."""
    times = {name: [] for name in paths}
    names = list(paths)
    with torch.no_grad():
        for fn, x in paths.values():
            fn(x)
    start = time.perf_counter()
    with torch.no_grad():
        for r in range(reps):
            order = names[r % len(names):] + names[:r % len(names)]
            for name in order:
                fn, x = paths[name]
                time.sleep(pause_ms / 1e3)
                t0 = time.perf_counter()
                fn(x)
                times[name].append(1e3 * (time.perf_counter() - t0))
                progress.update(1)
            if r >= 4 and time.perf_counter() - start > max_seconds:
                progress.update((reps - r - 1) * len(names))
                break
    return {name: statistics.median(v) for name, v in times.items()}, times


# A torch path whose output strays from eager's by more than this (normwise) is wrong, not fast: it is
# no yardstick. (PyTorch 1.13's optimize_for_inference gives MobileNetV3 outputs 2e-2 to 0.9 off.)
TORCH_PATH_TOLERANCE = 1e-3


def fastest_torch_path(ms, diffs):
    """The fastest PyTorch path among those that agree with eager (eager always does), and the others
    that were faster but disagree."""
    valid = [p for p in PATHS if p != "fastconv" and (p == "eager" or diffs[p] <= TORCH_PATH_TOLERANCE)]
    best = min(valid, key=lambda p: ms[p])
    wrong = [p for p in PATHS if p not in valid and p != "fastconv" and ms[p] < ms[best]]
    return best, wrong


def paired_speedup(torch_ms, fastconv_ms):
    """The median over rounds of the fastest torch path's time over fastconv's in the same round: the two
    ran within milliseconds of each other, so a host that slows down for seconds (a shared machine)
    moves both and leaves the ratio; the ratio of the two medians mixes rounds and moved by 30% between
    runs of this bench on the Xeon."""
    return statistics.median(t / f for t, f in zip(torch_ms, fastconv_ms))


def network_profile(fast, x, reps=9):
    """Each layer of the optimized model's native chains timed inside the network: the chains record
    every step while the whole model runs (no hooks, so the layers stay in their chains). Returns
    {layer module: median ms}."""
    chains = [m for m in fast.modules() if isinstance(m, fct._Chain)]
    if isinstance(fast.__dict__.get("_fc_whole"), fct._Chain):  # a whole torchvision forward, outside _modules
        chains.append(fast.__dict__["_fc_whole"])
    runs = [s for c in chains for s in c.__dict__["_fc_segments"] if isinstance(s, fct._ConvRun)]
    times = {}
    with torch.no_grad():
        fast(x)  # compiled for this input
        programs = [p for r in runs for p in r.programs.values() if p.chain is not None]
        for p in programs:
            p.chain.set_profiling(True)
        try:
            for _ in range(reps):
                fast(x)
        finally:
            for p in programs:
                p.chain.set_profiling(False)
        for p in programs:
            for seconds in p.chain.step_seconds:
                for layer, sec in zip(p.step_modules, seconds):
                    times.setdefault(layer, []).append(1e3 * sec)
    return {layer: statistics.median(v) for layer, v in times.items()}


def profile_layers(fast, x, reps=9):
    """Per conv layer of an optimized model: the C++ execute alone, the layer's whole Python call, and
    torch's conv (+ the same post-ops) on the same input, medians in ms; and the layer's step inside
    the network (network_profile; None for a layer outside the chains). Max pools in chains: a row
    each, with their network time only."""
    inputs = {}

    def keep_input(module, args, output):  # returns None: the output stays as it is
        inputs.setdefault(module, (args[0], args[1] if len(args) > 1 else None))

    hooks = [m.register_forward_hook(keep_input) for m in fast.modules() if isinstance(m, fct.Conv2d)]
    with torch.no_grad():
        fast(x)
    for h in hooks:
        h.remove()
    rows = []
    names = {m: n for n, m in fast.named_modules()}
    with torch.no_grad():
        for m, (xi, ri) in inputs.items():
            state = m._fc_states.get(xi.shape if ri is None else (xi.shape, "residual"))
            if not isinstance(state, fct._ShapeState):
                continue
            packed = m._packed(state)
            out = torch.empty(state.out_shape)
            xn, on = xi.contiguous().numpy(), out.numpy()
            rn = ri.contiguous().numpy() if ri is not None else None
            execute = (lambda: state.plan.execute(xn, packed, on, rn)) if ri is not None else \
                (lambda: state.plan.execute(xn, packed, on))
            call = lambda: m(xi, ri)
            ref = lambda: m._torch_forward(xi, ri, m.weight, m.bias)
            t = {"execute": [], "call": [], "torch": []}
            for _ in range(reps):
                for key, fn in (("execute", execute), ("call", call), ("torch", ref)):
                    t0 = time.perf_counter()
                    fn()
                    t[key].append(1e3 * (time.perf_counter() - t0))
            med = {k: statistics.median(v) for k, v in t.items()}
            rows.append({"layer": names.get(m, "?"), "shape": list(xi.shape), "conv": fct._describe_conv(m),
                         "implementation": state.plan.implementation, **{k + "_ms": v for k, v in med.items()},
                         "network_ms": None, "module": m})
    network = network_profile(fast, x, reps)
    for r in rows:
        r["network_ms"] = network.pop(r.pop("module"), None)
    for m, ms in network.items():  # the pools and linear layers
        if isinstance(m, fct.Linear):
            what, implementation = f"linear {m.in_features}->{m.out_features}", "1x1 conv (direct_dots)"
        elif isinstance(m, fct.AdaptiveAvgPool2d):
            what, implementation = "global average pool", "global_avg_pool"
        else:
            what, implementation = "max pool", "max_pool"
        rows.append({"layer": names.get(m, "head"), "shape": None, "conv": what, "implementation": implementation,
                     "execute_ms": None, "call_ms": None, "torch_ms": None, "network_ms": ms})
    return rows


def print_profile(model_name, batch, rows, file):
    print(f"\nper-layer profile: {model_name} batch {batch} (ms, medians; call = Python layer incl. execute; "
          f"network = the layer's step inside the whole forward, in its native chain)", file=file)
    print(f"{'layer':34} {'conv':22} {'implementation':28} {'execute':>8} {'call':>8} {'torch':>8} {'x':>6} "
          f"{'network':>8}", file=file)
    ms = lambda v: f"{v:8.3f}" if v is not None else f"{'-':>8}"
    convs = [r for r in rows if r["execute_ms"] is not None]
    for r in rows:
        ratio = f"{r['torch_ms'] / r['call_ms']:6.2f}" if r["call_ms"] else f"{'':6}"
        print(f"{r['layer'][:34]:34} {r['conv'][:22]:22} {r['implementation'][:28]:28} {ms(r['execute_ms'])} "
              f"{ms(r['call_ms'])} {ms(r['torch_ms'])} {ratio} {ms(r['network_ms'])}", file=file)
    ex, call, tr = (sum(r[k] for r in convs) for k in ("execute_ms", "call_ms", "torch_ms"))
    net = [r["network_ms"] for r in rows if r["network_ms"] is not None]
    print(f"{'sum':34} {'':22} {'':28} {ex:8.3f} {call:8.3f} {tr:8.3f} {tr / call:6.2f} "
          f"{ms(sum(net) if net else None)}", file=file)
    print(f"Python overhead per layer (call - execute): {1e3 * (call - ex) / max(len(convs), 1):.1f} us median-sum "
          f"over {len(convs)} layers; {len(net)} layers in native chains", file=file)


def plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{r['model']}\nbatch {r['batch']}" for r in results]
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(results)), 4))
    width = 0.8 / len(PATHS)
    for i, p in enumerate(PATHS):
        ax.bar([j + (i - 1.5) * width for j in range(len(results))],
               [r["best_torch_ms"] / r["ms"][p] for r in results], width, label=p)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xticks(range(len(results)))
    ax.set_xticklabels(labels)
    ax.set_ylabel("speed vs fastest PyTorch path (x)")
    ax.set_title(f"fastconv {fastconv.__version__} ({fastconv.instruction_set()}), {results[0]['threads']} threads")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python3 -m fastconv.bench_models", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=DEFAULT_MODELS,
                    help=f"comma-separated torchvision model builders, or 'tiny' (default {DEFAULT_MODELS})")
    ap.add_argument("--batch", default="1,8", help="comma-separated batch sizes (default 1,8)")
    ap.add_argument("--threads", type=int, default=None,
                    help="threads for torch (set_num_threads) and fastconv alike (default: all cores)")
    ap.add_argument("--size", type=int, default=224, help="input height and width (default 224)")
    ap.add_argument("--reps", type=int, default=11, help="interleaved rounds per model and batch (default 11)")
    ap.add_argument("--pause-ms", type=float, default=20.0,
                    help="pause before each timed run, so that no library's spinning workers meet the next "
                         "run (default 20)")
    ap.add_argument("--max-seconds", type=float, default=60.0,
                    help="stop a model's rounds after this long, keeping at least 5 (default 60)")
    ap.add_argument("--mode", default="estimate", choices=("estimate", "measure"), help="fastconv planning mode")
    ap.add_argument("--json", help="write the results to this file")
    ap.add_argument("--plot", help="write a bar chart (matplotlib: .png, .svg, .pdf)")
    ap.add_argument("--profile", action="store_true", help="per-layer breakdown of fastconv against torch")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar")
    ap.add_argument("--malloc", choices=("keep", "system"), default="keep",
                    help="keep: run with glibc's malloc keeping freed memory (the program restarts itself "
                         "with GLIBC_TUNABLES; the default), so that no path's time depends on the host's page "
                         "faults; system: malloc as it is")
    args = ap.parse_args(argv)

    threads = args.threads or len(os.sched_getaffinity(0))
    torch.set_num_threads(threads)
    models = [m for m in args.models.split(",") if m]
    batches = [int(b) for b in args.batch.split(",") if b]
    torch.manual_seed(0)

    from tqdm import tqdm

    progress = tqdm(total=len(models) * len(batches) * args.reps * len(PATHS), file=sys.stderr, unit="run",
                    disable=args.no_progress, dynamic_ncols=True)
    results, profiles = [], []
    for name in models:
        model = build_model(name).eval()
        for batch in batches:
            progress.set_description(f"{name} b{batch}")
            x = torch.randn(batch, 3, args.size, args.size)
            paths, report = make_paths(model, x, threads, args.mode)
            with torch.no_grad():
                outputs = {p: fn(xi) for p, (fn, xi) in paths.items()}  # warm-up: plans, packs, JIT
                for p, (fn, xi) in paths.items():
                    fn(xi)
            diffs = {p: normwise_diff(outputs[p], outputs["eager"]) for p in PATHS}
            fault_us = first_touch_us()
            ms, samples = time_paths(paths, args.reps, progress, args.max_seconds, args.pause_ms)
            best_name, wrong = fastest_torch_path(ms, diffs)
            best = ms[best_name]
            results.append({"model": name, "batch": batch, "size": args.size, "threads": threads, "ms": ms,
                            "runs": {p: len(v) for p, v in samples.items()}, "samples_ms": samples,
                            "best_torch": best_name, "best_torch_ms": best, "faster_but_wrong": wrong,
                            "speedup": paired_speedup(samples[best_name], samples["fastconv"]),
                            "speedup_of_medians": best / ms["fastconv"], "diff_vs_eager": diffs,
                            "fastconv_layers": len(report.moved), "torch_conv_layers": len(report.stayed),
                            "stayed": report.stayed, "first_touch_us_per_page": fault_us})
            if args.profile:
                rows = profile_layers(paths["fastconv"][0], x)
                profiles.append({"model": name, "batch": batch, "layers": rows})
            del paths
    progress.close()

    out = sys.stdout
    kept = malloc_keeps_memory()  # (platform.libc_ver reads the interpreter's binary: once)
    malloc = "keeps freed memory" if kept else "as the system has it"
    print(f"fastconv {fastconv.__version__} ({fastconv.instruction_set()}), torch {torch.__version__}, "
          f"{threads} threads, {args.size}x{args.size}, malloc {malloc}, medians of interleaved runs (ms); speedup: "
          f"median over rounds of the fastest torch path's time / fastconv's in the same round", file=out)
    head = f"{'model':16} {'batch':>5} " + " ".join(f"{p:>13}" for p in PATHS) + \
        f" {'fastest torch':>14} {'speedup':>8} {'conv on fc':>10} {'fastconv vs eager':>18}"
    print(head, file=out)
    for r in results:
        print(f"{r['model']:16} {r['batch']:5d} " + " ".join(f"{r['ms'][p]:13.2f}" for p in PATHS) +
              f" {r['best_torch']:>14} {r['speedup']:7.2f}x {r['fastconv_layers']:>4}/{r['fastconv_layers'] + r['torch_conv_layers']:<5}"
              f" {r['diff_vs_eager']['fastconv']:18.2e}", file=out)
        for layer, why in r["stayed"]:
            print(f"    on torch: {layer}: {why}", file=out)
        for p in r["faster_but_wrong"]:
            print(f"    not counted: {p} ran faster ({r['ms'][p]:.2f} ms) but {r['diff_vs_eager'][p]:.1e} off eager's "
                  f"output (more than {TORCH_PATH_TOLERANCE:g})", file=out)
    print("max diff vs eager per path: " + "; ".join(
        f"{r['model']} b{r['batch']}: " + ", ".join(f"{p} {r['diff_vs_eager'][p]:.1e}" for p in PATHS if p != "eager")
        for r in results), file=out)
    if results:
        print("first touch of fresh memory (a page fault) before each model's rounds, us per page: " + ", ".join(
                  f"{r['model']} b{r['batch']} {r['first_touch_us_per_page']:.2f}" for r in results), file=out)
    for pr in profiles:
        print_profile(pr["model"], pr["batch"], pr["layers"], out)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"fastconv": fastconv.__version__, "isa": fastconv.instruction_set(), "torch": torch.__version__,
                       "threads": threads, "malloc_keeps_memory": kept, "results": results,
                       "profiles": profiles}, f, indent=1)
    if args.plot:
        plot(results, args.plot)
    return 0


if __name__ == "__main__":
    restart_keeping_memory(sys.argv[1:])
    sys.exit(main())
