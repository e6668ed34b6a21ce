"""Every registered model: shapes, gradients, no NaN, no batch norm, invertible; biases and initialisation."""


import math

import pytest
import torch
import torch.nn as nn

from invlab import SemiSupervisedLoss, create_model, list_models, reconstruct, templates
from invlab.models import TABLE2_MODELS, LocalWinnerTakesAll


def sample_input(model, batch=2):
    if model.input_ndim == 3:
        return torch.randn(batch, 1, model.segment_length)
    return torch.rand(batch, 1, 28, 28)


# -- models: bias and initialisation ---------------------------------------------------
@pytest.mark.parametrize("name", [m for m in list_models() if m != "bird10-cnn"] + ["bird10-cnn"])
def test_no_bias_for_every_model(name):
    kw = {"segment_length": 4608} if name == "bird10-cnn" else {}
    model = create_model(name, bias=False, **kw)
    assert not [n for n, _ in model.named_parameters() if n.endswith("bias")]
    if name.startswith("u") or "ucnn" in name:
        with pytest.raises(ValueError, match="no biases by definition"):
            create_model(name, bias=True)
    elif name != "bird10-cnn":
        assert [n for n, _ in create_model(name).named_parameters() if n.endswith("bias")]


def test_bias_free_net_is_linear_on_its_region():
    """Without biases f(x) = A[x]x exactly: b[x] = 0 (paper eq. 1 with no offset)."""
    model = create_model("smallcnn-mean", bias=False).double()
    x = torch.rand(3, 1, 28, 28, dtype=torch.float64)
    _, b = templates(model, x)
    assert b.abs().max() < 1e-10
    _, b_default = templates(create_model("smallcnn-mean").double(), x)
    assert b_default.abs().max() > 1e-3  # with PyTorch's initialisation the biases give b[x] != 0
    _, b_bias = templates(create_model("smallcnn-mean", init="xavier").double(), x)
    assert b_bias.abs().max() < 1e-10  # Xavier zeroes the biases at initialisation


def test_xavier_init():
    torch.manual_seed(0)
    model = create_model("smallcnn-mean", init="xavier")
    for module in model.modules():
        if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
            fan_in = module.weight[0].numel()
            fan_out = module.weight.shape[0] * module.weight[0, 0].numel()
            bound = math.sqrt(6 / (fan_in + fan_out))
            assert module.weight.abs().max() <= bound
            assert module.weight.abs().max() > 0.9 * bound  # uniform over the whole range
            assert torch.equal(module.bias, torch.zeros_like(module.bias))
    with pytest.raises(ValueError, match="unknown init"):
        create_model("smallcnn-mean", init="he")


def test_registry_holds_the_paper_models():
    assert set(TABLE2_MODELS) | {"bird10-cnn"} == set(list_models())
    assert len(TABLE2_MODELS) == 12


@pytest.mark.parametrize("name", list_models())
def test_model_contract(name):
    model = create_model(name)
    x = sample_input(model)
    logits = model(x)
    assert logits.shape == (2, 10) and torch.isfinite(logits).all()
    assert not any(isinstance(m, (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.LayerNorm))
                   for m in model.modules())
    rec = reconstruct(model, x)
    assert rec.shape == x.shape and torch.isfinite(rec).all()
    y = torch.tensor([3, -1])
    out = SemiSupervisedLoss(0.5, 0.5)(model, x, y, torch.tensor([True, False]))
    out["total"].backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing
    assert sum(p.grad.abs().sum() > 0 for p in model.parameters()) == len(list(model.parameters()))


def test_unknown_model_lists_known_names():
    with pytest.raises(ValueError, match="smallcnn-mean"):
        create_model("smallcnn-average")


def test_bird10_segment_length_and_shapes():
    model = create_model("bird10-cnn", segment_length=8000)
    assert model(torch.randn(3, 1, 8000)).shape == (3, 10)
    with pytest.raises(ValueError, match="too short"):
        create_model("bird10-cnn", segment_length=2000)


def test_channels_and_classes():
    model = create_model("resnet3-16-max", num_classes=4, in_channels=3)
    assert model(torch.rand(2, 3, 16, 16)).shape == (2, 4)


def test_local_winner_takes_all():
    z = torch.tensor([[[1.0], [3.0], [-2.0], [-5.0]]])  # (1, 4, 1): groups (1, 3) and (-2, -5)
    out = LocalWinnerTakesAll(2)(z)
    assert out.flatten().tolist() == [0.0, 3.0, -2.0, 0.0]
    with pytest.raises(ValueError, match="groups"):
        LocalWinnerTakesAll(3)(z)


def test_local_winner_takes_all_on_channels_last_images_keeps_values_and_layout():
    """The channels-last path (the Trainer's layout) groups the same channels as the plain one."""
    z = torch.randn(3, 8, 5, 6)
    plain = LocalWinnerTakesAll(2)(z)
    last = LocalWinnerTakesAll(2)(z.contiguous(memory_format=torch.channels_last))
    assert torch.equal(last, plain) and last.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(plain[:, 0::2] * plain[:, 1::2], torch.zeros_like(plain[:, 0::2]))  # one winner per pair
