"""conv2d, Plan and find_algorithms: torch.nn.functional.conv2d's argument forms and checks, in Python,
over the NumPy-only extension. Every check happens before anything is computed, so an error leaves
every output untouched."""

import collections
import operator
import sys
import threading

import numpy as np

from . import _fastconv as _C
from ._fastconv import Error

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
_ALGORITHMS = ("auto", "direct", "im2col", "winograd", "fft")


# ---------------------------------------------------------------------------------------------------
# Arguments


def _int(value, name):
    if isinstance(value, bool):
        raise Error(f"{name} must be an int or a pair of ints, got {value!r}")
    try:
        return operator.index(value)
    except TypeError:
        raise Error(f"{name} must be an int or a pair of ints, got {value!r}") from None


def _pair(value, name):
    """An int or a pair of ints (a one-element sequence repeats, as torch expands it)."""
    if isinstance(value, (tuple, list)):
        if len(value) == 1:
            v = _int(value[0], name)
            return v, v
        if len(value) != 2:
            raise Error(f"{name} must be an int or a pair of ints, got {value!r}")
        return _int(value[0], name), _int(value[1], name)
    v = _int(value, name)
    return v, v


def _post_ops_args(activation, residual, padding_mode):
    """The post-op options as the extension takes them (padding_mode goes into the problem)."""
    if padding_mode not in _PADDING_MODES:
        raise Error(f"padding_mode must be one of {', '.join(_PADDING_MODES)}, got {padding_mode!r}")
    if activation is not None and not isinstance(activation, str):
        raise Error(f"activation must be None or a name such as 'relu', 'leaky_relu:0.1', 'clamp:0,6', "
                    f"got {activation!r}")
    if activation in ("none", ""):
        activation = None
    return {"activation": activation or "none", "residual": bool(residual)}


def _check_steps(groups, sh, sw, dh, dw):
    """torch's checks of groups, stride and dilation, shared by conv2d and conv_transpose2d."""
    if groups <= 0:
        raise Error(f"non-positive groups is not supported (groups={groups})")
    if sh <= 0 or sw <= 0:
        raise Error(f"non-positive stride is not supported (stride={(sh, sw)})")
    if dh <= 0 or dw <= 0:
        raise Error(f"dilation should be greater than zero (dilation={(dh, dw)})")


def _check_ranks(op, input_shape, weight_shape, weight_layout):
    """torch's rank errors, for conv2d and conv_transpose2d (`op`, whose weight is `weight_layout`)."""
    if len(input_shape) != 4:
        raise Error(f"Expected 3D (unbatched) or 4D (batched) input to {op}, but got input of size: "
                    f"{list(input_shape)}")
    if len(weight_shape) != 4:
        raise Error(f"Expected a 4D weight {weight_layout} for {op}, but got weight of size: {list(weight_shape)}")


