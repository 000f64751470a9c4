"""fastconv.torch: fastconv inside PyTorch models (pure Python over the extension).

    layer = fastconv.torch.Conv2d(64, 64, 3, padding=1)   # a torch.nn.Conv2d running on fastconv
    fast = fastconv.torch.optimize(model)                  # an inference copy of a whole model
    print(fast.fastconv_report)                            # which layers moved, which stayed, and why

Conv2d plans once per input shape, packs its weights once per plan and repacks when the weight or
bias changes (their version counters, bumped by every in-place update under torch.no_grad();
`.data` edits bypass the counter: call `layer.repack()` after them). What fastconv cannot run
(another dtype or device, a padding mode or post-op this build lacks, a shape the planner refuses)
runs on torch instead, and the layer says so once (a warning). With autograd on, Conv2d trains on
fastconv's backward-data and backward-weights plans (_autograd.py; a padding mode other than zeros or
a post-op other than ReLU: the backward differentiates torch's own forward, recomputed), and so does
ConvTranspose2d (a torch.nn.ConvTranspose2d running on fastconv).
"""

import copy
import ctypes
import math
import operator
import os
import sys
import types
import warnings

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.modules.utils import _pair

from . import _fastconv as _C
from ._api import Error, _make_problem, _options, _output_shape, _post_ops_args, _problem_key
from ._autograd import ConvTranspose2d, conv2d_autograd, new_tensor

__all__ = ["AdaptiveAvgPool2d", "Conv2d", "ConvTranspose2d", "Linear", "MaxPool2d", "optimize", "OptimizeReport",
           "activation_of"]


# ---------------------------------------------------------------------------------------------------
# Activations: torch modules <-> fastconv post-op names


def activation_of(module):
    """The fastconv post-op name of an activation module, or None when fastconv has no exact match
    (e.g. nn.GELU() is the erf form; fastconv's gelu is the tanh form, nn.GELU(approximate='tanh'))."""
    if isinstance(module, nn.ReLU):
        return "relu"
    if isinstance(module, nn.ReLU6):  # before Hardtanh: ReLU6 is one
        return "relu6"
    if isinstance(module, nn.Hardtanh):
        return f"clamp:{float(module.min_val)!r},{float(module.max_val)!r}"
    if isinstance(module, nn.LeakyReLU):
        return f"leaky_relu:{float(module.negative_slope)!r}"
    if isinstance(module, nn.SiLU):
        return "silu"
    if isinstance(module, nn.Hardswish):
        return "hardswish"
    if isinstance(module, nn.GELU) and getattr(module, "approximate", "none") == "tanh":
        return "gelu"
    if isinstance(module, nn.Sigmoid):
        return "sigmoid"
    if isinstance(module, nn.Tanh):
        return "tanh"
    return None


def _torch_activation(name):
    """The torch function of a post-op name (for the fallback and the backward)."""
    if name is None:
        return None
    kind, _, args = name.partition(":")
    values = [float(v) for v in args.split(",")] if args else []
    F = torch.nn.functional
    table = {
        "relu": lambda y: F.relu(y),
        "relu6": lambda y: F.relu6(y),
        "leaky_relu": lambda y: F.leaky_relu(y, values[0] if values else 0.01),
        "clamp": lambda y: torch.clamp(y, values[0], values[1]),
        "silu": lambda y: F.silu(y),
        "hardswish": lambda y: F.hardswish(y),
        "gelu": lambda y: F.gelu(y, approximate="tanh"),
        "sigmoid": torch.sigmoid,
        "tanh": torch.tanh,
    }
    if kind not in table:
        raise Error(f"activation={name!r}: unknown (expected one of {', '.join(table)})")
    return table[kind]


# ---------------------------------------------------------------------------------------------------
# Conv2d


class _ShapeState:
    """What one input shape needs: the plan, its packed weights and which weights they are."""
    __slots__ = ("plan", "packed", "weights_key", "out_shape", "fused_residual")

    def __init__(self, plan, out_shape, fused_residual):
        self.plan, self.out_shape, self.fused_residual = plan, out_shape, fused_residual
        self.packed, self.weights_key = None, None


class _FastconvFunction(torch.autograd.Function):
    """Forward on fastconv; backward by differentiating the layer's torch forward, recomputed."""

    @staticmethod
    def forward(ctx, layer, input, residual, weight, bias):
        ctx.layer = layer
        ctx.save_for_backward(input, residual, weight, bias)
        return layer._fastconv_forward(input, residual)

    @staticmethod
    def backward(ctx, grad_output):
        input, residual, weight, bias = ctx.saved_tensors
        leaves = [t.detach().requires_grad_(need) if t is not None else None
                  for t, need in zip((input, residual, weight, bias), ctx.needs_input_grad[1:])]
        with torch.enable_grad():
            y = ctx.layer._torch_forward(leaves[0], leaves[1], leaves[2], leaves[3])
            wanted = [t for t, need in zip(leaves, ctx.needs_input_grad[1:]) if t is not None and need]
            grads = iter(torch.autograd.grad(y, wanted, grad_output)) if wanted else iter(())
        return (None,) + tuple(next(grads) if t is not None and need else None
                               for t, need in zip(leaves, ctx.needs_input_grad[1:]))


