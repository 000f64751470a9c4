"""fastconv.torch: Conv2d against nn.Conv2d (forward, unbatched, channels_last, autograd), the repack
when weights change, the fallback, optimize() on small CNNs with BatchNorm and residual blocks, and the
model bench on a tiny model."""
import json
import os
import re
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch
import torch.nn as nn
import torchvision

import fastconv
import fastconv.torch as fct
from conftest import SMALL_MODELS, SMALL_MODELS_WITHOUT_RESIDUALS, randomize_batchnorm
from fastconv import bench_models


def normwise(y, ref):
    y, ref = y.detach().double(), ref.detach().double()
    return float((y - ref).abs().max() / ref.abs().max())


@pytest.fixture(autouse=True)
def seed():
    torch.manual_seed(7)


CONFIGS = [
    dict(in_channels=8, out_channels=16, kernel_size=3, padding=1),
    dict(in_channels=8, out_channels=16, kernel_size=3, stride=2, padding=1, bias=False),
    dict(in_channels=8, out_channels=8, kernel_size=3, padding="same", dilation=2, groups=8),
    dict(in_channels=6, out_channels=4, kernel_size=(1, 5), padding="valid", groups=2),
    dict(in_channels=8, out_channels=12, kernel_size=1),
]


@pytest.mark.parametrize("cfg", CONFIGS, ids=[str(i) for i in range(len(CONFIGS))])
def test_conv2d_layer_matches_nn_conv2d(cfg):
    ref = nn.Conv2d(**cfg)
    fast = fct.Conv2d.from_conv(ref)
    assert isinstance(fast, nn.Conv2d) and fast.weight is ref.weight
    x = torch.randn(2, cfg["in_channels"], 13, 11)
    with torch.no_grad():
        y, y_ref = fast(x), ref(x)
        assert y.shape == y_ref.shape and normwise(y, y_ref) < 1e-5
        # unbatched and channels_last inputs
        assert normwise(fast(x[1]), ref(x[1])) < 1e-5 and fast(x[1]).dim() == 3
        assert normwise(fast(x.contiguous(memory_format=torch.channels_last)), y_ref) < 1e-5
    assert len(fast._fc_states) == 2  # one plan per input shape: (2, C, 13, 11) and (C, 13, 11)
    assert all(isinstance(s, fct._ShapeState) for s in fast._fc_states.values())  # none fell back


def test_constructor_like_nn_conv2d():
    layer = fct.Conv2d(3, 8, 3, padding=1, activation="relu")
    assert layer.weight.shape == (8, 3, 3, 3) and layer.bias.shape == (8,)
    x = torch.randn(1, 3, 9, 9)
    with torch.no_grad():
        y = layer(x)
        ref = torch.relu(nn.functional.conv2d(x, layer.weight, layer.bias, padding=1))
    assert normwise(y, ref) < 1e-5 and (y >= 0).all() and (y == 0).any()
    with pytest.raises(fastconv.Error, match="activation"):
        fct.Conv2d(3, 8, 3, activation="swishy")


def test_weight_change_repacks():
    layer = fct.Conv2d(4, 4, 3, padding=1)
    x = torch.randn(1, 4, 8, 8)
    with torch.no_grad():
        y1 = layer(x)
        state = layer._fc_states[x.shape]
        packed = state.packed
        layer(x)
        assert state.packed is packed  # unchanged weights: no repack
        layer.weight.mul_(2)  # in place: bumps the version counter
        y2 = layer(x)
        assert state.packed is not packed
        ref = nn.functional.conv2d(x, layer.weight, layer.bias, padding=1)
        assert normwise(y2, ref) < 1e-5 and normwise(y2, y1) > 0.1
        packed = state.packed
        layer.bias.add_(1.0)  # the bias too
        y3 = layer(x)
        assert state.packed is not packed
        assert normwise(y3, nn.functional.conv2d(x, layer.weight, layer.bias, padding=1)) < 1e-5
        layer.weight = nn.Parameter(torch.randn(4, 4, 3, 3))  # a new parameter
        y4 = layer(x)
        assert normwise(y4, nn.functional.conv2d(x, layer.weight, layer.bias, padding=1)) < 1e-5


