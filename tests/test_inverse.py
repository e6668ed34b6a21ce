"""The inverse against an independent oracle: the explicit Jacobian, in float64."""

import pytest
import torch
import torch.nn as nn
from conftest import TinyCNN, tiny_models
from torch.autograd.functional import jacobian

from invlab import create_model, forward_inverse, reconstruct, templates

CASES = tiny_models()
IDS = [c[0] for c in CASES]


def oracle(model, x):
    """Per-sample Jacobians (B, C, *D) from the full batch Jacobian, and its cross-sample part."""
    J = jacobian(model, x)  # (B, C, B, *D)
    B = x.shape[0]
    diag = torch.stack([J[n, :, n] for n in range(B)])  # (B, C, *D)
    off = J.clone()
    for n in range(B):
        off[n, :, n] = 0
    return diag, off


@pytest.mark.parametrize("name,model,x", CASES, ids=IDS)
def test_reconstruct_equals_jacobian_transpose_times_logits(name, model, x):
    model, x = model.double(), x.double()
    diag, off = oracle(model, x)
    assert off.abs().max() == 0  # no sample depends on another one
    f = model(x)  # (B, C)
    expected = torch.einsum("bc,bc...->b...", f, diag)
    rec = reconstruct(model, x)
    assert rec.shape == x.shape
    torch.testing.assert_close(rec, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name,model,x", CASES, ids=IDS)
def test_templates_are_jacobian_rows_and_affine(name, model, x):
    model, x = model.double(), x.double()
    A, b = templates(model, x)
    diag, _ = oracle(model, x)
    assert A.shape == (x.shape[0], 3, *x.shape[1:]) and b.shape == (x.shape[0], 3)
    torch.testing.assert_close(A, diag, rtol=1e-10, atol=1e-12)
    f = model(x)
    torch.testing.assert_close((A * x.unsqueeze(1)).flatten(2).sum(-1) + b, f, rtol=1e-10, atol=1e-10)
    # Exactly affine on the region: a tiny step keeps A and b (same activation pattern).
    d = 1e-7 * torch.randn_like(x)
    torch.testing.assert_close(model(x + d), (A * (x + d).unsqueeze(1)).flatten(2).sum(-1) + b,
                               rtol=1e-9, atol=1e-12)


def test_reconstruct_batch_of_one_matches_batch():
    model = TinyCNN().double()
    x = torch.randn(4, 1, 8, 8, dtype=torch.float64)
    full = reconstruct(model, x)
    single = torch.cat([reconstruct(model, x[i:i + 1]) for i in range(4)])
    torch.testing.assert_close(full, single)


def test_reconstruction_is_differentiable_wrt_parameters():
    model = TinyCNN().double()
    x = torch.randn(2, 1, 8, 8, dtype=torch.float64)
    # Finite differences on one weight, against the autograd gradient of <rec, u>.
    u = torch.randn_like(x)
    w = model.net[0].weight
    loss = (reconstruct(model, x) * u).sum()
    (g,) = torch.autograd.grad(loss, w)
    eps, i = 1e-6, (0, 0, 1, 1)
    with torch.no_grad():
        w[i] += eps
        up = (reconstruct(model, x, create_graph=False) * u).sum()
        w[i] -= 2 * eps
        down = (reconstruct(model, x, create_graph=False) * u).sum()
        w[i] += eps
    assert g.abs().sum() > 0
    torch.testing.assert_close(g[i], (up - down) / (2 * eps), rtol=1e-5, atol=1e-8)


def test_no_graph_under_no_grad():
    model = TinyCNN()
    with torch.no_grad():
        logits, rec = forward_inverse(model, torch.randn(2, 1, 8, 8))
    assert not rec.requires_grad and not logits.requires_grad


@pytest.mark.parametrize("name", ["smallucnn", "uresnet3-16"])
def test_inhibitor_models_have_no_bias(name):
    model = create_model(name).double().eval()
    A, b = templates(model, torch.rand(2, 1, 28, 28, dtype=torch.float64))
    assert A.abs().max() > 0
    assert b.abs().max() < 1e-12  # bias-free and positively homogeneous: f(x) = A[x] x


def test_batchnorm_in_training_mode_is_refused():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(2 * 36, 3))
    x = torch.randn(3, 1, 8, 8)
    with pytest.raises(RuntimeError, match="model.eval"):
        reconstruct(model, x)
    with pytest.raises(RuntimeError, match="batch"):
        templates(model, x)
    model.eval()
    assert reconstruct(model, x).shape == x.shape


@pytest.mark.parametrize("x,match", [
    (torch.zeros(2, 1, 8, 8, dtype=torch.uint8), "floating-point"),
    (torch.zeros(1, 8, 8), "expects 4 dimensions"),
    (torch.zeros(2, 3, 8, 8), "channels"),
    (torch.full((2, 1, 8, 8), float("nan")), "NaN"),
    (torch.full((2, 1, 8, 8), float("inf")), "infinite"),
    (torch.zeros(0, 1, 8, 8), "empty"),
])
def test_bad_inputs_are_refused(x, match):
    with pytest.raises((TypeError, ValueError), match=match):
        reconstruct(TinyCNN(), x)


def test_func_and_autograd_methods_agree_including_parameter_gradients():
    model = TinyCNN().double()
    x = torch.randn(3, 1, 8, 8, dtype=torch.float64)
    grads = {}
    for method in ("autograd", "func"):
        logits, rec = forward_inverse(model, x, method=method)
        loss = (rec - x).pow(2).sum() + logits.pow(2).sum()
        grads[method] = torch.autograd.grad(loss, list(model.parameters()))
    for a, b in zip(grads["autograd"], grads["func"]):
        torch.testing.assert_close(a, b)
    with pytest.raises(ValueError, match="method"):
        forward_inverse(model, x, method="finite-differences")
