"""Piecewise-affine building blocks shared by the models.

Every layer here is an affine map or a piecewise-affine nonlinearity, so a network made
of them is an affine spline f(x) = A[x] x + b[x] (paper eq. 1) and the inverse
(df/dx)^T f(x) is exact. There is no batch norm anywhere: the paper (§3) leaves it out
because "the update of the parameters will take effect before the update of
normalization", and batch norm in training mode would also mix samples in the inverse.
"""

from __future__ import annotations

import torch
import torch.nn as nn


class LocalWinnerTakesAll(nn.Module):
    """Inhibitor ("winner-share-all") nonlinearity — a documented assumption.

    The "U" models of Table 2 are the inhibitor DNNs of Balestriero & Baraniuk,
    "Deep Neural Networks", arXiv 1710.09302, whose units compete through
    "winner-share-all connections" that stabilise training and remove the need for
    bias units. No public code gives the exact definition, so invlab implements the
    closest well-defined piecewise-linear competition rule: channels are split into
    groups of ``group_size`` consecutive channels; at every position the unit with the
    largest response in its group keeps its value and the others are inhibited to zero
    (local winner-takes-all, Srivastava et al., "Compete to Compute", NeurIPS 2013).

    Shapes: (B, C, *) -> (B, C, *), C divisible by ``group_size``.
    Being piecewise linear and positively homogeneous, a bias-free network of these
    units satisfies f(x) = A[x] x exactly (b[x] = 0), the setting of Corollary 1.
    """

    def __init__(self, group_size: int = 2):
        super().__init__()
        if group_size < 2:
            raise ValueError(f"group_size must be >= 2 for a competition, got {group_size}")
        self.group_size = group_size

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        b, c = z.shape[:2]
        if c % self.group_size:
            raise ValueError(f"{c} channels cannot be split into groups of {self.group_size}")
        if z.dim() == 4 and not z.is_contiguous() and z.is_contiguous(memory_format=torch.channels_last):
            # channels-last images: group along the innermost (channel) axis as views, so that
            # neither reshape copies and the output stays channels-last; the same values
            h = z.permute(0, 2, 3, 1)  # (B, H, W, C), contiguous
            g = h.reshape(*h.shape[:3], c // self.group_size, self.group_size)  # (B, H, W, C/k, k)
            winner = g == g.amax(dim=-1, keepdim=True)
            return (g * winner).reshape(h.shape).permute(0, 3, 1, 2)
        g = z.reshape(b, c // self.group_size, self.group_size, *z.shape[2:])  # (B, C/k, k, *)
        winner = g == g.amax(dim=2, keepdim=True)  # the mask is constant within a region
        return (g * winner).reshape(z.shape)

    def extra_repr(self) -> str:
        return f"group_size={self.group_size}"


def activation(kind: str, group_size: int = 2) -> nn.Module:
    """``"relu"``, ``"leaky_relu"`` (slope 0.1) or ``"lwta"`` (:class:`LocalWinnerTakesAll`)."""
    if kind == "relu":
        return nn.ReLU()
    if kind == "leaky_relu":
        return nn.LeakyReLU(0.1)
    if kind == "lwta":
        return LocalWinnerTakesAll(group_size)
    raise ValueError(f"unknown activation {kind!r}; use 'relu', 'leaky_relu' or 'lwta'")


def pool2d(kind: str, size: int = 2) -> nn.Module:
    """``"mean"`` (average) or ``"max"`` pooling with kernel = stride = ``size``."""
    if kind == "mean":
        return nn.AvgPool2d(size)
    if kind == "max":
        return nn.MaxPool2d(size)
    raise ValueError(f"unknown pooling {kind!r}; use 'mean' or 'max'")
