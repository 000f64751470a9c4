"""The fused inverted residual block (_fastconv.InvertedResidual, a chain step of fastconv.torch):
against torch in double precision over the shapes of its loops (bands, row ranges per image, strides,
odd sizes past the vector widths and tiles, no expansion, the residual), inside optimized models,
and refusing what it cannot run."""
import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

import fastconv
import fastconv.torch as fct
from fastconv import _fastconv as _C
from conftest import randomize_batchnorm


CLAMPS = {"relu": (0.0, float("inf")), "relu6": (0.0, 6.0)}


def reference(x, ew, eb, dw, db, pw, pb, stride, residual, activations):
    (elo, ehi), (dlo, dhi) = (CLAMPS[a] for a in activations)
    x64 = x.double()
    e = x64 if ew is None else F.conv2d(x64, ew.double(), eb.double()).clamp(elo, ehi)
    d = F.conv2d(e, dw.double(), db.double(), stride=stride, padding=1, groups=e.shape[1]).clamp(dlo, dhi)
    y = F.conv2d(d, pw.double(), pb.double())
    return y + x64 if residual else y


def block_weights(C, E, K):
    Ed = E or C
    ew = torch.randn(E, C, 1, 1) / C ** 0.5 if E else None
    eb = torch.randn(E) if E else None
    return ew, eb, torch.randn(Ed, 1, 3, 3) / 3, torch.randn(Ed), torch.randn(K, Ed, 1, 1) / Ed ** 0.5, torch.randn(K)


def arrays(*ts):
    return [None if t is None else t.numpy() for t in ts]


