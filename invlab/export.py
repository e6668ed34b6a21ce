"""A network's spline view as one ONNX graph (``invlab export``): what notebook 00's explorer
shows, computed by any ONNX runtime — the documentation site's explorer runs it in the
reader's browser (onnxruntime-web).

The graph takes one raw example ``x`` (1, *D) (MNIST: (1, 1, 28, 28), pixels in [0, 1]),
applies the checkpoint's preprocessing inside the graph, and returns, at the network's own
(preprocessed) input x' — as :func:`invlab.viz.explain.explain` computes them:

=================  ==========  ===========================================================
output             shape       meaning
=================  ==========  ===========================================================
``input``          (*D)        x', the preprocessed input
``logits``         (C,)        f(x')
``probabilities``  (C,)        softmax(f(x'))
``templates``      (C, *D)     A[x']_c = df_c/dx' (paper eq. 1)
``bias``           (C,)        b[x'], so that f(x') = <A[x'], x'> + b[x'] (eq. 1)
``reconstruction`` (*D)        A[x']^T f(x') = sum_c f_c(x') A[x']_c (eq. 5)
``pattern``        (P,)        the activation pattern (:meth:`TransposedPass.pattern`)
``classes``        (K,)        with ``top_k=K`` only: the K most probable classes, whose rows
                               ``templates`` then holds (K, *D), most probable first
=================  ==========  ===========================================================

Any input shape (C, H, W) or (C, L), colour or grey, any number of classes.

With ``regions=True`` (``invlab export --regions``) the file also carries a second graph, for
walking the segment between two raw inputs piece by piece (:class:`SegmentWalk`, the browser's
counterpart of :func:`invlab.regions.segment`): serialized in the metadata entry
``invlab.regions`` (base64), its batch in ``invlab.regions_batch``.

=================  ==========  ===========================================================
input / output     shape       meaning
=================  ==========  ===========================================================
``x0``, ``x1``     (1, *D)     the segment's raw end points (preprocessed in the graph)
``x2``             (1, *D)     a third raw input: the plane's (the page's plane map); x0 for a segment
``t``, ``u``       (B,)        the points p0 + t (p1 - p0) + u (p2 - p0), p = preprocessed (u = 0: the
                               segment)
``logits``         (B, C)      f at each point
``slope``          (B, C)      df/dt there (along p1 - p0): the piece's logits are logits + (s - t) slope
``ahead``          (B,)        how far past t (in t) the activation pattern stays the same
``behind``         (B,)        how far before t
``pattern_key``    (B, 2)      int64: the activation pattern's entries times two fixed sets of
                               random 62-bit integers, summed (wrapping): neighbouring pieces
                               with equal keys are one region (the browser's float32 leaves
                               slivers between pieces; they merge)
=================  ==========  ===========================================================

A network whose every nonlinearity changes state where one unit's input crosses 0 (ReLUs; see
:meth:`~invlab.transposed.rules.Rule.crosses_at_zero`) also carries the sweep's graphs
(:class:`SegmentPoints`, and :class:`SegmentTail` for the last level's logits): the page sweeps the
segment level by level with them, one forward per break, instead of walking it (see
``results/explorer_regions.md``). In ``invlab.regions_points`` and ``invlab.regions_tail``, the number of
levels of nonlinearities in ``invlab.regions_levels``.

=================  ==========  ===========================================================
input / output     shape       meaning
=================  ==========  ===========================================================
``x0``, ``x1``     (1, *D)     the segment's raw end points, as above
``t``              (B,)        the points p0 + t (p1 - p0)
``logits``         (B, C)      f at each point
``level_0``        (2, N0)     the inputs of the nonlinearities that depend on no other, flattened
                               side by side, at the two ends (affine along the segment)
``level_k``        (B, Nk)     those of the nonlinearities k levels deep, at each point
``cut``            (B, K)      what the layers after the last level read from before it, flattened;
                               the tail graph's input (``cut`` -> ``logits``)
=================  ==========  ===========================================================

Autograd's backward operators have no ONNX translation, so the templates come from the
explicit transposed pass of :mod:`invlab.transposed`, run on the C one-hot cotangents at
once; a network with a layer it cannot transpose is refused before anything is written.
The bias is computed on its own, as the region's affine map at 0
(:meth:`~invlab.transposed.TransposedPass.region_bias`): it equals f(x') - <A[x'], x'>, and
the explorer shows the difference, a live check of the spline decomposition (eq. 1).
"""