class Conv2d(nn.Conv2d):
    """torch.nn.Conv2d whose forward runs on fastconv. Same arguments, plus keyword-only:
    activation (a post-op name, see fastconv.conv2d) fused after the bias; algorithm ('auto', ...);
    implementation (a name prefix); mode ('estimate' or 'measure'); threads (None: torch's
    get_num_threads() when the plan is made); workspace_limit (bytes, None: the default).
    forward(input, residual=None): residual, of the output's shape, is added before the activation."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, padding_mode="zeros", device=None, dtype=None, *, activation=None, algorithm="auto",
                 implementation=None, mode="estimate", threads=None, workspace_limit=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, device, dtype)
        self._fc_generation = 0  # bumped whenever the plans are forgotten (compiled chains recompile)
        self._fc_states = {}
        self.activation = activation
        self.fastconv_options = _options(algorithm, implementation, mode, workspace_limit, 0)
        self._fc_threads = threads
        self._fc_states = {}
        self._fc_said = set()

    @property
    def activation(self):
        """The fused post-op name (None: none); setting it replans."""
        return self._fc_activation

    @activation.setter
    def activation(self, name):
        if name is not None:
            _torch_activation(name)  # refuses an unknown name now, not at the first forward
        self._fc_activation = name
        self._forget_plans()

    @classmethod
    def from_conv(cls, conv, *, activation=None, **options):
        """A fastconv Conv2d sharing `conv`'s parameters (no copy) and configuration."""
        layer = cls(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, conv.dilation,
                    conv.groups, conv.bias is not None, conv.padding_mode, device="meta", dtype=conv.weight.dtype,
                    activation=activation, **options)
        layer.weight = conv.weight
        layer.bias = conv.bias
        layer.train(conv.training)
        return layer

    def extra_repr(self):
        s = super().extra_repr()
        if self.activation:
            s += f", activation={self.activation!r}"
        return s + ", fastconv"

    def repack(self):
        """Forgets the packed weights (and plans): after editing the weights through `.data`."""
        self._forget_plans()

    def _forget_plans(self):
        self._fc_states.clear()
        self._fc_generation += 1

    def __setattr__(self, name, value):
        super().__setattr__(name, value)
        if name in ("weight", "bias") and "_fc_generation" in self.__dict__:
            self._fc_generation += 1  # new parameters: compiled chains look at these

    def __getstate__(self):
        # Plans and packed weights stay behind: a copy (deepcopy, pickle) plans again.
        state = self.__dict__.copy()
        state["_fc_states"] = {}
        return state

    # -- what fastconv cannot run --------------------------------------------------------------

    def _why_torch(self, input, residual):
        if not isinstance(input, torch.Tensor):
            return None  # torch's own error follows
        if not (input.is_cpu and self.weight.is_cpu):  # is_cpu: a tenth of the cost of device.type
            return f"device {input.device if not input.is_cpu else self.weight.device}"
        if input.dtype != torch.float32 or self.weight.dtype != torch.float32:
            return f"dtype {input.dtype if input.dtype != torch.float32 else self.weight.dtype} (fastconv runs float32)"
        if input.dim() not in (3, 4):
            return None
        if residual is not None and (residual.dtype != torch.float32 or not residual.is_cpu):
            return f"residual of dtype {residual.dtype} on {residual.device}"
        return None

    def _say_once(self, reason):
        if reason not in self._fc_said:
            self._fc_said.add(reason)
            warnings.warn(f"fastconv.torch.Conv2d({self.extra_repr()}): runs on torch: {reason}", stacklevel=3)

    # -- forward -------------------------------------------------------------------------------

    def forward(self, input, residual=None):
        reason = self._why_torch(input, residual)
        if reason is None and input.dim() in (3, 4):
            # Training (the weights change every step): plans ranked by packing plus executing.
            training = torch.is_grad_enabled() and (self.weight.requires_grad or input.requires_grad or
                                                    (self.bias is not None and self.bias.requires_grad) or
                                                    (residual is not None and residual.requires_grad))
            state = self._state(input.shape, residual is not None, training)
            if isinstance(state, str):
                reason = state
            else:
                if training:
                    return conv2d_autograd(self, input, residual, _FastconvFunction)
                return self._fastconv_forward(input, residual, state)
        if reason is not None:
            self._say_once(reason)
        return self._torch_forward(input, residual, self.weight, self.bias)

    def _torch_forward(self, input, residual, weight, bias):
        y = self._conv_forward(input, weight, bias)
        if residual is not None:
            y = y + residual
        act = _torch_activation(self.activation)
        return act(y) if act is not None else y

    def _state(self, input_shape, residual, training):
        """The _ShapeState of an input shape (made at its first use), or why torch runs it."""
        key = self._state_key(input_shape, residual, training)
        state = self._fc_states.get(key)
        if state is None:
            state = self._fc_states[key] = self._make_state(input_shape, residual, training)
        return state

    @staticmethod
    def _state_key(input_shape, residual, training):
        key = (input_shape, "residual") if residual else input_shape
        return (key, "training") if training else key

    def _make_state(self, input_shape, residual, training=False):
        """The plan for one input shape (with a fused residual add or not; for training, where the
        weights change every step, or inference), or why torch runs it."""
        batched = tuple(input_shape) if len(input_shape) == 4 else (1,) + tuple(input_shape)
        try:
            key = _problem_key(batched, tuple(self.weight.shape), self.stride, self.padding, self.dilation,
                               self.groups)
            post = _post_ops_args(self.activation, residual, self.padding_mode)
            options = dict(self.fastconv_options)
            options["threads"] = self._fc_threads if self._fc_threads is not None else torch.get_num_threads()
            plan = _C.Plan(_make_problem(key, self.padding_mode), **options, **post, weights_change=training)
        except Error as e:
            return str(e)
        return _ShapeState(plan, _output_shape(key), residual)

    def _packed(self, state):
        w, b = self.weight, self.bias
        key = (w._version, w.data_ptr()) if b is None else (w._version, w.data_ptr(), b._version, b.data_ptr())
        if state.weights_key != key:
            bd = None if b is None else b.detach().contiguous().numpy()
            state.packed = state.plan.pack_weights(w.detach().contiguous().numpy(), bd)
            state.weights_key = key
        return state.packed

    def _fastconv_forward(self, input, residual, state=None):
        x = input.detach() if input.requires_grad else input
        unbatched = x.dim() == 3
        if state is None:  # from the autograd functions: the training forward
            state = self._fc_states[self._state_key(input.shape, residual is not None, True)]
        if unbatched:
            x = x.unsqueeze(0)
        if not x.is_contiguous():
            x = x.contiguous()
        out = new_tensor(state.out_shape)
        if residual is None:
            state.plan.execute(x.numpy(), self._packed(state), out.numpy())
        else:
            r = residual.detach() if residual.requires_grad else residual
            if unbatched:
                r = r.unsqueeze(0)
            if r.shape != out.shape:
                raise Error(f"residual: expected the output's size {list(out.shape)}, got {list(residual.shape)}")
            if not r.is_contiguous():
                r = r.contiguous()
            state.plan.execute(x.numpy(), self._packed(state), out.numpy(), r.numpy())
        return out.squeeze(0) if unbatched else out


# ---------------------------------------------------------------------------------------------------
# optimize


class OptimizeReport:
    """What optimize() did: moved (runs on fastconv, with what was folded or fused into it) and stayed
    (runs on torch, and why), one (name, detail) pair per conv layer; rewritten: other layers that
    now run a faster formulation with the same results (max pooling, linear layers); chained: runs of
    conv layers that execute as one native call."""

    def __init__(self):
        self.moved, self.stayed, self.rewritten, self.chained = [], [], [], []

    def __str__(self):
        lines = [f"fastconv.torch.optimize: {len(self.moved)} conv layers on fastconv, {len(self.stayed)} on torch"]
        lines += [f"  fastconv  {name}: {detail}" for name, detail in self.moved]
        lines += [f"  torch     {name}: {detail}" for name, detail in self.stayed]
        lines += [f"  rewritten {name}: {detail}" for name, detail in self.rewritten]
        lines += [f"  chained   {name}: {detail}" for name, detail in self.chained]
        return "\n".join(lines)

    __repr__ = __str__


def _fold_batchnorm(conv, bn):
    """conv's weight and bias with the eval-mode BatchNorm that follows it folded in (in float64)."""
    scale = bn.weight.double() / torch.sqrt(bn.running_var.double() + bn.eps) if bn.affine else \
        1.0 / torch.sqrt(bn.running_var.double() + bn.eps)
    shift = (bn.bias.double() if bn.affine else 0.0) - bn.running_mean.double() * scale
    w = conv.weight.double() * scale.reshape(-1, 1, 1, 1)
    b = shift + (conv.bias.double() * scale if conv.bias is not None else 0.0)
    conv.weight = nn.Parameter(w.float(), requires_grad=False)
    conv.bias = nn.Parameter(b.float(), requires_grad=False)


def _bn_follows(conv, module):
    return (isinstance(module, nn.BatchNorm2d) and not module.training and module.track_running_stats and
            module.running_mean is not None and module.num_features == conv.out_channels)


def _as_fast(conv, options):
    if isinstance(conv, Conv2d):
        return conv
    return Conv2d.from_conv(conv, **options)


class _Notes(dict):
    """What was folded or fused into each conv (by identity), for the report."""

    def add(self, conv, what):
        self.setdefault(id(conv), []).append(what)


def _fuse_sequence(seq, options, notes):
    """In one nn.Sequential: conv -> BatchNorm2d -> activation becomes one fastconv conv (the others
    Identity). Returns the index of the last conv whose followers are all Identity, or None."""
    children = list(seq._modules.items())
    i = 0
    while i < len(children):
        name, m = children[i]
        if isinstance(m, nn.Conv2d):
            j = i + 1
            conv = m
            has_activation = isinstance(conv, Conv2d) and conv.activation is not None  # BN would follow it
            if j < len(children) and not has_activation and _bn_follows(conv, children[j][1]):
                conv = _as_fast(conv, options)
                _fold_batchnorm(conv, children[j][1])
                notes.add(conv, "batchnorm folded")
                seq._modules[children[j][0]] = nn.Identity()
                j += 1
            if j < len(children):
                act = activation_of(children[j][1])
                if act is not None and (not isinstance(conv, Conv2d) or conv.activation is None):
                    conv = _as_fast(conv, options)
                    conv.activation = act
                    notes.add(conv, f"{act} fused")
                    seq._modules[children[j][0]] = nn.Identity()
                    j += 1
            seq._modules[name] = conv
            i = j
        else:
            i += 1


def _is_torchvision(module, name):
    t = type(module)
    return t.__name__ == name and t.__module__.startswith("torchvision.models")


# torchvision's blocks whose forward is `y = self.<body>(x)`, then `y += x` when <flag> is set
# (EfficientNet's stochastic depth in between is the identity in eval mode): (file, class) -> (body,
# flag). Other blocks of the same class name (ShuffleNetV2's InvertedResidual) are not of this form.
_RESIDUAL_BODIES = {
    ("mobilenetv2", "InvertedResidual"): ("conv", "use_res_connect"),
    ("mobilenetv3", "InvertedResidual"): ("block", "use_res_connect"),
    ("efficientnet", "MBConv"): ("block", "use_res_connect"),
    ("efficientnet", "FusedMBConv"): ("block", "use_res_connect"),
    ("mnasnet", "_InvertedResidual"): ("layers", "apply_residual"),
}


def _residual_body(module):
    """(body, adds its input) of a torchvision block of _RESIDUAL_BODIES; None for anything else."""
    t = type(module)
    if not t.__module__.startswith("torchvision.models."):
        return None
    spec = _RESIDUAL_BODIES.get((t.__module__.rsplit(".", 1)[-1], t.__name__))
    if spec is None:
        return None
    body = getattr(module, spec[0], None)
    if not isinstance(body, nn.Sequential) or not isinstance(getattr(module, spec[1], None), bool):
        return None
    return body, getattr(module, spec[1])


