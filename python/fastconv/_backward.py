"""The backward directions from Python: conv_transpose2d (torch.nn.functional.conv_transpose2d's
semantics) and the gradient helpers fastconv.torch's autograd runs, all on backward plans of the
forward convolution (design.md section 11). NumPy only; tensors are recognised as in _api."""

import collections
import threading

import numpy as np

from . import _fastconv as _C
from ._api import Error, _as_array, _check_ranks, _check_steps, _int, _make_problem, _new_output, _options, _pair, _problem_key

# Backward plans keyed by (direction, problem key, options); bounded, least recently used goes first.
_plans = collections.OrderedDict()
_plans_lock = threading.Lock()
_PLAN_CACHE_SIZE = 256


def backward_plan(direction, key, algorithm="auto", threads=None, workspace_limit=None):
    """The cached plan of `direction` ('backward-data' or 'backward-weights') for the forward problem
    `key` (the 16 numbers of _api._problem_key), zero padding."""
    options = _options(algorithm, None, "estimate", workspace_limit, threads)
    # Backward-data packs the weights on every call (training steps, conv_transpose2d): ranked so.
    options["weights_change"] = direction == "backward-data"
    cache_key = (direction, key, tuple(sorted(options.items())))
    with _plans_lock:
        plan = _plans.get(cache_key)
        if plan is not None:
            _plans.move_to_end(cache_key)
            return plan
    plan = _C.Plan(_make_problem(key), direction=direction, **options)
    with _plans_lock:
        _plans[cache_key] = plan
        while len(_plans) > _PLAN_CACHE_SIZE:
            _plans.popitem(last=False)
    return plan


def clear_backward_plans():
    with _plans_lock:
        _plans.clear()


def backward_data(key, grad_output, weight, bias=None, out=None, **options):
    """dx [N, C, H, W] of the forward problem `key` from dy [N, K, P, Q] and w [K, C/g, R, S]
    (float32 C-contiguous arrays); bias [C] or None is added to dx. Writes `out` when given."""
    plan = backward_plan("backward-data", key, **options)
    packed = plan.pack_weights(weight, bias)
    if out is None:
        out = np.empty(key[:4], dtype=np.float32)
    plan.execute_backward_data(grad_output, packed, out)
    return out


def backward_weights(key, input, grad_output, grad_weight, grad_bias=None, **options):
    """dw [K, C/g, R, S] (and db [K] when grad_bias is an array) of the forward problem `key`."""
    plan = backward_plan("backward-weights", key, **options)
    plan.execute_backward_weights(input, grad_output, grad_weight, grad_bias)


# ---------------------------------------------------------------------------------------------------
# conv_transpose2d


