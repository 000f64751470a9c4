"""Training on fastconv: torch.autograd.Functions whose forward and backward both run fastconv plans
(forward, backward-data, backward-weights; design.md section 11), for fastconv.torch.Conv2d and
fastconv.torch.ConvTranspose2d."""

import warnings

import torch
import torch.nn as nn

from . import _fastconv as _C
from ._api import Error, _cached_plan, _problem_key
from ._backward import backward_data, backward_weights, backward_plan, transposed_problem

_NO_POST = {"activation": "none", "residual": False}


def _threads(layer):
    threads = getattr(layer, "_fc_threads", None)
    return threads if threads is not None else torch.get_num_threads()


def _contiguous(t):
    return t if t.is_contiguous() else t.contiguous()


_CACHED_BYTES = 4 << 20


def new_tensor(shape):
    """An uninitialised float32 tensor for a layer's result. From 4 MiB up, from fastconv's buffer
    cache: a fresh mapping per call costs a page fault per 4 KiB (16->96 1x1 at batch 8: 14.6 ms of
    faults beside 8.3 ms of convolution); reused buffers cost none. Smaller: torch's allocator."""
    n = 1
    for d in shape:
        n *= d
    if 4 * n >= _CACHED_BYTES:
        return torch.from_numpy(_C.cached_empty(tuple(shape)))
    return torch.empty(shape)


def _gradients(key, input, grad, weight, need_input, need_weight, need_bias, threads, input_grad_shape=None):
    """(dx, dw, db) of the forward problem `key` from x and dy (4-D float32 tensors); None where not
    needed. dx has the forward input's shape unless input_grad_shape crops it."""
    g = grad.numpy()
    dx = dw = db = None
    if need_input:
        dx = new_tensor(key[:4])
        backward_data(key, g, weight.numpy(), out=dx.numpy(), threads=threads)
    if need_weight or need_bias:
        dw = torch.empty(weight.shape)
        db = torch.empty(key[4]) if need_bias else None
        backward_weights(key, input.numpy(), g, dw.numpy(), None if db is None else db.numpy(), threads=threads)
    return dx, dw if need_weight else None, db


class _Conv2dFunction(torch.autograd.Function):
    """Conv2d (zero padding; no activation or ReLU; optional residual) on fastconv in both directions."""

    @staticmethod
    def forward(ctx, layer, input, residual, weight, bias):
        out = layer._fastconv_forward(input, residual)
        unbatched = input.dim() == 3
        batched = (1,) + tuple(input.shape) if unbatched else tuple(input.shape)
        ctx.key = _problem_key(batched, tuple(weight.shape), layer.stride, layer.padding, layer.dilation,
                               layer.groups)
        ctx.unbatched, ctx.relu, ctx.threads = unbatched, layer.activation == "relu", _threads(layer)
        ctx.has_residual = residual is not None
        ctx.save_for_backward(input, weight, out if ctx.relu else None)
        return out

    @staticmethod
    def backward(ctx, grad_output):
        input, weight, out = ctx.saved_tensors
        g = grad_output
        if ctx.relu:
            g = g * (out > 0)
        if ctx.unbatched:
            g, input = g.unsqueeze(0), input.unsqueeze(0)
        g = _contiguous(g.detach())
        need = ctx.needs_input_grad
        dx, dw, db = _gradients(ctx.key, _contiguous(input.detach()), g, _contiguous(weight.detach()), need[1],
                                need[3], need[4], ctx.threads)
        if dx is not None and ctx.unbatched:
            dx = dx.squeeze(0)
        dr = None
        if ctx.has_residual and need[2]:
            dr = g.squeeze(0) if ctx.unbatched else g
        return None, dx, dr, dw, db


def conv2d_autograd(layer, input, residual, fallback):
    """The training forward of fastconv.torch.Conv2d: on backward plans when fastconv has them for this
    layer (zero padding; no post-op or ReLU), else `fallback` (forward on fastconv, backward on torch)."""
    if layer.padding_mode == "zeros" and layer.activation in (None, "relu"):
        return _Conv2dFunction.apply(layer, input, residual, layer.weight, layer.bias)
    return fallback.apply(layer, input, residual, layer.weight, layer.bias)


# ---------------------------------------------------------------------------------------------------
# ConvTranspose2d


