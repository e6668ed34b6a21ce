"""``invlab export`` and the explicit transposed pass it is built on (invlab.transposed).

The oracle is autograd: ``templates()`` (one backward pass per class, batched), ``reconstruct()``
and the logits. The ONNX graph, run by onnxruntime, must equal them to 1e-5 of their largest
magnitude for every layer type the pass supports and every lesson network, on random inputs,
real test digits, and a blank and a near-blank canvas (max-pooling ties: the graph must send
each window's gradient where PyTorch does).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from invlab.inverse import forward_inverse, reconstruct, templates
from invlab.models import create_model, list_models
from invlab.models.layers import LocalWinnerTakesAll
from invlab.transposed import TransposedPass, UnsupportedLayerError

onnxruntime = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from relu_nets import ReLUSkip  # noqa: E402

from invlab.export import OUTPUTS, run_onnx, to_onnx  # noqa: E402

TOL = 1e-5


def close(a: torch.Tensor, b: torch.Tensor, scale: torch.Tensor | None = None) -> float:
    """max |a - b| over the largest |b| (or over ``scale``'s largest magnitude)."""
    a, b = a.detach().double(), b.detach().double()
    ref = (b if scale is None else scale.detach().double()).abs().max().clamp_min(1e-12)
    return float((a - b).abs().max() / ref)


class Net(nn.Module):
    """A small network around one layer under test: (B, *D) -> logits (B, 4)."""

    def __init__(self, body: nn.Module, shape: tuple[int, ...], head_mean: bool = False):
        super().__init__()
        self.body, self.head_mean, self.input_shape = body, head_mean, shape
        with torch.no_grad():
            h = body(torch.zeros(1, *shape))
        self.classifier = nn.Linear(h.shape[1] if head_mean else h[0].numel(), 4)

    def forward(self, x):
        h = self.body(x)
        h = h.mean(dim=(2, 3)) if self.head_mean else h.flatten(1)  # global average pooling (images)
        return self.classifier(h)


class Residual(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1, self.act, self.conv2 = nn.Conv2d(c, c, 3, padding=1), nn.ReLU(), nn.Conv2d(c, c, 3, padding=1)

    def forward(self, h):
        return h + self.conv2(self.act(self.conv1(h)))


IMAGE, SIGNAL = (2, 9, 11), (2, 37)
LAYERS = {
    "conv2d (stride, padding, dilation)": (
        nn.Sequential(
            nn.Conv2d(2, 4, 3, stride=2, padding=1, dilation=1), nn.ReLU(), nn.Conv2d(4, 4, 2, dilation=2), nn.ReLU()
        ),
        IMAGE,
    ),
    "conv1d (stride, padding)": (nn.Sequential(nn.Conv1d(2, 4, 5, stride=3, padding=2), nn.ReLU()), SIGNAL),
    "linear, leaky relu, flatten": (nn.Sequential(nn.Flatten(), nn.Linear(2 * 9 * 11, 16), nn.LeakyReLU(0.1)), IMAGE),
    "inhibitor (LocalWinnerTakesAll)": (nn.Sequential(nn.Conv2d(2, 6, 3, bias=False), LocalWinnerTakesAll(3)), IMAGE),
    "avgpool2d (odd size, padding)": (
        nn.Sequential(nn.Conv2d(2, 4, 2), nn.ReLU(), nn.AvgPool2d(3, 2, padding=1)),
        IMAGE,
    ),
    "maxpool2d (overlapping windows)": (nn.Sequential(nn.Conv2d(2, 4, 2), nn.ReLU(), nn.MaxPool2d(3, 2)), IMAGE),
    "avgpool1d": (nn.Sequential(nn.Conv1d(2, 4, 3), nn.ReLU(), nn.AvgPool1d(2)), SIGNAL),
    "maxpool1d (overlapping windows)": (nn.Sequential(nn.Conv1d(2, 4, 3), nn.ReLU(), nn.MaxPool1d(4, 2)), SIGNAL),
    "global average pooling, residual sum": (
        nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), Residual(4), nn.ReLU()),
        IMAGE,
        True,
    ),
    "identity, dropout in eval mode": (
        nn.Sequential(nn.Conv2d(2, 4, 3), nn.Identity(), nn.ReLU(), nn.Dropout(0.5)),
        IMAGE,
    ),
}


