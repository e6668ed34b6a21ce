"""The inverse as an explicit transposed pass: the forward's states reused, no autograd.

For a piecewise-affine network, the Jacobian at x is a product of the layers' linear parts
on x's region: A[x] = W_L M_{L-1} W_{L-1} ... M_1 W_1, with W_l a convolution, a dense
layer or a pooling's averaging, and M_l the diagonal (or selection) matrix of the
nonlinearity's state at x: a ReLU's on/off mask, a max-pool's chosen inputs, an inhibitor
group's winners. Its transpose applied to a cotangent u,

    A[x]^T u = W_1^T M_1 W_2^T ... M_{L-1} W_L^T u,

is the same computation run backwards with *forward* operators only: a transposed
convolution with the convolution's own weights, a mask product, a pooling's transpose
(a depthwise transposed convolution with the constant averaging kernel, or a scatter to
the saved max-pool indices), a multiplication by the dense weights. This is what
``torch.autograd.grad(logits, x, u)`` computes, written out:

* it exports to ONNX (autograd's ``convolution_backward`` does not), so the browser can
  compute templates and reconstructions (``invlab export``);
* with u = f(x) and the weights in autograd's graph, it is an ordinary differentiable
  computation: the gradient of a loss on A[x]^T f(x) needs one backward pass, not a
  backward through a backward (``forward_inverse(..., method="transposed")``).

The network is read with ``torch.fx``: the layers invlab's own models use are supported
(:data:`SUPPORTED`); anything else is refused before any work, naming the layer, its type
and what is supported (:class:`UnsupportedLayerError`).

Shapes: the forward takes x (B, *D); the transposed pass takes cotangents (N, C) with N = B
(one per example) or B = 1 and any N (several cotangents for one example, e.g. the C
one-hot rows that give the templates A[x]).
"""

from __future__ import annotations

import math
import operator
import weakref
from dataclasses import dataclass, field

import torch
import torch.fx as fx
import torch.nn as nn
import torch.nn.functional as F

from invlab.models.layers import LocalWinnerTakesAll

#: The layers an explicit transposed pass handles, by kind.
SUPPORTED_MODULES = {
    nn.Conv1d: "conv", nn.Conv2d: "conv", nn.Linear: "linear",
    nn.ReLU: "relu", nn.LeakyReLU: "leaky_relu", LocalWinnerTakesAll: "lwta",
    nn.AvgPool1d: "avg_pool", nn.AvgPool2d: "avg_pool", nn.MaxPool1d: "max_pool", nn.MaxPool2d: "max_pool",
    nn.Flatten: "flatten", nn.Identity: "identity", nn.Dropout: "dropout",
}
#: What the refusal message lists.
SUPPORTED = ("Conv1d, Conv2d (zero padding), Linear, ReLU, LeakyReLU, LocalWinnerTakesAll, "
             "AvgPool1d/2d and MaxPool1d/2d (ceil_mode=False), Flatten, Identity, Dropout (eval), "
             "x.flatten(...), x.mean(dim=...) (global average pooling) and residual sums a + b")


class UnsupportedLayerError(ValueError):
    """A network the explicit transposed pass cannot take (named layer, type, what is supported)."""


@dataclass
class _Step:
    name: str  # the fx node's name
    kind: str
    inputs: list[str]
    module: nn.Module | None = None
    options: dict = field(default_factory=dict)


class _Tracer(fx.Tracer):
    """Stops at the layers with a transposed rule; user modules are traced through."""

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return type(m) in SUPPORTED_MODULES or super().is_leaf_module(m, qualname)


def _refuse(model: nn.Module, where: str, what: str) -> UnsupportedLayerError:
    return UnsupportedLayerError(
        f"{type(model).__name__}: layer {where!r} ({what}) has no explicit transposed rule; "
        f"supported: {SUPPORTED}")


