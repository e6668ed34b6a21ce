"""invlab.regions: the affine regions along a segment and on a plane, exact.

The oracle is the activation pattern itself, read by dense sampling in float64: along a segment no
piece may hold two patterns, and every listed break must separate two; the pieces' affine logits must
equal the network's own logits everywhere; the plane's region ids must be equal exactly where the
patterns are. Networks of every nonlinearity kind invlab's models use (ReLU, leaky ReLU, the inhibitor,
max and average pooling) and of the kinds the rules add (PReLU, clamps, adaptive max pooling).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn
from relu_nets import ReLUSkip

from invlab.models.layers import LocalWinnerTakesAll
from invlab.regions import pattern_keys, plane, polygons, segment
from invlab.transposed import TransposedPass, UnsupportedLayerError


def small(kind: str) -> nn.Module:
    torch.manual_seed(0)
    body = {
        "relu, max pooling": [nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2)],
        "leaky relu, average pooling": [nn.Conv2d(1, 4, 3), nn.LeakyReLU(0.1), nn.AvgPool2d(2)],
        "inhibitor": [nn.Conv2d(1, 6, 3), LocalWinnerTakesAll(3), nn.MaxPool2d(2, 2, padding=1)],
        "prelu, clamp, adaptive max": [nn.Conv2d(1, 4, 3), nn.PReLU(4), nn.Hardtanh(-0.3, 0.4),
                                       nn.AdaptiveMaxPool2d((3, 2))],
    }[kind]
    with torch.no_grad():
        width = nn.Sequential(*body)(torch.zeros(1, 1, 10, 10)).numel()
    return nn.Sequential(*body, nn.Flatten(), nn.Linear(width, 8), nn.ReLU(), nn.Linear(8, 4)).double().eval()


KINDS = ["relu, max pooling", "leaky relu, average pooling", "inhibitor", "prelu, clamp, adaptive max"]


def dense_patterns(model, x0, x1, n=20001):
    tp = TransposedPass(model)
    t = torch.linspace(0, 1, n, dtype=torch.float64)
    with torch.no_grad():
        x = x0 + t.view(-1, 1, 1, 1) * (x1 - x0)
        logits, states = tp.forward(x)
        return t, tp.pattern(states), logits


@pytest.mark.parametrize("kind", KINDS)
def test_every_change_of_pattern_on_the_segment_is_a_listed_break(kind):
    model = small(kind)
    g = torch.Generator().manual_seed(1)
    x0, x1 = torch.randn(1, 1, 10, 10, generator=g).double(), torch.randn(1, 1, 10, 10, generator=g).double()
    seg = segment(model, x0, x1)
    assert seg.pieces > 20 and (seg.breaks[1:] > seg.breaks[:-1]).all()
    t, patterns, logits = dense_patterns(model, x0, x1)
    piece = seg.piece_at(t)
    same_piece, same_pattern = piece[1:] == piece[:-1], (patterns[1:] == patterns[:-1]).all(1)
    assert (same_pattern | ~same_piece).all(), "a piece holds two patterns"
    one_break = piece[1:] - piece[:-1] == 1  # neighbours with one listed break between them
    assert (~same_pattern[one_break]).all(), "a listed break where the pattern does not change"
    assert (seg.units_changed > 0).all()
    # each piece's affine logits are the network's
    assert torch.allclose(seg.logits_at(t), logits, rtol=0, atol=1e-9 * logits.abs().max())
    # the decision changes are where the predicted class changes
    predicted = logits.argmax(1)
    flips = (predicted[1:] != predicted[:-1]).nonzero().flatten()
    assert len(seg.decisions) >= len(flips)
    for i in flips.tolist():
        assert any(t[i] <= d[0] <= t[i + 1] for d in seg.decisions)
    assert seg.start_class == predicted[0] and seg.end_class == predicted[-1]


def test_a_batch_of_segments_and_the_limit_on_pieces():
    model = small("relu, max pooling")
    x0, x1 = torch.randn(3, 1, 10, 10).double(), torch.randn(3, 1, 10, 10).double()
    segs = segment(model, x0, x1)
    assert len(segs) == 3 and segs[1].pieces == segment(model, x0[1:2], x1[1:2]).pieces
    with pytest.raises(RuntimeError, match="more than max_pieces=3 pieces"):
        segment(model, x0[:1], x1[:1], max_pieces=3)
    with pytest.raises(UnsupportedLayerError, match="SiLU"):
        segment(nn.Sequential(nn.Flatten(), nn.Linear(100, 4), nn.SiLU()), x0[:1], x1[:1])


def test_a_relu_networks_sweep_gives_the_walks_pieces():
    """A ReLU network of two levels is swept (one forward per break), any other walked: on a network with a
    skip connection, a batch of segments, the two ways give the same breaks, the same count of units changing
    at each, and the same logits along the segment; the limit on pieces holds for the sweep too."""
    from invlab.regions import _float64_pass, _sweepable, _walk

    torch.manual_seed(5)
    model = ReLUSkip(side=10, classes=4).double().eval()
    x0, x1 = torch.randn(3, 1, 10, 10).double(), torch.randn(3, 1, 10, 10).double()
    tp = _float64_pass(model)
    assert _sweepable(tp) is not None and _sweepable(_float64_pass(small("relu, max pooling"))) is None
    swept, walked = segment(model, x0, x1), _walk(tp, x0, x1 - x0, 200_000, False)
    t = torch.linspace(0, 1, 2001, dtype=torch.float64)
    for s, w in zip(swept, walked):
        assert s.pieces > 20 and len(s.breaks) == len(w.breaks)
        assert torch.allclose(s.breaks, w.breaks, rtol=0, atol=1e-12)
        assert torch.equal(s.units_changed, w.units_changed)
        assert torch.allclose(s.logits_at(t), w.logits_at(t), rtol=0, atol=1e-9 * w.logits_at(t).abs().max())
        assert [d[1:] for d in s.decisions] == [d[1:] for d in w.decisions]
        assert all(abs(a[0] - b[0]) < 1e-9 for a, b in zip(s.decisions, w.decisions))
        assert (s.start_class, s.end_class) == (w.start_class, w.end_class)
    with pytest.raises(RuntimeError, match="more than max_pieces=3 pieces"):
        segment(model, x0[:1], x1[:1], max_pieces=3)


def test_a_segment_from_a_point_where_every_unit_is_at_a_threshold():
    """From 0 through a network without biases, every ReLU's input is 0 and every max-pooling window a tie:
    the first piece is the one the segment enters, not the forward's pick at t = 0 (found on the lesson's
    max-pooling network, whose first piece was 7e-5 off)."""
    torch.manual_seed(3)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, bias=False), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 4, 3, bias=False),
                          nn.ReLU(), nn.Flatten(), nn.Linear(16, 3)).double().eval()
    x0, x1 = torch.zeros(1, 1, 10, 10, dtype=torch.float64), torch.randn(1, 1, 10, 10, dtype=torch.float64)
    seg = segment(model, x0, x1)
    t = torch.linspace(0, 1, 5001, dtype=torch.float64)
    with torch.no_grad():
        logits = model(x0 + t.view(-1, 1, 1, 1) * (x1 - x0))
    assert torch.allclose(seg.logits_at(t), logits, rtol=0, atol=1e-9 * logits.abs().max())


@pytest.mark.parametrize("kind", ["relu, max pooling", "inhibitor"])
def test_the_planes_regions_are_equal_exactly_where_the_patterns_are(kind):
    model = small(kind)
    g = torch.Generator().manual_seed(2)
    x0, x1, x2 = (torch.randn(1, 1, 10, 10, generator=g).double() for _ in range(3))
    p = plane(model, x0, x1, x2, resolution=24, window=((0.3, 0.3), 0.05))
    assert p.region_ids.shape == (24, 24) and 1 < p.count < 24 * 24
    tp = TransposedPass(model)
    with torch.no_grad():
        xs = torch.cat([p.point(i, j) for i in range(24) for j in range(24)])
        logits, states = tp.forward(xs)
        patterns = tp.pattern(states)
    ids = p.region_ids.flatten()
    same_id = ids[:, None] == ids[None, :]
    same_pattern = (patterns[:, None, :] == patterns[None, :, :]).all(-1)
    assert torch.equal(same_id, same_pattern)
    assert torch.equal(p.prediction.flatten(), logits.argmax(1))
    assert p.region_boundaries.any() and p.density(8).shape == (3, 3)
    for third in (x0, x1, x0 + 2 * (x1 - x0)):  # no plane through them: said, not a map of one line
        with pytest.raises(ValueError, match="lie on one line"):
            plane(model, x0, x1, third, resolution=4)


def test_the_segments_breaks_are_regioncams_on_fully_connected_networks():
    """An outside reference: regioncam (Rust, exact 1-D partitions of fully connected ReLU networks) on the
    line through two points. Its vertices are line coordinates u = (t - 1/2) |x1 - x0| over a part of the
    segment; there, its breaks and invlab's are the same, one for one, to its float32."""
    regioncam = pytest.importorskip("regioncam")
    torch.manual_seed(4)
    for widths in [(12, 48, 3), (12, 64, 32, 10), (12, 16, 16, 16, 16, 4)]:
        layers = []
        for a, b in zip(widths[:-1], widths[1:]):
            layers += [nn.Linear(a, b), nn.ReLU()]
        net = nn.Sequential(*layers[:-1]).eval()
        x0, x1 = torch.randn(1, widths[0]), torch.randn(1, widths[0])
        rc = regioncam.Regioncam1D.through_points(torch.cat([x0, x1]).numpy())
        rc.add(regioncam.nn.convert(net))
        u = torch.as_tensor(rc.inputs, dtype=torch.float64).flatten()
        theirs = 0.5 + u[1:-1] / (x1 - x0).double().norm()  # the vertices inside its range, as t
        lo, hi = 0.5 + u[0] / (x1 - x0).double().norm(), 0.5 + u[-1] / (x1 - x0).double().norm()
        seg = segment(net, x0, x1)
        ours = seg.breaks[(seg.breaks > lo + 1e-6) & (seg.breaks < hi - 1e-6)]
        assert len(ours) > 5 and len(ours) == len(theirs), (widths, len(ours), len(theirs))
        assert torch.allclose(ours, theirs, rtol=0, atol=1e-5)