class _ResidualBlock(nn.Module):
    """A residual block with its add fused into its last conv: last(body(x), residual=shortcut(x))."""

    def __init__(self, body, last, shortcut):
        super().__init__()
        self.body, self.last, self.shortcut = body, last, shortcut

    def forward(self, x):
        identity = x if self.shortcut is None else self.shortcut(x)
        return self.last(self.body(x), identity)  # positional: forward hooks see it (profiling)


class _BlockFunctional:
    """torch.nn.functional as an _InceptionBlock's forward sees it: its pools run on fastconv. The 3x3,
    stride 1, padding 1 average pool counting the padding (the pool branch of InceptionA, C and E) is a
    depthwise conv of weights 1/9 (within rounding of torch's sum / 9); a max pool is fastconv's
    MaxPool2d (torch's bits). Other arguments, and everything else, go to torch.nn.functional. PyTorch
    1.13's NCHW average pool runs one output at a time: 44 ms of Inception v3's 216 ms forward at batch
    8 on two threads of the Zen 5, measured (torch.profiler), where the whole model's convs took 104."""

    def __init__(self, pools, options):
        self._pools, self._options = pools, options

    def __getattr__(self, name):
        return getattr(F, name)

    def _takes(self, input):
        return (input.dim() == 4 and input.dtype == torch.float32 and input.device.type == "cpu" and
                not (input.requires_grad and torch.is_grad_enabled()))

    def avg_pool2d(self, input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                   divisor_override=None):
        if (_pair(kernel_size) == (3, 3) and stride is not None and _pair(stride) == (1, 1) and
                _pair(padding) == (1, 1) and not ceil_mode and count_include_pad and divisor_override is None and
                self._takes(input)):
            key = "avg3x3_%d" % input.shape[1]
            if key not in self._pools:
                channels = input.shape[1]
                box = nn.Conv2d(channels, channels, 3, padding=1, groups=channels, bias=False)
                with torch.no_grad():
                    box.weight.fill_(1.0 / 9.0)
                self._pools[key] = Conv2d.from_conv(box, **self._options).requires_grad_(False)
            return self._pools[key](input)
        return F.avg_pool2d(input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)

    def max_pool2d(self, input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                   return_indices=False):
        if return_indices or _pair(dilation) != (1, 1) or not self._takes(input):
            return F.max_pool2d(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)
        key = "max_%s_%s_%s_%s" % (_pair(kernel_size), _pair(stride if stride is not None else kernel_size),
                                   _pair(padding), bool(ceil_mode))
        if key not in self._pools:
            self._pools[key] = MaxPool2d.from_pool(nn.MaxPool2d(kernel_size, stride, padding, ceil_mode=ceil_mode),
                                                   self._options.get("threads"))
        return self._pools[key](input)


class _InceptionBlock(nn.Module):
    """torchvision's InceptionA to InceptionE (`block`, its convs already fastconv's): the block's own
    _forward, with _BlockFunctional as its F, then the concatenation its forward does."""

    def __init__(self, block, options):
        super().__init__()
        self.block = block
        self.pools = nn.ModuleDict()  # filled at the first forward, by channel count
        self._options = options

    def forward(self, x):
        fn = type(self.block)._forward
        functional = _BlockFunctional(self.pools, self._options)
        forward = types.FunctionType(fn.__code__, {**fn.__globals__, "F": functional}, fn.__name__,
                                     fn.__defaults__, fn.__closure__)
        return torch.cat(forward(self.block, x), 1)


def _is_inception_block(module):
    return (any(_is_torchvision(module, "Inception" + k) for k in "ABCDE") and
            callable(getattr(type(module), "_forward", None)))


def _fuse_blocks(module, options, notes):
    """Rewrites torchvision's BasicBlock, Bottleneck, InvertedResidual and RegNet's ResBottleneckBlock
    (children of `module`, recursively) as _ResidualBlock, Inception's and GoogLeNet's BasicConv2d as one conv, Inception v3's
    blocks as _InceptionBlock (their pools on fastconv), and folds the ResNet stem."""
    for name, child in list(module._modules.items()):
        if child is None:
            continue
        if _is_torchvision(child, "Bottleneck") or _is_torchvision(child, "BasicBlock"):
            convs = [child.conv1, child.conv2] + ([child.conv3] if hasattr(child, "conv3") else [])
            bns = [child.bn1, child.bn2] + ([child.bn3] if hasattr(child, "bn3") else [])
            if isinstance(child.relu, nn.ReLU) and all(_bn_follows(c, b) for c, b in zip(convs, bns)):
                fast = []
                for c, b in zip(convs, bns):
                    c = _as_fast(c, options)
                    _fold_batchnorm(c, b)
                    c.activation = "relu"
                    notes.add(c, "batchnorm folded")
                    notes.add(c, "relu fused")
                    fast.append(c)
                notes.add(fast[-1], "residual add fused")
                shortcut = child.downsample
                if shortcut is not None:
                    _fuse_blocks(shortcut, options, notes)
                module._modules[name] = _ResidualBlock(nn.Sequential(*fast[:-1]), fast[-1], shortcut)
                continue
        if (_is_torchvision(child, "BasicConv2d") and isinstance(child.conv, nn.Conv2d) and
                _bn_follows(child.conv, child.bn)):
            # Inception v3's and GoogLeNet's conv, batchnorm, F.relu: one conv with the relu fused
            conv = _as_fast(child.conv, options)
            _fold_batchnorm(conv, child.bn)
            conv.activation = "relu"
            notes.add(conv, "batchnorm folded")
            notes.add(conv, "relu fused")
            module._modules[name] = conv
            continue
        if (_is_torchvision(child, "ResBottleneckBlock") and isinstance(child.f, nn.Sequential) and
                type(child.activation) is nn.ReLU):
            # RegNet's block: activation(proj(x) + f(x)), f = 1x1, grouped 3x3 [, SE], 1x1 without activation
            _fuse_blocks(child.f, options, notes)
            layers = [m for m in _flatten_sequential(child.f) if not isinstance(m, nn.Identity)]
            shortcut = child.proj
            if shortcut is not None:
                _fuse_blocks(shortcut, options, notes)
            if layers and isinstance(layers[-1], Conv2d) and not layers[-1].activation:
                layers[-1].activation = "relu"
                notes.add(layers[-1], "residual add fused")
                notes.add(layers[-1], "relu fused")
                module._modules[name] = _ResidualBlock(nn.Sequential(*layers[:-1]), layers[-1], shortcut)
            continue
        if _is_inception_block(child):
            _fuse_blocks(child, options, notes)
            module._modules[name] = _InceptionBlock(child, options)
            continue
        if (spec := _residual_body(child)) is not None:
            body, adds_input = spec
            _fuse_blocks(body, options, notes)
            _fuse_sequence(body, options, notes)
            if adds_input:
                layers = _flatten_sequential(body)
                while layers and isinstance(layers[-1], nn.Identity):
                    layers.pop()
                # fastconv adds the residual before the activation (ResNet's order): a last conv
                # whose activation came first (FusedMBConv without expansion) keeps its add.
                if layers and isinstance(layers[-1], Conv2d) and not layers[-1].activation:
                    notes.add(layers[-1], "residual add fused")
                    body = [m for m in layers[:-1] if not isinstance(m, nn.Identity)]
                    module._modules[name] = _ResidualBlock(nn.Sequential(*body), layers[-1], None)
            continue
        _fuse_blocks(child, options, notes)
    _fuse_resnet_stem(module, options, notes)
    if isinstance(module, nn.Sequential):
        _fuse_sequence(module, options, notes)


def _fuse_resnet_stem(model, options, notes):
    """torchvision's ResNet runs conv1, bn1, relu by name in its forward: fold and fuse them there."""
    if not (_is_torchvision(model, "ResNet") and isinstance(model.conv1, nn.Conv2d) and
            _bn_follows(model.conv1, model.bn1)):
        return
    conv = _as_fast(model.conv1, options)
    _fold_batchnorm(conv, model.bn1)
    notes.add(conv, "batchnorm folded")
    model.conv1, model.bn1 = conv, nn.Identity()
    if isinstance(model.relu, nn.ReLU):
        conv.activation = "relu"
        notes.add(conv, "relu fused")
        model.relu = nn.Identity()


def _flatten_sequential(seq):
    out = []
    for m in seq:
        if type(m) is nn.Sequential or (isinstance(m, nn.Sequential) and _is_plain_sequential(m)):
            out.extend(_flatten_sequential(m))
        else:
            out.append(m)
    return out


