"""The inversion step through the explicit transposed pass (invlab.transposed) is the step
autograd takes, only faster: the reconstruction, the loss and every parameter's gradient equal
``torch.autograd.grad(create_graph=True)``'s within 1e-5 relative (float32), on each of invlab's
models and on the per-layer loss (eqs. 11-12); a network it cannot take falls back to autograd,
and the run records which way it computed the inverse."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn as nn

from invlab.inverse import forward_inverse, forward_layer_reconstructions, resolve_method
from invlab.losses import LayerwiseLoss, SemiSupervisedLoss
from invlab.models import create_model, list_models
from invlab.transposed import transposed_pass

TOL = 1e-5


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach().double(), b.detach().double()
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-30))


def loss_and_grads(model, loss, x, y, n_labelled, method):
    loss.method = method
    model.zero_grad(set_to_none=True)
    out = loss(model, x, y, n_labelled)
    out["total"].backward()
    return out, {name: p.grad.clone() for name, p in model.named_parameters()}


@pytest.mark.parametrize("name", list_models())
def test_every_parameter_gradient_equals_autograds_on_every_model(name):
    torch.manual_seed(0)
    model = create_model(name).train()
    if name == "bird10-cnn":
        model.eval()  # its dropout draws masks in training mode: the autograd path then (tested below)
    x = torch.randn(6, *model.input_shape)
    y = torch.arange(6) % 10
    loss = SemiSupervisedLoss(0.7, 0.2, balance=1.0)
    ref, ref_grads = loss_and_grads(model, loss, x, y, 2, "autograd")
    out, grads = loss_and_grads(model, loss, x, y, 2, "transposed")
    assert loss.method_used == "transposed"
    for key in ("total", "reconstruction", "ce", "entropy"):
        assert rel(out[key], ref[key]) < TOL, key
    worst = {k: rel(grads[k], ref_grads[k]) for k in ref_grads}
    assert max(worst.values()) < TOL, worst
    _, rec = forward_inverse(model, x, create_graph=False, method="transposed")
    assert rel(rec, forward_inverse(model, x, create_graph=False, method="autograd")[1]) < TOL


@pytest.mark.parametrize("name", ["smallcnn-max", "smallucnn", "resnet3-16-mean"])
def test_the_per_layer_loss_eqs_11_12_is_exact_through_the_transposed_pass(name):
    torch.manual_seed(0)
    model = create_model(name).train()
    layers = [n for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.AvgPool2d, nn.MaxPool2d))][:2]
    x, y = torch.randn(5, *model.input_shape), torch.arange(5) % 10
    loss = LayerwiseLoss.from_eq10(0.7, 0.2, {layers[0]: 0.05, layers[1]: 0.1})
    ref, ref_grads = loss_and_grads(model, loss, x, y, 2, "autograd")
    out, grads = loss_and_grads(model, loss, x, y, 2, "auto")
    for key in ("total", "reconstruction", *(f"R:{k}" for k in layers)):
        assert rel(out[key], ref[key]) < TOL, key
    worst = {k: rel(grads[k], ref_grads[k]) for k in ref_grads}
    assert max(worst.values()) < TOL, worst
    # and the same layer reconstructions as autograd's backward pass with hooks
    _, fast = forward_layer_reconstructions(model, x, ["input", *layers], create_graph=False, method="auto")
    _, slow = forward_layer_reconstructions(model, x, ["input", *layers], create_graph=False, method="autograd")
    for k in slow:
        assert rel(fast[k][0], slow[k][0]) < TOL and rel(fast[k][1], slow[k][1]) < TOL, k


class Squashed(nn.Module):
    """A network with a layer the transposed pass has no rule for (a sigmoid)."""

    input_ndim, in_channels = 4, 1

    def __init__(self):
        super().__init__()
        self.conv, self.head = nn.Conv2d(1, 3, 3), nn.Linear(3 * 4 * 4, 4)

    def forward(self, x):
        return self.head(torch.sigmoid(self.conv(x)).flatten(1))


def test_a_network_it_cannot_take_falls_back_to_autograd():
    model = Squashed()
    assert transposed_pass(model) is None and resolve_method(model) == "autograd"
    loss = SemiSupervisedLoss(0.7, 0.2)
    out = loss(model, torch.randn(4, 1, 6, 6), torch.arange(4) % 4, 2)
    out["total"].backward()
    assert loss.method_used == "autograd" and all(p.grad is not None for p in model.parameters())
    bird = create_model("bird10-cnn").train()  # dropout drawing masks: autograd
    assert resolve_method(bird) == "autograd" and resolve_method(bird.eval()) == "transposed"
    with pytest.raises(ValueError, match="method must be one of"):
        resolve_method(model, "fast")


def test_the_run_records_the_way_it_computed_the_inverse(tmp_path, task):
    from invlab.train import TrainConfig, train
    from invlab.training.config import run_key

    config = TrainConfig(model="smallcnn-mean", steps=2, eval_every=2, labelled_batch=4, unlabelled_batch=4,
                         device="cpu")
    result = train(config, task, out_dir=tmp_path / "run", progress=False)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert result.inverse_method == metrics["inverse_method"] == "transposed"
    assert metrics["config"]["inverse_method"] == "auto"
    # the way the inverse is computed does not name a run: keys made before stay valid
    assert run_key(config) == run_key(TrainConfig(**{**config.to_dict(), "inverse_method": "autograd"}))
