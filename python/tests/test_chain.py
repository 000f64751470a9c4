"""fastconv.torch.optimize's chains: runs of conv layers executed as one native call (_fastconv.Chain).
The same bits as layer by layer, on every model, shape and thread; recompiled when weights or plans
change; layer by layer whenever hooks, gradients or the input ask for it; and the native program
refuses every malformed step list before it writes anything."""
import copy
import pickle
import threading

import numpy as np
import pytest
import torch
import torch.nn as nn
import torchvision

import fastconv
import fastconv.torch as fct
from fastconv import _fastconv as _C
from conftest import SMALL_MODELS, randomize_batchnorm


@pytest.fixture(autouse=True)
def seed():
    torch.manual_seed(11)


def vgg_like():
    """Runs separated by a pool the kernel does not take (dilation), max pools inside a run (one padded,
    strided 3x3), and a run ending the Sequential."""
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
                         nn.MaxPool2d(2, dilation=2), nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(16, 16, 1), nn.BatchNorm2d(16), nn.ReLU6(), nn.MaxPool2d(3, 2, 1),
                         nn.Conv2d(16, 24, 3, stride=2), nn.Conv2d(24, 24, 3, padding=2, dilation=2, groups=24))


MODELS = {**{k: v for k, v in SMALL_MODELS.items() if k != "tiny"}, "vgg_like": vgg_like}


def chains_of(model):
    return [m for m in model.modules() if isinstance(m, fct._Chain)]


@pytest.mark.parametrize("name", list(MODELS))
def test_chained_model_gives_the_layer_by_layer_bits(name):
    model = randomize_batchnorm(MODELS[name]())
    chained, plain = fct.optimize(model), fct.optimize(model, chain=False)
    assert chained.fastconv_report.chained and not plain.fastconv_report.chained and not chains_of(plain)
    assert "in one native call" in str(chained.fastconv_report)
    # same names, same parameters: the chain is the same Sequential
    assert list(chained.state_dict()) == list(plain.state_dict())
    with torch.no_grad():
        for shape in [(2, 3, 64, 64), (1, 3, 45, 37), (2, 3, 64, 64)]:  # a second shape compiles again
            x = torch.randn(shape)
            y, y_ref = chained(x), plain(x)
            assert torch.equal(y, y_ref), shape
            assert torch.allclose(y, model(x), rtol=1e-3, atol=1e-4)
    # a torchvision ResNet's or MobileNetV2's whole forward: its stages' own runs stay idle
    whole = chained.__dict__.get("_fc_whole")
    runs = runs_of(whole) if whole is not None else [s for c in chains_of(chained) for s in runs_of(c)]
    assert runs and all(compiled(r) for r in runs)


def test_mobilenet_features_and_resnet_stages_are_one_call_each():
    mobilenet = fct.optimize(torchvision.models.mobilenet_v2(weights=None, width_mult=0.35).eval())
    assert [name for name, _ in mobilenet.fastconv_report.chained] == ["features", "features..classifier"]
    assert ("52 conv layers, 1 adaptive average pool and 1 linear layer in one native call (the whole forward)"
            in str(mobilenet.fastconv_report))
    resnet = fct.optimize(torchvision.models.resnet18(weights=None).eval())
    assert [name for name, _ in resnet.fastconv_report.chained] == ["layer1", "layer2", "layer3", "layer4",
                                                                     "conv1..fc"]
    vgg = fct.optimize(vgg_like())
    assert [name for name, _ in vgg.fastconv_report.chained] == ["[0..3]", "[5..13]"]
    assert "4 conv layers and 2 max pools in one native call" in str(vgg.fastconv_report)
    full_vgg = fct.optimize(torchvision.models.vgg11(weights=None).eval())  # features: 8 convs, 5 pools
    # the classifier's ReLUs end VGG's whole run after its flatten
    assert [name for name, _ in full_vgg.fastconv_report.chained] == ["features", "features..flatten"]


def runs_of(chain):
    return [s for s in chain._fc_segments if isinstance(s, fct._ConvRun)]