def _is_plain_sequential(m):
    # torchvision's Conv2dNormActivation is an nn.Sequential subclass with the plain forward
    return type(m).forward is nn.Sequential.forward


def _replace_layers(module, options, notes, report, prefix=""):
    """One walk of the model: every nn.Conv2d fastconv can run becomes a fastconv Conv2d, and
    nn.MaxPool2d and nn.Linear become MaxPool2d and Linear (the same results, faster)."""
    for name, child in list(module._modules.items()):
        if child is None:
            continue
        path = f"{prefix}{name}"
        if isinstance(child, nn.Conv2d):
            reason = _static_reason(child)
            if reason is not None:
                report.stayed.append((path, f"{_describe_conv(child)}: {reason}"))
                continue
            fast = _as_fast(child, options)
            module._modules[name] = fast
            what = notes.get(id(child), []) + (notes.get(id(fast), []) if fast is not child else [])
            report.moved.append((path, _describe_conv(fast) + ("; " + ", ".join(what) if what else "")))
        elif type(child) is nn.MaxPool2d:
            module._modules[name] = MaxPool2d.from_pool(child, threads=options["threads"])
            report.rewritten.append((path, "max pool: fastconv's separable max (same results as torch)"))
        elif type(child) is nn.AdaptiveAvgPool2d:
            module._modules[name] = AdaptiveAvgPool2d.from_pool(child, threads=options["threads"])
            report.rewritten.append((path, "adaptive average pool: fastconv's global mean where the output is "
                                           "1x1 (within rounding of torch's)"))
        elif type(child) is nn.Linear and child.weight.dtype == torch.float32 and child.weight.device.type == "cpu":
            module._modules[name] = Linear.from_linear(child, **options)
            report.rewritten.append((path, f"linear {child.in_features}->{child.out_features}: a 1x1 convolution "
                                           "on fastconv"))
        else:
            _replace_layers(child, options, notes, report, path + ".")


def _static_reason(conv):
    """Why fastconv cannot run this conv whatever the input, or None."""
    if conv.weight.device.type != "cpu":
        return f"weights on {conv.weight.device}"
    if conv.weight.dtype != torch.float32:
        return f"dtype {conv.weight.dtype} (fastconv runs float32)"
    return None


def _describe_conv(c):
    s = f"{c.in_channels}->{c.out_channels} {c.kernel_size[0]}x{c.kernel_size[1]}"
    if c.stride != (1, 1):
        s += f" s{c.stride[0]}" if c.stride[0] == c.stride[1] else f" s{c.stride}"
    if c.groups != 1:
        s += " depthwise" if c.groups == c.in_channels == c.out_channels else f" g{c.groups}"
    return s


# ---------------------------------------------------------------------------------------------------
# Chains: runs of conv layers as one native call


class _NotChainable(Exception):
    """complete: how many of the run's first layers compiled before the one that could not (None:
    not known)."""

    def __init__(self, complete=None):
        super().__init__(complete)
        self.complete = complete


def _chain_ops(module):
    """The conv program of a module made of nothing but fastconv convs, max pools, identities, plain
    Sequentials and fused residual blocks, and of a classifier's head (adaptive average pool, flatten,
    dropout, linear): a list of ("conv", conv), ("pool", pool), ("block", body, last, shortcut) (body
    and shortcut: op lists), ("mean", pool), ("flatten",), ("dropout", dropout) and ("linear", linear)
    ops; None for anything else."""
    if type(module) is Conv2d:
        return [("conv", module)]
    if type(module) is MaxPool2d:
        return [("pool", module)] if module._chainable() else None
    if type(module) is nn.Identity:
        return []
    if type(module) is AdaptiveAvgPool2d:
        return [("mean", module)]
    if type(module) is nn.Flatten:
        return [("flatten",)] if (module.start_dim, module.end_dim) == (1, -1) else None
    if type(module) is nn.Dropout:
        return [("dropout", module)]
    if type(module) is Linear and module.__dict__.get("_fc_conv") is not None:
        return [("linear", module)]
    if type(module) is _ResidualBlock:
        body = _chain_ops(module.body)
        shortcut = [] if module.shortcut is None else _chain_ops(module.shortcut)
        if body is None or shortcut is None or type(module.last) is not Conv2d:
            return None
        return [("block", body, module.last, shortcut)]
    if isinstance(module, nn.Sequential) and (_is_plain_sequential(module) or type(module) is _Chain):
        ops = []
        for m in module:
            sub = _chain_ops(m)
            if sub is None:
                return None
            ops += sub
        return ops
    if (spec := _residual_body(module)) is not None and not spec[1]:
        return _chain_ops(spec[0])  # its forward is the body's then
    return None


def _convs_of(ops):
    for op in ops:
        if op[0] == "conv":
            yield op[1]
        elif op[0] == "linear":
            yield op[1].__dict__["_fc_conv"]
        elif op[0] == "block":
            yield from _convs_of(op[1])
            yield from _convs_of(op[3])
            yield op[2]


class _Program:
    """A chain compiled for one input shape, and the state of the layers it was compiled against. The
    chain runs the run's layers, or as many of the first ones as it takes for this input (a linear
    layer of more rows than _LINEAR_ROWS_AS_IMAGES runs as a GEMM, outside); `rest`: the layers after
    them, run one by one. chain_shape: the native output's shape; out_shape: the tensor's (2-D after a
    flatten); step_modules: the layer of each step (a conv, a pool or a linear layer), for profiles."""
    __slots__ = ("chain", "chain_shape", "out_shape", "rest", "signature", "step_modules")

    def __init__(self, chain, chain_shape, out_shape, rest, signature, step_modules=()):
        self.chain, self.chain_shape, self.out_shape, self.rest = chain, chain_shape, out_shape, rest
        self.signature, self.step_modules = signature, step_modules


_generation_of, _version_of = operator.attrgetter("_fc_generation"), operator.attrgetter("_version")


