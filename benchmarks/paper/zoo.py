"""torchvision's classifiers through invlab's exact spline view: every classifier in
``torchvision.models`` built with ``num_classes=10`` (random weights, batch norm's running statistics
and affine parameters made non-trivial, eval mode) at a 3×64×64 input, either exported by
``invlab export``'s ``to_onnx`` or refused naming its first op that is not piecewise affine.

For each exported network: the largest difference over the largest magnitude (bias: over the
logits') of the logits, the templates A[x], the bias b[x] and the reconstruction A[x]ᵀf(x), from
the explicit transposed pass in PyTorch and from the ONNX graph in onnxruntime, against plain
autograd on torchvision's own module (one vector-Jacobian product per class); the export's time,
the file's size and onnxruntime's time for one example (median of 5, one thread).

    python -m benchmarks.paper.zoo                     # results/zoo.{json,md}; resumes a partial run
    python -m benchmarks.paper.zoo --models resnet18 vgg11_bn
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import warnings
from pathlib import Path

SHAPE = (3, 64, 64)


def randomise_batchnorm(model, seed: int = 1):
    """Running statistics and affine parameters drawn away from the identity (fresh ones are 0/1)."""
    import torch
    import torch.nn as nn

    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.running_mean is not None:
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.2)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            if m.affine:
                m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.2)
    return model


def autograd_view(model, x):
    """f (C,), A (C, *D), b (C,), A^T f (*D) by plain autograd on the module, one VJP per class."""
    import torch

    xg = x.clone().requires_grad_(True)
    f = model(xg)[0]
    A = torch.stack([torch.autograd.grad(f[c], xg, retain_graph=True)[0][0] for c in range(f.numel())])
    f = f.detach()
    return {"logits": f, "templates": A, "bias": f - (A * x[0]).flatten(1).sum(1),
            "reconstruction": (f.view(-1, 1, 1, 1) * A).sum(0)}


def errors(got: dict, ref: dict) -> dict:
    def rel(name):
        scale = ref["logits"] if name == "bias" else ref[name]
        return float((got[name].double() - ref[name].double()).abs().max() / scale.double().abs().max())

    return {name: rel(name) for name in ("logits", "templates", "bias", "reconstruction")}


def measure(name: str, tmp: Path) -> dict:
    import torch
    import torchvision

    from invlab.export import run_onnx, to_onnx
    from invlab.transposed import TransposedPass, UnsupportedLayerError

    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # GoogLeNet's and Inception's notes on their initialisation
        try:
            model = randomise_batchnorm(torchvision.models.get_model(name, num_classes=10)).eval()
        except Exception as err:  # noqa: BLE001 (a builder's own refusal, whatever its type)
            return {"status": "does not build", "reason": str(err).splitlines()[0]}
    params = sum(p.numel() for p in model.parameters())
    try:
        tp = TransposedPass(model)
    except UnsupportedLayerError as err:
        return {"status": "refused", "params": params, "reason": str(err).split("; supported:")[0]}
    x = torch.rand(1, *SHAPE)
    try:
        ref = autograd_view(model, x)
    except Exception as err:  # noqa: BLE001 (a network that cannot run at this size)
        return {"status": f"does not run at {'×'.join(map(str, SHAPE))}", "params": params,
                "reason": str(err).splitlines()[0]}
    with torch.no_grad():
        logits, states = tp.forward(x)
        ours = {"logits": logits[0], "templates": tp.transpose(torch.eye(10), states),
                "bias": tp.region_bias(states, x.shape)[0], "reconstruction": tp.transpose(logits, states)[0]}
        pattern = tp.pattern(states)[0]
    t0 = time.perf_counter()
    path = to_onnx(model, tmp / f"{name}.onnx", input_shape=SHAPE)
    export_s = time.perf_counter() - t0
    got = run_onnx(path, x)
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    feed = {"x": x.numpy()}
    session.run(None, feed)
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        session.run(None, feed)
        times.append(time.perf_counter() - t0)
    # units whose state differs between onnxruntime's forward and PyTorch's: a pre-activation within float32
    # rounding of 0, or a max-pooling window with two inputs that close; there the two runtimes sit in
    # neighbouring regions, and their templates differ by that region's change
    boundary = int((got["pattern"] != pattern).sum())
    out = {"status": "exported", "params": params, "pytorch_errors": errors(ours, ref),
           "onnx_errors": errors(got, ref), "units": int(pattern.numel()), "units_on_boundary": boundary,
           "export_s": export_s, "bytes": path.stat().st_size,
           "onnxruntime_ms": 1e3 * statistics.median(times)}
    path.unlink()
    return out


def classifiers() -> list[str]:
    import torchvision

    return sorted(torchvision.models.list_models(module=torchvision.models))


def report(out: dict) -> str:
    from invlab.io import markdown_table
    from invlab.training.provenance import provenance_line

    rows, refused = [], []
    for name, r in out["models"].items():
        if r["status"] == "exported":
            worst = max(max(r["pytorch_errors"].values()), max(r["onnx_errors"].values()))
            rows.append([name, f"{r['params'] / 1e6:.1f}", *(f"{r['onnx_errors'][k]:.1e}" for k in
                                                           ("logits", "templates", "bias", "reconstruction")),
                         f"{max(r['pytorch_errors'].values()):.1e}", f"{worst:.1e}",
                         f"{r['units_on_boundary']} / {r['units']:,}", f"{r['export_s']:.1f}",
                         f"{r['bytes'] / 1e6:.1f}", f"{r['onnxruntime_ms']:.0f}"])
        else:
            refused.append([name, r["status"], r["reason"].replace("|", "\\|")])
    exported = [r for r in out["models"].values() if r["status"] == "exported"]
    worst = max((max(max(r["pytorch_errors"].values()), max(r["onnx_errors"].values())) for r in exported),
                default=float("nan"))
    return ("# torchvision's classifiers through the exact spline view\n\n"
            f"Every classifier of `torchvision.models` with `num_classes=10`, random weights, batch norm's statistics "
            f"made non-trivial, eval mode, one random input of shape {'×'.join(map(str, SHAPE))} in [0, 1]. "
            "Errors: largest difference over the largest magnitude (bias: over the logits'), against plain autograd "
            "on torchvision's module (one vector-Jacobian product per class). ONNX: onnxruntime on the graph "
            "`to_onnx` writes; PyTorch: the explicit transposed pass (largest of the four). Units on a boundary: "
            "activation-pattern entries (ReLU states, max-pooling choices) where onnxruntime's forward and "
            "PyTorch's disagree, a pre-activation within float32 rounding of 0 or a pooling window with two inputs "
            "that close: there the ONNX graph computes the exact spline of a neighbouring region, and its "
            "templates differ from autograd's by that region's change.\n\n"
            f"**{len(exported)} exported** (largest error {worst:.1e}), **{len(refused)} refused or not run**.\n\n"
            + markdown_table(["network", "M params", "ONNX logits", "templates", "bias", "reconstruction",
                              "PyTorch pass", "worst", "units on a boundary", "export (s)", "MB",
                              "onnxruntime (ms)"], rows)
            + "\n\n## Refused, with the op named\n\n"
            + markdown_table(["network", "status", "reason"], refused)
            + f"\n\n{provenance_line(out)}\n")


def main(argv=None) -> None:
    import torch

    from invlab.io import save_report
    from invlab.training.provenance import results_header

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", help="default: every classifier of torchvision.models")
    p.add_argument("--out", default="results/zoo.json")
    p.add_argument("--fresh", action="store_true", help="measure again the networks a partial run already has")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    out_path = Path(args.out)
    out = {"models": {}}
    if out_path.exists() and not args.fresh:  # resume: what was measured stays, with its provenance
        out = json.loads(out_path.read_text())
    names = args.models or classifiers()
    from tqdm import tqdm

    command = "python -m benchmarks.paper.zoo" + (f" --models {' '.join(args.models)}" if args.models else "")

    def save():
        out.update(results_header(device="cpu"))
        out["command"] = command
        save_report(out, out_path, report(out))

    with tempfile.TemporaryDirectory() as tmp:
        for name in tqdm(names, desc="zoo", unit="network"):
            if name in out["models"]:
                continue
            out["models"][name] = measure(name, Path(tmp))
            tqdm.write(f"{name}: {out['models'][name]['status']}")
            save()  # after every network: a later run resumes
    print(report(out))


if __name__ == "__main__":
    main()