def _check_module(model: nn.Module, target: str, module: nn.Module) -> str:
    kind = SUPPORTED_MODULES.get(type(module))
    if kind is None:
        raise _refuse(model, target, type(module).__name__)
    if kind == "conv" and (module.padding_mode != "zeros" or isinstance(module.padding, str)
                           and module.padding != "valid"):
        raise _refuse(model, target, f"{type(module).__name__} with padding={module.padding!r}, "
                                     f"padding_mode={module.padding_mode!r}")
    if kind in ("avg_pool", "max_pool") and module.ceil_mode:
        raise _refuse(model, target, f"{type(module).__name__} with ceil_mode=True")
    if kind == "avg_pool" and (getattr(module, "divisor_override", None) is not None
                               or not module.count_include_pad and _any(module.padding)):
        raise _refuse(model, target, f"{type(module).__name__} with a divisor other than its kernel's size")
    return kind


def _any(v) -> bool:
    return any(v) if isinstance(v, (tuple, list)) else bool(v)


def _tuple(v, n: int) -> tuple[int, ...]:
    return tuple(v) if isinstance(v, (tuple, list)) else (v,) * n


class TransposedPass:
    """A network read as layers with explicit transposes (see the module docstring).

    ``TransposedPass(model)`` analyses the network once (``torch.fx``) and raises
    :class:`UnsupportedLayerError` for a layer it cannot transpose. The weights are read
    from ``model`` at every call, so it follows training.

    >>> tp = TransposedPass(model)
    >>> logits, states = tp.forward(x)            # (B, C), the nonlinearities' states
    >>> rec = tp.transpose(logits, states)        # (B, *D), the reconstruction
    """

    def __init__(self, model: nn.Module, exportable: bool = False):
        self.model, self.exportable = model, exportable
        try:
            graph = _Tracer().trace(model)
        except Exception as err:  # noqa: BLE001 (torch.fx fails in many ways: data-dependent control flow, ...)
            raise UnsupportedLayerError(
                f"{type(model).__name__} cannot be read as a graph of layers (torch.fx: {err}); "
                f"supported: {SUPPORTED}") from None
        self.steps: list[_Step] = []
        self._targets: dict[str, str] = {}  # graph node -> module name
        placeholders = 0
        for node in graph.nodes:
            args = [a.name for a in node.all_input_nodes]
            if node.op == "placeholder":
                placeholders += 1
                if placeholders > 1:
                    raise UnsupportedLayerError(f"{type(model).__name__}.forward takes more than one input")
                self.steps.append(_Step(node.name, "input", []))
            elif node.op == "output":
                if not isinstance(node.args[0], fx.Node):
                    raise UnsupportedLayerError(f"{type(model).__name__}.forward must return one tensor (the logits)")
                self.output = node.args[0].name
            elif node.op == "call_module":
                module = model.get_submodule(node.target)
                kind = _check_module(model, node.target, module)
                options = {"start": module.start_dim, "end": module.end_dim} if kind == "flatten" else {}
                self.steps.append(_Step(node.name, kind, args, module, options))
                self._targets[node.name] = node.target
            else:
                self.steps.append(self._function_step(node, args))
        self._dropouts = [s.module for s in self.steps if s.kind == "dropout"]

    @property
    def drawing_masks(self) -> bool:
        """Whether a dropout layer draws masks now (training mode): they are drawn inside the
        layer, where the transposed pass cannot read them."""
        return self.model.training and any(m.p > 0 for m in self._dropouts)

    def _function_step(self, node: fx.Node, args: list[str]) -> _Step:
        target = node.target
        name = target if isinstance(target, str) else getattr(target, "__name__", str(target))
        where = f"{node.name}: {node.op} {name}"
        if node.op == "call_method" and target == "flatten" or target is torch.flatten:
            start = node.args[1] if len(node.args) > 1 else node.kwargs.get("start_dim", 0)
            end = node.args[2] if len(node.args) > 2 else node.kwargs.get("end_dim", -1)
            if start == 0 or len(args) != 1:
                raise _refuse(self.model, where, "a flatten that mixes the batch axis")
            return _Step(node.name, "flatten", args, options={"start": start, "end": end})
        if node.op == "call_method" and target == "mean" or target is torch.mean:
            dims = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim")
            keepdim = node.kwargs.get("keepdim", node.args[2] if len(node.args) > 2 else False)
            dims = _tuple(dims, 1) if dims is not None else None
            if dims is None or 0 in dims or len(args) != 1 or node.kwargs.get("dtype") is not None:
                raise _refuse(self.model, where, "a mean over the batch axis or without dim=")
            return _Step(node.name, "mean", args, options={"dims": dims, "keepdim": bool(keepdim)})
        if target in (operator.add, torch.add) or node.op == "call_method" and target == "add":
            if len(args) != 2 or node.kwargs.get("alpha", 1) != 1 or len(node.args) != 2:
                raise _refuse(self.model, where, "a sum that is not of two tensors")
            return _Step(node.name, "add", args)
        raise _refuse(self.model, where, f"the {'method' if node.op == 'call_method' else 'function'} {name}")

    # -- the forward, keeping each nonlinearity's state -------------------------------------
    def node_names(self, layers) -> dict[str, str] | None:
        """{layer: graph node} for module names of ``model.named_modules()`` (``"input"``: x), or
        ``None`` if one of them does not run exactly once in the forward (its output is ambiguous)."""
        out = {}
        for layer in layers:
            if layer == "input":
                out[layer] = self.steps[0].name
                continue
            found = [s for s in self.steps if s.module is not None and self._targets.get(s.name) == layer]
            if len(found) != 1:
                return None
            step = found[0]
            while step.kind in ("identity", "dropout"):  # returns its input itself: the same tensor as z
                step = next(s for s in self.steps if s.name == step.inputs[0])
            out[layer] = step.name
        return out

    def forward(self, x: torch.Tensor, keep=()) -> tuple[torch.Tensor, dict]:
        """Logits f(x) (B, C) and the states the transposed pass needs (masks, pool indices,
        shapes); with ``keep`` (graph node names), also those nodes' outputs, as ``states["z"]``."""
        if self.drawing_masks:
            raise UnsupportedLayerError("dropout in training mode: its mask is drawn inside the layer, where the "
                                        "transposed pass cannot read it; use the autograd path (method='autograd')")
        values: dict[str, torch.Tensor] = {}
        states: dict[str, object] = {}
        for s in self.steps:
            h = values[s.inputs[0]] if s.inputs else x
            kind, m = s.kind, s.module
            if kind == "input":
                out = x
            elif kind in ("conv", "linear", "avg_pool", "leaky_relu"):
                out = m(h)
                if kind == "leaky_relu":  # slope 1 where the input is positive, the negative slope elsewhere
                    states[s.name] = torch.where(h > 0, 1.0, m.negative_slope).to(h.dtype)  # (B, *)
                elif kind != "linear":
                    states[s.name] = h.shape
            elif kind == "relu":
                out = torch.relu(h)
                # the output itself (kept by the graph anyway) for threshold_backward, autograd's own ReLU
                # transpose; ONNX has no such operator: a boolean mask there
                states[s.name] = out > 0 if self.exportable else out
            elif kind == "lwta":
                out, states[s.name] = _lwta(h, m.group_size)
            elif kind == "max_pool":
                pool = F.max_pool2d if h.dim() == 4 else F.max_pool1d
                out, idx = pool(h, m.kernel_size, m.stride, m.padding, m.dilation, ceil_mode=False, return_indices=True)
                states[s.name] = (idx, h)  # h: its shape, and autograd's own transpose takes it
            elif kind == "flatten":
                out = h.flatten(s.options["start"], s.options["end"])
                states[s.name] = h.shape
            elif kind == "mean":
                out = h.mean(dim=s.options["dims"], keepdim=s.options["keepdim"])
                states[s.name] = h.shape
            elif kind == "add":
                out = h + values[s.inputs[1]]
            else:  # identity, dropout in eval mode
                out = h
            values[s.name] = out
        if keep:
            states["z"] = {name: values[name] for name in keep}
        return values[self.output], states

    # -- the transposed pass ---------------------------------------------------------------
    def transpose(self, cotangent: torch.Tensor, states: dict, capture=()) -> torch.Tensor:
        r""":math:`A[x]^\top u` for cotangents u (N, C): (N, \*D). N = B, or B = 1 and any N.

        With ``capture`` (graph node names), returns ``(rec, {node: rec_z})`` with
        :math:`\mathrm{rec}_z = (\partial f/\partial z)^\top u` for z each node's output: the
        transposed pass reaches every layer on its way (eq. 12)."""
        grads: dict[str, torch.Tensor] = {self.output: cotangent}
        result, captured = None, {}
        for s in reversed(self.steps):
            g = grads.pop(s.name, None)
            if g is None:
                continue  # a branch that does not reach the logits
            if s.name in capture:
                captured[s.name] = g
            kind, m = s.kind, s.module
            if kind == "input":
                result = g
                continue
            if kind == "conv":
                g = self._conv_t(g, m, states[s.name])
            elif kind == "linear":
                g = g @ m.weight  # (N, out) @ (out, in)
            elif kind == "relu":  # the units that were on pass the cotangent
                state = states[s.name]
                g = torch.where(state, g, 0.0) if state.dtype == torch.bool else torch.ops.aten.threshold_backward(
                    g, state, 0.0)
            elif kind in ("lwta", "leaky_relu"):
                g = g * states[s.name]
            elif kind == "avg_pool":
                g = self._avg_pool_t(g, m, states[s.name])
            elif kind == "max_pool":
                idx, h = states[s.name]
                n, c = g.shape[:2]
                if not self.exportable and g.dim() == 4 and idx.shape[0] == n:
                    # autograd's own max-pool transpose (parallel; ONNX has no such operator)
                    g = torch.ops.aten.max_pool2d_with_indices_backward(
                        g, h, _tuple(m.kernel_size, 2), _tuple(m.stride or m.kernel_size, 2), _tuple(m.padding, 2),
                        _tuple(m.dilation, 2), False, idx)
                else:  # each window's cotangent added to the input it chose (overlapping windows add up)
                    flat = g.new_zeros(n, c, math.prod(h.shape[2:]))
                    flat = flat.scatter_add(2, idx.flatten(2).expand(n, -1, -1), g.flatten(2))
                    g = flat.view(n, c, *h.shape[2:])
            elif kind == "flatten":
                g = g.reshape(g.shape[0], *states[s.name][1:])
            elif kind == "mean":
                shape = states[s.name]
                dims = [d % len(shape) for d in s.options["dims"]]
                if not s.options["keepdim"]:
                    for d in sorted(dims):
                        g = g.unsqueeze(d)
                count = math.prod(shape[d] for d in dims)
                g = g.expand(g.shape[0], *shape[1:]) / count
            for name in (s.inputs if kind == "add" else s.inputs[:1]):
                grads[name] = grads[name] + g if name in grads else g
        if result is None:
            raise RuntimeError("the logits do not depend on the input")
        return (result, captured) if capture else result

    def _conv_t(self, g: torch.Tensor, m: nn.Module, shape: torch.Size) -> torch.Tensor:
        n = g.dim() - 2
        stride, dilation = _tuple(m.stride, n), _tuple(m.dilation, n)
        padding = (0,) * n if m.padding == "valid" else _tuple(m.padding, n)
        kernel = m.weight.shape[2:]
        if (n == 2 and m.groups == 1 and m.in_channels <= _FOLD_CHANNELS and not self.exportable
                and g.device.type == "cpu"):
            return _FoldConvTranspose.apply(g, m.weight, tuple(shape[2:]), stride, padding, dilation)
        # the rows and columns the convolution's stride skipped at the end come back as zeros
        extra = tuple(shape[2 + i] - ((g.shape[2 + i] - 1) * stride[i] - 2 * padding[i]
                                      + dilation[i] * (kernel[i] - 1) + 1) for i in range(n))
        conv_t = F.conv_transpose2d if n == 2 else F.conv_transpose1d
        return conv_t(g, m.weight, None, stride, padding, extra, m.groups, dilation)

    @staticmethod
    def _avg_pool_t(g: torch.Tensor, m: nn.Module, shape: torch.Size) -> torch.Tensor:
        n = g.dim() - 2
        kernel = _tuple(m.kernel_size, n)
        stride = _tuple(m.stride if m.stride is not None else m.kernel_size, n)
        padding = _tuple(m.padding, n)
        channels = g.shape[1]
        weight = g.new_full((channels, 1, *kernel), 1.0 / math.prod(kernel))  # each input averaged in
        extra = tuple(shape[2 + i] - ((g.shape[2 + i] - 1) * stride[i] - 2 * padding[i] + kernel[i])
                      for i in range(n))
        conv_t = F.conv_transpose2d if n == 2 else F.conv_transpose1d
        return conv_t(g, weight, None, stride, padding, extra, channels)

    def region_bias(self, states: dict, shape: torch.Size) -> torch.Tensor:
        """b[x] (B, C): the affine map of x's region evaluated at 0 — the forward run again from a
        zero input with every nonlinearity's state frozen at x's (masks, max-pool choices). With
        :meth:`transpose`'s A[x], f(x) = <A[x], x> + b[x] is then a check of eq. 1, not a definition."""
        values: dict[str, torch.Tensor] = {}
        for s in self.steps:
            kind, m, state = s.kind, s.module, states.get(s.name)
            h = values[s.inputs[0]] if s.inputs else None
            if kind == "input":
                weight = next(self.model.parameters())
                out = torch.zeros(shape, dtype=weight.dtype, device=weight.device)
            elif kind in ("conv", "linear", "avg_pool"):
                out = m(h)
            elif kind == "relu":
                out = torch.where(state if state.dtype == torch.bool else state > 0, h, 0.0)
            elif kind in ("lwta", "leaky_relu"):
                out = h * state
            elif kind == "max_pool":
                idx = state[0]
                out = h.flatten(2).gather(2, idx.flatten(2)).view(idx.shape)
            elif kind == "flatten":
                out = h.flatten(s.options["start"], s.options["end"])
            elif kind == "mean":
                out = h.mean(dim=s.options["dims"], keepdim=s.options["keepdim"])
            elif kind == "add":
                out = h + values[s.inputs[1]]
            else:
                out = h
            values[s.name] = out
        return values[self.output]

    # -- conveniences ----------------------------------------------------------------------
    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        r"""``(logits, rec)``: f(x) (B, C) and :math:`A[x]^\top f(x)` (B, \*D)."""
        logits, states = self.forward(x)
        return logits, self.transpose(logits, states)

    def pattern(self, states: dict) -> torch.Tensor:
        """The activation pattern (B, P): every unit's state, flattened — 1/0 for a ReLU or
        inhibitor unit on or off (a leaky ReLU's slope), the chosen input's index for each
        max-pooling window. Two inputs with the same pattern lie in the same affine region."""
        parts = []
        for s in self.steps:
            state = states.get(s.name)
            if s.kind == "relu":
                parts.append((state if state.dtype == torch.bool else state > 0).flatten(1))
            elif s.kind in ("lwta", "leaky_relu"):
                parts.append(state.flatten(1))
            elif s.kind == "max_pool":
                parts.append(state[0].flatten(1))
        if not parts:
            raise ValueError("the network has no nonlinearity: one affine region")
        return torch.cat([p.to(torch.float32) for p in parts], 1)