class _ConvRun:
    """Consecutive children of a _Chain that form one conv program; module_ops: the ops of each."""

    def __init__(self, modules, module_ops):
        self.modules, self.module_ops = modules, module_ops
        self.ops = [op for ops in module_ops for op in ops]
        self.convs = list(_convs_of(self.ops))
        self.pools = [op[1] for op in self.ops if op[0] == "pool"]
        self.means = [op[1] for op in self.ops if op[0] == "mean"]
        self.linears = [op[1] for op in self.ops if op[0] == "linear"]
        self.dropouts = [op[1] for op in self.ops if op[0] == "dropout"]
        self.params = self._current_params()
        # The forward hook dicts of every module of the run (registering a hook adds to them)
        self.hook_dicts = [d for m in modules for sub in m.modules() for d in (sub._forward_hooks,
                                                                               sub._forward_pre_hooks)]
        # Every parent-child link of the run's modules: a layer replaced inside them (block.conv2 = ...)
        # makes the run stale, and its Sequential builds its runs again. Kept as three tuples so that
        # the check per call runs in C (map, tuple compare: identity first): MobileNetV2's 300 links.
        links = [(sub._modules, name, child) for m in modules for sub in m.modules()
                 for name, child in sub._modules.items()]
        self.link_dicts, self.link_names, self.link_children = (tuple(t) for t in zip(*links)) if links else ((),) * 3
        self.programs = {}

    def describe(self):
        """For the report: "13 conv layers and 5 max pools in one native call"."""
        parts = [f"{len(self.convs) - len(self.linears)} conv layers"]
        for items, what in ((self.pools, "max pool"), (self.means, "adaptive average pool"),
                            (self.linears, "linear layer")):
            if items:
                parts.append(f"{len(items)} {what}{'s' if len(items) > 1 else ''}")
        listed = ", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else parts[0]
        return f"{listed} in one native call"

    def stale(self):
        return tuple(map(dict.get, self.link_dicts, self.link_names)) != self.link_children

    def _current_params(self):
        # The linear layers' own parameters too: their convs hold views that never require gradients.
        return [p for m in self.convs + self.linears for p in (m.weight, m.bias) if p is not None]

    def signature(self):
        # What a compiled program depends on: each conv's plans and parameter objects (the generation:
        # bumped by repack(), a new activation, a new Parameter) and its parameters' contents (in-place
        # updates bump the version; .to() moves the data), each pool's window and threads, and whether
        # the dropouts are in eval mode. (map over attrgetters: the loops run in C, a third of the time
        # of comprehensions per call.)
        return (tuple(map(_generation_of, self.convs)), tuple(map(_version_of, self.params)),
                tuple(map(torch.Tensor.data_ptr, self.params)),
                [(pool.kernel_size, pool.stride, pool.padding, pool.dilation, pool.ceil_mode, pool.return_indices,
                  pool._pool_threads()) for pool in self.pools],
                [(mean.output_size, mean._pool_threads()) for mean in self.means],
                [(d.training, d.p) for d in self.dropouts])

    def hooked(self):
        return (nn.modules.module._global_forward_hooks or nn.modules.module._global_forward_pre_hooks or
                any(self.hook_dicts))

    def __call__(self, x):
        program = self._program(x)
        if program is None:
            for m in self.modules:
                x = m(x)
            return x
        if not x.is_contiguous():
            x = x.contiguous()
        out = new_tensor(program.chain_shape)
        program.chain.run(x.numpy(), out.numpy())
        if program.out_shape is not program.chain_shape:
            out = out.view(program.out_shape)
        for m in program.rest:
            out = m(out)
        return out

    def _program(self, x):
        """The compiled program for x, or None where the layers must run one by one (gradients, hooks,
        an input or a layer fastconv does not run: they then decide, and warn or raise, as usual)."""
        if not (isinstance(x, torch.Tensor) and x.is_cpu and x.dtype == torch.float32 and x.dim() == 4):
            return None
        if torch.is_grad_enabled() and (x.requires_grad or any(p.requires_grad for p in self.params)):
            return None
        if self.hooked():
            return None
        signature = self.signature()
        program = self.programs.get(x.shape)
        if program is None or program.signature != signature:
            self.params = self._current_params()
            signature = self.signature()
            program = self._compile(tuple(x.shape), signature)
            self.programs[x.shape] = program
        return program if program.chain is not None else None

    def _compile(self, shape, signature):
        """The program of all the run's layers, else of the layers before the first that does not
        compile for this input (their results are the same either way), else none."""
        n = len(self.modules)
        while n > 0:
            try:
                return self._compile_layers(shape, signature, n)
            except _NotChainable as e:
                n = n - 1 if e.complete is None else min(n - 1, e.complete)
        return _Program(None, None, None, (), signature)

    def _compile_layers(self, shape, signature, n):
        """The program of the run's first n layers."""
        steps, shapes, layers = [], [shape], []  # shapes[slot]; slot 0 is the input; layers: per step
        flat = False  # after a flatten: rows (N, F) kept as 1x1 images (N, F, 1, 1)

        def conv(layer, slot, residual=None):
            w, b = layer.weight, layer.bias
            if not (w.is_cpu and w.dtype == torch.float32 and (b is None or (b.is_cpu and b.dtype == torch.float32))):
                raise _NotChainable
            state = layer._state(shapes[slot], residual is not None, False)
            if isinstance(state, str) or (residual is not None and shapes[residual] != state.out_shape):
                raise _NotChainable
            shapes.append(state.out_shape)
            steps.append([state.plan, layer._packed(state), slot, -1 if residual is None else residual,
                          len(shapes) - 1])
            layers.append(layer)
            return len(shapes) - 1

        def pool(layer, slot):
            spec = layer._native_spec(shapes[slot])
            if spec is None:
                raise _NotChainable
            shapes.append(spec.out_shape)
            steps.append(["max_pool", spec.chain_spec(shapes[slot], layer._pool_threads()), slot, -1, len(shapes) - 1])
            layers.append(layer)
            return len(shapes) - 1

        def fused_block(convs, slot, residual):
            block = _inverted_residual(convs, shapes[slot], residual)
            if block is None:
                return None
            shapes.append(tuple(block.output_shape))
            steps.append(["inverted_residual", block, slot, -1, len(shapes) - 1])
            layers.append(convs[-1])  # the step's time shows on the block's last layer
            return len(shapes) - 1

        def head(op, slot):
            """The classifier's ops: the global pool, flatten, dropout (eval), linear (rows as images)."""
            nonlocal flat
            kind = op[0]
            if kind == "mean":
                target = None if flat else op[1]._target(shapes[slot])
                if target is None:
                    raise _NotChainable
                if target == "identity":
                    return slot
                N, C, H, W = shapes[slot]
                shapes.append((N, C, 1, 1))
                steps.append(["global_avg_pool", (N, C, H, W, op[1]._pool_threads()), slot, -1, len(shapes) - 1])
                layers.append(op[1])
                return len(shapes) - 1
            if kind == "flatten":
                shapes[slot] = (shapes[slot][0], math.prod(shapes[slot][1:]), 1, 1)  # the same memory
                flat = True
                return slot
            if kind == "dropout":
                if op[1].training and op[1].p > 0:
                    raise _NotChainable
                return slot
            # linear: as 1x1 images, as Linear.forward runs up to _LINEAR_ROWS_AS_IMAGES rows
            if not flat or shapes[slot][0] > _LINEAR_ROWS_AS_IMAGES:
                raise _NotChainable
            out = conv(op[1].__dict__["_fc_conv"], slot)
            layers[-1] = op[1]
            return out

        def walk(ops, slot, top=False):
            nonlocal reached
            i = 0
            while i < len(ops):
                if top:
                    reached = i  # a failure from here on leaves the layers before this op's whole
                op = ops[i]
                if op[0] in ("mean", "flatten", "dropout", "linear"):
                    slot, i = head(op, slot), i + 1
                    continue
                if flat:
                    raise _NotChainable  # convolutions and pools take images
                if op[0] == "conv":
                    # An inverted residual block without its residual: expand, depthwise, project
                    # (or depthwise, project) in one pass where the shapes allow.
                    for n in (3, 2):
                        run = ops[i:i + n]
                        if len(run) == n and all(o[0] == "conv" for o in run):
                            out = fused_block([o[1] for o in run], slot, False)
                            if out is not None:
                                slot, i = out, i + n
                                break
                    else:
                        slot, i = conv(op[1], slot), i + 1
                    continue
                if op[0] == "pool":
                    slot = pool(op[1], slot)
                else:
                    _, body, last, shortcut = op
                    out = None
                    if not shortcut and 1 <= len(body) <= 2 and all(o[0] == "conv" for o in body):
                        out = fused_block([o[1] for o in body] + [last], slot, True)
                    slot = out if out is not None else conv(last, walk(body, slot), residual=walk(shortcut, slot))
                i += 1
            return slot

        ops = [op for m_ops in self.module_ops[:n] for op in m_ops]
        layer_of = [j for j, m_ops in enumerate(self.module_ops[:n]) for _ in m_ops]  # per op of `ops`
        reached = 0
        try:
            final = walk(ops, 0, top=True)
        except _NotChainable:
            raise _NotChainable(layer_of[reached]) from None
        if final == 0:
            raise _NotChainable(0)  # no step at all, nor in any fewer layers
        offsets, arena = _lay_out(steps, shapes, final)
        for step in steps:  # the final value goes straight into the call's output (slot 1)
            for i in (2, 3, 4):
                step[i] = {final: 1}.get(step[i], step[i] + 1 if step[i] > 0 else step[i])
        chain = _C.Chain([tuple(s) for s in steps], offsets, arena, list(shape), list(shapes[final]))
        out_shape = shapes[final][:2] if flat else shapes[final]
        return _Program(chain, shapes[final], out_shape, tuple(self.modules[n:]), signature, tuple(layers))


_BLOCK_ACTIVATIONS = (None, "relu", "relu6")  # the ones the fused block applies (clamps)


def _fuse_blocks_enabled():
    return os.environ.get("FASTCONV_FUSE_BLOCKS", "1") != "0"


_force_fused_blocks = None  # tests: not None fuses every block of the form, whatever it pays


