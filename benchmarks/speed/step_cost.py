"""Cost of the inversion loss: time per training step (and peak memory), against a
supervised step on the same batch and model.

For every model, one Adam step of :class:`invlab.train.Trainer` on a mixed batch of
``--batch`` samples (``--labelled`` of them labelled) in each *mode*:

* ``supervised`` — cross-entropy only (alpha = 1): one forward and one backward pass;
* ``inverse-autograd`` — the full loss of eq. 10, (df/dx)^T f(x) from
  ``torch.autograd.grad(create_graph=True)``: the training loop's default;
* ``inverse-func`` — the same loss with ``torch.func.vjp``;
* ``inverse-before`` — the step as invlab took it before its CPU tuning (autograd,
  contiguous NCHW tensors, ``loss.backward()`` also computing the unused gradient with
  respect to the input): the "before" of the steps-per-second comparison;
* ``inverse-transposed`` — the same loss through the explicit transposed pass
  (:mod:`invlab.transposed`), the training loop's default (``inverse_method="auto"``) for every
  network it takes.

Timing is done in **one process per model, the modes interleaved** (one step of each in
turn), so that a load change on a shared machine hits every mode alike; ``--warmup``
rounds are dropped (the allocator's and oneDNN's first steps), then ``--repeat`` rounds
give the median and interquartile range per mode, and steps per second. Peak memory
(``--memory``) is measured apart, one subprocess per mode, since a process's peak
resident size cannot be split between modes.

    python -m benchmarks.speed.step_cost --models smallcnn-mean --threads 1 --repeat 40

``--part methods`` times instead one step of every method of :mod:`invlab.methods` on the
same mixed batch (``method:<name>`` modes: the baselines without R, ``inversion`` with it,
beta = 0.2), interleaved the same way, each against the ``supervised`` method's step:

    python -m benchmarks.speed.step_cost --part methods --models smallcnn-mean --threads 1 \
        --no-memory --out results/step_cost_methods.json
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

MODES = ("supervised", "inverse-autograd", "inverse-func", "inverse-before", "inverse-transposed")
METHOD_MODES = ("method:supervised", "method:entropy", "method:pseudo-label", "method:vat", "method:mean-teacher",
                "method:inversion")


def make_trainer(model_name: str, mode: str, batch: int, labelled: int, device: str):
    """A Trainer whose every step is a ``batch``-sample step of ``mode`` on random inputs."""
    import torch

    from invlab.data import SemiSupervisedData
    from invlab.models import create_model
    from invlab.train import TrainConfig, Trainer

    probe = create_model(model_name)
    shape = (1, probe.segment_length) if probe.input_ndim == 3 else (1, 28, 28)
    g = torch.Generator().manual_seed(0)
    n = max(batch, 20)
    x = torch.rand(n, *shape, generator=g)
    y = torch.arange(n) % 10
    data = SemiSupervisedData(x, y, torch.arange(labelled), x[:10], y[:10], x[:10], y[:10], 10, "random")
    supervised = mode == "supervised"
    method = mode.removeprefix("method:") if mode.startswith("method:") else "inversion"
    if mode.startswith("method:"):  # every method on the same mixed batch; R only in the paper's
        alpha, beta = 0.7, 0.2 if method == "inversion" else 0.0
    else:
        alpha, beta = (1.0, 0.0) if supervised else (0.7, 0.2)
    config = TrainConfig(
        recipe="paper",
        model=model_name,
        alpha=alpha,
        beta=beta,
        method=method,
        balance=1.0,
        labelled_batch=labelled,
        unlabelled_batch=batch - labelled,
        lr=1e-4,
        steps=10**9,
        log_unweighted=False,
        device=device,
        inverse_method={"inverse-func": "func", "inverse-transposed": "transposed"}.get(mode, "autograd"),
    )
    trainer = Trainer(config, data)
    if mode == "inverse-before":
        trainer.model.to(memory_format=torch.contiguous_format)
        trainer.memory_format = torch.contiguous_format
    return trainer


def step_fn(trainer, mode: str):
    """One training step of ``mode``; ``inverse-before`` replays the former loop's step."""
    if mode != "inverse-before":
        return trainer.train_step

    def before():
        trainer.model.train()
        x, y, mask = trainer.batch()
        out = trainer.loss_fn(trainer.model, x, y, mask)
        trainer.optimizer.zero_grad(set_to_none=True)
        out["total"].backward()  # also d total / d x: a wasted transposed convolution
        trainer.optimizer.step()
    return before


