"""``invlab export`` on every network of the registry: each exported as one ONNX graph and run by
onnxruntime on a random input, its outputs against autograd's (``templates()``,
``forward_inverse()``), as the largest difference over the largest magnitude. The tests check
the layer types one by one and the lesson networks on real and blank canvases; this checks
the whole registry (a minute: the resnets and LargeCNN take a few seconds each to export).

    python -m benchmarks.speed.export_check        # results/export_check.{json,md}
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def main(argv=None) -> None:
    import torch

    from invlab.export import run_onnx, to_onnx
    from invlab.inverse import forward_inverse, templates
    from invlab.io import markdown_table, save_report
    from invlab.models import create_model, list_models
    from invlab.training.provenance import provenance_line, results_header

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="results/export_check.json")
    args = p.parse_args(argv)
    torch.manual_seed(0)
    rows, out = [], {"models": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name in list_models():
            model = create_model(name).eval()
            x = torch.rand(1, *model.input_shape)
            t0 = time.perf_counter()
            path = to_onnx(model, Path(tmp) / f"{name}.onnx")
            seconds = time.perf_counter() - t0
            got = run_onnx(path, x)
            A, b = templates(model, x)
            logits, rec = forward_inverse(model, x, create_graph=False)

            def rel(a, ref, scale=None):
                return float((a - ref).abs().max() / (ref if scale is None else scale).abs().max())

            errors = {"logits": rel(got["logits"], logits[0]), "templates": rel(got["templates"], A[0]),
                      "reconstruction": rel(got["reconstruction"], rec[0]),
                      "bias": rel(got["bias"], b[0], logits[0])}
            out["models"][name] = {"input_shape": list(model.input_shape), "export_s": seconds,
                                   "bytes": path.stat().st_size, "errors": errors, "exact": max(errors.values()) < 1e-5}
            rows.append([name, str(tuple(model.input_shape)), f"{path.stat().st_size / 1e6:.2f}", f"{seconds:.1f}",
                         *(f"{errors[k]:.1e}" for k in ("logits", "templates", "reconstruction", "bias"))])
            print(rows[-1], flush=True)
    out.update(results_header(device="cpu"))
    text = ("# `invlab export` on every network of the registry\n\nLargest difference over the largest magnitude "
            "(bias: over the logits'), onnxruntime against autograd, one random input each.\n\n"
            + markdown_table(["model", "input", "MB", "export (s)", "logits", "templates", "reconstruction", "bias"],
                             rows)
            + f"\n\nEvery one within 1e-5: {all(m['exact'] for m in out['models'].values())}.\n\n"
            f"{provenance_line(out)}\n")
    save_report(out, args.out, text)
    print(text)


if __name__ == "__main__":
    main()
