"""A training step (forward, backward, SGD) of a torchvision model, plain PyTorch against the same model
with every nn.Conv2d replaced by fastconv.torch.Conv2d (forward, backward-data and backward-weights
plans; BatchNorm, ReLU, pooling and the classifier stay on torch).

    python3 -m fastconv.bench_training [--model resnet18] [--batch 8] [--size 112] [--threads 2]
                                       [--steps 7] [--warmup 2]

Random weights (weights=None, nothing is downloaded), random inputs and labels, cross-entropy, SGD
(lr 0.01, momentum 0.9). The two models start from the same weights and take their steps interleaved
in one process; prints each path's median step time, the ratio torch / fastconv, and how far the
two models' weights have moved apart after the steps, normwise over all weights. Training from
random labels amplifies any rounding difference, so a third model, untimed, shows the yardstick:
torch against itself started from weights perturbed by 1e-7 (relative). (A per-parameter maximum
is no measure here: BatchNorm biases start at zero, and after a few steps any two runs differ by
tens of percent of their tiny values, torch against itself included.)
"""

import argparse
import copy
import statistics
import time

import torch
import torch.nn as nn

import fastconv.torch as fct


def replace_convs(module, threads):
    count = 0
    for name, child in list(module._modules.items()):
        if child is None:
            continue
        if type(child) is nn.Conv2d:
            module._modules[name] = fct.Conv2d.from_conv(child, threads=threads)
            count += 1
        else:
            count += replace_convs(child, threads)
    return count


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="resnet18")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--size", type=int, default=112)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=7)
    ap.add_argument("--warmup", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    import torchvision.models as tvm

    ref = getattr(tvm, args.model)(weights=None)
    fast = copy.deepcopy(ref)
    n = replace_convs(fast, args.threads)
    perturbed = copy.deepcopy(ref)
    with torch.no_grad():
        for p in perturbed.parameters():
            p.mul_(1 + 1e-7 * torch.randn_like(p))
    x = torch.randn(args.batch, 3, args.size, args.size)
    labels = torch.randint(0, 1000, (args.batch,))
    paths = {}
    for name, model in (("torch", ref), ("fastconv", fast), ("perturbed", perturbed)):
        model.train()
        paths[name] = (model, torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9))

    def step(name):
        model, opt = paths[name]
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = nn.functional.cross_entropy(model(x), labels)
        loss.backward()
        opt.step()
        return time.perf_counter() - t0

    times = {name: [] for name in ("torch", "fastconv")}
    for i in range(args.warmup + args.steps):
        for name in (("torch", "fastconv") if i % 2 == 0 else ("fastconv", "torch")):
            t = step(name)
            if i >= args.warmup:
                times[name].append(t)
        step("perturbed")  # untimed
    med = {name: statistics.median(ts) for name, ts in times.items()}

    def normwise(model):
        d = sum(float(((a.double() - b.double()) ** 2).sum()) for a, b in zip(model.parameters(), ref.parameters()))
        r = sum(float((b.double() ** 2).sum()) for b in ref.parameters())
        return (d / r) ** 0.5
    print(f"{args.model} training step, batch {args.batch}, {args.size}x{args.size}, {args.threads} threads, "
          f"{n} conv layers on fastconv, {args.steps} timed steps (interleaved) after {args.warmup} warm-up")
    for name in times:
        print(f"  {name:9s} median {med[name] * 1e3:8.1f} ms   steps: " +
              " ".join(f"{t * 1e3:.0f}" for t in times[name]))
    print(f"  speedup torch/fastconv: {med['torch'] / med['fastconv']:.3f}x")
    print(f"  weights after {args.warmup + args.steps} steps, normwise difference from torch's: fastconv "
          f"{normwise(fast):.2e}; torch started 1e-7 away (the yardstick) {normwise(perturbed):.2e}")


if __name__ == "__main__":
    main()
