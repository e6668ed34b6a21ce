"""One rule per layer kind, found by module type, function or tensor method.

A :class:`Rule` says everything the explicit transposed pass needs of one kind of layer:

* :meth:`~Rule.check` — whether this use of it is piecewise affine (a reason to refuse, or ``None``);
* :meth:`~Rule.forward` — its output and the *state* a nonlinearity leaves (a ReLU's on/off mask,
  a max-pool's chosen inputs; a linear map keeps its input's shape);
* :meth:`~Rule.transpose` — W^T g for each input that depends on x, with forward operators only
  (the same weights, the state), in an ONNX-exportable form when ``tp.exportable``;
* :meth:`~Rule.frozen` — the layer as an affine map with its state frozen (``bias=False``: its
  linear part alone), for the region's bias b[x] and for directions through a region;
* :meth:`~Rule.pattern` — a nonlinearity's state as numbers (the activation pattern).

A layer of your own is one call: ``register(MyRule(), modules=(MyLayer,))``; the refusal message
and the guide's table of what is supported are generated from the registry (:func:`supported`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch
import torch.fx as fx
import torch.nn as nn


class UnsupportedLayerError(ValueError):
    """A network the explicit transposed pass cannot take (named layer, type, what is supported)."""


@dataclass
class Step:
    """One node of the network's graph as the pass runs it.

    ``inputs`` are the graph nodes this step reads that depend on x (path tensors, in the order
    they appear in the call), ``args``/``kwargs`` the call's arguments with every graph node
    replaced by a :class:`Ref`; ``options`` what the rule's check parsed."""

    name: str
    rule: "Rule | None"
    op: str
    target: Any
    args: tuple
    kwargs: dict
    inputs: list[str]
    where: str
    module: nn.Module | None = None
    options: dict = field(default_factory=dict)

    def call(self, args: tuple, kwargs: dict):
        """The original call on concrete arguments."""
        if self.op == "call_module":
            return self.module(*args, **kwargs)
        if self.op == "call_method":
            return getattr(args[0], self.target)(*args[1:], **kwargs)
        return self.target(*args, **kwargs)

    def arg(self, args: tuple, kwargs: dict, index: int, name: str, default=None):
        """A call's argument by position or keyword."""
        if len(args) > index:
            return args[index]
        return kwargs.get(name, default)


@dataclass(frozen=True)
class Ref:
    """A graph node inside a step's arguments (resolved to its value when the step runs)."""

    name: str


class Rule:
    """A layer kind (see the module docstring). Subclasses override what differs from a linear map
    with no parameters whose transpose is the identity."""

    #: the kind's name and its one-line description in the supported list
    kind: str = ""
    summary: str = ""
    #: nonlinearities leave a state and contribute to the activation pattern
    nonlinear: bool = False
    #: returns its input itself (identity, dropout in eval mode)
    passthrough: bool = False
    #: how many of its inputs may depend on x (None: any number)
    inputs: int | None = 1
    #: its output is a tuple of tensors (a split's parts), not one tensor
    returns_tuple: bool = False
    #: a nonlinearity whose output is continuous in its input (a ReLU, a max): the layers after it
    #: change continuously along a line (:mod:`invlab.regions` carries their values across a break)
    continuous: bool = True

    def check(self, step: Step, tp) -> str | None:
        return None

    def forward(self, step: Step, xs: list, args: tuple, kwargs: dict, tp) -> tuple[Any, Any]:
        return step.call(args, kwargs), tuple(xs[0].shape)

    def transpose(self, step: Step, g, state, tp) -> list:
        return [g]

    def frozen(self, step: Step, xs: list, args: tuple, kwargs: dict, state, bias: bool, tp):
        return step.call(args, kwargs)

    def pattern(self, state) -> torch.Tensor | None:
        return None

    def crosses_at_zero(self, step: Step) -> bool:
        """For a nonlinearity: whether its state changes exactly where an input unit crosses 0, one unit
        at a time, and nowhere else (a ReLU's on/off). Along a line through a region each such unit's
        input is affine, so its changes can be found from its values at the two ends alone (the Explore
        page's segment sweep, :class:`invlab.export.SegmentPoints`)."""
        return False

    def crossing(self, step: Step, h: torch.Tensor, hd: torch.Tensor, state, tp) -> torch.Tensor:
        """For a nonlinearity: moving its input from h along hd (both the layer's input, (B, *)), the
        smallest s > 0 (B,) at which its state changes (``inf``: never on this line). Unused for
        affine layers."""
        raise NotImplementedError(f"{type(self).__name__} has no crossing rule")


