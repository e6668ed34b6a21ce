"""Learned loss weights (eqs. 14-15): the held-out split, the hypergradient, training with it."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from conftest import TinyCNN, mixed_batch

from invlab.losses import SemiSupervisedLoss
from invlab.train import TrainConfig, Trainer
from invlab.training.hyper import HyperWeights, holdout_split


def test_holdout_split():
    labelled = torch.arange(100, 130)
    targets = torch.arange(30) % 10
    kept, held = holdout_split(labelled, targets, 1)
    assert len(held) == 10 and len(kept) == 20 and set(kept.tolist()).isdisjoint(held.tolist())
    assert sorted((targets[held - 100]).tolist()) == list(range(10))
    with pytest.raises(ValueError, match="leaves none to train on"):
        holdout_split(labelled, targets, 3)


def test_hypergradient_matches_finite_differences():
    """Reference: plain autograd for the inner gradient, central differences in w, float64."""
    torch.manual_seed(3)
    model = TinyCNN("mean").double()
    x, y, mask = mixed_batch(8, 3)
    xh, yh = torch.randn(4, 1, 8, 8, dtype=torch.float64), torch.tensor([0, 1, 2, 1])
    hyper = HyperWeights(0.6, 0.4, lr=0.1, loss=SemiSupervisedLoss(0.6, 0.4, balance=0.5))
    hyper.w.data = hyper.w.data.double()
    inner_lr = 0.5
    params = list(model.parameters())

    def outer(w):
        a, b = torch.sigmoid(w).tolist()
        loss = SemiSupervisedLoss(a, b, balance=0.5)(model, x, y, mask)["total"]
        g = torch.autograd.grad(loss, params)
        updated = {n: p.detach() - inner_lr * gi for (n, p), gi in zip(model.named_parameters(), g)}
        return F.cross_entropy(torch.func.functional_call(model, updated, (xh,)), yh).item()

    w0 = hyper.w.detach().clone()
    eps = 1e-5
    fd = torch.tensor([(outer(w0 + eps * e) - outer(w0 - eps * e)) / (2 * eps)
                       for e in torch.eye(2, dtype=torch.float64)], dtype=torch.float64)
    hg = hyper.hypergradient(model, (x, y, mask), (xh, yh), inner_lr)
    assert fd.abs().max() > 1e-6  # the check can fail
    torch.testing.assert_close(hg, fd, rtol=1e-4, atol=1e-8)


def test_learned_weights_train_resume_and_stay_in_range(task, tmp_path):
    from invlab.experiments.studies import run_resumable

    cfg = TrainConfig(steps=6, eval_every=3, labelled_batch=10, unlabelled_batch=10, learn_weights=True,
                      hyper_every=2, hyper_lr=0.3, device="cpu")
    trainer = Trainer(cfg, task)
    assert len(trainer.data.labelled) == len(task.labelled) - 10 and trainer.holdout[1].tolist() == list(range(10))
    full = run_resumable(cfg, tmp_path / "full", data=task)
    alphas = [h["alpha"] for h in full["history"]]
    assert all(0 < a < 1 for a in alphas) and alphas[-1] != 0.7  # moved, and stayed in (0, 1)
    cut = Trainer(TrainConfig(**{**cfg.to_dict(), "steps": 3}), task)
    cut.run(progress=False, checkpoint_path=tmp_path / "cut.pt")
    resumed = Trainer(cfg, task)
    resumed.load_checkpoint(tmp_path / "cut.pt")
    assert resumed.hyper.weights == cut.hyper.weights
    with pytest.raises(ValueError, match="strictly inside"):
        TrainConfig(learn_weights=True, alpha=1.0)
