"""CUDA graphs against eager steps on one GPU: the same training, and its time per step.

For every model, two :class:`invlab.train.Trainer` with the same settings and seed — one
eager, one with ``cuda_graph=True`` (:mod:`invlab.graphs`) — take the same steps of the
recommended recipe on MNIST (50 labels, batches of 50 + 100). Their steps are timed in
alternating blocks (a load change hits both modes alike); the first ``--warmup`` steps of
each (the graph's eager warm-up and its capture among them) are not timed. Reported per
model: median and interquartile range of the milliseconds per step of each mode, the
speed-up, and how far the two runs are apart after the same steps (the largest parameter
difference relative to the largest parameter, and the largest difference of a logged loss):
with the same kernels they differ only by the GPU's non-deterministic reductions.

Finally a checkpoint written by the graph run is loaded into an eager trainer on the CPU,
which takes one step: checkpoints stay portable.

    python benchmarks/cuda_graph_check.py --models smallcnn-mean resnet3-16-mean --out results/cuda_graph_check.json

Exits with status 1 when the runs disagree (``--tolerance``), so that a script can fall
back to eager steps.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def timed_block(trainer, steps: int) -> tuple[float, list[dict]]:
    import torch

    torch.cuda.synchronize()
    t0 = time.perf_counter()
    losses = [trainer.train_step() for _ in range(steps)]  # each step reads its losses: a sync
    torch.cuda.synchronize()
    return (time.perf_counter() - t0) / steps * 1e3, losses


def check_model(name: str, args, data) -> dict:
    import torch

    from invlab.train import RECOMMENDED, TrainConfig, Trainer

    config = dict(RECOMMENDED, model=name, seed=args.seed, device="cuda", eval_every=10**6, log_unweighted=False)
    eager = Trainer(TrainConfig(**config), data)
    graph = Trainer(TrainConfig(**config, cuda_graph=True), data)
    ms = {"eager": [], "cuda_graph": []}
    losses = {"eager": [], "cuda_graph": []}
    for trainer, mode in ((eager, "eager"), (graph, "cuda_graph")):
        losses[mode] += timed_block(trainer, args.warmup)[1]
    for _ in range(args.blocks):
        for trainer, mode in ((eager, "eager"), (graph, "cuda_graph")):
            t, ls = timed_block(trainer, args.block)
            ms[mode].append(t)
            losses[mode] += ls
    p_e = torch.cat([p.detach().flatten() for p in eager.model.parameters()])
    p_g = torch.cat([p.detach().flatten() for p in graph.model.parameters()])
    rel = float((p_e - p_g).abs().max() / p_e.abs().max())
    dloss = max(abs(a[k] - b[k]) for a, b in zip(losses["eager"], losses["cuda_graph"]) for k in ("total", "ce"))
    q = {m: statistics.quantiles(v, n=4) if len(v) > 1 else [v[0]] * 3 for m, v in ms.items()}
    row = {"model": name, "steps": graph.step,
           **{f"{m}_ms_median": statistics.median(v) for m, v in ms.items()},
           **{f"{m}_ms_iqr": [q[m][0], q[m][2]] for m in ms},
           "speedup": statistics.median(ms["eager"]) / statistics.median(ms["cuda_graph"]),
           "param_max_rel_diff": rel, "loss_max_abs_diff": dloss}
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
    p.add_argument("--tolerance", type=float, default=1e-2,
                   help="largest relative parameter difference accepted (default %(default)s)")
    p.add_argument("--out", default=None, help="JSON report")
    args = p.parse_args(argv)

    import torch

    from invlab.provenance import provenance
    from invlab.train import RECOMMENDED, TrainConfig, build_data

    if not torch.cuda.is_available():
        p.error("no CUDA GPU: CUDA graphs need one")
    data = build_data(TrainConfig(**RECOMMENDED, seed=args.seed))
    rows = [check_model(m, args, data) for m in args.models]
    ok = all(r["param_max_rel_diff"] <= args.tolerance for r in rows)
    report = {"rows": rows, "agree": ok, "tolerance": args.tolerance,
              "gpu": torch.cuda.get_device_name(0), **provenance(device="cuda")}
    if args.out:
        from invlab.io import save_json

        save_json(report, args.out)
    print("eager and CUDA-graph runs agree" if ok else "eager and CUDA-graph runs DISAGREE", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
