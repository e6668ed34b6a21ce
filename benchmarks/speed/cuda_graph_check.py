"""CUDA graphs against eager steps on one GPU: the same training, and its time per step.

For every model, two :class:`invlab.train.Trainer` with the same settings and seed — one
eager, one with ``cuda_graph=True`` (:mod:`invlab.training.graphs`) — train with the recommended
recipe on MNIST (50 labels, batches of 50 + 100).

* Time per step: their steps are timed in alternating blocks (a load change hits both
  modes alike), after ``--warmup`` untimed steps each (the graph's eager warm-up and its
  capture among them); median and interquartile range of the milliseconds per step.
* The same step: ``--rounds`` times, the eager trainer takes the graph run's state and
  both take the next step on the same batch; the gradients and losses they compute are
  compared (largest difference relative to the largest value), against the GPU's own
  run-to-run noise: a second eager trainer taking the same step from the same state.
  The parameters after the timed steps are compared too (graph vs eager, and eager vs a
  second eager run): whole runs drift apart through rounding noise, which Adam turns into
  full-size steps for parameters whose gradient is near zero; they are reported, not
  judged.
* A checkpoint written by the graph run is loaded into an eager trainer on the CPU, which
  takes one step: checkpoints stay portable.

    python -m benchmarks.speed.cuda_graph_check --models smallcnn-mean resnet3-16-mean \
        --out results/cuda_graph_check.json

Exits with status 1 when a model's graph step disagrees with its eager step by more than
``--tolerance`` and ten times the eager-vs-eager noise, so that a script can fall back to
eager steps.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path


def timed_block(trainer, steps: int) -> float:
    """Milliseconds per step over ``steps`` training steps."""
    import torch

    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        trainer.train_step()  # each step reads its losses back: a sync
    torch.cuda.synchronize()
    return (time.perf_counter() - t0) / steps * 1e3


def grads(trainer):
    import torch

    return torch.cat([p.grad.detach().flatten() for p in trainer.params])


def params(trainer):
    import torch

    return torch.cat([p.detach().flatten() for p in trainer.params])


def rel(a, b) -> float:
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-30))


def check_model(name: str, args, data) -> dict:
    import copy

    from invlab.train import RECOMMENDED, TrainConfig, Trainer

    config = dict(RECOMMENDED, model=name, seed=args.seed, device="cuda", eval_every=10**6, log_unweighted=False)
    eager, eager2 = Trainer(TrainConfig(**config), data), Trainer(TrainConfig(**config), data)
    graph = Trainer(TrainConfig(**config, cuda_graph=True), data)
    # 1. time per step: the runs in alternating blocks (the second eager run is not timed)
    ms = {"eager": [], "cuda_graph": []}
    for trainer in (eager, eager2, graph):
        timed_block(trainer, args.warmup)
    for _ in range(args.blocks):
        for trainer, mode in ((eager, "eager"), (eager2, None), (graph, "cuda_graph")):
            t = timed_block(trainer, args.block)
            if mode:
                ms[mode].append(t)
    # whole runs drift apart, even two eager ones: the yardstick for the graph run's drift
    drift, drift_noise = rel(params(graph), params(eager)), rel(params(eager2), params(eager))
    # 2. the same step: from the graph run's state, one step replayed and one taken eagerly,
    # against the GPU's own run-to-run noise (two eager steps from that state)
    e1, e2 = eager, eager2
    d_grad, d_grad_noise, d_loss, d_loss_noise = [], [], [], []
    for _ in range(args.rounds):
        state = graph.state_dict()
        for e in (e1, e2):
            e.load_state_dict(copy.deepcopy(state))
        lg, l1, l2 = graph.train_step(), e1.train_step(), e2.train_step()
        g, g1, g2 = grads(graph), grads(e1), grads(e2)
        d_grad.append(rel(g, g1))
        d_grad_noise.append(rel(g2, g1))
        d_loss.append(max(abs(lg[k] - l1[k]) / max(abs(l1[k]), 1e-12) for k in ("total", "ce", "entropy")))
        d_loss_noise.append(max(abs(l2[k] - l1[k]) / max(abs(l1[k]), 1e-12) for k in ("total", "ce", "entropy")))
    q = {m: statistics.quantiles(v, n=4) if len(v) > 1 else [v[0]] * 3 for m, v in ms.items()}
    row = {"model": name, "steps": graph.step,
           **{f"{m}_ms_median": statistics.median(v) for m, v in ms.items()},
           **{f"{m}_ms_iqr": [q[m][0], q[m][2]] for m in ms},
           "speedup": statistics.median(ms["eager"]) / statistics.median(ms["cuda_graph"]),
           "params_rel_diff_after_run": drift, "params_rel_diff_after_run_eager_vs_eager": drift_noise,
           "grad_max_rel_diff": max(d_grad), "grad_max_rel_diff_eager_vs_eager": max(d_grad_noise),
           "loss_max_rel_diff": max(d_loss), "loss_max_rel_diff_eager_vs_eager": max(d_loss_noise)}
    row["agree"] = (row["grad_max_rel_diff"] <= max(10 * row["grad_max_rel_diff_eager_vs_eager"], args.tolerance)
                    and row["loss_max_rel_diff"] <= max(10 * row["loss_max_rel_diff_eager_vs_eager"], args.tolerance))
    with tempfile.TemporaryDirectory() as tmp:  # a graph run's checkpoint resumes eagerly on the CPU
        path = graph.save_checkpoint(Path(tmp) / "checkpoint.pt")
        cpu = Trainer(TrainConfig(**{**config, "device": "cpu"}), data)
        cpu.load_checkpoint(path)
        cpu.train_step()
        row["resumed_on_cpu_at_step"] = cpu.step
    print(json.dumps(row), flush=True)
    return row


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=["smallcnn-mean", "largecnn-mean", "resnet2-32-mean",
                                                   "resnet3-16-mean"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--warmup", type=int, default=10, help="untimed steps of each mode first (default %(default)s)")
    p.add_argument("--block", type=int, default=10, help="steps per timed block (default %(default)s)")
    p.add_argument("--blocks", type=int, default=5, help="timed blocks per mode, alternating (default %(default)s)")
    p.add_argument("--rounds", type=int, default=3, help="steps compared from a shared state (default %(default)s)")
    p.add_argument("--tolerance", type=float, default=1e-3,
                   help="relative difference of gradients and losses always accepted; above it, up to 10 "
                        "times the eager-vs-eager difference is (default %(default)s)")
    p.add_argument("--out", default=None, help="JSON report")
    args = p.parse_args(argv)

    import torch

    from invlab.train import RECOMMENDED, TrainConfig, build_data
    from invlab.training.provenance import provenance

    if not torch.cuda.is_available():
        p.error("no CUDA GPU: CUDA graphs need one")
    data = build_data(TrainConfig(**RECOMMENDED, seed=args.seed))
    rows = [check_model(m, args, data) for m in args.models]
    ok = all(r["agree"] for r in rows)
    report = {"rows": rows, "agree": ok, "tolerance": args.tolerance,
              "gpu": torch.cuda.get_device_name(0), **provenance(device="cuda")}
    if args.out:
        from invlab.io import save_json

        save_json(report, args.out)
    print("eager and CUDA-graph runs agree" if ok else "eager and CUDA-graph runs DISAGREE", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