def _inverted_residual(convs, shape, residual):
    """A native InvertedResidual for convs = [expand 1x1, depthwise 3x3, project 1x1] (or without the
    expansion) on inputs of `shape`, adding the input when `residual`; None when they are not of that
    form (or fastconv would not run one of them)."""
    if not _fuse_blocks_enabled() or len(shape) != 4:
        return None
    *expand, dw, project = convs
    if any(type(c) is not Conv2d or c.padding_mode != "zeros" or c.dilation != (1, 1) or
           c.activation not in _BLOCK_ACTIVATIONS or not c.weight.is_cpu or c.weight.dtype != torch.float32 or
           (c.bias is not None and (not c.bias.is_cpu or c.bias.dtype != torch.float32)) for c in convs):
        return None

    def pointwise(c, channels):
        return (c.kernel_size == (1, 1) and c.stride == (1, 1) and c.padding == (0, 0) and c.groups == 1 and
                c.in_channels == channels)

    channels = shape[1]
    if expand:
        if not pointwise(expand[0], channels):
            return None
        channels = expand[0].out_channels
    if not (dw.kernel_size == (3, 3) and dw.padding == (1, 1) and dw.stride[0] == dw.stride[1] in (1, 2) and
            dw.groups == dw.in_channels == dw.out_channels == channels):
        return None
    if not pointwise(project, channels) or project.activation is not None:
        return None
    stride = dw.stride[0]
    if residual and not (stride == 1 and project.out_channels == shape[1]):
        return None

    def arrays(c):
        w = c.weight.detach().contiguous().numpy()
        b = c.bias.detach().contiguous().numpy() if c.bias is not None else np.zeros(c.out_channels, np.float32)
        return w, b

    threads = dw._fc_threads if dw._fc_threads is not None else torch.get_num_threads()
    # Blocks whose intermediate results stay in the caches anyway run faster layer by layer
    if _force_fused_blocks is None and not _C.InvertedResidual.pays(list(shape), channels if expand else 0,
                                                                    stride, threads):
        return None
    ew, eb = arrays(expand[0]) if expand else (None, None)
    try:
        return _C.InvertedResidual(list(shape), stride, ew, eb, *arrays(dw), *arrays(project),
                                   (expand[0].activation if expand else None) or "none", dw.activation or "none",
                                   residual, threads)
    except Error:
        return None


def _lay_out(steps, shapes, final):
    """Arena offsets (floats) of the intermediate slots, by liveness: a slot's memory is free again after
    the last step that reads it; first fit. Returns (offsets in the renumbered slots, arena floats):
    slot 0 stays the input, `final` becomes 1 and the others shift by one."""
    def floats(slot):
        return (math.prod(shapes[slot]) + 15) // 16 * 16  # 64-byte aligned regions

    last_read = {}
    for i, (_, _, x, r, _) in enumerate(steps):
        last_read[x] = i
        if r != -1:
            last_read[r] = i
    live, offset_of, arena = [], {}, 0  # live: sorted (offset, size, slot)
    for i, (_, _, x, r, out) in enumerate(steps):
        if out != final:
            size, at = floats(out), 0
            for start, length, _ in live:
                if start - at >= size:
                    break
                at = max(at, start + length)
            offset_of[out] = at
            live.append((at, size, out))
            live.sort()
            arena = max(arena, at + size)
        live = [e for e in live if last_read.get(e[2], -1) > i]
    offsets = [-1, -1] + [offset_of.get(s, -1) for s in range(1, len(shapes))]  # final's old place: unused
    return offsets, arena


class _Chain(nn.Sequential):
    """An nn.Sequential (same children, same names) whose runs of two or more conv layers, with the
    fused residual blocks among them, run as one native call (fastconv's Chain): no Python work and no
    allocation per layer, the intermediate results in an arena laid out by liveness. MobileNetV2's 52
    layers are one call. The same plans and packed weights as layer by layer, so the same bits. A run
    goes layer by layer whenever that is what the layers would need: gradients, forward hooks (the
    bench's profile uses them), an input other than a 4-D float32 CPU tensor, a layer fastconv does
    not run for that shape (the layers then warn or raise as usual)."""

    def __init__(self, seq, runs):
        super().__init__(seq._modules)
        self.train(seq.training)
        self.__dict__["_fc_segments"] = runs  # a list of modules and _ConvRuns, in order
        self.__dict__["_fc_children"] = tuple(self._modules.values())  # what the runs were built from

    @classmethod
    def of(cls, seq):
        """seq as a _Chain, or None when it holds no run of two or more convs."""
        segments = cls._segments(seq)
        return None if segments is None else cls(seq, segments)

    @staticmethod
    def _segments(seq):
        """seq's children as modules and _ConvRuns, in order; None when no run has two convs or more."""
        segments, pending = [], []  # pending: (module, its ops) of the run being gathered

        def flush():
            ops = [op for _, m_ops in pending for op in m_ops]
            if len(list(_convs_of(ops))) >= 2:
                segments.append(_ConvRun([m for m, _ in pending], [m_ops for _, m_ops in pending]))
            else:
                segments.extend(m for m, _ in pending)
            pending.clear()

        for m in seq:
            m_ops = _chain_ops(m)
            if m_ops is not None:
                pending.append((m, m_ops))
            else:
                flush()
                segments.append(m)
        flush()
        if not any(isinstance(s, _ConvRun) for s in segments):
            return None
        return segments

    def forward(self, x):
        segments = self.__dict__["_fc_segments"]
        if (tuple(self._modules.values()) != self.__dict__["_fc_children"] or
                any(s.stale() for s in segments if isinstance(s, _ConvRun))):
            # A layer was added, removed or replaced since: the runs of what the Sequential holds now
            segments = self.__dict__["_fc_segments"] = self._segments(self) or list(self._modules.values())
            self.__dict__["_fc_children"] = tuple(self._modules.values())
        for segment in segments:
            x = segment(x)
        return x

    def __getstate__(self):
        # Compiled programs stay behind (a copy compiles again)
        state = self.__dict__.copy()
        state["_fc_segments"] = [s if not isinstance(s, _ConvRun) else _ConvRun(s.modules, s.module_ops)
                                 for s in state["_fc_segments"]]
        return state


def _chain_sequentials(module, report, path=""):
    """module, or its _Chain when it is a plain nn.Sequential holding a run of two or more convs; in
    either case every such Sequential under it chained as well (in place)."""
    chained = _Chain.of(module) if isinstance(module, nn.Sequential) and _is_plain_sequential(module) else None
    in_runs = set()
    if chained is not None:
        for run in chained.__dict__["_fc_segments"]:
            if isinstance(run, _ConvRun):
                in_runs.update(id(m) for m in run.modules)
                ids = {id(r) for r in run.modules}
                names = [n for n, m in module._modules.items() if id(m) in ids]
                where = path if len(names) == len(module) else f"{path}[{names[0]}..{names[-1]}]"
                report.chained.append((where, run.describe()))
    # The children of what is returned (a _Chain has its own dict of the same children)
    target = module if chained is None else chained
    for name, child in list(target._modules.items()):
        if child is not None and id(child) not in in_runs:
            new = _chain_sequentials(child, report, f"{path}.{name}" if path else name)
            if new is not child:
                target._modules[name] = new
    return target


# ---------------------------------------------------------------------------------------------------
# Pooling


class MaxPool2d(nn.MaxPool2d):
    """nn.MaxPool2d on fastconv's separable max pool (_fastconv.max_pool2d: the max over the kernel's
    width a row at a time, then over its height, in vectors of the CPU's widest instruction set).
    Bit for bit torch's: its update (take v when v > m or v is NaN) in its row-major order, so ties keep
    the first value and a NaN the last. Planes split over fastconv's threads (`threads`: optimize()
    gives its own; None: torch.get_num_threads()); in a chained Sequential (optimize's chain=True) the
    pool is a step of the native call. PyTorch 1.13's NCHW max_pool2d is
    a scalar loop per output (7.8 ms on ResNet-50's 3x3/s2 pool of 64x112x112 on one thread, Xeon
    with AVX-512); the strided-view formulation that replaced it first still cost 1.8 ms per ResNet-50
    forward and 5.3 ms per VGG-16 one, at batch 1 on two threads. What the kernel does not take
    (indices, dilation, other dtypes or devices, gradients) runs nn.MaxPool2d's forward; ceil_mode it
    takes (GoogLeNet's pools), its last windows clipped at the input as torch's."""

    threads = None

    @classmethod
    def from_pool(cls, pool, threads=None):
        new = cls(pool.kernel_size, pool.stride, pool.padding, pool.dilation, pool.return_indices, pool.ceil_mode)
        new.threads = threads
        new.train(pool.training)
        return new

    def _pool_threads(self):
        return self.threads or torch.get_num_threads()

    def _chainable(self):
        """Whether the kernel takes this pool's options (indices and dilation it does not)."""
        return not self.return_indices and _pair(self.dilation) == (1, 1)

    def _native_spec(self, shape):
        """The kernel's window for a 4-D input of `shape`, or None where nn.MaxPool2d's own forward runs
        (options the kernel does not take; a window torch refuses, with its own message)."""
        if not self._chainable() or len(shape) != 4:
            return None
        spec = _PoolSpec(*(_pair(v) for v in (self.kernel_size, self.stride or self.kernel_size, self.padding)),
                         bool(self.ceil_mode))
        (kh, kw), (sh, sw), (ph, pw) = spec.kernel, spec.stride, spec.padding
        H, W = shape[-2:]
        if H + 2 * ph < kh or W + 2 * pw < kw or 2 * ph > kh or 2 * pw > kw or min(kh, kw, sh, sw) < 1 or min(ph, pw) < 0:
            return None
        P, Q = _pool_size(H, kh, sh, ph, self.ceil_mode), _pool_size(W, kw, sw, pw, self.ceil_mode)
        spec.out_shape = (shape[0], shape[1], P, Q)
        return spec

    def forward(self, x):
        if not (isinstance(x, torch.Tensor) and x.dtype == torch.float32 and x.is_cpu and x.dim() in (3, 4) and
                not (x.requires_grad and torch.is_grad_enabled())):
            return super().forward(x)
        x4 = x.unsqueeze(0) if x.dim() == 3 else x
        spec = self._native_spec(x4.shape)
        if spec is None:
            return super().forward(x)
        if not x4.is_contiguous():
            x4 = x4.contiguous()
        out = new_tensor(spec.out_shape)
        _C.max_pool2d((x4.detach() if x4.requires_grad else x4).numpy(), out.numpy(), spec.kernel, spec.stride,
                      spec.padding, self._pool_threads(), spec.ceil_mode)
        return out.squeeze(0) if x.dim() == 3 else out