def _problem_key(input_shape, weight_shape, stride, padding, dilation, groups):
    """Checks the shapes and arguments the way torch does and returns the 16 numbers of the problem
    (N, C, H, W, K, R, S, sh, sw, top, bottom, left, right, dh, dw, groups)."""
    _check_ranks("conv2d", input_shape, weight_shape, "[out_channels, in_channels/groups, kH, kW]")
    n, c, h, w = (int(v) for v in input_shape)
    k, cg, r, s = (int(v) for v in weight_shape)
    groups = _int(groups, "groups")
    sh, sw = _pair(stride, "stride")
    dh, dw = _pair(dilation, "dilation")
    _check_steps(groups, sh, sw, dh, dw)
    if min(k, cg, r, s) <= 0:
        raise Error(f"weight of size {list(weight_shape)}: every dimension must be positive")
    if k % groups != 0:
        raise Error(f"Given groups={groups}, expected weight to be divisible by {groups} at dimension 0, but got "
                    f"weight of size {list(weight_shape)} instead")
    if c != cg * groups:
        raise Error(f"Given groups={groups}, weight of size {list(weight_shape)}, expected input{list(input_shape)} "
                    f"to have {cg * groups} channels, but got {c} channels instead")
    if min(n, h, w) <= 0:
        raise Error(f"input of size {list(input_shape)}: batch, height and width must be positive")
    if isinstance(padding, str):
        if padding == "valid":
            pads = (0, 0, 0, 0)
        elif padding == "same":
            if sh != 1 or sw != 1:
                raise Error("padding='same' is not supported for strided convolutions")
            # PyTorch: total dil*(k-1), the odd pixel to the bottom/right.
            th, tw = dh * (r - 1), dw * (s - 1)
            pads = (th // 2, th - th // 2, tw // 2, tw - tw // 2)
        else:
            raise Error(f"Invalid padding string {padding!r}: expected 'same', 'valid', an int or a pair of ints")
    else:
        ph, pw = _pair(padding, "padding")
        if ph < 0 or pw < 0:
            raise Error(f"negative padding is not supported (padding={(ph, pw)})")
        pads = (ph, ph, pw, pw)
    padded_h, padded_w = h + pads[0] + pads[1], w + pads[2] + pads[3]
    eff_r, eff_s = dh * (r - 1) + 1, dw * (s - 1) + 1
    if padded_h < eff_r or padded_w < eff_s:
        raise Error(f"Calculated padded input size per channel: ({padded_h} x {padded_w}). Kernel size: "
                    f"({eff_r} x {eff_s}). Kernel size can't be greater than actual input size")
    return (n, c, h, w, k, r, s, sh, sw) + pads + (dh, dw, groups)


def _make_problem(key, padding_mode="zeros"):
    p = _C.Problem()
    (p.batch, p.in_channels, p.in_height, p.in_width, p.out_channels, p.kernel_height, p.kernel_width,
     p.stride_h, p.stride_w, p.pad_top, p.pad_bottom, p.pad_left, p.pad_right, p.dilation_h, p.dilation_w,
     p.groups) = key
    if padding_mode != "zeros":
        p.padding_mode = padding_mode
    p.validate()
    return p


def _output_shape(key):
    n, _, h, w, k, r, s, sh, sw, pt, pb, pl, pr, dh, dw, _ = key
    return (n, k, (h + pt + pb - dh * (r - 1) - 1) // sh + 1, (w + pl + pr - dw * (s - 1) - 1) // sw + 1)


def _options(algorithm, implementation, mode, workspace_limit, threads):
    if algorithm not in _ALGORITHMS:
        raise Error(f"algorithm must be one of {', '.join(_ALGORITHMS)}, got {algorithm!r}")
    if mode not in ("estimate", "measure"):
        raise Error(f"mode must be 'estimate' or 'measure', got {mode!r}")
    if workspace_limit is None:
        workspace_limit = _C.default_workspace_limit()
    workspace_limit = _int(workspace_limit, "workspace_limit")
    if workspace_limit < 0:
        raise Error(f"workspace_limit must be >= 0 bytes, got {workspace_limit}")
    threads = 0 if threads is None else _int(threads, "threads")
    if threads < 0:
        raise Error(f"threads must be None (all) or >= 1, got {threads}")
    if implementation is not None and not isinstance(implementation, str):
        raise Error(f"implementation must be None or a name prefix such as 'winograd_f2x2', got {implementation!r}")
    return {"algorithm": algorithm, "mode": mode, "workspace_limit": workspace_limit, "threads": threads,
            "implementation": implementation or ""}


# ---------------------------------------------------------------------------------------------------
# Arrays and tensors


def _torch_tensor_type():
    torch = sys.modules.get("torch")  # only when the caller imported it: this package never does
    return getattr(torch, "Tensor", None)


def _as_array(x, name, allow_none=False):
    """(float32 C-contiguous ndarray, is_tensor) sharing memory with x where it is contiguous."""
    if x is None and allow_none:
        return None, False
    if isinstance(x, np.ndarray):
        if x.dtype != np.float32:
            raise Error(f"{name}: expected dtype float32, got {x.dtype}")
        return (x if x.flags.c_contiguous else np.ascontiguousarray(x)), False
    tensor = _torch_tensor_type()
    if tensor is not None and isinstance(x, tensor):
        if x.device.type != "cpu":
            raise Error(f"{name}: expected a CPU tensor, got a tensor on device '{x.device}'")
        if str(x.dtype) != "torch.float32":
            raise Error(f"{name}: expected dtype torch.float32, got {x.dtype}")
        if str(x.layout) != "torch.strided":
            raise Error(f"{name}: expected a strided (dense) tensor, got layout {x.layout}")
        x = x.detach()
        if not x.is_contiguous():
            x = x.contiguous()  # the one copy a non-contiguous tensor costs
        return x.numpy(), True
    raise Error(f"{name}: expected a numpy.ndarray or a torch.Tensor, got {type(x).__name__}")


def _new_output(shape, like_tensor):
    if like_tensor:
        import torch  # the input was a tensor, so torch is loaded already

        t = torch.empty(shape, dtype=torch.float32)
        return t, t.numpy()
    a = np.empty(shape, dtype=np.float32)
    return a, a


# Plans that conv2d made, keyed by problem and options; bounded, least recently used goes first.
_plan_cache = collections.OrderedDict()
_plan_cache_lock = threading.Lock()
_PLAN_CACHE_SIZE = 128


def _cached_plan(key, padding_mode, post, options):
    cache_key = (key, padding_mode, tuple(sorted(post.items())), tuple(sorted(options.items())))
    with _plan_cache_lock:
        plan = _plan_cache.get(cache_key)
        if plan is not None:
            _plan_cache.move_to_end(cache_key)
            return plan
    plan = _C.Plan(_make_problem(key, padding_mode), **options, **post)
    with _plan_cache_lock:
        _plan_cache[cache_key] = plan
        while len(_plan_cache) > _PLAN_CACHE_SIZE:
            _plan_cache.popitem(last=False)
    return plan


def _execute(plan, x, packed, y, r):
    if r is None:
        plan.execute(x, packed, y)
    else:
        plan.execute(x, packed, y, r)


# ---------------------------------------------------------------------------------------------------
# conv2d


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *, padding_mode="zeros",
           activation=None, residual=None, algorithm="auto", threads=None, workspace_limit=None):
    """torch.nn.functional.conv2d on fastconv, with the same argument names and forms:
    input (N, C, H, W) or unbatched (C, H, W); weight (K, C/groups, kH, kW); bias (K,) or None;
    stride, dilation: an int or a pair; padding: an int, a pair, 'same' or 'valid'.

    Keyword-only: padding_mode ('zeros', 'reflect', 'replicate', 'circular', as nn.Conv2d's);
    activation fused after the bias ('relu', 'relu6', 'leaky_relu:A', 'clamp:LO,HI', 'silu',
    'hardswish', 'gelu' (tanh form), 'sigmoid', 'tanh'); residual, a tensor of the output's shape
    added before the activation; algorithm ('auto', 'direct', 'im2col', 'winograd', 'fft');
    threads (None: all); workspace_limit in bytes (None: the library's default).

    NumPy float32 in, NumPy out; CPU float32 tensors in, a tensor out (no gradient). Plans are
    cached per shape; the weights are packed on every call (use Plan to pack them once)."""
    x, x_is_tensor = _as_array(input, "input")
    w, _ = _as_array(weight, "weight")
    b, _ = _as_array(bias, "bias", allow_none=True)
    unbatched = x.ndim == 3
    if unbatched:
        x = x.reshape((1,) + x.shape)
    key = _problem_key(x.shape, w.shape, stride, padding, dilation, groups)
    if b is not None and b.shape != (key[4],):
        raise Error(f"Given weight of size {list(w.shape)}, expected bias to be 1-dimensional with {key[4]} "
                    f"elements, but got bias of size {list(b.shape)} instead")
    post = _post_ops_args(activation, residual is not None, padding_mode)
    out_shape = _output_shape(key)
    r = None
    if residual is not None:
        r, _ = _as_array(residual, "residual")
        want = out_shape[1:] if unbatched else out_shape
        if r.shape != tuple(want):
            raise Error(f"residual: expected the output's size {list(want)}, got {list(r.shape)}")
        r = r.reshape(out_shape)
    plan = _cached_plan(key, padding_mode, post, _options(algorithm, None, "estimate", workspace_limit, threads))
    packed = plan.pack_weights(w, b)
    result, y = _new_output(out_shape[1:] if unbatched else out_shape, x_is_tensor)
    _execute(plan, x, packed, y.reshape(out_shape), r)
    return result


# ---------------------------------------------------------------------------------------------------
# Plan


class Plan:
    """A convolution planned once for one input shape, weight shape and set of arguments.

    Plan(input_shape, weight_shape, stride=1, padding=0, dilation=1, groups=1, *, padding_mode='zeros',
         activation=None, residual=False, algorithm='auto', implementation=None, mode='estimate',
         workspace_limit=None, threads=None)

    input_shape may be unbatched (C, H, W); execute then takes and returns unbatched data. residual=True
    plans a fused residual add: execute then needs residual=. Immutable; execute may run from many
    Python threads at once (the GIL is released while it computes)."""

    def __init__(self, input_shape, weight_shape, stride=1, padding=0, dilation=1, groups=1, *,
                 padding_mode="zeros", activation=None, residual=False, algorithm="auto", implementation=None,
                 mode="estimate", workspace_limit=None, threads=None):
        input_shape, weight_shape = tuple(input_shape), tuple(weight_shape)
        self._unbatched = len(input_shape) == 3
        batched = (1,) + input_shape if self._unbatched else input_shape
        self._key = _problem_key(batched, weight_shape, stride, padding, dilation, groups)
        self._post = _post_ops_args(activation, residual, padding_mode)
        self._residual = bool(residual)
        options = _options(algorithm, implementation, mode, workspace_limit, threads)
        self._plan = _C.Plan(_make_problem(self._key, padding_mode), **options, **self._post)
        self._batched_out = _output_shape(self._key)
        self.input_shape = input_shape
        self.weight_shape = weight_shape
        self.output_shape = self._batched_out[1:] if self._unbatched else self._batched_out

    algorithm = property(lambda self: self._plan.algorithm, doc="'direct', 'im2col', 'winograd' or 'fft'")
    implementation = property(lambda self: self._plan.implementation, doc="e.g. 'winograd_f4x4_3x3'")
    workspace_bytes = property(lambda self: self._plan.workspace_bytes, doc="scratch memory one execute uses")
    threads = property(lambda self: self._plan.threads, doc="threads one execute uses")
    problem = property(lambda self: str(self._plan.problem), doc="the canonical problem name")

    def describe(self):
        """Algorithm, tiles, blocking, memory, and why the planner chose it."""
        return self._plan.describe()

    def __repr__(self):
        return f"fastconv.Plan({self.problem}, {self.implementation})"

    def pack_weights(self, weight, bias=None):
        """The weights (K, C/groups, kH, kW) and bias (K,) prepared once for this plan."""
        w, _ = _as_array(weight, "weight")
        b, _ = _as_array(bias, "bias", allow_none=True)
        if w.shape != self.weight_shape:
            raise Error(f"weight: this plan expects size {list(self.weight_shape)}, got {list(w.shape)}")
        if b is not None and b.shape != (self._key[4],):
            raise Error(f"Given weight of size {list(w.shape)}, expected bias to be 1-dimensional with "
                        f"{self._key[4]} elements, but got bias of size {list(b.shape)} instead")
        return self._plan.pack_weights(w, b)

    def execute(self, input, packed, out=None, residual=None):
        """Runs the convolution; writes into `out` when given (float32, contiguous, the output shape) and
        returns it, else returns a new array or tensor of the input's kind."""
        x, x_is_tensor = _as_array(input, "input")
        if x.shape != self.input_shape:
            raise Error(f"input: this plan expects size {list(self.input_shape)}, got {list(x.shape)}")
        if not isinstance(packed, _C.PackedWeights):
            raise Error(f"packed: expected the PackedWeights of Plan.pack_weights, got {type(packed).__name__}")
        r = None
        if self._residual:
            if residual is None:
                raise Error("residual: this plan fuses a residual add; pass residual=")
            r, _ = _as_array(residual, "residual")
            if r.shape != self.output_shape:
                raise Error(f"residual: expected the output's size {list(self.output_shape)}, got {list(r.shape)}")
            r = r.reshape(self._batched_out)
        elif residual is not None:
            raise Error("residual: this plan was made without residual=True")
        if out is None:
            result, y = _new_output(self.output_shape, x_is_tensor)
        else:
            result = out
            y = _writable_output(out, self.output_shape)
        _execute(self._plan, x.reshape(self._batched_out[:1] + x.shape[-3:]), packed, y.reshape(self._batched_out), r)
        return result


def _writable_output(out, shape):
    """The ndarray view of a caller's output: float32, contiguous, exactly `shape`; never a copy (the
    result must land in the caller's memory)."""
    if isinstance(out, np.ndarray):
        y = out
    else:
        tensor = _torch_tensor_type()
        if tensor is None or not isinstance(out, tensor):
            raise Error(f"out: expected a numpy.ndarray or a torch.Tensor, got {type(out).__name__}")
        if out.device.type != "cpu":
            raise Error(f"out: expected a CPU tensor, got a tensor on device '{out.device}'")
        if str(out.dtype) != "torch.float32":
            raise Error(f"out: expected dtype torch.float32, got {out.dtype}")
        if out.requires_grad:
            raise Error("out: a tensor that requires grad cannot be written in place")
        if not out.is_contiguous():
            raise Error("out: expected a contiguous tensor")
        y = out.numpy()
    if y.dtype != np.float32:
        raise Error(f"out: expected dtype float32, got {y.dtype}")
    if not y.flags.c_contiguous:
        raise Error("out: expected a C-contiguous array")
    if not y.flags.writeable:
        raise Error("out: the array is read-only")
    if y.shape != tuple(shape):
        raise Error(f"out: expected size {list(shape)}, got {list(y.shape)}")
    return y


# ---------------------------------------------------------------------------------------------------
# find_algorithms

Candidate = collections.namedtuple(
    "Candidate", "algorithm implementation applicable reason time_ms measured workspace_bytes")
Candidate.__doc__ = "One row of the planner's ranking: time_ms estimated or measured; reason says why it declined."


def find_algorithms(input_shape, weight_shape, stride=1, padding=0, dilation=1, groups=1, *, padding_mode="zeros",
                    activation=None, residual=False, algorithm="auto", implementation=None, mode="estimate",
                    workspace_limit=None, threads=None):
    """Every implementation for this convolution, applicable ones first, fastest first (like cuDNN's
    find and `fastconv plan`), as Candidate tuples."""
    input_shape = tuple(input_shape)
    batched = (1,) + input_shape if len(input_shape) == 3 else input_shape
    key = _problem_key(batched, tuple(weight_shape), stride, padding, dilation, groups)
    post = _post_ops_args(activation, residual, padding_mode)
    options = _options(algorithm, implementation, mode, workspace_limit, threads)
    rows = _C.find_algorithms(_make_problem(key, padding_mode), **options, **post)
    return [Candidate(**row) for row in rows]