from __future__ import annotations

import contextlib
import json
import math
import warnings
from pathlib import Path

import torch
import torch.fx
import torch.nn as nn

from invlab.data.preprocess import preprocess
from invlab.io import atomic_write
from invlab.transposed import TransposedPass
from invlab.transposed.rules import Ref

#: The graph's input and outputs, in order (a contract: the browser explorer reads these names).
INPUT = "x"
OUTPUTS = ("input", "logits", "probabilities", "templates", "bias", "reconstruction", "pattern")
#: The extra output of a graph exported with ``top_k``: the indices of the rows ``templates`` holds.
TOP_K_OUTPUT = "classes"
#: The largest file the browser explorer accepts (bytes).
MAX_BYTES = 50 * 2**20
#: The segment-walking graph of ``regions=True``: inputs, outputs, and its batch of points.
REGIONS_INPUTS = ("x0", "x1", "x2", "t", "u")
REGIONS_OUTPUTS = ("logits", "slope", "ahead", "behind", "pattern_key")
REGIONS_BATCH = 64


def _preprocess_kind(model: nn.Module, kind: str | None) -> str:
    """``kind``, or by default the input transform the checkpoint's ``model.preprocess`` records (else none)."""
    return kind if kind is not None else getattr(getattr(model, "preprocess", None), "kind", "none")


class SplineView(nn.Module):
    """``model`` seen as an affine spline at one raw example: see the module docstring.

    Args:
        model: a classifier :class:`~invlab.transposed.TransposedPass` takes, mapping
            (B, *D) to logits (B, C).
        preprocess_kind: the checkpoint's input transform (``"none"``, ``"center-maxabs"``,
            ``"standardize"``); default: ``model.preprocess``'s, else none.
        top_k: keep only the K most probable classes' templates (and output their indices as
            ``classes``): a network of many classes stays small in the browser. The reconstruction
            is still A[x']^T f(x') over all classes (one cotangent, f itself).
    """

    def __init__(self, model: nn.Module, preprocess_kind: str | None = None, top_k: int | None = None):
        super().__init__()
        if top_k is not None and (not isinstance(top_k, int) or top_k < 1):
            raise ValueError(f"top_k must be a positive integer (the number of classes whose templates are kept), "
                             f"got {top_k!r}")
        self.top_k = top_k
        self.model = model.eval()
        self.transposed = TransposedPass(model, exportable=True)
        self.preprocess_kind = _preprocess_kind(model, preprocess_kind)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        xin = preprocess(x, self.preprocess_kind)  # (1, *D)
        logits, states = self.transposed.forward(xin)  # (1, C)
        classes = logits.shape[1]
        f = logits[0]
        probabilities = torch.softmax(f, 0)
        eye = torch.eye(classes, dtype=x.dtype, device=x.device)  # the C one-hot cotangents
        top = None
        if self.top_k is not None and self.top_k < classes:
            top = torch.topk(probabilities, self.top_k).indices  # (K,), most probable first
            eye = eye.index_select(0, top)  # (K, C)
        A = self.transposed.transpose(eye, states)  # (K or C, *D): row c is df_c/dx'
        bias = self.transposed.region_bias(states, xin.shape)[0]  # (C,): the region's map at 0
        if top is None:  # every row at hand: A^T f = sum_c f_c A_c
            rec = (f.view(classes, *[1] * (A.dim() - 1)) * A).sum(0)  # (*D)
        else:  # a few rows only: A^T f as one more transposed pass, f itself the cotangent
            rec = self.transposed.transpose(logits, states)[0]  # (*D)
        pattern = self.transposed.pattern(states)[0]  # (P,)
        outputs = (xin[0], f, probabilities, A, bias, rec, pattern)
        if self.top_k is not None:
            if top is None:
                top = torch.arange(classes, device=x.device)
            outputs += (top,)
        return outputs


def input_shape_of(model: nn.Module) -> tuple[int, ...]:
    shape = getattr(model, "input_shape", None) or (getattr(model, "data_info", None) or {}).get("input_shape")
    if shape is None:
        raise ValueError(f"{type(model).__name__} does not say its input shape: give input_shape=(C, H, W)")
    return tuple(int(v) for v in shape)


