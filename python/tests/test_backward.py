"""The backward directions from Python: the extension's backward plans (shape, dtype, direction checks,
nothing written on error), fastconv.conv_transpose2d against torch's for every argument form, the
gradients of fastconv.torch.Conv2d and ConvTranspose2d against torch.autograd, and a few SGD steps of
a small CNN matching torch's weights."""
import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import fastconv
import fastconv.torch as fct
from fastconv import _fastconv as _C
from fastconv._autograd import _Conv2dFunction, _ConvTranspose2dFunction

# float32 against float64 torch, relative to the largest magnitude (sums of a few hundred terms)
TOL = 2e-5


def normwise(y, ref):
    y, ref = torch.as_tensor(np.asarray(y) if not isinstance(y, torch.Tensor) else y).detach().double(), \
        torch.as_tensor(np.asarray(ref) if not isinstance(ref, torch.Tensor) else ref).detach().double()
    assert y.shape == ref.shape, (tuple(y.shape), tuple(ref.shape))
    return float((y - ref).abs().max() / max(float(ref.abs().max()), 1e-30))


@pytest.fixture(autouse=True)
def seed():
    torch.manual_seed(11)


# ---------------------------------------------------------------------------------------------------
# The extension's backward plans


def _problem(n=2, c=4, h=7, w=6, k=6, r=3, s=3, stride=1, pad=1, groups=1):
    p = _C.Problem()
    p.batch, p.in_channels, p.in_height, p.in_width, p.out_channels = n, c, h, w, k
    p.kernel_height, p.kernel_width, p.stride_h, p.stride_w = r, s, stride, stride
    p.pad_top = p.pad_bottom = p.pad_left = p.pad_right = pad
    p.dilation_h = p.dilation_w = 1
    p.groups = groups
    return p


def test_backward_plans_match_torch_autograd():
    p = _problem(stride=2, groups=2)
    x = torch.randn(p.input_shape, dtype=torch.float64, requires_grad=True)
    wt = torch.randn(p.weight_shape, dtype=torch.float64, requires_grad=True)
    b = torch.randn(p.output_shape[1], dtype=torch.float64, requires_grad=True)
    y = F.conv2d(x, wt, b, 2, 1, 1, 2)
    dy = torch.randn(y.shape, dtype=torch.float64)
    y.backward(dy)
    data = _C.Plan(p, direction="backward-data", threads=2)
    weights = _C.Plan(p, direction="backward-weights", threads=2)
    assert data.direction == "backward-data" and weights.direction == "backward-weights"
    dx = np.empty(p.input_shape, np.float32)
    data.execute_backward_data(dy.float().numpy(), data.pack_weights(wt.detach().float().numpy()), dx)
    assert normwise(dx, x.grad) < TOL
    dw, db = np.empty(p.weight_shape, np.float32), np.empty(p.output_shape[1], np.float32)
    # non-contiguous inputs: one copy, same result
    x_nc = np.asfortranarray(x.detach().float().numpy())
    weights.execute_backward_weights(x_nc, dy.float().numpy(), dw, db)
    assert normwise(dw, wt.grad) < TOL
    assert normwise(db, b.grad) < TOL
    # backward-data's bias is [C], added to dx
    bias_c = np.arange(p.input_shape[1], dtype=np.float32)
    dx2 = np.empty_like(dx)
    data.execute_backward_data(dy.float().numpy(), data.pack_weights(wt.detach().float().numpy(), bias_c), dx2)
    np.testing.assert_allclose(dx2, dx + bias_c.reshape(1, -1, 1, 1), rtol=1e-5, atol=1e-5)


