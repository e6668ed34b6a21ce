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
:func:`segment` walks from break to break in float64. Every layer's input is continuous in t, so
at a break its value follows from the piece just walked (h + s hd); the states past the break are
read from it, and the new piece costs one pass along the direction, not a forward. :data:`WALKERS`
walkers go side by side, one batch of the network for all of them (and for a batch of segments), each
over a part of the segment, started by one forward; one that is done takes over half of the longest
part left.

A ReLU network (every nonlinearity changing state where one unit's input crosses 0, at most
:data:`SWEEP_LEVELS` levels of them: :meth:`~invlab.transposed.TransposedPass.nonlinear_levels`) is
swept instead, level by level: the first level's inputs are affine along the whole segment, so their
zeros are its breaks; a level's inputs are affine between consecutive breaks of the levels below it, so
its own breaks are where a unit's sign differs at two consecutive known points, at the linear
interpolation's zero. One forward per break and no pass along the direction; the same breaks as the
walk (the Explore page sweeps the same way in the browser).

:func:`plane` maps the plane through three inputs on a grid: the activation pattern at every grid
point, regions numbered by pattern, the predicted class, and the boundaries between regions and
between classes as images. :func:`polygons` gives a ReLU network's regions on a window of that plane
exactly, as polygons (checked against ``regioncam`` on fully connected networks).

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
from invlab.transposed.kinds import ReLU

#: Each new piece's states are read this far past its break (in t, float64): two breaks closer than
#: this are one break. Far below any piece the segment between two real images has, far above
#: float64's rounding of t.
STEP_PAST = 1e-10

#: Walkers stepped side by side (one batch of the network). A segment starts with this many, each
#: walking an equal part; a walker that reaches its part's end hands its place to half of the longest
#: part still ahead of another (one forward starts it).
WALKERS = 32

#: A walker's part is not split below this length in t.
MIN_SPLIT = 1e-6

#: A ReLU network of at most this many levels of nonlinearities is swept, not walked (:func:`_sweep`: each
#: level's pass runs a forward at every point known so far, so a deeper network costs more forwards per piece
#: than the walk's one pass along the direction); the sweep's points per forward.
SWEEP_LEVELS = 2
SWEEP_BATCH = 64


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
    to overtake the current one). On one piece the argmax is the upper envelope of lines, where each
    class holds one interval at most: a piece predicted the same class at both ends holds no change,
    and only the others are walked."""
    at_start = (logits[:, 0] + starts[:, None] * logits[:, 1]).argmax(1)
    at_end = (logits[:, 0] + ends[:, None] * logits[:, 1]).argmax(1)
    before = torch.cat([at_start[:1], at_end[:-1]])  # the class just before each piece
    out = []
    for k in ((at_start != before) | (at_start != at_end)).nonzero().flatten().tolist():
        a, b = logits[k, 0], logits[k, 1]
        t, current = float(starts[k]), int(at_start[k])
        if current != int(before[k]):
            out.append((t, int(before[k]), current))
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
        x0, x1: (1, *D) end points in the network's input space, or (B, *D) for B segments (walked
            together: one batch of points serves them all).
        max_pieces: a segment with more pieces stops with an error saying so.
        progress: a progress bar over the length found (summed over the segments).

    Returns:
        A :class:`Segment`, or a list of them for a batch.
    """
    if x0.shape != x1.shape:
        raise ValueError(f"x0 and x1 must have the same shape, got {tuple(x0.shape)} and {tuple(x1.shape)}")
    if max_pieces < 1:
        raise ValueError(f"max_pieces must be at least 1, got {max_pieces}")
    tp = _float64_pass(model)
    # the direction in float64 from the float64 end points: a float32 difference moves x1 by ~1e-8, enough
    # to split ties that hold along the whole segment (a max-pooling window over a blank patch) and to
    # add hundreds of real but accidental pieces
    x0, x1 = x0.double(), x1.double()
    levels = _sweepable(tp)
    segments = (_sweep(tp, levels, x0, x1 - x0, max_pieces, progress) if levels is not None
                else _walk(tp, x0, x1 - x0, max_pieces, progress))
    return segments if x0.shape[0] != 1 else segments[0]