def test_fallback_runs_torch_and_says_so_once():
    layer = fct.Conv2d(3, 5, 3).double()
    x = torch.randn(1, 3, 7, 7, dtype=torch.float64)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with torch.no_grad():
            y = layer(x)
            layer(x)
    said = [w for w in caught if "runs on torch" in str(w.message)]
    assert len(said) == 1 and "float64" in str(said[0].message)
    assert y.dtype == torch.float64
    assert normwise(y, nn.functional.conv2d(x, layer.weight, layer.bias)) < 1e-12


def test_autograd_through_fastconv_forward():
    ref = nn.Conv2d(4, 6, 3, padding=1)
    fast = fct.Conv2d.from_conv(copy_module(ref))
    x1 = torch.randn(2, 4, 9, 9, requires_grad=True)
    x2 = x1.detach().clone().requires_grad_()
    fast(x1).square().sum().backward()
    ref(x2).square().sum().backward()
    assert normwise(x1.grad, x2.grad) < 1e-5
    assert normwise(fast.weight.grad, ref.weight.grad) < 1e-5
    assert normwise(fast.bias.grad, ref.bias.grad) < 1e-5
    # The forward did run on fastconv, on a plan for training: ranked with packing every step.
    state = fast._fc_states[(x1.shape, "training")]
    assert isinstance(state, fct._ShapeState) and "packed for every execute" in state.plan.describe()


def copy_module(m):
    import copy
    return copy.deepcopy(m)


@pytest.mark.parametrize("name", list(SMALL_MODELS))
def test_optimize_matches_eager(name):
    model = randomize_batchnorm(SMALL_MODELS[name]())
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fast = fct.optimize(model)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        y_ref, y = model(x), fast(x)
    assert normwise(y, y_ref) < 1e-4, normwise(y, y_ref)
    # the original model is untouched
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    # what moved: every conv, every BatchNorm after a conv folded, activations fused
    report = fast.fastconv_report
    n_convs = sum(isinstance(m, nn.Conv2d) for m in model.modules())
    assert len(report.moved) == n_convs and not report.stayed
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fast.modules())
    fast_convs = [m for m in fast.modules() if isinstance(m, nn.Conv2d)]
    assert all(isinstance(m, fct.Conv2d) for m in fast_convs)
    assert all(isinstance(s, fct._ShapeState) for m in fast_convs for s in m._fc_states.values())
    assert sum(m.activation is not None for m in fast_convs) > 0
    residual_blocks = sum(isinstance(m, fct._ResidualBlock) for m in fast.modules())
    if name not in SMALL_MODELS_WITHOUT_RESIDUALS:  # torchvision's blocks: the add fused into the last conv
        assert residual_blocks > 0 and "residual add fused" in str(report)
    assert not any(p.requires_grad for p in fast.parameters())
    if name.startswith("resnet"):  # the stem's max pool runs the separable formulation
        assert any(isinstance(m, fct.MaxPool2d) for m in fast.modules()) and report.rewritten


