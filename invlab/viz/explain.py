"""What a trained network makes of one input: prediction, inverse, templates, and the
share of each class in the reconstruction — the pure functions behind the explorer
notebook (``notebooks/00_explore``) and its drawing canvas.

For a piecewise-affine network f(x) = A[x]x + b[x] (paper eq. 1) the reconstruction is

    f^{-1}(x) = A[x]^T f(x) = sum_c f_c(x) A[x]_c                       (eq. 5)

so it splits exactly into one *contribution* per class, f_c(x)·A[x]_c, and each class's
*share* of it, s_c = <f_c(x) A[x]_c, f^{-1}(x)> / ||f^{-1}(x)||^2, sums to 1 over c.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from invlab.data.mnist import MNIST_DIGIT_BOX, MNIST_INPUT_SHAPE
from invlab.inverse import templates

CANVAS_SIZE = 280  # drawing canvas side in pixels: 10x an MNIST digit
BRUSH_RADIUS = 11.0  # pixels of the canvas; a stroke about as thick as an MNIST pen stroke


def runs_dir() -> Path:
    """``runs/`` of the source checkout (where ``bin/run`` and ``invlab train`` write)."""
    return Path(__file__).resolve().parents[2] / "runs"  # the checkout's runs/


def default_checkpoint() -> Path | None:
    """The checkpoint ``bin/run`` writes (``runs/default/checkpoint.pt``), if it exists."""
    path = runs_dir() / "default" / "checkpoint.pt"
    return path if path.is_file() else None


def list_checkpoints(root: str | Path | None = None) -> list[Path]:
    """Every ``checkpoint.pt`` under ``root`` (default :func:`runs_dir`), sorted."""
    root = Path(root) if root is not None else runs_dir()
    return sorted(root.rglob("checkpoint.pt")) if root.is_dir() else []


def model_input(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """x as the model was trained to see it: its checkpoint's preprocessing, if any."""
    prep = getattr(model, "preprocess", None)
    return prep(x) if prep is not None else x


@dataclass
class Explanation:
    """One input seen by the network (C classes, input (C_in, H, W) or (C_in, L))."""

    x: torch.Tensor  # (C_in, H, W) the model's input (preprocessed)
    logits: torch.Tensor  # (C,)
    probs: torch.Tensor  # (C,) softmax
    reconstruction: torch.Tensor  # (1, H, W) = sum_c contributions[c]
    templates: torch.Tensor  # (C, 1, H, W) A[x]_c
    contributions: torch.Tensor  # (C, 1, H, W) f_c(x) A[x]_c
    shares: torch.Tensor  # (C,) share of each class in the reconstruction, sums to 1

    @property
    def prediction(self) -> int:
        return int(self.probs.argmax())


def explain(model: nn.Module, x: torch.Tensor) -> Explanation:
    """Prediction, reconstruction, templates and class shares of ``model`` at one input.

    Args:
        model: piecewise-affine classifier in eval mode.
        x: (1, C_in, H, W) or (C_in, H, W), already in the model's input space
            (see :func:`model_input`).
    """
    if x.ndim == 3:
        x = x.unsqueeze(0)
    if x.shape[0] != 1:
        raise ValueError(f"explain() takes one input, got a batch of {x.shape[0]}")
    A, b = templates(model, x)  # (1, C, *D), (1, C)
    A = A[0]  # (C, *D)
    logits = (A * x[0]).flatten(1).sum(1) + b[0]  # (C,) f(x) = <A, x> + b
    contributions = logits.view(-1, *[1] * (A.ndim - 1)) * A  # (C, *D)
    rec = contributions.sum(0)  # (*D)
    norm2 = rec.pow(2).sum().clamp_min(1e-12)
    shares = (contributions * rec).flatten(1).sum(1) / norm2  # (C,), sums to 1
    return Explanation(x=x[0], logits=logits, probs=F.softmax(logits, 0), reconstruction=rec,
                       templates=A, contributions=contributions, shares=shares)