class _Patterns:
    """The pieces' activation patterns, compact: on/off states as bits, other states as integers, so that
    consecutive pieces can be compared (how many units change at a break)."""

    def __init__(self, tp: TransposedPass):
        self.steps = _nonlinear(tp)
        self.bits, self.values = [], []

    def add(self, states: dict) -> None:
        bits, values = [], []
        for s in self.steps:
            p = s.rule.pattern(states[s.name]).flatten(1)
            if p.dtype == torch.bool:
                bits.append(np.packbits(p.numpy(), axis=1))
            else:
                values.append(p.double().numpy())
        n = len((bits or values)[0])
        self.bits.append(np.concatenate(bits, 1) if bits else np.zeros((n, 0), np.uint8))
        self.values.append(np.concatenate(values, 1) if values else np.zeros((n, 0)))

    def changes(self, rows: np.ndarray) -> np.ndarray:
        """How many entries differ between the patterns of rows[k] and rows[k + 1]."""
        bits, values = np.concatenate(self.bits)[rows], np.concatenate(self.values)[rows]
        out = np.zeros(max(len(rows) - 1, 0), dtype=np.int64)
        for k in range(0, len(out), 4096):
            sl = slice(k, min(k + 4096, len(out)))
            xor = bits[sl.start:sl.stop] ^ bits[sl.start + 1:sl.stop + 1]
            out[sl] = np.bitwise_count(xor).sum(1, dtype=np.int64) + (values[sl.start:sl.stop]
                                                            != values[sl.start + 1:sl.stop + 1]).sum(1)
        return out


def _states_at(tp: TransposedPass, steps, h: dict) -> dict:
    """The nonlinearities' states where their inputs are ``h`` ({node: value}), updated in place: an input
    that is another nonlinearity's output (through identities) is that one's output, computed here, not
    the value carried: a carried ReLU output may round to -1e-17 where the ReLU gives exactly 0, and a
    max pooling over zeros then picks another input than the forward does."""
    made, states = {}, {}
    for st in steps:
        source = st.inputs[0]
        while source not in made and tp.step(source).rule is not None and tp.step(source).rule.passthrough:
            source = tp.step(source).inputs[0]
        if source in made:
            h[st.inputs[0]] = made[source]
        x = h[st.inputs[0]]
        made[st.name], states[st.name] = st.rule.forward(st, [x], tp._resolve(st.args, h),
                                                          tp._resolve(st.kwargs, h), tp)
    return _as_masks(steps, states)


def _as_masks(steps, states: dict) -> dict:
    """A ReLU's state kept as its on/off mask (its pattern): the frozen pass and the comparisons of patterns
    then read it without comparing the outputs with 0 again."""
    for st in steps:
        if st.name in states and isinstance(st.rule, ReLU):
            states[st.name] = st.rule.pattern(states[st.name])
    return states


def _same_pattern(steps, a: dict, b: dict) -> torch.Tensor:
    """(B,) whether two sets of states describe the same activation pattern, per example."""
    same = None
    for st in steps:
        eq = (st.rule.pattern(a[st.name]) == st.rule.pattern(b[st.name])).flatten(1).all(1)
        same = eq if same is None else same & eq
    return same