def test_backward_plans_refuse_bad_input_and_write_nothing():
    p = _problem()
    data = _C.Plan(p, direction="backward-data")
    weights = _C.Plan(p, direction="backward-weights")
    forward = _C.Plan(p)
    w = np.ones(p.weight_shape, np.float32)
    packed = data.pack_weights(w)
    dy = np.ones(p.output_shape, np.float32)
    x = np.ones(p.input_shape, np.float32)
    dx = np.full(p.input_shape, 7.0, np.float32)
    dw = np.full(p.weight_shape, 7.0, np.float32)
    db = np.full(p.output_shape[1], 7.0, np.float32)
    bad_calls = [
        lambda: data.execute_backward_data(dy[:, :, :-1], packed, dx),                     # dy shape
        lambda: data.execute_backward_data(dy.astype(np.float64), packed, dx),             # dtype
        lambda: data.execute_backward_data(dy, packed, dx[:1]),                            # dx shape
        lambda: data.execute_backward_data(dy, packed, dx.astype(np.float64)),             # dx dtype
        lambda: data.execute_backward_data(dy, forward.pack_weights(w), dx),               # another plan's weights
        lambda: weights.execute_backward_data(dy, packed, dx),                             # wrong direction
        lambda: weights.execute_backward_weights(x[:, :2], dy, dw, db),                   # x shape
        lambda: weights.execute_backward_weights(x, dy[:1], dw, db),                       # dy shape
        lambda: weights.execute_backward_weights(x, dy, dw[:, :, :2], db),                 # dw shape
        lambda: weights.execute_backward_weights(x, dy, dw, db[:2]),                       # db shape
        lambda: weights.execute_backward_weights(x, dy, dw, db.astype(np.float64)),        # db dtype
        lambda: data.execute_backward_weights(x, dy, dw, db),                              # wrong direction
        lambda: forward.execute_backward_weights(x, dy, dw, db),                           # wrong direction
        lambda: weights.pack_weights(w),                                                   # no weights to pack
        lambda: data.pack_weights(w, np.ones(p.output_shape[1], np.float32)),             # bias is [C], not [K]
        lambda: data.execute(x, packed, dy.copy()),                                        # forward call
    ]
    for i, call in enumerate(bad_calls):
        with pytest.raises(fastconv.Error):
            call()
        assert (dx == 7).all() and (dw == 7).all() and (db == 7).all(), f"call {i} wrote its output"
    ro = np.empty(p.input_shape, np.float32)
    ro.flags.writeable = False
    with pytest.raises(fastconv.Error, match="read-only"):
        data.execute_backward_data(dy, packed, ro)
    with pytest.raises(fastconv.Error, match="direction"):
        _C.Plan(p, direction="sideways")


# ---------------------------------------------------------------------------------------------------
# conv_transpose2d

# (input shape, C_out, kernel, kwargs)
TRANSPOSED = [
    ((2, 4, 5, 6), 6, 3, dict()),
    ((2, 4, 5, 6), 6, 3, dict(stride=2)),
    ((2, 4, 5, 6), 6, 3, dict(stride=2, padding=1, output_padding=1)),
    ((1, 4, 7, 5), 6, (3, 2), dict(stride=(2, 3), padding=(1, 0), output_padding=(1, 2))),
    ((2, 6, 5, 5), 4, 3, dict(groups=2, padding=1)),
    ((2, 8, 6, 5), 8, 3, dict(groups=8, stride=2, padding=1, output_padding=1)),          # depthwise
    ((2, 4, 5, 6), 6, 3, dict(dilation=2, padding=2)),
    ((2, 4, 5, 6), 6, 3, dict(dilation=(2, 3), stride=2, padding=(1, 2), output_padding=(1, 2))),
    ((1, 3, 4, 4), 5, 3, dict(dilation=3, output_padding=2)),                             # op >= stride, < dilation
    ((2, 4, 9, 9), 3, 4, dict(stride=4, padding=2, output_padding=3)),
    ((2, 16, 6, 6), 8, 3, dict(stride=1, padding=1)),
    ((2, 4, 5, 6), 6, 1, dict(stride=3)),
    ((4, 5, 6), 6, 3, dict(stride=2, padding=1)),                                         # unbatched
    ((2, 4, 5, 6), 6, [3], dict(stride=[2], padding=[1], output_padding=[1], dilation=[1])),  # 1-element lists
]