def add_noise(x: torch.Tensor, sigma: float, seed: int = 0) -> torch.Tensor:
    """x plus Gaussian noise of standard deviation ``sigma`` (reproducible by ``seed``)."""
    if sigma <= 0:
        return x
    g = torch.Generator().manual_seed(seed)
    return x + sigma * torch.randn(x.shape, generator=g, dtype=x.dtype)


def ink_to_digit(ink: np.ndarray | torch.Tensor, shape: tuple[int, int] = MNIST_INPUT_SHAPE[1:]) -> torch.Tensor:
    """A drawing (S, S) of ink in [0, 1] framed the way MNIST frames its digits, in an
    image of ``shape`` (H, W) (default MNIST's 28x28).

    MNIST digits are scaled to fit a 20x20 box (aspect ratio kept) and placed in a 28x28
    image with their centre of mass at the centre; other sizes keep those proportions.
    Returns (1, H, W) in [0, 1]; an empty drawing gives zeros.
    """
    ink = torch.as_tensor(np.asarray(ink), dtype=torch.float32)
    if ink.ndim != 2:
        raise ValueError(f"expected a 2-D drawing, got shape {tuple(ink.shape)}")
    height, width = shape
    rows, cols = (ink > 0.05).any(1).nonzero(), (ink > 0.05).any(0).nonzero()
    if len(rows) == 0:
        return torch.zeros(1, height, width)
    crop = ink[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    h, w = crop.shape
    box = MNIST_DIGIT_BOX / MNIST_INPUT_SHAPE[1] * min(height, width)
    scale = box / max(h, w)
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    small = F.interpolate(crop[None, None], size=size, mode="area")[0, 0].clamp(0, 1)  # (h', w')
    out = torch.zeros(height, width)
    mass = small.sum().clamp_min(1e-6)
    cy = float((small.sum(1) * torch.arange(size[0])).sum() / mass)
    cx = float((small.sum(0) * torch.arange(size[1])).sum() / mass)
    top = int(round((height - 1) / 2 - cy))
    left = int(round((width - 1) / 2 - cx))
    top, left = min(max(top, 0), height - size[0]), min(max(left, 0), width - size[1])
    out[top:top + size[0], left:left + size[1]] = small
    return out.unsqueeze(0)


class Brush:
    """A server-side raster of ink, drawn by strokes of canvas coordinates.

    The explorer keeps its own copy of what is drawn (rather than reading pixels back
    from the browser), so the same drawing code runs in a real browser and headless.
    """

    def __init__(self, size: int = CANVAS_SIZE, radius: float = BRUSH_RADIUS):
        self.size, self.radius = size, radius
        self.ink = np.zeros((size, size), dtype=np.float32)
        self._yy, self._xx = np.mgrid[0:size, 0:size].astype(np.float32)
        self._last: tuple[float, float] | None = None

    def clear(self) -> None:
        self.ink[:] = 0
        self._last = None

    def start(self, x: float, y: float) -> None:
        self._last = None
        self.move(x, y)

    def move(self, x: float, y: float) -> None:
        """Continue the stroke to (x, y): ink every pixel within ``radius`` of the segment."""
        x0, y0 = self._last if self._last is not None else (x, y)
        dx, dy = x - x0, y - y0
        length2 = dx * dx + dy * dy
        t = np.zeros_like(self._xx) if length2 == 0 else np.clip(
            ((self._xx - x0) * dx + (self._yy - y0) * dy) / length2, 0, 1)
        dist = np.hypot(self._xx - (x0 + t * dx), self._yy - (y0 + t * dy))
        np.maximum(self.ink, np.clip(self.radius + 0.5 - dist, 0, 1), out=self.ink)  # anti-aliased edge
        self._last = (x, y)

    def end(self) -> None:
        self._last = None

    def stroke(self, points) -> None:
        """Draw a whole stroke through ``points`` [(x, y), ...] in canvas pixels."""
        points = list(points)
        if not points:
            return
        self.start(*points[0])
        for p in points[1:]:
            self.move(*p)
        self.end()

    def digit(self, shape: tuple[int, int] = MNIST_INPUT_SHAPE[1:]) -> torch.Tensor:
        """The drawing as an MNIST-framed (1, H, W) image, see :func:`ink_to_digit`."""
        return ink_to_digit(self.ink, shape)