@pytest.mark.parametrize("name", ["inception_v3", "googlenet"])
def test_optimize_folds_basic_conv2d_and_runs_inception_pools_on_fastconv(name):
    kwargs = {"aux_logits": False, "init_weights": True} if name == "inception_v3" else {
        "aux_logits": False, "init_weights": True, "transform_input": False}
    model = randomize_batchnorm(getattr(torchvision.models, name)(weights=None, **kwargs))
    fast = fct.optimize(model)
    x = torch.randn(2, 3, 80, 80)  # Inception v3's smallest input is 75x75
    with torch.no_grad():
        y_ref, y = model(x), fast(x)
    assert normwise(y, y_ref) < 1e-4, normwise(y, y_ref)
    # conv, batchnorm, F.relu: one conv with the batchnorm folded and the relu fused
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fast.modules())
    convs = [m for m in fast.modules() if isinstance(m, fct.Conv2d)]
    assert convs and all(m.activation == "relu" for m in convs if m.weight.shape[1] != 1)
    blocks = [m for m in fast.modules() if isinstance(m, fct._InceptionBlock)]
    if name == "googlenet":  # its pools are modules, replaced as everywhere
        assert not blocks
        return
    # Inception v3: each of its 11 blocks runs its own forward with its pools on fastconv, the average
    # pools (InceptionA, C, E) as depthwise convs of weights 1/9, the max pools (B, D) bit for bit
    assert len(blocks) == 11
    pools = [key for b in blocks for key in b.pools]
    assert sum(k.startswith("avg3x3_") for k in pools) == 9 and sum(k.startswith("max_") for k in pools) == 2
    box = next(b.pools[k] for b in blocks for k in b.pools if k.startswith("avg3x3_"))
    assert isinstance(box, fct.Conv2d) and box.groups == box.in_channels
    xb = torch.randn(2, box.in_channels, 9, 7)
    with torch.no_grad():
        assert normwise(box(xb), nn.functional.avg_pool2d(xb, 3, 1, 1)) < 1e-6
    # what the kernels do not take runs torch's own pool
    functional = fct._BlockFunctional(nn.ModuleDict(), {"threads": 1})
    for args in [(3, 1, 1, False, False), (3, 2, 1), (2, 1, 1), (3, 1, 0)]:
        assert torch.equal(functional.avg_pool2d(xb, *args), nn.functional.avg_pool2d(xb, *args))
    assert torch.equal(functional.max_pool2d(xb, 3, 2), nn.functional.max_pool2d(xb, 3, 2))
    assert torch.equal(functional.max_pool2d(xb, 3, 2, ceil_mode=True), nn.functional.max_pool2d(xb, 3, 2, ceil_mode=True))
    assert functional.relu is nn.functional.relu


def test_max_pool_ceil_mode_is_bitwise_torchs():
    # GoogLeNet's pools (3x3 stride 1 and 2, 2x2 stride 2) and last windows past the padding of every
    # kind: rows, columns, both, with and without padding; alone and as a step of a chain
    for args, shape in [((3, 1, 1), (2, 8, 28, 28)), ((3, 2, 0), (2, 8, 112, 112)), ((3, 2, 0), (2, 8, 15, 15)),
                        ((2, 2, 0), (1, 3, 14, 13)), ((3, 2, 1), (1, 4, 9, 10)), ((3, 3, 1), (1, 2, 7, 7)),
                        (((3, 2), (2, 3), (1, 0)), (1, 3, 12, 41)), ((5, 4, 2), (2, 5, 19, 22))]:
        ref = nn.MaxPool2d(*args, ceil_mode=True)
        fast = fct.MaxPool2d.from_pool(ref)
        x = torch.randn(shape)
        x[..., -1, -1] = 100.0  # the last windows hold the corner: it wins where they reach it
        assert fast._native_spec(x.shape) is not None, (args, shape)
        y, y_ref = fast(x), ref(x)
        assert y.shape == y_ref.shape and torch.equal(y, y_ref), (args, shape)
        seq = nn.Sequential(nn.Conv2d(shape[1], 6, 1), ref, nn.Conv2d(6, 4, 1)).eval()
        chain = fct.optimize(seq)
        assert chain.fastconv_report.chained
        with torch.no_grad():
            z, z_ref = chain(x), seq(x)
        assert z.shape == z_ref.shape and normwise(z, z_ref) < 1e-5, (args, shape)


POOLS = [(1, None, 0), (2, None, 0), (3, 2, 1), ((3, 2), (2, 3), (1, 0)), (5, 1, 2), (3, 3, 0), (2, 1, 1),
         ((2, 1), (2, 2), 0), ((1, 3), (1, 3), 0), (4, 2, 2), (3, 4, 1)]