@pytest.mark.parametrize("case", TRANSPOSED, ids=[str(i) for i in range(len(TRANSPOSED))])
@pytest.mark.parametrize("bias", [False, True], ids=["nobias", "bias"])
@pytest.mark.parametrize("kind", ["numpy", "tensor"])
def test_conv_transpose2d_matches_torch(case, bias, kind):
    shape, c_out, kernel, kw = case
    groups = kw.get("groups", 1)
    kh, kwd = (kernel, kernel) if isinstance(kernel, int) else (tuple(kernel) * 2)[:2]
    x = torch.randn(shape)
    w = torch.randn(shape[-3], c_out // groups, kh, kwd)
    b = torch.randn(c_out) if bias else None
    ref = F.conv_transpose2d(x.double(), w.double(), None if b is None else b.double(), **kw)
    if kind == "numpy":
        y = fastconv.conv_transpose2d(x.numpy(), w.numpy(), None if b is None else b.numpy(), **kw)
        assert isinstance(y, np.ndarray) and y.dtype == np.float32
    else:
        y = fastconv.conv_transpose2d(x, w, b, **kw)
        assert isinstance(y, torch.Tensor) and y.dtype == torch.float32
    assert normwise(y, ref) < TOL


def test_conv_transpose2d_positional_and_non_contiguous():
    x = torch.randn(2, 6, 5, 7).transpose(2, 3)  # non-contiguous
    w = torch.randn(6, 2, 3, 3)
    b = torch.randn(4)
    ref = F.conv_transpose2d(x, w, b, 2, 1, 1, 2, 1)
    y = fastconv.conv_transpose2d(x, w, b, 2, 1, 1, 2, 1, threads=1)
    assert normwise(y, ref) < TOL
    for algorithm in ("direct", "im2col"):
        y = fastconv.conv_transpose2d(x, w, b, 2, 1, 1, 2, 1, algorithm=algorithm)
        assert normwise(y, ref) < TOL


@pytest.mark.parametrize("call, match", [
    (lambda x, w: fastconv.conv_transpose2d(x, w, stride=2, output_padding=2), "output padding"),
    (lambda x, w: fastconv.conv_transpose2d(x, w, output_padding=1), "output padding"),
    (lambda x, w: fastconv.conv_transpose2d(x, w, stride=0), "stride"),
    (lambda x, w: fastconv.conv_transpose2d(x, w, padding=-1), "padding"),
    (lambda x, w: fastconv.conv_transpose2d(x, w, dilation=0), "dilation"),
    (lambda x, w: fastconv.conv_transpose2d(x, w, groups=3), "groups"),
    (lambda x, w: fastconv.conv_transpose2d(x, w, stride=(1, 2, 3)), "stride"),
    (lambda x, w: fastconv.conv_transpose2d(x, w, padding="same"), "padding"),
    (lambda x, w: fastconv.conv_transpose2d(x, w, np.ones(5, np.float32)), "bias"),
    (lambda x, w: fastconv.conv_transpose2d(x[:, :3], w), "channels"),
    (lambda x, w: fastconv.conv_transpose2d(x[0, 0], w), "input"),
    (lambda x, w: fastconv.conv_transpose2d(x, w[0]), "weight"),
    (lambda x, w: fastconv.conv_transpose2d(x.astype(np.float64), w), "float32"),
    (lambda x, w: fastconv.conv_transpose2d(x, w, padding=5), "too small"),
    (lambda x, w: fastconv.conv_transpose2d(x, w, algorithm="magic"), "algorithm"),
])
def test_conv_transpose2d_bad_input(call, match):
    x = np.ones((2, 4, 5, 6), np.float32)
    w = np.ones((4, 3, 3, 3), np.float32)
    with pytest.raises(fastconv.Error, match=match):
        call(x, w)


# ---------------------------------------------------------------------------------------------------
# Gradients through autograd

CONV_CASES = [
    dict(in_channels=4, out_channels=6, kernel_size=3, padding=1),
    dict(in_channels=4, out_channels=6, kernel_size=3, stride=2, padding=1),
    dict(in_channels=6, out_channels=4, kernel_size=3, stride=2, padding=1, groups=2, bias=False),
    dict(in_channels=6, out_channels=6, kernel_size=3, padding=2, dilation=2, groups=6),
    dict(in_channels=4, out_channels=5, kernel_size=(3, 1), stride=(1, 2), padding="valid"),
    dict(in_channels=4, out_channels=4, kernel_size=5, padding="same", dilation=(1, 2)),
]


def _grads(layer, x, dy, residual=None):
    x = x.clone().requires_grad_(True)
    for p in layer.parameters():
        p.grad = None
    y = layer(x) if residual is None else layer(x, residual)
    y.backward(dy)
    grads = [x.grad, layer.weight.grad] + ([layer.bias.grad] if layer.bias is not None else [])
    return y.detach(), grads


@pytest.mark.parametrize("cfg", CONV_CASES, ids=[str(i) for i in range(len(CONV_CASES))])
@pytest.mark.parametrize("batched", [True, False], ids=["batched", "unbatched"])
def test_conv2d_gradients_match_torch(cfg, batched, monkeypatch):
    ref = nn.Conv2d(**cfg).double()
    fast = fct.Conv2d(**cfg)
    with torch.no_grad():
        fast.weight.copy_(ref.weight)
        if ref.bias is not None:
            fast.bias.copy_(ref.bias)
    calls = []
    real = _Conv2dFunction.backward
    monkeypatch.setattr(_Conv2dFunction, "backward",
                        staticmethod(lambda ctx, g: calls.append(1) or real(ctx, g)))
    x = torch.randn(2, cfg["in_channels"], 11, 10)
    if not batched:
        x = x[0]
    y_ref = ref(x.double())
    dy = torch.randn(y_ref.shape)
    y_ref, g_ref = _grads(ref, x.double(), dy.double())
    y, g = _grads(fast, x, dy)
    assert calls, "the backward did not run on fastconv's backward plans"
    assert normwise(y, y_ref) < TOL
    for name, a, b in zip(("input", "weight", "bias"), g, g_ref):
        assert normwise(a, b) < TOL, name


def test_conv2d_relu_residual_gradients():
    ref = nn.Conv2d(4, 4, 3, padding=1).double()
    fast = fct.Conv2d(4, 4, 3, padding=1, activation="relu")
    with torch.no_grad():
        fast.weight.copy_(ref.weight)
        fast.bias.copy_(ref.bias)
    x = torch.randn(2, 4, 9, 9)
    r = torch.randn(2, 4, 9, 9, requires_grad=True)
    r64 = r.detach().double().requires_grad_(True)
    dy = torch.randn(2, 4, 9, 9)
    xf, xr = x.clone().requires_grad_(True), x.double().requires_grad_(True)
    fast(xf, r).backward(dy)
    torch.relu(ref(xr) + r64).backward(dy.double())
    for a, b in ((xf.grad, xr.grad), (fast.weight.grad, ref.weight.grad), (fast.bias.grad, ref.bias.grad),
                 (r.grad, r64.grad)):
        assert normwise(a, b) < TOL


TRANSPOSED_LAYERS = [
    dict(in_channels=4, out_channels=6, kernel_size=3),
    dict(in_channels=4, out_channels=6, kernel_size=3, stride=2, padding=1, output_padding=1),
    dict(in_channels=6, out_channels=4, kernel_size=4, stride=2, padding=1, groups=2, bias=False),
    dict(in_channels=4, out_channels=4, kernel_size=3, stride=2, dilation=2, groups=4),
    dict(in_channels=3, out_channels=5, kernel_size=3, dilation=3, output_padding=2),  # op >= stride
]


@pytest.mark.parametrize("cfg", TRANSPOSED_LAYERS, ids=[str(i) for i in range(len(TRANSPOSED_LAYERS))])
@pytest.mark.parametrize("batched", [True, False], ids=["batched", "unbatched"])
def test_conv_transpose2d_gradients_match_torch(cfg, batched, monkeypatch):
    ref = nn.ConvTranspose2d(**cfg).double()
    fast = fct.ConvTranspose2d.from_conv(nn.ConvTranspose2d(**cfg))
    with torch.no_grad():
        fast.weight.copy_(ref.weight)
        if ref.bias is not None:
            fast.bias.copy_(ref.bias)
    calls = []
    real = _ConvTranspose2dFunction.backward
    monkeypatch.setattr(_ConvTranspose2dFunction, "backward",
                        staticmethod(lambda ctx, g: calls.append(1) or real(ctx, g)))
    x = torch.randn(2, cfg["in_channels"], 6, 7)
    if not batched:
        x = x[0]
    dy = torch.randn(ref(x.double()).shape)
    y_ref, g_ref = _grads(ref, x.double(), dy.double())
    y, g = _grads(fast, x, dy)
    assert calls, "the backward did not run on fastconv"
    assert normwise(y, y_ref) < TOL
    for name, a, b in zip(("input", "weight", "bias"), g, g_ref):
        assert normwise(a, b) < TOL, name


def test_conv_transpose2d_layer_output_size():
    ref = nn.ConvTranspose2d(4, 3, 3, stride=2, padding=1)
    fast = fct.ConvTranspose2d.from_conv(ref)
    x = torch.randn(1, 4, 5, 5)
    for size in ([10, 10], [9, 10], (1, 3, 10, 9)):
        assert normwise(fast(x, output_size=size), ref(x, output_size=size)) < TOL


def test_gradcheck_tiny_double_reference():
    # finite differences in double through torch's conv against the analytic float32 gradients
    fast = fct.Conv2d(2, 3, 3, stride=2, padding=1)
    x = torch.randn(1, 2, 5, 5, requires_grad=True)
    fast(x).pow(2).sum().backward()
    x64 = x.detach().double()
    w64, b64 = fast.weight.detach().double(), fast.bias.detach().double()
    eps, num = 1e-6, torch.zeros_like(x64)
    for i in range(x64.numel()):
        e = torch.zeros_like(x64).view(-1)
        e[i] = eps
        e = e.view_as(x64)
        f = lambda t: F.conv2d(t, w64, b64, 2, 1).pow(2).sum()
        num.view(-1)[i] = (f(x64 + e) - f(x64 - e)) / (2 * eps)
    assert normwise(x.grad, num) < 1e-4


# ---------------------------------------------------------------------------------------------------
# Training


class SmallNet(nn.Module):
    def __init__(self, conv, convt):
        super().__init__()
        self.c1 = conv(3, 8, 3, padding=1)
        self.c2 = conv(8, 16, 3, stride=2, padding=1)
        self.c3 = conv(16, 16, 3, padding=2, dilation=2, groups=4)
        self.up = convt(16, 8, 4, stride=2, padding=1)
        self.head = conv(8, 2, 1)

    def forward(self, x):
        x = torch.relu(self.c1(x))
        x = torch.relu(self.c2(x))
        x = torch.relu(self.c3(x))
        x = torch.relu(self.up(x))
        return self.head(x)


def test_sgd_steps_match_torch(monkeypatch):
    torch.manual_seed(3)
    ref = SmallNet(nn.Conv2d, nn.ConvTranspose2d)
    fast = SmallNet(fct.Conv2d, fct.ConvTranspose2d)
    fast.load_state_dict(ref.state_dict())
    initial = {k: v.clone() for k, v in ref.state_dict().items()}
    calls = []
    for fn in (_Conv2dFunction, _ConvTranspose2dFunction):
        real = fn.backward
        monkeypatch.setattr(fn, "backward", staticmethod(lambda ctx, g, real=real: calls.append(1) or real(ctx, g)))
    opt_ref = torch.optim.SGD(ref.parameters(), lr=0.05, momentum=0.9)
    opt_fast = torch.optim.SGD(fast.parameters(), lr=0.05, momentum=0.9)
    x = torch.randn(4, 3, 16, 16)
    target = torch.randn(4, 2, 16, 16)
    losses = {"ref": [], "fast": []}
    for _ in range(5):
        for name, model, opt in (("ref", ref, opt_ref), ("fast", fast, opt_fast)):
            opt.zero_grad()
            loss = F.mse_loss(model(x), target)
            loss.backward()
            opt.step()
            losses[name].append(float(loss))
    assert len(calls) == 5 * 5, "every layer's backward runs on fastconv"
    assert losses["fast"][-1] < losses["fast"][0]
    np.testing.assert_allclose(losses["fast"], losses["ref"], rtol=1e-4)
    for name, p_ref in ref.state_dict().items():
        p_fast = fast.state_dict()[name]
        assert float((p_ref - initial[name]).abs().max()) > 1e-5, f"{name} did not train"
        assert normwise(p_fast, p_ref) < 1e-5, name
        # the updates themselves agree, relative to their own size
        assert normwise(p_fast - initial[name], p_ref - initial[name]) < 1e-3, name
