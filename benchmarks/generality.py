"""Where reconstruction helps: every method with and without R, on MNIST and Fashion-MNIST,
draw by draw, after the same tuning for each (Oliver et al. 2018's protocol).

Stages, each an ``invlab sweep`` study in one storage (resumable: rerun the same command):

1. ``tune`` — per method, the same number of TPE trials (``--trials``) over its own knobs
   and the learning rate (``benchmarks/spaces/generality-<method>.json``), scored on the
   validation split of Fashion-MNIST, label draw 0, without R;
2. ``runs`` — each method's best tuned setting (its published defaults until its tuning
   has finished) on MNIST and Fashion-MNIST, 5 labels per class, draws ``--seeds``, without
   R (beta = 0) and with R (beta = ``--beta``); then, once those are done, the principled
   changes of :data:`CHANGES` to entropy with R on ``--change-dataset`` (Fashion-MNIST,
   where R helped least), draws ``--change-seeds``, judged on validation accuracy against
   round one; then ``--more-labels`` per class (50: 500 labels) for ``--more-methods``
   (``best``: the method with the best mean validation accuracy without R in the first
   round), draws ``--more-seeds``;
3. ``report`` — ``results/generality.json`` (one entry per finished run), its Markdown
   twin and ``docs/figures/generality.html``; written from whatever has finished.

    python -m benchmarks.generality --stage all --worker 0 &   # two workers, one thread each
    python -m benchmarks.generality --stage all --worker 1 &
    python -m benchmarks.generality --stage report

Worker k tunes the methods k, k + W, ... (W = ``--workers``), then takes runs from the
shared queue. Every run keeps its checkpoints under ``--runs-dir``: a killed worker's run
resumes where it stopped.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
from pathlib import Path

from invlab.methods import METHODS

SPACES = Path(__file__).resolve().parent / "spaces"
BASELINES = tuple(m for m in METHODS if m != "inversion")  # inversion = entropy with R
#: Principled changes to the paper's method (entropy with R), tried on the validation split
#: where R helps least: the reconstruction loss's form, reconstruction at hidden layers too
#: (eqs. 11-12), and per-image standardisation instead of centring and max-abs scaling.
CHANGES = {"cosine-R": {"reconstruction": "cosine"},
           "per-layer-R": {"layers": {"features.2": 0.06, "features.5": 0.06}},
           "standardize": {"preprocess": "standardize"}}
#: Changes that are not R's alone (the input scaling acts on every term): run without R too,
#: so that their gain with R can be set against their gain without it.
CONTROLS = ("standardize",)


def storage(args) -> str:
    return args.storage or f"sqlite:///{Path(args.runs_dir) / 'sweeps.db'}"


#: Every method tuned on each data set: the baselines (tuned without R) and the paper's method
#: (``inversion``: entropy with R, its learning rate, beta and balance tuned together).
TUNED = (*BASELINES, "inversion")
#: How the tuning prunes: asynchronous successive halving in training steps, rungs at
#: ``--min-resource`` x 2^k (500, 1000, 2000 of 2000 steps): a trial goes on past a rung only
#: in the top half of the trials that reached it (about half the steps of full trials).
PRUNER = "successive-halving"


def tune_study(args, dataset: str, method: str) -> str:
    return f"{args.prefix}-tune-{dataset}-{method}"


def tuned(args, method: str, dataset: str) -> tuple[dict, int]:
    """The best parameters of ``method``'s tuning study on ``dataset`` (empty until it has
    finished) and the number of its finished (completed or pruned) trials."""
    summary = tuning_summary(args, method, dataset)
    best = summary["best"]["params"] if summary.get("finished") else {}
    return dict(best), summary["finished_trials"]


def tuning_summary(args, method: str, dataset: str) -> dict:
    """Every completed trial of ``method``'s tuning on ``dataset``: parameters, validation and
    (never used to choose) test accuracy, and the best one so far; the pruned trials' count
    and the steps all trials trained (what pruning saved)."""
    import optuna

    from invlab import sweep

    with sweep._opened(storage(args)) as st_storage:
        try:
            st = optuna.load_study(study_name=tune_study(args, dataset, method), storage=st_storage)
        except KeyError:
            return {"completed_trials": 0, "pruned_trials": 0, "finished_trials": 0, "trials": []}
        all_trials = st.get_trials(deepcopy=False)
    done = [t for t in all_trials if t.state.name == "COMPLETE"]
    pruned = [t for t in all_trials if t.state.name == "PRUNED"]
    trials = [{"number": t.number, "params": t.params, "val_accuracy": t.value,
               "test_accuracy": t.user_attrs.get("test_accuracy")} for t in done]
    best = max(trials, key=lambda t: (t["val_accuracy"], -t["number"])) if trials else None
    steps = sum(t.user_attrs.get("steps_done") or 0 for t in done) + sum(t.user_attrs.get("pruned_at") or 0
                                                                         for t in pruned)
    full = (len(done) + len(pruned)) * (args.steps or 2000)
    return {"dataset": dataset, "completed_trials": len(done), "pruned_trials": len(pruned),
            "finished_trials": len(done) + len(pruned), "finished": len(done) + len(pruned) >= args.trials,
            "steps_trained": steps, "steps_of_full_trials": full, "best": best, "trials": trials,
            "pruned": [{"number": t.number, "params": t.params, "pruned_at": t.user_attrs.get("pruned_at"),
                        "val_accuracy": t.user_attrs.get("best_val_accuracy")} for t in pruned]}


def _taken(args, dataset: str, method: str) -> int:
    """Trials of a tuning study finished, running or waiting (a dead worker's running trial
    is failed and enqueued again first, so it counts once)."""
    import optuna
    from optuna.storages import fail_stale_trials

    from invlab import sweep

    with sweep._opened(storage(args), heartbeat=60) as st_storage:
        st = optuna.load_study(study_name=tune_study(args, dataset, method), storage=st_storage)
        fail_stale_trials(st)
        return sum(t.state.name in ("COMPLETE", "PRUNED", "RUNNING", "WAITING") for t in st.get_trials(deepcopy=False))


def tune(args) -> None:
    """Both workers share one queue of tuning studies (every data set x :data:`TUNED`), one
    trial at a time, data set by data set: each study gets ``--trials`` trials, the first
    ``--startup-trials`` random (TPE's start), the rest guided, pruned by :data:`PRUNER`."""
    from invlab import sweep

    studies = [(d, m) for d in args.datasets for m in TUNED]
    for dataset, method in studies:
        try:
            sweep.create(tune_study(args, dataset, method), storage(args), str(SPACES / f"generality-{method}.json"),
                         steps=args.steps, dataset=dataset, pruner=PRUNER,
                         min_resource=args.min_resource if not args.steps else max(1, args.steps // 4),
                         startup_trials=args.startup_trials)
        except ValueError:
            pass  # created by the other worker or an earlier session: continue it
    while True:
        todo = [(d, m) for d, m in studies if _taken(args, d, m) < args.trials]
        if not todo:
            break
        # this worker's share first, so that two workers start on different studies
        dataset, method = todo[args.worker % len(todo)] if len(todo) > 1 else todo[0]
        print(f"[tune] {dataset} {method}: trial {_taken(args, dataset, method) + 1} of {args.trials}", flush=True)
        sweep.work(tune_study(args, dataset, method), storage(args), trials=1, device=args.device,
                   runs_dir=args.runs_dir)


def plan(args, labels: int = 5, methods: tuple[str, ...] = BASELINES) -> dict:
    """{run id: (TrainConfig, run folder)} of ``methods`` with ``labels`` per class on every
    data set and draw, without and with R, in the order workers take them (draw by draw)."""
    from invlab.train import TrainConfig, run_key

    bases = {m: json.loads((SPACES / f"generality-{m}.json").read_text())["base"] for m in methods}
    params = {m: tuned(args, m)[0] for m in methods}  # one read of the storage per method, not per run
    runs = {}
    for seed in args.seeds:
        for dataset in args.datasets:
            for method in methods:
                for with_r in (False, True):
                    fields = {**bases[method], **params[method], "dataset": dataset, "labels_per_class": labels,
                              "seed": seed, "beta": args.beta if with_r else 0.0, "device": args.device}
                    if args.steps:  # smoke runs
                        fields.update(steps=args.steps, eval_every=min(args.steps, fields["eval_every"]))
                    config = TrainConfig(**fields)
                    run_id = f"{dataset}/{labels}/{method}/{'R' if with_r else 'noR'}/{seed}"
                    runs[run_id] = (config, Path(args.runs_dir) / "runs" / run_key(config))
    return runs


def best_method(args) -> str | None:
    """The method of stage 2 with the highest mean validation accuracy without R over every
    data set and draw (the test set never chooses); None until all its runs have finished."""
    first = plan(args)
    rows = collect(args, first)
    if len(rows) < len(first):
        return None
    scores = {m: statistics.fmean(r["val_accuracy"] for r in rows if r["method"] == m and not r["reconstruction"])
              for m in BASELINES}
    return max(scores, key=scores.get)


def more_seeds(args) -> list[int]:
    """The label draws of the 500-label round: ``--more-seeds``, else the first three of
    ``--seeds`` (with ten times the labels a draw decides far less than with five per class)."""
    return args.more_seeds if args.more_seeds is not None else args.seeds[:3]


def more_labels_plan(args) -> dict:
    """Stage 2's 500-label runs (``--more-labels`` per class) of ``--more-methods``, where
    ``best`` stands for :func:`best_method`, on the draws :func:`more_seeds`; empty until
    that is known."""
    methods = []
    for m in args.more_methods:
        m = best_method(args) if m == "best" else m
        if m is None:
            return {}
        methods.append(m)
    more = argparse.Namespace(**{**vars(args), "seeds": more_seeds(args)})
    return plan(more, args.more_labels, tuple(dict.fromkeys(methods)))


def changes_plan(args) -> dict:
    """The changes round: each of :data:`CHANGES` applied to entropy with R (those of
    :data:`CONTROLS` also without R), 5 labels per class, on ``--change-dataset``, draws
    ``--change-seeds``; compared with round one's run of the same draw on validation accuracy."""
    import dataclasses

    from invlab.train import run_key

    round_one = argparse.Namespace(**{**vars(args), "datasets": [args.change_dataset], "seeds": args.change_seeds})
    base = plan(round_one, 5, ("entropy",))
    runs = {}
    for run_id, (config, _) in base.items():
        dataset, labels, method, r, seed = run_id.split("/")
        for name, overrides in CHANGES.items():
            if r == "R" or name in CONTROLS:
                changed = dataclasses.replace(config, **overrides)
                runs[f"{dataset}/{labels}/{method}+{name}/{r}/{seed}"] = (
                    changed, Path(args.runs_dir) / "runs" / run_key(changed))
    return runs


def run(args) -> None:
    from invlab import sweep

    missing = [m for m in BASELINES if tuned(args, m)[1] < args.trials]
    if missing and not args.untuned:
        print(f"[runs] tuning unfinished for {', '.join(missing)}: run the tune stage first (or --untuned)")
        return
    # the changes before the 500-label round: they answer where R fails, on round one's draws
    for stage, runs in (("runs", lambda: plan(args)), ("changes", lambda: changes_plan(args)),
                        ("more", lambda: more_labels_plan(args))):
        runs = runs()  # the 500-label plan is made once the first study is done (it picks its method)
        if not runs:
            print(f"[{stage}] nothing to run yet")
            return
        study = f"{args.prefix}-{stage}-{len(runs)}"
        try:
            sweep.create_runs(study, storage(args), runs, name="generality")
        except Exception as err:  # noqa: BLE001 - the other worker created it a moment ago
            print(f"[{stage}] {study}: {err}; working on the existing study")
        sweep.work(study, storage(args), device=args.device, runs_dir=args.runs_dir)


def collect(args, runs: dict | None = None) -> list[dict]:
    """One entry per finished run of stage 2 (``runs``, else both plans), read from the run
    folders."""
    rows = []
    runs = runs if runs is not None else {**plan(args), **more_labels_plan(args), **changes_plan(args)}
    for run_id, (config, folder) in runs.items():
        from invlab.experiments.studies import RESULT

        if not (folder / RESULT).exists():
            continue
        res = json.loads((folder / RESULT).read_text())
        dataset, labels, method, r, seed = run_id.split("/")
        rows.append({"dataset": dataset, "labels": int(labels) * 10, "method": method, "reconstruction": r == "R",
                     "seed": int(seed), "test_accuracy": res["test_accuracy"], "val_accuracy": res["best_val_accuracy"],
                     "steps": res["steps_done"], "config": res["config"],
                     "minutes": round(res.get("elapsed_s", 0) / 60, 1)})
    return rows


def progress(args, rows: list[dict], planned: dict, more_known: bool) -> dict:
    """What is left of the three rounds (``planned``, their runs), and about how long two
    workers need for it at the median minutes each method's finished runs (``rows``) took,
    with and without R (every run has the same number of steps). Until its method is known
    (``more_known``), the 500-label round counts as one method, with and without R, on every
    data set and draw."""
    from invlab.experiments.studies import RESULT

    left = [run_id for run_id, (_, folder) in planned.items() if not (folder / RESULT).exists()]
    unknown = 0 if more_known else 2 * len(args.datasets) * len(more_seeds(args))
    took: dict[str, list[float]] = {}
    for r in rows:
        took.setdefault(f"{r['method'].split('+')[0]} {'with' if r['reconstruction'] else 'without'} R", []).append(
            r["minutes"])
    # medians: a run that shared the cores with other jobs (tests, timings) takes longer
    per_run = {k: round(statistics.median(v), 1) for k, v in sorted(took.items())}
    overall = statistics.median(m for v in took.values() for m in v) if took else None

    def minutes(run_id: str) -> float | None:
        _, _, method, with_r, _ = run_id.split("/")
        return per_run.get(f"{method.split('+')[0]} {'with' if with_r == 'R' else 'without'} R", overall)

    estimate = None if overall is None else round((sum(minutes(i) for i in left) + unknown * overall) / 60 / 2, 1)
    return {"planned": len(planned) + unknown, "finished": len(planned) - len(left), "remaining": len(left) + unknown,
            "minutes_per_run": per_run, "hours_left_two_workers": estimate}


def gains(rows: list[dict], dataset: str, labels: int) -> dict[tuple[str, int], tuple[float, float]]:
    """{(method, draw): (test accuracy without R, gain of R in points)} for every method and
    draw of ``dataset`` with ``labels`` labels that has finished both with and without R."""
    keyed = {(r["method"], r["reconstruction"], r["seed"]): r["test_accuracy"] for r in rows
             if (r["dataset"], r["labels"]) == (dataset, labels)}
    return {(m, s): (acc, keyed[(m, True, s)] - acc) for (m, with_r, s), acc in sorted(keyed.items())
            if not with_r and (m, True, s) in keyed}


def arms(rows: list[dict], seeds: list[int]) -> list[dict]:
    """Each method without and with R per data set and label count: its test accuracy on
    every finished draw, their mean and (over two draws or more) standard deviation."""
    keyed = {(r["dataset"], r["labels"], r["method"], r["reconstruction"], r["seed"]): r["test_accuracy"] for r in rows}
    out = []
    for dataset, labels in sorted({(r["dataset"], r["labels"]) for r in rows if "+" not in r["method"]}):
        for method in BASELINES:
            for with_r in (False, True):
                done = {s: keyed[k] for s in seeds if (k := (dataset, labels, method, with_r, s)) in keyed}
                if done:
                    out.append({"dataset": dataset, "labels": labels, "method": method, "reconstruction": with_r,
                                "test_accuracy": done, "mean": round(statistics.fmean(done.values()), 2),
                                "std": round(statistics.stdev(done.values()), 2) if len(done) > 1 else None})
    return out


def tables(rows: list[dict], seeds: list[int]) -> str:
    """Methods x draws per data set and label count, without and with R, and R's gain."""
    from invlab.io import markdown_table

    out = []
    stats = {(a["dataset"], a["labels"], a["method"], a["reconstruction"]): a for a in arms(rows, seeds)}
    for dataset, labels in sorted({(r["dataset"], r["labels"]) for r in rows if "+" not in r["method"]}):
        # the draws this group has run (the 500-label round runs fewer)
        ran = [s for s in seeds if any((r["dataset"], r["labels"], r["seed"]) == (dataset, labels, s)
                                       and "+" not in r["method"] for r in rows)]
        draws = [f"draw {s}" for s in ran]
        accuracy, gain = [], []
        gains_of_r = gains(rows, dataset, labels)
        for method in BASELINES:
            for with_r in (False, True):
                if (a := stats.get((dataset, labels, method, with_r))) is None:
                    continue
                vals = [a["test_accuracy"].get(s) for s in ran]
                n = len(a["test_accuracy"])
                spread = f"{a['mean']:.2f} ± {a['std']:.2f} ({n} draws)" if n > 1 else f"{a['mean']:.2f} (one draw)"
                accuracy.append([method, "yes" if with_r else "no",
                                 *(None if v is None else f"{v:.2f}" for v in vals), spread])
            gains_ = [gains_of_r[(method, s)][1] if (method, s) in gains_of_r else None for s in ran]
            done = [g for g in gains_ if g is not None]
            if done:
                gain.append([method, *(None if g is None else f"{g:+.2f}" for g in gains_),
                             f"{statistics.fmean(done):+.2f} ({len(done)} draw{'s' if len(done) > 1 else ''})"])
        out += [f"### {dataset}, {labels} labels (test accuracy %, validation-selected)", "",
                markdown_table(["method", "R", *draws, "mean ± std"], accuracy), "",
                "Gain of R (points, with minus without, same draw):", "",
                markdown_table(["method", *draws, "mean"], gain), ""]
    return "\n".join(out)


def summary(rows: list[dict], seeds: list[int], labels: int = 50) -> dict:
    """The issue's two targets per data set, on the draws where every method has finished
    with and without R (so that every mean is over the same draws): the best method
    without R, chosen by mean validation accuracy, and what R adds to it; invlab's method
    (entropy with R) and invlab's best method (the method with R of the best mean validation
    accuracy: every method takes ``--beta``) against every baseline without R; each
    method's mean gain of R; on each draw, the highest test accuracy of any method (is a
    draw bad for every method?)."""
    out = {}
    for dataset in sorted({r["dataset"] for r in rows if r["labels"] == labels and "+" not in r["method"]}):
        keyed = {(r["method"], r["reconstruction"], r["seed"]): r for r in rows
                 if r["dataset"] == dataset and r["labels"] == labels}
        both = [(m, with_r) for m in BASELINES for with_r in (False, True)]  # every arm
        draws = [s for s in seeds if all((m, with_r, s) in keyed for m, with_r in both)]
        if not draws:
            continue

        def raw(method, with_r, key="test_accuracy"):
            return statistics.fmean(keyed[(method, with_r, s)][key] for s in draws)

        def mean(method, with_r, key="test_accuracy"):
            return round(raw(method, with_r, key), 2)

        def diff(a, b):  # of the unrounded means: the gain tables' mean, to the last digit
            return round(raw(*a) - raw(*b), 2)

        best = max(BASELINES, key=lambda m: mean(m, False, "val_accuracy"))
        best_r = max(BASELINES, key=lambda m: mean(m, True, "val_accuracy"))
        invlab = mean("entropy", True)
        out[dataset] = {
            "labels": labels, "draws": draws,
            "test_mean": {m: {"without_R": mean(m, False), "with_R": mean(m, True)} for m in BASELINES},
            "best_without_R": best, "best_without_R_test": mean(best, False),
            "best_with_R_test": mean(best, True), "gain_of_R_on_best": diff((best, True), (best, False)),
            "invlab_test": invlab, "invlab_minus_baseline": {m: diff(("entropy", True), (m, False)) for m in BASELINES},
            "invlab_best": best_r, "invlab_best_test": mean(best_r, True),
            "invlab_best_minus_baseline": {m: diff((best_r, True), (m, False)) for m in BASELINES},
            "gain_of_R": {m: diff((m, True), (m, False)) for m in BASELINES},
            # is a draw bad for every method? (a description of the draws, not a model selection)
            "highest_per_draw": {s: dict(zip(("method", "reconstruction", "test_accuracy"), max(
                ((m, with_r, keyed[(m, with_r, s)]["test_accuracy"]) for m, with_r in both), key=lambda a: a[2])))
                for s in draws}}
    return out


def label_effect(rows: list[dict], labels: int = 50) -> list[dict]:
    """Is R's gain a low-label effect? For every method, data set and label count other than
    ``labels`` (the 500-label round), on the draws finished there with and without R: the
    mean test accuracy without and with R, R's gain, and R's gain with ``labels`` labels on
    the same draws (:func:`gains` of both)."""
    out = []
    for dataset, n in sorted({(r["dataset"], r["labels"]) for r in rows if r["labels"] != labels}):
        more, few = gains(rows, dataset, n), gains(rows, dataset, labels)
        for method in sorted({m for m, _ in more if "+" not in m}):
            draws = sorted(s for m, s in more if m == method)
            without = statistics.fmean(more[(method, s)][0] for s in draws)
            gain = statistics.fmean(more[(method, s)][1] for s in draws)
            out.append({"dataset": dataset, "labels": n, "method": method, "draws": draws,
                        "without_R": round(without, 2), "with_R": round(without + gain, 2), "gain_of_R": round(gain, 2),
                        f"gain_of_R_with_{labels}_labels": (
                            round(statistics.fmean(few[(method, s)][1] for s in draws), 2)
                            if all((method, s) in few for s in draws) else None)})
    return out


def label_effect_text(effects: list[dict], labels: int = 50) -> str:
    lines = []
    for e in effects:
        other = e[f"gain_of_R_with_{labels}_labels"]
        lines.append(f"- **{e['dataset']}**, {e['method']}, {e['labels']} labels, draws "
                     f"{', '.join(map(str, e['draws']))}: {e['without_R']:.2f} % without R, {e['with_R']:.2f} % with R "
                     f"({e['gain_of_R']:+.2f} points" + ("" if other is None else
                                                         f"; with {labels} labels on the same draws {other:+.2f}") + ")")
    return "### Is R's gain a low-label effect?\n\n" + "\n".join(lines) + "\n" if lines else ""


def summary_text(summ: dict) -> str:
    lines = []
    for dataset, s in summ.items():
        n = len(s["draws"])
        worst = min(s["invlab_minus_baseline"], key=s["invlab_minus_baseline"].get)
        lines.append(
            f"- **{dataset}**, {s['labels']} labels, the {n} draw{'s' if n > 1 else ''} every method has finished "
            f"({', '.join(map(str, s['draws']))}): the best method without R by validation is {s['best_without_R']} "
            f"({s['best_without_R_test']:.2f} % test); with R it gets {s['best_with_R_test']:.2f} % "
            f"({s['gain_of_R_on_best']:+.2f} points). invlab's method (entropy with R): {s['invlab_test']:.2f} %, "
            f"{s['invlab_minus_baseline'][worst]:+.2f} points against its closest baseline without R ({worst}). "
            f"invlab's best method (the method with R of the best validation accuracy): {s['invlab_best']} with R, "
            f"{s['invlab_best_test']:.2f} %, {min(s['invlab_best_minus_baseline'].values()):+.2f} points against its "
            f"closest baseline without R. R's mean gain per method: "
            f"{', '.join(f'{m} {g:+.2f}' for m, g in s['gain_of_R'].items())} points. The highest test accuracy "
            f"of any method on each draw: " + ", ".join(
                f"draw {d} {h['test_accuracy']:.2f} % ({h['method']} {'with' if h['reconstruction'] else 'without'} R)"
                for d, h in s["highest_per_draw"].items()) + ".")
    return "\n".join(lines) if lines else "No draw has finished for every method yet."


def changes(rows: list[dict]) -> dict:
    """{change: its runs' draws, validation and test accuracy, and the mean change of each
    against round one's entropy on the same draw, with R; for :data:`CONTROLS` the same
    without R under ``"without_R"``}, for every change with a finished run."""
    base = {(r["dataset"], r["seed"], r["reconstruction"]): r for r in rows
            if r["method"] == "entropy" and r["labels"] == 50}

    def against(sel):
        return {"dataset": sel[0]["dataset"], "draws": [r["seed"] for r in sel],
                "val_accuracy": [r["val_accuracy"] for r in sel], "test_accuracy": [r["test_accuracy"] for r in sel],
                **{f"mean_change_{k}": round(statistics.fmean(
                    r[f"{k}_accuracy"] - base[(r["dataset"], r["seed"], r["reconstruction"])][f"{k}_accuracy"]
                    for r in sel), 2) for k in ("val", "test")}}

    out = {}
    for name in CHANGES:
        sel = {with_r: [r for r in rows if r["method"] == f"entropy+{name}" and r["reconstruction"] == with_r
                        and (r["dataset"], r["seed"], with_r) in base] for with_r in (True, False)}
        if sel[True]:
            out[name] = against(sel[True])
            if sel[False]:
                out[name]["without_R"] = against(sel[False])
    return out


def changes_table(rows: list[dict]) -> str:
    """Each change to entropy against round one's run of the same draw with the same R: validation
    accuracy (what chooses) and test accuracy, per draw, and the mean change."""
    from invlab.io import markdown_table

    table = [[name, "yes" if with_r else "no", c["dataset"], " / ".join(map(str, c["draws"])),
              " / ".join(f"{v:.2f}" for v in c["val_accuracy"]), f"{c['mean_change_val']:+.2f}",
              " / ".join(f"{v:.2f}" for v in c["test_accuracy"]), f"{c['mean_change_test']:+.2f}"]
             for name, ch in changes(rows).items()
             for with_r, c in ((True, ch), (False, ch.get("without_R"))) if c]
    if not table:
        return ""
    return ("### Changes to entropy (50 labels), against the same draw's run with the same R\n\n"
            + markdown_table(["change", "R", "data set", "draws", "validation %", "mean change (val)", "test %",
                              "mean change (test)"], table) + "\n")


def figure(rows: list[dict], tuning: dict, path: Path) -> None:
    """Top: the tuning trials of every method (validation accuracy), then per data set and
    label count every draw's test accuracy of each method without and with R. Bottom, per
    data set and label count: R's gain on each draw against the same run's accuracy without
    R (does R help the methods and draws that are weak without it more?)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    from invlab.viz.plots import save_figure_html

    groups = sorted({(r["dataset"], r["labels"]) for r in rows if "+" not in r["method"]})
    fig = make_subplots(rows=2, cols=1 + len(groups), vertical_spacing=0.16,
                        specs=[[{}] * (1 + len(groups)), [None] + [{}] * len(groups)], subplot_titles=[
        "tuning: validation accuracy of each trial", *(f"{d}, {n} labels: test accuracy per draw" for d, n in groups),
        *(f"{d}, {n} labels: gain of R against accuracy without R" for d, n in groups)])
    fig.add_trace(go.Box(x=[m for m, t in tuning.items() for _ in t["trials"]],
                         y=[trial["val_accuracy"] for t in tuning.values() for trial in t["trials"]],
                         boxpoints="all", name="tuning trials", marker_color="#1f77b4"), row=1, col=1)
    colours = dict(zip(BASELINES, ("#8c564b", "#000000", "#2ca02c", "#9467bd", "#ff7f0e")))  # not the boxes' grey, red
    for col, (dataset, labels) in enumerate(groups, 2):
        for with_r, colour in ((False, "#888888"), (True, "#d62728")):
            sel = [r for r in rows if (r["dataset"], r["labels"], r["reconstruction"]) == (dataset, labels, with_r)
                   and "+" not in r["method"]]
            fig.add_trace(go.Box(x=[r["method"] for r in sel], y=[r["test_accuracy"] for r in sel], boxpoints="all",
                                 name="with R" if with_r else "without R", marker_color=colour,
                                 text=[f"draw {r['seed']}" for r in sel], showlegend=col == 2), row=1, col=col)
        gains_of_r = gains(rows, dataset, labels)
        for method in BASELINES:
            pairs = [(s, *gains_of_r[(m, s)]) for (m, s) in gains_of_r if m == method]
            if pairs:
                fig.add_trace(go.Scatter(x=[p[1] for p in pairs], y=[p[2] for p in pairs], mode="markers",
                                         name=f"gain of R: {method}", marker=dict(color=colours[method], size=9),
                                         text=[f"{method}, draw {p[0]}" for p in pairs], legendgroup=method,
                                         showlegend=col == 2), row=2, col=col)
        fig.update_xaxes(categoryorder="array", categoryarray=list(BASELINES), row=1, col=col)
        fig.add_hline(y=0, line_dash="dot", line_color="#888888", row=2, col=col)
        fig.update_xaxes(title_text="test accuracy without R (%)", row=2, col=col)
        fig.update_yaxes(title_text="gain of R (points)", row=2, col=col)
    fig.update_layout(boxmode="group", title="Test accuracy per label draw: each method without and with R",
                      yaxis_title="validation accuracy (%)", yaxis2_title="test accuracy (%)", height=900)
    save_figure_html(fig, path, plotlyjs="cdn")  # kept in git: a few kB


def failures(args) -> None:
    """Where R fails: for every finished run of the paper's method (entropy with R, 5 labels
    per class), the confusion pairs of its selected model on the validation split, and for
    its most confused pair the draw's labelled images of both classes, the misclassified
    validation images beside their reconstructions (df/dx)^T f(x), and correctly classified
    images of the same class."""
    import torch

    from benchmarks.confusion import confusion
    from invlab import reconstruct
    from invlab.experiments.provenance import provenance_line, results_header
    from invlab.experiments.studies import RESULT
    from invlab.io import markdown_table, save_report
    from invlab.viz.plots import image_rows, save_figure_html

    entries, rows = [], {}
    for run_id, (_, folder) in plan(args, 5, ("entropy",)).items():
        dataset, _, method, r, seed = run_id.split("/")
        if r != "R" or not (folder / RESULT).exists():
            continue
        c = confusion(folder, keep_data=True)
        data, model, pred = c.pop("_data"), c.pop("_model"), c.pop("_pred")
        names = c["class_names"]
        t, p = c["most_confused"][0]["true"], c["most_confused"][0]["predicted"]
        wrong = ((data.y_val == t) & (pred == p)).nonzero().flatten()[:args.show]
        right = ((data.y_val == t) & (pred == t)).nonzero().flatten()[:args.show]
        # the draw's labelled images of both classes: is the confusion in the labels?
        rows[f"{dataset} draw {seed}: the labelled {names[t]} | {names[p]}"] = torch.cat(
            [data.x_labelled[data.y_labelled == k] for k in (t, p)])
        for kind, idx in ((f"{names[t]} taken for {names[p]}", wrong), (f"{names[t]} right", right)):
            if len(idx):
                x = data.x_val[idx]
                rows[f"{dataset} draw {seed}: {kind}"] = x
                rows[f"{dataset} draw {seed}: {kind}, reconstructed"] = reconstruct(model, x).detach()
        entries.append({"dataset": dataset, "method": method, "reconstruction": True, "seed": int(seed),
                        "test_accuracy": json.loads((folder / RESULT).read_text())["test_accuracy"], **c})
    out = {"split": "validation", "runs": entries, **results_header(device=args.device)}
    def lowest(e):
        k = min(range(len(e["recall"])), key=e["recall"].__getitem__)
        return f"{e['class_names'][k]} {e['recall'][k]:.1f} %"

    table = markdown_table(
        ["data set", "draw", "validation %", "lowest recall", "most confused (true → predicted: validation images)"],
        [[e["dataset"], e["seed"], f"{e['val_accuracy']:.2f}", lowest(e),
          ", ".join(f"{e['class_names'][m['true']]} → {e['class_names'][m['predicted']]}: {m['count']}"
                    for m in e["most_confused"][:3])] for e in entries])
    text = ("# Where R fails: the paper's method (entropy with R), 50 labels, on the validation split\n\n"
            f"{table}\n\nFigure: `{args.failures_figure}`.\n\n{provenance_line(out)}\n")
    save_report(out, args.failures_out, text)
    if rows:
        fig = image_rows(rows, title="the most confused pair of each run: the labelled images of both classes,<br>"
                                     "mistakes, their reconstructions, and correct images of the same class")
        save_figure_html(fig, args.failures_figure, plotlyjs="cdn")
    print(text)


def report(args) -> None:
    from invlab.io import markdown_table, save_report
    from invlab.experiments.provenance import provenance_line, results_header

    more = more_labels_plan(args)
    planned = {**plan(args), **more, **changes_plan(args)}  # the three rounds, each made once
    rows = collect(args, planned)
    tuning = {m: tuning_summary(args, m) for m in BASELINES}
    out = {"runs": rows, "summary": summary(rows, args.seeds), "arms": arms(rows, args.seeds),
           "changes": changes(rows), "label_effect": label_effect(rows),
           "progress": progress(args, rows, planned, bool(more)),
           "tuning": tuning,
           "protocol": {
        "model": "smallcnn-mean", "tuned_on": f"{args.tune_dataset}, label draw 0, validation accuracy, without R",
        "trials_per_method": args.trials, "beta_with_R": args.beta, "seeds": args.seeds,
        "more_labels_per_class": args.more_labels, "more_seeds": more_seeds(args),
        "change_dataset": args.change_dataset, "change_seeds": args.change_seeds,
        "spaces": {m: f"benchmarks/spaces/generality-{m}.json" for m in BASELINES}},
        **results_header(device=args.device)}
    best = {m: t.get("best") for m, t in tuning.items()}
    table = markdown_table(["method", "trials done", "best validation", "its test", "best setting"], [
        [m, f"{t['completed_trials']} of {args.trials}", *((f"{b['val_accuracy']:.2f}", f"{b['test_accuracy']:.2f}",
         ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in b["params"].items()))
                                                        if (b := best[m]) else (None, None, ""))]
        for m, t in tuning.items()])
    left = out["progress"]
    text = (f"# Where reconstruction helps\n\n`python -m benchmarks.generality --stage report`: {left['finished']} of "
            f"{left['planned']} runs finished; the {left['remaining']} left take two workers about "
            f"{left['hours_left_two_workers']} hours at the median minutes per run measured so far "
            f"({', '.join(f'{k} {v}' for k, v in left['minutes_per_run'].items())}).\n\n"
            f"Tuning: {args.tune_dataset}, 50 labels, label draw 0, without R; {args.trials} TPE "
            f"trials per method, scored on validation accuracy (%).\n\n{table}\n\n## Targets\n\n"
            f"{summary_text(out['summary'])}\n\n{tables(rows, args.seeds)}\n"
            f"{label_effect_text(out['label_effect'])}\n{changes_table(rows)}\n"
            f"{provenance_line(out)}\n")
    save_report(out, args.out, text)
    figure(rows, tuning, Path(args.figure))
    print(text)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--stage", choices=["tune", "runs", "all", "report", "failures"], default="all")
    p.add_argument("--worker", type=int, default=0, help="this worker's index (tuning is split between workers)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--trials", type=int, default=12, help="tuning trials per method and data set (the same for each)")
    p.add_argument("--startup-trials", type=int, default=4, help="of which random (TPE's start-up; the rest guided)")
    p.add_argument("--min-resource", type=int, default=500, help="steps before the pruner's first cut")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--datasets", nargs="+", default=["mnist", "fashion-mnist"])
    p.add_argument("--beta", type=float, default=0.2, help="R's share with R (the recipe's)")
    p.add_argument("--more-labels", type=int, default=50, help="labels per class of the 500-label round")
    p.add_argument("--more-methods", nargs="*", default=["best"],
                   help="methods of the 500-label round; 'best' = the best mean validation accuracy of the first")
    p.add_argument("--more-seeds", type=int, nargs="+", default=None,
                   help="label draws of the 500-label round (default: the first three of --seeds)")
    p.add_argument("--change-dataset", default="fashion-mnist", help="the data set of the changes round (CHANGES)")
    p.add_argument("--change-seeds", type=int, nargs="+", default=[0, 1, 2], help="its label draws")
    p.add_argument("--untuned", action="store_true", help="run stage 2 with published defaults where tuning is unfinished")
    p.add_argument("--steps", type=int, default=None, help="override every run's budget (smoke runs)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--prefix", default="generality")
    p.add_argument("--storage", default=None, help="Optuna storage (default sqlite under --runs-dir)")
    p.add_argument("--runs-dir", default="runs/generality-v2")
    p.add_argument("--out", default="results/generality.json")
    p.add_argument("--figure", default="docs/figures/generality.html")
    p.add_argument("--failures-out", default="results/generality_failures.json")
    p.add_argument("--failures-figure", default="docs/figures/generality_failures.html")
    p.add_argument("--show", type=int, default=4, help="failures: images shown per row (the figure stays under 1 MiB)")
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    Path(args.runs_dir).mkdir(parents=True, exist_ok=True)
    if args.worker:
        import time

        time.sleep(10 * args.worker)  # let worker 0 create the storage's tables (SQLite races on a new file)
    if args.stage in ("tune", "all"):
        tune(args)
    if args.stage in ("runs", "all"):
        if args.stage == "all":
            while any(tuned(args, m, d)[1] < args.trials for d in args.datasets for m in TUNED):  # the other worker's
                import time

                time.sleep(60)
        run(args)
    if args.stage == "report":
        report(args)
    if args.stage == "failures":
        failures(args)


if __name__ == "__main__":
    main()
