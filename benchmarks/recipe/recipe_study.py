"""The recipe study for ``smallcnn-mean`` with 50 labels: which training protocol closes
the gap to the paper's 99 %?

Each *arm* is the baseline recipe (raw pixels, biases, PyTorch's initialisation, Adam
0.01 with cosine decay, 50 labelled + 100 unlabelled samples per step, (α, β) = (0.7, 0.2))
with one change, run on the same label draws (``--seeds``). Every run is resumable
(:func:`invlab.experiments.runs.run_resumable`): run the same command again, in this session or a
later one, and unfinished runs continue from their last checkpoint under ``--runs-dir``.

For every arm the output gives the honest number — test accuracy at the step with the
best validation accuracy, mean ± std over draws — and, beside it and labelled as such,
the paper's protocol (the best test accuracy over the run's evaluations: test-selected,
biased upwards, for comparison only).

    python -m benchmarks.recipe.recipe_study --jobs 2                      # every arm, draws 0 1 2
    python -m benchmarks.recipe.recipe_study --arms base-2k maxabs-2k --seeds 0 1 2 3 4

Outputs: ``results/recipe_study.json`` (+ ``.md``) and the learning curves
``docs/figures/recipe_study_curves.json``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

BASE = dict(model="smallcnn-mean", labels_per_class=5, alpha=0.7, beta=0.2, lr=0.01, schedule="cosine",
            labelled_batch=50, unlabelled_batch=100, eval_every=250, log_unweighted=False)

#: name: (what changes against the baseline, overrides of TrainConfig). Steps are part of the arm.
ARMS = {
    # training length, the baseline recipe
    "base-1k": ("baseline recipe, 1000 steps (2 passes over the unlabelled pool)", dict(steps=1000)),
    "base-2k": ("baseline recipe, 2000 steps: the reference of the one-change arms", dict(steps=2000)),
    "base-5k": ("baseline recipe, 5000 steps (10 passes)", dict(steps=5000)),
    "base-20k": ("baseline recipe, 20 000 steps (40 passes)", dict(steps=20_000, eval_every=1000)),
    # one change at a time, 2000 steps
    "balance-2k": (
        "class-balance term beside the entropy, λ = 1 (mutual information; not in the paper)",
        dict(steps=2000, balance=1.0),
    ),
    # one change at a time from the best so far (the balance term), 2000 steps
    "balance-maxabs-2k": (
        "balance term + inputs centred and divided by their maximum absolute value, per image",
        dict(steps=2000, balance=1.0, preprocess="center-maxabs"),
    ),
    "balance-nobias-xavier-2k": (
        "balance term + no biases and Xavier-uniform initialisation",
        dict(steps=2000, balance=1.0, bias=False, init="xavier"),
    ),
    "balance-beta05-2k": (
        "balance term + larger reconstruction share, β = 0.5",
        dict(steps=2000, balance=1.0, beta=0.5),
    ),
    "balance-step-2k": (
        "balance term + step schedule (÷5 at 50 % and 75 %) instead of cosine",
        dict(steps=2000, balance=1.0, schedule="step"),
    ),
    "balance-lb20-balanced-2k": (
        "balance term + 20 labelled (2 per class, class-balanced) + 130 unlabelled per step",
        dict(steps=2000, balance=1.0, labelled_batch=20, unlabelled_batch=130, balanced=True),
    ),
    "balance-5k": ("balance term, 5000 steps", dict(steps=5000, balance=1.0)),
    # the next step of the greedy search: from balance + center-maxabs
    "balance-maxabs-nobias-xavier-2k": (
        "balance + center-maxabs + no biases and Xavier initialisation",
        dict(steps=2000, balance=1.0, preprocess="center-maxabs", bias=False, init="xavier"),
    ),
    "balance-maxabs-xavier-2k": (
        "balance + center-maxabs + Xavier-uniform initialisation, biases kept (zeroed)",
        dict(steps=2000, balance=1.0, preprocess="center-maxabs", init="xavier"),
    ),
    "balance-maxabs-beta05-2k": (
        "balance + center-maxabs + larger reconstruction share, β = 0.5",
        dict(steps=2000, balance=1.0, preprocess="center-maxabs", beta=0.5),
    ),
    "balance-maxabs-step-2k": (
        "balance + center-maxabs + step schedule (÷5 at 50 % and 75 %) instead of cosine",
        dict(steps=2000, balance=1.0, preprocess="center-maxabs", schedule="step"),
    ),
    "balance-maxabs-lb20-balanced-2k": (
        "balance + center-maxabs + 20 labelled (2 per class, class-balanced) + 130 unlabelled per step",
        dict(
            steps=2000, balance=1.0, preprocess="center-maxabs", labelled_batch=20, unlabelled_batch=130, balanced=True
        ),
    ),
    "balance-maxabs-5k": (
        "balance + center-maxabs, 5000 steps",
        dict(steps=5000, balance=1.0, preprocess="center-maxabs"),
    ),
    "balance-maxabs-20k": (
        "balance + center-maxabs, 20 000 steps",
        dict(steps=20_000, balance=1.0, preprocess="center-maxabs", eval_every=1000),
    ),
    "balance-20k": ("balance term, 20 000 steps", dict(steps=20_000, balance=1.0, eval_every=1000)),
    # one change at a time from the paper's loss, 2000 steps
    "maxabs-2k": (
        "inputs centred and divided by their maximum absolute value, per image (author's code)",
        dict(steps=2000, preprocess="center-maxabs"),
    ),
    "nobias-xavier-2k": (
        "no biases anywhere (f(x) = A[x]x) and Xavier-uniform initialisation (author's code)",
        dict(steps=2000, bias=False, init="xavier"),
    ),
    "step-2k": (
        "step schedule: lr ÷5 at 50 % and 75 % of the run (author's code) instead of cosine",
        dict(steps=2000, schedule="step"),
    ),
    "beta05-2k": ("larger reconstruction share: β = 0.5", dict(steps=2000, beta=0.5)),
    "lb20-balanced-2k": (
        "batch composition: 20 labelled (2 per class, class-balanced) + 130 unlabelled",
        dict(steps=2000, labelled_batch=20, unlabelled_batch=130, balanced=True),
    ),
    "author-2k": (
        "the author's later protocol together: center-maxabs, no bias, Xavier, step schedule, "
        "batches of 10 labelled (class-balanced) + 40 unlabelled",
        dict(
            steps=2000,
            preprocess="center-maxabs",
            bias=False,
            init="xavier",
            schedule="step",
            labelled_batch=10,
            unlabelled_batch=40,
            balanced=True,
        ),
    ),
}


def config_for(arm: str, seed: int, args):
    from invlab.train import TrainConfig

    overrides = dict(ARMS[arm][1])
    if args.steps is not None:
        overrides["steps"] = args.steps
    if args.eval_every is not None:
        overrides["eval_every"] = args.eval_every
    if args.dataset != "mnist":
        overrides["dataset"] = args.dataset
    return TrainConfig(recipe="paper", **{**BASE, **overrides}, seed=seed, device=args.device,
                       cuda_graph=args.cuda_graph, val_size=args.val_size, data_root=args.data_root)


def summarise(arm: str, runs: list[dict], seeds: list[int]) -> dict:
    from invlab.experiments.studies import best_test_epoch, mean_std

    test = [r["test_accuracy"] for r in runs]
    val = [r["best_val_accuracy"] for r in runs]
    paper = [best_test_epoch(r)[0] for r in runs]
    steps = [h["step"] for h in runs[0]["history"]]
    return {
        "description": ARMS[arm][0], "overrides": ARMS[arm][1], "steps": runs[0]["config"]["steps"],
        "seeds": seeds, "test_accuracies": test, "mean": mean_std(test)[0], "std": mean_std(test)[1],
        "val_accuracies": val, "val_mean": mean_std(val)[0], "best_steps": [r["best_step"] for r in runs],
        "test_selected_accuracies": paper, "test_selected_mean": mean_std(paper)[0],
        "test_selected_std": mean_std(paper)[1],
        "final_test_accuracies": [r["final_test_accuracy"] for r in runs],
        "elapsed_s": [r.get("elapsed_s", r["wall_time_s"]) for r in runs],
        "eval_time_s": [r["extra"].get("eval_time_s") for r in runs],
        "hardware": runs[0]["hardware"], "threads_per_run": runs[0]["threads"],
        "config": {k: v for k, v in runs[0]["config"].items() if k not in ("seed", "data_root")},
        "curve": {"step": steps,
                  **{k: [sum(r["history"][i][k] for r in runs) / len(runs) for i in range(len(steps))]
                     for k in ("val_accuracy", "test_accuracy")},
                  "per_seed_val": [[h["val_accuracy"] for h in r["history"]] for r in runs]},
    }


def markdown(out: dict) -> str:
    from invlab.io import markdown_table
    from invlab.training.provenance import provenance_line

    lines = [
        markdown_table(
            [
                "arm",
                "steps",
                "test (%) mean ± std, validation-selected",
                "per draw",
                "best test epoch (%) — test-selected, comparison only",
                "minutes per run",
                "change",
            ],
            [
                [
                    name,
                    r["steps"],
                    f"**{r['mean']:.2f} ± {r['std']:.2f}**",
                    " / ".join(f"{a:.2f}" for a in r["test_accuracies"]),
                    f"{r['test_selected_mean']:.2f} ± {r['test_selected_std']:.2f}",
                    f"{sum(r['elapsed_s']) / len(r['elapsed_s']) / 60:.1f}",
                    r["description"],
                ]
                for name, r in out["arms"].items()
            ],
        )
    ]
    any_arm = next(iter(out["arms"].values()))
    lines += ["", f"Label draws (seeds) {any_arm['seeds']}; {any_arm['hardware']}, {any_arm['threads_per_run']} "
              "thread(s) per run. " + provenance_line({**out, "hardware": None}), ""]
    return "\n".join(lines)


def figure(out: dict):
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, subplot_titles=("validation accuracy (%)", "test accuracy (%)"))
    for name, r in out["arms"].items():
        for col, key in ((1, "val_accuracy"), (2, "test_accuracy")):
            fig.add_trace(go.Scatter(x=r["curve"]["step"], y=r["curve"][key], mode="lines+markers", name=name,
                                     legendgroup=name, showlegend=col == 1), row=1, col=col)
    fig.add_hline(y=99.07, line_dash="dot", annotation_text="paper 99.07", row=1, col=2)
    fig.update_xaxes(title_text="step", type="log")
    fig.update_layout(title="smallcnn-mean, 50 labels: learning curves per arm (mean over label draws)",
                      template="plotly_white", height=480)
    return fig


def add_run_options(p: argparse.ArgumentParser) -> None:
    """The options :func:`config_for` reads (TrainConfig's own, invlab.training.options; ``--steps`` and
    ``--eval-every`` override every arm's when given), and the study's (``--jobs``,
    ``--report-only``, ``--keep-going``): shared with ``restarts.py``."""
    from invlab.train import TrainConfig
    from invlab.training.options import add_config_options, add_study_options

    add_config_options(p, TrainConfig(val_size=10_000), only=("steps", "eval_every", "val_size", "device", "cuda_graph",
                                                             "dataset", "data_root"),
                       overrides={"steps": None, "eval_every": None})
    add_study_options(p)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS), metavar="ARM",
                   help="arms to run (default: all): " + ", ".join(ARMS))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="label draws (default 0 1 2)")
    add_run_options(p)
    p.add_argument("--runs-dir", default="runs/recipe_study", help="one resumable folder per run")
    p.add_argument("--out", default="results/recipe_study.json")
    p.add_argument("--figure", default="docs/figures/recipe_study_curves.json", help="'' for none")
    from invlab.training.options import check_study_options

    return check_study_options(p, p.parse_args(argv))


def main(argv=None) -> int:
    from invlab.experiments.studies import run_many, runs_hardware
    from invlab.train import run_key
    from invlab.training.provenance import results_header

    args = parse_args(argv)
    runs, keys = [], []
    for arm in args.arms:
        for seed in args.seeds:
            config = config_for(arm, seed, args)
            runs.append((config, Path(args.runs_dir) / f"{arm}-seed{seed}-{run_key(config)}"))
            keys.append((arm, seed))
    results = run_many(runs, args.jobs, labels=[f"{arm} seed {seed}" for arm, seed in keys],
                       train=not args.report_only, keep_going=args.keep_going)
    arms = {}
    for arm in args.arms:
        finished = [(k[1], results[i]) for i, k in enumerate(keys) if k[0] == arm and results[i] is not None]
        if finished:
            arms[arm] = summarise(arm, [r for _, r in finished], [s for s, _ in finished])
    if not arms:
        print("no finished run to report", file=sys.stderr)
        return 1
    # the machine(s) the runs were made on, which need not be the one writing the report
    out = {"model": BASE["model"], "labels": 50, "arms": arms, "baseline": BASE,
           **results_header(device=args.device), "hardware": runs_hardware(results), "report_only": args.report_only}
    write_outputs(out, args, markdown, figure)
    return 0


def write_outputs(out: dict, args, markdown, figure) -> None:
    """``--out`` (JSON and Markdown), the ``--figure`` unless it is '', and the table printed."""
    from invlab.io import save_report

    text = markdown(out)
    save_report(out, args.out, text)
    if args.figure:
        from invlab.io import save_figures

        save_figures(figure(out), args.figure)
    print(text)


if __name__ == "__main__":
    sys.exit(main())
