"""The Bird10 regularisation study (paper §3.2, Table 3 and Fig. 2).

Trains ``bird10-cnn`` on per-segment labels with the paper's (alpha, beta) settings —
(1, 0) and alpha in {0.7, 0.6} x beta in {0.5, 0.4, 0.3, 0.2, 0.1} — for several seeds
(each seed: a new split of recordings and a new initialisation), and writes

* ``results/bird10.json``: per-setting train / valid / test per-segment accuracy per seed,
  per-recording test accuracy, provenance;
* ``results/bird10.md``: the table, and which setting the validation split selects;
* ``docs/figures/bird10_curves.json``: learning curves of the baseline and of the setting
  chosen on validation (paper Fig. 2).

Uses real recordings under --data-root (or data/bird10) when present, else the synthetic
stand-in, and says which in every output.

    python -m benchmarks.paper.bird10_study --steps 1200 --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import sys
import time

from invlab.data import load_bird10
from invlab.experiments.studies import TrainAccuracyProbe, mean_std
from invlab.io import markdown_table as table
from invlab.io import save_figures, save_report
from invlab.train import TrainConfig, Trainer
from invlab.training.provenance import provenance_line, results_header
from invlab.viz.plots import learning_curves

SETTINGS = [(1.0, 0.0)] + [(a, b) for a in (0.7, 0.6) for b in (0.5, 0.4, 0.3, 0.2, 0.1)]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=1200)
    p.add_argument("--eval-every", type=int, default=100)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--labelled-batch", type=int, default=32)
    p.add_argument("--unlabelled-batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--recordings-per-species", type=int, default=12, help="synthetic data set size")
    p.add_argument("--data-root", default=None)
    p.add_argument("--settings", default=None, help="subset, e.g. '1,0;0.7,0.3' (default: the paper's 11)")
    p.add_argument("--out", default="results/bird10.json")
    p.add_argument("--figure", default="docs/figures/bird10_curves.json")
    p.add_argument("--device", default="auto")
    args = p.parse_args(argv)
    settings = (
        SETTINGS if args.settings is None else [tuple(map(float, s.split(","))) for s in args.settings.split(";")]
    )

    rows, curves, t0 = [], {}, time.perf_counter()
    datasets = {seed: load_bird10(args.data_root, seed=seed, recordings_per_species=args.recordings_per_species)
                for seed in args.seeds}
    name = datasets[args.seeds[0]].name
    print(f"dataset: {name} ({datasets[args.seeds[0]].summary()})", flush=True)
    for alpha, beta in settings:
        row = {"alpha": alpha, "beta": beta, "train": [], "valid": [], "test": [], "test_recording": [],
               "best_step": []}
        for seed in args.seeds:
            config = TrainConfig(recipe="paper", model="bird10-cnn", dataset="bird10", labels_per_class=None,
                                 alpha=alpha, beta=beta, seed=seed, steps=args.steps, eval_every=args.eval_every,
                                 lr=args.lr, labelled_batch=args.labelled_batch, unlabelled_batch=args.unlabelled_batch,
                                 data_root=args.data_root, device=args.device)
            result = Trainer(config, datasets[seed]).run([TrainAccuracyProbe()], progress=False)
            row["train"].append(result.extra["labelled_train_accuracy"])
            row["valid"].append(result.best_val_accuracy)
            row["test"].append(result.test_accuracy)
            row["test_recording"].append(result.extra["test_recording_accuracy"])
            row["best_step"].append(result.best_step)
            curves[(alpha, beta, seed)] = result.history
            print(f"alpha={alpha} beta={beta} seed={seed}: train {row['train'][-1]:.2f} valid {row['valid'][-1]:.2f} "
                  f"test {row['test'][-1]:.2f} (per recording {row['test_recording'][-1]:.1f}) "
                  f"[{time.perf_counter() - t0:.0f} s]", flush=True)
        for key in ("train", "valid", "test", "test_recording"):
            row[f"{key}_mean"], row[f"{key}_std"] = mean_std(row[key])
        rows.append(row)

    baseline = next(r for r in rows if r["alpha"] == 1.0)
    regularised = [r for r in rows if r["alpha"] < 1.0]
    chosen = max(regularised, key=lambda r: r["valid_mean"]) if regularised else baseline
    out = {
        "dataset": "synthetic" if name.startswith("synthetic") else "bird10",
        "data": datasets[args.seeds[0]].summary(),
        "model": "bird10-cnn",
        "steps": args.steps,
        "seeds": args.seeds,
        "labelled_batch": args.labelled_batch,
        "unlabelled_batch": args.unlabelled_batch,
        "settings": rows,
        "selected_on_validation": {"alpha": chosen["alpha"], "beta": chosen["beta"]},
        "test_gain_over_baseline": chosen["test_mean"] - baseline["test_mean"],
        "wall_time_s": time.perf_counter() - t0,
        **results_header(device=args.device),
    }
    save_report(out, args.out, markdown_table(out))
    fig_rows = [(baseline, "baseline"), (chosen, "selected on validation")]
    figs = [learning_curves(curves[(r["alpha"], r["beta"], args.seeds[0])],
                            title=f"{name} · {label}: α={r['alpha']}, β={r['beta']} (seed {args.seeds[0]})")
            for r, label in fig_rows]
    save_figures(figs, args.figure)
    print(markdown_table(out))
    return 0


def markdown_table(out: dict) -> str:
    label = "synthetic stand-in (not real Bird10)" if out["dataset"] == "synthetic" else "Bird10"
    lines = [f"Per-segment accuracy (%) on the **{label}**, `bird10-cnn`, {out['steps']} steps, seeds {out['seeds']}, "
             f"mean ± std; valid and test at the step with the best validation accuracy.",
             "", table(["α", "β", "train", "valid", "test", "test per recording"], [
                 [r["alpha"], r["beta"], f"{r['train_mean']:.2f} ± {r['train_std']:.2f}",
                  f"{r['valid_mean']:.2f} ± {r['valid_std']:.2f}", f"{r['test_mean']:.2f} ± {r['test_std']:.2f}",
                  f"{r['test_recording_mean']:.1f} ± {r['test_recording_std']:.1f}"] for r in out["settings"]])]
    sel = out["selected_on_validation"]
    lines += ["", f"Selected on validation: α = {sel['alpha']}, β = {sel['beta']}; test gain over the (1, 0) "
                  f"baseline: {out['test_gain_over_baseline']:+.2f} points.",
              provenance_line(out, f"{out['wall_time_s'] / 60:.0f} min"), ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
