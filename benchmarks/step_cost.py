"""Cost of the inversion loss: time per training step and peak memory, against a
supervised step on the same batch and model.

For every model: a batch of ``--batch`` inputs (``--labelled`` of them labelled), one Adam
step of

* ``supervised`` — cross-entropy only (alpha = 1): one forward and one backward pass;
* ``inverse-autograd`` — the full loss of eq. 10 with (df/dx)^T f(x) from
  ``torch.autograd.grad(create_graph=True)``;
* ``inverse-func`` — the same loss with ``torch.func.vjp``.

Each (model, mode) runs in its own subprocess (so that the peak resident memory, or the
CUDA peak, belongs to it alone): ``--warmup`` steps, then the median of ``--repeat`` timed
steps. Ratios are medians from the same invocation.

    python benchmarks/step_cost.py --models smallcnn-mean --repeat 20
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

MODES = ("supervised", "inverse-autograd", "inverse-func")


def measure(model_name: str, mode: str, batch: int, labelled: int, warmup: int, repeat: int, device: str) -> dict:
    import torch

    from invlab import SemiSupervisedLoss, create_model

    torch.manual_seed(0)
    dev = torch.device("cuda" if device == "auto" and torch.cuda.is_available() else ("cpu" if device == "auto" else device))
    model = create_model(model_name).to(dev)
    shape = (1, model.segment_length) if model.input_ndim == 3 else (1, 28, 28)
    x = torch.rand(batch, *shape, device=dev)
    y = torch.randint(0, 10, (batch,), device=dev)
    mask = torch.arange(batch, device=dev) < labelled
    if mode == "supervised":
        loss_fn = SemiSupervisedLoss(1.0, 0.0, report_unweighted=False)
    else:
        loss_fn = SemiSupervisedLoss(0.7, 0.2, method=mode.split("-")[1])
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)

    def step():
        opt.zero_grad(set_to_none=True)
        loss_fn(model, x, y, mask)["total"].backward()
        opt.step()
        if dev.type == "cuda":
            torch.cuda.synchronize()

    for _ in range(warmup):
        step()
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    peak = (torch.cuda.max_memory_allocated() if dev.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    return {"model": model_name, "mode": mode, "median_s": statistics.median(times), "times_s": times,
            "peak_memory_mb": peak / 2**20, "memory_kind": "cuda peak allocated" if dev.type == "cuda" else "peak RSS",
            "device": str(dev)}


def main(argv=None) -> int:
    from invlab.models import TABLE2_MODELS

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=[*TABLE2_MODELS, "bird10-cnn"])
    p.add_argument("--batch", type=int, default=150)
    p.add_argument("--labelled", type=int, default=50)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--repeat", type=int, default=10)
    p.add_argument("--device", default="auto")
    p.add_argument("--out", default="results/step_cost.json")
    p.add_argument("--single", nargs=2, metavar=("MODEL", "MODE"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.single:
        print(json.dumps(measure(*args.single, args.batch, args.labelled, args.warmup, args.repeat, args.device)))
        return 0

    from invlab.io import save_json
    from invlab.studies import provenance

    rows = []
    for name in args.models:
        runs = {}
        for mode in MODES:
            cmd = [sys.executable, __file__, "--single", name, mode, "--batch", str(args.batch), "--labelled",
                   str(args.labelled), "--warmup", str(args.warmup), "--repeat", str(args.repeat), "--device", args.device]
            runs[mode] = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.splitlines()[-1])
        sup = runs["supervised"]["median_s"]
        best = min(MODES[1:], key=lambda m: runs[m]["median_s"])
        row = {"model": name, "runs": runs, "fastest_inverse": best,
               **{f"ratio_{m}": runs[m]["median_s"] / sup for m in MODES[1:]}}
        rows.append(row)
        print(f"{name:18s} supervised {sup * 1e3:8.1f} ms | " + " | ".join(
            f"{m} {runs[m]['median_s'] * 1e3:8.1f} ms ({row['ratio_' + m]:.2f}x, {runs[m]['peak_memory_mb']:.0f} MB)"
            for m in MODES[1:]), flush=True)
    out = {"batch": args.batch, "labelled": args.labelled, "repeat": args.repeat, "warmup": args.warmup,
           "rows": rows, **provenance(device=rows[0]["runs"]["supervised"]["device"] if rows else "cpu")}
    save_json(out, args.out)
    Path(args.out).with_suffix(".md").write_text(markdown(out))
    print(markdown(out))
    return 0


def markdown(out: dict) -> str:
    lines = [f"Time per training step (median of {out['repeat']} after {out['warmup']} warm-up steps), batch "
             f"{out['batch']} with {out['labelled']} labelled; ratio = inversion-loss step / supervised step.", "",
             "| model | supervised (ms) | inverse, autograd (ms) | ratio | inverse, torch.func (ms) | ratio | "
             "peak memory sup. / inv. (MB) |", "|---|---|---|---|---|---|---|"]
    for r in out["rows"]:
        s, a, f = (r["runs"][m] for m in MODES)
        lines.append(f"| {r['model']} | {s['median_s'] * 1e3:.1f} | {a['median_s'] * 1e3:.1f} | "
                     f"{r['ratio_inverse-autograd']:.2f} | {f['median_s'] * 1e3:.1f} | {r['ratio_inverse-func']:.2f} | "
                     f"{s['peak_memory_mb']:.0f} / {min(a['peak_memory_mb'], f['peak_memory_mb']):.0f} |")
    lines += ["", f"Command: `{out['command']}` · commit {out['commit']} · {out['hardware']} · {out['date']}.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
