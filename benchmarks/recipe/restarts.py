"""Is a bad label draw bad, or only its training run unlucky? Restarts of the recipe.

For each label draw (``--seeds``), ``--restarts`` K runs of one recipe-study arm (default:
the recipe, ``balance-maxabs-2k``) that share the 50 labelled images and differ in their
initialisation and batch order (:attr:`invlab.train.TrainConfig.train_seed`): restart 0 is
the plain run (training seed = label seed), restart k uses ``seed + 1000 k``.

The output separates the two sources of spread: between label draws (the standard
deviation of the per-draw means) and within a draw (the pooled standard deviation over its
restarts). It also gives the accuracy of a protocol that trains K restarts per draw and
keeps the one with the best validation accuracy — honest model selection, the validation
split being carved from the training data — and, labelled as such, the best test restart
(test-selected, comparison only).

A finished run with the same configuration (the same :func:`invlab.train.run_key`) under
one of the ``--reuse`` folders (default: the recipe study's and Table 2's runs) is read
back instead of trained again: restart 0 of the recipe is those studies' run. Every run
resumes from its checkpoint when the command is run again.

    python -m benchmarks.recipe.restarts --seeds 1 4 --restarts 3 --jobs 2
    python -m benchmarks.recipe.restarts --seeds 0 1 2 3 4 --restarts 3 --jobs 2

Outputs: ``results/restarts.json`` (+ ``.md``) and ``docs/figures/restarts.json``.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
from pathlib import Path

from benchmarks.recipe import recipe_study  # the arms and their configs

RESTART_STRIDE = 1000  # restart k of draw s trains with seed s + 1000 k


def train_seed(seed: int, restart: int) -> int | None:
    """The training seed of a restart: ``None`` (the label seed, the plain run) for restart 0."""
    return None if restart == 0 else seed + RESTART_STRIDE * restart


def find_finished(key: str, folders: list[Path]) -> Path | None:
    """A run folder named ``*-{key}`` that holds a finished run, in the first of ``folders``."""
    from invlab.experiments.studies import RESULT

    for folder in folders:
        for run_dir in sorted(folder.glob(f"*-{key}")):
            if (run_dir / RESULT).exists():
                return run_dir
    return None


def plan(args) -> tuple[list, list[tuple[int, int]]]:
    """The (config, run folder) of every (draw, restart), restart-major: a study cut short
    still has restart k of every draw before restart k + 1 of any."""
    import dataclasses

    from invlab.train import run_key

    runs, keys = [], []
    for restart in range(args.restarts):
        for seed in args.seeds:
            config = dataclasses.replace(recipe_study.config_for(args.arm, seed, args),
                                         train_seed=train_seed(seed, restart))
            key = run_key(config)
            run_dir = (find_finished(key, [Path(d) for d in args.reuse])
                       or Path(args.runs_dir) / f"{args.arm}-seed{seed}-restart{restart}-{key}")
            runs.append((config, run_dir))
            keys.append((seed, restart))
    return runs, keys


def pooled_std(groups: list[list[float]]) -> float:
    """Pooled sample standard deviation within groups (groups of one value carry none)."""
    dof = sum(len(g) - 1 for g in groups)
    if dof == 0:
        return float("nan")
    return math.sqrt(sum((len(g) - 1) * statistics.variance(g) for g in groups if len(g) > 1) / dof)


def summarise(results: dict[tuple[int, int], dict], seeds: list[int]) -> dict:
    """Per draw: every restart and the one selected on validation; over draws: the plain
    runs, the validation-selected restarts, the test-selected ones (comparison only), and
    the spread between and within draws."""
    from invlab.experiments.studies import best_test_epoch, mean_std

    draws = {}
    for seed in seeds:
        rs = sorted((k, r) for (s, k), r in results.items() if s == seed and r is not None)
        if not rs:
            continue
        restarts = [{"restart": k, "train_seed": r["config"].get("train_seed") or seed,
                     "val": r["best_val_accuracy"], "test": r["test_accuracy"],
                     "test_selected": best_test_epoch(r)[0], "best_step": r["best_step"],
                     "elapsed_s": r.get("elapsed_s", r["wall_time_s"]),
                     "run": r.get("run_dir")} for k, r in rs]
        chosen = max(restarts, key=lambda x: x["val"])  # ties: the earliest restart
        draws[seed] = {"restarts": restarts, "selected_restart": chosen["restart"], "selected_test": chosen["test"],
                       "selected_val": chosen["val"], "plain_test": restarts[0]["test"] if rs[0][0] == 0 else None,
                       "mean_test": statistics.fmean(x["test"] for x in restarts),
                       "best_test": max(x["test_selected"] for x in restarts)}
    if not draws:
        return {}
    complete = [d for d in draws.values() if len(d["restarts"]) == max(len(e["restarts"]) for e in draws.values())]

    def over(key, ds=tuple(draws.values())):
        values = [d[key] for d in ds if d[key] is not None]
        m, s = mean_std(values) if values else (float("nan"), float("nan"))
        return {"mean": m, "std": s, "n": len(values)}

    return {"draws": {str(s): d for s, d in draws.items()},
            "restarts_per_draw": {str(s): len(d["restarts"]) for s, d in draws.items()},
            "plain": over("plain_test"), "validation_selected": over("selected_test", complete),
            "mean_over_restarts": over("mean_test", complete), "test_selected": over("best_test", complete),
            "between_draws_std": over("mean_test", complete)["std"],
            "within_draw_std": pooled_std([[x["test"] for x in d["restarts"]] for d in complete])}


def markdown(out: dict) -> str:
    s = out["summary"]
    k = max(s["restarts_per_draw"].values())
    from invlab.io import markdown_table
    from invlab.training.provenance import provenance_line

    rows = [[seed, *(f"{x['test']:.2f} ({x['val']:.2f})" for x in d["restarts"]), *["—"] * (k - len(d["restarts"])),
             f"**{d['selected_test']:.2f}** (restart {d['selected_restart']})", f"{d['best_test']:.2f}"]
            for seed, d in s["draws"].items()]
    lines = [markdown_table(["label draw", *(f"restart {i}: test (val) %" for i in range(k)),
                             "selected on validation: test %",
                             "best test evaluation of any restart % (test-selected)"], rows)]

    def ms(row):
        return f"{row['mean']:.2f} ± {row['std']:.2f} % ({row['n']} draws)"

    lines += ["", f"* Plain runs (restart 0): {ms(s['plain'])}.",
              f"* Best of {k} restarts, selected on validation: **{ms(s['validation_selected'])}**.",
              f"* Mean over restarts: {ms(s['mean_over_restarts'])}; spread between draws (std of the per-draw "
              f"means) {s['between_draws_std']:.2f} points, within a draw (pooled std over restarts) "
              f"{s['within_draw_std']:.2f} points.",
              f"* Best test evaluation of any restart (test-selected, comparison only): {ms(s['test_selected'])}.",
              "", f"Arm `{out['arm']}` ({out['description']}); restart k trains with training seed "
              f"label seed + {RESTART_STRIDE} k. " + provenance_line(out), ""]
    return "\n".join(lines)


def figure(out: dict):
    import plotly.graph_objects as go

    fig = go.Figure()
    draws = out["summary"]["draws"]
    for seed, d in draws.items():
        xs = [f"draw {seed}"] * len(d["restarts"])
        fig.add_trace(go.Scatter(
            x=xs, y=[x["test"] for x in d["restarts"]], mode="markers", name=f"draw {seed}", showlegend=False,
            marker=dict(size=10, symbol=["star" if x["restart"] == d["selected_restart"] else "circle"
                                         for x in d["restarts"]]),
            text=[f"restart {x['restart']} (training seed {x['train_seed']}): validation {x['val']:.2f} %"
                  for x in d["restarts"]], hovertemplate="%{text}<br>test %{y:.2f} %<extra></extra>"))
    fig.add_hline(y=99.07, line_dash="dot", annotation_text="paper 99.07 (one draw, test-selected)")
    fig.update_layout(title=f"{out['model']}, 50 labels: test accuracy of each restart per label draw "
                            "(star: the restart selected on validation)",
                      yaxis_title="test accuracy (%)", template="plotly_white", height=460)
    return fig


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arm", default="balance-maxabs-2k", choices=list(recipe_study.ARMS), metavar="ARM",
                   help="the recipe-study arm to restart (default: the recipe, %(default)s)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4], help="label draws (default 0-4)")
    p.add_argument("--restarts", type=int, default=3, help="runs per draw, restart 0 the plain run (default 3)")
    recipe_study.add_run_options(p)
    p.add_argument("--runs-dir", default="runs/restarts", help="one resumable folder per new run")
    p.add_argument("--reuse", nargs="*", default=["runs/recipe_study", "runs/table2"],
                   help="folders whose finished runs of the same configuration are read back, not retrained")
    p.add_argument("--out", default="results/restarts.json")
    p.add_argument("--figure", default="docs/figures/restarts.json", help="'' for none")
    from invlab.training.options import check_study_options

    args = check_study_options(p, p.parse_args(argv))
    if args.restarts < 1:
        p.error("--restarts must be at least 1")
    if len(set(args.seeds)) != len(args.seeds):
        p.error("--seeds: give each label draw once")
    return args


def main(argv=None) -> int:
    from invlab.experiments.studies import run_many, runs_hardware
    from invlab.training.provenance import results_header

    args = parse_args(argv)
    runs, keys = plan(args)
    results = run_many(runs, args.jobs, labels=[f"draw {seed} restart {restart}" for seed, restart in keys],
                       train=not args.report_only, keep_going=args.keep_going)
    for (_, run_dir), res in zip(runs, results):
        if res is not None:
            res["run_dir"] = str(run_dir)
    summary = summarise(dict(zip(keys, results)), args.seeds)
    if not summary:
        print("no finished run to report", file=sys.stderr)
        return 1
    out = {"model": recipe_study.BASE["model"], "labels": 50, "arm": args.arm,
           "description": recipe_study.ARMS[args.arm][0], "restart_stride": RESTART_STRIDE, "summary": summary,
           **results_header(device=args.device), "hardware": runs_hardware(results), "report_only": args.report_only}
    recipe_study.write_outputs(out, args, markdown, figure)
    return 0


if __name__ == "__main__":
    sys.exit(main())