def compiled(run):
    return any(p.chain is not None for p in run.programs.values())


def test_resnet_forward_is_one_call():
    model = randomize_batchnorm(torchvision.models.resnet18(weights=None)).eval()
    fast, plain = fct.optimize(model), fct.optimize(model, chain=False)
    assert ("20 conv layers, 1 max pool, 1 adaptive average pool and 1 linear layer in one native call "
            "(the whole forward)" in str(fast.fastconv_report))
    assert list(fast.state_dict()) == list(plain.state_dict())  # the whole forward is no submodule
    x = torch.randn(2, 3, 48, 40)
    with torch.no_grad():
        y = fast(x)
        assert torch.equal(y, plain(x)) and torch.allclose(y, model(x), rtol=1e-3, atol=1e-4)
    (whole,) = runs_of(fast.__dict__["_fc_whole"])
    assert compiled(whole) and not any(r.programs for r in runs_of(fast.layer2))  # the stages' own runs idle
    # a hook on a stage: the whole forward runs layer by layer, the hook fires, the same bits
    seen = []
    handle = fast.layer2.register_forward_hook(lambda m, i, o: seen.append(o.shape))
    with torch.no_grad():
        assert torch.equal(fast(x), y) and seen == [torch.Size([2, 128, 6, 5])]
    handle.remove()
    # a stage replaced after optimize(): torchvision's forward, with the new stage
    stages = fast.layer4, plain.layer4
    fast.layer4, plain.layer4 = (nn.Sequential(stage, nn.Hardtanh(-0.01, 0.01)) for stage in stages)
    with torch.no_grad():
        assert torch.equal(fast(x), plain(x)) and not torch.equal(fast(x), y)
    fast.layer4, plain.layer4 = stages
    # copies keep their whole forward, on their own layers
    for copied in (copy.deepcopy(fast), pickle.loads(pickle.dumps(fast))):
        assert copied.__dict__["_fc_whole"][0] is copied.conv1
        with torch.no_grad():
            assert torch.equal(copied(x), y)


def replace_deepest_conv(model, stage, new_conv):
    """model.<stage>'s last fastconv Conv2d replaced in its parent by new_conv."""
    name = [n for n, m in getattr(model, stage).named_modules() if isinstance(m, fct.Conv2d)][-1]
    parent_name, _, child = name.rpartition(".")
    parent = getattr(model, stage).get_submodule(parent_name) if parent_name else getattr(model, stage)
    setattr(parent, child, new_conv)


def test_layers_replaced_after_optimize_are_followed():
    # in a chained Sequential: the runs are built again from what it holds now
    fast, plain = fct.optimize(vgg_like()), fct.optimize(vgg_like(), chain=False)
    fast.load_state_dict(plain.state_dict())
    x = torch.randn(1, 3, 24, 24)
    with torch.no_grad():
        assert torch.equal(fast(x), plain(x))
        replacement = fct.Conv2d(8, 8, 3, padding=1)
        fast[2] = plain[2] = replacement
        assert torch.equal(fast(x), plain(x))
        del fast[13], plain[13]  # the last layer gone
        assert torch.equal(fast(x), plain(x))
        fast[7].kernel_size = plain[7].kernel_size = 3  # a pool's window changed in place
        assert torch.equal(fast(x), plain(x))
        fast[7].ceil_mode = plain[7].ceil_mode = True  # ceil_mode: compiled again
        assert torch.equal(fast(x), plain(x))
        fast[7].kernel_size = plain[7].kernel_size = 2
        fast[7].dilation = plain[7].dilation = 2  # one the kernel does not take: layer by layer
        assert torch.equal(fast(x), plain(x))
    # deep inside a residual block of a ResNet's trunk
    model = randomize_batchnorm(torchvision.models.resnet18(weights=None)).eval()
    fast, plain = fct.optimize(model), fct.optimize(model, chain=False)
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        y = fast(x)
        last = [m for m in plain.layer3.modules() if isinstance(m, fct.Conv2d)][-1]
        replacement = copy.deepcopy(last)
        replacement.weight.mul_(-2.0)
        for m in (fast, plain):
            replace_deepest_conv(m, "layer3", replacement)
        assert torch.equal(fast(x), plain(x)) and not torch.equal(fast(x), y)