def _relu_mlp(seed: int, widths: tuple) -> nn.Module:
    torch.manual_seed(seed)
    layers = []
    for a, b in zip(widths[:-1], widths[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers[:-1]).eval()


def test_the_polygons_are_regioncams_faces_on_fully_connected_networks():
    """An outside reference: regioncam's exact 2-D partition (float32) of the square window it draws around
    three points. The same window in invlab's plane coordinates (x0 its plane's origin, x1 - x0 and x2 - x0
    its two axes) is cut into as many polygons, of the same areas, one for one (sorted), to its float32."""
    regioncam = pytest.importorskip("regioncam")
    for seed, widths in [(0, (6, 16, 16, 3)), (1, (12, 48, 3)), (2, (12, 32, 32, 10)), (3, (8, 16, 16, 16, 4))]:
        net = _relu_mlp(seed, widths)
        rc = regioncam.Regioncam.through_points(torch.randn(3, widths[0]).numpy())
        rc.add(regioncam.nn.convert(net))
        weight = torch.tensor(np.asarray(rc.plane.weight), dtype=torch.float64)
        origin = torch.tensor(np.asarray(rc.plane.bias), dtype=torch.float64)[None]
        half = float(np.abs(np.asarray(rc.vertex_inputs)).max())  # its window: [-half, half]^2
        ours = polygons(net, origin, origin + weight[0], origin + weight[1], window=((0.0, 0.0), half))
        theirs = np.sort([f.area for f in rc.faces])
        assert ours.count == rc.num_faces > 100, (widths, ours.count, rc.num_faces)
        assert np.allclose(np.sort(ours.areas), theirs, rtol=0, atol=1e-6 * (2 * half) ** 2), widths


def test_the_polygons_hold_one_pattern_each_and_the_logits_they_give():
    """invlab's own oracle on a convolutional ReLU network: 4000 random points of the window, each in one
    polygon whose pattern key is the point's (float64 forward) and whose affine logits are the network's
    there; no two polygons share a pattern (a region is convex: the line meets it once, the plane in one
    polygon); the areas tile the window."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(48, 6), nn.ReLU(),
                        nn.Linear(6, 3)).double().eval()
    x0, x1, x2 = (torch.randn(1, 1, 6, 6, dtype=torch.float64) for _ in range(3))
    ours = polygons(net, x0, x1, x2, window=((0.2, 0.3), 0.5))
    assert 50 < ours.count and len(set(ours.keys)) == ours.count
    assert abs(ours.areas.sum() - 1.0) < 1e-12
    ab = np.random.default_rng(0).uniform([-0.3, -0.2], [0.7, 0.8], (4000, 2))
    where = ours.locate(ab)
    assert (where >= 0).all()
    tp = TransposedPass(net)
    with torch.no_grad():
        c = torch.from_numpy(ab)
        logits, states = tp.forward(x0 + c[:, :1, None, None] * (x1 - x0) + c[:, 1:, None, None] * (x2 - x0))
    keys = pattern_keys(tp, states)
    on_edge = 0
    for k, r in enumerate(where):
        if keys[k] != ours.keys[r]:
            on_edge += 1  # a point within rounding of an edge: let its neighbour hold it
            continue
        want = ours.logits[r, :, 0] + ab[k, 0] * ours.logits[r, :, 1] + ab[k, 1] * ours.logits[r, :, 2]
        assert np.allclose(want, logits[k].numpy(), rtol=0, atol=1e-9)
    assert on_edge == 0


def test_polygons_refuse_what_they_cannot_cut():
    x0, x1, x2 = (torch.randn(1, 1, 10, 10, dtype=torch.float64) for _ in range(3))
    with pytest.raises(ValueError, match="ReLU networks only.*plane()"):
        polygons(small("relu, max pooling"), x0, x1, x2)
    with pytest.raises(ValueError, match="lie on one line"):
        polygons(_relu_mlp(0, (100, 8, 2)), x0.flatten(1), x1.flatten(1), x1.flatten(1))
    with pytest.raises(RuntimeError, match="max_regions=5"):
        polygons(_relu_mlp(0, (100, 32, 2)), x0.flatten(1), x1.flatten(1), x2.flatten(1), max_regions=5)


def test_the_pictures_of_the_partition_draw_what_was_found():
    """segment_figure: a curve per class through every break and a dashed line per decision change;
    plane_figure: three panels; polygons_figure: every polygon once, filled with its centre's class."""
    from invlab.viz.partition import plane_figure, polygons_figure, segment_figure

    net = _relu_mlp(0, (12, 32, 32, 3)).double()
    x0, x1, x2 = (torch.randn(1, 12, dtype=torch.float64) for _ in range(3))
    seg = segment(net, x0, x1)
    fig = segment_figure(seg)
    assert [len(tr.x) for tr in fig.data[:3]] == [seg.pieces + 1] * 3 and len(fig.layout.shapes) == len(seg.decisions)
    assert len(plane_figure(plane(net, x0, x1, x2, resolution=16)).data) == 5
    exact = polygons(net, x0, x1, x2)
    fig = polygons_figure(exact, marks={"x0": (0, 0)})
    filled = [tr for tr in fig.data if tr.fill == "toself"]
    assert sum(list(tr.x).count(None) for tr in filled) == exact.count
    assert sum(int(tr.name.split("(")[1].rstrip(")")) for tr in filled) == exact.count
