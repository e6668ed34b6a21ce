"""The network read as a graph of rules (:mod:`~invlab.transposed.rules`), run forward keeping each
nonlinearity's state, then backward with forward operators only (see :mod:`invlab.transposed`)."""

from __future__ import annotations

import operator
import weakref

import torch
import torch.fx as fx
import torch.nn as nn

from invlab.transposed.rules import Ref, Step, UnsupportedLayerError, rule_of_module, rule_of_node, supported_text

#: graph nodes that read a tensor's metadata, not its values: evaluated, never transposed
_META_METHODS = {"size", "dim", "numel", "type", "get_device"}
_META_ATTRIBUTES = {"shape", "dtype", "device", "ndim", "is_cuda"}


class _Tracer(fx.Tracer):
    """Stops at the layers with a transposed rule; other modules are traced through."""

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return rule_of_module(m) is not None or super().is_leaf_module(m, qualname)


def _is_meta(node: fx.Node) -> bool:
    if node.op == "call_method":
        return node.target in _META_METHODS
    return node.op == "call_function" and node.target is getattr and node.args[1] in _META_ATTRIBUTES


def _place(model: nn.Module, node: fx.Node) -> str:
    """Where a node sits: its module's qualified name, or the enclosing module's and the call."""
    if node.op == "call_module":
        return node.target
    stack = node.meta.get("nn_module_stack") or {}
    owner = next(reversed(stack.values()))[0] if stack else ""
    name = node.target if isinstance(node.target, str) else getattr(node.target, "__name__", str(node.target))
    call = f"x.{name}()" if node.op == "call_method" else f"{name}()"
    return f"{owner}: {call}" if owner else call


def _what(model: nn.Module, node: fx.Node) -> str:
    if node.op == "call_module":
        return type(model.get_submodule(node.target)).__name__
    target = node.target
    name = target if isinstance(target, str) else getattr(target, "__name__", str(target))
    return f"the method {name}" if node.op == "call_method" else f"the function {name}"


