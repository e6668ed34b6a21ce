"""The affine regions a network cuts its input into, exactly: along a segment, and on a plane.

A piecewise-affine network is an affine spline (paper eq. 1): its input space is cut into regions, on
each of which f(x) = A x + b with fixed A and b, and a region is the set of inputs sharing one
activation pattern (every ReLU on or off, every max-pooling window's choice; see
:meth:`~invlab.transposed.TransposedPass.pattern`).

Along a segment x(t) = x0 + t (x1 - x0), t in [0, 1], every layer's input is affine in t inside a
region: h(t) = h + (t - t0) hd, where hd is the layer's input under the region's linear map applied
to the direction (one extra pass with the states fixed, :meth:`~invlab.transposed.TransposedPass.frozen`
with ``bias=False``). The next change of state — a ReLU's input crossing 0, another input overtaking a
max-pooling window's winner, an inhibitor group's winner changing — is therefore found exactly, not by
sampling: each nonlinearity's rule says where (:meth:`~invlab.transposed.rules.Rule.crossing`).
:func:`segment` walks from break to break, in float64.

:func:`plane` maps the plane through three inputs on a grid: the activation pattern at every grid
point, regions numbered by pattern, the predicted class, and the boundaries between regions and
between classes as images.

Inputs live in the network's own input space: a checkpoint's per-image preprocessing is not affine,
so apply it to the end points first (:func:`invlab.viz.explain.model_input`).
"""

from __future__ import annotations

import copy
import hashlib
import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn as nn

from invlab.transposed import TransposedPass, transposed_pass

#: Each new piece's pattern is read this far past the break (in t, float64): far below any piece the
#: segment between two real images has, far above float64's rounding of t.
STEP_PAST = 1e-10


def _float64_pass(model: nn.Module) -> TransposedPass:
    transposed_pass(model, strict=True)  # refuses a layer it cannot take, by name, before any copy
    return TransposedPass(copy.deepcopy(model).double().eval())


def _nonlinear(tp: TransposedPass):
    return [s for s in tp.steps if s.rule is not None and s.rule.nonlinear]


@dataclass
class Segment:
    """The exact pieces of the segment x0 → x1.

    Attributes:
        breaks: (n,) the t in (0, 1) where the activation pattern changes, increasing.
        units_changed: (n,) how many pattern entries change at each break.
        logits: (n + 1, 2, C): piece k's logits are ``logits[k, 0] + t * logits[k, 1]`` on
            [starts[k], ends[k]].
        decisions: [(t, class before, class after)] where the predicted class changes.
        start_class, end_class: the predicted class at t = 0 and t = 1.
    """

    breaks: torch.Tensor
    units_changed: torch.Tensor
    logits: torch.Tensor
    decisions: list[tuple[float, int, int]] = field(default_factory=list)
    start_class: int = 0
    end_class: int = 0

    @property
    def pieces(self) -> int:
        return len(self.breaks) + 1

    @property
    def starts(self) -> torch.Tensor:
        return torch.cat([torch.zeros(1, dtype=torch.float64), self.breaks])

    @property
    def ends(self) -> torch.Tensor:
        return torch.cat([self.breaks, torch.ones(1, dtype=torch.float64)])

    def piece_at(self, t) -> torch.Tensor:
        """The index of the piece holding each t (a break belongs to the piece it starts)."""
        return torch.searchsorted(self.breaks, torch.as_tensor(t, dtype=torch.float64), right=True)

    def logits_at(self, t) -> torch.Tensor:
        """(len(t), C): the logits at each t, from the pieces' affine maps."""
        t = torch.as_tensor(t, dtype=torch.float64).reshape(-1)
        k = self.piece_at(t)
        return self.logits[k, 0] + t[:, None] * self.logits[k, 1]

    def regions_between(self, a: float, b: float) -> int:
        """How many pieces meet [a, b]."""
        return int(((self.breaks > a) & (self.breaks < b)).sum()) + 1


def _decisions(logits: torch.Tensor, starts: torch.Tensor, ends: torch.Tensor) -> list[tuple[float, int, int]]:
    """Where the argmax of piecewise-affine logits changes, exactly (within each piece, the next class
    to overtake the current one)."""
    out = []
    current = int(logits[0, 0].add(starts[0] * logits[0, 1]).argmax())
    for k in range(len(starts)):
        a, b = logits[k, 0], logits[k, 1]
        t = float(starts[k])
        at_start = int((a + t * b).argmax())
        if at_start != current:
            out.append((t, current, at_start))
            current = at_start
        while True:
            gap, closing = a - a[current] + t * (b - b[current]), b - b[current]  # gap <= 0
            s = torch.where(closing > 0, -gap / torch.where(closing > 0, closing, 1.0), torch.inf)
            s[current] = torch.inf
            nxt = int(s.argmin())
            if not math.isfinite(float(s[nxt])) or t + float(s[nxt]) >= float(ends[k]):
                break
            t += float(s[nxt])
            out.append((t, current, nxt))
            current = nxt
    return out


