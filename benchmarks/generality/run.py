"""Where reconstruction helps: every method with and without R, on MNIST and Fashion-MNIST,
draw by draw, after the same tuning for each (Oliver et al. 2018's protocol).

Stages, each an ``invlab sweep`` study in one storage (resumable: rerun the same command):

1. ``tune`` — per method and data set, the same number of TPE trials (``--trials``, of which
   ``--startup-trials`` random) over its own knobs and the learning rate
   (``benchmarks/spaces/generality-<method>.json``), scored on that data set's validation
   split, label draw 0, without R (the paper's method: with its own beta), pruned by
   successive halving;
2. ``runs`` — the rounds of :data:`ROUNDS`, in order, each started once the one before has
   finished: round one, every method with the setting tuned on the data set it runs on, on
   MNIST and Fashion-MNIST, 5 labels per class, draws ``--seeds``, without R (beta = 0) and
   with R (beta = ``--beta``); the changes of :data:`CHANGES` to :data:`CHANGE_METHODS` on
   ``--change-dataset``, draws ``--change-seeds``; ``--hundred-labels`` per class (100
   labels) for round one's two best arms on ``--hundred-dataset``; ``--more-labels`` per
   class (500 labels) for round one's best method without R (by validation), without and
   with R, draws :func:`more_seeds`; and R added on top of :data:`ON_TOP_METHODS`, its CE : U
   kept (:func:`on_top_plan`);
3. ``report`` — ``results/generality.json`` (one entry per finished run), its Markdown
   twin and ``docs/figures/generality.json``; written from whatever has finished
   (:mod:`benchmarks.generality.report`, which also draws the ``failures`` figure; this module,
   :mod:`benchmarks.generality.run`, never imports it: ``python -m benchmarks.generality``
   dispatches the stages, :func:`benchmarks.generality.main`).

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

SPACES = Path(__file__).resolve().parents[1] / "spaces"
BASELINES = tuple(m for m in METHODS if m != "inversion")  # each run without and with R
#: Every arm of a round: each baseline without and with R (its own tuned setting, plus
#: beta = ``--beta`` with R), and the paper's method (``inversion``: entropy with R, its
#: learning rate, beta and balance tuned together), which has R by definition.
ARMS = (*((m, with_r) for m in BASELINES for with_r in (False, True)), ("inversion", True))
#: Each method's own unsupervised term as the run logs it, unweighted: a run whose term stays
#: below ALIVE of its cross-entropy at every evaluation is flagged (a dead term, like VAT's LDS
#: at 5e-8 before the perturbation was fixed).
TERMS = {"entropy": "entropy", "inversion": "entropy", "pseudo-label": "m:pseudo", "vat": "m:lds",
         "mean-teacher": "m:consistency"}
ALIVE = 1e-4
#: The changes round (where R helped least, Fashion-MNIST): per-image standardisation instead of
#: centring and max-abs scaling, which the last study found to help R and only R, now for VAT
#: (the strongest baseline) and the paper's method, each without and with R.
CHANGES = {"standardize": {"preprocess": "standardize"}}
CHANGE_METHODS = ("vat", "inversion")
#: The on-top round. With R, eq. 10 gives the method's own term U the share (1 - beta) of what it
#: has without R, so round one's "with R" is also "with a fifth less U". This round adds R on top
#: instead, for the best baseline of round one, on ``--change-dataset``: alpha is lowered
#: (:func:`alpha_on_top`) so that CE : U stays the arm without R's, and R comes in beside them
#: (Adam all but ignores the loss's overall scale).
ON_TOP_METHODS = ("vat",)


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

    with sweep.opened(storage(args)) as st_storage:
        try:
            st = optuna.load_study(study_name=tune_study(args, dataset, method), storage=st_storage)
        except KeyError:
            return {"completed_trials": 0, "pruned_trials": 0, "finished_trials": 0, "trials": []}
        all_trials = st.get_trials(deepcopy=False)
    done = [t for t in all_trials if t.state.name == "COMPLETE"]
    pruned = [t for t in all_trials if t.state.name == "PRUNED"]
    trials = [{"number": t.number, "params": t.params, "val_accuracy": t.value,
               "test_accuracy": t.user_attrs.get("test_accuracy"),
               "run": Path(t.user_attrs["run_dir"]).name if t.user_attrs.get("run_dir") else None} for t in done]
    best = max(trials, key=lambda t: (t["val_accuracy"], -t["number"])) if trials else None
    steps = sum(t.user_attrs.get("steps_done") or 0 for t in done) + sum(t.user_attrs.get("pruned_at") or 0
                                                                         for t in pruned)
    full = (len(done) + len(pruned)) * (args.steps or 2000)
    # what the pruner's first cut cannot see: the validation points a completed trial gained
    # after it (a method that gains late is one the pruner judges early)
    late = [max(t.intermediate_values.values()) - max(v for s, v in t.intermediate_values.items()
                                                      if s <= args.min_resource)
            for t in done if any(s <= args.min_resource for s in t.intermediate_values)]
    return {"late_gain_median": statistics.median(late) if late else None,
            "late_gain_range": [min(late), max(late)] if late else None, "dataset": dataset,
            "completed_trials": len(done), "pruned_trials": len(pruned),
            "finished_trials": len(done) + len(pruned), "finished": len(done) + len(pruned) >= args.trials,
            "steps_trained": steps, "steps_of_full_trials": full, "best": best, "trials": trials,
            "pruned": [{"number": t.number, "params": t.params, "pruned_at": t.user_attrs.get("pruned_at"),
                        "val_accuracy": t.user_attrs.get("best_val_accuracy")} for t in pruned]}


def _states(args, dataset: str, method: str) -> dict[str, int]:
    """How many trials of a tuning study are in each state (a dead worker's running trial is
    failed first, and its retry waits)."""
    import optuna
    from optuna.storages import fail_stale_trials

    from invlab import sweep

    with sweep.opened(storage(args), heartbeat=60) as st_storage:
        st = optuna.load_study(study_name=tune_study(args, dataset, method), storage=st_storage)
        fail_stale_trials(st)
        states = [t.state.name for t in st.get_trials(deepcopy=False)]
    return {s: states.count(s) for s in ("COMPLETE", "PRUNED", "RUNNING", "WAITING")}


def _wants_work(args, dataset: str, method: str) -> bool:
    """A tuning study still needs a worker: a retry waits, or fewer than ``--trials`` are taken."""
    n = _states(args, dataset, method)
    return n["WAITING"] > 0 or sum(n.values()) < args.trials


def create_tuning(args, dataset: str, method: str) -> None:
    """The tuning study of ``method`` on ``dataset`` (kept if it exists: rerunning continues it)."""
    from invlab import sweep

    try:
        sweep.create(tune_study(args, dataset, method), storage(args), str(SPACES / f"generality-{method}.json"),
                     steps=args.steps, dataset=dataset, pruner=PRUNER,
                     min_resource=args.min_resource if not args.steps else max(1, args.steps // 4),
                     startup_trials=args.startup_trials)
    except ValueError:
        pass  # created by the other worker or an earlier session: continue it


def tune(args) -> None:
    """Both workers share one queue of tuning studies (every data set x :data:`TUNED`), one
    trial at a time, data set by data set: each study gets ``--trials`` trials, the first
    ``--startup-trials`` random (TPE's start), the rest guided, pruned by :data:`PRUNER`."""
    from invlab import sweep

    studies = [(d, m) for d in args.datasets for m in TUNED]
    for dataset, method in studies:
        create_tuning(args, dataset, method)
    while True:
        todo = [(d, m) for d, m in studies if _wants_work(args, d, m)]
        if not todo:
            break
        # this worker's share first, so that two workers start on different studies
        dataset, method = todo[args.worker % len(todo)] if len(todo) > 1 else todo[0]
        n = _states(args, dataset, method)
        print(
            f"[tune] {dataset} {method}: {n['COMPLETE']} completed, {n['PRUNED']} pruned of {args.trials}", flush=True
        )
        sweep.work(tune_study(args, dataset, method), storage(args), trials=1, device=args.device,
                   runs_dir=args.runs_dir)
        save(args)


def _params(args, arms) -> dict:
    """{(method, data set): tuned parameters} for the methods of ``arms`` (one storage read each)."""
    return {(m, d): tuned(args, m, d)[0] for m in dict.fromkeys(m for m, _ in arms) for d in args.datasets}


def plan(args, labels: int = 5, arms=ARMS, datasets=None, seeds=None) -> dict:
    """{run id: (TrainConfig, run folder)} of ``arms`` with ``labels`` per class on every data
    set and draw, in the order workers take them (draw by draw). Each method runs with the
    setting tuned on the data set it runs on; a baseline with R adds beta = ``--beta``."""
    from invlab.train import TrainConfig, run_key

    bases = {m: json.loads((SPACES / f"generality-{m}.json").read_text())["base"] for m, _ in arms}
    params = _params(args, arms)
    runs = {}
    for seed in seeds if seeds is not None else args.seeds:
        for dataset in datasets or args.datasets:
            for method, with_r in arms:
                fields = {**bases[method], **params.get((method, dataset), {}), "dataset": dataset,
                          "labels_per_class": labels, "seed": seed, "device": args.device}
                if method != "inversion":
                    fields["beta"] = args.beta if with_r else 0.0
                if args.steps:  # smoke runs
                    fields.update(steps=args.steps, eval_every=min(args.steps, fields["eval_every"]))
                config = TrainConfig(**fields)
                run_id = f"{dataset}/{labels}/{method}/{'R' if with_r else 'noR'}/{seed}"
                runs[run_id] = (config, Path(args.runs_dir) / "runs" / run_key(config))
    return runs


def best_arms(args, rows: list[dict] | None = None, with_r: bool | None = None, dataset: str | None = None) -> list:
    """Round one's arms ranked by mean validation accuracy (the test set never chooses) over
    ``dataset`` (default every data set) and every draw, optionally only those without or
    with R; empty until all of round one has finished."""
    first = plan(args)
    rows = collect(args, first) if rows is None else [r for r in rows if r["labels"] == 50 and "+" not in r["method"]]
    if len(rows) < len(first):
        return []
    score = {arm: statistics.fmean(r["val_accuracy"] for r in rows if (r["method"], r["reconstruction"]) == arm
                                   and (dataset is None or r["dataset"] == dataset))
             for arm in ARMS if with_r is None or arm[1] == with_r}
    return sorted(score, key=score.get, reverse=True)


def more_seeds(args) -> list[int]:
    """The label draws of the 500-label round: ``--more-seeds``, else the first three of
    ``--seeds`` (with ten times the labels a draw decides far less than with five per class)."""
    return args.more_seeds if args.more_seeds is not None else args.seeds[:3]


def more_labels_plan(args) -> dict:
    """The 500-label round (``--more-labels`` per class): the best method without R of round
    one (by validation, every data set) without and with R, on the draws :func:`more_seeds`;
    empty until round one has finished."""
    ranked = best_arms(args, with_r=False)
    if not ranked:
        return {}
    method = ranked[0][0]
    return plan(args, args.more_labels, ((method, False), (method, True)), seeds=more_seeds(args))


def hundred_plan(args) -> dict:
    """100 labels (``--hundred-labels`` per class) on ``--hundred-dataset``, every draw: the two
    best arms of round one there by validation, so that invlab meets the label count of the
    published MNIST results; empty until round one has finished."""
    ranked = best_arms(args, dataset=args.hundred_dataset)
    if not ranked:
        return {}
    return plan(args, args.hundred_labels, tuple(ranked[:2]), datasets=[args.hundred_dataset])


def changes_plan(args) -> dict:
    """The changes round: each of :data:`CHANGES` applied to :data:`CHANGE_METHODS`, without
    and with R (the paper's method without R: its tuned setting, beta 0), 5 labels per class,
    on ``--change-dataset``, draws ``--change-seeds``."""
    import dataclasses

    from invlab.train import run_key

    arms = [arm for arm in ARMS if arm[0] in CHANGE_METHODS]
    base = plan(args, 5, arms, datasets=[args.change_dataset], seeds=args.change_seeds)
    runs = {}
    for run_id, (config, _) in base.items():
        dataset, labels, method, r, seed = run_id.split("/")
        for with_r in ((False, True) if method == "inversion" else (r == "R",)):
            for name, overrides in CHANGES.items():
                changed = dataclasses.replace(config, **overrides, **({} if with_r else {"beta": 0.0}))
                runs[f"{dataset}/{labels}/{method}+{name}/{'R' if with_r else 'noR'}/{seed}"] = (
                    changed, Path(args.runs_dir) / "runs" / run_key(changed))
    return runs


def alpha_on_top(alpha: float, beta: float) -> float:
    """The alpha with which alpha·CE : (1 - alpha)(1 - beta)·U equals ``alpha``·CE : (1 - ``alpha``)·U,
    the ratio of the run without R."""
    k = alpha * (1 - beta) / (1 - alpha)
    return k / (1 + k)


def on_top_plan(args) -> dict:
    """The on-top round (:data:`ON_TOP_METHODS` with R, their CE : U kept), 5 labels per class, on
    ``--change-dataset``, draws ``--change-seeds``."""
    import dataclasses

    from invlab.train import run_key

    base = plan(args, 5, tuple((m, True) for m in ON_TOP_METHODS), datasets=[args.change_dataset],
                seeds=args.change_seeds)
    runs = {}
    for run_id, (config, _) in base.items():
        dataset, labels, method, _, seed = run_id.split("/")
        changed = dataclasses.replace(config, alpha=alpha_on_top(config.alpha, config.beta))
        runs[f"{dataset}/{labels}/{method}+r-on-top/R/{seed}"] = (
            changed, Path(args.runs_dir) / "runs" / run_key(changed))
    return runs


def save(args) -> None:
    """What a fresh machine needs to continue the study, under ``--record`` (committed, a few
    kB a run): every tuning study's finished trials (``tuning.json``) and every finished run's
    result (``runs/<run key>.json``). Run folders and the storage live under ``--runs-dir``,
    which a new machine does not have: :func:`restore` rebuilds them from the record (an
    unfinished run's checkpoint is the one thing lost)."""
    import optuna

    from invlab import sweep
    from invlab.experiments.studies import RESULT
    from invlab.io import save_json

    record = Path(args.record)
    studies = {}
    with sweep.opened(storage(args)) as st_storage:
        for d in args.datasets:
            for m in TUNED:
                try:
                    st = optuna.load_study(study_name=tune_study(args, d, m), storage=st_storage)
                except KeyError:
                    continue
                studies[tune_study(args, d, m)] = [{
                    "state": t.state.name, "params": t.params, "value": t.value,
                    "distributions": {k: optuna.distributions.distribution_to_json(v)
                                      for k, v in t.distributions.items()},
                    "intermediate_values": {str(k): v for k, v in t.intermediate_values.items()},
                    "user_attrs": t.user_attrs} for t in st.get_trials(deepcopy=False)
                    if t.state.name in ("COMPLETE", "PRUNED")]
    if studies:
        save_json(studies, record / "tuning.json")
    for folder in sorted((Path(args.runs_dir) / "runs").glob(f"*/{RESULT}")):
        if "." in folder.parent.name:  # a scratch run beside its run (the failures stage's ``.again``)
            continue
        target = record / "runs" / f"{folder.parent.name}.json"
        if not target.exists():
            save_json(json.loads(folder.read_text()), target)


def restore(args) -> dict:
    """Rebuild from ``--record`` what this machine lacks: each tuning study missing from the
    storage, with its finished trials (TPE goes on from them), and each finished run's
    ``result.json`` in its folder. Returns how many of each it restored."""
    import optuna

    from invlab import sweep
    from invlab.experiments.studies import RESULT

    record, done = Path(args.record), {"studies": 0, "runs": 0}
    if (record / "tuning.json").exists():
        saved = json.loads((record / "tuning.json").read_text())
        for d in args.datasets:
            for m in TUNED:
                name = tune_study(args, d, m)
                if not saved.get(name):
                    continue
                create_tuning(args, d, m)
                with sweep.opened(storage(args)) as st_storage:
                    st = optuna.load_study(study_name=name, storage=st_storage)
                    if st.get_trials(deepcopy=False):
                        continue  # this machine has the study: its storage is newer than the record
                    for t in saved[name]:
                        st.add_trial(optuna.trial.create_trial(
                            state=optuna.trial.TrialState[t["state"]], value=t["value"], params=t["params"],
                            distributions={k: optuna.distributions.json_to_distribution(v)
                                           for k, v in t["distributions"].items()},
                            intermediate_values={int(k): v for k, v in t["intermediate_values"].items()},
                            user_attrs=t["user_attrs"]))
                    done["studies"] += 1
    for saved_run in sorted((record / "runs").glob("*.json")):
        folder = Path(args.runs_dir) / "runs" / saved_run.stem
        if not (folder / RESULT).exists():
            folder.mkdir(parents=True, exist_ok=True)
            (folder / RESULT).write_text(saved_run.read_text())
            done["runs"] += 1
    return done


ROUNDS = (("runs", plan), ("changes", changes_plan), ("hundred", hundred_plan), ("more", more_labels_plan),
          ("on-top", on_top_plan))


def run(args) -> None:
    """The rounds of :data:`ROUNDS` in order, each one study of runs shared by the workers."""
    from invlab import sweep

    missing = [f"{d} {m}" for d in args.datasets for m in TUNED if tuned(args, m, d)[1] < args.trials]
    if missing and not args.untuned:
        print(f"[runs] tuning unfinished for {', '.join(missing)}: run the tune stage first (or --untuned)")
        return
    for stage, make in ROUNDS:
        runs = make(args)  # the later rounds are made once round one is done (they pick their arms)
        if not runs:
            print(f"[{stage}] nothing to run yet")
            return
        study = f"{args.prefix}-{stage}-{len(runs)}"
        try:
            sweep.create_runs(study, storage(args), runs, name="generality")
        except Exception as err:  # noqa: BLE001 - the other worker created it a moment ago
            print(f"[{stage}] {study}: {err}; working on the existing study")
        sweep.work(study, storage(args), device=args.device, runs_dir=args.runs_dir)
        save(args)


def planned_rounds(args) -> dict[str, dict]:
    """Each round's runs as made so far (a later round is empty until round one is done)."""
    return {stage: make(args) for stage, make in ROUNDS}


def planned(args, rounds: dict[str, dict] | None = None) -> dict:
    """Every run of every round made so far, each once."""
    out = {}
    for runs in (rounds if rounds is not None else planned_rounds(args)).values():
        out.update(runs)
    return out


def term_ratio(method: str, history: list[dict]) -> float | None:
    """The largest ratio, over the run's evaluations, of its method's own term (unweighted, as
    logged: :data:`TERMS`) to its cross-entropy; None for a method without one (supervised)."""
    key = TERMS.get(method.split("+")[0])
    ratios = [h[key] / h["ce"] for h in history if key and key in h and h.get("ce")]
    return max(ratios) if ratios else None


def collect(args, runs: dict | None = None) -> list[dict]:
    """One entry per finished run (``runs``, else every round's), read from the run folders."""
    from invlab.experiments.studies import RESULT

    rows = []
    runs = runs if runs is not None else planned(args)
    for run_id, (config, folder) in runs.items():
        if not (folder / RESULT).exists():
            continue
        res = json.loads((folder / RESULT).read_text())
        dataset, labels, method, r, seed = run_id.split("/")
        history = res["history"]
        best = next(h for h in history if h["step"] == res["best_step"])
        rows.append(
            {
                "run": folder.name,
                "dataset": dataset,
                "labels": int(labels) * 10,
                "method": method,
                "reconstruction": r == "R",
                "seed": int(seed),
                "test_accuracy": res["test_accuracy"],
                "val_accuracy": res["best_val_accuracy"],
                "steps": res["steps_done"],
                "config": res["config"],
                "minutes": round(res.get("elapsed_s", 0) / 60, 1),
                "cpu_minutes": None if res.get("cpu_s") is None else round(res["cpu_s"] / 60, 1),
                "term_ratio": term_ratio(method, history),
                **({"teacher_val_accuracy": best["teacher_val_accuracy"]} if "teacher_val_accuracy" in best else {}),
                **({"confident": best["m:confident"]} if "m:confident" in best else {}),
            }
        )
    return rows


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--stage", choices=["tune", "runs", "all", "report", "failures", "save"], default="all")
    p.add_argument("--worker", type=int, default=0, help="this worker's index (tuning is split between workers)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--trials", type=int, default=12, help="tuning trials per method and data set (the same for each)")
    p.add_argument("--startup-trials", type=int, default=4, help="of which random (TPE's start-up; the rest guided)")
    p.add_argument("--min-resource", type=int, default=500, help="steps before the pruner's first cut")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--datasets", nargs="+", default=["mnist", "fashion-mnist"])
    p.add_argument("--beta", type=float, default=0.2, help="R's share with R (the recipe's)")
    p.add_argument("--more-labels", type=int, default=50, help="labels per class of the 500-label round")
    p.add_argument("--more-seeds", type=int, nargs="+", default=None,
                   help="label draws of the 500-label round (default: the first three of --seeds)")
    p.add_argument("--change-dataset", default="fashion-mnist", help="the data set of the changes round (CHANGES)")
    p.add_argument("--change-seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4], help="its label draws")
    p.add_argument(
        "--hundred-labels",
        type=int,
        default=10,
        help="labels per class of the round that meets the published protocols' label count",
    )
    p.add_argument("--hundred-dataset", default="mnist", help="its data set")
    p.add_argument(
        "--untuned", action="store_true", help="run stage 2 with published defaults where tuning is unfinished"
    )
    p.add_argument("--steps", type=int, default=None, help="override every run's budget (smoke runs)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--prefix", default="generality")
    p.add_argument("--storage", default=None, help="Optuna storage (default sqlite under --runs-dir)")
    p.add_argument("--runs-dir", default="runs/generality-v2")
    p.add_argument("--record", default="results/generality",
                   help="the committed record of finished trials and runs (save, restore)")
    p.add_argument("--out", default="results/generality.json")
    p.add_argument("--figure", default="docs/figures/generality.json")
    p.add_argument("--failures-out", default="results/generality_failures.json")
    p.add_argument("--failures-figure", default="docs/figures/generality_failures.json")
    p.add_argument("--show", type=int, default=4, help="failures: images shown per row (the figure stays under 1 MiB)")
    return p.parse_args(argv)


def prepare(args) -> None:
    """What every stage starts with: the threads, the runs folder, and on a fresh machine the record's trials
    and finished runs restored."""
    import torch

    torch.set_num_threads(args.threads)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    Path(args.runs_dir).mkdir(parents=True, exist_ok=True)
    restored = restore(args)
    if any(restored.values()):
        print(f"restored from {args.record}: {restored['studies']} tuning studies, {restored['runs']} finished runs")


def main(argv=None) -> None:
    """The stages that tune, run and save (``report`` and ``failures``: :mod:`benchmarks.generality.report`)."""
    args = parse_args(argv) if not isinstance(argv, argparse.Namespace) else argv
    prepare(args)
    if args.stage in ("tune", "all"):
        tune(args)
    if args.stage in ("runs", "all"):
        if args.stage == "all":
            while any(tuned(args, m, d)[1] < args.trials for d in args.datasets for m in TUNED):  # the other worker's
                import time

                time.sleep(60)
        run(args)
    if args.stage == "save":
        save(args)
