"""Per-layer reconstruction (the paper's eqs. 11-12): every layer's A^T f at once, against separate VJPs."""

from __future__ import annotations

import pytest
import torch
from conftest import TinyCNN, separate_vjp, tiny_models

from invlab.inverse import forward_layer_reconstructions, layer_reconstructions, reconstruct, reconstructable_layers
from invlab.losses import reconstruction_loss


@pytest.mark.parametrize("name,model,x", [t for t in tiny_models() if t[0] in ("cnn-max", "cnn-mean", "resnet")])
def test_layer_reconstructions_match_separate_vjps(name, model, x):
    model, x = model.double(), x.double()
    layers = [n for n in reconstructable_layers(model) if n != "input"]
    recs = layer_reconstructions(model, x, ["input", *layers], create_graph=False)
    torch.testing.assert_close(recs["input"][0], reconstruct(model, x, create_graph=False))
    torch.testing.assert_close(recs["input"][1], x)
    for layer in layers:
        ref_rec, ref_z = separate_vjp(model, x, layer)
        torch.testing.assert_close(recs[layer][0], ref_rec, msg=f"rec of {layer}")
        torch.testing.assert_close(recs[layer][1], ref_z, msg=f"z of {layer}")
        assert recs[layer][0].shape == ref_z.shape


def test_layer_reconstruction_of_a_bias_free_net_is_AtAz():
    """Without biases above z, f = A z exactly, so rec = A^T A z (A = df/dz)."""
    torch.manual_seed(1)
    net = torch.nn.Sequential(
        torch.nn.Linear(6, 5, bias=False), torch.nn.ReLU(), torch.nn.Linear(5, 3, bias=False)
    ).double()
    net.input_ndim = None
    x = torch.randn(4, 6, dtype=torch.float64)
    rec, z = layer_reconstructions(net, x, ["1"], create_graph=False)["1"]
    A = net[2].weight  # df/dz for z the ReLU's output
    torch.testing.assert_close(rec, z @ A.T @ A)


def test_layer_reconstructions_are_differentiable_in_one_backward_pass():
    model, x = TinyCNN("mean").double(), torch.randn(3, 1, 8, 8, dtype=torch.float64)
    calls = {"n": 0}
    hook = model.net[0].register_full_backward_hook(lambda *a: calls.__setitem__("n", calls["n"] + 1))
    logits, recs = forward_layer_reconstructions(model, x, ["input", "net.2", "net.4"], create_graph=True,
                                                 method="autograd")
    hook.remove()
    assert calls["n"] == 1  # the first layer was back-propagated through once, for all three
    _, fast = forward_layer_reconstructions(model, x, ["input", "net.2", "net.4"], create_graph=True)  # transposed
    for name, (rec, z) in recs.items():
        torch.testing.assert_close(fast[name][0], rec)
        torch.testing.assert_close(fast[name][1], z)
    loss = sum(reconstruction_loss(rec, z) for rec, z in recs.values())
    grads = torch.autograd.grad(loss, list(model.parameters()))
    assert all(torch.isfinite(g).all() and g.abs().sum() > 0 for g in grads)


def test_layer_reconstructions_refuse_unknown_and_repeated_layers():
    model, x = TinyCNN("mean"), torch.randn(2, 1, 8, 8)
    with pytest.raises(ValueError, match="unknown layer.*available: input, net"):
        layer_reconstructions(model, x, ["net.99"])
    with pytest.raises(ValueError, match="layers is empty"):
        layer_reconstructions(model, x, [])
    relu = torch.nn.ReLU()
    twice = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 8), relu, torch.nn.Linear(8, 8), relu,
                                torch.nn.Linear(8, 3))
    with pytest.raises(RuntimeError, match="ran twice"):
        layer_reconstructions(twice, x, ["2"])