def segment(model: nn.Module, x0: torch.Tensor, x1: torch.Tensor, max_pieces: int = 200_000,
            progress: bool = False) -> Segment | list[Segment]:
    """The exact pieces of the segment from x0 to x1 (see the module docstring).

    Args:
        model: a network :class:`~invlab.transposed.TransposedPass` takes (others are refused by name).
        x0, x1: (1, *D) end points in the network's input space, or (B, *D) for B segments.
        max_pieces: a segment with more pieces stops with an error saying so.
        progress: a progress bar over t.

    Returns:
        A :class:`Segment`, or a list of them for a batch.
    """
    if x0.shape != x1.shape:
        raise ValueError(f"x0 and x1 must have the same shape, got {tuple(x0.shape)} and {tuple(x1.shape)}")
    tp = _float64_pass(model)
    if x0.shape[0] != 1:
        return [_walk(tp, x0[i:i + 1], x1[i:i + 1], max_pieces, progress) for i in range(x0.shape[0])]
    return _walk(tp, x0, x1, max_pieces, progress)


def _walk(tp: TransposedPass, x0: torch.Tensor, x1: torch.Tensor, max_pieces: int, progress: bool) -> Segment:
    from tqdm.auto import tqdm

    x0, d = x0.double(), (x1 - x0).double()
    steps = _nonlinear(tp)
    inputs = tuple(dict.fromkeys(s.inputs[0] for s in steps))
    breaks, changed, pieces = [], [], []
    t, previous = 0.0, None
    # the layers before the first nonlinearity are affine in t along the whole segment: computed once
    prefix = tp.affine_prefix()
    with torch.no_grad():
        _, start_states = tp.forward(x0, keep=tuple(prefix))
        _, start_dir = tp.frozen(d, start_states, bias=False, keep=tuple(prefix))
    at0 = start_states.get("z", {})
    bar = tqdm(total=1.0, disable=not progress, desc="segment", unit="t", bar_format="{l_bar}{bar}| {n:.3f}/1")
    with torch.no_grad():
        while True:
            x = x0 + t * d
            given = {n: (at0[n] + t * start_dir[n], start_states[n]) for n in prefix}
            logits, states = tp.forward(x, keep=inputs, given=given)
            slope, along = tp.frozen(d, states, bias=False, keep=inputs,  # the direction through the region
                                     given={n: start_dir[n] for n in prefix})
            pattern = tp.pattern(states)[0]
            if previous is not None:
                changed.append(int((pattern != previous).sum()))
            previous = pattern
            pieces.append(torch.stack([logits[0] - t * slope[0], slope[0]]))  # logits(t) = a + t b
            h, hd = states["z"], along
            s = min(float(st.rule.crossing(st, h[st.inputs[0]], hd[st.inputs[0]], states[st.name], tp)[0])
                    for st in steps) if steps else math.inf
            nxt = t + s
            if not nxt < 1.0:
                break
            if len(pieces) >= max_pieces:
                raise RuntimeError(f"the segment has more than max_pieces={max_pieces} pieces (reached t = {t:.6f}); "
                                   "give a larger max_pieces or a shorter segment")
            breaks.append(nxt)
            bar.update(nxt + STEP_PAST - bar.n)
            t = nxt + STEP_PAST
    bar.close()
    seg = Segment(torch.tensor(breaks, dtype=torch.float64), torch.tensor(changed, dtype=torch.long),
                  torch.stack(pieces))
    seg.decisions = _decisions(seg.logits, seg.starts, seg.ends)
    seg.start_class = int(seg.logits_at([0.0])[0].argmax())
    seg.end_class = int(seg.logits_at([1.0])[0].argmax())
    return seg


# -- the plane ------------------------------------------------------------------------------------


def pattern_keys(tp: TransposedPass, states: dict) -> list[bytes]:
    """One key per example, equal exactly when the activation patterns are equal: each nonlinearity's
    state packed (on/off as bits, a pooling's choices as integers) and digested (BLAKE2b, 128 bits)."""
    parts = []
    for s in _nonlinear(tp):
        p = s.rule.pattern(states[s.name]).flatten(1)
        if p.dtype == torch.bool:
            parts.append(np.packbits(p.cpu().numpy(), axis=1))
        else:
            parts.append(p.to(torch.int64 if not p.is_floating_point() else torch.float64).cpu().numpy()
                         .view(np.uint8).reshape(p.shape[0], -1))
    rows = np.concatenate(parts, axis=1)
    return [hashlib.blake2b(row.tobytes(), digest_size=16).digest() for row in rows]