class ResNetOwnForward(torchvision.models.ResNet):
    def forward(self, x):  # not torchvision's: optimize() cannot know what runs after what
        return super().forward(x) * 2.0


def test_resnet_with_its_own_forward_keeps_its_stages():
    model = ResNetOwnForward(torchvision.models.resnet.BasicBlock, [1, 1, 1, 1]).eval()
    fast = fct.optimize(model)
    assert "_fc_whole" not in fast.__dict__ and "conv1..fc" not in str(fast.fastconv_report)
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(fast(x), model(x), rtol=1e-3, atol=1e-4)


def classifier():
    """A trunk and a classifier's head: global pool, flatten, dropout, linear."""
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 16, 3, stride=2),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.5), nn.Linear(16, 10))


def test_a_classifiers_head_joins_the_chain(monkeypatch):
    model = classifier().eval()
    fast, plain = fct.optimize(model), fct.optimize(model, chain=False)
    assert [name for name, _ in fast.fastconv_report.chained] == [""]
    assert "2 conv layers, 1 adaptive average pool and 1 linear layer" in str(fast.fastconv_report)
    (run,) = runs_of(fast)
    with torch.no_grad():
        for n in (1, 8, 9, 3):  # past 8 rows the linear layer is a GEMM, after the chain
            x = torch.randn(n, 3, 13, 11)
            y = fast(x)
            assert y.shape == (n, 10) and torch.equal(y, plain(x)), n
            assert torch.allclose(y, model(x), rtol=1e-4, atol=1e-5)
            program = run.programs[x.shape]
            assert len(program.rest) == (1 if n > 8 else 0) and len(program.chain) == (3 if n > 8 else 4)
        # a dropout that trains: it and what follows it run layer by layer (torch's dropout drops); the
        # layers before it compile at the second attempt, not one fewer layer at a time
        fast[5].train()
        x = torch.randn(2, 3, 13, 11)
        attempts = []
        compile_layers = fct._ConvRun._compile_layers

        def counted(self, shape, signature, n):
            attempts.append(n)
            return compile_layers(self, shape, signature, n)

        monkeypatch.setattr(fct._ConvRun, "_compile_layers", counted)
        y = fast(x)
        assert attempts == [7, 5]
        assert not torch.equal(y, plain(x)) and run.programs[x.shape].rest == (fast[5], fast[6])
        fast[5].eval()
        assert torch.equal(fast(x), plain(x))
        # a head that does not chain: a pool to 2x2 (then no flatten of 1x1 images), or a linear layer on images
        for replaced in ({3: nn.AdaptiveAvgPool2d(2), 6: nn.Linear(64, 10)}, {4: nn.Identity(), 6: nn.Linear(1, 4)}):
            other = copy.deepcopy(model)
            for i, m in replaced.items():
                other[i] = m
            fast_other, plain_other = fct.optimize(other), fct.optimize(other, chain=False)
            x = torch.randn(2, 3, 13, 11)
            assert torch.equal(fast_other(x), plain_other(x)) and torch.allclose(fast_other(x), other(x), atol=1e-5)


def test_optimize_leaves_every_layer_in_eval_mode():
    # the whole forward's Sequential is new: made in training mode, it would have put the model's
    # dropouts back in training when it was chained
    for model in (torchvision.models.mobilenet_v2(weights=None, width_mult=0.35, num_classes=10),
                  torchvision.models.vgg11(weights=None, num_classes=10), classifier()):
        fast = fct.optimize(model.train())
        assert not any(m.training for m in fast.modules())
        assert not any(m.training for m in fast.__dict__.get("_fc_whole", fast).modules())