def _pool_size(size, kernel, stride, padding, ceil_mode):
    """torch's pool output size; with ceil_mode rounded up (GoogLeNet's pools), but no window may start
    past the input and its leading padding (the kernel clips the windows that reach past the padding)."""
    if not ceil_mode:
        return (size + 2 * padding - kernel) // stride + 1
    out = -(-(size + 2 * padding - kernel) // stride) + 1
    return out - 1 if (out - 1) * stride >= size + padding else out


class _PoolSpec:
    __slots__ = ("kernel", "stride", "padding", "ceil_mode", "out_shape")

    def __init__(self, kernel, stride, padding, ceil_mode=False):
        self.kernel, self.stride, self.padding, self.ceil_mode, self.out_shape = kernel, stride, padding, ceil_mode, None

    def chain_spec(self, in_shape, threads):
        """The pool as a step of a native Chain: (N, C, H, W, kh, kw, sh, sw, ph, pw, threads, ceil_mode)."""
        return (*in_shape, *self.kernel, *self.stride, *self.padding, threads, int(self.ceil_mode))


class AdaptiveAvgPool2d(nn.AdaptiveAvgPool2d):
    """nn.AdaptiveAvgPool2d whose 1x1 output (the global average before a classifier) is fastconv's mean
    of each plane (_fastconv.global_avg_pool2d: summed in double, so within rounding of torch's mean,
    not its bits), on fastconv's threads (`threads`: as MaxPool2d's); in a chained Sequential a step of
    the native call, and an output the input's own size no step at all. Other output sizes, other
    dtypes or devices and gradients run nn.AdaptiveAvgPool2d's forward. On torch's op (one thread
    inside an optimized forward) MobileNetV2's global pool took 0.16 ms of a 2.9 ms forward at batch
    1 on the Zen 5, measured."""

    threads = None

    @classmethod
    def from_pool(cls, pool, threads=None):
        new = cls(pool.output_size)
        new.threads = threads
        new.train(pool.training)
        return new

    def _pool_threads(self):
        return self.threads or torch.get_num_threads()

    def _target(self, shape):
        """For a 4-D input of `shape`: 'mean' where the output is 1x1, 'identity' where it is the
        input's own size (torch's windows are then single elements), else None."""
        if len(shape) != 4 or 0 in shape:
            return None
        size = tuple(d if v is None else v for v, d in zip(_pair(self.output_size), shape[-2:]))
        if size == (1, 1):
            return "mean"
        return "identity" if size == tuple(shape[-2:]) else None

    def forward(self, x):
        if not (isinstance(x, torch.Tensor) and x.dtype == torch.float32 and x.is_cpu and x.dim() in (3, 4) and
                not (x.requires_grad and torch.is_grad_enabled())):
            return super().forward(x)
        x4 = x.unsqueeze(0) if x.dim() == 3 else x
        if self._target(x4.shape) != "mean":
            return super().forward(x)
        if not x4.is_contiguous():
            x4 = x4.contiguous()
        out = new_tensor((x4.shape[0], x4.shape[1], 1, 1))
        _C.global_avg_pool2d((x4.detach() if x4.requires_grad else x4).numpy(), out.numpy(), self._pool_threads())
        return out.squeeze(0) if x.dim() == 3 else out


# ---------------------------------------------------------------------------------------------------
# Linear layers


# Up to this many rows, a linear layer runs as that many 1x1 images (fastconv's direct_dots: the
# weights streamed once at memory speed, no transposes); past it, as one image whose pixels are the
# rows (the GEMM). Measured on the AVX-512 Xeon, 2 threads, 2048->1000 and 25088->4096: images 1.3-1.6x
# faster at 2-8 rows, even at 16, 1.3-1.8x slower from 32.
_LINEAR_ROWS_AS_IMAGES = 8


class Linear(nn.Linear):
    """nn.Linear on fastconv, for inference: y = x W^T + b is a 1x1 convolution, of `rows` 1x1 images
    at small batches, else of one image whose pixels are the rows; either way the weights stream
    once whatever the batch. Debian's PyTorch runs linear layers on OpenBLAS, whose own threads
    fought the OpenMP team fastconv runs on: MobileNetV2's classifier took 5.8 ms instead of 0.66
    after fastconv's convolutions, measured. Shares the layer's parameters; what the convolution
    cannot run (another dtype or device, gradients) runs nn.Linear's own forward."""

    @classmethod
    def from_linear(cls, linear, **options):
        layer = cls(linear.in_features, linear.out_features, linear.bias is not None, device="meta",
                    dtype=linear.weight.dtype)
        layer.weight, layer.bias = linear.weight, linear.bias
        conv = Conv2d(linear.in_features, linear.out_features, 1, bias=linear.bias is not None, device="meta",
                      dtype=linear.weight.dtype, **options)
        # Views of the same storage (and version counter): an in-place update of the weights repacks.
        conv.weight = nn.Parameter(linear.weight.view(linear.out_features, linear.in_features, 1, 1),
                                   requires_grad=False)
        conv.bias = None if linear.bias is None else nn.Parameter(linear.bias.view(-1), requires_grad=False)
        layer.__dict__["_fc_conv"] = conv  # not a submodule: the parameters are this layer's
        layer.train(linear.training)
        return layer

    def forward(self, x):
        conv = self.__dict__.get("_fc_conv")
        if (conv is None or not isinstance(x, torch.Tensor) or x.dim() < 1 or x.dtype != torch.float32 or
                x.device.type != "cpu" or x.numel() == 0 or
                (torch.is_grad_enabled() and (x.requires_grad or self.weight.requires_grad))):
            return super().forward(x)
        if x.shape[-1] != self.in_features:
            return super().forward(x)  # torch's own error
        lead = x.shape[:-1]
        rows = x.numel() // self.in_features
        xt = x.reshape(rows, self.in_features)
        if rows <= _LINEAR_ROWS_AS_IMAGES:
            y = conv(xt.reshape(rows, self.in_features, 1, 1)).view(rows, self.out_features)
        else:
            y = conv(xt.t().contiguous().view(1, self.in_features, 1, rows)).view(self.out_features, rows).t().contiguous()
        return y.reshape(*lead, self.out_features)


class _TorchThreadsDuringForward:
    """Mixed into the optimized model's class: its forward runs torch's own ops (pooling, linear, ...)
    with `_fastconv_torch_threads` intra-op threads and restores the setting afterwards. PyTorch's
    OpenMP workers spin for milliseconds after each parallel op, on the very cores fastconv's threads
    need next: measured here, a model's convolutions ran up to 2x slower after multi-threaded torch
    ops. With torch on OpenMP the count is the calling thread's own (omp_set_num_threads): nothing
    else changes, other Python threads included. torch.set_num_threads, the fallback, is process-wide
    and rebuilds torch's pthreadpool: 3 ms a call, measured, twice per forward. 'auto': 1 when
    fastconv runs on oneTBB, torch's own setting when fastconv runs on torch's OpenMP team (its
    spinning workers then take fastconv's tasks, fastconv.set_threading)."""

    def __reduce_ex__(self, protocol):
        # The class is made at run time (_threads_subclass), so pickle could not find it by name (torch.save
        # of an optimized model failed): rebuild it from the model's own class.
        return _new_with_torch_threads, (type(self)._fastconv_base,), self.__getstate__()

    def __call__(self, *args, **kwargs):
        n = self._fastconv_torch_threads
        if n == "auto":
            n = None if _C.threading() == "openmp" else 1
        omp = _openmp_runtime()
        previous = omp.omp_get_max_threads() if omp is not None else torch.get_num_threads()
        if n is None or n == previous:
            return super().__call__(*args, **kwargs)
        set_threads = omp.omp_set_num_threads if omp is not None else torch.set_num_threads
        set_threads(n)
        try:
            return super().__call__(*args, **kwargs)
        finally:
            set_threads(previous)


_openmp = []


def _openmp_runtime():
    """The OpenMP runtime torch's ops run on (ctypes), or None when torch does not use OpenMP."""
    if not _openmp:
        lib = None
        if "OpenMP" in torch.__config__.parallel_info():
            try:
                with open("/proc/self/maps") as maps:
                    paths = [line.split()[-1] for line in maps if "/lib" in line and
                             any(name in line for name in ("libgomp", "libiomp5", "libomp."))]
                if paths:
                    lib = ctypes.CDLL(paths[0])
                    lib.omp_get_max_threads.restype = ctypes.c_int
                    lib.omp_set_num_threads.argtypes = [ctypes.c_int]
            except (OSError, AttributeError):
                lib = None
        _openmp.append(lib)
    return _openmp[0]


_threads_classes = {}


def _threads_subclass(cls):
    sub = _threads_classes.get(cls)
    if sub is None:
        mixins = (_TorchThreadsDuringForward,) + ((_WholeNetwork,) if _whole_network_layers(cls) else ())
        sub = _threads_classes[cls] = type(cls.__name__, (*mixins, cls),
                                           {"__module__": cls.__module__, "__qualname__": cls.__qualname__,
                                            "_fastconv_base": cls})
    return sub


# torchvision classifiers whose forward runs named layers one after the other, the global pool, flatten and
# the classifier: (file, class) -> those layers by name ("mean": MobileNetV2's functional 1x1 average pool,
# "flatten": torch.flatten(x, 1)).
_WHOLE_NETWORKS = {
    ("resnet", "ResNet"): ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4", "avgpool",
                           "flatten", "fc"),
    ("mobilenetv2", "MobileNetV2"): ("features", "mean", "flatten", "classifier"),
    ("vgg", "VGG"): ("features", "avgpool", "flatten", "classifier"),
}