def check_export(model: nn.Module, path, inputs: dict[str, torch.Tensor], preprocess_kind: str = "none"):
    """ONNX outputs against autograd's on each input (raw, as the graph takes it)."""
    from invlab.data.preprocess import preprocess

    to_onnx(model, path, input_shape=tuple(next(iter(inputs.values())).shape[1:]), preprocess_kind=preprocess_kind)
    for name, x in inputs.items():
        out = run_onnx(path, x)
        assert set(out) == set(OUTPUTS)
        xin = preprocess(x, preprocess_kind)
        A, b = templates(model, xin)  # (1, C, *D), (1, C)
        logits, rec = forward_inverse(model, xin, create_graph=False)
        errors = {"input": close(out["input"], xin[0]), "logits": close(out["logits"], logits[0]),
                  "probabilities": close(out["probabilities"], logits[0].softmax(0)),
                  "templates": close(out["templates"], A[0]), "reconstruction": close(out["reconstruction"], rec[0]),
                  # b[x] is the region's map at 0, computed apart: f = <A, x> + b to rounding (eq. 1)
                  "bias": close(out["bias"], b[0], scale=logits[0]),
                  "eq. 1": close((out["templates"] * out["input"]).flatten(1).sum(1) + out["bias"], out["logits"])}
        assert max(errors.values()) < TOL, (name, errors)


@pytest.mark.parametrize("layer", list(LAYERS))
def test_export_equals_autograd_for_every_supported_layer_type(layer, tmp_path):
    body, shape, *head = LAYERS[layer]
    model = Net(body, shape, head_mean=bool(head)).eval()
    g = torch.Generator().manual_seed(1)
    inputs = {"random": torch.randn(1, *shape, generator=g), "blank": torch.zeros(1, *shape),
              "near-blank": torch.zeros(1, *shape).index_fill_(-1, torch.tensor([3]), 0.01)}
    check_export(model, tmp_path / "net.onnx", inputs)


@pytest.mark.slow
@pytest.mark.parametrize("lesson", ["mnist/smallcnn-mean", "mnist/smallcnn-max", "mnist/smallucnn",
                                    "fashion-mnist/smallcnn-mean"])
def test_every_lesson_network_exports_exactly_on_digits_and_blank_canvases(lesson, tmp_path):
    from invlab.lessons import lesson_model

    dataset, name = lesson.split("/")
    model = lesson_model(name, dataset)
    g = torch.Generator().manual_seed(0)
    stroke = torch.zeros(1, 1, 28, 28)
    stroke[0, 0, 6:22, 13:15] = 1.0  # a drawn "1"
    dot = torch.zeros(1, 1, 28, 28)
    dot[0, 0, 14, 14] = 0.05  # a near-blank canvas: one faint pixel, pooling windows tie almost everywhere
    inputs = {"random": torch.rand(1, 1, 28, 28, generator=g), "a drawn stroke": stroke,
              "blank": torch.zeros(1, 1, 28, 28), "near-blank": dot}
    check_export(model, tmp_path / "lesson.onnx", inputs, preprocess_kind=model.preprocess.kind)


@pytest.mark.slow
def test_lesson_networks_export_exactly_on_real_test_digits(tmp_path):
    from invlab.data import load_mnist
    from invlab.lessons import lesson_model

    model = lesson_model("smallcnn-max")  # max pooling: the layer whose ties matter
    x = load_mnist(labels_per_class=1, seed=0).x_test[:3]
    check_export(model, tmp_path / "max.onnx", {f"test digit {i}": x[i:i + 1] for i in range(3)},
                 preprocess_kind=model.preprocess.kind)


def test_the_transposed_pass_equals_autograd_on_every_registry_model():
    """All 13 models of the registry (resnets, Bird10's 1-D CNN with overlapping max pooling)
    read as a graph and transposed: logits and reconstruction as autograd's."""
    for name in list_models():
        model = create_model(name).eval()
        x = torch.randn(2, *model.input_shape)
        with torch.no_grad():
            logits, rec = TransposedPass(model)(x)
        want = reconstruct(model, x, create_graph=False)
        assert close(rec, want) < TOL, name
        assert close(logits, model(x)) < TOL, name


