"""The layer kinds invlab's explicit transposed pass takes, one :class:`~invlab.transposed.rules.Rule`
each, registered with their module types, functions and tensor methods (:func:`register`).

Affine layers (convolution, dense, batch norm in eval mode, poolings' averages) transpose with their
own weights; piecewise-affine nonlinearities (ReLU and its relatives, max pooling, the inhibitor)
keep a state in the forward (a mask, the chosen inputs) that the transpose and the frozen region
reuse; graph plumbing (reshapes, permutations, concatenation, sums, products by constants) transposes
to its own inverse bookkeeping.
"""

from __future__ import annotations

import math
import operator

import torch
import torch.nn as nn
import torch.nn.functional as F

from invlab.models.layers import LocalWinnerTakesAll
from invlab.transposed import ops
from invlab.transposed.rules import Ref, Rule, UnsupportedLayerError, register

# -- affine layers ----------------------------------------------------------------------------


class Conv(Rule):
    kind, summary = "convolution", "1-D and 2-D; stride, dilation, groups, zero padding incl. 'same'; bias or not"

    def check(self, step, tp):
        m = step.module
        if m.padding_mode != "zeros":
            return f"{type(m).__name__} with padding={m.padding!r}, padding_mode={m.padding_mode!r}"
        return None

    def transpose(self, step, g, state, tp):
        m = step.module
        return [ops.conv_transpose(g, m.weight, state[2:], m.stride, m.padding, m.dilation, m.groups, tp.exportable)]

    def frozen(self, step, xs, args, kwargs, state, bias, tp):
        m = step.module
        return m._conv_forward(xs[0], m.weight, m.bias if bias else None)


class Dense(Rule):
    kind, summary = "dense", "a weight matrix on the last axis; bias or not"

    def forward(self, step, xs, args, kwargs, tp):
        return step.call(args, kwargs), None

    def transpose(self, step, g, state, tp):
        return [g @ step.module.weight]  # (N, *, out) @ (out, in)

    def frozen(self, step, xs, args, kwargs, state, bias, tp):
        m = step.module
        return F.linear(xs[0], m.weight, m.bias if bias else None)


class BatchNorm(Rule):
    kind, summary = "batch norm", "in eval mode, with running statistics: an affine map per channel"

    def check(self, step, tp):
        if step.module.running_mean is None:
            return f"{type(step.module).__name__} without running statistics (it normalises with the batch's own)"
        return None

    @staticmethod
    def scale_shift(m: nn.Module, like: torch.Tensor):
        scale = torch.rsqrt(m.running_var + m.eps)  # (C,)
        if m.weight is not None:
            scale = scale * m.weight
        shift = -m.running_mean * scale
        if m.bias is not None:
            shift = shift + m.bias
        view = (1, -1) + (1,) * (like.dim() - 2)
        return scale.view(view), shift.view(view)

    def forward(self, step, xs, args, kwargs, tp):
        if step.module.training:
            raise UnsupportedLayerError(
                f"layer {step.where!r} ({type(step.module).__name__}) is in training mode: batch statistics mix the "
                "examples of a batch, so there is no per-example spline view; call model.eval() (training with R "
                "on such a network goes through autograd, method='autograd')")
        return step.call(args, kwargs), None

    def transpose(self, step, g, state, tp):
        return [g * self.scale_shift(step.module, g)[0]]

    def frozen(self, step, xs, args, kwargs, state, bias, tp):
        scale, shift = self.scale_shift(step.module, xs[0])
        return xs[0] * scale + shift if bias else xs[0] * scale


class FrozenBatchNorm(BatchNorm):
    kind, summary = "frozen batch norm", "torchvision.ops.FrozenBatchNorm2d: never uses batch statistics"

    def check(self, step, tp):
        return None

    def forward(self, step, xs, args, kwargs, tp):
        return step.call(args, kwargs), None