def _quiet_exporter() -> None:
    """Silence the warnings the exporter's own modules raise about their internals, and those only: a warning
    about the user's network still reaches the user."""
    for module in (r"torch\.onnx.*", r"onnxscript.*", r"onnx_ir.*", r"torch\._export.*", r"torch\.export.*"):
        warnings.filterwarnings("ignore", module=module)


#: the exporter's tables of ATen -> ONNX functions, one per opset (:func:`_torchlib_tables_kept`)
_TORCHLIB_TABLES: dict = {}


@contextlib.contextmanager
def _torchlib_tables_kept():
    """Inside: ``torch.onnx.export`` reuses its table of ATen -> ONNX functions from one export to the next.

    The exporter builds that table (``ONNXRegistry.from_torchlib``) anew at every call, re-reading the
    source of about a thousand onnxscript functions: 0.4 s of CPU, a sixth of exporting a lesson network
    and its segment-walking graph (``to_onnx(..., regions=True)`` exports twice; the site's build, eight
    times). invlab passes no custom translation table, so the table is only read; it is kept per opset for
    the process, and torch's own method is put back on exit. Where torch's internals differ from those this
    knows, nothing is changed."""
    try:
        from torch.onnx._internal.exporter import _registration

        original = _registration.ONNXRegistry.__dict__["from_torchlib"]
        build = original.__func__
    except (ImportError, KeyError, AttributeError):
        yield
        return

    def from_torchlib(cls, *args, **kwargs):
        key = (cls, args, tuple(sorted(kwargs.items())))
        if key not in _TORCHLIB_TABLES:
            _TORCHLIB_TABLES[key] = build(cls, *args, **kwargs)
        return _TORCHLIB_TABLES[key]

    _registration.ONNXRegistry.from_torchlib = classmethod(from_torchlib)
    try:
        yield
    finally:
        _registration.ONNXRegistry.from_torchlib = original


class SegmentWalk(nn.Module):
    """Points of the segment between two raw inputs, seen as pieces of the partition (the graph of
    ``regions=True``; see the module docstring): at p0 + t (p1 - p0) (+ u (p2 - p0): points of the
    plane through a third input, for the page's plane map), with p0, p1, p2 the preprocessed inputs,
    the logits, their rate of change along the segment (the region's linear map applied to p1 - p0),
    how far ahead and behind in t the activation pattern holds — the nearest change of state each
    nonlinearity's rule finds (:meth:`~invlab.transposed.rules.Rule.crossing`) — and the pattern's
    keys."""

    def __init__(self, model: nn.Module, preprocess_kind: str | None = None):
        super().__init__()
        self.model = model.eval()
        self.transposed = TransposedPass(model, exportable=True)
        self.preprocess_kind = _preprocess_kind(model, preprocess_kind)
        self.steps = [s for s in self.transposed.steps if s.rule is not None and s.rule.nonlinear]
        self.inputs = tuple(dict.fromkeys(s.inputs[0] for s in self.steps))
        self.key_weights: torch.Tensor | None = None  # (P, 2), made at the first call (P: the pattern's length)

    def forward(self, x0: torch.Tensor, x1: torch.Tensor, x2: torch.Tensor, t: torch.Tensor,
                u: torch.Tensor) -> tuple[torch.Tensor, ...]:
        p0, p1, p2 = (preprocess(x, self.preprocess_kind) for x in (x0, x1, x2))
        d, shape = p1 - p0, (-1, *[1] * (p0.dim() - 1))
        points = p0 + t.view(shape) * d + u.view(shape) * (p2 - p0)
        tp = self.transposed
        logits, states = tp.forward(points, keep=self.inputs)
        slope, along = tp.frozen(d.expand_as(points), states, bias=False, keep=self.inputs)
        h = states["z"]
        ahead = behind = torch.full_like(t, torch.inf)
        for st in self.steps:
            z, zd = h[st.inputs[0]], along[st.inputs[0]]
            ahead = torch.minimum(ahead, st.rule.crossing(st, z, zd, states[st.name], tp))
            behind = torch.minimum(behind, st.rule.crossing(st, z, -zd, states[st.name], tp))
        pattern = tp.pattern(states).to(torch.int64)  # (B, P): 0/1 states, pooling choices
        if self.key_weights is None:
            g = torch.Generator().manual_seed(0)
            self.key_weights = torch.randint(1, 2**62, (pattern.shape[1], 2), generator=g, dtype=torch.int64)
        return logits, slope, ahead, behind, pattern @ self.key_weights