class Sigmoidal(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.squash = nn.Conv2d(1, 2, 3), nn.Sigmoid()

    def forward(self, x):
        return self.squash(self.conv(x)).flatten(1)


class Gelu(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)

    def forward(self, x):
        return torch.nn.functional.gelu(self.conv(x)).flatten(1)


@pytest.mark.parametrize("model, named", [
    (Sigmoidal(), "'squash' (Sigmoid)"),
    (Gelu(), "'gelu()' (the function gelu)"),
    (nn.Sequential(nn.Conv2d(1, 2, 3), nn.LayerNorm([2, 4, 4]), nn.Flatten()), "'1' (LayerNorm)"),
    (nn.Sequential(nn.Conv2d(1, 2, 3, padding=1, padding_mode="reflect"), nn.Flatten()), "'0' (Conv2d with padding"),
    (nn.Sequential(nn.MaxPool2d(2, return_indices=True), nn.Flatten()), "return_indices=True"),
])
def test_an_unsupported_layer_is_refused_by_name_before_anything_is_written(model, named, tmp_path):
    path = tmp_path / "refused.onnx"
    with pytest.raises(UnsupportedLayerError, match="has no explicit transposed rule") as err:
        to_onnx(model.eval(), path, input_shape=(1, 6, 6))
    assert named in str(err.value) and "supported: convolution" in str(err.value)
    assert not path.exists() and not list(tmp_path.iterdir())


def test_the_cli_exports_a_lesson_network_and_refuses_a_missing_checkpoint(tmp_path, capsys):
    from invlab.cli import main

    out = tmp_path / "lesson.onnx"
    assert main(["export", "--lesson", "smallucnn", "--onnx", str(out)]) == 0
    assert out.stat().st_size > 100_000 and "Explore page" in capsys.readouterr().out
    import onnx

    props = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert props["invlab.dataset"] == "mnist" and props["invlab.preprocess"] == "center-maxabs"
    assert main(["export", str(tmp_path / "missing.pt"), "--onnx", str(tmp_path / "x.onnx")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["export", "--onnx", str(tmp_path / "x.onnx")]) == 2


NETS_PY = '''
import torch
import torch.nn as nn
import torch.nn.functional as F


class Small(nn.Module):
    def __init__(self, num_classes):
        super().__init__()
        self.conv, self.bn = nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4)
        self.fc = nn.Linear(4 * 4 * 4, num_classes)

    def forward(self, x):
        h = F.max_pool2d(F.relu(self.bn(self.conv(x))), 2)
        return self.fc(h.view(h.size(0), -1))


def small(num_classes, input_shape):
    return Small(num_classes)


def three():
    return Small(3)


def swishy(num_classes=3):
    return nn.Sequential(nn.Conv2d(3, 2, 3), nn.SiLU(), nn.Flatten(), nn.LazyLinear(num_classes))
'''


def test_the_cli_exports_a_network_invlab_never_trained(tmp_path, capsys):
    import importlib.util
    import json

    import onnx

    from invlab.cli import main

    nets = tmp_path / "nets.py"
    nets.write_text(NETS_PY)
    spec = importlib.util.spec_from_file_location("nets_under_test", nets)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    torch.manual_seed(3)
    trained = module.small(3, (3, 8, 8))
    trained.bn.running_mean.uniform_(-0.5, 0.5)
    trained.bn.running_var.uniform_(0.5, 1.5)
    torch.save(trained.state_dict(), tmp_path / "small.pt")
    out = tmp_path / "small.onnx"
    args = ["export", "--model-file", f"{nets}:small", "--weights", str(tmp_path / "small.pt"), "--input-shape",
            "3", "8", "8", "--class-names", "cat,dog,bird", "--onnx", str(out)]
    assert main(args) == 0, capsys.readouterr().err
    props = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert json.loads(props["invlab.class_names"]) == ["cat", "dog", "bird"]
    x = torch.rand(1, 3, 8, 8)
    assert close(run_onnx(out, x)["logits"], trained.eval()(x)[0]) < TOL  # the file's weights, not fresh ones
    A, _ = templates(trained, x)
    assert close(run_onnx(out, x)["templates"], A[0]) < TOL

    def refused(extra_args, message, target="refused.onnx"):
        capsys.readouterr()
        assert main(extra_args + ["--onnx", str(tmp_path / target)]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
        assert not (tmp_path / target).exists()

    torch.save(module.small(5, (3, 8, 8)).state_dict(), tmp_path / "five.pt")
    base = ["export", "--model-file", f"{nets}:small", "--input-shape", "3", "8", "8", "--class-names", "a,b,c"]
    refused(base + ["--weights", str(tmp_path / "five.pt")], "key 'fc.weight' has shape (5, 64) in the file")
    torch.save({"conv.weight": torch.zeros(4, 3, 3, 3)}, tmp_path / "partial.pt")
    refused(base + ["--weights", str(tmp_path / "partial.pt")], "key 'conv.bias' of the network is missing")
    (tmp_path / "notes.pt").write_text("not a tensor file")
    refused(base + ["--weights", str(tmp_path / "notes.pt")], "not a state dict")
    refused(["export", "--model-file", f"{nets}:swishy", "--input-shape", "3", "8", "8"], "(SiLU)")
    refused(["export", "--model-file", f"{nets}:small", "--input-shape", "3", "8", "8"], "give --class-names")
    refused(["export", "--model-file", f"{nets}:three", "--input-shape", "3", "8", "8", "--class-names", "a,b"],
            "2 names for a network of 3 classes")
    refused(["export", "--model-file", f"{nets}:small", "--class-names", "a,b,c"], "--input-shape C H W")


@pytest.mark.parametrize("preprocess_kind", ["none", "center-maxabs"])
def test_the_segment_walking_graph_gives_the_pieces_pytorch_walks(preprocess_kind, tmp_path):
    """invlab export --regions: the graph the Explore page walks a segment with (SegmentWalk), in onnxruntime,
    against invlab.regions.segment (float64) on the preprocessed end points: at points of the segment, the
    logits and their slope are the piece's affine map, ahead/behind reach the piece's ends, and the pattern
    keys are equal within a piece and differ across a break."""
    import base64

    import numpy as np
    import onnx
    import onnxruntime as ort

    from invlab.data.preprocess import preprocess
    from invlab.export import REGIONS_BATCH
    from invlab.regions import plane, segment

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 13 * 13, 16),
                          nn.ReLU(), nn.Linear(16, 5)).eval()
    path = to_onnx(model, tmp_path / "m.onnx", input_shape=(1, 28, 28), preprocess_kind=preprocess_kind, regions=True)
    props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert int(props["invlab.regions_batch"]) == REGIONS_BATCH
    walk = ort.InferenceSession(base64.b64decode(props["invlab.regions"]), providers=["CPUExecutionProvider"])
    x0, x1 = torch.rand(1, 1, 28, 28), torch.rand(1, 1, 28, 28)
    p0, p1 = preprocess(x0, preprocess_kind), preprocess(x1, preprocess_kind)
    seg = segment(model, p0, p1)
    assert seg.pieces > 10
    # the points: the middle of each of the first pieces
    mids = ((seg.starts + seg.ends) / 2)[:REGIONS_BATCH]
    t = np.zeros(REGIONS_BATCH, dtype=np.float32)
    t[:len(mids)] = mids.numpy()
    zero = np.zeros(REGIONS_BATCH, dtype=np.float32)
    feeds = {"x0": x0.numpy(), "x1": x1.numpy(), "x2": x0.numpy(), "u": zero}
    logits, slope, ahead, behind, key = walk.run(None, {**feeds, "t": t})
    n = len(mids)
    piece = seg.logits[:n]
    scale = float(seg.logits[:, 0].abs().max())
    assert np.allclose(slope[:n], piece[:, 1].numpy(), atol=1e-4 * scale)
    assert np.allclose(logits[:n], (piece[:, 0] + mids[:, None] * piece[:, 1]).numpy(), atol=1e-4 * scale)
    assert np.allclose(np.minimum(t[:n] + ahead[:n], 1), seg.ends[:n].numpy(), atol=1e-5)  # the segment is [0, 1]
    assert np.allclose(np.maximum(t[:n] - behind[:n], 0), seg.starts[:n].numpy(), atol=1e-5)
    assert key.dtype == np.int64 and len({tuple(k) for k in key[:n]}) == n  # one key per piece
    same = walk.run(None, {**feeds, "t": np.full(REGIONS_BATCH, float(mids[3]) + 1e-6, dtype=np.float32)})[4]
    assert (same == key[3]).all()
    # the plane through a third input: the keys are the patterns' (invlab.regions.plane's ids), the prediction
    x2 = torch.rand(1, 1, 28, 28)
    p2 = preprocess(x2, preprocess_kind)
    pl = plane(model, p0, p1, p2, resolution=8)
    a, b = np.meshgrid(pl.a.numpy(), pl.b.numpy())  # (rows b, columns a)
    keys, predicted = [], []
    for k in range(0, 64, REGIONS_BATCH):
        out = walk.run(None, {"x0": x0.numpy(), "x1": x1.numpy(), "x2": x2.numpy(),
                              "t": a.flatten()[k:k + REGIONS_BATCH].astype(np.float32),
                              "u": b.flatten()[k:k + REGIONS_BATCH].astype(np.float32)})
        keys += [tuple(v) for v in out[4]]
        predicted += out[0].argmax(1).tolist()
    ids = pl.region_ids.flatten().tolist()
    assert all((ids[i] == ids[j]) == (keys[i] == keys[j]) for i in range(64) for j in range(64))
    assert predicted == pl.prediction.flatten().tolist()


def test_the_exporters_kept_table_changes_no_byte_and_is_given_back(tmp_path, monkeypatch):
    """``to_onnx`` keeps torch.onnx's table of ATen -> ONNX functions from one export to the next
    (``_torchlib_tables_kept``, a sixth of an export's time): the file written is byte for byte the one
    torch's own per-call table gives, and torch's method is back in place after each export."""
    import contextlib

    from torch.onnx._internal.exporter import _registration

    import invlab.export as export

    torch_own = _registration.ONNXRegistry.__dict__["from_torchlib"]
    net = nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(27, 4)).eval()
    kept = [to_onnx(net, tmp_path / f"kept{i}.onnx", input_shape=(1, 8, 8)) for i in range(2)]
    assert _registration.ONNXRegistry.__dict__["from_torchlib"] is torch_own and export._TORCHLIB_TABLES
    monkeypatch.setattr(export, "_torchlib_tables_kept", contextlib.nullcontext)
    plain = to_onnx(net, tmp_path / "plain.onnx", input_shape=(1, 8, 8))
    assert kept[0].read_bytes() == kept[1].read_bytes() == plain.read_bytes()