class AvgPool(Rule):
    kind, summary = "average pooling", "1-D and 2-D; padding, ceil_mode, count_include_pad, divisor_override"

    def forward(self, step, xs, args, kwargs, tp):
        h = xs[0]
        n = h.dim() - 2
        m = step.module
        if m is not None:
            opts = dict(kernel=m.kernel_size, stride=m.stride, padding=m.padding, ceil_mode=m.ceil_mode,
                        count_include_pad=m.count_include_pad, divisor=getattr(m, "divisor_override", None))
        else:
            opts = dict(kernel=step.arg(args, kwargs, 1, "kernel_size"), stride=step.arg(args, kwargs, 2, "stride"),
                        padding=step.arg(args, kwargs, 3, "padding", 0),
                        ceil_mode=step.arg(args, kwargs, 4, "ceil_mode", False),
                        count_include_pad=step.arg(args, kwargs, 5, "count_include_pad", True),
                        divisor=step.arg(args, kwargs, 6, "divisor_override"))
        kernel = ops.as_tuple(opts["kernel"], n)
        stride = ops.as_tuple(opts["stride"] or opts["kernel"], n)
        padding = ops.as_tuple(opts["padding"], n)
        uniform = (not opts["ceil_mode"] and opts["divisor"] is None
                   and (opts["count_include_pad"] or not any(padding)))
        if uniform:
            return step.call(args, kwargs), (tuple(h.shape), kernel, stride, padding, None)
        out_size = tuple(ops.pool_windows(h.shape[2 + i], kernel[i], stride[i], padding[i], opts["ceil_mode"])
                         for i in range(n))
        if opts["divisor"] is not None:
            axes = [[1.0] * o for o in out_size]
            axes[0] = [1.0 / opts["divisor"]] * out_size[0]
        else:
            axes = ops.avg_pool_scale(h.shape[2:], out_size, kernel, stride, padding, opts["count_include_pad"], None)
        scale = torch.tensor(axes[0], dtype=h.dtype, device=h.device)
        if n == 2:
            scale = scale[:, None] * torch.tensor(axes[1], dtype=h.dtype, device=h.device)[None, :]
        # ONNX's AveragePool has no divisor_override and counts ceil_mode's windows its own way
        out = ops.avg_pool(h, kernel, stride, padding, out_size, scale) if tp.exportable else step.call(args, kwargs)
        return out, (tuple(h.shape), kernel, stride, padding, scale)

    def frozen(self, step, xs, args, kwargs, state, bias, tp):
        shape, kernel, stride, padding, scale = state
        if scale is not None and tp.exportable:
            return ops.avg_pool(xs[0], kernel, stride, padding, tuple(scale.shape), scale)
        return step.call(args, kwargs)

    def transpose(self, step, g, state, tp):
        shape, kernel, stride, padding, scale = state
        if scale is None:
            return [ops.avg_pool_uniform_transpose(g, shape[2:], kernel, stride, padding)]
        return [ops.avg_pool_transpose(g, shape[2:], kernel, stride, padding, scale)]


class AdaptiveAvgPool(Rule):
    kind, summary = "adaptive average pooling", "1-D and 2-D, to any output size (a separable averaging matrix)"

    def forward(self, step, xs, args, kwargs, tp):
        h = xs[0]
        size = step.module.output_size if step.module is not None else step.arg(args, kwargs, 1, "output_size")
        size = tuple(h.shape[2 + i] if s is None else s for i, s in enumerate(ops.as_tuple(size, h.dim() - 2)))
        out = ops.adaptive_avg(h, size) if tp.exportable else step.call(args, kwargs)
        return out, tuple(h.shape)

    def transpose(self, step, g, state, tp):
        return [ops.adaptive_avg_transpose(g, state[2:])]

    def frozen(self, step, xs, args, kwargs, state, bias, tp):
        return self.forward(step, xs, args, kwargs, tp)[0]


# -- piecewise-affine nonlinearities ------------------------------------------------------------


def first_positive(s: torch.Tensor) -> torch.Tensor:
    """(B, *) candidate step sizes -> (B,) the smallest positive one (inf if none)."""
    s = torch.where(s > 0, s, torch.inf)
    return s.flatten(1).amin(1) if s.dim() > 1 else s


def threshold_crossing(h: torch.Tensor, hd: torch.Tensor, level: float = 0.0) -> torch.Tensor:
    """Where h + s·hd reaches ``level``, per unit: (level - h) / hd (where hd = 0: ±inf or nan, never a
    finite step; :func:`first_positive` drops them)."""
    return (level - h) / hd if level else h.neg().div_(hd)