@pytest.mark.parametrize("pool", POOLS, ids=[str(i) for i in range(len(POOLS))])
def test_max_pool_is_bitwise_torchs(pool):
    ref = nn.MaxPool2d(*pool)
    fast = fct.MaxPool2d.from_pool(ref)
    # widths and heights past every vector of the row and column passes (and their tails), planes
    # whose rows run together (stride = width of the kernel, no padding), a plane per thread and more
    # (4, 8 and 16 lanes: wide rows with a vector tail, narrow ones on the scalar tails)
    for shape in [(2, 3, 9, 11), (4, 7, 7), (1, 2, 16, 5), (1, 1, 5, 5), (3, 5, 24, 24), (1, 1, 6, 40),
                  (2, 2, 13, 18), (1, 7, 33, 1 + 32), (1, 2, 11, 71), (2, 1, 7, 100)]:
        x = torch.randn(shape)
        bits = x.view(torch.int32)
        bits[..., 1, 2] = 0x7FC00001  # NaNs of different payloads: torch keeps a window's last one
        bits[..., 2, 2:5] = 0x7FC00002
        x[..., 3, 0] = float("-inf")
        x[..., -1, -1] = float("nan")
        zeros = x[..., -3:, :]  # ties of +0 and -0: torch keeps the first in row-major order
        zeros[..., 0, :], zeros[..., 0, ::3], zeros[..., 1, 1::2], zeros[..., 1, 0::4] = 0.0, -0.0, -0.0, -1.0
        y_ref = ref(x)
        for threads in (None, 1, 2, 3):  # fastconv's threads, planes split among them
            fast.threads = threads
            y = fast(x)
            assert y.shape == y_ref.shape and y.is_contiguous()
            assert torch.equal(y.view(torch.int32), y_ref.view(torch.int32)), (shape, pool, threads)
    # what the views cannot express runs torch's own forward, errors included
    with pytest.raises(RuntimeError):  # a window larger than the padded input
        fct.MaxPool2d(3)(torch.randn(1, 1, 2, 2))
    x = torch.randn(1, 2, 8, 8, dtype=torch.float64)
    assert torch.equal(fast(x), ref(x))
    x = torch.randn(2, 3, 12, 12)[:, :, ::2, 1:]  # not contiguous: one copy
    assert torch.equal(fast(x), ref(x))
    with_indices = fct.MaxPool2d(3, 2, 1, return_indices=True)
    y, idx = with_indices(torch.randn(1, 2, 8, 8))
    assert idx.dtype == torch.int64


@pytest.mark.parametrize("isa", ["sse2", "avx2"])
def test_max_pool_kernels_of_narrower_instruction_sets(isa):
    """The pool's 4- and 8-lane kernels: this process runs the widest the CPU has; the same test again
    under each cap (FASTCONV_MAX_ISA), in a process of its own."""
    env = dict(os.environ, FASTCONV_MAX_ISA=isa)
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          f"{__file__}::test_max_pool_is_bitwise_torchs"], env=env, capture_output=True, text=True)
    assert run.returncode == 0 and f"{len(POOLS)} passed" in run.stdout, run.stdout[-3000:]


def test_native_max_pool_checks_its_arguments_and_writes_nothing_when_refused():
    from fastconv import _fastconv as _C

    x = np.ones((1, 2, 6, 6), np.float32)
    out = np.full((1, 2, 3, 3), 7.0, np.float32)
    bad = [
        (x[0], out, (2, 2), (2, 2), (0, 0), "4-D"),
        (x, out, (0, 2), (2, 2), (0, 0), "between 1 and"),
        (x, out, (2, 2), (2, 0), (0, 0), "between 1 and"),
        (x, out, (2 ** 62, 2), (2, 2), (2 ** 61, 0), "between 1 and"),
        (x, out, (2, 2), (2, 2), (2, 0), "half the kernel"),
        (x, out, (9, 2), (2, 2), (0, 0), "larger than"),
        (x, np.ones((1, 2, 3, 4), np.float32), (2, 2), (2, 2), (0, 0), "shape"),
        (x.astype(np.float64), out, (2, 2), (2, 2), (0, 0), "float32"),
        (x[:, :, :, ::-1], out, (2, 2), (2, 2), (0, 0), "contiguous"),
    ]
    for a, o, k, st, p, what in bad:
        with pytest.raises(fastconv.Error, match=what):
            _C.max_pool2d(a, o, k, st, p, 2)
    with pytest.raises(fastconv.Error, match="overlaps"):
        _C.max_pool2d(x, x.reshape(-1)[:18].reshape(1, 2, 3, 3), (2, 2), (2, 2), (0, 0), 1)  # a view of x
    assert (out == 7.0).all() and (x == 1.0).all()