@dataclass
class Plane:
    """The plane x0 + a (x1 - x0) + b (x2 - x0) on a grid (see :func:`plane`).

    Attributes:
        a, b: (W,), (H,) the grid's plane coordinates (columns, rows).
        region_ids: (H, W) int64, equal exactly where the activation patterns are equal.
        prediction: (H, W) the predicted class.
        count: how many regions the grid meets.
    """

    x0: torch.Tensor
    u: torch.Tensor
    v: torch.Tensor
    a: torch.Tensor
    b: torch.Tensor
    region_ids: torch.Tensor
    prediction: torch.Tensor

    @property
    def count(self) -> int:
        return int(self.region_ids.unique().numel())

    def point(self, i: int, j: int) -> torch.Tensor:
        """The input (1, *D) at grid cell (row i, column j)."""
        return (self.x0 + self.a[j] * self.u + self.b[i] * self.v).to(self.x0.dtype)

    @staticmethod
    def _edges(ids: torch.Tensor) -> torch.Tensor:
        edge = torch.zeros_like(ids, dtype=torch.bool)
        edge[:, 1:] |= ids[:, 1:] != ids[:, :-1]
        edge[1:, :] |= ids[1:, :] != ids[:-1, :]
        return edge

    @property
    def region_boundaries(self) -> torch.Tensor:
        """(H, W) bool: a cell whose left or upper neighbour lies in another region."""
        return self._edges(self.region_ids)

    @property
    def class_boundaries(self) -> torch.Tensor:
        """(H, W) bool: a cell whose left or upper neighbour is predicted another class."""
        return self._edges(self.prediction)

    def density(self, block: int = 16) -> torch.Tensor:
        """(H / block, W / block): distinct regions in each block of cells."""
        H, W = self.region_ids.shape
        out = torch.zeros(math.ceil(H / block), math.ceil(W / block), dtype=torch.long)
        for i in range(out.shape[0]):
            for j in range(out.shape[1]):
                out[i, j] = self.region_ids[i * block:(i + 1) * block, j * block:(j + 1) * block].unique().numel()
        return out


def plane(model: nn.Module, x0: torch.Tensor, x1: torch.Tensor, x2: torch.Tensor, resolution: int = 256,
          window: tuple[tuple[float, float], float] | None = None, batch: int = 1024,
          progress: bool = False) -> Plane:
    """The plane through x0, x1, x2 (each (1, *D), the network's input space) sampled on a
    ``resolution`` × ``resolution`` grid of plane coordinates (a, b), x = x0 + a (x1 - x0) + b (x2 - x0):
    over the three points' span with a margin of 0.1 (x0 at (0, 0), x1 at (1, 0), x2 at (0, 1)), or with
    ``window=((a, b), radius)`` over the square of that radius around (a, b). At the scale of whole images
    a grid cell holds many regions (a pixel-resolution map is then a map of region *density*); a small window
    shows the regions themselves."""
    from tqdm.auto import tqdm

    if not (x0.shape == x1.shape == x2.shape) or x0.shape[0] != 1:
        raise ValueError(f"x0, x1, x2 must each be one input (1, *D) of the same shape, got {tuple(x0.shape)}, "
                         f"{tuple(x1.shape)}, {tuple(x2.shape)}")
    if resolution < 2:
        raise ValueError(f"resolution must be at least 2, got {resolution}")
    tp = transposed_pass(model, strict=True)
    model.eval()
    if window is None:
        lo_a, hi_a, lo_b, hi_b = -0.1, 1.1, -0.1, 1.1
    else:
        (ca, cb), r = window
        lo_a, hi_a, lo_b, hi_b = ca - r, ca + r, cb - r, cb + r
    a = torch.linspace(lo_a, hi_a, resolution, dtype=torch.float64)
    b = torch.linspace(lo_b, hi_b, resolution, dtype=torch.float64)
    u, v = (x1 - x0).double(), (x2 - x0).double()
    grid_b, grid_a = torch.meshgrid(b, a, indexing="ij")  # (H, W): rows b, columns a
    coords = torch.stack([grid_a.flatten(), grid_b.flatten()], 1)  # (H·W, 2)
    ids = torch.empty(len(coords), dtype=torch.long)
    prediction = torch.empty(len(coords), dtype=torch.long)
    numbering: dict[bytes, int] = {}
    with torch.no_grad():
        for start in tqdm(range(0, len(coords), batch), disable=not progress, desc="plane", unit="batch"):
            c = coords[start:start + batch]
            x = (x0.double() + c[:, 0].view(-1, *[1] * (x0.dim() - 1)) * u
                 + c[:, 1].view(-1, *[1] * (x0.dim() - 1)) * v).to(x0.dtype)
            logits, states = tp.forward(x)
            prediction[start:start + len(c)] = logits.argmax(1)
            for k, key in enumerate(pattern_keys(tp, states)):
                ids[start + k] = numbering.setdefault(key, len(numbering))
    shape = (resolution, resolution)
    return Plane(x0, u, v, a, b, ids.view(shape), prediction.view(shape))


__all__ = ["Plane", "Segment", "pattern_keys", "plane", "segment"]