# (N, C, H, W, E, stride, K): MobileNetV2's first blocks, odd widths past 16 lanes and 32-column tiles,
# one-pixel and one-row images, more channels than a depth block (KC), expansion absent.
SHAPES = [(1, 16, 112, 112, 96, 2, 24), (2, 24, 56, 56, 144, 1, 24), (1, 32, 112, 112, 0, 1, 16),
          (3, 24, 17, 19, 144, 2, 32), (1, 160, 7, 7, 960, 1, 160), (2, 5, 9, 33, 7, 1, 5), (1, 3, 1, 1, 4, 1, 3),
          (1, 8, 2, 40, 300, 2, 11), (5, 64, 14, 14, 384, 1, 64), (1, 17, 65, 3, 33, 2, 9), (4, 300, 5, 6, 20, 1, 300)]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "n{}c{}h{}w{}e{}s{}k{}".format(*s))
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_block_matches_the_double_reference(shape, threads):
    torch.manual_seed(sum(shape) + threads)
    N, C, H, W, E, stride, K = shape
    residual = stride == 1 and K == C
    activations = ["relu6", "relu"] if threads == 2 else ["relu6", "relu6"]
    x = torch.randn(N, C, H, W)
    weights = block_weights(C, E, K)
    block = _C.InvertedResidual([N, C, H, W], stride, *arrays(*weights), *activations, residual, threads)
    assert list(block.output_shape) == [N, K, (H - 1) // stride + 1, (W - 1) // stride + 1]
    y = torch.full(block.output_shape, float("nan"))
    block.run(x.numpy(), y.numpy())
    ref = reference(x, *weights, stride, residual, activations)
    assert ((y.double() - ref).norm() / ref.norm()).item() < 1e-5, block.describe()
    again = torch.empty_like(y)
    block.run(x.numpy(), again.numpy())  # the scratch reused: the same bits
    assert torch.equal(y, again)


def test_block_runs_from_many_python_threads_at_once():
    import threading
    x = torch.randn(2, 24, 56, 56)
    block = _C.InvertedResidual([2, 24, 56, 56], 1, *arrays(*block_weights(24, 144, 24)), "relu6", "relu6", True, 2)
    serial = torch.empty(block.output_shape)
    block.run(x.numpy(), serial.numpy())
    outs = [torch.empty(block.output_shape) for _ in range(8)]
    threads = [threading.Thread(target=block.run, args=(x.numpy(), o.numpy())) for o in outs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(torch.equal(o, serial) for o in outs)


def test_optimized_mobilenet_fuses_its_blocks_and_matches_eager(monkeypatch):
    monkeypatch.setattr(fct, "_force_fused_blocks", True)
    torch.manual_seed(3)
    model = randomize_batchnorm(torchvision.models.mobilenet_v2(weights=None, width_mult=0.5).eval())
    fast = fct.optimize(model)
    x = torch.randn(2, 3, 96, 80)
    with torch.no_grad():
        ref, y = model(x), fast(x)
    assert ((y - ref).norm() / ref.norm()).item() < 1e-4
    chains = [m for m in fast.modules() if isinstance(m, fct._Chain)] + [fast.__dict__["_fc_whole"]]
    programs = [p for m in chains for s in m.__dict__["_fc_segments"] if isinstance(s, fct._ConvRun)
                for p in s.programs.values()]
    # 17 blocks, each one step, with the stem and the last 1x1: 19 steps where layer by layer is 52; then
    # the classifier's pool and linear layer
    assert [len(p.chain) for p in programs] == [21]
    monkeypatch.setattr(fct, "_force_fused_blocks", None)
    monkeypatch.setenv("FASTCONV_FUSE_BLOCKS", "0")
    unfused = fct.optimize(model)
    with torch.no_grad():
        assert ((unfused(x) - y).norm() / ref.norm()).item() < 1e-5


def test_only_blocks_that_pay_are_fused():
    # e of 38 MB at batch 8 on 112x112 does not stay in any L2; 7x7 outputs and 28x28 at batch 1 do
    assert _C.InvertedResidual.pays([8, 16, 112, 112], 96, 2, 2)
    assert not _C.InvertedResidual.pays([8, 160, 7, 7], 960, 1, 2)
    assert not _C.InvertedResidual.pays([1, 32, 28, 28], 192, 1, 2)


@pytest.mark.parametrize("what, kwargs", [
    ("stride 3", dict(stride=3)),
    ("residual with stride 2", dict(stride=2, residual=True)),
    ("residual with other outputs", dict(K=5)),
    ("depthwise weights of another size", dict(dw_channels=7)),
    ("bad input shape", dict(input_shape=[1, 8, 9])),
    ("empty input", dict(input_shape=[0, 8, 9, 9])),
    ("no threads", dict(threads=0)),
])
def test_block_refuses_what_it_cannot_run(what, kwargs):
    shape = kwargs.get("input_shape", [1, 8, 9, 9])
    K = kwargs.get("K", 8)
    Ed = kwargs.get("dw_channels", 16)
    ew, eb = np.ones((16, 8, 1, 1), np.float32), np.ones(16, np.float32)
    dw, db = np.ones((Ed, 1, 3, 3), np.float32), np.ones(Ed, np.float32)
    pw, pb = np.ones((K, 16, 1, 1), np.float32), np.ones(K, np.float32)
    with pytest.raises(fastconv.Error):
        _C.InvertedResidual(shape, kwargs.get("stride", 1), ew, eb, dw, db, pw, pb, "relu6", "relu6",
                            kwargs.get("residual", True), kwargs.get("threads", 2))


@pytest.mark.parametrize("expand_activation, dw_activation", [("silu", "relu6"), ("relu6", "gelu"),
                                                               ("relu6", "clamp:6,0"), ("bogus", "relu6")])
def test_block_refuses_activations_it_cannot_apply(expand_activation, dw_activation):
    with pytest.raises(fastconv.Error):
        _C.InvertedResidual([1, 8, 9, 9], 1, *arrays(*block_weights(8, 16, 8)), expand_activation, dw_activation,
                            True, 1)


def test_block_refuses_an_input_whose_size_overflows():
    # 2^20 x 2^16 x 2^16 x 2^16 elements: each size within its bound, the product past int64_t
    ew, eb = np.ones((16, 1 << 16, 1, 1), np.float32), np.ones(16, np.float32)
    dw, db = np.ones((16, 1, 3, 3), np.float32), np.ones(16, np.float32)
    pw, pb = np.ones((8, 16, 1, 1), np.float32), np.ones(8, np.float32)
    with pytest.raises(fastconv.Error, match="overflows|too large"):
        _C.InvertedResidual([1 << 20, 1 << 16, 1 << 16, 1 << 16], 1, ew, eb, dw, db, pw, pb, "relu6", "relu6", False, 2)


def test_block_run_checks_its_arrays_and_writes_nothing_when_refused():
    block = _C.InvertedResidual([1, 8, 9, 9], 1, *arrays(*block_weights(8, 16, 8)), "relu6", "relu6", True, 1)
    x = np.ones((1, 8, 9, 9), np.float32)
    y = np.full((1, 8, 9, 9), 7.0, np.float32)
    for bad_x, bad_y in [(x[:, :4], y), (x, y[:, :4]), (x.astype(np.float64), y), (x, y.astype(np.float64)),
                         (x, y[..., ::-1])]:
        with pytest.raises(fastconv.Error):
            block.run(bad_x, bad_y)
    assert (y == 7.0).all()
    with pytest.raises(fastconv.Error):
        block.run(x, x)  # the output over the input