@pytest.mark.parametrize("output_size", [1, (1, 1), (None, 1), (1, None), 3, (5, 2)])
def test_adaptive_average_pool_matches_torch(output_size):
    ref = nn.AdaptiveAvgPool2d(output_size)
    fast = fct.AdaptiveAvgPool2d.from_pool(ref)
    # planes of 1 pixel, of fewer pixels than the 8 partial sums, with a tail, 7x7 (the heads), and
    # enough planes x pixels for the extra threads; unbatched
    for shape in [(2, 3, 1, 1), (1, 4, 1, 5), (2, 5, 3, 3), (3, 7, 7, 7), (2, 64, 60, 70), (6, 7, 7), (1, 3, 5, 1)]:
        x = torch.randn(shape) * 3 + 1
        y_ref = ref(x)
        for threads in (None, 1, 2, 3):
            fast.threads = threads
            y = fast(x)
            assert y.shape == y_ref.shape and y.is_contiguous()
            # the global mean is summed in double: within rounding of torch's; other sizes are torch's
            assert torch.allclose(y, y_ref, rtol=1e-6, atol=1e-6), (shape, output_size, threads)
            exact = x.double().mean(dim=(-2, -1), keepdim=True).float()
            if fast._target(y.shape if x.dim() == 4 else (1, *y.shape)) is not None and y.shape[-2:] == (1, 1):
                assert torch.equal(y, exact) or torch.allclose(y, exact, rtol=2e-7, atol=0), (shape, threads)
    x = torch.randn(2, 3, 12, 12)[:, :, ::2, 1:]  # not contiguous: one copy
    assert torch.allclose(fast(x), ref(x), rtol=1e-6, atol=1e-6)
    x = torch.randn(1, 2, 8, 8, dtype=torch.float64)  # another dtype: torch's
    assert torch.equal(fast(x), ref(x))
    x = torch.randn(1, 2, 8, 8, requires_grad=True)  # gradients: torch's
    fast(x).sum().backward()
    assert x.grad is not None


def test_native_global_average_pool_checks_its_arguments_and_writes_nothing_when_refused():
    from fastconv import _fastconv as _C

    x = np.ones((2, 3, 5, 4), np.float32)
    out = np.full((2, 3, 1, 1), 7.0, np.float32)
    bad = [
        (x[0], out, "4-D"),
        (np.ones((2, 0, 5, 4), np.float32), out, "empty"),
        (x, np.ones((2, 3, 1, 2), np.float32), "shape"),
        (x, np.ones((2, 3, 1, 1), np.float64), "float32"),
        (x.astype(np.float64), out, "float32"),
        (x[:, :, :, ::-1], out, "contiguous"),
    ]
    for a, o, what in bad:
        with pytest.raises(fastconv.Error, match=what):
            _C.global_avg_pool2d(a, o, 2)
    with pytest.raises(fastconv.Error, match="threads"):
        _C.global_avg_pool2d(x, out, 0)
    with pytest.raises(fastconv.Error, match="overlaps"):
        _C.global_avg_pool2d(x, x.reshape(-1)[:6].reshape(2, 3, 1, 1), 1)  # a view of x
    assert (out == 7.0).all() and (x == 1.0).all()


def test_optimize_options_and_report():
    model = randomize_batchnorm(bench_models.TinyResNet())
    fast = fct.optimize(model, fuse=False, algorithm="direct", threads=1)
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert normwise(fast(x), model(x)) < 1e-4
    assert any(isinstance(m, nn.BatchNorm2d) for m in fast.modules())  # fuse=False keeps BatchNorm
    for m in fast.modules():
        if isinstance(m, fct.Conv2d):
            st = next(iter(m._fc_states.values()))
            assert st.plan.algorithm == "direct" and st.plan.threads == 1
    text = str(fast.fastconv_report)
    assert "conv layers on fastconv" in text and "3->16 3x3" in text
    with pytest.raises(fastconv.Error):
        fct.optimize(model, mode="fast")


def test_optimize_keeps_what_fastconv_cannot_run():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3).double())
    fast = fct.optimize(model)
    assert len(fast.fastconv_report.moved) == 1
    assert len(fast.fastconv_report.stayed) == 1 and "float64" in fast.fastconv_report.stayed[0][1]


