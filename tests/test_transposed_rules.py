"""Networks as people write them, through the explicit transposed pass (invlab.transposed) and
``invlab export``: functional forwards (``F.relu``, ``x.relu()``, ``F.max_pool2d``, ``x.view``, ``3.0 * h``),
batch norm in eval mode, every pooling option, channel shuffles, chunks, concatenations, residual sums;
and torchvision's classifiers.

The oracle is plain autograd on the user's own module (one vector-Jacobian product per class), never
invlab's own functions: templates A[x], bias b[x] = f(x) - <A[x], x>, and the reconstruction
A[x]^T f(x), on random and blank inputs, to 1e-5 of their largest magnitude (1e-4 through the deep
torchvision networks), in the PyTorch pass and in the exported ONNX graph. Anything that is not
piecewise affine is refused by name before any work.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from autograd_reference import autograd_view, randomise_batchnorm

from invlab.inverse import forward_inverse
from invlab.losses import SemiSupervisedLoss
from invlab.transposed import Rule, TransposedPass, UnsupportedLayerError, register, supported_markdown

TOL = 1e-5


def rel(a: torch.Tensor, b: torch.Tensor, scale: torch.Tensor | None = None) -> float:
    a, b = a.detach().double(), b.detach().double()
    ref = (b if scale is None else scale.detach().double()).abs().max().clamp_min(1e-12)
    return float((a - b).abs().max() / ref)


def pass_view(tp: TransposedPass, x: torch.Tensor):
    with torch.no_grad():
        logits, states = tp.forward(x)
        A = tp.transpose(torch.eye(logits.shape[1]), states)
        return logits[0], A, tp.region_bias(states, x.shape)[0], tp.transpose(logits, states)[0]


def assert_exact(model: nn.Module, x: torch.Tensor, tol: float = TOL):
    f, A, b, rec = autograd_view(model, x)
    pf, pA, pb, prec = pass_view(TransposedPass(model), x)
    errors = {"logits": rel(pf, f), "templates": rel(pA, A), "bias": rel(pb, b, scale=f), "reconstruction":
              rel(prec, rec)}
    assert max(errors.values()) < tol, errors


# -- networks written the way tutorials and papers write them ------------------------------------


class Tutorial(nn.Module):
    """Functional forwards: F.relu, torch.relu, x.relu_(), F.max_pool2d, F.avg_pool2d with ceil_mode and
    count_include_pad=False, padding='same' with an even kernel, no bias, x.view(x.size(0), -1), 3.0 * h."""

    input_shape = (1, 12, 12)

    def __init__(self):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(1, 4, 3), nn.Conv2d(4, 6, 2, padding="same", bias=False)
        self.fc = nn.Linear(6 * 3 * 3, 5)

    def forward(self, x):
        h = F.max_pool2d(F.relu(self.conv1(x)), 2)  # (B, 4, 5, 5)
        h = torch.relu(self.conv2(h).relu_() - 0.1)
        h = F.avg_pool2d(h, 2, padding=1, ceil_mode=True, count_include_pad=False)  # (B, 6, 3, 3)
        h = 3.0 * h.view(h.size(0), -1)
        return self.fc(h) / 2


class Shuffle(nn.Module):
    """Colour input; grouped convolution, eval-mode BatchNorm2d, ReLU6, ShuffleNet's channel shuffle
    (size, view, transpose, contiguous), chunk, cat, leaky ReLU, PReLU, adaptive average pooling to a
    size that does not divide the input, Dropout and Identity."""

    input_shape = (3, 10, 10)

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3, groups=3, stride=2, padding=1)
        self.bn, self.act = nn.BatchNorm2d(6), nn.ReLU6(inplace=True)
        self.prelu = nn.PReLU(6)
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(0.3), nn.Linear(6 * 3 * 2, 7), nn.Identity())

    def forward(self, x):
        h = self.act(self.bn(self.conv(x)))  # (B, 6, 5, 5)
        b, c, hh, ww = h.size()
        h = torch.transpose(h.view(b, 2, c // 2, hh, ww), 1, 2).contiguous().view(b, -1, hh, ww)
        left, right = h.chunk(2, dim=1)
        h = torch.cat([right * 0.5, F.leaky_relu(left, 0.2)], dim=1)
        h = F.adaptive_avg_pool2d(self.prelu(h), (3, 2))
        return self.head(h)


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(c, c, 3, padding=1), nn.Conv2d(c, c, 3, padding=2, dilation=2)

    def forward(self, x):
        out = self.conv2(F.relu(self.conv1(x)))
        out += x
        return F.hardtanh(out - 0.1 * x, -0.5, 2.0)


class Residual(nn.Module):
    """Residual sums (+, +=, -), Hardtanh, torch.clamp, max pooling with ceil_mode and padding, adaptive
    max pooling, x.mean(dim=...), a dense layer followed by eval-mode BatchNorm1d."""

    input_shape = (3, 9, 9)

    def __init__(self):
        super().__init__()
        self.stem, self.block = nn.Conv2d(3, 4, 3, stride=2), Block(4)
        self.pool, self.adaptive = nn.MaxPool2d(3, 2, padding=1, ceil_mode=True), nn.AdaptiveMaxPool2d((2, 1))
        self.fc1, self.bn, self.fc2 = nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Linear(8, 3)

    def forward(self, x):
        h = self.block(self.stem(x))  # (B, 4, 4, 4)
        h = torch.clamp(self.adaptive(self.pool(h)), min=-1.0, max=1.5).mean(dim=(2, 3))
        return self.fc2(F.relu(self.bn(self.fc1(h))))


class Signal(nn.Module):
    """1-D: strided and dilated convolution, F.relu, F.max_pool1d with ceil_mode, AvgPool1d with padding
    and count_include_pad=False, AdaptiveAvgPool1d, unsqueeze/squeeze, torch.flatten."""

    input_shape = (2, 37)

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(2, 4, 5, stride=2, dilation=2)
        self.avg, self.adaptive = nn.AvgPool1d(3, 2, padding=1, count_include_pad=False), nn.AdaptiveAvgPool1d(3)
        self.fc = nn.Linear(12, 4)

    def forward(self, x):
        h = F.max_pool1d(F.relu(self.conv(x)), 3, 2, ceil_mode=True)
        h = self.adaptive(self.avg(h)).unsqueeze(2).squeeze(2)
        return self.fc(torch.flatten(h, 1))


class Plumbing(nn.Module):
    """Nested Sequential, split with indexing, permute to channels-last and a dense layer on the last
    axis, torch.sum over non-batch axes, AvgPool2d with divisor_override, -x."""

    input_shape = (4, 6, 6)

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.ReLU()), nn.Identity())
        self.mix = nn.Linear(3, 5)
        self.pool = nn.AvgPool2d(2, divisor_override=3)
        self.out = nn.Linear(5 * 3, 6)

    def forward(self, x):
        h = self.body(x)
        parts = h.split([1, 3], dim=1)
        h = torch.permute(parts[1], (0, 2, 3, 1))  # (B, 6, 6, 3)
        h = torch.relu(self.mix(h)).permute(0, 3, 1, 2)  # (B, 5, 6, 6)
        h = -torch.sum(self.pool(h), dim=3) + parts[0].mean(dim=(1, 2, 3), keepdim=True).squeeze(3)
        return self.out(h.reshape(h.shape[0], -1))


NETWORKS = {"tutorial": Tutorial, "shuffle": Shuffle, "residual": Residual, "signal": Signal, "plumbing": Plumbing}


def build(name: str) -> nn.Module:
    torch.manual_seed(0)
    return randomise_batchnorm(NETWORKS[name]()).eval()


# Tutorial's padding="same" with an even kernel (PyTorch pads asymmetrically, and says so)
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths")


@pytest.mark.parametrize("name", list(NETWORKS))
def test_networks_as_people_write_them_are_exact_against_autograd(name):
    model = build(name)
    torch.manual_seed(1)
    assert_exact(model, torch.randn(1, *model.input_shape))
    assert_exact(model, torch.zeros(1, *model.input_shape))  # blank: pooling ties, biases alone


@pytest.mark.parametrize("name", list(NETWORKS))
def test_the_training_step_through_them_has_autograds_gradients(name):
    model = build(name)
    x, y = torch.randn(6, *model.input_shape), torch.arange(6) % 3
    grads = {}
    for method in ("autograd", "transposed"):
        model.zero_grad(set_to_none=True)
        out = SemiSupervisedLoss(0.7, 0.2, method=method)(model, x, y, 2)
        out["total"].backward()
        grads[method] = (out["total"].detach(), {k: p.grad.clone() for k, p in model.named_parameters()})
    assert rel(grads["transposed"][0], grads["autograd"][0]) < TOL
    worst = {k: rel(g, grads["autograd"][1][k]) for k, g in grads["transposed"][1].items()}
    assert max(worst.values()) < TOL, worst


@pytest.mark.parametrize("name", list(NETWORKS))
def test_they_export_exactly(name, tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from invlab.export import run_onnx, to_onnx

    model = build(name)
    path = to_onnx(model, tmp_path / f"{name}.onnx", input_shape=model.input_shape)
    for x in (torch.randn(1, *model.input_shape), torch.zeros(1, *model.input_shape)):
        f, A, b, rec = autograd_view(model, x)
        out = run_onnx(path, x)
        errors = {"logits": rel(out["logits"], f), "templates": rel(out["templates"], A),
                  "bias": rel(out["bias"], b, scale=f), "reconstruction": rel(out["reconstruction"], rec)}
        assert max(errors.values()) < TOL, errors


# -- refusals ------------------------------------------------------------------------------------


class Wrapped(nn.Module):
    """A convolution, then ``act`` (a module or a function), then a dense head."""

    def __init__(self, act):
        super().__init__()
        self.conv, self.act, self.fc = nn.Conv2d(1, 4, 3), act, nn.Linear(4 * 4 * 4, 3)

    def forward(self, x):
        return self.fc(self.act(self.conv(x)).flatten(1))


class Gated(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.fc = nn.Conv2d(1, 4, 3), nn.Linear(4 * 4 * 4, 3)

    def forward(self, x):
        h = self.conv(x)
        return self.fc((h * F.relu(h)).flatten(1))  # a product of two tensors that depend on x


@pytest.mark.parametrize("model, named", [
    (Wrapped(nn.SiLU()), "layer 'act' (SiLU)"),
    (Wrapped(nn.GELU()), "layer 'act' (GELU)"),
    (Wrapped(nn.Sigmoid()), "layer 'act' (Sigmoid)"),
    (Wrapped(nn.Hardswish()), "layer 'act' (Hardswish)"),
    (Wrapped(nn.LayerNorm([4, 4, 4])), "layer 'act' (LayerNorm)"),
    (Wrapped(lambda h: torch.softmax(h, dim=1)), "(the function softmax)"),
    (Gated(), "a product of two tensors that both depend on the input"),
    (Wrapped(lambda h: F.dropout(h, 0.5, training=True)), "training=True"),
    (Wrapped(lambda h: F.dropout(h, 0.5)), "training=True"),  # F.dropout's default draws a mask
])
def test_what_is_not_piecewise_affine_is_refused_by_name(model, named):
    with pytest.raises(UnsupportedLayerError, match="has no explicit transposed rule") as err:
        TransposedPass(model)
    assert named in str(err.value) and "supported: convolution" in str(err.value)
    # method="transposed" says the same, never a TypeError; "auto" falls back to autograd
    x = torch.randn(2, 1, 6, 6)
    with pytest.raises(UnsupportedLayerError, match=named.replace("(", r"\(").replace(")", r"\)")):
        forward_inverse(model, x, method="transposed")
    loss = SemiSupervisedLoss(0.7, 0.2)
    loss(model, x, torch.tensor([0, 1]), 1)["total"].backward()
    assert loss.method_used == "autograd"


def test_batchnorm_in_training_mode_falls_back_and_explicit_transposed_is_refused():
    model = build("shuffle").train()
    x = torch.randn(3, *model.input_shape)
    with pytest.raises(UnsupportedLayerError, match="training mode"):
        TransposedPass(model).forward(x)
    from invlab.inverse import resolve_method

    assert resolve_method(model) == "autograd" and resolve_method(model.eval()) == "transposed"


# -- a layer of your own: one register() call ----------------------------------------------------


class Fold(nn.Module):
    """|x|: piecewise linear, a layer invlab has no rule for until one is registered."""

    def forward(self, x):
        return x.abs()


class FoldRule(Rule):
    kind, summary, nonlinear = "fold", "|x| (a test's own layer)", True

    def forward(self, step, xs, args, kwargs, tp):
        sign = torch.where(xs[0] >= 0, 1.0, -1.0).to(xs[0].dtype)
        return xs[0] * sign, sign

    def transpose(self, step, g, state, tp):
        return [g * state]

    def frozen(self, step, xs, args, kwargs, state, bias, tp):
        return xs[0] * state

    def pattern(self, state):
        return state > 0


def test_a_layer_of_your_own_is_one_register_call():
    model = Wrapped(Fold()).eval()
    with pytest.raises(UnsupportedLayerError, match=r"layer 'act: x.abs\(\)' \(the method abs\)"):
        TransposedPass(model)
    register(FoldRule(), modules=(Fold,))
    torch.manual_seed(0)
    assert_exact(model, torch.randn(1, 1, 6, 6))
    assert "| fold | `Fold` |" in supported_markdown()


# -- torchvision's classifiers -------------------------------------------------------------------

ZOO = ["resnet18", "mobilenet_v2", "shufflenet_v2_x0_5", "squeezenet1_1", "densenet121", "googlenet"]


@pytest.mark.parametrize("name", ZOO)
@pytest.mark.filterwarnings("ignore:The default weight initialization of GoogleNet")
def test_torchvision_classifiers_are_exact(name):
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    model = randomise_batchnorm(torchvision.models.get_model(name, num_classes=10)).eval()
    torch.manual_seed(1)
    assert_exact(model, torch.rand(1, 3, 64, 64), tol=1e-4)


def test_resnet18_training_step_through_the_pass_has_autograds_gradients():
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    model = randomise_batchnorm(torchvision.models.resnet18(num_classes=10)).eval()
    x, y = torch.rand(4, 3, 32, 32), torch.arange(4)
    grads = {}
    for method in ("autograd", "transposed"):
        model.zero_grad(set_to_none=True)
        loss = SemiSupervisedLoss(0.7, 0.2, method=method)
        out = loss(model, x, y, 2)
        out["total"].backward()
        assert loss.method_used == method
        grads[method] = {k: p.grad.clone() for k, p in model.named_parameters()}
    worst = {k: rel(g, grads["autograd"][k]) for k, g in grads["transposed"].items()}
    assert max(worst.values()) < TOL, max(worst.items(), key=lambda kv: kv[1])


def test_a_colour_network_exports_its_top_k_classes(tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    import onnx

    from invlab.export import OUTPUTS, TOP_K_OUTPUT, run_onnx, to_onnx

    # a colour classifier with torchvision's ResNet stem (conv, batch norm, ReLU, max pooling) and head (global
    # average pooling, linear); the whole ResNet-18 is exported in notebook 10 and by python -m benchmarks.paper.zoo
    torch.manual_seed(0)
    model = randomise_batchnorm(nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(3, 2, 1),
        nn.Conv2d(8, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))).eval()
    path = to_onnx(model, tmp_path / "colour.onnx", input_shape=(3, 32, 32), top_k=3,
                   metadata={"invlab.class_names": "[]"})
    x = torch.rand(1, 3, 32, 32)
    out = run_onnx(path, x)
    assert list(out) == [*OUTPUTS, TOP_K_OUTPUT]
    f, A, b, rec = autograd_view(model, x)
    top = torch.topk(f.softmax(0), 3).indices
    assert torch.equal(out["classes"], top) and out["templates"].shape == (3, 3, 32, 32)
    assert rel(out["templates"], A[top]) < 1e-4 and rel(out["reconstruction"], rec) < 1e-4
    assert rel(out["bias"], b, scale=f) < 1e-4
    props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert props["invlab.input_shape"] == "[3, 32, 32]" and TOP_K_OUTPUT in props["invlab.outputs"]
    with pytest.raises(ValueError, match="top_k must be a positive integer"):
        to_onnx(model, tmp_path / "bad.onnx", input_shape=(3, 32, 32), top_k=0)
    assert not (tmp_path / "bad.onnx").exists()


def test_the_guide_lists_what_the_rules_take():
    from pathlib import Path

    from invlab.transposed.kinds import Conv  # noqa: F401 (the built-in rules, without the test's own)
    from invlab.transposed.rules import _REGISTRY

    text = (Path(__file__).parents[1] / "docs/site/your_data.md").read_text()
    block = text.split("<!-- supported-layers:begin -->\n")[1].split("\n<!-- supported-layers:end -->")[0]
    builtin = supported_markdown().splitlines()
    own = {f"| {e.rule.kind} |" for e in _REGISTRY if e.rule.__module__ != "invlab.transposed.kinds"}
    expected = "\n".join(line for line in builtin if not any(line.startswith(k) for k in own))
    assert block == expected, ("docs/site/your_data.md's table differs from the rules: paste "
                               "invlab.transposed.supported_markdown() between its supported-layers markers")