def _whole_network_layers(cls):
    """The layer names of a torchvision ResNet (ResNeXt, Wide ResNet), MobileNetV2 or VGG whose forward is
    torchvision's own (_WHOLE_NETWORKS), or None."""
    for (file, name), layers in _WHOLE_NETWORKS.items():
        base = getattr(sys.modules.get(f"torchvision.models.{file}"), name, None)
        if (base is not None and issubclass(cls, base) and cls.forward is base.forward and
                getattr(cls, "_forward_impl", None) is getattr(base, "_forward_impl", None)):
            return layers
    return None


class _WholeNetwork:
    """Mixed into an optimized torchvision ResNet, MobileNetV2 or VGG. Its forward runs the layers of
    torchvision's forward as one Sequential (`_fc_whole`, kept outside _modules: the same layers, the same
    state_dict), with the global average pool as an AdaptiveAvgPool2d; chained (optimize's chain=True), the
    trunk, the pool and the classifier run as one native call where they chain. A layer replaced since:
    torchvision's forward. Six calls with Python between them cost ResNet-50 3-4% of a forward, at batch 1
    and at 8, against its chained trunk (interleaved, the Xeon); MobileNetV2's head on torch's pool and
    fastconv's Linear, called from Python, took 0.5 ms of a 2.9 ms forward at batch 1 (the Zen 5)."""

    def forward(self, x):
        whole = self.__dict__.get("_fc_whole")
        if whole is None or any(whole._modules[i] is not self._modules.get(name)
                                for i, name in self.__dict__["_fc_whole_names"]):
            return super().forward(x)
        return whole(x)


def _whole_network(model, threads, chain, report):
    """Installs `_fc_whole` on a torchvision classifier of _WHOLE_NETWORKS: its layers in one Sequential,
    a _Chain with chain=True where they hold a run."""
    names = _whole_network_layers(type(model))
    if names is None or any(model._modules.get(n) is None for n in names if n not in ("mean", "flatten")):
        return
    layers = [nn.Flatten(1) if n == "flatten" else
              AdaptiveAvgPool2d.from_pool(nn.AdaptiveAvgPool2d((1, 1)), threads) if n == "mean" else
              model._modules[n] for n in names]
    whole = nn.Sequential(*layers).train(model.training)  # a new Sequential trains: its dropouts would too
    chained = _Chain.of(whole) if chain else None
    if chained is not None:
        whole = chained
        for run in chained.__dict__["_fc_segments"]:
            if isinstance(run, _ConvRun):
                ids = {id(m) for m in run.modules}
                at = [n for n, m in zip(names, layers) if id(m) in ids]
                report.chained.append((f"{at[0]}..{at[-1]}", run.describe() + " (the whole forward)"))
    model.__dict__["_fc_whole"] = whole
    model.__dict__["_fc_whole_names"] = tuple((str(i), n) for i, n in enumerate(names) if n not in ("mean", "flatten"))


def _new_with_torch_threads(cls):
    sub = _threads_subclass(cls)
    return sub.__new__(sub)


def _with_torch_threads(model, n):
    if not isinstance(model, _TorchThreadsDuringForward):
        model.__class__ = _threads_subclass(type(model))
    model._fastconv_torch_threads = n
    return model


def optimize(model, *, mode="estimate", fuse=True, chain=True, algorithm="auto", threads=None,
             workspace_limit=None, torch_threads="auto", verbose=False):
    """An inference copy of `model` (eval mode, no gradients) in which every nn.Conv2d fastconv can run
    is a fastconv Conv2d. With fuse=True: a BatchNorm2d right after a conv is folded into its weights,
    a following ReLU/ReLU6/SiLU/Hardswish/LeakyReLU/Hardtanh/GELU(tanh)/Sigmoid/Tanh becomes its
    post-op, and the residual add of torchvision's BasicBlock, Bottleneck, InvertedResidual (MobileNetV2
    and V3), MBConv and FusedMBConv (EfficientNet), MNASNet's block and RegNet's ResBottleneckBlock is
    fused into the block's last conv; torchvision's BasicConv2d (Inception v3, GoogLeNet) becomes one conv with its batchnorm folded
    and its relu fused, and Inception v3's blocks run their average and max pools on fastconv
    (_InceptionBlock). Patterns are found in nn.Sequential containers and those torchvision
    blocks; anything else keeps running as written, but for nn.MaxPool2d, nn.AdaptiveAvgPool2d and
    nn.Linear, which become MaxPool2d, AdaptiveAvgPool2d and Linear (the same results, or within
    rounding for the global average, faster). A torchvision ResNet, MobileNetV2 or VGG runs its forward's
    layers as one Sequential. With chain=True, every nn.Sequential's runs of two or more fastconv convs
    or linear layers (residual blocks, max pools and a classifier's global pool, flatten and dropout
    included) execute as one native call, with no Python work or allocation per layer (the same results
    as layer by layer; hooks and gradients run layer by layer; a layer replaced later is followed), and
    so does such a network's whole forward where its layers chain (VGG's up to its flatten: the ReLUs
    between its linear layers end the run). mode: 'estimate' or 'measure' (time the candidates once per
    layer shape, at the first forward). threads: fastconv's threads per conv (None:
    torch.get_num_threads() when optimize() is called). torch_threads: torch's intra-op threads while the
    copy's forward runs its remaining torch ops: None leaves torch's setting alone, 'auto' (the
    default) does so when fastconv runs on torch's OpenMP team (fastconv.threading() == 'openmp'),
    and otherwise uses 1, since PyTorch's spinning OpenMP workers would slow oneTBB's.
    The copy has `fastconv_report` (an OptimizeReport); verbose=True also prints it to stderr."""
    # Resolved now: the layers plan at the first forward, where torch's count is torch_threads.
    if threads is None:
        threads = torch.get_num_threads()
    options = {"algorithm": algorithm, "mode": mode, "threads": threads, "workspace_limit": workspace_limit}
    _options(algorithm, None, mode, workspace_limit, 0)  # refuse bad options before copying the model
    fast = copy.deepcopy(model).eval()
    for p in fast.parameters():
        p.requires_grad_(False)
    notes = _Notes()
    if fuse:
        _fuse_blocks(fast, options, notes)
    report = OptimizeReport()
    _replace_layers(fast, options, notes, report)
    if chain:
        fast = _chain_sequentials(fast, report)
    _whole_network(fast, threads, chain, report)
    fast.fastconv_report = report
    _with_torch_threads(fast, torch_threads)
    if verbose:
        print(report, file=sys.stderr)
    return fast
