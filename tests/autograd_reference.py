"""The tests' oracle for the spline view of a network of the user's own: plain autograd on the module
itself (never invlab's functions), and batch norm made non-trivial."""

from __future__ import annotations

import torch
import torch.nn as nn


def autograd_view(model: nn.Module, x: torch.Tensor):
    """Logits f (C,), templates A (C, *D), bias b (C,) and reconstruction A^T f (*D) at one example
    x (1, *D), by plain autograd on the module itself."""
    xg = x.clone().requires_grad_(True)
    f = model(xg)[0]
    A = torch.stack([torch.autograd.grad(f[c], xg, retain_graph=True)[0][0] for c in range(f.numel())])
    f = f.detach()
    return f, A, f - (A * x[0]).flatten(1).sum(1), (f.view(-1, *[1] * (A.dim() - 1)) * A).sum(0)


def randomise_batchnorm(model: nn.Module, seed: int = 1) -> nn.Module:
    """Non-trivial running statistics and affine parameters, so that eval-mode batch norm is not
    nearly the identity."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.2)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            if m.affine:
                m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.2)
    return model