def _refs(obj) -> list[str]:
    found: list[str] = []
    torch.fx.node.map_aggregate(obj, lambda a: found.append(a.name) if isinstance(a, Ref) else a)
    return found


class SegmentPoints(nn.Module):
    """The segment's points seen level by level (the graph ``invlab.regions_points`` of ``regions=True``, for a
    network whose every nonlinearity changes state where a unit's input crosses 0:
    :meth:`~invlab.transposed.rules.Rule.crosses_at_zero`; the browser's sweep).

    At points p0 + t (p1 - p0) (p0, p1 the preprocessed end points) it gives the logits and, per level of
    nonlinearities (:meth:`~invlab.transposed.TransposedPass.nonlinear_levels`), their inputs flattened side
    by side: ``level_0`` at the two ends only (it is affine along the whole segment), ``level_k`` (k > 0) at
    every point. Between two
    consecutive changes of state of the levels below it a level's input is affine in t, so its own changes
    are where a unit's sign differs at two consecutive such points, at the linear interpolation's zero:
    found level after level from the points alone, one forward each, with no direction pass and no
    crossings computed in the graph.

    ``cut``: the values the layers after the last level's nonlinearities read from before them (for a
    chain of layers, the last level's inputs), flattened side by side. They are affine between the
    points the last level's changes lie between, so the logits at those changes follow from the cut
    interpolated there and the layers after it alone (:class:`SegmentTail`)."""

    def __init__(self, model: nn.Module, preprocess_kind: str | None = None):
        super().__init__()
        self.model = model.eval()
        self.transposed = tp = TransposedPass(model, exportable=True)
        self.preprocess_kind = _preprocess_kind(model, preprocess_kind)
        levels, below = tp.nonlinear_levels()
        refused = [st for level in levels for st in level if not (st.rule.continuous and st.rule.crosses_at_zero(st))]
        if refused:
            raise ValueError(f"{refused[0].name} ({refused[0].rule.kind}) does not change state where one unit's input "
                             "crosses 0: the segment is swept by the walking graph instead")
        self.levels = [list(dict.fromkeys(st.inputs[0] for st in level)) for level in levels]
        self.prefix = tuple(tp.affine_prefix())
        # the tail: every step that depends on the last level's outputs; the cut: what it reads from before
        self.tail = {st.name for st in tp.steps if below.get(st.name, 0) >= len(levels)}
        read = [n for st in tp.steps if st.name in self.tail for n in [*st.inputs, *_refs((st.args, st.kwargs))]]
        self.cut = [n for n in dict.fromkeys(read) if n not in self.tail
                    and (tp.step(n).op == "placeholder" or tp.step(n).rule is not None)]

    @property
    def output_names(self) -> list[str]:
        return ["logits", *(f"level_{k}" for k in range(len(self.levels))), "cut"]

    def forward(self, x0: torch.Tensor, x1: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, ...]:
        p0, p1 = (preprocess(x, self.preprocess_kind) for x in (x0, x1))
        shape = (-1, *[1] * (p0.dim() - 1))
        tp = self.transposed
        keep = tuple(dict.fromkeys([*(n for level in self.levels for n in level), *self.cut]))
        # the affine prefix (before any nonlinearity) at the two ends, once; at the points, interpolated (an
        # affine map's value at (1 - t) p0 + t p1 is (1 - t) f(p0) + t f(p1)): faster in the browser than
        # running the first layers on every point
        _, ends = tp.forward(torch.cat([p0, p1]), keep=keep + self.prefix)
        z = ends.pop("z")
        given = {n: (z[n][:1] + t.view(-1, *[1] * (z[n].dim() - 1)) * (z[n][1:] - z[n][:1]), ends.get(n))
                 for n in self.prefix}
        logits, states = tp.forward(p0 + t.view(shape) * (p1 - p0), keep=keep, given=given)
        inner = states["z"]
        levels = [torch.cat([z[n].flatten(1) for n in self.levels[0]], 1)]
        levels += [torch.cat([inner[n].flatten(1) for n in level], 1) for level in self.levels[1:]]
        return (logits, *levels, torch.cat([inner[n].flatten(1) for n in self.cut], 1))