class TransposedPass:
    """A network read as layers with explicit transposes (see :mod:`invlab.transposed`).

    ``TransposedPass(model)`` analyses the network once (``torch.fx``) and raises
    :class:`UnsupportedLayerError` naming the first layer it cannot transpose. The weights are
    read from ``model`` at every call, so it follows training.

    >>> tp = TransposedPass(model)
    >>> logits, states = tp.forward(x)            # (B, C), the nonlinearities' states
    >>> rec = tp.transpose(logits, states)        # (B, *D), the reconstruction
    """

    def __init__(self, model: nn.Module, exportable: bool = False):
        self.model, self.exportable = model, exportable
        name = type(model).__name__
        try:
            graph = _Tracer().trace(model)
        except Exception as err:  # noqa: BLE001 (torch.fx fails in many ways: data-dependent control flow, ...)
            raise UnsupportedLayerError(
                f"{name} cannot be read as a graph of layers (torch.fx: {str(err).splitlines()[0]}); "
                f"supported: {supported_text()}") from None
        self.steps: list[Step] = []
        self._by_name: dict[str, Step] = {}
        self._targets: dict[str, str] = {}  # graph node -> module name
        path: set[str] = set()  # the nodes whose value depends on x
        alias: dict[str, str] = {}  # a node changed in place -> the node that holds its new value
        placeholders = 0

        def ref(n: fx.Node) -> Ref:
            return Ref(alias.get(n.name, n.name))

        for node in graph.nodes:
            args, kwargs = fx.node.map_arg(node.args, ref), fx.node.map_arg(node.kwargs, ref)
            if node.op == "output":
                out = node.args[0]
                if not isinstance(out, fx.Node) or alias.get(out.name, out.name) not in path:
                    raise UnsupportedLayerError(f"{name}.forward must return one tensor (the logits) computed "
                                                "from its input")
                self.output = alias.get(out.name, out.name)
                continue
            refs: list[str] = []
            fx.node.map_aggregate((args, kwargs), lambda a: refs.append(a.name) if isinstance(a, Ref) else None)
            inputs = [r for r in refs if r in path]
            if node.op == "placeholder":
                placeholders += 1
                if placeholders > 1:
                    raise UnsupportedLayerError(f"{name}.forward takes more than one input")
                path.add(node.name)
                step = Step(node.name, None, "placeholder", None, (), {}, [], "input")
            elif node.op == "get_attr" or not inputs or _is_meta(node):
                step = Step(node.name, None, node.op, node.target, args, kwargs, inputs, _place(model, node))
                if node.op == "call_module":
                    step.module = model.get_submodule(node.target)
            else:
                step = self._rule_step(node, args, kwargs, inputs)
                path.add(node.name)
                if self._in_place(node, step):
                    alias[inputs[0]] = node.name
            self.steps.append(step)
            self._by_name[step.name] = step
        self._dropouts = [s.module for s in self.steps if isinstance(s.module, nn.modules.dropout._DropoutNd)]
        self._batchnorms = [s.module for s in self.steps if isinstance(s.module, nn.modules.batchnorm._BatchNorm)]

    def _rule_step(self, node: fx.Node, args, kwargs, inputs: list[str]) -> Step:
        model = self.model
        module = model.get_submodule(node.target) if node.op == "call_module" else None
        rule = rule_of_module(module) if module is not None else rule_of_node(node)
        where = _place(model, node)
        step = Step(node.name, rule, node.op, node.target, args, kwargs, inputs, where, module)
        reason = None
        if rule is None:
            reason = _what(model, node)
        elif rule.inputs is not None and len(inputs) > rule.inputs:
            reason = f"{_what(model, node)} of {len(inputs)} tensors that depend on the input"
        else:
            reason = rule.check(step, self)
        if reason is not None:
            raise UnsupportedLayerError(
                f"{type(model).__name__}: layer {where!r} ({reason}) has no explicit transposed rule; "
                f"supported: {supported_text()}")
        if module is not None:
            self._targets[node.name] = node.target
        return step

    @staticmethod
    def _in_place(node: fx.Node, step: Step) -> bool:
        if step.module is not None:
            return bool(getattr(step.module, "inplace", False))
        name = node.target if isinstance(node.target, str) else getattr(node.target, "__name__", "")
        return name.endswith("_") and not name.startswith("_") or node.kwargs.get("inplace") is True or \
            node.target in (operator.iadd, operator.isub, operator.imul, operator.itruediv)

    def step(self, name: str) -> Step:
        return self._by_name[name]

    @property
    def drawing_masks(self) -> bool:
        """Whether the network cannot be read per example now: a dropout layer draws masks (training
        mode; drawn inside the layer, where the pass cannot read them) or a batch norm normalises with
        the batch's statistics."""
        return self.model.training and any(m.p > 0 for m in self._dropouts) or any(m.training for m in
                                                                                  self._batchnorms)

    # -- running the graph -------------------------------------------------------------------
    @staticmethod
    def _resolve(obj, values: dict):
        return fx.node.map_aggregate(obj, lambda a: values[a.name] if isinstance(a, Ref) else a)

    def _constant(self, s: Step, values: dict):
        if s.op == "get_attr":
            value = self.model
            for part in s.target.split("."):
                value = getattr(value, part)
            return value
        return s.call(self._resolve(s.args, values), self._resolve(s.kwargs, values))

    def nonlinear_levels(self) -> tuple[list[list[Step]], dict[str, int]]:
        """The nonlinearities by level — level 0 those whose input depends on no nonlinearity (affine in
        x), level k those whose input depends on level k - 1 at most — and for every graph node how many
        levels its value depends on. Along a segment a level-k input is affine between consecutive changes
        of state of the levels below it (:mod:`invlab.regions`' sweep, the Explore page's)."""
        below: dict[str, int] = {}
        levels: list[list[Step]] = []
        for st in self.steps:
            base = max((below.get(n, 0) for n in st.inputs), default=0)
            if st.rule is not None and st.rule.nonlinear:
                levels.extend([] for _ in range(base + 1 - len(levels)))
                levels[base].append(st)
                base += 1
            below[st.name] = base
        return levels, below

    def affine_prefix(self) -> list[str]:
        """The graph nodes before any nonlinearity, whose values are affine in x (one tensor each)."""
        affine = {self.steps[0].name}
        for s in self.steps[1:]:
            if s.rule is not None and not s.rule.nonlinear and not s.rule.returns_tuple \
                    and s.inputs and all(n in affine for n in s.inputs):
                affine.add(s.name)
        return [s.name for s in self.steps[1:] if s.name in affine]

    def forward(self, x: torch.Tensor, keep=(), given=None) -> tuple[torch.Tensor, dict]:
        """Logits f(x) (B, C) and the states the transposed pass needs (masks, pool indices,
        shapes); with ``keep`` (graph node names), also those nodes' outputs, as ``states["z"]``;
        ``given`` ({node: (value, state)}) supplies nodes already known (an affine prefix)."""
        if self.drawing_masks:
            raise UnsupportedLayerError(
                "a dropout or batch norm layer in training mode: a dropout's mask is drawn inside the layer and a "
                "batch norm mixes the batch's examples, so the transposed pass cannot run; use model.eval() or "
                "the autograd path (method='autograd')")
        values: dict[str, object] = {}
        states: dict[str, object] = {}
        for s in self.steps:
            if s.op == "placeholder":
                values[s.name] = x
            elif given is not None and s.name in given:
                values[s.name], states[s.name] = given[s.name]
            elif s.rule is None:
                values[s.name] = self._constant(s, values)
            else:
                xs = [values[n] for n in s.inputs]
                values[s.name], states[s.name] = s.rule.forward(s, xs, self._resolve(s.args, values),
                                                                self._resolve(s.kwargs, values), self)
        if keep:
            states["z"] = {name: values[name] for name in keep}
        return values[self.output], states

    def transpose(self, cotangent: torch.Tensor, states: dict, capture=()) -> torch.Tensor:
        r""":math:`A[x]^\top u` for cotangents u (N, C): (N, \*D). N = B, or B = 1 and any N.

        With ``capture`` (graph node names), returns ``(rec, {node: rec_z})`` with
        :math:`\mathrm{rec}_z = (\partial f/\partial z)^\top u` for z each node's output: the
        transposed pass reaches every layer on its way (eq. 12)."""
        grads: dict[str, object] = {self.output: cotangent}
        result, captured = None, {}
        for s in reversed(self.steps):
            g = grads.pop(s.name, None)
            if g is None:
                continue  # a branch that does not reach the logits
            if s.name in capture:
                captured[s.name] = g
            if s.op == "placeholder":
                result = g
                continue
            for name, gi in zip(s.inputs, s.rule.transpose(s, g, states[s.name], self)):
                if gi is None:
                    continue
                if name not in grads:
                    grads[name] = gi
                elif isinstance(gi, dict):  # parts of a split
                    grads[name] = {**grads[name], **{k: grads[name][k] + v if k in grads[name] else v
                                                     for k, v in gi.items()}}
                else:
                    grads[name] = grads[name] + gi
        if result is None:
            raise RuntimeError("the logits do not depend on the input")
        return (result, captured) if capture else result

    def frozen(self, x: torch.Tensor, states: dict, bias: bool = True, keep=(), given=None):
        """The affine map of the region the states describe, at ``x``: the forward run again with
        every nonlinearity's state frozen (masks, max-pool choices). ``bias=False``: its linear
        part alone, A[x] x (a direction through the region). With ``keep`` (graph node names),
        returns ``(out, {node: value})``: every layer's value under the frozen map. ``given``
        ({node: value}) supplies nodes already known."""
        values: dict[str, object] = {}
        for s in self.steps:
            if s.op == "placeholder":
                values[s.name] = x
            elif given is not None and s.name in given:
                values[s.name] = given[s.name]
            elif s.rule is None:
                values[s.name] = self._constant(s, values)
            else:
                xs = [values[n] for n in s.inputs]
                values[s.name] = s.rule.frozen(s, xs, self._resolve(s.args, values), self._resolve(s.kwargs, values),
                                               states[s.name], bias, self)
        if keep:
            return values[self.output], {name: values[name] for name in keep}
        return values[self.output]

    def region_bias(self, states: dict, shape: torch.Size) -> torch.Tensor:
        """b[x] (B, C): the affine map of x's region evaluated at 0 (:meth:`frozen`). With
        :meth:`transpose`'s A[x], f(x) = <A[x], x> + b[x] is then a check of eq. 1, not a definition."""
        weight = next(self.model.parameters())
        return self.frozen(torch.zeros(shape, dtype=weight.dtype, device=weight.device), states)

    # -- conveniences ----------------------------------------------------------------------
    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        r"""``(logits, rec)``: f(x) (B, C) and :math:`A[x]^\top f(x)` (B, \*D)."""
        logits, states = self.forward(x)
        return logits, self.transpose(logits, states)

    def pattern(self, states: dict) -> torch.Tensor:
        """The activation pattern (B, P): every unit's state, flattened — 1/0 for a ReLU or
        inhibitor unit on or off (a leaky ReLU's slope; 0/1/2 below/between/above a clamp's
        bounds), the chosen input's index for each max-pooling window. Two inputs with the same
        pattern lie in the same affine region."""
        parts = []
        for s in self.steps:
            if s.rule is not None and s.rule.nonlinear:
                parts.append(s.rule.pattern(states[s.name]).flatten(1))
        if not parts:
            raise ValueError("the network has no nonlinearity: one affine region")
        return torch.cat([p.to(torch.float32) for p in parts], 1)

    def node_names(self, layers) -> dict[str, str] | None:
        """{layer: graph node} for module names of ``model.named_modules()`` (``"input"``: x), or
        ``None`` if one of them does not run exactly once in the forward (its output is ambiguous)."""
        out = {}
        for layer in layers:
            if layer == "input":
                out[layer] = self.steps[0].name
                continue
            found = [s for s in self.steps if s.rule is not None and self._targets.get(s.name) == layer]
            if len(found) != 1:
                return None
            step = found[0]
            while step.rule.passthrough:  # returns its input itself: the same tensor as z
                step = self._by_name[step.inputs[0]]
            out[layer] = step.name
        return out


_PASSES: "weakref.WeakKeyDictionary[nn.Module, TransposedPass | UnsupportedLayerError]" = weakref.WeakKeyDictionary()


def transposed_pass(model: nn.Module, strict: bool = False) -> TransposedPass | None:
    """The model's :class:`TransposedPass` (read once per model and kept), or ``None`` if the
    network has a layer without a transposed rule (then autograd computes the inverse);
    ``strict=True`` raises that refusal instead."""
    if model not in _PASSES:
        try:
            _PASSES[model] = TransposedPass(model)
        except UnsupportedLayerError as err:
            _PASSES[model] = err
    found = _PASSES[model]
    if isinstance(found, UnsupportedLayerError):
        if strict:
            raise UnsupportedLayerError(str(found))
        return None
    return found


def usable(tp: TransposedPass | None) -> bool:
    """Whether ``tp`` can run now: it exists, and no dropout layer is drawing masks and no batch
    norm uses its batch's statistics (training mode)."""
    return tp is not None and not tp.drawing_masks