#: A convolution with at most this many input channels (a network's first layer) is transposed by
#: :class:`_FoldConvTranspose`: oneDNN's transposed convolution to one or three channels runs at a
#: fraction of its forward speed on CPU (22 ms against 2.3 ms for SmallCNN's first layer, batch 150).
_FOLD_CHANNELS = 4


class _FoldConvTranspose(torch.autograd.Function):
    """conv_transpose2d(g, W) as a matrix product and a col2im (``F.fold``): (B, C_out, H', W')
    -> (B, C_in, H, W). Its backward is the convolution's own forward (the cotangent's gradient)
    and weight gradient: exact, first-order (a loss on the reconstruction needs no more)."""

    @staticmethod
    def forward(ctx, g, weight, size, stride, padding, dilation):
        b, c = g.shape[:2]
        # one (C_in·kh·kw, C_out) @ (C_out, H'·W') product per example: no transposed copies
        cols = torch.bmm(weight.reshape(c, -1).t().expand(b, -1, -1), g.reshape(b, c, -1))  # (B, C_in·kh·kw, H'·W')
        ctx.save_for_backward(g, weight)
        ctx.conv = (stride, padding, dilation)
        return F.fold(cols, size, weight.shape[2:], dilation=dilation, padding=padding, stride=stride)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        g, weight = ctx.saved_tensors
        stride, padding, dilation = ctx.conv
        grad_g = grad_w = None
        if ctx.needs_input_grad[0]:
            grad_g = F.conv2d(grad, weight, None, stride, padding, dilation)
        if ctx.needs_input_grad[1]:
            grad_w = torch.ops.aten.convolution_backward(g, grad, weight, None, list(stride), list(padding),
                                                         list(dilation), False, [0, 0], 1,
                                                         [False, True, False])[1]
        return grad_g, grad_w, None, None, None, None