class SegmentTail(nn.Module):
    """The layers after the last level's nonlinearities, from the cut (:class:`SegmentPoints`): ``cut``
    (B, N) -> ``logits`` (B, C) (the graph ``invlab.regions_tail``). Every other value before the cut is
    given as zeros, never computed."""

    def __init__(self, points: SegmentPoints, input_shape: tuple[int, ...]):
        super().__init__()
        self.points, self.input_shape = points, tuple(input_shape)
        tp = points.transposed
        before = [st.name for st in tp.steps if st.name not in points.tail and st.rule is not None]
        with torch.no_grad():
            _, states = tp.forward(torch.rand(2, *input_shape), keep=tuple(before))
        values = states["z"]
        if not all(isinstance(values[n], torch.Tensor) and values[n].shape[0] == 2 for n in before):
            raise ValueError("a value before the cut is not one tensor per example: no tail graph")
        self.shapes = {n: tuple(values[n].shape[1:]) for n in before}
        self.shapes[tp.steps[0].name] = self.input_shape  # the input itself (in the cut where the tail reads it)

    def forward(self, cut: torch.Tensor) -> torch.Tensor:
        tp, batch = self.points.transposed, cut.shape[0]
        parts = cut.split([math.prod(self.shapes[n]) for n in self.points.cut], 1)
        given = {n: (cut_n.view(batch, *self.shapes[n]), None) for n, cut_n in zip(self.points.cut, parts)}
        zeros = cut.new_zeros(())
        for n, shape in self.shapes.items():
            given.setdefault(n, (zeros.expand(batch, *shape), None))
        x = given.pop(tp.steps[0].name, (zeros.expand(batch, *self.input_shape), None))[0]
        logits, _ = tp.forward(x, given=given)
        return logits


def _exported(module: nn.Module, example: tuple, inputs: list[str], outputs: list[str]):
    """``module`` (put in eval mode) as an ONNX ModelProto: the exporter quiet about its own internals, its
    table kept (:func:`_torchlib_tables_kept`)."""
    module.eval()
    with warnings.catch_warnings(), torch.no_grad(), _torchlib_tables_kept():
        _quiet_exporter()
        program = torch.onnx.export(module, example, dynamo=True, input_names=inputs, output_names=outputs,
                                    optimize=True, verbose=False)
    return program.model_proto


#: The most levels of nonlinearities the sweep takes. Each level's pass runs a forward at every point known
#: so far, so a deep network costs about levels forwards per piece; the walk, a forward and a pass along
#: the direction (about two and a half forwards' work in the browser): past three levels it walks.
SWEEP_LEVELS = 3


def sweep_graphs(model: nn.Module, input_shape: tuple[int, ...],
                 preprocess_kind: str | None = None) -> tuple[bytes, bytes | None, int] | None:
    """:class:`SegmentPoints` and :class:`SegmentTail` as serialized ONNX (batch :data:`REGIONS_BATCH`; the
    tail None where a value before the cut is not one tensor per example) and the number of levels, or
    None for a network the sweep does not take, or takes slower than the walk (more than
    :data:`SWEEP_LEVELS` levels): the page then walks the segment with :class:`SegmentWalk`."""
    try:
        points = SegmentPoints(model, preprocess_kind)
    except ValueError:
        return None
    if not points.levels or len(points.levels) > SWEEP_LEVELS:
        return None
    example = (torch.rand(1, *input_shape), torch.rand(1, *input_shape), torch.rand(REGIONS_BATCH))
    with torch.no_grad():
        cut = points(*example)[-1]
    graph = _exported(points, example, ["x0", "x1", "t"], points.output_names).SerializeToString()
    try:
        tail = _exported(SegmentTail(points, input_shape), (cut,), ["cut"], ["logits"]).SerializeToString()
    except ValueError:
        tail = None
    return graph, tail, len(points.levels)


