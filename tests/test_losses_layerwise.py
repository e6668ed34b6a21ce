"""The layer-wise loss (eq. 12): eq. 10 with the input alone, one term per layer."""

from __future__ import annotations

import pytest
import torch
from conftest import TinyCNN, mixed_batch, separate_vjp

from invlab.losses import LayerwiseLoss, SemiSupervisedLoss


@pytest.mark.parametrize("alpha,beta,balance", [(0.7, 0.2, 0.0), (0.5, 0.5, 1.0), (0.3, 0.9, 0.5)])
def test_layerwise_loss_with_only_the_input_is_eq10(alpha, beta, balance):
    model = TinyCNN("mean").double()
    x, y, mask = mixed_batch()
    ref = SemiSupervisedLoss(alpha, beta, balance=balance)(model, x, y, mask)["total"]
    mine = LayerwiseLoss.from_eq10(alpha, beta, balance=balance)(model, x, y, mask)["total"]
    torch.testing.assert_close(mine, ref)
    g_ref = torch.autograd.grad(ref, list(model.parameters()))
    g_mine = torch.autograd.grad(mine, list(model.parameters()))
    for a, b in zip(g_mine, g_ref):
        torch.testing.assert_close(a, b)


def test_layerwise_loss_adds_each_layer_term():
    model = TinyCNN("mean").double()
    x, y, mask = mixed_batch()
    base = LayerwiseLoss.from_eq10(0.7, 0.2)(model, x, y, mask)
    out = LayerwiseLoss.from_eq10(0.7, 0.2, {"net.2": 0.3, "net.4": 0.1})(model, x, y, mask)
    rec, z = separate_vjp(model, x, "net.2")
    r2 = (rec - z).pow(2).flatten(1).mean(1).mean()
    torch.testing.assert_close(out["R:net.2"], r2)
    torch.testing.assert_close(out["total"], base["total"] + 0.3 * r2 + 0.1 * out["R:net.4"])
    with pytest.raises(ValueError, match="hidden layers only"):
        LayerwiseLoss.from_eq10(0.7, 0.2, {"input": 1.0})
    with pytest.raises(ValueError, match=">= 0"):
        LayerwiseLoss(0.7, 0.2, {"net.2": -1})