def transposed_problem(input_shape, weight_shape, stride, padding, output_padding, groups, dilation):
    """Checks a transposed convolution the way torch does and returns (key, out_shape, in_rows, in_cols):
    key is the forward problem whose backward-data is this transposed convolution (its input is the
    transposed convolution's output, [N, C_out, H_out, W_out]); in_rows x in_cols is the size of the
    forward's output, which exceeds the given input's H x W when output_padding >= stride (allowed by
    torch when output_padding < dilation): the input is then zero-padded to it."""
    _check_ranks("conv_transpose2d", input_shape, weight_shape, "[in_channels, out_channels/groups, kH, kW]")
    n, c_in, h, w = (int(v) for v in input_shape)
    wk, c_out_g, r, s = (int(v) for v in weight_shape)
    groups = _int(groups, "groups")
    sh, sw = _pair(stride, "stride")
    ph, pw = _pair(padding, "padding")
    oph, opw = _pair(output_padding, "output_padding")
    dh, dw = _pair(dilation, "dilation")
    _check_steps(groups, sh, sw, dh, dw)
    if ph < 0 or pw < 0:
        raise Error(f"negative padding is not supported (padding={(ph, pw)})")
    if oph < 0 or opw < 0:
        raise Error(f"negative output_padding is not supported (output_padding={(oph, opw)})")
    for op, st, dl, axis in ((oph, sh, dh, "height"), (opw, sw, dw, "width")):
        if op >= st and op >= dl:
            raise Error(f"output_padding={(oph, opw)}: output padding must be smaller than either stride "
                        f"{(sh, sw)} or dilation {(dh, dw)} (the {axis})")
    if min(wk, c_out_g, r, s) <= 0:
        raise Error(f"weight of size {list(weight_shape)}: every dimension must be positive")
    if c_in != wk:
        raise Error(f"Given transposed=1, weight of size {list(weight_shape)}, expected input{list(input_shape)} to "
                    f"have {wk} channels, but got {c_in} channels instead")
    if c_in % groups != 0:
        raise Error(f"Given groups={groups}, expected weight to be divisible by {groups} at dimension 0, but got "
                    f"weight of size {list(weight_shape)} instead")
    if min(n, h, w) <= 0:
        raise Error(f"input of size {list(input_shape)}: batch, height and width must be positive")
    out_h = (h - 1) * sh - 2 * ph + dh * (r - 1) + oph + 1
    out_w = (w - 1) * sw - 2 * pw + dw * (s - 1) + opw + 1
    if out_h <= 0 or out_w <= 0:
        raise Error(f"Given input size per channel: ({h} x {w}). Calculated output size per channel: "
                    f"({out_h} x {out_w}). Output size is too small")
    c_out = c_out_g * groups
    key = _problem_key((n, c_out, out_h, out_w), (c_in, c_out_g, r, s), (sh, sw), (ph, pw), (dh, dw), groups)
    rows = (out_h + 2 * ph - dh * (r - 1) - 1) // sh + 1
    cols = (out_w + 2 * pw - dw * (s - 1) - 1) // sw + 1
    return key, (n, c_out, out_h, out_w), rows, cols


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1, *,
                     algorithm="auto", threads=None, workspace_limit=None):
    """torch.nn.functional.conv_transpose2d on fastconv, with the same argument names, forms and
    checks: input (N, C_in, H, W) or unbatched (C_in, H, W); weight (C_in, C_out/groups, kH, kW);
    bias (C_out,) or None; stride, padding, output_padding, dilation: an int or a pair. The output is
    (N, C_out, (H-1)*stride - 2*padding + dilation*(kH-1) + output_padding + 1, ...).

    Computed as the backward-data (input gradient) of the forward convolution whose input is this
    output. Keyword-only: algorithm ('auto', 'direct', 'im2col', 'winograd', 'fft'), threads (None:
    all), workspace_limit in bytes. NumPy float32 in, NumPy out; CPU float32 tensors in, a tensor out
    (no gradient: fastconv.torch.ConvTranspose2d trains)."""
    x, x_is_tensor = _as_array(input, "input")
    w, _ = _as_array(weight, "weight")
    b, _ = _as_array(bias, "bias", allow_none=True)
    unbatched = x.ndim == 3
    if unbatched:
        x = x.reshape((1,) + x.shape)
    key, out_shape, rows, cols = transposed_problem(x.shape, w.shape, stride, padding, output_padding, groups,
                                                    dilation)
    if b is not None and b.shape != (out_shape[1],):
        raise Error(f"Given weight of size {list(w.shape)}, expected bias to be 1-dimensional with {out_shape[1]} "
                    f"elements, but got bias of size {list(b.shape)} instead")
    if (rows, cols) != x.shape[2:]:
        # output_padding >= stride (< dilation): the forward's output is larger; torch's extra rows are 0
        padded = np.zeros(x.shape[:2] + (rows, cols), dtype=np.float32)
        padded[:, :, :x.shape[2], :x.shape[3]] = x
        x = padded
    plan = backward_plan("backward-data", key, algorithm=algorithm, threads=threads, workspace_limit=workspace_limit)
    packed = plan.pack_weights(w, b)
    result, y = _new_output(out_shape[1:] if unbatched else out_shape, x_is_tensor)
    plan.execute_backward_data(x, packed, y.reshape(out_shape))
    return result
