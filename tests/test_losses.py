"""Eq. 10 computed by hand, entropy and reconstruction losses, gradient flow."""

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from conftest import TinyCNN
from torch.autograd.functional import jacobian

from invlab import SemiSupervisedLoss, entropy_loss, reconstruction_loss


def test_entropy_matches_definition_and_is_stable():
    logits = torch.randn(5, 4, dtype=torch.float64)
    p = logits.softmax(1)
    torch.testing.assert_close(entropy_loss(logits, reduction="none"), -(p * p.log()).sum(1))
    assert entropy_loss(torch.zeros(3, 10)).item() == pytest.approx(math.log(10))
    huge = torch.tensor([[1e4, -1e4, 0.0]])
    assert entropy_loss(huge).item() == 0.0  # no NaN from 0 * log 0


def test_reconstruction_loss_kinds():
    x, rec = torch.randn(3, 1, 4, 4), torch.randn(3, 1, 4, 4)
    per = (rec - x).pow(2).flatten(1)
    torch.testing.assert_close(reconstruction_loss(rec, x), per.mean())
    torch.testing.assert_close(reconstruction_loss(rec, x, reduce_dims="sum"), per.sum(1).mean())
    assert reconstruction_loss(x, x).item() == 0
    assert reconstruction_loss(3 * x, x, kind="cosine").item() == pytest.approx(0, abs=1e-6)
    assert reconstruction_loss(-x, x, kind="cosine").item() == pytest.approx(2, abs=1e-6)
    with pytest.raises(ValueError, match="shape"):
        reconstruction_loss(rec, x[:2])
    with pytest.raises(ValueError, match="mse"):
        reconstruction_loss(rec, x, kind="l1")


def hand_eq10(model, x, y, labelled, alpha, beta):
    """Eq. 10 per sample with an explicit Jacobian, then the batch mean."""
    f = model(x)
    J = jacobian(model, x)  # (B, C, B, *D)
    total = 0.0
    for n in range(len(x)):
        rec = torch.einsum("c,c...->...", f[n], J[n, :, n])
        R = (rec - x[n]).pow(2).mean()
        logp = F.log_softmax(f[n], 0)
        if labelled[n]:
            L = alpha * -logp[y[n]] + (1 - alpha) * beta * R
        else:
            L = (1 - alpha) * (beta * R + (1 - beta) * -(logp.exp() * logp).sum())
        total = total + L
    return total / len(x)


@pytest.mark.parametrize("alpha,beta", [(0.7, 0.2), (0.5, 0.5), (0.0, 1.0), (0.3, 0.0), (1.0, 0.0)])
def test_loss_equals_eq10_by_hand(alpha, beta):
    model = TinyCNN().double()
    x = torch.randn(6, 1, 8, 8, dtype=torch.float64)
    y = torch.tensor([0, 2, -1, -1, 1, -1])
    labelled = torch.tensor([True, True, False, False, True, False])
    out = SemiSupervisedLoss(alpha, beta)(model, x, y, labelled)
    torch.testing.assert_close(out["total"], hand_eq10(model, x, y, labelled, alpha, beta))
    assert out["n_labelled"].item() == 3 and out["n_unlabelled"].item() == 3
    torch.testing.assert_close(out["ce"], F.cross_entropy(model(x)[labelled], y[labelled]))
    # a training step's weights, given to the call: the same eq. 10, and the loss object left alone
    other = SemiSupervisedLoss(0.5, 0.5)
    stepped = other(model, x, y, labelled, alpha=alpha, beta=beta)
    torch.testing.assert_close(stepped["total"], out["total"])
    assert (other.alpha, other.beta) == (0.5, 0.5)


def test_gradients_reach_every_parameter_through_reconstruction():
    model = TinyCNN().double()
    x = torch.randn(4, 1, 8, 8, dtype=torch.float64)
    y = torch.full((4,), -1)
    out = SemiSupervisedLoss(alpha=0.0, beta=1.0)(model, x, y, torch.zeros(4, dtype=torch.bool))
    out["total"].backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_all_labelled_or_all_unlabelled_batches():
    model = TinyCNN()
    x = torch.randn(4, 1, 8, 8)
    loss = SemiSupervisedLoss(0.5, 0.5)
    none = loss(model, x, torch.full((4,), -1), torch.zeros(4, dtype=torch.bool))
    assert none["ce"].item() == 0 and torch.isfinite(none["total"])
    every = loss(model, x, torch.tensor([0, 1, 2, 0]), torch.ones(4, dtype=torch.bool))
    assert every["entropy"].item() == 0 and torch.isfinite(every["total"])


@pytest.mark.parametrize("alpha,beta", [(-0.1, 0.5), (1.5, 0.5), (0.5, -1), (0.5, 2.0)])
def test_alpha_beta_out_of_range(alpha, beta):
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        SemiSupervisedLoss(alpha, beta)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        SemiSupervisedLoss()(TinyCNN(), torch.randn(2, 1, 8, 8), torch.tensor([0, -1]), 1, alpha=alpha, beta=beta)


def test_bad_mask_and_labels():
    model, x = TinyCNN(), torch.randn(2, 1, 8, 8)
    loss = SemiSupervisedLoss()
    with pytest.raises(TypeError, match="boolean"):
        loss(model, x, torch.tensor([0, 1]), torch.tensor([1, 0]))
    with pytest.raises(ValueError, match="negative"):
        loss(model, x, torch.tensor([-1, 1]), torch.tensor([True, False]))
    with pytest.raises(ValueError, match="shape"):
        loss(model, x, torch.tensor([0, 1, 2]), torch.tensor([True, False, True]))


def test_marginal_entropy_and_balance_term():
    from invlab.losses import marginal_entropy

    even = torch.eye(4) * 20  # four confident predictions, one per class
    piled = torch.zeros(4, 4)
    piled[:, 0] = 20  # four confident predictions of class 0
    assert marginal_entropy(even).item() == pytest.approx(math.log(4), abs=1e-6)
    assert marginal_entropy(piled).item() == pytest.approx(0.0, abs=1e-6)
    # both have ~0 per-sample entropy: only the balance term tells them apart
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 4, bias=False)).double()
    x, y = torch.eye(4, dtype=torch.float64).view(4, 1, 2, 2), torch.full((4,), -1)
    mask = torch.zeros(4, dtype=torch.bool)
    plain = SemiSupervisedLoss(0.7, 0.2, report_unweighted=False)
    balanced = SemiSupervisedLoss(0.7, 0.2, report_unweighted=False, balance=1.0)
    with torch.no_grad():
        model[1].weight.copy_(piled.T.double())  # logits = x W^T = piled
        a, b = plain(model, x, y, mask), balanced(model, x, y, mask)
    assert a["imbalance"].item() == pytest.approx(math.log(4), abs=1e-5)
    # (1 - alpha)(1 - beta)(n_U/B) * balance * (log C - H(p̄)) on top of the paper's loss
    assert (b["total"] - a["total"]).item() == pytest.approx(0.3 * 0.8 * 1.0 * math.log(4), rel=1e-5)
    with pytest.raises(ValueError, match="balance must be >= 0"):
        SemiSupervisedLoss(balance=-1.0)