class _ConvTranspose2dFunction(torch.autograd.Function):
    """y = conv_transpose2d(x, w, b): the backward-data plan of the forward problem `key`; its input
    gradient is that forward convolution of dy, its weight gradient the forward's backward-weights
    with the roles of x and dy swapped, its bias gradient dy summed over batch and pixels."""

    @staticmethod
    def forward(ctx, key, rows, cols, threads, input, weight, bias):
        x = _contiguous(input.detach())
        unbatched = x.dim() == 3
        if unbatched:
            x = x.unsqueeze(0)
        h, w = x.shape[2:]
        if (rows, cols) != (h, w):  # output_padding >= stride (< dilation): the forward's output is larger
            padded = x.new_zeros(x.shape[:2] + (rows, cols))
            padded[:, :, :h, :w] = x
            x = padded
        wt = _contiguous(weight.detach())
        b = None if bias is None else _contiguous(bias.detach()).numpy()
        y = new_tensor(key[:4])
        backward_data(key, x.numpy(), wt.numpy(), b, out=y.numpy(), threads=threads)
        ctx.key, ctx.threads, ctx.unbatched, ctx.size = key, threads, unbatched, (h, w)
        ctx.save_for_backward(x, wt)
        return y.squeeze(0) if unbatched else y

    @staticmethod
    def backward(ctx, grad_output):
        x, wt = ctx.saved_tensors  # x: the batched (and padded) input
        g = grad_output.unsqueeze(0) if ctx.unbatched else grad_output
        g = _contiguous(g.detach())
        need = ctx.needs_input_grad
        dx = dw = db = None
        if need[4]:
            plan = _cached_plan(ctx.key, "zeros", _NO_POST,
                                {"algorithm": "auto", "mode": "estimate", "workspace_limit": _default_limit(),
                                 "threads": ctx.threads, "implementation": "", "weights_change": True})
            full = new_tensor(x.shape)
            plan.execute(g.numpy(), plan.pack_weights(wt.numpy(), None), full.numpy())
            h, w = ctx.size
            dx = full if (h, w) == tuple(x.shape[2:]) else full[:, :, :h, :w].contiguous()
            if ctx.unbatched:
                dx = dx.squeeze(0)
        if need[5]:
            dw = torch.empty(wt.shape)
            backward_weights(ctx.key, g.numpy(), x.numpy(), dw.numpy(), None, threads=ctx.threads)
        if need[6]:
            db = g.sum((0, 2, 3))
        return None, None, None, None, dx, dw, db


def _default_limit():
    from . import _fastconv as _C

    return _C.default_workspace_limit()


class ConvTranspose2d(nn.ConvTranspose2d):
    """torch.nn.ConvTranspose2d on fastconv (forward: a backward-data plan; backward: the forward and
    backward-weights plans), with autograd. Same arguments, plus keyword-only threads (None: torch's
    get_num_threads()). What fastconv cannot run (another dtype or device) runs on torch, with one
    warning."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0, groups=1,
                 bias=True, dilation=1, padding_mode="zeros", device=None, dtype=None, *, threads=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, output_padding, groups, bias,
                         dilation, padding_mode, device, dtype)
        self._fc_threads = threads
        self._fc_said = set()

    @classmethod
    def from_conv(cls, conv, **options):
        """A fastconv ConvTranspose2d sharing `conv`'s parameters (no copy) and configuration."""
        layer = cls(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                    conv.output_padding, conv.groups, conv.bias is not None, conv.dilation, conv.padding_mode,
                    device="meta", dtype=conv.weight.dtype, **options)
        layer.weight = conv.weight
        layer.bias = conv.bias
        layer.train(conv.training)
        return layer

    def extra_repr(self):
        return super().extra_repr() + ", fastconv"

    def forward(self, input, output_size=None):
        if self.padding_mode != "zeros":
            raise ValueError("Only `zeros` padding mode is supported for ConvTranspose2d")
        output_padding = self._output_padding(input, output_size, self.stride, self.padding, self.kernel_size, 2,
                                              self.dilation)
        reason = None
        if input.device.type != "cpu" or self.weight.device.type != "cpu":
            reason = f"device {input.device}"
        elif input.dtype != torch.float32 or self.weight.dtype != torch.float32:
            reason = f"dtype {input.dtype} (fastconv runs float32)"
        elif input.dim() not in (3, 4):
            reason = f"a {input.dim()}-D input"
        if reason is None:
            batched = tuple(input.shape) if input.dim() == 4 else (1,) + tuple(input.shape)
            key, _, rows, cols = transposed_problem(batched, tuple(self.weight.shape), self.stride, self.padding,
                                                    output_padding, self.groups, self.dilation)
            return _ConvTranspose2dFunction.apply(key, rows, cols, _threads(self), input, self.weight, self.bias)
        if reason not in self._fc_said:
            self._fc_said.add(reason)
            warnings.warn(f"fastconv.torch.ConvTranspose2d({self.extra_repr()}): runs on torch: {reason}",
                          stacklevel=2)
        return nn.functional.conv_transpose2d(input, self.weight, self.bias, self.stride, self.padding,
                                              output_padding, self.groups, self.dilation)


__all__ = ["ConvTranspose2d", "conv2d_autograd", "backward_plan", "Error"]