def _walk(tp: TransposedPass, x0: torch.Tensor, d: torch.Tensor, max_pieces: int, progress: bool) -> list[Segment]:
    from tqdm.auto import tqdm

    n_seg = x0.shape[0]
    steps = _nonlinear(tp)
    inputs = tuple(dict.fromkeys(s.inputs[0] for s in steps))
    prefix = tp.affine_prefix()  # before the first nonlinearity: affine in t along the whole segment
    with torch.no_grad():
        _, start_states = tp.forward(x0, keep=tuple(prefix))
        _, start_dir = tp.frozen(d, start_states, bias=False, keep=tuple(prefix))
    at0 = start_states.get("z", {})
    fixed: dict = {}  # the affine layers' states (shapes and such), the same for every walker

    def col(t, like):
        return t.view(-1, *[1] * (like.dim() - 1))

    def direction(seg, states):
        """The logits' and the nonlinearities' inputs' rates of change along the segment, in the piece."""
        return tp.frozen(d[seg], {**fixed, **states}, bias=False, keep=inputs,
                         given={n: start_dir[n][seg] for n in prefix})

    def settle(seg, h, states):
        """The states just past a point where the inputs are ``h`` (a break, or a walker's start), from a first
        guess: read at h + STEP_PAST hd with the direction hd of the piece they give, until they agree (a
        unit exactly at a threshold there goes the way the new piece moves it). Returns the piece's slope,
        direction, the inputs just past the point, and the states."""
        for _ in range(4):
            slope, hd = direction(seg, states)
            past = {n: torch.add(v, hd[n], alpha=STEP_PAST) for n, v in h.items()}
            settled = _states_at(tp, steps, past)
            if _same_pattern(steps, settled, states).all():
                break
            states = settled
        else:  # no agreement in four rounds: the last states, with their own direction and inputs past the point
            slope, hd = direction(seg, states)
            past = {n: torch.add(v, hd[n], alpha=STEP_PAST) for n, v in h.items()}
            _states_at(tp, steps, past)  # a nonlinearity's input that is another's output: that output
        return slope, hd, past, states

    def start(seg, t):
        """Walkers starting at t on segments seg: one forward, then the states just past t."""
        given = {n: (at0[n][seg] + col(t, at0[n]) * start_dir[n][seg], start_states[n]) for n in prefix}
        logits, states = tp.forward(x0[seg] + col(t, x0) * d[seg], keep=inputs, given=given)
        h = states.pop("z")
        fixed.update({n: v for n, v in states.items() if n not in names})
        slope, hd, h, states = settle(seg, h, _as_masks(steps, {n: states[n] for n in names}))
        return torch.add(logits, slope, alpha=STEP_PAST), h, states, slope, hd

    names = [st.name for st in steps]
    continuous = all(st.rule.continuous for st in steps)
    # a nonlinearity right after the affine prefix (its input affine along the whole segment) whose state
    # changes where a unit's input crosses 0 (a ReLU) changes at fixed t's: each unit's zero, found once and
    # sorted (segment k's shifted by 2k, so one sorted list serves every segment), looked up at every step
    fixed_steps = [st for st in steps if st.inputs[0] in at0 and st.inputs[0] in start_dir
                   and st.rule.continuous and st.rule.crosses_at_zero(st)]
    zeros = None
    if fixed_steps:
        z = torch.cat([at0[st.inputs[0]].flatten(1) for st in fixed_steps], 1)  # (segments, units) at t = 0
        zd = torch.cat([start_dir[st.inputs[0]].flatten(1) for st in fixed_steps], 1)  # and their rates
        r = -z / torch.where(zd != 0, zd, 1.0)
        inside = (zd != 0) & (r >= 0) & (r <= 1)
        zeros = (r + 2 * torch.arange(n_seg, dtype=x0.dtype)[:, None])[inside].sort().values
    elementwise = [st for st in steps if st not in fixed_steps]
    # parts not yet walked (segment, from, to), WALKERS per segment
    todo_seg = torch.arange(n_seg).repeat_interleave(WALKERS)
    todo_lo = torch.arange(WALKERS, dtype=x0.dtype).repeat(n_seg) / WALKERS
    todo_hi = todo_lo + 1 / WALKERS
    found_seg, found_start, found_logits = [], [], []
    patterns = _Patterns(tp)
    count = torch.zeros(n_seg, dtype=torch.long)
    bar = tqdm(total=float(n_seg), disable=not progress, desc="segment", unit="t",
               bar_format="{l_bar}{bar}| {n:.3f}/{total:.0f} [{elapsed}<{remaining}]")
    # the walkers: segment, where the piece starts, where the walker is (just past it), where its part ends
    seg = torch.zeros(0, dtype=torch.long)
    at = t = fin = torch.zeros(0, dtype=x0.dtype)
    logits = slope = h = hd = states = None
    with torch.no_grad():
        while True:
            # fill free places: parts not yet walked first, then the second half of the longest part left
            free = WALKERS - len(seg)
            new_seg = new_lo = new_hi = None
            if free > 0 and len(todo_seg):
                new_seg, new_lo, new_hi = todo_seg[:free], todo_lo[:free], todo_hi[:free]
                todo_seg, todo_lo, todo_hi = todo_seg[free:], todo_lo[free:], todo_hi[free:]
            elif free > 0 and len(seg):
                left = fin - t
                order = left.argsort(descending=True)[:free]
                order = order[left[order] > 2 * MIN_SPLIT]
                if len(order):
                    mid = (t[order] + fin[order]) / 2
                    new_seg, new_lo, new_hi = seg[order], mid, fin[order]
                    fin = fin.index_put((order,), mid)
            if new_seg is not None:
                n_logits, n_h, n_states, n_slope, n_hd = start(new_seg, new_lo)
                if len(seg):
                    logits, slope = torch.cat([logits, n_logits]), torch.cat([slope, n_slope])
                    h = {n: torch.cat([v, n_h[n]]) for n, v in h.items()}
                    hd = {n: torch.cat([v, n_hd[n]]) for n, v in hd.items()}
                    states = _states_at(tp, steps, h)  # just past a break or a start: the settled states
                else:
                    logits, h, states, slope, hd = n_logits, n_h, n_states, n_slope, n_hd
                seg, at, fin = torch.cat([seg, new_seg]), torch.cat([at, new_lo]), torch.cat([fin, new_hi])
                t = torch.cat([t, new_lo + STEP_PAST])
            if not len(seg):
                break
            # the piece each walker is in
            found_seg.append(seg)
            found_start.append(at)
            found_logits.append(torch.stack([logits - col(t, logits) * slope, slope], 1))  # logits(t) = a + t b
            patterns.add(states)
            count.add_(torch.bincount(seg, minlength=n_seg))
            if (count > max_pieces).any():
                k = int((count > max_pieces).nonzero()[0])
                raise RuntimeError(f"the segment has more than max_pieces={max_pieces} pieces (segment {k}); "
                                   "give a larger max_pieces or a shorter segment")
            ahead = torch.full_like(t, math.inf)
            if zeros is not None and len(zeros):
                shift = 2 * seg.to(t.dtype)
                k = torch.searchsorted(zeros, t + shift, right=True).clamp_(max=len(zeros) - 1)
                nearest = zeros[k] - shift  # the first zero past t, if it is this segment's
                ahead = torch.where((nearest > t) & (nearest <= 1), nearest - t, ahead)
            for st in elementwise:
                ahead = torch.minimum(ahead, st.rule.crossing(st, h[st.inputs[0]], hd[st.inputs[0]],
                                                              states[st.name], tp))
            nxt = t + ahead
            going = nxt < fin
            bar.update(float((torch.minimum(nxt, fin) - at).sum()))
            if not going.all():
                seg, t, fin, nxt, ahead = seg[going], t[going], fin[going], nxt[going], ahead[going]
                logits, slope = logits[going], slope[going]
                h = {n: v[going] for n, v in h.items()}
                hd = {n: v[going] for n, v in hd.items()}
                if not len(seg):
                    continue
            if not continuous:  # the layers after an inhibitor jump at a break: a forward just past it
                logits, h, states, slope, hd = start(seg, nxt + STEP_PAST)
                at, t = nxt, nxt + 2 * STEP_PAST
                continue
            # the walkers go on past their breaks: the inputs there follow from the piece (continuity);
            # the states just past it are read there, then settled with the new piece's own direction
            # (for a unit whose input is exactly at a threshold at the break)
            h = {n: torch.addcmul(v, col(ahead, v), hd[n]) for n, v in h.items()}
            logits = torch.addcmul(logits, col(ahead, logits), slope)
            guess = _states_at(tp, steps, {n: torch.add(v, hd[n], alpha=STEP_PAST) for n, v in h.items()})
            slope, hd, h, states = settle(seg, h, guess)
            logits = torch.add(logits, slope, alpha=STEP_PAST)
            at, t = nxt, nxt + STEP_PAST
    bar.close()
    seg_of, first = torch.cat(found_seg), torch.cat(found_start).double()
    logits = torch.cat(found_logits).double()
    out = []
    for k in range(n_seg):
        rows = (seg_of == k).nonzero().flatten()
        rows = rows[first[rows].argsort()].numpy()
        changed = patterns.changes(rows)
        keep = np.concatenate([[True], changed > 0])  # a part's first piece may continue the one before
        rows, changed = rows[keep], changed[changed > 0]
        out.append(_finished(Segment(first[rows][1:].clone(), torch.from_numpy(changed), logits[rows])))
    return out