@dataclass
class _Entry:
    rule: Rule
    modules: tuple = ()
    functions: tuple = ()
    methods: tuple = ()


_REGISTRY: list[_Entry] = []
_BY_MODULE: dict[type, Rule] = {}
_BY_PATH: dict[str, Rule] = {}  # module types named by their path, their package not imported
_BY_FUNCTION: dict[Callable, Rule] = {}
_BY_METHOD: dict[str, Rule] = {}


def register(rule: Rule, modules=(), functions=(), methods=()) -> Rule:
    """Make ``rule`` the transposed rule of these module types, functions and tensor methods.

    >>> register(MyLayerRule(), modules=(MyLayer,))   # then TransposedPass takes MyLayer

    A module type may also be named by its path (``"torchvision.ops.misc.FrozenBatchNorm2d"``): its
    package is then not imported until a network holds one. A module type registered here is a leaf
    of the traced graph (its ``forward`` is not read)."""
    if not isinstance(rule, Rule):
        raise TypeError(f"expected an invlab.transposed.Rule, got {type(rule).__name__}")
    _REGISTRY.append(_Entry(rule, tuple(modules), tuple(functions), tuple(methods)))
    _BY_MODULE.update({m: rule for m in modules if not isinstance(m, str)})
    _BY_PATH.update({m: rule for m in modules if isinstance(m, str)})
    _BY_FUNCTION.update({f: rule for f in functions})
    _BY_METHOD.update({m: rule for m in methods})
    return rule


def rule_of_module(module: nn.Module) -> Rule | None:
    kind = type(module)
    rule = _BY_MODULE.get(kind)
    if rule is None and _BY_PATH:
        rule = _BY_PATH.get(f"{kind.__module__}.{kind.__qualname__}")
    return rule


def rule_of_node(node: fx.Node) -> Rule | None:
    if node.op == "call_method":
        return _BY_METHOD.get(node.target)
    try:
        return _BY_FUNCTION.get(node.target)
    except TypeError:  # an unhashable callable
        return None


_SYMBOLS = {"add": "a + b", "sub": "a - b", "iadd": "a += b", "isub": "a -= b", "neg": "-a", "mul": "a * c",
            "truediv": "a / c", "imul": "a *= c", "itruediv": "a /= c", "getitem": "parts[i]"}


def _name(f) -> str:
    """How a user writes the call: ``F.relu``, ``torch.cat``, ``a + b``."""
    import operator

    import torch.nn.functional as F

    name = getattr(f, "__name__", str(f))
    if getattr(operator, name, None) is f:
        return _SYMBOLS.get(name, name)
    if getattr(F, name, None) is f:
        return f"F.{name}"
    if getattr(torch, name, None) is f:
        return f"torch.{name}"
    return name


def supported() -> list[dict]:
    """The registry as rows: kind, summary, module types, functions, methods (the guide's table)."""
    rows = []
    for e in _REGISTRY:
        rows.append({"kind": e.rule.kind, "summary": e.rule.summary,
                     "modules": [m.rsplit(".", 1)[-1] if isinstance(m, str) else m.__name__ for m in e.modules],
                     "functions": list(dict.fromkeys(_name(f) for f in e.functions)),
                     "methods": [f"x.{m}()" for m in e.methods]})
    return rows


def supported_text() -> str:
    """What the refusal message lists: every kind, one phrase each."""
    return "; ".join(f"{r['kind']} ({r['summary']})" for r in supported())


def supported_markdown() -> str:
    """The guide's table of what the explicit transposed pass (and so ``invlab export``) takes."""
    lines = ["| kind | modules | functions and methods | notes |", "|---|---|---|---|"]
    for r in supported():
        mods = ", ".join(f"`{m}`" for m in r["modules"]) or "–"
        funcs = ", ".join(f"`{f}`" for f in r["functions"] + r["methods"]) or "–"
        lines.append(f"| {r['kind']} | {mods} | {funcs} | {r['summary']} |")
    return "\n".join(lines)