def test_bench_models_on_a_tiny_model(tmp_path, capsys):
    js, png = tmp_path / "bench.json", tmp_path / "bench.png"
    rc = bench_models.main(["--models", "tiny", "--batch", "1,2", "--size", "32", "--reps", "3", "--threads", "1",
                            "--json", str(js), "--plot", str(png), "--no-progress", "--profile"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "tiny" in out and "speedup" in out and "per-layer profile" in out
    data = json.loads(js.read_text())
    assert [r["batch"] for r in data["results"]] == [1, 2]
    for r in data["results"]:
        assert set(r["ms"]) == set(bench_models.PATHS) and all(v > 0 for v in r["ms"].values())
        assert r["fastconv_layers"] == 5 and r["torch_conv_layers"] == 0
        assert r["diff_vs_eager"]["fastconv"] < 1e-4 and r["diff_vs_eager"]["torchscript"] < 1e-4
        assert r["speedup"] > 0 and r["best_torch"] in ("eager", "channels_last", "torchscript")
        assert 0 < r["first_touch_us_per_page"] < 1e4
        rounds = r["samples_ms"]["fastconv"]
        assert len(rounds) == r["runs"]["fastconv"] and all(len(v) == len(rounds) for v in r["samples_ms"].values())
        ratios = sorted(t / f for t, f in zip(r["samples_ms"][r["best_torch"]], rounds))
        assert ratios[0] <= r["speedup"] <= ratios[-1]
    assert len(data["profiles"]) == 2 and len(data["profiles"][0]["layers"]) == 5
    # the block's and the downsampling's two convs each run as a chain: their steps are timed in the network
    for profile in data["profiles"]:
        in_chain = [r for r in profile["layers"] if r["network_ms"] is not None]
        assert [r["layer"] for r in in_chain] == ["block.0", "block.3", "down.0", "down.2"]
        assert all(r["network_ms"] > 0 for r in in_chain)
    assert "network" in out and "4 layers in native chains" in out and "first touch of fresh memory" in out
    assert png.stat().st_size > 1000


def test_bench_models_as_a_program_restarts_with_malloc_keeping_memory(tmp_path):
    env = dict(os.environ)
    env.pop("GLIBC_TUNABLES", None)
    js = tmp_path / "bench.json"
    base = [sys.executable, "-m", "fastconv.bench_models", "--models", "tiny", "--batch", "1", "--size", "16",
            "--reps", "1", "--threads", "1", "--no-progress", "--json", str(js)]
    out = subprocess.run(base, env=env, capture_output=True, text=True, check=True).stdout
    assert "malloc keeps freed memory" in out and json.loads(js.read_text())["malloc_keeps_memory"]
    out = subprocess.run(base + ["--malloc", "system"], env=env, capture_output=True, text=True, check=True).stdout
    assert "malloc as the system has it" in out and not json.loads(js.read_text())["malloc_keeps_memory"]


def test_network_profile_times_chained_pools_and_a_whole_resnet():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(8, 8, 3, padding=1)).eval()
    fast = fct.optimize(model)
    times = bench_models.network_profile(fast, torch.randn(1, 3, 16, 16), reps=2)
    assert [type(m) for m in times] == [fct.Conv2d, fct.MaxPool2d, fct.Conv2d] and all(t > 0 for t in times.values())
    resnet = fct.optimize(torchvision.models.resnet18(weights=None).eval())
    times = bench_models.network_profile(resnet, torch.randn(1, 3, 32, 32), reps=2)
    assert sum(isinstance(m, fct.Conv2d) for m in times) == 20 and resnet.conv1 in times
    assert isinstance(resnet.avgpool, fct.AdaptiveAvgPool2d) and resnet.avgpool in times and resnet.fc in times
    rows = bench_models.profile_layers(resnet, torch.randn(1, 3, 32, 32), reps=1)
    assert {r["conv"] for r in rows if r["execute_ms"] is None} == {"max pool", "global average pool",
                                                                   "linear 512->1000"}


def test_bench_models_counts_no_torch_path_whose_output_is_wrong():
    ms = {"eager": 9.0, "channels_last": 7.0, "torchscript": 3.0, "fastconv": 4.0}
    diffs = {"eager": 0.0, "channels_last": 3e-7, "torchscript": 0.9, "fastconv": 5e-7}
    assert bench_models.fastest_torch_path(ms, diffs) == ("channels_last", ["torchscript"])
    diffs["torchscript"] = 2e-7
    assert bench_models.fastest_torch_path(ms, diffs) == ("torchscript", [])
    diffs["channels_last"] = diffs["torchscript"] = 1.0  # eager is the yardstick of last resort
    assert bench_models.fastest_torch_path(ms, diffs) == ("eager", ["channels_last", "torchscript"])


class _RecordThreads(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.seen = []
        self.during = None  # called inside forward

    def forward(self, x):
        self.seen.append(torch.get_num_threads())
        if self.during is not None:
            self.during()
        return self.conv(x)


@pytest.fixture
def tbb_threading():
    before = fastconv.threading()
    fastconv.set_threading("tbb")
    yield
    fastconv.set_threading(before)


def test_optimize_runs_torch_ops_with_torch_threads_and_restores(tbb_threading):
    torch.set_num_threads(2)
    fast = fct.optimize(_RecordThreads())
    assert isinstance(fast, _RecordThreads)
    with torch.no_grad():
        fast(torch.randn(1, 3, 8, 8))
    assert fast.seen == [1] and torch.get_num_threads() == 2
    untouched = fct.optimize(_RecordThreads(), torch_threads=None)
    with torch.no_grad():
        untouched(torch.randn(1, 3, 8, 8))
    assert untouched.seen == [2]
    # the convs plan at the first forward, inside the one-thread setting: with threads=None they
    # still get the count torch had when optimize() was called
    convs = [m for m in fast.modules() if isinstance(m, fct.Conv2d)]
    assert convs and all(s.plan.threads == 2 for m in convs for s in m._fc_states.values())


@pytest.mark.skipif(fct._openmp_runtime() is None, reason="torch without OpenMP: the setting is process-wide")
def test_optimize_threads_setting_is_the_calling_threads_own(tbb_threading):
    torch.set_num_threads(2)
    fast = fct.optimize(_RecordThreads())
    seen_elsewhere = []
    with torch.no_grad():
        fast.during = lambda: seen_elsewhere.append(_threads_in_new_thread())
        fast(torch.randn(1, 3, 8, 8))
    assert fast.seen == [1] and seen_elsewhere == [2] and torch.get_num_threads() == 2


def _threads_in_new_thread():
    import threading

    out = []
    t = threading.Thread(target=lambda: out.append(torch.get_num_threads()))
    t.start()
    t.join()
    return out[0]


def test_optimize_never_folds_a_batchnorm_that_follows_an_activation():
    model = nn.Sequential(fct.Conv2d(3, 4, 3, activation="relu"), nn.BatchNorm2d(4))
    randomize_batchnorm(model)
    fast = fct.optimize(model)
    assert any(isinstance(m, nn.BatchNorm2d) for m in fast.modules())
    x = torch.randn(1, 3, 9, 9)
    with torch.no_grad():
        assert normwise(fast(x), model(x)) < 1e-5


@pytest.mark.skipif(not fastconv._C.has_openmp, reason="built without OpenMP")
def test_optimize_leaves_torch_threads_alone_when_fastconv_runs_on_openmp():
    before = fastconv.threading()
    try:
        fastconv.set_threading("openmp")
        torch.set_num_threads(2)
        fast = fct.optimize(_RecordThreads())
        with torch.no_grad():
            fast(torch.randn(1, 3, 8, 8))
        assert fast.seen == [2]
        pinned = fct.optimize(_RecordThreads(), torch_threads=1)
        with torch.no_grad():
            pinned(torch.randn(1, 3, 8, 8))
        assert pinned.seen == [1] and torch.get_num_threads() == 2
    finally:
        fastconv.set_threading(before)


def test_large_outputs_come_from_the_buffer_cache_and_are_reused():
    fastconv.release_buffers()
    conv = fct.Conv2d(4, 96, 1).eval()  # output 96 x 112 x 112 floats: 4.8 MB, cached
    ref = nn.Conv2d(4, 96, 1).eval()
    ref.load_state_dict(conv.state_dict())
    x = torch.randn(1, 4, 112, 112)
    with torch.no_grad():
        y1, y2 = conv(x), conv(x)
        assert y1.data_ptr() != y2.data_ptr()  # both alive: two buffers
        assert normwise(y1, ref(x)) < 1e-5 and torch.equal(y1, y2)
        assert fastconv._C.cached_buffer_bytes() == 0
        p1 = y1.data_ptr()
        del y1
        assert fastconv._C.cached_buffer_bytes() == 96 * 112 * 112 * 4  # back in the cache ...
        y3 = conv(x)
        assert y3.data_ptr() == p1 and torch.equal(y3, y2)  # ... and reused, rewritten
        small = fct.Conv2d(4, 8, 1).eval()(torch.randn(1, 4, 8, 8))  # small outputs: torch's allocator
        assert small.shape == (1, 8, 8, 8)
    del y2, y3
    assert fastconv.release_buffers() == 2 * 96 * 112 * 112 * 4
    assert fastconv._C.cached_buffer_bytes() == 0
    with pytest.raises(fastconv.Error):
        fastconv._C.cached_empty((2, -1))


@pytest.mark.parametrize("shape", [(7,), (1, 7), (5, 7), (2, 3, 7), (2, 4, 7), (9, 7), (3, 11, 7)])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_as_a_1x1_convolution_matches_nn_linear(shape, bias):
    ref = nn.Linear(7, 33, bias=bias).eval()
    fast = fct.Linear.from_linear(ref)
    x = torch.randn(shape)
    with torch.no_grad():
        y, y_ref = fast(x), ref(x)
    assert y.shape == y_ref.shape and normwise(y, y_ref) < 1e-5
    # It ran on fastconv: up to 8 rows as 1x1 images, past that as one image of rows.
    ((input_shape, _),) = fast._fc_conv._fc_states.items()
    rows = x.numel() // 7
    assert input_shape == ((rows, 7, 1, 1) if rows <= 8 else (1, 7, 1, rows))
    with torch.no_grad():  # in-place weight updates repack (the views share the version counter)
        ref.weight.mul_(2.0)
        assert normwise(fast(x), ref(x)) < 1e-5
    ref.weight.requires_grad_(True)  # gradients: nn.Linear's own forward, differentiable
    y = fast(x)
    assert y.grad_fn is not None and torch.equal(y, ref(x))
    with pytest.raises(RuntimeError):
        fast(torch.randn(3, 8))  # torch's own shape error


def test_a_classifier_at_small_batches_runs_as_1x1_images_on_direct_dots():
    ref = nn.Linear(2048, 1000).eval()
    fast = fct.Linear.from_linear(ref)
    x = torch.randn(3, 2048)
    with torch.no_grad():
        assert normwise(fast(x), ref(x)) < 1e-5
    ((input_shape, state),) = fast._fc_conv._fc_states.items()
    assert input_shape == (3, 2048, 1, 1) and state.plan.implementation.startswith("direct_dots__")


def test_optimize_runs_linear_layers_on_fastconv():
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 5)).eval()
    fast = fct.optimize(model)
    x = torch.randn(4, 3, 12, 12)
    with torch.no_grad():
        assert normwise(fast(x), model(x)) < 1e-5
    assert isinstance(fast[4], fct.Linear)
    assert any("linear 8->5" in detail for _, detail in fast.fastconv_report.rewritten)


def test_bench_training_runs_and_reports_the_yardstick(capsys):
    from fastconv import bench_training

    # batch 4 at 64x64: BatchNorm over enough values that two steps stay close (at batch 2 on 32x32
    # torch against itself drifts by 8e-2 from a 1e-7 start)
    bench_training.main(["--model", "resnet18", "--batch", "4", "--size", "64", "--steps", "1", "--warmup", "1"])
    out = capsys.readouterr().out
    assert "speedup torch/fastconv" in out and "the yardstick" in out
    fast, yard = (float(v) for v in re.findall(r"fastconv ([0-9.e+-]+); torch started 1e-7 away \(the yardstick\) ([0-9.e+-]+)", out)[0])
    assert fast < 1e-3 and yard < 1e-5  # measured 4.8e-5 and 1.2e-7: fastconv's rounding, not chaos yet