def _sweep(points, tail, x0, x1, levels, batch):
    """The Explore page's sweep (docs/site/explore/regions.js) in numpy, on the exported graphs: the breaks
    level by level from the signs of each level's inputs at consecutive known points, and the logits at the
    last level's breaks from the cut interpolated there (the tail graph). Returns the breaks and the logits at
    0, the breaks and 1."""
    import numpy as np

    def run(ts):
        outs = []
        for k in range(0, len(ts), batch):
            t = np.asarray(ts[k:k + batch], np.float32)
            t = np.concatenate([t, np.full(batch - len(t), t[-1], np.float32)])
            outs.append([o[:min(batch, len(ts) - k)] for o in points.run(None, {"x0": x0, "x1": x1, "t": t})])
        return [np.concatenate(parts) for parts in zip(*outs)]

    ts = np.array([0.0, 1.0])
    for level in range(levels):
        logits, *values, cut = run(ts)
        z = values[level].astype(np.float64)
        i, j = np.nonzero((z[:-1] > 0) != (z[1:] > 0))
        w = z[i, j] / (z[i, j] - z[i + 1, j])
        found = ts[i] + w * (ts[i + 1] - ts[i])
        if level + 1 < levels:
            ts = np.unique(np.concatenate([ts, found]))
            continue
        order = np.argsort(found)
        found, i, w = found[order], i[order], w[order]
        cuts = (cut[i] + w[:, None] * (cut[i + 1] - cut[i])).astype(np.float32)
        at = np.concatenate([tail.run(None, {"cut": np.concatenate([c, np.repeat(c[-1:], batch - len(c), 0)])})[0]
                             [:len(c)] for c in np.array_split(cuts, max(1, -(-len(cuts) // batch)))])
        every = np.concatenate([ts, found])
        order = np.argsort(every)
        return every[order][1:-1], np.concatenate([logits, at])[order]


def test_the_sweeps_graphs_give_the_breaks_pytorch_walks(tmp_path):
    """invlab export --regions on a ReLU network also carries the sweep's graphs (SegmentPoints, SegmentTail):
    on a network with a skip connection (the lesson networks: the browser test), run in onnxruntime as the
    page runs them, they give the breaks invlab.regions.segment walks in float64
    (as many, each within 1e-4 in t), and logits at them that the network itself (a plain call of the
    module) gives there; on a network with max pooling the file carries none (the page walks instead)."""
    import base64

    import numpy as np
    import onnx
    import onnxruntime as ort

    from invlab.export import REGIONS_BATCH, SegmentPoints, sweep_graphs
    from invlab.regions import segment

    torch.manual_seed(0)
    model, shape = ReLUSkip(side=8).eval(), (1, 8, 8)
    points = SegmentPoints(model, "none")
    assert len(points.levels) == 2 and len(points.cut) == 2  # the second ReLU's input and the first's output
    path = to_onnx(model, tmp_path / "m.onnx", input_shape=shape, preprocess_kind="none", regions=True)
    props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    session = {k: ort.InferenceSession(base64.b64decode(props[f"invlab.regions_{k}"]),
                                       providers=["CPUExecutionProvider"]) for k in ("points", "tail")}
    x0, x1 = torch.rand(1, *shape), torch.rand(1, *shape)
    breaks, logits = _sweep(session["points"], session["tail"], x0.numpy(), x1.numpy(),
                            int(props["invlab.regions_levels"]), REGIONS_BATCH)
    reference = segment(model, x0, x1).breaks.numpy()
    assert len(reference) > 20
    unresolved = int((np.diff(reference) < 2e-6).sum())
    assert len(reference) - unresolved <= len(breaks) <= len(reference), (len(breaks), len(reference))
    j = np.clip(np.searchsorted(reference, breaks), 1, len(reference) - 1)
    assert (np.minimum(abs(reference[j] - breaks), abs(reference[j - 1] - breaks)) < 1e-4).all()
    t = torch.from_numpy(np.concatenate([[0.0], breaks, [1.0]])).float()
    with torch.no_grad():
        direct = model(x0 + t.view(-1, 1, 1, 1) * (x1 - x0)).numpy()
    assert np.allclose(logits, direct, atol=1e-4 * np.abs(direct).max())
    # max pooling: a window's winner changes where two inputs cross, not where one crosses 0
    pooled = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(18, 3)).eval()
    with pytest.raises(ValueError, match="does not change state where one unit's input crosses 0"):
        SegmentPoints(pooled)
    with pytest.raises(ValueError, match="leaky ReLU"):  # a slope of 1 on both sides never changes
        SegmentPoints(nn.Sequential(nn.Linear(4, 4), nn.LeakyReLU(1.0), nn.Linear(4, 2)))
    assert len(SegmentPoints(nn.Sequential(nn.Linear(4, 4), nn.LeakyReLU(0.1), nn.Linear(4, 2))).levels) == 1
    deep = nn.Sequential(nn.Flatten(), *[m for _ in range(4) for m in (nn.Linear(64, 64), nn.ReLU())], nn.Linear(64, 2))
    assert len(SegmentPoints(deep).levels) == 4 and sweep_graphs(deep, (1, 8, 8)) is None  # walked: cheaper
    assert sweep_graphs(pooled, (1, 8, 8)) is None  # to_onnx(..., regions=True) then carries the walk alone