def _finished(s: Segment) -> Segment:
    """``s`` with its decision changes and end classes."""
    s.decisions = _decisions(s.logits, s.starts, s.ends)
    s.start_class = int(s.logits_at([0.0])[0].argmax())
    s.end_class = int(s.logits_at([1.0])[0].argmax())
    return s


def _sweepable(tp: TransposedPass) -> list | None:
    """The levels of nonlinearities (:meth:`~invlab.transposed.TransposedPass.nonlinear_levels`) of a network
    :func:`_sweep` takes — every nonlinearity continuous and changing state where one unit's input crosses 0
    (:meth:`~invlab.transposed.rules.Rule.crosses_at_zero`), at most :data:`SWEEP_LEVELS` levels — else None."""
    levels = tp.nonlinear_levels()[0]
    if 0 < len(levels) <= SWEEP_LEVELS and all(st.rule.continuous and st.rule.crosses_at_zero(st)
                                               for level in levels for st in level):
        return levels
    return None


def _sweep(tp: TransposedPass, levels: list, x0: torch.Tensor, d: torch.Tensor, max_pieces: int,
           progress: bool) -> list[Segment]:
    """The segments of a ReLU network level by level (see the module docstring): level k's inputs are affine
    between consecutive breaks of the levels below it, so its own breaks are where a unit's sign differs at two
    consecutive known points, at the linear interpolation's zero; one forward per break, in batches of
    :data:`SWEEP_BATCH` points. The logits at consecutive points give each piece's affine logits (they are
    continuous)."""
    from tqdm.auto import tqdm

    names = [list(dict.fromkeys(st.inputs[0] for st in level)) for level in levels]
    prefix = tuple(tp.affine_prefix())
    keep = tuple(dict.fromkeys(n for level in names for n in level))
    out = []
    bar = tqdm(total=x0.shape[0] * len(levels), disable=not progress, desc="segment", unit="level")
    with torch.no_grad():
        for k in range(x0.shape[0]):
            a, direction = x0[k:k + 1], d[k:k + 1]
            ends_logits, ends = tp.forward(torch.cat([a, a + direction]), keep=prefix + keep)
            z = ends.pop("z")

            def run(ts: torch.Tensor, level: int | None) -> tuple[torch.Tensor, torch.Tensor | None]:
                """The logits at the points ts and, with ``level``, that level's inputs there, flattened."""
                logits, inputs = [], []
                for first in range(0, len(ts), SWEEP_BATCH):
                    t = ts[first:first + SWEEP_BATCH]
                    # the affine prefix interpolated between the two ends, not run again
                    given = {n: (z[n][:1] + t.view(-1, *[1] * (z[n].dim() - 1)) * (z[n][1:] - z[n][:1]), ends.get(n))
                             for n in prefix}
                    f, states = tp.forward(a + t.view(-1, *[1] * (a.dim() - 1)) * direction,
                                           keep=tuple(names[level]) if level is not None else (), given=given)
                    logits.append(f)
                    if level is not None:
                        inputs.append(torch.cat([states["z"][n].flatten(1) for n in names[level]], 1))
                return torch.cat(logits), (torch.cat(inputs) if level is not None else None)

            points = torch.tensor([0.0, 1.0], dtype=x0.dtype)
            changed = torch.zeros(2, dtype=torch.long)
            logits = ends_logits
            for level in range(len(levels)):
                if level == 0:  # affine along the whole segment: its values at the two ends
                    inputs = torch.cat([z[n].flatten(1) for n in names[0]], 1)
                else:
                    logits, inputs = run(points, level)
                i, j = ((inputs[:-1] > 0) != (inputs[1:] > 0)).nonzero(as_tuple=True)
                w = inputs[i, j] / (inputs[i, j] - inputs[i + 1, j])
                found = points[i] + w * (points[i + 1] - points[i])
                # every point, sorted; those within STEP_PAST of the one before are one break
                t = torch.cat([points, found])
                count = torch.cat([changed, torch.ones_like(found, dtype=torch.long)])
                known = torch.cat([torch.arange(len(points)), torch.full((len(found),), -1)])
                order = t.argsort(stable=True)
                t, count, known = t[order], count[order], known[order]
                starts = torch.cat([torch.ones(1, dtype=torch.bool), t[1:] - t[:-1] > STEP_PAST])
                group = starts.cumsum(0) - 1
                points = t[starts]
                changed = torch.zeros(len(points), dtype=torch.long).index_add_(0, group, count)
                changed[0] = changed[-1] = 0  # the ends are not breaks
                if len(points) - 1 > max_pieces:
                    raise RuntimeError(f"the segment has more than max_pieces={max_pieces} pieces (segment {k}); "
                                       "give a larger max_pieces or a shorter segment")
                if level + 1 == len(levels):  # the last level: the logits at its new breaks
                    source = torch.full((len(points),), -1).scatter_reduce_(0, group, known, "amax")
                    new = source < 0
                    merged = torch.empty(len(points), logits.shape[1], dtype=logits.dtype)
                    merged[~new] = logits[source[~new]]
                    if new.any():
                        merged[new] = run(points[new], None)[0]
                    logits = merged
                bar.update(1)
            slope = (logits[1:] - logits[:-1]) / (points[1:] - points[:-1])[:, None]
            pieces = torch.stack([logits[:-1] - points[:-1, None] * slope, slope], 1)  # logits(t) = a + t b
            out.append(_finished(Segment(points[1:-1].clone(), changed[1:-1].clone(), pieces)))
    bar.close()
    return out


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