def regions_graph(model: nn.Module, input_shape: tuple[int, ...], preprocess_kind: str | None = None) -> bytes:
    """:class:`SegmentWalk` as serialized ONNX (batch :data:`REGIONS_BATCH`)."""
    walk = SegmentWalk(model, preprocess_kind)
    if not walk.steps:
        raise ValueError("the network has no nonlinearity: one affine region, nothing to walk")
    example = (torch.rand(1, *input_shape), torch.rand(1, *input_shape), torch.rand(1, *input_shape),
               torch.rand(REGIONS_BATCH), torch.rand(REGIONS_BATCH))
    with torch.no_grad():
        walk(*example)  # makes the key's weights, a constant of the graph
    return _exported(walk, example, list(REGIONS_INPUTS), list(REGIONS_OUTPUTS)).SerializeToString()


def to_onnx(model: nn.Module, path: str | Path, input_shape: tuple[int, ...] | None = None,
            preprocess_kind: str | None = None, metadata: dict | None = None, top_k: int | None = None,
            regions: bool = False) -> Path:
    """Write ``model``'s spline view (:class:`SplineView`) to ``path`` as one ONNX graph.

    Args:
        model: the classifier (eval mode is set); a layer without a transposed rule raises
            :class:`~invlab.transposed.UnsupportedLayerError` before anything is written.
        path: the ``.onnx`` file, written atomically (a temporary file, then renamed).
        input_shape: one example's shape (C, H, W) or (C, L); default ``model.input_shape``.
        preprocess_kind: see :class:`SplineView`.
        metadata: extra string entries of the graph's ``metadata_props`` (class names,
            data set, accuracy); ``invlab`` records the input shape and output names.
        top_k: see :class:`SplineView` (adds the output ``classes``).
        regions: also carry the segment-walking graph (:class:`SegmentWalk`) in the metadata, for the
            Explore page's regions view.

    Returns:
        The path written.
    """
    import onnx

    view = SplineView(model, preprocess_kind, top_k)  # refuses an unsupported layer here
    shape = tuple(input_shape) if input_shape is not None else input_shape_of(model)
    if len(shape) not in (2, 3) or not all(isinstance(v, int) and v > 0 for v in shape):
        raise ValueError(f"input_shape must be one example's (C, H, W) or (C, L) in positive integers, got {shape}")
    example = torch.rand(1, *shape)
    with torch.no_grad():
        view(example)  # a network that cannot run at this shape fails here, before the exporter
    outputs = list(OUTPUTS) + ([TOP_K_OUTPUT] if top_k is not None else [])
    proto = _exported(view, (example,), [INPUT], outputs)  # the wrapper in eval mode too (else a warning)
    props = {"invlab.input_shape": json.dumps(list(shape)), "invlab.outputs": json.dumps(outputs),
             "invlab.preprocess": view.preprocess_kind, **{k: str(v) for k, v in (metadata or {}).items()}}
    if regions:
        import base64

        props["invlab.regions"] = base64.b64encode(regions_graph(model, shape, view.preprocess_kind)).decode()
        props["invlab.regions_batch"] = str(REGIONS_BATCH)
        sweep = sweep_graphs(model, shape, view.preprocess_kind)
        if sweep is not None:
            props["invlab.regions_points"] = base64.b64encode(sweep[0]).decode()
            props["invlab.regions_levels"] = str(sweep[2])
            if sweep[1] is not None:
                props["invlab.regions_tail"] = base64.b64encode(sweep[1]).decode()
    onnx.helper.set_model_props(proto, props)
    return atomic_write(path, lambda tmp: onnx.save(proto, str(tmp)))


def export_loaded(model: nn.Module, path: str | Path, top_k: int | None = None, regions: bool = False) -> Path:
    """A network as :func:`~invlab.train.load_model` returns it (its preprocessing and data set
    record attached) as one ONNX graph, with its data set and class names as metadata."""
    info = getattr(model, "data_info", None) or {}
    meta = {"invlab.dataset": info.get("dataset", ""), "invlab.class_names": json.dumps(info.get("class_names") or [])}
    return to_onnx(model, path, input_shape=tuple(info["input_shape"]) if "input_shape" in info else None,
                   metadata=meta, top_k=top_k, regions=regions)