def _lwta(h: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """LocalWinnerTakesAll's output and its winners' mask (1 for a group's largest unit, ties all
    kept), the same values as the layer computes; channels-last images grouped as views."""
    b, c = h.shape[:2]
    if c % k:
        raise ValueError(f"{c} channels cannot be split into groups of {k}")
    if h.dim() == 4 and not h.is_contiguous() and h.is_contiguous(memory_format=torch.channels_last):
        v = h.permute(0, 2, 3, 1)  # (B, H, W, C), contiguous
        g = v.reshape(*v.shape[:3], c // k, k)  # (B, H, W, C/k, k)
        winner = (g == g.amax(dim=-1, keepdim=True)).to(h.dtype)
        return (g * winner).reshape(v.shape).permute(0, 3, 1, 2), winner.reshape(v.shape).permute(0, 3, 1, 2)
    g = h.reshape(b, c // k, k, *h.shape[2:])  # (B, C/k, k, *)
    winner = (g == g.amax(dim=2, keepdim=True)).to(h.dtype)  # 1 for the group's largest unit (ties all kept)
    return (g * winner).reshape(h.shape), winner.reshape(h.shape)


_PASSES: "weakref.WeakKeyDictionary[nn.Module, TransposedPass | None]" = weakref.WeakKeyDictionary()


def transposed_pass(model: nn.Module) -> TransposedPass | None:
    """The model's :class:`TransposedPass` (read once per model and kept), or ``None`` if the
    network has a layer without a transposed rule (then autograd computes the inverse)."""
    if model not in _PASSES:
        try:
            _PASSES[model] = TransposedPass(model)
        except UnsupportedLayerError:
            _PASSES[model] = None
    return _PASSES[model]


def usable(tp: TransposedPass | None) -> bool:
    """Whether ``tp`` can run now: it exists, and no dropout layer is drawing masks (training mode)."""
    return tp is not None and not tp.drawing_masks


__all__ = ["SUPPORTED", "TransposedPass", "UnsupportedLayerError", "transposed_pass", "usable"]
