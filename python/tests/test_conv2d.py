"""fastconv.conv2d against torch.nn.functional.conv2d: every argument form, arrays and tensors,
unbatched and non-contiguous inputs, and every bad input (fastconv.Error, nothing written)."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import fastconv
from conftest import normwise_error, reference, to_numpy

TOL = 1e-4  # the loosest algorithm (Winograd F(4x4,3x3)), design.md section 8


def data(rng, x_shape, w_shape, bias=True):
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = rng.standard_normal(w_shape).astype(np.float32)
    b = rng.standard_normal(w_shape[0]).astype(np.float32) if bias else None
    return x, w, b


# (x shape, w shape, kwargs for both conv2d's): every argument form torch accepts
FORMS = [
    ((2, 3, 11, 13), (5, 3, 3, 3), {}),
    ((2, 3, 11, 13), (5, 3, 3, 3), {"stride": 2}),
    ((2, 3, 11, 13), (5, 3, 3, 3), {"stride": (2, 1)}),
    ((2, 3, 11, 13), (5, 3, 3, 3), {"stride": [1, 3]}),
    ((2, 3, 11, 13), (5, 3, 3, 3), {"stride": (2,)}),
    ((1, 4, 12, 10), (6, 4, 3, 3), {"padding": 1}),
    ((1, 4, 12, 10), (6, 4, 3, 5), {"padding": (2, 0)}),
    ((1, 4, 12, 10), (6, 4, 3, 3), {"padding": "same"}),
    ((1, 4, 12, 10), (6, 4, 4, 2), {"padding": "same"}),            # even kernel: odd pixel bottom/right
    ((1, 4, 12, 10), (6, 4, 3, 3), {"padding": "same", "dilation": (2, 3)}),
    ((1, 4, 12, 10), (6, 4, 3, 3), {"padding": "valid"}),
    ((1, 4, 15, 14), (6, 4, 3, 3), {"dilation": 2}),
    ((1, 4, 15, 14), (6, 4, 3, 3), {"dilation": (1, 2), "padding": (1, 2)}),
    ((2, 6, 9, 9), (4, 3, 3, 3), {"groups": 2}),
    ((2, 8, 9, 9), (8, 1, 3, 3), {"groups": 8, "padding": 1}),      # depthwise
    ((2, 8, 9, 9), (16, 1, 5, 5), {"groups": 8, "padding": 2, "stride": 2}),
    ((1, 16, 7, 7), (32, 16, 1, 1), {}),                            # 1x1
    ((1, 3, 40, 40), (4, 3, 9, 9), {"padding": 4}),                 # large kernel (FFT ground)
    ((3, 17, 19, 23), (33, 17, 3, 3), {"padding": 1}),              # odd sizes past SIMD widths
]


@pytest.mark.parametrize("x_shape,w_shape,kw", FORMS, ids=[str(i) for i in range(len(FORMS))])
@pytest.mark.parametrize("kind", ["numpy", "torch"])
@pytest.mark.parametrize("bias", [True, False])
def test_conv2d_matches_torch(rng, x_shape, w_shape, kw, kind, bias):
    x, w, b = data(rng, x_shape, w_shape, bias)
    ref, mag = reference(x, w, b, **kw)
    if kind == "torch":
        y = fastconv.conv2d(torch.from_numpy(x), torch.from_numpy(w), None if b is None else torch.from_numpy(b), **kw)
        assert isinstance(y, torch.Tensor) and y.dtype == torch.float32
    else:
        y = fastconv.conv2d(x, w, b, **kw)
        assert isinstance(y, np.ndarray) and y.dtype == np.float32
    assert normwise_error(to_numpy(y), ref, mag) <= TOL
    # torch's own float32 result has the same shape: the argument forms mean the same thing
    t = F.conv2d(torch.from_numpy(x), torch.from_numpy(w), None if b is None else torch.from_numpy(b), **kw)
    assert tuple(t.shape) == tuple(y.shape)


def test_positional_and_keyword_names_are_torchs(rng):
    x, w, b = data(rng, (1, 4, 10, 10), (4, 2, 3, 3))
    ref, mag = reference(x, w, b, 2, 1, 1, 2)
    y1 = fastconv.conv2d(x, w, b, 2, 1, 1, 2)
    y2 = fastconv.conv2d(input=x, weight=w, bias=b, stride=2, padding=1, dilation=1, groups=2)
    assert normwise_error(y1, ref, mag) <= TOL
    np.testing.assert_array_equal(y1, y2)


@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_unbatched(rng, kind):
    x, w, b = data(rng, (3, 9, 8), (4, 3, 3, 3))
    ref, mag = reference(x[None], w, b, padding=1)
    if kind == "torch":
        y = fastconv.conv2d(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b), padding=1)
        assert isinstance(y, torch.Tensor)
    else:
        y = fastconv.conv2d(x, w, b, padding=1)
    assert tuple(y.shape) == (4, 9, 8)
    assert normwise_error(to_numpy(y)[None], ref, mag) <= TOL


def test_non_contiguous_inputs_are_read_correctly(rng):
    x, w, b = data(rng, (2, 5, 12, 10), (6, 5, 3, 3))
    ref, mag = reference(x, w, b, padding=1)
    # the same values through four non-contiguous layouts
    xt = torch.from_numpy(x)
    views = [
        torch.from_numpy(np.ascontiguousarray(x.transpose(0, 1, 3, 2))).transpose(2, 3),  # tensor view
        xt.contiguous(memory_format=torch.channels_last),                                   # channels_last
        np.ascontiguousarray(x.transpose(0, 1, 3, 2)).transpose(0, 1, 3, 2),                 # numpy view
        np.repeat(x, 2, axis=3)[..., ::2],                                                    # strided slice
    ]
    for v in views:
        assert not (v.is_contiguous() if isinstance(v, torch.Tensor) else v.flags.c_contiguous)
        before = np.array(to_numpy(v), copy=True)
        y = fastconv.conv2d(v, w, b, padding=1)
        assert normwise_error(to_numpy(y), ref, mag) <= TOL
        np.testing.assert_array_equal(to_numpy(v), before)  # the input is never written
    # a non-contiguous weight too
    wt = np.ascontiguousarray(w.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)
    assert not wt.flags.c_contiguous
    assert normwise_error(fastconv.conv2d(x, wt, b, padding=1), ref, mag) <= TOL


def test_tensor_input_is_read_in_place_and_result_is_a_fresh_tensor(rng):
    x, w, b = data(rng, (1, 3, 8, 8), (4, 3, 3, 3))
    xt = torch.from_numpy(x)
    y = fastconv.conv2d(xt, torch.from_numpy(w), torch.from_numpy(b))
    assert y.is_contiguous() and not y.requires_grad
    # an input that requires grad is accepted (inference only: no graph is recorded)
    y2 = fastconv.conv2d(xt.clone().requires_grad_(), torch.from_numpy(w), torch.from_numpy(b))
    assert not y2.requires_grad
    torch.testing.assert_close(y, y2, rtol=0, atol=0)


@pytest.mark.parametrize("algorithm", ["direct", "im2col", "winograd", "fft"])
def test_forced_algorithm(rng, algorithm):
    x, w, b = data(rng, (1, 8, 14, 14), (8, 8, 3, 3))
    ref, mag = reference(x, w, b, padding=1)
    y = fastconv.conv2d(x, w, b, padding=1, algorithm=algorithm)
    assert normwise_error(y, ref, mag) <= TOL


def test_threads_do_not_change_the_result(rng):
    x, w, b = data(rng, (2, 16, 20, 20), (24, 16, 3, 3))
    y1 = fastconv.conv2d(x, w, b, padding=1, threads=1)
    y2 = fastconv.conv2d(x, w, b, padding=1, threads=2)
    np.testing.assert_array_equal(y1, y2)


def test_small_workspace_limit_still_right_or_refused(rng):
    x, w, b = data(rng, (1, 16, 30, 30), (16, 16, 3, 3))
    ref, mag = reference(x, w, b, padding=1)
    y = fastconv.conv2d(x, w, b, padding=1, workspace_limit=64 << 10)
    assert normwise_error(y, ref, mag) <= TOL
    with pytest.raises(fastconv.Error, match="workspace_limit"):
        fastconv.conv2d(x, w, b, padding=1, algorithm="fft", workspace_limit=1)


# --- bad inputs --------------------------------------------------------------------------------

def _ok(rng):
    return data(rng, (1, 4, 8, 8), (6, 4, 3, 3))


BAD = [
    # (what, mutate(x, w, b, kwargs) -> (x, w, b, kwargs), message regex)
    ("float64 input", lambda x, w, b, k: (x.astype(np.float64), w, b, k), "input: expected dtype float32, got float64"),
    ("int32 weight", lambda x, w, b, k: (x, w.astype(np.int32), b, k), "weight: expected dtype float32"),
    ("float16 tensor", lambda x, w, b, k: (torch.from_numpy(x).half(), w, b, k), "input: expected dtype torch.float32"),
    ("double tensor bias", lambda x, w, b, k: (x, w, torch.from_numpy(b).double(), k), "bias: expected dtype"),
    ("meta device", lambda x, w, b, k: (torch.empty(1, 4, 8, 8, device="meta"), w, b, k), "expected a CPU tensor"),
    ("list input", lambda x, w, b, k: (x.tolist(), w, b, k), "numpy.ndarray or a torch.Tensor, got list"),
    ("rank 2 input", lambda x, w, b, k: (x[0, 0], w, b, k), r"Expected 3D \(unbatched\) or 4D \(batched\) input"),
    ("rank 5 input", lambda x, w, b, k: (x[None], w, b, k), r"Expected 3D \(unbatched\) or 4D"),
    ("rank 3 weight", lambda x, w, b, k: (x, w[0], b, k), "Expected a 4D weight"),
    ("channel mismatch", lambda x, w, b, k: (x[:, :3].copy(), w, b, k), "expected input.* to have 4 channels, but got 3"),
    ("bias size", lambda x, w, b, k: (x, w, b[:5].copy(), k), "expected bias to be 1-dimensional with 6 elements"),
    ("groups do not divide", lambda x, w, b, k: (x, w, b, dict(k, groups=4)), "divisible by 4|channels"),
    ("groups 0", lambda x, w, b, k: (x, w, b, dict(k, groups=0)), "non-positive groups"),
    ("stride 0", lambda x, w, b, k: (x, w, b, dict(k, stride=0)), "non-positive stride"),
    ("stride triple", lambda x, w, b, k: (x, w, b, dict(k, stride=(1, 1, 1))), "stride must be an int or a pair"),
    ("stride float", lambda x, w, b, k: (x, w, b, dict(k, stride=1.5)), "stride must be an int or a pair"),
    ("dilation 0", lambda x, w, b, k: (x, w, b, dict(k, dilation=(1, 0))), "dilation should be greater than zero"),
    ("negative padding", lambda x, w, b, k: (x, w, b, dict(k, padding=-1)), "negative padding"),
    ("padding string", lambda x, w, b, k: (x, w, b, dict(k, padding="full")), "Invalid padding string 'full'"),
    ("same strided", lambda x, w, b, k: (x, w, b, dict(k, padding="same", stride=2)), "not supported for strided"),
    ("kernel too big", lambda x, w, b, k: (x[:, :, :2, :2].copy(), w, b, k), "Kernel size can't be greater"),
    ("algorithm name", lambda x, w, b, k: (x, w, b, dict(k, algorithm="magic")), "algorithm must be one of"),
    ("forced winograd strided", lambda x, w, b, k: (x, w, b, dict(k, algorithm="winograd", stride=2)), "winograd"),
    ("threads -1", lambda x, w, b, k: (x, w, b, dict(k, threads=-1)), "threads"),
    ("padding_mode name", lambda x, w, b, k: (x, w, b, dict(k, padding_mode="mirror")), "padding_mode must be one of"),
    ("residual shape", lambda x, w, b, k: (x, w, b, dict(k, residual=np.zeros((1, 6, 5, 5), np.float32))),
     "residual"),
]


@pytest.mark.parametrize("what,mutate,message", BAD, ids=[b[0] for b in BAD])
def test_bad_input_raises_fastconv_error(rng, what, mutate, message):
    x, w, b = _ok(rng)
    assert fastconv.conv2d(x, w, b).shape == (1, 6, 6, 6)  # the unmutated call works
    x, w, b, kw = mutate(x, w, b, {})
    with pytest.raises(fastconv.Error, match=message) as e:
        fastconv.conv2d(x, w, b, **kw)
    assert isinstance(e.value, ValueError)


def test_error_is_a_value_error_from_cpp():
    assert issubclass(fastconv.Error, ValueError)
    # a message that only the C++ library writes comes through as fastconv.Error
    with pytest.raises(fastconv.Error, match="plan"):
        p = fastconv.Plan((1, 2, 5, 5), (2, 2, 3, 3))
        q = fastconv.Plan((1, 2, 6, 6), (2, 2, 3, 3))
        p.execute(np.zeros((1, 2, 5, 5), np.float32), q.pack_weights(np.zeros((2, 2, 3, 3), np.float32)))


# --- post-ops and padding modes ------------------------------------------------------------------

ACTIVATIONS = {
    "relu": torch.relu,
    "relu6": F.relu6,
    "leaky_relu:0.1": lambda y: F.leaky_relu(y, 0.1),
    "clamp:-0.5,2": lambda y: torch.clamp(y, -0.5, 2.0),
    "silu": F.silu,
    "hardswish": F.hardswish,
    "gelu": lambda y: F.gelu(y, approximate="tanh"),
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
}


@pytest.mark.parametrize("activation", list(ACTIVATIONS))
@pytest.mark.parametrize("with_residual", [False, True])
def test_fused_activation_and_residual(rng, activation, with_residual):
    x, w, b = data(rng, (2, 6, 10, 9), (8, 6, 3, 3))
    r = rng.standard_normal((2, 8, 10, 9)).astype(np.float32) if with_residual else None
    ref, mag = reference(x, w, b, padding=1)
    pre = torch.from_numpy(ref) + (torch.from_numpy(r).double() if r is not None else 0)
    expected = ACTIVATIONS[activation](pre).numpy()
    y = fastconv.conv2d(x, w, b, padding=1, activation=activation, residual=r)
    scale = mag + (np.abs(r).max() if r is not None else 0)
    assert normwise_error(y, expected, scale) <= TOL
    # the activation really ran: the plain conv differs
    assert np.abs(y - fastconv.conv2d(x, w, b, padding=1)).max() > 1e-3


def test_residual_unbatched_and_tensor(rng):
    x, w, b = data(rng, (4, 7, 7), (4, 4, 1, 1))
    r = rng.standard_normal((4, 7, 7)).astype(np.float32)
    y = fastconv.conv2d(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b), residual=torch.from_numpy(r),
                        activation="relu")
    expected = torch.relu(F.conv2d(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b)) + torch.from_numpy(r))
    assert isinstance(y, torch.Tensor) and y.shape == (4, 7, 7)
    torch.testing.assert_close(y, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
@pytest.mark.parametrize("padding", [1, (2, 1), "same"])
def test_padding_modes_match_nn_conv2d(rng, mode, padding):
    layer = torch.nn.Conv2d(5, 6, 3, padding=padding, padding_mode=mode)
    x = torch.from_numpy(rng.standard_normal((2, 5, 9, 8)).astype(np.float32))
    with torch.no_grad():
        expected = layer(x)
    y = fastconv.conv2d(x, layer.weight.detach(), layer.bias.detach(), padding=padding, padding_mode=mode)
    torch.testing.assert_close(y, expected, rtol=1e-4, atol=1e-4)
    zeros = fastconv.conv2d(x, layer.weight.detach(), layer.bias.detach(), padding=padding)
    assert (y - zeros).abs().max() > 1e-3  # the mode changed the border


def test_plan_with_residual(rng):
    x, w, b = data(rng, (1, 8, 12, 12), (8, 8, 3, 3))
    r = rng.standard_normal((1, 8, 12, 12)).astype(np.float32)
    plan = fastconv.Plan(x.shape, w.shape, padding=1, activation="relu6", residual=True)
    packed = plan.pack_weights(w, b)
    ref, mag = reference(x, w, b, padding=1)
    y = plan.execute(x, packed, residual=r)
    assert normwise_error(y, np.clip(ref + r, 0, 6), mag + np.abs(r).max()) <= TOL
    with pytest.raises(fastconv.Error, match="residual"):
        plan.execute(x, packed)
    with pytest.raises(fastconv.Error, match="residual"):
        plan.execute(x, packed, residual=r[:, :4].copy())
    with pytest.raises(fastconv.Error, match="activation|swish"):
        fastconv.Plan(x.shape, w.shape, activation="swish")
