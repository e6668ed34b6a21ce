"""Figures: data in, figure out. Plotly for curves, torchvision grids for images."""

from __future__ import annotations

import os
from pathlib import Path

import plotly.graph_objects as go
import torch
import torch.nn as nn
from plotly.subplots import make_subplots
from torchvision.utils import make_grid, save_image

from .inverse import reconstruct
from .io import atomic_write

LOSS_KEYS = ("total", "ce", "reconstruction", "entropy")


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
    return make_grid(torch.cat(rows).detach().float().cpu(), nrow=nrow, normalize=True,
                     scale_each=True, padding=2, pad_value=1.0)


def save_reconstruction_figure(model: nn.Module, x: torch.Tensor, path: str | os.PathLike,
                               nrow: int = 8) -> Path:
    """Write a PNG of ``x`` and its reconstruction (df/dx)^T f(x) by ``model`` (eval mode)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    rec = reconstruct(model, x.to(device), create_graph=False).cpu()
    model.train(was_training)
    grid = reconstruction_grid(x, rec, nrow)
    return atomic_write(path, lambda p: save_image(grid, p, format="png"))


def learning_curves(history: list[dict], title: str = "", fig: go.Figure | None = None) -> go.Figure:
    """Loss components (left) and validation / test accuracy (right) against the step.

    ``history`` is :attr:`TrainResult.history`. With ``fig`` (e.g. a FigureWidget made by
    this function), its traces are updated in place instead of building a new figure.
    """
    steps = [r["step"] for r in history]
    series = [(k, 1) for k in LOSS_KEYS] + [("val_accuracy", 2), ("test_accuracy", 2)]
    if fig is None:
        fig = make_subplots(rows=1, cols=2, subplot_titles=("loss components", "accuracy (%)"))
        for key, col in series:
            fig.add_trace(go.Scatter(x=[], y=[], mode="lines+markers", name=key), row=1, col=col)
        fig.update_xaxes(title_text="step")
        fig.update_yaxes(type="log", row=1, col=1)
        fig.update_layout(title=title, height=380, template="plotly_white")
    for trace, (key, _) in zip(fig.data, series):
        trace.x = [s for s, r in zip(steps, history) if key in r]
        trace.y = [r[key] for r in history if key in r]
    return fig


def save_figure_html(fig: go.Figure, path: str | os.PathLike) -> Path:
    """Atomically write a self-contained HTML file (plotly.js embedded: works offline)."""
    return atomic_write(path, lambda p: fig.write_html(p, include_plotlyjs=True, full_html=True))
