"""Pictures of the partition (:mod:`invlab.regions`): the logits along a segment with its breaks and
decision changes, a plane's class regions, region density and regions, and a ReLU network's exact polygons.
Pure: data in, figure out."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from invlab.regions import Plane, Polygons, Segment


def segment_figure(seg: Segment, class_names: list[str] | None = None, title: str = "",
                   fig: go.Figure | None = None) -> go.Figure:
    """Each class's logit along the segment (exact: piecewise linear, drawn through every break), a tick
    under the curves at each break, and a dashed line where the predicted class changes."""
    names = class_names or [str(c) for c in range(seg.logits.shape[-1])]
    t = torch.cat([torch.zeros(1, dtype=torch.float64), seg.breaks, torch.ones(1, dtype=torch.float64)])
    logits = seg.logits_at(t)  # (n + 2, C)
    low = float(logits.min())
    traces = [go.Scatter(x=t.tolist(), y=logits[:, c].tolist(), mode="lines", name=names[c],
                         line=dict(width=2.5 if c in (seg.start_class, seg.end_class) else 1))
              for c in range(logits.shape[1])]
    traces.append(go.Scatter(x=seg.breaks.tolist(), y=[low] * len(seg.breaks), mode="markers", name="breaks",
                             marker=dict(symbol="line-ns-open", size=8, color="rgba(0,0,0,0.35)"),
                             hovertemplate="break at t=%{x:.6f}<extra></extra>"))
    title = title or (f"{seg.pieces:,} affine pieces from {names[seg.start_class]} to {names[seg.end_class]}; "
                      f"{len(seg.decisions)} decision change(s)")
    if fig is None:
        fig = go.Figure(traces)
    else:
        with fig.batch_update():
            fig.data = []
            fig.add_traces(traces)
    fig.layout.shapes = ()
    for when, _, _ in seg.decisions:
        fig.add_vline(x=when, line=dict(dash="dash", color="black", width=1))
    fig.update_layout(title=title, xaxis_title="t along the segment x0 + t (x1 − x0)", yaxis_title="logit f_c(x(t))",
                      height=420, template="plotly_white", legend=dict(orientation="h", y=-0.2))
    return fig


def _shuffled(ids: torch.Tensor) -> torch.Tensor:
    """Region ids renumbered at random, so that neighbouring regions get distant colours."""
    n = int(ids.max()) + 1
    return torch.randperm(n, generator=torch.Generator().manual_seed(0))[ids]


def plane_figure(p: Plane, class_names: list[str] | None = None, title: str = "", block: int = 8) -> go.Figure:
    """Three views of a plane: the predicted class with the class boundaries, the density of regions
    (distinct regions per ``block`` × ``block`` cells), and the regions themselves (each its colour) with
    the class boundaries drawn over them. At the scale of whole images use the first two; in a small
    window the third shows the partition."""
    names = class_names or [str(c) for c in range(int(p.prediction.max()) + 1)]
    a, b = p.a.tolist(), p.b.tolist()
    fig = make_subplots(rows=1, cols=3, subplot_titles=["predicted class", f"regions per {block}×{block} cells",
                                                        f"{p.count:,} regions, class boundaries in black"],
                        horizontal_spacing=0.06)
    text = [[names[int(c)] for c in row] for row in p.prediction]
    fig.add_trace(go.Heatmap(x=a, y=b, z=p.prediction.tolist(), text=text, colorscale="Turbo", showscale=False,
                             hovertemplate="a=%{x:.4f} b=%{y:.4f}: %{text}<extra></extra>"), row=1, col=1)
    density = p.density(block).float()
    fig.add_trace(go.Heatmap(x=a[block // 2::block][:density.shape[1]], y=b[block // 2::block][:density.shape[0]],
                             z=density.tolist(), colorscale="Viridis", colorbar=dict(x=0.64, len=0.9, thickness=10),
                             hovertemplate="%{z} regions<extra></extra>"), row=1, col=2)
    fig.add_trace(go.Heatmap(x=a, y=b, z=_shuffled(p.region_ids).tolist(), colorscale="Rainbow", showscale=False,
                             hoverinfo="skip"), row=1, col=3)
    edges = p.class_boundaries.float()
    fig.add_trace(go.Heatmap(x=a, y=b, z=torch.where(edges > 0, 1.0, float("nan")).tolist(),
                             colorscale=[[0, "black"], [1, "black"]], showscale=False, hoverinfo="skip"), row=1, col=3)
    fig.add_trace(go.Heatmap(x=a, y=b, z=torch.where(edges > 0, 1.0, float("nan")).tolist(),
                             colorscale=[[0, "black"], [1, "black"]], showscale=False, hoverinfo="skip"), row=1, col=1)
    for col in (1, 2, 3):
        fig.update_xaxes(title_text="a", row=1, col=col)
        fig.update_yaxes(scaleanchor=f"x{'' if col == 1 else col}", row=1, col=col)
    fig.update_yaxes(title_text="b", row=1, col=1)
    fig.update_layout(title=title or "the plane x0 + a (x1 − x0) + b (x2 − x0)", height=400,
                      template="plotly_white")
    return fig


__all__ = ["plane_figure", "segment_figure"]


COLOURS = ["#636efa", "#EF553B", "#00cc96", "#ab63fa", "#FFA15A", "#19d3f3", "#FF6692", "#B6E880", "#FF97FF",
           "#FECB52"]  # plotly's colorway


def polygons_figure(p: Polygons, class_names: list[str] | None = None, title: str = "",
                    marks: dict[str, tuple[float, float]] | None = None) -> go.Figure:
    """The exact regions (:func:`~invlab.regions.polygons`): each polygon filled with the colour of the class
    its affine logits predict at its centre, its edges in white; ``marks`` names points of the plane
    (e.g. {"x0": (0, 0)})."""
    names = class_names or [str(c) for c in range(p.logits.shape[1])]
    by_class: dict[int, list] = {}
    for v, m in zip(p.vertices, p.logits):
        a, b = v.mean(0)
        by_class.setdefault(int(np.argmax(m[:, 0] + a * m[:, 1] + b * m[:, 2])), []).append(v)
    traces = []
    for c, polys in sorted(by_class.items()):
        xs, ys = [], []
        for v in polys:
            xs += [*v[:, 0], v[0, 0], None]
            ys += [*v[:, 1], v[0, 1], None]
        traces.append(go.Scatter(x=xs, y=ys, mode="lines", fill="toself", name=f"{names[c]} ({len(polys)})",
                                 fillcolor=COLOURS[c % len(COLOURS)], line=dict(color="white", width=0.6),
                                 hoverinfo="name"))
    for name, (a, b) in (marks or {}).items():
        traces.append(go.Scatter(x=[a], y=[b], mode="markers+text", text=[name], textposition="top right",
                                 marker=dict(color="black", size=7), showlegend=False, hoverinfo="skip"))
    fig = go.Figure(traces)
    fig.update_layout(title=title or f"{p.count:,} regions, each coloured by the class at its centre",
                      xaxis_title="a", yaxis_title="b", yaxis_scaleanchor="x", height=460, template="plotly_white")
    return fig
