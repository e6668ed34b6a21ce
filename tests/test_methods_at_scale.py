"""Each baseline does what its paper promises, at realistic scale: float32, 28x28 images of
MNIST's sparsity and scaling, a briefly trained smallcnn-mean, a training-sized batch.

Unit tests against hand-computed values (tests/test_methods.py) passed while VAT's
perturbation was 1e5 times smaller than its eps: in float32, on real-sized inputs, its
gradient underflowed. These tests measure the effect instead: the perturbation's norm, how
adversarial it is, and how much each method's term moves the weights' gradient."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from invlab.data.preprocess import preprocess
from invlab.losses import SemiSupervisedLoss
from invlab.methods import Method, softmax_kl, unit_directions, vat_perturbation
from invlab.models import create_model

EPS = 2.0  # the study's VAT eps is 2-3 in L2 over 784 pixels


def mnist_like(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(n, 1, 28, 28) float32 strokes on a black background (about 15 % of the pixels lit, as
    in MNIST), scaled like the study's inputs (``center-maxabs``), and a class per image:
    which of ten stroke shapes it carries, so that a network can learn them in a few steps."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 10
    x = torch.zeros(n, 1, 28, 28)
    t = torch.linspace(0, 1, 40)
    for i in range(n):
        c = int(y[i])
        # each class: two strokes at class-specific angles, jittered per image
        for k in range(2):
            angle = (c * 0.63 + k * 1.7) + 0.15 * torch.randn((), generator=g)
            cx, cy = 14 + 3 * torch.randn(2, generator=g)
            rows = (cy + (t - 0.5) * 16 * torch.sin(angle)).round().long().clamp(0, 26)
            cols = (cx + (t - 0.5) * 16 * torch.cos(angle)).round().long().clamp(0, 26)
            for dr in (0, 1):
                for dc in (0, 1):
                    x[i, 0, rows + dr, cols + dc] = 1.0
    x = (x + 0.05 * torch.randn(x.shape, generator=g)).clamp(0, 1) * (x > 0)  # ink only where strokes are
    return preprocess(x, "center-maxabs"), y


@pytest.fixture(scope="module")
def trained():
    """smallcnn-mean after 60 Adam steps of cross-entropy on 200 labelled stroke images
    (train accuracy well above chance: confident, but not saturated, predictions)."""
    torch.manual_seed(0)
    x, y = mnist_like(200, seed=1)
    model = create_model("smallcnn-mean", num_classes=10, input_shape=(1, 28, 28))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for step in range(60):
        idx = torch.randperm(200, generator=torch.Generator().manual_seed(step))[:50]
        loss = F.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        acc = (model(x).argmax(1) == y).float().mean().item()
    assert acc > 0.5, f"the briefly trained network should fit its stroke classes (accuracy {acc:.2f})"
    return model


def test_mnist_like_batch_is_sparse_float32_at_the_study_scale():
    x, _ = mnist_like(32)
    assert x.dtype == torch.float32 and x.shape == (32, 1, 28, 28)
    lit = (x - x.flatten(1).amin(1).view(-1, 1, 1, 1) > 1e-3).float().mean().item()
    assert 0.08 < lit < 0.3
    assert x.flatten(1).abs().amax(1).sub(1).abs().max() < 1e-5  # center-maxabs


@pytest.mark.parametrize("net", ["untrained", "trained"])
def test_vat_perturbation_has_norm_eps_for_every_example(net, trained):
    """Before the fix: median |r_adv| 2.6e-5 for eps 2 (the gradient's squares underflowed)."""
    model = trained if net == "trained" else create_model("smallcnn-mean", num_classes=10, input_shape=(1, 28, 28))
    x, _ = mnist_like(32, seed=2)
    with torch.no_grad():
        logits = model(x)
    r = vat_perturbation(model, x, logits, EPS, 0.0, torch.Generator().manual_seed(0))
    norms = r.flatten(1).norm(dim=1)
    assert r.dtype == torch.float32
    assert torch.allclose(norms, torch.full_like(norms, EPS), rtol=1e-3), norms


def _kl_each(p_logits, q_logits):
    logp, logq = F.log_softmax(p_logits, 1), F.log_softmax(q_logits, 1)
    return (logp.exp() * (logp - logq)).sum(1)  # (B,)


def test_vat_power_iteration_improves_on_its_start_for_every_example():
    """One power iteration moves each example's direction from the random start d towards
    H's leading eigenvector, so the KL along r_adv beats the KL along eps·d for every
    example. At Miyato's absolute xi = 1e-6 the finite difference is float32 rounding for
    such inputs (exactly 0 for some examples, which then got no perturbation at all)."""
    model = create_model("smallcnn-mean", num_classes=10, input_shape=(1, 28, 28))
    x, _ = mnist_like(32, seed=2)
    with torch.no_grad():
        logits = model(x)
    start = EPS * unit_directions(torch.randn(x.shape, generator=torch.Generator().manual_seed(0)))  # vat's own start
    r = vat_perturbation(model, x, logits, EPS, 0.0, torch.Generator().manual_seed(0))
    with torch.no_grad():
        adv, base = _kl_each(logits, model(x + r)), _kl_each(logits, model(x + start))
    assert bool((adv > base).all()), (adv / base)


def test_vat_perturbation_is_adversarial_on_a_briefly_trained_network(trained):
    """The KL along r_adv exceeds the KL along each of 32 random directions of the same norm
    (the point of the power iteration: the most sensitive direction, not a random one)."""
    x, _ = mnist_like(64, seed=3)
    with torch.no_grad():
        logits = trained(x)
    r = vat_perturbation(trained, x, logits, EPS, 0.0, torch.Generator().manual_seed(0))
    with torch.no_grad():
        adv = softmax_kl(logits, trained(x + r)).item()
        g = torch.Generator().manual_seed(1)
        rand = [softmax_kl(logits, trained(x + EPS * unit_directions(torch.randn(x.shape, generator=g)))).item()
                for _ in range(32)]
    assert adv > max(rand), (adv, max(rand))
    assert adv > 3 * sorted(rand)[16], (adv, sorted(rand)[16])  # well above the median direction


def _gradients(model, terms) -> list[torch.Tensor]:
    params = [p for p in model.parameters() if p.requires_grad]
    return [torch.cat([g.flatten() for g in torch.autograd.grad(t, params, retain_graph=True)]) for t in terms]


@pytest.mark.parametrize("method,knobs", [
    ("entropy", {}), ("pseudo-label", {"pl_threshold": 0.5}), ("vat", {"vat_eps": EPS}),
    ("mean-teacher", {"consistency": 8.0}),
])
def test_every_method_term_moves_the_gradient(method, knobs, trained):
    """The unsupervised term's share of the weights' gradient, (1 - alpha)·|grad U| against
    alpha·(n_L/B)·|grad CE|, on a training-sized batch (50 labelled + 100 unlabelled), after
    the ramp-up: a dead term (VAT's LDS was 5e-8 before the fix) gives a ratio near 0."""
    import copy

    model = copy.deepcopy(trained)
    x, y = mnist_like(150, seed=4)
    y = y.clone()
    y[50:] = -1
    m = Method(method, balance=1.0, **knobs)
    m.progress = 1.0
    if method == "mean-teacher":  # a teacher a few steps behind the student (after_step's EMA)
        m.after_step(model)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.01 * torch.randn_like(p))
    loss = SemiSupervisedLoss(0.7, 0.0, report_unweighted=False, unsupervised=m)
    out = loss(model, x, y, 50)
    ce_part = 0.7 * (50 / 150) * out["ce"]
    u_part = out["total"] - ce_part
    g_ce, g_u = _gradients(model, [ce_part, u_part])
    ratio = (g_u.norm() / g_ce.norm()).item()
    assert ratio > 0.02, f"{method}: its term moves the gradient by {ratio:.2e} of the cross-entropy's"
    logged = {"entropy": "entropy", "pseudo-label": "m:pseudo", "vat": "m:lds", "mean-teacher": "m:consistency"}
    assert float(out[logged[method]].detach()) > 1e-4 * float(
        out["ce"].detach()
    )  # what the study's report checks per run
