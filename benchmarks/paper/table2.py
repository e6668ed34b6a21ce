"""Reproduction of the paper's Table 2 (MNIST, 50 labels), its ablations and (alpha, beta) grid.

Parts (``--parts``, any subset):

* ``table2`` — every topology of ``--models`` with the paper's (alpha, beta) for it, 50
  labels (5 per class), one run per seed (each seed: a new label draw, initialisation and
  batch order);
* ``sup1000`` — the paper's "Sup1000" column: the same network, alpha = 1, 1000 labels;
* ``ablations`` — on ``smallcnn-mean``, 50 labels: supervised only (alpha = 1),
  entropy only (beta = 0) and reconstruction only (beta = 1), at the paper's alpha = 0.7;
* ``grid`` — the paper's search {0.3, ..., 0.7} x {0.2, 0.3, 0.5} for ``smallcnn-mean``.

Every run keeps the step with the best validation accuracy (the last 10 000 training
images); its test accuracy is reported, the test set never selects anything. Each
run has its own folder under ``--runs-dir`` (keyed by its full config) with a checkpoint
rewritten at every evaluation, so the same command run again — in a later session — reads
finished runs back and continues unfinished ones from their last checkpoint; the parts
share runs. Outputs:

* ``results/table2.json`` (+ ``.md``): ``{"models": {name: {alpha, beta, test_accuracies,
  mean, std, steps, wall_time_s, hardware, ...}}, "command", "commit", "date"}`` with
  ablations and Sup1000 as further entries (``smallcnn-mean/sup1000``, ...);
* ``results/ab_grid.json`` (+ ``.md``) for the grid;
* plotly figures under ``docs/figures/``: accuracy per model against the paper, learning
  curves of the smallcnn-mean variants, grid heat maps.

    python -m benchmarks.paper.table2 --parts table2 sup1000 ablations --models smallcnn-mean --seeds 0 1 2 3 4
    python -m benchmarks.paper.table2 --parts grid --grid-seeds 0 1 2 --grid-steps 300 --jobs 2
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from invlab.theory.paper import GRID_ALPHAS, GRID_BETAS  # noqa: E402
from invlab.theory.paper import TABLE2 as PAPER  # noqa: E402  model: (test % with 50 labels, (alpha, beta), Sup1000 test %)

PARTS = ("table2", "sup1000", "ablations", "grid")
ABLATION_MODEL = "smallcnn-mean"


@dataclass(frozen=True)
class Entry:
    """One row of a results table: a model and loss setting, run once per seed."""

    name: str
    model: str
    alpha: float
    beta: float
    labels: int = 50
    steps: int = 1000
    part: str = "table2"


def is_heavy(model: str) -> bool:
    return not model.startswith("small")


def plan(args) -> list[Entry]:
    """The entries of the requested parts."""
    def steps(model):
        return args.heavy_steps if is_heavy(model) and args.heavy_steps else args.steps

    out = []
    if "table2" in args.parts:
        out += [Entry(m, m, *PAPER[m][1], steps=steps(m)) for m in args.models]
    if "sup1000" in args.parts:
        out += [Entry(f"{m}/sup1000", m, 1.0, 0.0, labels=1000, steps=steps(m), part="sup1000") for m in args.models]
    if "ablations" in args.parts:
        m, (a, _) = ABLATION_MODEL, PAPER[ABLATION_MODEL][1]
        out += [Entry(f"{m}/supervised-50", m, 1.0, 0.0, steps=args.steps, part="ablations"),
                Entry(f"{m}/entropy-only", m, a, 0.0, steps=args.steps, part="ablations"),
                Entry(f"{m}/reconstruction-only", m, a, 1.0, steps=args.steps, part="ablations")]
    if "grid" in args.parts:
        out += [Entry(f"{ABLATION_MODEL}/grid-{a}-{b}", ABLATION_MODEL, a, b, steps=args.grid_steps, part="grid")
                for a in args.grid_alphas for b in args.grid_betas]
    return out


def seeds_for(entry: Entry, args) -> list[int]:
    """Label draws of an entry: ``--grid-seeds`` for the grid, ``--seeds`` for the main
    row (``smallcnn-mean`` with 50 labels), ``--other-seeds`` (default: ``--seeds``) for
    the others."""
    if entry.part == "grid":
        return args.grid_seeds
    if entry.part == "table2" and entry.model == ABLATION_MODEL:
        return args.seeds
    return args.other_seeds if args.other_seeds is not None else args.seeds


def num_classes(args) -> int:
    """Classes of ``--dataset`` (Table 2's label counts are totals over MNIST's 10 classes)."""
    from invlab.data import MNIST_CLASSES, load_dataset

    if not hasattr(args, "_classes"):
        args._classes = (len(MNIST_CLASSES) if args.dataset == "mnist" else
                         load_dataset(args.dataset, None, 0, args.val_size, root=args.data_root).num_classes)
    return args._classes


def config_for(entry: Entry, seed: int, args):
    """The training config of one (entry, seed) run: the recipe of the command line."""
    from invlab.train import TrainConfig

    supervised = entry.alpha == 1.0
    labelled_batch, unlabelled_batch = (args.heavy_batch if is_heavy(entry.model) and args.heavy_batch
                                        else (args.labelled_batch, args.unlabelled_batch))
    return TrainConfig(
        recipe="paper",  # the paper's setting, each of its fields from the command line
        model=entry.model,
        dataset=args.dataset,
        labels_per_class=entry.labels // num_classes(args),
        alpha=entry.alpha,
        beta=entry.beta,
        seed=seed,
        steps=entry.steps,
        lr=args.lr,
        schedule=args.schedule,
        milestones=tuple(args.milestones),
        lr_decay=args.lr_decay,
        reconstruction=args.reconstruction,
        reduce_dims=args.reduce_dims,
        preprocess=args.preprocess,
        bias=args.bias,
        init=args.init,
        balanced=args.balanced,
        balance=args.balance,
        labelled_batch=labelled_batch,
        # alpha = 1 ignores unlabelled samples: leave them out of the batch (same gradient, 1/3 of the cost)
        unlabelled_batch=0 if supervised else unlabelled_batch,
        eval_every=args.grid_eval_every if entry.part == "grid" else args.eval_every,
        val_size=args.val_size,
        data_root=args.data_root,
        device=args.device,
        log_unweighted=False,
        cuda_graph=args.cuda_graph,
    )


def run_all(entries: list[Entry], args) -> dict[tuple[str, int], dict | None]:
    """Run every (entry, seed), each in its own resumable folder under ``--runs-dir``
    (finished runs are read back, unfinished ones continue from their last checkpoint);
    returns results by (name, seed), ``None`` for a run not finished (``--report-only``)
    or failed (``--keep-going``).

    Runs start draw by draw (every entry's first seed, then every entry's second, ...),
    the heavy models first within a draw: a study cut short still covers every entry,
    and the long runs do not trail at the end."""
    from invlab.experiments.studies import run_many
    from invlab.train import run_key

    planned = []
    for e in entries:
        for k, seed in enumerate(seeds_for(e, args)):
            planned.append((k, not is_heavy(e.model), e, seed))
    planned.sort(key=lambda t: t[:2])  # stable: entry order kept within a draw
    runs, keys = [], []
    for _, _, e, seed in planned:
        config = config_for(e, seed, args)
        runs.append((config, Path(args.runs_dir) / f"{e.name.replace('/', '_')}-seed{seed}-{run_key(config)}"))
        keys.append((e.name, seed))
    results = run_many(runs, args.jobs, labels=[f"{name} seed {seed}" for name, seed in keys],
                       train=not args.report_only, keep_going=args.keep_going,
                       device=args.device, storage=args.storage, study=args.study, name="benchmarks/paper/table2.py")
    return dict(zip(keys, results))


def summarise(entries: list[Entry], results: dict, args) -> dict[str, dict]:
    from invlab.experiments.studies import best_test_epoch, mean_std

    rows = {}
    for e in entries:
        planned = seeds_for(e, args)
        seeds = [s for s in planned if results.get((e.name, s)) is not None]
        if not seeds:  # nothing finished (--report-only) or every run failed (--keep-going)
            continue
        runs = [results[(e.name, s)] for s in seeds]
        test = [r["test_accuracy"] for r in runs]
        val = [r["best_val_accuracy"] for r in runs]
        paper = PAPER[e.model]
        rows[e.name] = {
            "model": e.model, "part": e.part, "alpha": e.alpha, "beta": e.beta, "labels": e.labels,
            "seeds": list(seeds), "missing_seeds": [s for s in planned if s not in seeds],
            "test_accuracies": test, "mean": mean_std(test)[0], "std": mean_std(test)[1],
            "val_accuracies": val, "val_mean": mean_std(val)[0], "val_std": mean_std(val)[1],
            # the paper's protocol (best test evaluation of each draw): test-selected, comparison only
            "test_selected_accuracies": [best_test_epoch(r)[0] for r in runs],
            "test_selected_mean": mean_std([best_test_epoch(r)[0] for r in runs])[0],
            "best_steps": [r["best_step"] for r in runs], "steps": e.steps,
            "wall_time_s": sum(r["wall_time_s"] for r in runs),
            "wall_time_s_per_run": mean_std([r["wall_time_s"] for r in runs])[0],
            "hardware": runs[0]["hardware"], "threads_per_run": runs[0].get("threads"),
            "reduced_budget": e.steps < args.steps or bool(is_heavy(e.model) and args.heavy_batch),
            "batch": [runs[0]["config"]["labelled_batch"], runs[0]["config"]["unlabelled_batch"]],
            "paper": paper[2] if e.part == "sup1000" else (paper[0] if e.part == "table2" else None),
            "time_to_99_s": _time_to(runs, 99.0),
            "time_to_selected_s": [next(h["elapsed_s"] for h in r["history"] if h["step"] == r["best_step"])
                                   for r in runs],
            "curve": _mean_curve(runs),
        }
    return rows


def _time_to(runs: list[dict], target: float) -> list[float | None]:
    """Per run: seconds until the first evaluation with test accuracy >= target (None: never)."""
    return [next((h["elapsed_s"] for h in r["history"] if h["test_accuracy"] >= target), None) for r in runs]


def _mean_curve(runs: list[dict]) -> dict[str, list[float]]:
    """Validation and test accuracy per evaluation step, averaged over seeds."""
    steps = [h["step"] for h in runs[0]["history"]]
    curve = {"step": steps}
    for key in ("val_accuracy", "test_accuracy"):
        curve[key] = [sum(r["history"][i][key] for r in runs) / len(runs) for i in range(len(steps))]
    return curve


def recipe(args) -> dict:
    return {
        "lr": args.lr if args.lr is not None else "the paper's per model: 0.01 SmallCNNs, 0.01/3 the others",
        "schedule": args.schedule,
        "reconstruction": args.reconstruction,
        "reduce_dims": args.reduce_dims,
        "preprocess": args.preprocess,
        "bias": args.bias,
        "init": args.init,
        "balanced": args.balanced,
        "balance": args.balance,
        **({"milestones": args.milestones, "lr_decay": args.lr_decay} if args.schedule == "step" else {}),
        "labelled_batch": args.labelled_batch,
        "unlabelled_batch": args.unlabelled_batch,
        "unlabelled_batch_when_alpha_is_1": 0,
        "eval_every": args.eval_every,
        "val_size": args.val_size,
        "optimizer": "Adam",
    }


def _pm(mean: float, std: float, seeds: list) -> str:
    """mean ± std over draws; one draw has no spread to show."""
    return f"{mean:.2f} ± {std:.2f}" if len(seeds) > 1 else f"{mean:.2f} (one draw)"


def table_markdown(out: dict) -> str:
    from invlab.io import markdown_table
    from invlab.training.provenance import provenance_line

    rows = out["models"]
    table = []
    for name, r in rows.items():
        paper = "" if r["paper"] is None else f"{r['paper']:.2f}"
        budget = f"{r['steps']}" + (f" (reduced, batch {r['batch'][0]}+{r['batch'][1]})" if r["reduced_budget"] else "")
        table.append([name, f"({r['alpha']}, {r['beta']})", r["labels"], budget, _pm(r["mean"], r["std"], r["seeds"]),
                      _pm(r["val_mean"], r["val_std"], r["seeds"]), paper, f"{r['test_selected_mean']:.2f}",
                      f"{len(r['seeds'])}{_missing(r)}", f"{statistics.fmean(r['time_to_selected_s']):.0f}",
                      f"{r['hardware']} ({r['threads_per_run']} thread{'s' if r['threads_per_run'] != 1 else ''} "
                      "per run)"])
    lines = [markdown_table(["entry", "(α, β)", "labels", "steps", "test (%) mean ± std", "validation (%)", "paper (%)",
                             "best test evaluation (%), test-selected, comparison only", "seeds",
                             "time to the selected step (s)", "hardware"], table)]
    missing = [m for m in PAPER if m not in rows]
    if missing:
        lines += ["", "Not run by this command: " + ", ".join(missing) + "."]
    lines += ["", provenance_line({**out, "hardware": None},
                                  "recipe: " + ", ".join(f"{k} {v}" for k, v in out["recipe"].items())), ""]
    return "\n".join(lines)


def _missing(row: dict) -> str:
    """Table note for draws planned but not finished (a report of a study under way)."""
    missing = row.get("missing_seeds") or []
    return f" of {len(row['seeds']) + len(missing)} (not finished: {', '.join(map(str, missing))})" if missing else ""


def grid_markdown(out: dict) -> str:
    from invlab.io import markdown_table
    from invlab.training.provenance import provenance_line

    cells, alphas, betas = out["cells"], out["alphas"], out["betas"]
    grid = [
        [a, *(f"{c['val_mean']:.2f} / {c['mean']:.2f} ± {c['std']:.2f}" for c in (cells[f"{a},{b}"] for b in betas))]
        for a in alphas
    ]
    lines = ["Validation / test accuracy (%) of `smallcnn-mean`, mean over seeds "
             f"{out['seeds']}, {out['steps']} steps.", "", markdown_table(["α \\ β", *betas], grid)]
    best = out["selected_on_validation"]
    lines += ["", f"Selected on validation: α = {best['alpha']}, β = {best['beta']} (test {best['test']:.2f} %).",
              provenance_line(out), ""]
    return "\n".join(lines)


def figures(rows: dict, grid: dict | None, fig_dir: Path) -> list[Path]:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    from invlab.io import save_figures

    written = []
    table = {n: r for n, r in rows.items() if r["part"] in ("table2", "sup1000", "ablations")}
    if table:
        names = list(table)
        fig = go.Figure()
        fig.add_trace(go.Bar(x=names, y=[table[n]["mean"] for n in names], name="invlab (mean ± std over seeds)",
                             error_y={"type": "data", "array": [table[n]["std"] for n in names]}))
        fig.add_trace(go.Scatter(x=names, y=[table[n]["paper"] for n in names], mode="markers", name="paper",
                                 marker={"symbol": "diamond", "size": 11}))
        low = min(min(r["test_accuracies"]) for r in table.values())
        fig.update_layout(title="MNIST test accuracy per model and setting (model chosen on validation)",
                          yaxis={"title": "test accuracy (%)", "range": [max(0, low - 3), 100]},
                          template="plotly_white", height=450)
        written.append(save_figures(fig, fig_dir / "table2_accuracy.json"))  # the figure's data: drawn by the site

        fig = make_subplots(rows=1, cols=2, subplot_titles=("validation accuracy (%)", "test accuracy (%)"))
        for name, r in table.items():
            for col, key in ((1, "val_accuracy"), (2, "test_accuracy")):
                fig.add_trace(go.Scatter(x=r["curve"]["step"], y=r["curve"][key], mode="lines+markers", name=name,
                                         legendgroup=name, showlegend=col == 1), row=1, col=col)
        fig.update_xaxes(title_text="step")
        fig.update_layout(title="Learning curves, mean over seeds", template="plotly_white", height=450)
        written.append(save_figures(fig, fig_dir / "table2_curves.json"))
    if grid:
        fig = make_subplots(rows=1, cols=2, subplot_titles=("validation accuracy (%)", "test accuracy (%)"))
        for col, key in ((1, "val_mean"), (2, "mean")):
            z = [[grid["cells"][f"{a},{b}"][key] for b in grid["betas"]] for a in grid["alphas"]]
            fig.add_trace(go.Heatmap(z=z, x=[str(b) for b in grid["betas"]], y=[str(a) for a in grid["alphas"]],
                                     text=[[f"{v:.2f}" for v in row] for row in z], texttemplate="%{text}",
                                     colorscale="Viridis", showscale=col == 2), row=1, col=col)
        fig.update_xaxes(title_text="β")
        fig.update_yaxes(title_text="α")
        fig.update_layout(title=f"(α, β) grid, smallcnn-mean, mean over seeds {grid['seeds']}, {grid['steps']} steps",
                          template="plotly_white", height=420)
        written.append(save_figures(fig, fig_dir / "ab_grid.json"))
    return written


#: TrainConfig fields that are options of this script (the rest is set per entry).
RECIPE_OPTIONS = ("lr", "schedule", "milestones", "lr_decay", "preprocess", "bias", "init", "balanced", "balance",
                  "reconstruction", "reduce_dims", "labelled_batch", "unlabelled_batch", "eval_every", "val_size",
                  "dataset", "data_root", "device", "cuda_graph")


def parse_args(argv=None):
    from invlab.training.options import add_config_options, add_study_options, check_study_options

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--parts", nargs="+", choices=PARTS, default=["table2", "sup1000", "ablations"])
    p.add_argument("--models", nargs="+", default=list(PAPER), choices=list(PAPER), metavar="MODEL",
                   help="Table 2 / Sup1000 topologies (default: all 12)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--other-seeds", type=int, nargs="+", default=None,
                   help="label draws of every entry but smallcnn-mean's main row (default: --seeds)")
    p.add_argument("--steps", type=int, default=1000, help="optimiser steps per run (the full budget)")
    p.add_argument("--heavy-steps", type=int, default=None,
                   help="reduced budget for LargeCNN and ResNets (marked 'reduced' in the table)")
    p.add_argument("--heavy-batch", type=int, nargs=2, default=None, metavar=("LABELLED", "UNLABELLED"),
                   help="smaller batches for LargeCNN and ResNets on a CPU (marked 'reduced' in the table)")
    p.add_argument("--grid-seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--grid-steps", type=int, default=1000)
    p.add_argument("--grid-alphas", type=float, nargs="+", default=list(GRID_ALPHAS))
    p.add_argument("--grid-betas", type=float, nargs="+", default=list(GRID_BETAS))
    p.add_argument("--grid-eval-every", type=int, default=250)
    # the recipe: TrainConfig's own options (invlab.training.options), the paper recipe's defaults
    from invlab.train import TrainConfig

    add_config_options(p, TrainConfig(recipe="paper", val_size=10_000), only=RECIPE_OPTIONS)
    # plumbing
    add_study_options(p, storage=True)
    p.add_argument("--sweep", action="store_true", help=argparse.SUPPRESS)  # always a study now; kept for old commands
    p.add_argument("--runs-dir", default="runs/table2",
                   help="one resumable folder per run (checkpoint, then result): rerun the command to continue")
    p.add_argument("--out", default="results/table2.json")
    p.add_argument("--grid-out", default="results/ab_grid.json")
    p.add_argument("--figures", default="docs/figures", help="folder of the HTML figures")
    p.add_argument("--no-figures", action="store_true", help="write no figures (a machine without plotly)")
    return check_study_options(p, p.parse_args(argv))


def main(argv=None) -> int:
    from invlab.experiments.studies import runs_hardware
    from invlab.io import save_report
    from invlab.training.provenance import results_header

    args = parse_args(argv)
    entries = plan(args)
    t0 = time.perf_counter()
    results = run_all(entries, args)
    rows = summarise(entries, results, args)
    if not rows:
        print("no finished run to report", file=sys.stderr)
        return 1
    # the machine(s) the runs were made on, which need not be the one writing the report
    prov = {**results_header(device=args.device), "hardware": runs_hardware(list(results.values()))}
    table_rows = {n: r for n, r in rows.items() if r["part"] != "grid"}
    grid = None
    if table_rows:
        out = {"models": table_rows, "recipe": recipe(args), **prov,
               # --report-only: the provenance describes the report; each row's hardware, the runs
               "report_only": args.report_only,
               "train_time_s_total": sum(r["wall_time_s"] for r in table_rows.values()),
               "this_call_s": time.perf_counter() - t0}
        save_report(out, args.out, table_markdown(out))
        print(table_markdown(out))
    grid_rows = [r for r in rows.values() if r["part"] == "grid"]
    if grid_rows and len(grid_rows) < len(args.grid_alphas) * len(args.grid_betas):
        print(f"grid: {len(grid_rows)} cells finished of {len(args.grid_alphas) * len(args.grid_betas)}; "
              "no grid table until every cell has a finished run", file=sys.stderr)
        grid_rows = []
    if grid_rows:
        cells = {f"{r['alpha']},{r['beta']}": r for r in grid_rows}
        best = max(grid_rows, key=lambda r: r["val_mean"])
        grid = {"model": ABLATION_MODEL, "seeds": args.grid_seeds, "steps": args.grid_steps,
                "alphas": args.grid_alphas, "betas": args.grid_betas, "cells": cells,
                "selected_on_validation": {"alpha": best["alpha"], "beta": best["beta"], "test": best["mean"]},
                "recipe": {**recipe(args), "eval_every": args.grid_eval_every}, **prov,
                "workers": args.jobs, "this_call_s": time.perf_counter() - t0}
        save_report(grid, args.grid_out, grid_markdown(grid))
        print(grid_markdown(grid))
    if not args.no_figures:
        for path in figures(rows, grid, Path(args.figures)):
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