def winner_crossing(values: torch.Tensor, direction: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
    """Groups on the last axis (B, ..., K): where another member overtakes the group's current winner,
    moving along ``direction``: the smallest positive s (B,)."""
    win = values.argmax(-1, keepdim=True)
    gap = values - values.gather(-1, win)  # <= 0
    closing = direction - direction.gather(-1, win)  # > 0: catching up
    s = torch.where(closing > 0, -gap / torch.where(closing > 0, closing, 1.0), torch.inf)
    if valid is not None:
        s = torch.where(valid, s, torch.inf)
    return first_positive(s)


class ReLU(Rule):
    kind, summary, nonlinear = "ReLU", "module, functional and method forms, in place or not", True

    def forward(self, step, xs, args, kwargs, tp):
        out = torch.relu(xs[0])
        # the output itself (kept by the graph anyway) for threshold_backward, autograd's own ReLU
        # transpose; ONNX has no such operator: a boolean mask there
        return out, (out > 0 if tp.exportable else out)

    def transpose(self, step, g, state, tp):
        if state.dtype == torch.bool or state.shape != g.shape:
            return [torch.where(state if state.dtype == torch.bool else state > 0, g, 0.0)]
        return [torch.ops.aten.threshold_backward(g, state, 0.0)]

    def frozen(self, step, xs, args, kwargs, state, bias, tp):
        return torch.where(state if state.dtype == torch.bool else state > 0, xs[0], 0.0)

    def pattern(self, state):
        return state if state.dtype == torch.bool else state > 0

    def crosses_at_zero(self, step):
        return True

    def crossing(self, step, h, hd, state, tp):
        return first_positive(threshold_crossing(h, hd))


class Slopes(Rule):
    """A nonlinearity whose state is a multiplier per unit (a slope, a winner's mask): y = h · state."""

    nonlinear = True

    def transpose(self, step, g, state, tp):
        return [g * state]

    def frozen(self, step, xs, args, kwargs, state, bias, tp):
        return xs[0] * state

    def pattern(self, state):
        return state


class LeakyReLU(Slopes):
    kind, summary = "leaky ReLU", "a fixed negative slope"

    @staticmethod
    def negative_slope(step, args, kwargs) -> float:
        return step.module.negative_slope if step.module is not None else step.arg(args, kwargs, 1, "negative_slope",
                                                                                   0.01)

    def forward(self, step, xs, args, kwargs, tp):
        h = xs[0]
        # slope 1 where the input is positive, the negative slope elsewhere
        state = torch.where(h > 0, 1.0, self.negative_slope(step, args, kwargs)).to(h.dtype)  # (B, *)
        return h * state, state

    def crosses_at_zero(self, step):  # a slope of 1 on both sides: no change at all
        return float(self.negative_slope(step, step.args, step.kwargs)) != 1.0

    def crossing(self, step, h, hd, state, tp):
        return first_positive(threshold_crossing(h, hd))


class PReLU(Rule):
    kind, summary, nonlinear = "PReLU", "a learned negative slope, per channel or shared", True

    @staticmethod
    def slope(m: nn.Module, like: torch.Tensor) -> torch.Tensor:
        w = m.weight
        return w.view((1, -1) + (1,) * (like.dim() - 2)) if w.numel() > 1 else w

    def forward(self, step, xs, args, kwargs, tp):
        h = xs[0]
        on = h > 0
        return torch.where(on, h, h * self.slope(step.module, h)), on

    def transpose(self, step, g, state, tp):
        return [torch.where(state, g, g * self.slope(step.module, g))]

    def frozen(self, step, xs, args, kwargs, state, bias, tp):
        h = xs[0]
        return torch.where(state, h, h * self.slope(step.module, h))

    def pattern(self, state):
        return state

    def crosses_at_zero(self, step):
        return True

    def crossing(self, step, h, hd, state, tp):
        return first_positive(threshold_crossing(h, hd))


class Clamp(Rule):
    kind, summary, nonlinear = "clamp", "Hardtanh, ReLU6, torch.clamp with constant bounds: two thresholds", True

    def bounds(self, step, args, kwargs):
        m = step.module
        if m is not None:
            return float(m.min_val), float(m.max_val), False
        name = step.target if isinstance(step.target, str) else step.target.__name__
        if name == "relu6":
            return 0.0, 6.0, False
        if name.startswith("hardtanh"):
            lo, hi = step.arg(args, kwargs, 1, "min_val", -1.0), step.arg(args, kwargs, 2, "max_val", 1.0)
            return float(lo), float(hi), False
        if name.startswith("clamp_min"):
            return float(step.arg(args, kwargs, 1, "min")), float("inf"), True
        if name.startswith("clamp_max"):
            return float("-inf"), float(step.arg(args, kwargs, 1, "max")), True
        lo, hi = step.arg(args, kwargs, 1, "min"), step.arg(args, kwargs, 2, "max")
        return (float("-inf") if lo is None else float(lo)), (float("inf") if hi is None else float(hi)), True

    def check(self, step, tp):
        if any(isinstance(a, Ref) for a in list(step.args[1:]) + list(step.kwargs.values())):
            return "a clamp whose bounds are tensors (only constant bounds are piecewise affine)"
        return None

    def forward(self, step, xs, args, kwargs, tp):
        h = xs[0]
        lo, hi, inclusive = self.bounds(step, args, kwargs)
        # autograd passes the gradient strictly inside for hardtanh, on the closed interval for clamp
        mid = (h >= lo) & (h <= hi) if inclusive else (h > lo) & (h < hi)
        high = h >= hi
        return torch.clamp(h, lo, hi), (mid, high, lo, hi)

    def transpose(self, step, g, state, tp):
        return [torch.where(state[0], g, 0.0)]

    def frozen(self, step, xs, args, kwargs, state, bias, tp):
        mid, high, lo, hi = state
        if not bias:
            return torch.where(mid, xs[0], 0.0)
        return torch.where(mid, xs[0], torch.where(high, hi, lo).to(xs[0].dtype))

    def pattern(self, state):
        return state[0].to(torch.uint8) + 2 * state[1].to(torch.uint8)

    def crossing(self, step, h, hd, state, tp):
        lo, hi = state[2], state[3]
        low, high = threshold_crossing(h, hd, lo), threshold_crossing(h, hd, hi)
        return torch.minimum(first_positive(low), first_positive(high))


class MaxPool(Rule):
    kind, summary, nonlinear = ("max pooling", "1-D and 2-D; padding, dilation, ceil_mode (not return_indices)",
                                True)

    def check(self, step, tp):
        if step.module is not None and step.module.return_indices:
            return f"{type(step.module).__name__} with return_indices=True"
        if step.kwargs.get("return_indices") is True or len(step.args) > 6 and step.args[6] is True:
            return "max pooling with return_indices=True"
        return None

    def forward(self, step, xs, args, kwargs, tp):
        h = xs[0]
        m = step.module
        if m is not None:
            k, s, p, d, ceil = m.kernel_size, m.stride, m.padding, m.dilation, m.ceil_mode
        else:
            k, s = step.arg(args, kwargs, 1, "kernel_size"), step.arg(args, kwargs, 2, "stride")
            p, d = step.arg(args, kwargs, 3, "padding", 0), step.arg(args, kwargs, 4, "dilation", 1)
            ceil = step.arg(args, kwargs, 5, "ceil_mode", False)
        n = h.dim() - 2
        opts = (ops.as_tuple(k, n), ops.as_tuple(s or k, n), ops.as_tuple(p, n), ops.as_tuple(d, n), bool(ceil))
        if tp.exportable and (opts[4] or any(opts[2])):  # ONNX's MaxPool: its own ceil_mode windows and ties
            out, idx = ops.max_pool(h, *opts[:4], opts[4])
        else:
            pool = F.max_pool2d if n == 2 else F.max_pool1d
            out, idx = pool(h, *opts[:4], ceil_mode=opts[4], return_indices=True)
        return out, (idx, h, opts)  # h: its shape, and autograd's own transpose takes it

    def transpose(self, step, g, state, tp):
        idx, h, opts = state
        if not tp.exportable and g.dim() == 4 and idx.shape[0] == g.shape[0]:
            # autograd's own max-pool transpose (parallel; ONNX has no such operator)
            return [torch.ops.aten.max_pool2d_with_indices_backward(g, h, *[list(o) for o in opts[:4]], opts[4], idx)]
        return [ops.scatter_to_indices(g, idx, tuple(h.shape[2:]))]

    def frozen(self, step, xs, args, kwargs, state, bias, tp):
        return ops.gather_at_indices(xs[0], state[0])

    def pattern(self, state):
        return state[0]

    def windows(self, h: torch.Tensor, state) -> torch.Tensor:
        """(O, K) flat input positions of each window (the plane's size for padding)."""
        kernel, stride, padding, dilation, ceil = state[2]
        n, size = h.dim() - 2, tuple(h.shape[2:])
        out = state[0].shape[2:]

        def axis(i):
            return [[o * stride[i] - padding[i] + dilation[i] * j for j in range(kernel[i])] for o in range(out[i])]

        plane = math.prod(size)
        if n == 1:
            rows = [[p if 0 <= p < size[0] else plane for p in w] for w in axis(0)]
        else:
            rows = [[r * size[1] + c if 0 <= r < size[0] and 0 <= c < size[1] else plane for r in rw for c in cw]
                    for rw in axis(0) for cw in axis(1)]
        return torch.tensor(rows, device=h.device)

    def crossing(self, step, h, hd, state, tp):
        table = self.windows(h, state)  # (O, K)
        plane = math.prod(h.shape[2:])
        pad = h.new_zeros((*h.shape[:2], 1))
        values = torch.cat([h.flatten(2), pad - torch.inf], 2)[:, :, table]  # (B, C, O, K)
        direction = torch.cat([hd.flatten(2), pad], 2)[:, :, table]
        return winner_crossing(values, direction, (table != plane).expand_as(values))


class AdaptiveMaxPool(MaxPool):
    kind, summary = "adaptive max pooling", "1-D and 2-D, any output size (not return_indices)"

    def check(self, step, tp):
        if step.module is not None and step.module.return_indices or step.kwargs.get("return_indices") is True:
            return "adaptive max pooling with return_indices=True"
        return None

    def forward(self, step, xs, args, kwargs, tp):
        h = xs[0]
        size = step.module.output_size if step.module is not None else step.arg(args, kwargs, 1, "output_size")
        size = tuple(h.shape[2 + i] if s is None else s for i, s in enumerate(ops.as_tuple(size, h.dim() - 2)))
        if tp.exportable:  # ONNX has no adaptive max pooling: the windows gathered, their max taken
            out, idx = ops.adaptive_max(h, size)
        else:
            pool = F.adaptive_max_pool2d if h.dim() == 4 else F.adaptive_max_pool1d
            out, idx = pool(h, size, return_indices=True)
        return out, (idx, h, None)

    def transpose(self, step, g, state, tp):
        idx, h, _ = state
        return [ops.scatter_to_indices(g, idx, tuple(h.shape[2:]))]

    def windows(self, h, state):
        windows = ops.adaptive_windows(tuple(h.shape[2:]), tuple(state[0].shape[2:]))
        longest, plane = max(len(w) for w in windows), math.prod(h.shape[2:])
        return torch.tensor([w + [plane] * (longest - len(w)) for w in windows], device=h.device)


class WinnerTakesAll(Slopes):
    kind, summary = "inhibitor", "invlab's LocalWinnerTakesAll: each group's largest unit passes"
    continuous = False  # at a change of winner, one unit's output jumps from its input to 0

    def forward(self, step, xs, args, kwargs, tp):
        return ops.lwta(xs[0], step.module.group_size)

    def crossing(self, step, h, hd, state, tp):
        k = step.module.group_size
        b, c = h.shape[:2]
        groups = h.reshape(b, c // k, k, *h.shape[2:]).movedim(2, -1)  # (B, C/k, *, k)
        return winner_crossing(groups, hd.reshape(b, c // k, k, *h.shape[2:]).movedim(2, -1))


# -- graph plumbing -----------------------------------------------------------------------------


class Passthrough(Rule):
    kind, summary, passthrough = "identity", "Identity, Dropout in eval mode, contiguous(), clone()", True

    def check(self, step, tp):
        # F.dropout's training defaults to True: only an explicit False (training=self.training in eval) passes
        if step.op == "call_function" and step.arg(step.args, step.kwargs, 2, "training", True) is not False:
            return "a functional dropout with training=True (its mask is drawn inside the call)"
        return None

    def forward(self, step, xs, args, kwargs, tp):
        # contiguous() keeps its values but may change the layout a later view() needs
        return (step.call(args, kwargs) if step.op == "call_method" else xs[0]), None


class Reshape(Rule):
    kind, summary = "reshape", "flatten, view, reshape, squeeze, unsqueeze, Flatten, Unflatten: the batch axis kept"

    def check(self, step, tp):
        name = step.target if isinstance(step.target, str) else getattr(step.target, "__name__", "")
        if step.module is not None:
            mixes = isinstance(step.module, nn.Flatten) and step.module.start_dim == 0
            return "an nn.Flatten that mixes the batch axis (start_dim=0)" if mixes else None
        if name == "flatten" and step.arg(step.args, step.kwargs, 1, "start_dim", 0) == 0:
            return "a flatten that mixes the batch axis (start_dim=0)"
        if name == "squeeze" and len(step.args) < 2 and "dim" not in step.kwargs:
            return "a squeeze without dim (it would drop a batch of one)"
        if name in ("squeeze", "unsqueeze") and step.arg(step.args, step.kwargs, 1, "dim") == 0:
            return f"{name}(0) (the batch axis)"
        return None

    def forward(self, step, xs, args, kwargs, tp):
        out = step.call(args, kwargs)
        if out.dim() == 0 or out.shape[0] != xs[0].shape[0]:
            raise UnsupportedLayerError(f"layer {step.where!r} reshapes {tuple(xs[0].shape)} to {tuple(out.shape)}: "
                                        "the batch axis must stay first and whole")
        return out, tuple(xs[0].shape)

    def transpose(self, step, g, state, tp):
        return [g.reshape(g.shape[0], *state[1:])]


class Permute(Rule):
    kind, summary = "permute", "transpose, permute of the non-batch axes (ShuffleNet's channel shuffle)"

    def forward(self, step, xs, args, kwargs, tp):
        h = xs[0]
        name = step.target
        if name == "transpose" or step.target is torch.transpose:
            a, b = (d % h.dim() for d in (step.arg(args, kwargs, 1, "dim0"), step.arg(args, kwargs, 2, "dim1")))
            perm = list(range(h.dim()))
            perm[a], perm[b] = perm[b], perm[a]
        else:
            dims = args[1:] if step.op == "call_method" and len(args) > 2 else step.arg(args, kwargs, 1, "dims")
            perm = [d % h.dim() for d in dims]
        if perm[0] != 0:
            raise UnsupportedLayerError(f"layer {step.where!r} moves the batch axis ({perm}): it must stay first")
        inverse = [perm.index(i) for i in range(len(perm))]
        return h.permute(perm), inverse

    def transpose(self, step, g, state, tp):
        return [g.permute(state)]


class Concat(Rule):
    kind, inputs = "concatenate", None
    summary = "torch.cat along a non-batch axis (constant parts too, e.g. a class token)"

    @staticmethod
    def parts(step) -> list:
        return list(step.args[0] if step.args else step.kwargs.get("tensors"))

    def forward(self, step, xs, args, kwargs, tp):
        out = step.call(args, kwargs)
        dim = step.arg(args, kwargs, 1, "dim", 0) % out.dim()
        if dim == 0:
            raise UnsupportedLayerError(f"layer {step.where!r} concatenates along the batch axis")
        parts = self.parts(step)
        values = args[0] if args else kwargs["tensors"]
        on_path = [isinstance(p, Ref) and p.name in step.inputs for p in parts]
        return out, (dim, [v.shape[dim] for v in values], on_path)

    def transpose(self, step, g, state, tp):
        dim, sizes, on_path = state
        return [p for p, keep in zip(g.split(sizes, dim), on_path) if keep]

    def frozen(self, step, xs, args, kwargs, state, bias, tp):
        values = list(args[0] if args else kwargs["tensors"])
        if not bias:  # constant parts are the map's offset: zero in its linear part
            values = [v if keep else torch.zeros_like(v) for v, keep in zip(values, state[2])]
        return torch.cat(values, state[0])


class Split(Rule):
    kind, summary, returns_tuple = "split", "chunk and split along a non-batch axis, their parts taken by index", True

    def forward(self, step, xs, args, kwargs, tp):
        parts = step.call(args, kwargs)
        dim = step.arg(args, kwargs, 2, "dim", 0) % xs[0].dim()
        if dim == 0:
            raise UnsupportedLayerError(f"layer {step.where!r} splits the batch axis")
        return parts, (dim, [p.shape for p in parts])

    def transpose(self, step, g, state, tp):  # g: {part index: cotangent}
        dim, shapes = state
        n = next(iter(g.values())).shape[0]
        parts = [g[i] if i in g else next(iter(g.values())).new_zeros(n, *s[1:]) for i, s in enumerate(shapes)]
        return [torch.cat(parts, dim)]


class Part(Rule):
    kind, summary = "part", "indexing a chunk or split by an integer"

    def check(self, step, tp):
        source = tp.step(step.inputs[0])
        if not isinstance(step.args[1], int) or not isinstance(source.rule, Split):
            return "indexing of a tensor (only a chunk's or split's parts can be taken by index)"
        return None

    def forward(self, step, xs, args, kwargs, tp):
        return args[0][args[1]], None

    def transpose(self, step, g, state, tp):
        return [{step.args[1]: g}]


class Reduce(Rule):
    kind, summary = "mean/sum", "mean or sum over non-batch axes (global average pooling)"

    def forward(self, step, xs, args, kwargs, tp):
        h = xs[0]
        dims = step.arg(args, kwargs, 1, "dim")
        if dims is None or kwargs.get("dtype") is not None:
            raise UnsupportedLayerError(f"layer {step.where!r} reduces over every axis, the batch's too: give dim=")
        dims = sorted(d % h.dim() for d in ops.as_tuple(dims, 1))
        if 0 in dims:
            raise UnsupportedLayerError(f"layer {step.where!r} reduces over the batch axis")
        keep = bool(step.arg(args, kwargs, 2, "keepdim", False))
        name = step.target if isinstance(step.target, str) else step.target.__name__
        count = 1
        for d in dims:
            count *= h.shape[d]
        return step.call(args, kwargs), (tuple(h.shape), dims, keep, count if name == "mean" else 1)

    def transpose(self, step, g, state, tp):
        shape, dims, keep, count = state
        if not keep:
            for d in dims:
                g = g.unsqueeze(d)
        g = g.expand(g.shape[0], *shape[1:])
        return [g / count if count != 1 else g]


class Sum(Rule):
    kind, summary, inputs = "sum", "x + y, x - y, x += y, -x, and a constant added (residual connections)", 2

    def check(self, step, tp):
        if step.kwargs.get("alpha", 1) != 1 or len(step.args) > 2:
            return "a sum with alpha"
        return None

    @staticmethod
    def signs(step) -> list[int]:
        """+1 or -1 for each input that depends on x, in order."""
        name = step.target if isinstance(step.target, str) else step.target.__name__
        if name.startswith("neg"):
            return [-1]
        minus = name.startswith(("sub", "isub"))
        return [-1 if i == 1 and minus else 1 for i, a in enumerate(step.args[:2]) if isinstance(a, Ref)]

    def forward(self, step, xs, args, kwargs, tp):
        return step.call(args, kwargs), [tuple(x.shape) for x in xs]

    def transpose(self, step, g, state, tp):
        return [ops.unbroadcast(g if s > 0 else -g, shape) for s, shape in zip(self.signs(step), state)]

    def frozen(self, step, xs, args, kwargs, state, bias, tp):
        if bias:
            return step.call(args, kwargs)
        out = None  # the constant terms dropped: the linear part
        for s, x in zip(self.signs(step), xs):
            out = (x if s > 0 else -x) if out is None else out + (x if s > 0 else -x)
        return out


class Scale(Rule):
    kind, summary, inputs = "scale", "a product or division by a constant (3.0 * x, x / 2, a fixed tensor)", None

    def check(self, step, tp):
        if len(step.inputs) != 1 or sum(isinstance(a, Ref) and a.name == step.inputs[0] for a in step.args) != 1:
            return "a product of two tensors that both depend on the input (not piecewise affine)"
        name = step.target if isinstance(step.target, str) else step.target.__name__
        if "div" in name and not (isinstance(step.args[0], Ref) and step.args[0].name == step.inputs[0]):
            return "a division by a tensor that depends on the input (not piecewise affine)"
        if step.kwargs.get("rounding_mode") is not None:
            return "a rounded division (not piecewise affine)"
        return None

    def forward(self, step, xs, args, kwargs, tp):
        name = step.target if isinstance(step.target, str) else step.target.__name__
        const = args[1] if isinstance(step.args[0], Ref) and step.args[0].name == step.inputs[0] else args[0]
        return step.call(args, kwargs), (const, "div" in name, tuple(xs[0].shape))

    def transpose(self, step, g, state, tp):
        const, div, shape = state
        return [ops.unbroadcast(g / const if div else g * const, shape)]


register(Conv(), modules=(nn.Conv1d, nn.Conv2d))
register(Dense(), modules=(nn.Linear,))
register(BatchNorm(), modules=(nn.BatchNorm1d, nn.BatchNorm2d))
register(FrozenBatchNorm(), modules=("torchvision.ops.misc.FrozenBatchNorm2d",))  # torchvision imported on use
register(AvgPool(), modules=(nn.AvgPool1d, nn.AvgPool2d), functions=(F.avg_pool1d, F.avg_pool2d))
register(AdaptiveAvgPool(), modules=(nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d),
         functions=(F.adaptive_avg_pool1d, F.adaptive_avg_pool2d))
register(ReLU(), modules=(nn.ReLU,), functions=(F.relu, F.relu_, torch.relu, torch.relu_),
         methods=("relu", "relu_"))
register(LeakyReLU(), modules=(nn.LeakyReLU,), functions=(F.leaky_relu, F.leaky_relu_))
register(PReLU(), modules=(nn.PReLU,))
register(Clamp(), modules=(nn.Hardtanh, nn.ReLU6), functions=(F.hardtanh, F.hardtanh_, F.relu6, torch.clamp,
                                                               torch.clip, torch.clamp_min, torch.clamp_max),
         methods=("clamp", "clip", "clamp_", "clip_", "clamp_min", "clamp_max"))
register(MaxPool(), modules=(nn.MaxPool1d, nn.MaxPool2d), functions=(F.max_pool1d, F.max_pool2d))
register(AdaptiveMaxPool(), modules=(nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d),
         functions=(F.adaptive_max_pool1d, F.adaptive_max_pool2d))
register(WinnerTakesAll(), modules=(LocalWinnerTakesAll,))
register(Passthrough(), modules=(nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d),
         functions=(F.dropout, F.dropout1d, F.dropout2d), methods=("contiguous", "clone"))
register(Reshape(), modules=(nn.Flatten, nn.Unflatten), functions=(torch.flatten, torch.reshape, torch.squeeze,
                                                                    torch.unsqueeze),
         methods=("flatten", "view", "reshape", "squeeze", "unsqueeze"))
register(Permute(), functions=(torch.transpose, torch.permute), methods=("transpose", "permute"))
register(Concat(), functions=(torch.cat, torch.concat, torch.concatenate))
register(Split(), functions=(torch.chunk, torch.split), methods=("chunk", "split"))
register(Part(), functions=(operator.getitem,))
register(Reduce(), functions=(torch.mean, torch.sum), methods=("mean", "sum"))
register(Sum(), functions=(operator.add, operator.sub, operator.iadd, operator.isub, operator.neg, torch.add,
                           torch.sub, torch.neg), methods=("add", "sub", "neg"))
register(Scale(), functions=(operator.mul, operator.truediv, operator.imul, operator.itruediv, torch.mul, torch.div),
         methods=("mul", "div"))
