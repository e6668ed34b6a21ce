"""Evaluation: predictions in batches, accuracy, per-recording majority vote."""

from __future__ import annotations

import torch
import torch.nn as nn


@torch.no_grad()
def predictions(model: nn.Module, x, index: torch.Tensor | None = None, batch_size: int = 1000) -> torch.Tensor:
    """Predicted classes of ``model`` (eval mode) on x[index] (all of x by default).

    x is a tensor or :class:`~invlab.data.audio.Segments`; batches are gathered one at a
    time, so a large audio split is never materialised whole. Returns (len(index),) int64.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    n = len(x) if index is None else len(index)
    out = []
    for i in range(0, n, batch_size):
        batch = x[i:i + batch_size] if index is None else x[index[i:i + batch_size]]
        out.append(model(batch.to(device)).argmax(1).cpu())  # Segments.to gathers the windows
    model.train(was_training)
    return torch.cat(out) if out else torch.empty(0, dtype=torch.long)


def accuracy(model: nn.Module, x, y: torch.Tensor, index: torch.Tensor | None = None,
             batch_size: int = 1000) -> float:
    """Top-1 accuracy (%) of ``model`` on (x[index], y[index]), evaluated in eval mode."""
    pred = predictions(model, x, index, batch_size)
    target = y if index is None else y[index]
    return 100.0 * (pred == target).sum().item() / max(len(target), 1)


def vote_accuracy(pred: torch.Tensor, y: torch.Tensor, groups: torch.Tensor) -> float:
    """Per-recording accuracy (%): each group's majority prediction against its label."""
    correct = 0
    ids = groups.unique()
    for g in ids:
        members = groups == g
        correct += int(torch.bincount(pred[members]).argmax() == y[members][0])
    return 100.0 * correct / len(ids)