def time_interleaved(model_name: str, batch: int, labelled: int, warmup: int, repeat: int, device: str,
                     modes: tuple[str, ...] = MODES, rotate: bool = False) -> dict:
    """``rotate``: each round starts one mode later, so that no mode always follows the same
    one (the step after a heavy one can pay for its memory)."""
    import torch

    trainers = {m: make_trainer(model_name, m, batch, labelled, device) for m in modes}
    steps = {m: step_fn(trainers[m], m) for m in modes}
    first = trainers[modes[0]]
    sync = torch.cuda.synchronize if first.device.type == "cuda" else (lambda: None)
    times = {m: [] for m in modes}
    for r in range(warmup + repeat):
        shift = r % len(modes) if rotate else 0
        for m in modes[shift:] + modes[:shift]:
            sync()
            t0 = time.perf_counter()
            steps[m]()
            sync()
            if r >= warmup:
                times[m].append(time.perf_counter() - t0)
    out = {}
    for m, ts in times.items():
        q1, med, q3 = statistics.quantiles(ts, n=4) if len(ts) > 1 else (ts[0],) * 3
        out[m] = {"median_s": statistics.median(ts), "q1_s": q1, "q3_s": q3, "steps_per_s": 1 / statistics.median(ts),
                  "times_s": ts}
    return {"modes": out, "device": str(first.device), "threads": torch.get_num_threads()}


