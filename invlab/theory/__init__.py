"""Theorem 1 and Corollary 1 of the paper (§2.1-2.2): optimal templates and exact inverse.

For a unit-norm input X of class Y, C classes and a norm budget sum_c ||A_c||^2 <= K,
the unique optimal templates are (eq. 4)

    A*_c = +sqrt((C - 1) K / C) · X          if c = Y,
    A*_c = -sqrt(K / (C (C - 1))) · X        otherwise,

and with no bias their inverse sum_c <A*_c, X> A*_c equals K ||X||^2 X (Corollary 1):
an exact reconstruction when K ||X||^2 = 1. A bias b adds sum_c b_c A*_c; noise in the
input is projected onto X, which is where the denoising behaviour comes from.

The package also holds the rest of the theory: ``spline`` (regions and template
alignment), ``frameworks`` (Table 1's classic frameworks as inverses) and ``paper`` (the
paper's published numbers).
"""

from __future__ import annotations

import math

import torch


def optimal_templates(x: torch.Tensor, label: int, num_classes: int, K: float = 1.0) -> torch.Tensor:
    """Templates A* of Theorem 1 (eq. 4) for one unit-norm input.

    Args:
        x: (*D) input with ||x|| = 1 (normalise with ``x / x.norm()``).
        label: its class Y in [0, C).
        num_classes: C >= 2.
        K: the norm budget, sum_c ||A_c||^2 = K.

    Returns:
        (C, *D) templates.
    """
    if num_classes < 2:
        raise ValueError(f"Theorem 1 needs at least 2 classes, got {num_classes}")
    if not 0 <= label < num_classes:
        raise ValueError(f"label {label} is not a class in [0, {num_classes})")
    if K <= 0:
        raise ValueError(f"the norm budget K must be positive, got {K}")
    norm = x.norm().item()
    if not math.isclose(norm, 1.0, rel_tol=1e-5):
        raise ValueError(f"Theorem 1 assumes ||x|| = 1 but ||x|| = {norm:.4g}; pass x / x.norm()")
    C = num_classes
    scale = torch.full((C,), -math.sqrt(K / (C * (C - 1))), dtype=x.dtype, device=x.device)
    scale[label] = math.sqrt((C - 1) * K / C)
    return scale.view(C, *([1] * x.ndim)) * x  # (C, *D)


def spline_inverse(A: torch.Tensor, x: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
    """A^T (A x + b) = sum_c (<A_c, x> + b_c) A_c (eq. 5) for one input.

    A: (C, *D), x: (*D), b: (C,) or None. Returns (*D).
    """
    f = (A * x).flatten(1).sum(1)  # (C,)
    if b is not None:
        f = f + b
    return torch.einsum("c,c...->...", f, A)