def _collinear(u: torch.Tensor, v: torch.Tensor, tol: float = 1e-6) -> bool:
    """Whether u and v span less than a plane: the sine of their angle below ``tol`` (or either zero)."""
    nu, nv = float(u.norm()), float(v.norm())
    if nu == 0 or nv == 0:
        return True
    cos = float((u.flatten() @ v.flatten()) / (nu * nv))
    return 1 - cos * cos < tol * tol


def plane(model: nn.Module, x0: torch.Tensor, x1: torch.Tensor, x2: torch.Tensor, resolution: int = 256,
          window: tuple[tuple[float, float], float] | None = None, batch: int = 256,
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
    if _collinear(u, v):
        raise ValueError("x0, x1 and x2 lie on one line (two of them are equal, or one lies on the line through "
                         "the other two): they span no plane; choose another third input")
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


# -- the exact polygons ---------------------------------------------------------------------------------


@dataclass
class Polygons:
    """The exact regions of a window of the plane x0 + a (x1 - x0) + b (x2 - x0) (see :func:`polygons`).

    Attributes:
        vertices: one (k, 2) float64 array per region, its corners in plane coordinates (a, b), in order
            around it (regions are convex).
        keys: one activation-pattern key per region (:func:`pattern_keys`), all different.
        logits: (R, C, 3) each region's logits as an affine map of the plane coordinates:
            logits = L[:, :, 0] + a L[:, :, 1] + b L[:, :, 2].
    """

    vertices: list
    keys: list
    logits: np.ndarray

    @property
    def count(self) -> int:
        return len(self.vertices)

    @property
    def areas(self) -> np.ndarray:
        """(R,) each region's area in plane coordinates (the shoelace formula)."""
        return np.array([_area(v) for v in self.vertices])

    def locate(self, ab) -> np.ndarray:
        """(N,) the region holding each point (N, 2) of plane coordinates; -1 outside the window."""
        ab = np.asarray(ab, dtype=np.float64).reshape(-1, 2)
        out = np.full(len(ab), -1)
        for r, v in enumerate(self.vertices):
            edge, to = np.roll(v, -1, axis=0) - v, ab[:, None, :] - v[None]
            cross = edge[None, :, 0] * to[:, :, 1] - edge[None, :, 1] * to[:, :, 0]  # >= 0 inside (anticlockwise)
            out[(cross >= -1e-12).all(1) & (out < 0)] = r
        return out


def _area(v: np.ndarray) -> float:
    x, y = v[:, 0], v[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


def _split(v: np.ndarray, f: np.ndarray) -> list[np.ndarray]:
    """A convex polygon (k, 2), anticlockwise, cut by the line where the affine f (its values at the corners)
    is 0: the part where f >= 0 and the part where f <= 0, each kept if it has an area."""
    parts = ([], [])
    for i in range(len(v)):
        j = (i + 1) % len(v)
        if f[i] >= 0:
            parts[0].append(v[i])
        if f[i] <= 0:
            parts[1].append(v[i])
        if (f[i] > 0 > f[j]) or (f[i] < 0 < f[j]):
            cut = v[i] + f[i] / (f[i] - f[j]) * (v[j] - v[i])
            parts[0].append(cut)
            parts[1].append(cut)
    return [np.array(p) for p in parts if len(p) >= 3]


def polygons(model: nn.Module, x0: torch.Tensor, x1: torch.Tensor, x2: torch.Tensor,
             window: tuple[tuple[float, float], float] | None = None, max_regions: int = 20_000,
             batch: int = 256) -> Polygons:
    """The exact regions of a ReLU network on a window of the plane through x0, x1, x2 (each (1, *D)), as
    polygons: the window of :func:`plane` (the three points' span with a margin of 0.1, or
    ``window=((a, b), radius)``), cut layer by layer. Inside a polygon where every ReLU before a layer keeps
    its state, that layer's inputs are affine in (a, b) (a forward at the polygon's centre and two passes
    along the plane's axes with the states fixed give them exactly); the polygon is cut by the lines where
    those that change sign in it cross 0, and each part goes on to the next layer. ReLU networks only (fully
    connected ones are small enough: a convolutional network's window of whole images holds millions of
    regions); ``max_regions`` stops one that has more, saying so."""
    if not (x0.shape == x1.shape == x2.shape) or x0.shape[0] != 1:
        raise ValueError(f"x0, x1, x2 must each be one input (1, *D) of the same shape, got {tuple(x0.shape)}, "
                         f"{tuple(x1.shape)}, {tuple(x2.shape)}")
    tp = _float64_pass(model)
    steps = _nonlinear(tp)
    if not all(isinstance(st.rule, ReLU) for st in steps):
        other = next(st for st in steps if not isinstance(st.rule, ReLU))
        raise ValueError(f"polygons takes ReLU networks only; {other.name!r} is a {other.rule.kind}: map it on a "
                         "grid with plane() instead")
    x0, u, v = x0.double(), (x1 - x0).double(), (x2 - x0).double()
    if _collinear(u, v):
        raise ValueError("x0, x1 and x2 lie on one line: they span no plane; choose another third input")
    (ca, cb), r = window if window is not None else ((0.5, 0.5), 0.6)
    square = np.array([[ca - r, cb - r], [ca + r, cb - r], [ca + r, cb + r], [ca - r, cb + r]])
    smallest = 1e-12 * _area(square)
    inputs = tuple(dict.fromkeys(st.inputs[0] for st in steps))
    todo, done = [(square, 0)], []  # (polygon, the first layer not yet known to keep its states in it)
    with torch.no_grad():
        while todo:
            chunk, todo = todo[:batch], todo[batch:]
            centres = torch.tensor(np.array([p.mean(0) for p, _ in chunk]))
            col = [-1, *[1] * (x0.dim() - 1)]
            x = x0 + centres[:, 0].view(col) * u + centres[:, 1].view(col) * v
            logits, states = tp.forward(x, keep=inputs)
            h = states.pop("z")
            lu, hu = tp.frozen(u.expand_as(x), states, bias=False, keep=inputs)
            lv, hv = tp.frozen(v.expand_as(x), states, bias=False, keep=inputs)
            keys = pattern_keys(tp, states)
            for k, (poly, first) in enumerate(chunk):
                offsets = poly - centres[k].numpy()  # (corners, 2)
                for depth in range(first, len(steps)):
                    name = steps[depth].inputs[0]
                    at = (h[name][k].flatten().numpy()[None]
                          + offsets[:, :1] * hu[name][k].flatten().numpy()[None]
                          + offsets[:, 1:] * hv[name][k].flatten().numpy()[None])  # (corners, units)
                    tol = 1e-9 * max(float(np.abs(at).max()), 1e-300)
                    crossing = np.nonzero((at.max(0) > tol) & (at.min(0) < -tol))[0]
                    if len(crossing):
                        break
                else:  # every layer keeps its states in the polygon: a region
                    c = centres[k].numpy()
                    a_, b_ = lu[k].numpy(), lv[k].numpy()
                    done.append((poly, keys[k], np.stack([logits[k].numpy() - c[0] * a_ - c[1] * b_, a_, b_], 1)))
                    if len(done) > max_regions:
                        raise RuntimeError(f"the window holds more than max_regions={max_regions} regions: give a "
                                           "smaller window or a larger max_regions")
                    continue
                # the lines of this layer's units that change sign in the polygon, all at once
                grad = np.stack([hu[name][k].flatten().numpy()[crossing], hv[name][k].flatten().numpy()[crossing]], 1)
                base = h[name][k].flatten().numpy()[crossing] - grad @ centres[k].numpy()
                parts = [poly]
                for c0, g in zip(base, grad):
                    cut = []
                    for part in parts:
                        f = c0 + part @ g
                        f = np.where(np.abs(f) <= 1e-9 * max(float(np.abs(f).max()), 1e-300), 0.0, f)
                        cut += _split(part, f) if (f > 0).any() and (f < 0).any() else [part]
                    parts = cut
                todo += [(p, depth + 1) for p in parts if _area(p) > smallest]
    return Polygons([p for p, _, _ in done], [k for _, k, _ in done],
                    np.stack([m for _, _, m in done]) if done else np.zeros((0, 0, 3)))


__all__ = ["Plane", "Polygons", "Segment", "pattern_keys", "plane", "polygons", "segment"]