def export_checkpoint(checkpoint: str | Path, path: str | Path, top_k: int | None = None,
                      regions: bool = False) -> Path:
    """``invlab export CHECKPOINT --onnx PATH``: the checkpoint's network (its best weights,
    its preprocessing) as one ONNX graph (:func:`export_loaded`)."""
    from invlab.train import load_model

    return export_loaded(load_model(checkpoint), path, top_k=top_k, regions=regions)


def load_state_dict_file(model: nn.Module, weights: str | Path) -> nn.Module:
    """Load a state dict saved with ``torch.save(model.state_dict(), FILE)`` into ``model``, safely
    (``weights_only=True``); a file that does not fit is refused naming the first key that differs."""
    from invlab.io import load_torch

    weights = Path(weights)
    if not weights.is_file():
        raise FileNotFoundError(f"--weights {weights}: the file does not exist")
    try:
        state = load_torch(weights)
    except Exception as err:  # noqa: BLE001 (torch.load's refusals: not a zip, a pickled class, ...)
        raise ValueError(f"--weights {weights}: not a state dict torch.load(weights_only=True) can read "
                         f"({str(err).splitlines()[0]})") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"--weights {weights}: expected a state dict (torch.save(model.state_dict(), FILE)), "
                         f"got a {type(state).__name__} of other things")
    expected = model.state_dict()
    for key, value in expected.items():
        if key not in state:
            raise ValueError(f"--weights {weights}: key {key!r} of the network is missing from the file")
        if tuple(state[key].shape) != tuple(value.shape):
            raise ValueError(f"--weights {weights}: key {key!r} has shape {tuple(state[key].shape)} in the file but "
                             f"{tuple(value.shape)} in the network")
    extra = [k for k in state if k not in expected]
    if extra:
        raise ValueError(f"--weights {weights}: key {extra[0]!r} of the file is not in the network")
    model.load_state_dict(state)
    return model


def export_model_file(spec: str, path: str | Path, input_shape: tuple[int, ...], weights: str | Path | None = None,
                      class_names: list[str] | None = None, top_k: int | None = None,
                      regions: bool = False) -> Path:
    """``invlab export --model-file FILE.py:FACTORY``: a network invlab never trained, built by the
    factory (the convention of ``invlab train --model-file``; it is offered ``input_shape`` and, with
    class names, ``num_classes``), its weights from a state dict, exported by :func:`to_onnx` with
    the class names in the graph's metadata."""
    from invlab.models.custom import build_custom_model

    model, _ = build_custom_model(spec, tuple(input_shape), len(class_names) if class_names else None)
    if weights is not None:
        load_state_dict_file(model, weights)
    model.eval()
    with torch.no_grad():
        try:
            classes = model(torch.zeros(1, *input_shape)).shape[-1]
        except Exception as err:  # noqa: BLE001 (the user's forward, whatever it raises)
            raise ValueError(f"--model-file {spec!r}: the network does not run on an input of shape "
                             f"{tuple(input_shape)} ({str(err).splitlines()[0]}); check --input-shape") from None
    if class_names and len(class_names) != classes:
        raise ValueError(f"--class-names: {len(class_names)} names for a network of {classes} classes")
    meta = {"invlab.dataset": "", "invlab.class_names": json.dumps(list(class_names or [])),
            "invlab.model_file": Path(spec.rpartition(":")[0]).name + ":" + spec.rpartition(":")[2]}
    return to_onnx(model, path, input_shape=tuple(input_shape), preprocess_kind="none", metadata=meta, top_k=top_k,
                   regions=regions)


def run_onnx(path: str | Path, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The graph's outputs for one raw example ``x`` (1, *D), by onnxruntime: {name: tensor}."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    values = session.run(None, {INPUT: x.detach().cpu().numpy().astype("float32")})
    return {o.name: torch.from_numpy(v) for o, v in zip(session.get_outputs(), values)}


__all__ = ["INPUT", "OUTPUTS", "REGIONS_BATCH", "REGIONS_INPUTS", "REGIONS_OUTPUTS", "SWEEP_LEVELS", "TOP_K_OUTPUT",
           "SegmentPoints", "SegmentTail", "SegmentWalk", "SplineView", "export_checkpoint", "export_loaded",
           "export_model_file", "load_state_dict_file", "regions_graph", "run_onnx", "sweep_graphs", "to_onnx"]