def test_sequentials_inside_a_chained_sequential_are_chained_too():
    # the inner Sequential is no run of the outer one (a pool the kernel does not take: dilation), so
    # it gets runs of its own
    inner = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.Conv2d(8, 8, 3, padding=1), nn.MaxPool2d(2, dilation=2))
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 8, 3, padding=1), inner).eval()
    fast, plain = fct.optimize(model), fct.optimize(model, chain=False)
    assert [name for name, _ in fast.fastconv_report.chained] == ["[0..1]", "2[0..1]"]
    assert isinstance(fast, fct._Chain) and isinstance(fast[2], fct._Chain)
    x = torch.randn(1, 3, 15, 15)
    with torch.no_grad():
        assert torch.equal(fast(x), plain(x))
    # with a pool the kernel takes, the inner Sequential is part of the outer run
    inner[2] = nn.MaxPool2d(2)
    fast, plain = fct.optimize(model), fct.optimize(model, chain=False)
    assert [name for name, _ in fast.fastconv_report.chained] == [""]
    with torch.no_grad():
        assert torch.equal(fast(x), plain(x))


def test_intermediates_share_the_arena_by_liveness():
    layers = [nn.Conv2d(8, 8, 3, padding=1) for _ in range(12)]
    fast = fct.optimize(nn.Sequential(*layers).eval())
    x = torch.randn(1, 8, 32, 32)
    with torch.no_grad():
        fast(x)
    (run,) = [s for s in fast._fc_segments if isinstance(s, fct._ConvRun)]
    (program,) = run.programs.values()
    assert len(program.chain) == 12
    # 11 intermediates of 32 KiB; two at a time are live
    assert program.chain.arena_bytes < 3 * 8 * 32 * 32 * 4 + (4 << 20)
    offsets, arena = fct._lay_out([[None, None, i, -1, i + 1] for i in range(12)],
                                  [(1, 8, 32, 32)] * 13, 12)
    assert arena == 2 * 8 * 32 * 32 and sorted(set(offsets[2:12])) == [0, 8 * 32 * 32]


def residual_sequence():
    block = torchvision.models.resnet.BasicBlock(8, 8)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), block, torchvision.models.resnet.BasicBlock(8, 8))


def test_weight_changes_recompile_the_chain():
    model = randomize_batchnorm(residual_sequence())
    fast, plain = fct.optimize(model), fct.optimize(model, chain=False)
    x = torch.randn(2, 3, 16, 16)
    convs = [[m for m in f.modules() if isinstance(m, fct.Conv2d)] for f in (fast, plain)]
    with torch.no_grad():
        fast(x), plain(x)
        for edit in range(3):
            for layers in convs:
                if edit == 0:  # in place: the version counter
                    layers[2].weight.mul_(-0.5)
                elif edit == 1:  # through .data, then repack()
                    layers[3].weight.data[0] += 1.0
                    layers[3].repack()
                else:  # a new Parameter
                    layers[1].bias = nn.Parameter(torch.full_like(layers[1].bias, 0.25), requires_grad=False)
            y, y_ref = fast(x), plain(x)
            assert torch.equal(y, y_ref), edit
        # a new activation replans (and the chain follows)
        for layers in convs:
            layers[0].activation = "tanh"
        assert torch.equal(fast(x), plain(x))


def test_hooks_and_gradients_run_layer_by_layer():
    model = randomize_batchnorm(residual_sequence())
    fast = fct.optimize(model)
    x = torch.randn(1, 3, 16, 16)
    with torch.no_grad():
        y_ref = fast(x)
    seen = []
    conv = next(m for m in fast.modules() if isinstance(m, fct.Conv2d))
    handle = conv.register_forward_hook(lambda m, i, o: seen.append(o.shape))
    with torch.no_grad():
        assert torch.equal(fast(x), y_ref)
    assert seen == [torch.Size([1, 8, 16, 16])]
    handle.remove()
    with torch.no_grad():
        fast(x)
    assert len(seen) == 1
    # with autograd on and a parameter that wants gradients: the layers' own (training) path
    conv.weight.requires_grad_(True)
    y = fast(x)
    y.sum().backward()
    assert conv.weight.grad is not None and torch.allclose(y, y_ref, rtol=1e-4, atol=1e-5)


