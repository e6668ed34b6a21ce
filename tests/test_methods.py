"""The baselines (invlab.methods) against values computed by hand, in float64."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn as nn

from invlab.losses import SemiSupervisedLoss
from invlab.methods import Method, linear_rampup, sigmoid_rampup
from invlab.train import TrainConfig, train


def _softmax(z):
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def _kl(p, q):
    return float((p * (np.log(p) - np.log(q))).sum(1).mean())


class Linear(nn.Module):
    """f(x) = W x on (B, 1, D) inputs, float64: a spline with one region."""

    input_ndim, in_channels = 3, 1

    def __init__(self, w):
        super().__init__()
        self.lin = nn.Linear(w.shape[1], w.shape[0], bias=False).double()
        with torch.no_grad():
            self.lin.weight.copy_(torch.as_tensor(w))

    def forward(self, x):
        return self.lin(x.flatten(1))


W = np.array([[1.0, -0.5, 0.2], [0.3, 0.8, -1.0], [-0.7, 0.1, 0.5]])
X = np.array([[0.5, 1.0, -0.2], [1.5, -0.3, 0.4], [-0.6, 0.2, 0.9], [0.1, -1.2, 0.3]])
Y = torch.tensor([0, 2, -1, -1])  # two labelled, two unlabelled (the first two)


def _loss(method, alpha=0.6, beta=0.0, progress=1.0, **knobs):
    m = Method(method, **knobs)
    m.progress = progress
    return SemiSupervisedLoss(alpha, beta, report_unweighted=False, unsupervised=m), m


def _ce_labelled():
    p = _softmax(X[:2] @ W.T)
    return -(math.log(p[0, 0]) + math.log(p[1, 2])) / 2


def test_supervised_is_alpha_times_the_labelled_share_of_ce():
    loss, _ = _loss("supervised")
    out = loss(Linear(W), torch.tensor(X)[:, None], Y, 2)
    assert out["total"].item() == pytest.approx(0.6 * (2 / 4) * _ce_labelled(), rel=1e-12)


def test_pseudo_label_uses_confident_hard_labels_with_its_rampup():
    loss, _ = _loss("pseudo-label", progress=0.1, pl_threshold=0.7, rampup=0.4)
    out = loss(Linear(W), torch.tensor(X)[:, None], Y, 2)
    p = _softmax(X[2:] @ W.T)  # the unlabelled rows: confidences 0.710 and 0.631
    terms = [-math.log(row.max()) if row.max() >= 0.7 else 0.0 for row in p]
    assert sum(t > 0 for t in terms) == 1  # one confident, one not: the threshold matters here
    u = (2 / 4) * (0.1 / 0.4) * np.mean(terms)
    expected = 0.6 * (2 / 4) * _ce_labelled() + 0.4 * u
    assert out["total"].item() == pytest.approx(expected, rel=1e-12)
    assert linear_rampup(0.5, 0.4) == 1.0


def test_vat_is_the_kl_at_the_power_iteration_direction_plus_entropy():
    eps, xi = 0.7, 1e-3
    loss, m = _loss("vat", vat_eps=eps, vat_xi=xi)
    d0 = torch.randn((4, 1, 3), generator=torch.Generator().manual_seed(0)).double().numpy()[:, 0]
    out = loss(Linear(W), torch.tensor(X)[:, None], Y, 2)
    # by hand: d/dd KL(p || softmax(W(x + xi d))) = xi W^T (q - p) / B per example (row direction only)
    p = _softmax(X @ W.T)
    d = d0 / np.linalg.norm(d0, axis=1, keepdims=True)
    q = _softmax((X + xi * d) @ W.T)
    g = (q - p) @ W
    r = eps * g / np.linalg.norm(g, axis=1, keepdims=True)
    lds = _kl(p, _softmax((X + r) @ W.T))
    pu = p[2:]
    ent = float(-(pu * np.log(pu)).sum(1).mean())
    expected = 0.6 * (2 / 4) * _ce_labelled() + 0.4 * (lds + (2 / 4) * ent)
    assert float(out["m:lds"]) == pytest.approx(lds, rel=1e-6)
    assert out["total"].item() == pytest.approx(expected, rel=1e-6)


def test_mean_teacher_consistency_and_ema_update():
    loss, m = _loss("mean-teacher", progress=0.2, rampup=0.4, noise=0.0, consistency=8.0, ema=0.9)
    student = Linear(W)
    m.teacher = Linear(W * 0.5)  # a teacher that differs from the student
    out = loss(student, torch.tensor(X)[:, None], Y, 2)
    cons = float(((_softmax(X @ W.T) - _softmax(X @ (0.5 * W).T)) ** 2).mean())
    w = 8.0 * math.exp(-5 * (1 - 0.2 / 0.4) ** 2)
    assert sigmoid_rampup(0.2, 0.4) == pytest.approx(math.exp(-1.25))
    assert out["total"].item() == pytest.approx(0.6 * (2 / 4) * _ce_labelled() + 0.4 * w * cons, rel=1e-12)
    m.after_step(student)
    assert np.allclose(m.teacher.lin.weight.detach().numpy(), 0.9 * 0.5 * W + 0.1 * W, rtol=1e-14)


def test_reconstruction_adds_on_top_of_any_method():
    """--method vat --beta 0.2 adds (1 - alpha)·beta·R; the method's term gets (1 - beta)."""
    model, x = Linear(W), torch.tensor(X)[:, None]
    plain, _ = _loss("pseudo-label", pl_threshold=0.5)
    with_r, _ = _loss("pseudo-label", beta=0.2, pl_threshold=0.5)
    a, b = plain(model, x, Y, 2), with_r(model, x, Y, 2)
    rec = (X @ W.T) @ W  # (df/dx)^T f(x) = W^T W x for a linear map
    r = float(((rec - X) ** 2).mean())
    ce_part = 0.6 * (2 / 4) * _ce_labelled()
    u = (a["total"].item() - ce_part) / 0.4
    assert b["total"].item() == pytest.approx(ce_part + 0.4 * (0.2 * r + 0.8 * u), rel=1e-10)


@pytest.mark.parametrize("method", ["supervised", "pseudo-label", "vat", "mean-teacher"])
def test_methods_train_and_resume_like_an_uninterrupted_run(method, tmp_path):
    from invlab.data import load_dataset

    fast = dict(model="smallcnn-mean", dataset="synthetic", method=method, beta=0.0, labelled_batch=10,
                unlabelled_batch=10, eval_every=2, val_size=50, pl_threshold=0.2, device="cpu")
    data = load_dataset("synthetic", 5, 0, 50)
    class StopAt2:
        def on_step(self, trainer, step, losses):
            trainer.stop = step == 2

    whole = train(TrainConfig(**fast, steps=4), data=data, progress=False)
    train(TrainConfig(**fast, steps=4), data=data, out_dir=tmp_path, progress=False, callbacks=[StopAt2()])
    resumed = train(TrainConfig(**fast, steps=4), data=data, out_dir=tmp_path, resume=True, progress=False)
    assert [r["total"] for r in resumed.history] == pytest.approx([r["total"] for r in whole.history], rel=1e-5)
    assert whole.config["method"] == method


def test_method_settings_are_checked():
    with pytest.raises(ValueError, match="method must be one of"):
        TrainConfig(method="mixmatch")
    with pytest.raises(ValueError, match="drop layers"):
        TrainConfig(method="vat", layers={"features.2": 0.1})
