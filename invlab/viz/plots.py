"""Figures: data in, figure out. Plotly for curves, torchvision grids for images."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import torch
import torch.nn as nn
from plotly.subplots import make_subplots

from invlab.inverse import reconstruct
from invlab.io import atomic_write, save_figure_html  # noqa: F401 (save_figure_html: its old home)

#: The loss terms drawn in learning curves (the imbalance term is logged but not drawn).
CURVE_KEYS = ("total", "ce", "reconstruction", "entropy")


def make_grid(images: torch.Tensor, nrow: int = 8, padding: int = 2, normalize: bool = False,
              pad_value: float = 0.0) -> torch.Tensor:
    """(B, C, H, W) images tiled ``nrow`` to a row, ``padding`` pixels of ``pad_value`` around each: (3, H', W')
    (one channel is repeated three times; a single image comes back alone, unpadded). ``normalize``: each image
    min-max scaled to [0, 1] on its own (a constant image becomes 0). What torchvision.utils.make_grid does with
    ``scale_each=True``, here so that drawing a grid does not import torchvision (whose import loads
    torch._dynamo: seconds in every new process, a training run's included)."""
    if images.shape[1] == 1:
        images = images.expand(-1, 3, -1, -1)
    if normalize:
        flat = images.flatten(1)
        lo, hi = flat.amin(1).view(-1, 1, 1, 1), flat.amax(1).view(-1, 1, 1, 1)
        images = (images - lo) / (hi - lo).clamp_min(1e-5)
    if len(images) == 1:
        return images[0].clone()
    b, c, h, w = images.shape
    rows, cols = math.ceil(b / nrow), min(nrow, b)
    grid = images.new_full((c, rows * (h + padding) + padding, cols * (w + padding) + padding), pad_value)
    for k in range(b):
        y, x = (k // nrow) * (h + padding) + padding, (k % nrow) * (w + padding) + padding
        grid[:, y:y + h, x:x + w] = images[k]
    return grid


def reconstruction_grid(x: torch.Tensor, rec: torch.Tensor, nrow: int = 8) -> torch.Tensor:
    """Image grid: originals on the first row, their reconstructions below, in pairs of rows.

    x, rec: (B, C, H, W). The reconstruction's scale is arbitrary for an untrained net, so
    every image is min-max scaled on its own. Returns a (C', H', W') float image in [0, 1].
    """
    if x.shape != rec.shape or x.ndim != 4:
        raise ValueError(f"need two (B, C, H, W) tensors of one shape, got {tuple(x.shape)} and {tuple(rec.shape)}")
    rows = []
    for i in range(0, len(x), nrow):
        rows += [x[i:i + nrow], rec[i:i + nrow]]
        if len(x[i:i + nrow]) < nrow:  # pad the last pair of rows so that pairs stay aligned
            pad = x.new_zeros(nrow - len(x[i:i + nrow]), *x.shape[1:])
            rows[-2], rows[-1] = torch.cat([rows[-2], pad]), torch.cat([rows[-1], pad])
    return make_grid(torch.cat(rows).detach().float().cpu(), nrow=nrow, normalize=True, padding=2, pad_value=1.0)


def save_reconstruction_figure(model: nn.Module, x: torch.Tensor, path: str | os.PathLike,
                               nrow: int = 8, scale: int = 3, title: str | None = None) -> Path:
    """Write a labelled PNG of ``x`` and its reconstruction (df/dx)^T f(x) by ``model`` (eval mode).

    The grid of :func:`reconstruction_grid`, each pixel drawn ``scale`` x ``scale`` (nearest
    neighbour, so the pixels stay pixels), every row named on the left ("input",
    "reconstruction (df/dx)^T f(x)") and ``title`` above (default: what the rows are)."""
    from PIL import Image, ImageDraw, ImageFont

    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    rec = reconstruct(model, x.to(device), create_graph=False).cpu()
    model.train(was_training)
    grid = reconstruction_grid(x, rec, nrow)  # (C, H', W') in [0, 1], padding 2
    big = torch.nn.functional.interpolate(grid[None], scale_factor=scale, mode="nearest")[0]
    pixels = (big.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
    image = Image.fromarray(pixels[..., 0] if pixels.shape[2] == 1 else pixels).convert("RGB")
    font = ImageFont.load_default(size=6 * scale)
    labels = ("input", "reconstruction (df/dx)^T f(x)")
    margin = max(int(font.getlength(t)) for t in labels) + 4 * scale
    top = 12 * scale
    canvas = Image.new("RGB", (image.width + margin, image.height + top), "white")
    canvas.paste(image, (margin, top))
    draw = ImageDraw.Draw(canvas)
    draw.text((margin, 2 * scale), title or "each test image above its reconstruction (every image scaled on "
                                            "its own)", fill="black", font=font)
    row = x.shape[-2] + 2  # one row of the grid, padding included
    for k in range(grid.shape[1] // row):
        y = top + (2 + k * row + x.shape[-2] // 2) * scale
        draw.text((margin - 2 * scale, y), labels[k % 2], fill="black", font=font, anchor="rm")
    return atomic_write(path, lambda p: canvas.save(p, format="png"))


def learning_curves(history: list[dict], title: str = "", fig: go.Figure | None = None) -> go.Figure:
    """Loss components (left) and train (when recorded) / validation / test accuracy (right).

    ``history`` is :attr:`TrainResult.history`. With ``fig`` (e.g. a FigureWidget made by
    this function), its traces are updated in place instead of building a new figure.
    """
    steps = [r["step"] for r in history]
    series = [(k, 1) for k in CURVE_KEYS] + [("train_accuracy", 2), ("val_accuracy", 2), ("test_accuracy", 2)]
    if fig is None:
        fig = make_subplots(rows=1, cols=2, subplot_titles=("loss components", "accuracy (%)"))
        for key, col in series:
            fig.add_trace(go.Scatter(x=[], y=[], mode="lines+markers", name=key), row=1, col=col)
        fig.update_xaxes(title_text="step")
        # a label at every power of ten only: plotly's default also labels the digits between
        # them ("2", "5", "9 8 7 6 ...") and crams them when a run spans less than a decade
        fig.update_yaxes(type="log", dtick=1, tickformat="~g", row=1, col=1)
        fig.update_layout(title=title, height=380, template="plotly_white")
    for trace, (key, _) in zip(fig.data, series):
        trace.x = [s for s, r in zip(steps, history) if key in r]
        trace.y = [r[key] for r in history if key in r]
    return fig


def image_rows(rows: dict[str, torch.Tensor], title: str = "", signed: bool = False,
               fig: go.Figure | None = None, scale: str = "shared",
               captions: dict[str, list[str]] | None = None) -> go.Figure:
    """One labelled row of images per entry: ``rows[label]`` is (B, C, H, W), C = 1 or 3.

    ``signed=False``: each image min-max scaled to 8-bit levels (0-255), grey or colour
    (pictures, reconstructions). ``signed=True``: a symmetric scale centred on 0 (templates, whose
    sign matters): red-blue for one channel; for colour images, grey is 0 and each
    channel's sign shows as a shift of hue. ``scale="shared"`` gives every signed row one
    scale, ``"row"`` each row its own (rows of very different magnitude, such as templates
    and their contributions). ``captions[label]`` names the images of a row (under each
    thumbnail). With ``fig`` the traces are updated in place.
    """
    if scale not in ("shared", "row"):
        raise ValueError(f"scale must be 'shared' or 'row', got {scale!r}")
    labels = list(rows)
    grids = []
    for label in labels:
        imgs = rows[label].detach().float().cpu()
        if imgs.ndim != 4 or imgs.shape[1] not in (1, 3):
            raise ValueError(f"row {label!r}: expected (B, 1, H, W) or (B, 3, H, W) images, got {tuple(imgs.shape)}")
        if signed:
            grid = make_grid(imgs, nrow=len(imgs), padding=1, pad_value=0.0)
        else:
            grid = make_grid(imgs, nrow=len(imgs), padding=1, normalize=True, pad_value=1.0)
        grids.append(grid[:1].numpy() if imgs.shape[1] == 1 else grid.numpy())  # (1 or 3, H', W')
    lims = [float(abs(g).max()) or 1.0 for g in grids]
    if scale == "shared":
        lims = [max(lims)] * len(grids)

    def trace(i: int, grid: np.ndarray):
        if grid.shape[0] == 3:  # colour: an RGB picture, signed values around mid-grey
            rgb = 0.5 + grid / (2 * lims[i]) if signed else grid
            return go.Image(z=(rgb.clip(0, 1).transpose(1, 2, 0) * 255).round().astype(np.uint8))
        if signed:
            bar = dict(len=0.9 / len(grids), y=1 - (i + 0.5) / len(grids), thickness=12)
            return go.Heatmap(z=grid[0], colorscale="RdBu_r", zmid=0, zmin=-lims[i], zmax=lims[i],
                              showscale=scale == "row" or i == 0, colorbar=bar)
        # pictures as 8-bit grey levels: what a screen shows, and a quarter of float32's bytes in the HTML
        return go.Heatmap(z=(grid[0] * 255).round().astype(np.uint8), colorscale="gray", zmin=0, zmax=255,
                          showscale=False)

    if fig is None:
        per_row = 520 * grids[0].shape[1] / max(grids[0].shape[2], 1) + 40
        height = int(min(260, max(90, per_row)) * len(labels) + 60 + 44 * bool(captions))
        # the same gap in pixels between rows whatever their number (plotly's spacing is a fraction)
        # with captions, a row's class names (about 20 px under it) and the next row's title
        # (about 20 px over it) both sit in the gap: room for both, apart
        gap = (64 if captions else 28) / height
        fig = make_subplots(rows=len(labels), cols=1, subplot_titles=labels,
                            vertical_spacing=min(gap, 0.5 / max(len(labels) - 1, 1)))
        for i, grid in enumerate(grids):
            fig.add_trace(trace(i, grid), row=i + 1, col=1)
            # pictures, not charts: no grid lines or zero lines drawn over the digits
            fig.update_yaxes(autorange="reversed", scaleanchor=f"x{i + 1 if i else ''}", showticklabels=False,
                             showgrid=False, zeroline=False, row=i + 1, col=1)
            names = (captions or {}).get(labels[i])
            b, w = len(rows[labels[i]]), rows[labels[i]].shape[-1]
            fig.update_xaxes(showgrid=False, zeroline=False, row=i + 1, col=1, showticklabels=bool(names),
                             **(dict(tickvals=[1 + k * (w + 1) + (w - 1) / 2 for k in range(b)],
                                     ticktext=list(names), tickangle=0, ticks="") if names else {}))
        fig.update_layout(title=title, height=height, margin=dict(l=10, r=10, t=60, b=10), template="plotly_white")
    else:
        for i, (tr, grid) in enumerate(zip(fig.data, grids)):
            new = trace(i, grid)
            tr.z = new.z
            if signed and grid.shape[0] == 1:
                tr.zmin, tr.zmax = new.zmin, new.zmax
    return fig


def region_figure(xs: torch.Tensor, ys: torch.Tensor, ids: torch.Tensor, title: str = "") -> go.Figure:
    """Regions of a 2-D input space: ``ids`` (len(ys), len(xs)) region labels on the grid."""
    n = int(ids.max()) + 1
    shuffled = torch.randperm(n, generator=torch.Generator().manual_seed(0))[ids]  # neighbours differ
    fig = go.Figure(go.Heatmap(x=xs.tolist(), y=ys.tolist(), z=shuffled.numpy(), colorscale="Turbo",
                               showscale=False, hovertemplate="x1=%{x:.2f}<br>x2=%{y:.2f}<extra></extra>"))
    fig.update_layout(title=title or f"{n} affine regions", height=420, width=460,
                      xaxis_title="x1", yaxis_title="x2", template="plotly_white")
    fig.update_yaxes(scaleanchor="x")
    return fig


def signals_figure(panels: dict[str, dict[str, torch.Tensor]], title: str = "", cols: int = 2) -> go.Figure:
    """Small multiples of 1-D signals: ``panels[panel_title][curve_name]`` is a (D,) tensor."""
    names = list(panels)
    rows = (len(names) + cols - 1) // cols
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=names)
    palette = ["#444444", "#1f77b4", "#d62728", "#2ca02c"]
    for k, name in enumerate(names):
        for j, (curve, values) in enumerate(panels[name].items()):
            fig.add_trace(go.Scatter(y=values.detach().cpu().tolist(), name=curve, legendgroup=curve,
                                     showlegend=k == 0, mode="lines",
                                     line=dict(color=palette[j % len(palette)], dash="dot" if j == 2 else None)),
                          row=k // cols + 1, col=k % cols + 1)
    fig.update_layout(title=title, height=230 * rows + 80, template="plotly_white")
    return fig


def bar_chart(values: dict[str, float], title: str = "", yaxis: str = "") -> go.Figure:
    """Bars, one per entry (e.g. reconstruction error per model)."""
    fig = go.Figure(go.Bar(x=list(values), y=list(values.values()),
                           text=[f"{v:.3g}" for v in values.values()], textposition="outside"))
    fig.update_layout(title=title, yaxis_title=yaxis, height=380, template="plotly_white")
    return fig


def waveform_rows(x: torch.Tensor, rec: torch.Tensor, sample_rate: int = 44_100, title: str = "",
                  fig: go.Figure | None = None, max_points: int = 2000) -> go.Figure:
    """Segments (B, 1, T) and their reconstructions, one row per segment, each curve scaled
    to unit peak (the inverse's scale is arbitrary). Long segments are decimated for display."""
    if x.shape != rec.shape or x.ndim != 3:
        raise ValueError(f"need two (B, 1, T) tensors of one shape, got {tuple(x.shape)} and {tuple(rec.shape)}")
    step = max(1, x.shape[-1] // max_points)
    t = (torch.arange(0, x.shape[-1], step) / sample_rate).tolist()

    def unit(v):
        v = v[0, ::step].detach().float().cpu()
        return (v / v.abs().max().clamp(min=1e-12)).tolist()

    if fig is None:
        fig = make_subplots(rows=len(x), cols=1, shared_xaxes=True, vertical_spacing=0.02)
        for i in range(len(x)):
            fig.add_trace(go.Scatter(x=t, y=[], name="segment", line=dict(color="#444", width=1),
                                     showlegend=i == 0, legendgroup="x"), row=i + 1, col=1)
            fig.add_trace(go.Scatter(x=t, y=[], name="reconstruction (df/dx)ᵀf(x)", line=dict(color="#d62728", width=1),
                                     opacity=0.8, showlegend=i == 0, legendgroup="r"), row=i + 1, col=1)
        fig.update_xaxes(title_text="time (s)", row=len(x), col=1)
        fig.update_layout(title=title, height=110 * len(x) + 120, template="plotly_white")
    for i in range(len(x)):
        fig.data[2 * i].y, fig.data[2 * i + 1].y = unit(x[i]), unit(rec[i])
    return fig


def audio_views(segments: torch.Tensor, labels: list[str], sample_rate: int = 44_100, n_fft: int = 1024) -> go.Figure:
    """One row per segment: waveform (left) and log-power spectrogram (right, torchaudio).

    segments: (S, 1, T); labels: S row titles (e.g. species names).
    """
    import torchaudio.transforms as AT

    spec = AT.AmplitudeToDB(top_db=80)(AT.Spectrogram(n_fft=n_fft, hop_length=n_fft // 4)(segments[:, 0].float().cpu()))
    freqs = (torch.arange(spec.shape[1]) * sample_rate / n_fft / 1000).tolist()  # kHz
    times = (torch.arange(spec.shape[2]) * (n_fft // 4) / sample_rate).tolist()
    step = max(1, segments.shape[-1] // 2000)
    t = (torch.arange(0, segments.shape[-1], step) / sample_rate).tolist()
    titles = [x for lab in labels for x in (f"{lab}: waveform", "spectrogram (dB)")]
    fig = make_subplots(rows=len(labels), cols=2, subplot_titles=titles, horizontal_spacing=0.06,
                        vertical_spacing=0.4 / max(len(labels), 1))
    for i in range(len(labels)):
        fig.add_trace(go.Scatter(x=t, y=segments[i, 0, ::step].tolist(), line=dict(width=1, color="#444"),
                                 showlegend=False), row=i + 1, col=1)
        fig.add_trace(go.Heatmap(x=times, y=freqs, z=spec[i].numpy(), colorscale="Viridis", showscale=False),
                      row=i + 1, col=2)
        fig.update_yaxes(title_text="kHz", row=i + 1, col=2)
    fig.update_layout(height=170 * len(labels) + 80, template="plotly_white", margin=dict(t=60))
    return fig


def layer_rows(recs: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Rows for :func:`image_rows` from :func:`~invlab.inverse.layer_reconstructions`'s output:
    for every layer, its output z and its reconstruction (df/dz)^T f, each averaged over
    channels: (B, C, h, w) -> (B, 1, h, w). Layers without a spatial map are skipped."""
    rows = {}
    for name, (rec, z) in recs.items():
        if z.ndim != 4:
            continue
        rows[f"{name}: z (mean over {z.shape[1]} channels)"] = z.mean(1, keepdim=True)
        rows[f"{name}: (df/dz)ᵀ f"] = rec.mean(1, keepdim=True)
    return rows


def cluster_rows(x: torch.Tensor, clusters: torch.Tensor, per_cluster: int = 10) -> dict[str, torch.Tensor]:
    """Rows for :func:`image_rows`: the first ``per_cluster`` images (B, 1, H, W) of every
    non-empty cluster, labelled with the cluster id and size."""
    rows = {}
    for k in clusters.unique().tolist():
        members = (clusters == k).nonzero().flatten()
        rows[f"cluster {k} ({len(members)} images)"] = x[members[:per_cluster]]
    return rows


def weight_trajectories(histories: dict[str, list[dict]], keys=("alpha", "beta"), title: str = "") -> go.Figure:
    """Loss weights (history records' ``keys``) against the step, one line per run and weight."""
    fig = go.Figure()
    for run, history in histories.items():
        for key in keys:
            fig.add_trace(go.Scatter(x=[h["step"] for h in history], y=[h[key] for h in history],
                                     mode="lines+markers", name=f"{key}, {run}"))
    fig.update_layout(title=title, xaxis_title="step", yaxis_title="weight", yaxis_range=[0, 1],
                      template="plotly_white", height=380)
    return fig