def test_other_inputs_run_layer_by_layer():
    model = randomize_batchnorm(residual_sequence())
    fast, plain = fct.optimize(model), fct.optimize(model, chain=False)
    with torch.no_grad():
        x = torch.randn(3, 16, 16)  # unbatched
        assert torch.equal(fast(x), plain(x))
        x = torch.randn(2, 3, 20, 20)[:, :, ::2, 1::2]  # not contiguous: one copy, then the chain
        assert torch.equal(fast(x), plain(x.contiguous()))
        x = torch.randn(1, 3, 8, 8)
        fast(x)  # compiled for float32 weights ...
        fast.double()  # ... which .double() replaces: the layers fall back to torch (and say so)
        with pytest.warns(UserWarning, match="float64"):
            y = fast(x.double())
        assert y.dtype == torch.float64 and torch.allclose(y.float(), plain(x), rtol=1e-4, atol=1e-5)
        with pytest.raises(RuntimeError):  # torch's own error for a wrong channel count
            fast(torch.randn(1, 5, 8, 8))


def test_many_python_threads_on_one_chained_model():
    model = randomize_batchnorm(torchvision.models.mobilenet_v2(weights=None, width_mult=0.35, num_classes=10))
    fast = fct.optimize(model, threads=1)
    xs = [torch.randn(1, 3, 48, 48) for _ in range(8)]
    with torch.no_grad():
        serial = [fast(x) for x in xs]
    results = [None] * 8

    def work(i):
        with torch.no_grad():
            for _ in range(5):
                results[i] = fast(xs[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(torch.equal(r, s) for r, s in zip(results, serial))


@pytest.mark.parametrize("build", [residual_sequence, MODELS["resnet_basic"]], ids=["sequential", "resnet"])
def test_copies_compile_their_own_chains(build):
    # optimize() gives the model's class a subclass made at run time: pickle (torch.save) must still work
    model = randomize_batchnorm(build())
    fast = fct.optimize(model)
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        y = fast(x)
        for copied in (copy.deepcopy(fast), pickle.loads(pickle.dumps(fast))):
            assert torch.equal(copied(x), y)
            with torch.no_grad():
                next(m for m in copied.modules() if isinstance(m, fct.Conv2d)).weight.zero_()
            assert not torch.equal(copied(x), y) and torch.equal(fast(x), y)


# -- the native program's checks ----------------------------------------------------------------


def plan(shape_in, k, residual=False):
    n, c, h, w = shape_in
    p = _C.Problem()
    p.batch, p.in_channels, p.in_height, p.in_width = n, c, h, w
    p.out_channels, p.kernel_height, p.kernel_width = k, 1, 1
    pl = _C.Plan(p, threads=1, residual=residual)
    rng = np.random.default_rng(0)
    return pl, pl.pack_weights(rng.standard_normal((k, c, 1, 1)).astype(np.float32))


def test_chain_runs_a_hand_written_program():
    p1, w1 = plan((1, 4, 5, 5), 6)
    p2, w2 = plan((1, 6, 5, 5), 4, residual=True)
    x = np.random.default_rng(1).standard_normal((1, 4, 5, 5)).astype(np.float32)
    chain = _C.Chain([(p1, w1, 0, -1, 2), (p2, w2, 2, 0, 1)], [-1, -1, 0], 150, [1, 4, 5, 5], [1, 4, 5, 5])
    out = np.zeros((1, 4, 5, 5), np.float32)
    chain.run(x, out)
    mid = np.empty((1, 6, 5, 5), np.float32)
    p1.execute(x, w1, mid)
    ref = np.empty_like(out)
    p2.execute(mid, w2, ref, x)
    assert np.array_equal(out, ref)


def test_chain_runs_global_average_pool_steps():
    p1, w1 = plan((2, 4, 5, 3), 6)
    x = np.random.default_rng(3).standard_normal((2, 4, 5, 3)).astype(np.float32)
    step = ("global_avg_pool", (2, 6, 5, 3, 2), 2, -1, 1)
    chain = _C.Chain([(p1, w1, 0, -1, 2), step], [-1, -1, 0], 180, [2, 4, 5, 3], [2, 6, 1, 1])
    out = np.zeros((2, 6, 1, 1), np.float32)
    chain.run(x, out)
    mid, ref = np.empty((2, 6, 5, 3), np.float32), np.empty_like(out)
    p1.execute(x, w1, mid)
    _C.global_avg_pool2d(mid, ref, 1)
    assert np.array_equal(out, ref)
    assert np.allclose(out, mid.astype(np.float64).mean(axis=(2, 3), keepdims=True), rtol=1e-6, atol=1e-7)


def test_chain_runs_max_pool_steps():
    p1, w1 = plan((1, 4, 9, 9), 6)
    p2, w2 = plan((1, 6, 5, 5), 4)
    x = np.random.default_rng(2).standard_normal((1, 4, 9, 9)).astype(np.float32)
    pool = ("max_pool", (1, 6, 9, 9, 3, 3, 2, 2, 1, 1, 2), 2, -1, 3)  # 9x9 -> 5x5
    chain = _C.Chain([(p1, w1, 0, -1, 2), pool, (p2, w2, 3, -1, 1)], [-1, -1, 0, 496], 700, [1, 4, 9, 9],
                     [1, 4, 5, 5])
    out = np.zeros((1, 4, 5, 5), np.float32)
    chain.run(x, out)
    mid, pooled, ref = np.empty((1, 6, 9, 9), np.float32), np.empty((1, 6, 5, 5), np.float32), np.empty_like(out)
    p1.execute(x, w1, mid)
    _C.max_pool2d(mid, pooled, (3, 3), (2, 2), (1, 1), 1)
    p2.execute(pooled, w2, ref)
    assert np.array_equal(out, ref)


BAD_POOLS = [  # (what the error says, the pool step)
    ("unknown kind", ("avg_pool", (1, 6, 5, 5, 2, 2, 2, 2, 0, 0, 1), 2, -1, 1)),
    ("a max pool is", ("max_pool", (1, 6, 5, 5, 2, 2, 2, 2, 0, 0), 2, -1, 1)),
    ("empty max pool input", ("max_pool", (1, 0, 5, 5, 2, 2, 2, 2, 0, 0, 1), 2, -1, 1)),
    ("half the kernel", ("max_pool", (1, 6, 5, 5, 2, 2, 2, 2, 2, 0, 1), 2, -1, 1)),
    ("larger than the padded input", ("max_pool", (1, 6, 5, 5, 9, 2, 2, 2, 0, 0, 1), 2, -1, 1)),
    ("between 1 and", ("max_pool", (1, 6, 5, 5, 2, 2, 0, 2, 0, 0, 1), 2, -1, 1)),
    ("threads", ("max_pool", (1, 6, 5, 5, 2, 2, 2, 2, 0, 0, 0), 2, -1, 1)),
    ("adds no residual", ("max_pool", (1, 6, 5, 5, 2, 2, 2, 2, 0, 0, 1), 2, 0, 1)),
    ("holds", ("max_pool", (1, 6, 5, 5, 2, 2, 1, 1, 0, 0, 1), 2, -1, 1)),  # 4x4 out: the output slot is 2x2
    ("holds", ("max_pool", (1, 5, 5, 5, 2, 2, 2, 2, 0, 0, 1), 2, -1, 1)),  # reads 5 channels where 6 were written
    ("a global average pool is", ("global_avg_pool", (1, 6, 5, 5), 2, -1, 1)),
    ("empty average pool input", ("global_avg_pool", (1, 6, 0, 5, 1), 2, -1, 1)),
    ("threads", ("global_avg_pool", (1, 6, 5, 5, 0), 2, -1, 1)),
    ("adds no residual", ("global_avg_pool", (1, 6, 5, 5, 1), 2, 0, 1)),
    ("holds", ("global_avg_pool", (1, 6, 5, 5, 1), 2, -1, 1)),  # writes 6 floats: the output slot holds 24
    ("overflows", ("global_avg_pool", (1, 6, 2 ** 40, 2 ** 40, 1), 2, -1, 1)),
]


@pytest.mark.parametrize("what,pool", BAD_POOLS, ids=[f"{i}-{b[0]}" for i, b in enumerate(BAD_POOLS)])
def test_chain_refuses_malformed_pool_steps(what, pool):
    p1, w1 = plan((1, 4, 5, 5), 6)
    with pytest.raises(fastconv.Error, match=what):
        _C.Chain([(p1, w1, 0, -1, 2), pool], [-1, -1, 0], 1000, [1, 4, 5, 5], [1, 6, 2, 2])


BAD_PROGRAMS = [  # (what the error says, steps as (in, residual, out), slot offsets, arena floats)
    ("slot out of range", [(0, -1, 2), (2, 0, 5)], [-1, -1, 0], 1000),
    ("write the input", [(0, -1, 2), (2, 0, 0)], [-1, -1, 0], 1000),
    ("before any step wrote it", [(0, -1, 2), (3, 0, 1)], [-1, -1, 0, 200], 1000),
    ("outside the arena", [(0, -1, 2), (2, 0, 1)], [-1, -1, 10], 150),
    ("residual slot disagree", [(0, 0, 2), (2, 0, 1)], [-1, -1, 0], 1000),
    ("holds", [(0, -1, 2), (2, 0, 1)], [-1, -1, 0], 1000),  # the output slot sized for another shape
    ("writes over what it reads", [(0, -1, 2), (2, 0, 3)], [-1, -1, 0, 100], 1000),
    ("overwrites slot", [(0, -1, 2), (0, -1, 3), (2, 0, 1)], [-1, -1, 0, 10], 1000),
    ("no step writes the output", [(0, -1, 2)], [-1, -1, 0], 1000),
]


@pytest.mark.parametrize("what,steps,offsets,arena", BAD_PROGRAMS, ids=[b[0] for b in BAD_PROGRAMS])
def test_chain_refuses_malformed_programs(what, steps, offsets, arena):
    p1, w1 = plan((1, 4, 5, 5), 6)
    p2, w2 = plan((1, 6, 5, 5), 4, residual=True)
    plans = [(p1, w1), (p1, w1), (p2, w2)] if what == "overwrites slot" else [(p1, w1), (p2, w2)]
    built = [(*plans[i], *s) for i, s in enumerate(steps)]
    out_shape = [1, 5, 5, 5] if what == "holds" else [1, 4, 5, 5]
    with pytest.raises(fastconv.Error, match=what):
        _C.Chain(built, offsets, arena, [1, 4, 5, 5], out_shape)


def test_chain_run_checks_its_arrays_and_writes_nothing_when_refused():
    p1, w1 = plan((1, 4, 5, 5), 6)
    p2, w2 = plan((1, 6, 5, 5), 4, residual=True)
    chain = _C.Chain([(p1, w1, 0, -1, 2), (p2, w2, 2, 0, 1)], [-1, -1, 0], 150, [1, 4, 5, 5], [1, 4, 5, 5])
    x = np.ones((1, 4, 5, 5), np.float32)
    out = np.full((1, 4, 5, 5), 7.0, np.float32)
    for bad_x in (np.ones((1, 4, 5, 6), np.float32), np.ones((1, 4, 5, 5), np.float64),
                  np.ones((1, 4, 5, 10), np.float32)[..., ::2]):
        with pytest.raises(fastconv.Error):
            chain.run(bad_x, out)
    with pytest.raises(fastconv.Error, match="overlaps"):
        chain.run(out, out)
    read_only = np.zeros((1, 4, 5, 5), np.float32)
    read_only.flags.writeable = False
    with pytest.raises(fastconv.Error, match="read-only"):
        chain.run(x, read_only)
    assert (out == 7.0).all()
    with pytest.raises(fastconv.Error, match="direction"):
        bwd = _C.Plan(p1.problem, threads=1, direction="backward-data")
        _C.Chain([(bwd, w1, 0, -1, 1)], [-1, -1], 0, [1, 4, 5, 5], [1, 6, 5, 5])