def peak_memory(model_name: str, mode: str, batch: int, labelled: int, device: str) -> dict:
    import torch

    trainer = make_trainer(model_name, mode, batch, labelled, device)
    step = step_fn(trainer, mode)
    if trainer.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    for _ in range(3):
        step()
    peak = (torch.cuda.max_memory_allocated() if trainer.device.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    return {"peak_memory_mb": peak / 2**20,
            "memory_kind": "cuda peak allocated" if trainer.device.type == "cuda" else "peak RSS"}


def main(argv=None) -> int:
    from invlab.models import TABLE2_MODELS

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--part", choices=["inverse", "methods", "profile"], default="inverse",
                   help="inverse: the inversion loss's ways of computing against supervision (default); methods: "
                        "every method of invlab.methods against the supervised one; profile: the inversion step "
                        "through the public API, by part and by method, its floor and real peak memory "
                        "(benchmarks/speed/step_profile.py)")
    p.add_argument("--models", nargs="+", default=[*TABLE2_MODELS, "bird10-cnn"])
    p.add_argument("--batch", type=int, default=150)
    p.add_argument("--labelled", type=int, default=50)
    p.add_argument("--warmup", type=int, default=5, help="interleaved rounds dropped before timing")
    p.add_argument("--repeat", type=int, default=30, help="interleaved rounds timed")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument("--memory", action=argparse.BooleanOptionalAction, default=True,
                   help="also measure peak memory per mode (one subprocess each)")
    p.add_argument("--device", default="auto")
    p.add_argument("--out", default="results/step_cost.json")
    p.add_argument("--single", nargs=2, metavar=("MODEL", "MODE"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.single:
        print(json.dumps(peak_memory(*args.single, args.batch, args.labelled, args.device)))
        return 0

    from invlab.io import save_report
    from invlab.training.provenance import results_header

    if args.part == "methods":
        return methods(args)
    if args.part == "profile":
        return profile(args)
    rows = []
    for name in args.models:
        timing = time_interleaved(name, args.batch, args.labelled, args.warmup, args.repeat, args.device)
        runs = timing["modes"]
        for mode in MODES:
            runs[mode]["device"] = timing["device"]
            if args.memory:
                cmd = [sys.executable, "-m", "benchmarks.speed.step_cost", "--single", name, mode,
                       "--batch", str(args.batch),
                       "--labelled", str(args.labelled), "--device", args.device,
                       *(["--threads", str(args.threads)] if args.threads else [])]
                res = subprocess.run(cmd, check=True, capture_output=True, text=True,
                                     cwd=Path(__file__).resolve().parents[2])
                runs[mode].update(json.loads(res.stdout.splitlines()[-1]))
        sup = runs["supervised"]["median_s"]
        inverse = ("inverse-autograd", "inverse-func", "inverse-transposed")
        row = {"model": name, "runs": runs, "threads": timing["threads"],
               "fastest_inverse": min(inverse, key=lambda m: runs[m]["median_s"]),
               **{f"ratio_{m}": runs[m]["median_s"] / sup for m in MODES[1:]},
               "speedup_vs_before": runs["inverse-before"]["median_s"] / runs["inverse-autograd"]["median_s"]}
        rows.append(row)
        print(f"{name:18s} " + " | ".join(f"{m} {runs[m]['median_s'] * 1e3:.1f} ms" for m in MODES), flush=True)
    out = {"batch": args.batch, "labelled": args.labelled, "repeat": args.repeat, "warmup": args.warmup,
           "threads": rows[0]["threads"] if rows else None, "interleaved": True,
           "rows": rows, **results_header(device=rows[0]["runs"]["supervised"]["device"] if rows else "cpu")}
    save_report(out, args.out, markdown(out))
    print(markdown(out))
    return 0


def profile(args) -> int:
    """``--part profile``: :mod:`benchmarks.speed.step_profile` for each model."""
    from benchmarks.speed.step_profile import markdown as profile_markdown
    from benchmarks.speed.step_profile import profile_model
    from invlab.io import save_report
    from invlab.training.provenance import results_header

    rows = []
    for name in args.models:
        row = profile_model(name, args.batch, args.labelled, args.warmup, args.repeat, args.memory)
        rows.append(row)
        print(f"{name:18s} autograd ×{row['ratio_autograd']:.2f}  transposed ×{row['ratio_transposed']:.2f}  "
              f"floor ×{row['floor_ratio']:.2f}", flush=True)
    out = {"part": "profile", "batch": args.batch, "labelled": args.labelled, "repeat": args.repeat,
           "warmup": args.warmup, "threads": rows[0]["threads"] if rows else None, "interleaved": True, "rows": rows,
           **results_header(device="cpu")}
    save_report(out, args.out, profile_markdown(out))
    print(profile_markdown(out))
    return 0


def methods(args) -> int:
    """``--part methods``: one interleaved timing per model over :data:`METHOD_MODES`."""
    from invlab.io import save_report
    from invlab.training.provenance import results_header

    rows = []
    for name in args.models:
        timing = time_interleaved(name, args.batch, args.labelled, args.warmup, args.repeat, args.device, METHOD_MODES,
                                  rotate=True)
        runs, sup = timing["modes"], timing["modes"]["method:supervised"]["median_s"]
        rows.append({"model": name, "runs": runs, "threads": timing["threads"], "device": timing["device"],
                     **{f"ratio_{m.removeprefix('method:')}": runs[m]["median_s"] / sup for m in METHOD_MODES}})
        print(f"{name:18s} " + " | ".join(f"{m[7:]} {runs[m]['median_s'] * 1e3:.1f} ms" for m in METHOD_MODES),
              flush=True)
    out = {"part": "methods", "batch": args.batch, "labelled": args.labelled, "repeat": args.repeat,
           "warmup": args.warmup, "threads": rows[0]["threads"] if rows else None, "interleaved": True, "rows": rows,
           **results_header(device=rows[0]["device"] if rows else "cpu")}
    save_report(out, args.out, methods_markdown(out))
    print(methods_markdown(out))
    return 0


def methods_markdown(out: dict) -> str:
    from invlab.io import markdown_table
    from invlab.training.provenance import provenance_line

    names = [m.removeprefix("method:") for m in METHOD_MODES]
    lines = [f"Time per training step in ms of each method, median [interquartile range] of {out['repeat']} "
             f"interleaved rounds (each round starting one method later) after {out['warmup']} warm-up rounds; "
             f"batch {out['batch']} with {out['labelled']} labelled, {out['threads']} thread(s); (× the supervised "
             "method's step). The baselines without R; "
             "inversion = entropy + balance + R (beta 0.2).", "",
             markdown_table(["model", *names], [[r["model"], *(_ratio_cell(r, m) for m in METHOD_MODES)]
                                                for r in out["rows"]]),
             "", provenance_line(out), ""]
    return "\n".join(lines)


def _ratio_cell(row: dict, mode: str) -> str:
    return f"{_cell(row['runs'][mode])} (×{row['ratio_' + mode.removeprefix('method:')]:.2f})"


def _cell(run: dict) -> str:
    return f"{run['median_s'] * 1e3:.1f} [{run['q1_s'] * 1e3:.1f}–{run['q3_s'] * 1e3:.1f}]"


def markdown(out: dict) -> str:
    from invlab.io import markdown_table
    from invlab.training.provenance import provenance_line

    lines = [f"Time per training step in ms, median [interquartile range] of {out['repeat']} interleaved rounds "
             f"after {out['warmup']} warm-up rounds; batch {out['batch']} with {out['labelled']} labelled, "
             f"{out['threads']} thread(s). Ratio = inversion-loss step / supervised step; steps/s of the autograd "
             "inversion step before and after the CPU tuning; transposed = the explicit transposed pass, the "
             "default since it landed.", ""]
    rows = []
    for r in out["rows"]:
        s, a, f, b = (r["runs"][m] for m in MODES[:4])
        t = r["runs"].get("inverse-transposed")
        mem = (f"{s['peak_memory_mb']:.0f} / {a['peak_memory_mb']:.0f}" if "peak_memory_mb" in s else "not measured")
        rows.append([r["model"], _cell(s), _cell(a), f"{r['ratio_inverse-autograd']:.2f}", _cell(f),
                     f"{r['ratio_inverse-func']:.2f}", _cell(b),
                     f"{b['steps_per_s']:.2f} → {a['steps_per_s']:.2f} (×{r['speedup_vs_before']:.2f})",
                     f"{_cell(t)} (×{r['ratio_inverse-transposed']:.2f})" if t else "not measured", mem])
    lines += [markdown_table(["model", "supervised", "inverse, autograd", "ratio", "inverse, torch.func",
                              "ratio", "before tuning", "steps/s before → after", "inverse, transposed (default)",
                              "peak memory sup. / inv. (MB)"], rows),
              "", provenance_line(out), ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
