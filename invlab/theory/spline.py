"""The spline view of a network (paper §2.1): regions of input space and template geometry."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from invlab.inverse import templates


def region_ids(model: nn.Module, x: torch.Tensor, decimals: int = 6) -> torch.Tensor:
    """Label each input by the affine piece (A[x], b[x]) of the spline it falls in.

    Inputs that share the same templates and biases (rounded to ``decimals``) get the same
    id: the regions of the partition that the network's activation pattern induces.
    x: (N, *D) -> (N,) int64 ids in [0, number of distinct regions).
    """
    A, b = templates(model, x)  # (N, C, *D), (N, C)
    key = torch.cat([A.flatten(1), b], dim=1)
    scale = key.abs().max().clamp(min=1e-12)
    key = torch.round(key / scale * 10 ** decimals)
    return torch.unique(key, dim=0, return_inverse=True)[1]


def template_alignment(A: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    """Cosine between each template A[x]_c and its input x (Theorem 1's geometry).

    Theorem 1 says the optimal template of the true class is +x (cosine +1) and the
    others are -x (cosine -1). A: (B, C, *D), x: (B, *D), y: (B,) true classes.

    Returns ``cos`` (B, C), ``true`` (B,) the cosine of the true class's template and
    ``others`` (B,) the mean cosine of the other templates.
    """
    cos = F.cosine_similarity(A.flatten(2), x.flatten(1).unsqueeze(1), dim=2)  # (B, C)
    true = cos.gather(1, y[:, None]).squeeze(1)
    others = (cos.sum(1) - true) / (cos.shape[1] - 1)
    return {"cos": cos, "true": true, "others": others}
