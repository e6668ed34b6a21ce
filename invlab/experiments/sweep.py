"""Sweeps over many trainings with Optuna: one shared storage, any number of workers and hosts.

A *study* lives in an Optuna storage: a SQLite file on one machine (the default,
``runs/sweeps.db``) or a PostgreSQL database that workers on several hosts reach
(``postgresql+psycopg://user@host/db``). Its lifecycle:

* :func:`create` — once: the study, and for a grid space every point enqueued as a
  waiting trial (``study.enqueue_trial``) that carries its full training config. Workers
  take waiting trials from the storage atomically, so no grid point runs twice;
* :func:`work` — on every worker (one per GPU): run trials until none is waiting or
  running, or N are done. Each trial trains with :func:`invlab.experiments.runs.run_resumable` in a
  folder keyed by its config, so a retried trial resumes from the lost one's checkpoint.
  A heartbeat marks the trials of a killed worker failed after a grace period, and
  ``RetryFailedTrialCallback`` enqueues them again; a run that diverges is a failed trial
  with its reason (``user_attrs["failure"]``), not an accuracy;
* pruning (``create(..., pruner=...)``, recorded in the study): each trial reports its
  validation accuracy at every evaluation and is stopped when the pruner (:data:`PRUNERS`,
  :func:`make_pruner`) ranks it below its peers at the same step; a pruned trial's folder
  is marked ``stopped.json`` so that no later read takes it for a finished run;
* :func:`report` — mean ± std over label draws per entry (validation-selected test
  accuracy), JSON and Markdown under ``results/``, figures from ``optuna.visualization``.

Spaces (:data:`SPACES`): ``table2`` (every topology with its paper (alpha, beta), label
draws 0-4, the recipe), ``grid`` (alpha x beta x draws for smallcnn-mean, the paper's
search, through ``GridSampler``), ``recipe`` (a TPE search over the recipe's options,
scored on validation accuracy), or a JSON/YAML file::

    {"base": {"model": "smallcnn-mean", "steps": 2000},      # TrainConfig fields (the recommended
                                                             # recipe unless "recipe": "paper")
     "grid": {"alpha": [0.5, 0.7], "seed": [0, 1, 2]}}       # or:
    {"base": {...}, "search": {"lr": {"low": 0.001, "high": 0.03, "log": true},
                               "schedule": {"choices": ["constant", "cosine"]}}, "seeds": [0]}

Trials are scored on validation accuracy; the test accuracy of the selected step is
recorded beside it and never steers anything.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import socket
import statistics
import time
import warnings
from pathlib import Path

from invlab.data import dataset_entry
from invlab.experiments.runs import best_test_epoch, mean_std, run_resumable
from invlab.experiments.storage import (  # noqa: F401 (sweep's names, as before)
    DEFAULT_STORAGE,
    SQLITE_BUSY_TIMEOUT_MS,
    _optuna,
    open_storage,
    opened,
    storage_url,
)
from invlab.io import markdown_table, save_figure_html, save_report
from invlab.theory.paper import GRID_ALPHAS, GRID_BETAS, TABLE2
from invlab.training.config import RECOMMENDED, TrainConfig, run_key
from invlab.training.device import resolve_device
from invlab.training.guard import RunInterrupted
from invlab.training.provenance import provenance_line, results_header

SPACES = ("table2", "grid", "recipe")
#: ``invlab sweep create --pruner NAME``: Optuna's pruners. Every trial reports its validation
#: accuracy at each evaluation (``trial.report``); a pruned trial stops there (its run folder
#: keeps the checkpoint and a ``stopped.json``, never a ``result.json``).
PRUNERS = ("none", "median", "successive-halving", "hyperband")
#: attributes a trial records for the report (the run folders may live on other hosts)
RESULT_KEYS = ("test_accuracy", "best_val_accuracy", "best_step", "final_test_accuracy", "wall_time_s", "elapsed_s",
               "cpu_s", "hardware", "steps_done")



# -- spaces -------------------------------------------------------------------------------

def _recipe(**extra) -> dict:
    return {**RECOMMENDED, "lr": None, "eval_every": 250, "log_unweighted": False, **extra}


def load_space(space: str) -> dict:
    """A space as a dict: ``{"name", "base", "grid" | "search", "seeds"?, "entry"}`` (see the
    module docstring); ``space`` is a name of :data:`SPACES` or a JSON/YAML file."""
    if space == "table2":
        return {"name": "table2", "base": _recipe(), "grid": {"model": list(TABLE2), "seed": [0, 1, 2, 3, 4]},
                "per_model": {m: {"alpha": ab[0], "beta": ab[1]} for m, (_, ab, _) in TABLE2.items()},
                "entry": ["model"]}
    if space == "grid":
        return {"name": "grid", "base": _recipe(model="smallcnn-mean"),
                "grid": {"alpha": list(GRID_ALPHAS), "beta": list(GRID_BETAS), "seed": [0, 1, 2]},
                "entry": ["alpha", "beta"], "sampler": "grid"}
    if space == "recipe":
        return {"name": "recipe", "base": _recipe(model="smallcnn-mean"), "seeds": [0],
                "search": {"lr": {"low": 1e-3, "high": 3e-2, "log": True},
                           "schedule": {"choices": ["constant", "cosine", "step"]},
                           "balance": {"low": 0.0, "high": 2.0},
                           "beta": {"low": 0.1, "high": 0.6},
                           "preprocess": {"choices": ["none", "center-maxabs"]},
                           "labelled_batch": {"choices": [20, 50]}}, "entry": []}
    path = Path(space)
    if not path.exists():
        raise ValueError(f"unknown space {space!r}: use one of {', '.join(SPACES)} or a JSON/YAML file")
    text = path.read_text()
    if path.suffix in (".yaml", ".yml"):
        import yaml

        spec = yaml.safe_load(text)
    else:
        spec = json.loads(text)
    if not isinstance(spec, dict) or ("grid" in spec) == ("search" in spec):
        raise ValueError(f"{path}: a space file holds a 'base' of TrainConfig fields and either a 'grid' "
                         "{name: [values]} or a 'search' {name: {low, high[, log]} | {choices}}")
    spec.setdefault("name", path.stem)
    spec.setdefault("base", {})
    spec.setdefault("entry", [k for k in spec.get("grid", {}) if k != "seed"])
    return spec


def grid_points(spec: dict) -> list[dict]:
    """Every combination of the grid's values, in order."""
    names = list(spec["grid"])
    return [dict(zip(names, values)) for values in itertools.product(*(spec["grid"][n] for n in names))]


def config_for(spec: dict, params: dict, steps: int | None = None, device: str = "auto"):
    """The :class:`~invlab.train.TrainConfig` of a point of the space."""
    if "runs" in spec:  # an explicit list of runs (create_runs)
        fields = {**spec["runs"][params["run"]]["config"], "device": device}
        if steps:
            fields.update(steps=steps, eval_every=min(fields["eval_every"], steps))
        return TrainConfig(**fields)
    fields = {**spec.get("base", {}), **spec.get("per_model", {}).get(params.get("model"), {}), **params}
    if steps:
        fields["steps"] = steps
        fields["eval_every"] = min(fields.get("eval_every", 250), steps)
    return TrainConfig(**fields, device=device)


def entry_name(spec: dict, params: dict) -> str:
    keys = spec.get("entry") or []
    return ", ".join(f"{k}={params[k]}" if k != "model" else str(params[k]) for k in keys) or spec["name"]


# -- pruning --------------------------------------------------------------------------------

def make_pruner(name: str | None, min_resource: int = 1, max_resource: int | None = None,
                reduction_factor: int = 2, startup_trials: int = 4):
    """The Optuna pruner ``name`` (:data:`PRUNERS`), in training steps.

    * ``median`` — :class:`~optuna.pruners.MedianPruner`: from step ``min_resource`` on, stop
      a trial whose best validation accuracy so far is below the median of the earlier
      trials' at the same step (after ``startup_trials`` trials have finished);
    * ``successive-halving`` — :class:`~optuna.pruners.SuccessiveHalvingPruner` (asynchronous,
      ASHA): rungs at ``min_resource``·η^k steps (η = ``reduction_factor``); a trial passes a
      rung only if it is in the top 1/η of the trials that reached it;
    * ``hyperband`` — :class:`~optuna.pruners.HyperbandPruner`: several successive-halving
      brackets from ``min_resource`` to ``max_resource`` steps;
    * ``none`` (or None) — no pruning.
    """
    optuna = _optuna()
    if name in (None, "none"):
        return optuna.pruners.NopPruner()
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=startup_trials, n_warmup_steps=max(0, min_resource - 1))
    if name == "successive-halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=min_resource, reduction_factor=reduction_factor)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=min_resource, max_resource=max_resource or "auto",
                                              reduction_factor=max(reduction_factor, 2))
    raise ValueError(f"unknown pruner {name!r}: use one of {', '.join(PRUNERS)}")


class _Report:
    """Callback: the trial's validation accuracy at every evaluation (``trial.report``, step =
    training step; a resumed run reports its earlier evaluations too), and the run stopped
    (``trainer.stop_reason = "pruned"``) when the study's pruner says so."""

    def __init__(self, trial):
        self.trial, self.seen = trial, set()

    def on_eval(self, trainer, record) -> None:
        for r in trainer.history:
            if r["step"] not in self.seen:
                self.seen.add(r["step"])
                self.trial.report(r["val_accuracy"], r["step"])
        if trainer.step < trainer.total_steps and self.trial.should_prune():
            trainer.stop, trainer.stop_reason = True, "pruned"


# -- create ---------------------------------------------------------------------------------

def create(study: str, storage: str | None, space: str, steps: int | None = None,
           dataset: str | None = None, data_root: str | None = None, pruner: str | None = None,
           min_resource: int | None = None, reduction_factor: int = 2, startup_trials: int | None = None) -> int:
    """Create ``study`` and, for a grid space, enqueue every point once; returns the number
    of trials enqueued. Refuses a study that exists (create once, then run workers).
    ``steps`` overrides every trial's training budget (smoke runs; recorded per trial);
    ``dataset`` and ``data_root`` put every trial on that data set (a name of
    :func:`invlab.data.list_datasets`).

    ``pruner`` (:data:`PRUNERS`) stops unpromising trials early (:func:`make_pruner`;
    ``min_resource`` steps before the first cut, default a quarter of the budget);
    ``startup_trials`` is the TPE sampler's random start (Optuna's default 10; a third of
    the trials or fewer leaves the rest to guided search). Both are recorded in the study."""
    if pruner is not None and pruner not in PRUNERS:
        raise ValueError(f"unknown pruner {pruner!r}: use one of {', '.join(PRUNERS)}")
    if startup_trials is not None and startup_trials < 0:
        raise ValueError(f"startup_trials must be >= 0, got {startup_trials}")
    spec = load_space(space)
    if pruner not in (None, "none"):
        if len(spec.get("seeds", [None])) > 1:
            raise ValueError(f"pruner {pruner!r} judges one run per trial, but the space trains "
                             f"{len(spec['seeds'])} seeds per trial: give one seed, or no pruner")
        budget = steps or spec.get("base", {}).get("steps") or 1000
        min_resource = min_resource or max(1, budget // 4)
        if not 1 <= min_resource <= budget:
            raise ValueError(f"min_resource must lie in [1, {budget}] steps (the budget), got {min_resource}")
        spec["pruner"] = {"name": pruner, "min_resource": int(min_resource), "max_resource": int(budget),
                          "reduction_factor": int(reduction_factor)}
    if startup_trials is not None:
        spec["startup_trials"] = int(startup_trials)
    if dataset is not None or data_root is not None:
        if dataset is not None:
            dataset_entry(dataset)  # a known name, before anything is created
        spec["base"] = {**spec.get("base", {}), **({"dataset": dataset} if dataset else {}),
                        **({"data_root": data_root} if data_root else {})}
    with opened(storage) as st_storage:
        return _create(study, st_storage, spec, steps, storage_url(storage))


def _create(study: str, storage, spec: dict, steps: int | None, url: str) -> int:
    optuna = _optuna()
    try:
        st = optuna.create_study(study_name=study, storage=storage, direction="maximize")
    except optuna.exceptions.DuplicatedStudyError:
        raise ValueError(f"study {study!r} already exists in {url}: run `invlab sweep work` on it, or choose "
                         "another --study name") from None
    st.set_user_attr("space", spec)
    st.set_user_attr("steps", steps)
    if "grid" not in spec:
        return 0
    for params in grid_points(spec):
        config = config_for(spec, params, steps)  # validates the point before any worker runs it
        st.enqueue_trial(params, user_attrs={"entry": entry_name(spec, params), "seed": config.seed},
                         skip_if_exists=True)
    return len(grid_points(spec))


def create_runs(study: str, storage: str | None, runs: dict, name: str = "runs") -> int:
    """Create ``study`` over an explicit list of runs, ``{run id: (TrainConfig, run_dir)}``:
    one enqueued trial per run, trained in its own ``run_dir`` (how ``benchmarks/paper/table2.py``
    spreads its runs over workers). An existing study of the same name is kept: its waiting
    and failed runs are what workers still do. Returns the number of runs enqueued now."""
    optuna = _optuna()
    spec = {"name": name, "grid": {"run": list(runs)}, "entry": ["run"],
            "runs": {k: {"config": cfg.to_dict(), "run_dir": str(d)} for k, (cfg, d) in runs.items()}}
    with opened(storage) as st_storage:
        try:
            st = optuna.load_study(study_name=study, storage=st_storage)
            if st.user_attrs.get("space", {}).get("runs", {}).keys() != spec["runs"].keys():
                raise ValueError(f"study {study!r} holds other runs; choose another study name")
            return _enqueue_failed(st)
        except KeyError:
            pass
        return _create(study, st_storage, spec, None, storage_url(storage))


def _failed_runs(trials) -> dict:
    """{run id: its last trial} of the runs of a study of runs whose every trial failed."""
    seen: dict[str, list] = {}
    for t in trials:
        seen.setdefault(t.params.get("run", t.system_attrs.get("fixed_params", {}).get("run")), []).append(t)
    return {run: ts[-1] for run, ts in seen.items() if all(t.state.name == "FAIL" for t in ts)}


def _enqueue_failed(st) -> int:
    """Enqueue again every run of ``st`` whose trials all failed (an error in the run, fixed
    since): rerunning the command that created a study of runs redoes what failed. Returns
    how many were enqueued."""
    failed = _failed_runs(st.get_trials(deepcopy=False))
    spec = st.user_attrs["space"]
    for run in failed:
        st.enqueue_trial({"run": run}, user_attrs={"entry": entry_name(spec, {"run": run}),
                                                   "seed": spec["runs"][run]["config"]["seed"]})
    return len(failed)

# -- work -----------------------------------------------------------------------------------

def _suggest(trial, spec: dict) -> dict:
    """The trial's parameters: a grid point's fixed values (enqueued), or sampled (search)."""
    if "grid" in spec:
        return {name: trial.suggest_categorical(name, values) for name, values in spec["grid"].items()}
    params = {}
    for name, dist in spec["search"].items():
        if "choices" in dist:
            params[name] = trial.suggest_categorical(name, dist["choices"])
        elif all(isinstance(dist[k], int) for k in ("low", "high")) and not dist.get("log"):
            params[name] = trial.suggest_int(name, dist["low"], dist["high"])
        else:
            params[name] = trial.suggest_float(name, dist["low"], dist["high"], log=bool(dist.get("log")))
    return params


class _Objective:
    def __init__(self, spec: dict, runs_dir: Path, device: str, steps: int | None, study_name: str):
        self.spec, self.runs_dir, self.device, self.steps, self.study_name = spec, runs_dir, device, steps, study_name
        self.current: int | None = None  # the trial being run (a worker stopped by a signal queues it again)

    def __call__(self, trial) -> float:
        optuna = _optuna()
        self.current = trial.number
        if "grid" in self.spec and "entry" not in trial.user_attrs:  # enqueued points (and retries) carry it
            # another worker took the last waiting point between our check and our ask
            trial.set_user_attr("failure", "no grid point left to run")
            raise optuna.TrialPruned("no grid point left")
        params = _suggest(trial, self.spec)
        seeds = [params["seed"]] if "seed" in params else self.spec.get("seeds", [None])
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        trial.set_user_attr("entry", entry_name(self.spec, params))
        if self.steps:
            trial.set_user_attr("steps_override", self.steps)
        vals, results, config_seeds = [], [], []
        for seed in seeds:
            config = config_for(self.spec, {**params, **({"seed": seed} if seed is not None else {})}, self.steps,
                                self.device)
            run_dir = (Path(self.spec["runs"][params["run"]]["run_dir"]) if "runs" in self.spec
                       else self.runs_dir / self.study_name / run_key(config))  # a retry resumes here
            trial.set_user_attr("run_dir", str(run_dir))
            try:
                res = run_resumable(config, run_dir, callbacks=[_Report(trial)] if len(seeds) == 1 else [])
            except Exception as err:  # noqa: BLE001 - a diverged or broken run is a failed trial, with its reason
                trial.set_user_attr("failure", f"{type(err).__name__}: {err}")
                raise
            if res.get("stopped"):  # pruned: its folder holds a checkpoint and stopped.json, no result
                trial.set_user_attr("pruned_at", res["steps_done"])
                trial.set_user_attr("best_val_accuracy", res["best_val_accuracy"])
                trial.set_user_attr("elapsed_s", res.get("elapsed_s"))
                trial.set_user_attr("cpu_s", res.get("cpu_s"))
                raise optuna.TrialPruned(f"pruned at step {res['steps_done']} of {res['config']['steps']}")
            results.append(res)
            vals.append(res["best_val_accuracy"])
            config_seeds.append(config.seed)
        res = results[0]
        for key in RESULT_KEYS:
            trial.set_user_attr(key, res.get(key))
        trial.set_user_attr("test_selected_accuracy", best_test_epoch(res)[0])
        trial.set_user_attr("seed", config_seeds[0] if len(config_seeds) == 1 else config_seeds)
        trial.set_user_attr("curve", {"step": [h["step"] for h in res["history"]],
                                      "val": [h["val_accuracy"] for h in res["history"]],
                                      "test": [h["test_accuracy"] for h in res["history"]]})
        value = statistics.fmean(vals)
        if not math.isfinite(value):
            trial.set_user_attr("failure", f"validation accuracy {value}")
            raise ValueError(f"validation accuracy {value}")
        return value


def _counts(study) -> dict[str, int]:
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False, states=(TrialState.WAITING, TrialState.RUNNING, TrialState.COMPLETE))
    return {s: sum(t.state.name == s for t in trials) for s in ("WAITING", "RUNNING", "COMPLETE")}


def work(study: str, storage: str | None, trials: int | None = None, device: str = "auto",
         steps: int | None = None, runs_dir: str | os.PathLike = "runs/sweeps", heartbeat: int = 60,
         grace: int | None = None, poll: float | None = None) -> int:
    """Run trials of ``study`` until the grid is done (nothing waiting, nothing running on
    any worker) or ``trials`` have run here; returns the number run here.

    While other workers' trials are running, this worker waits and checks their
    heartbeats, so that the trials of a worker that died are failed, retried, and run
    here, checking every ``poll`` seconds (default: 2, or half the heartbeat if shorter).
    ``steps`` overrides the training budget (else the one given at create)."""
    with opened(storage, heartbeat=heartbeat, grace=grace) as st_storage:
        return _work(study, st_storage, storage, trials, device, steps, runs_dir, heartbeat, poll)


def _work(study, st_storage, storage, trials, device, steps, runs_dir, heartbeat, poll) -> int:
    optuna = _optuna()
    from optuna.storages import fail_stale_trials

    try:
        st = optuna.load_study(study_name=study, storage=st_storage)
    except KeyError:
        raise ValueError(f"no study {study!r} in {storage_url(storage)}: create it first with "
                         "`invlab sweep create`") from None
    spec = st.user_attrs["space"]
    if "grid" in spec and spec.get("sampler") == "grid":
        st.sampler = optuna.samplers.GridSampler(spec["grid"], seed=0)
    elif "search" in spec:
        # seeded by worker and by how far the study is: a worker that calls work() again
        # (one trial at a time) must not draw the same first point again
        st.sampler = optuna.samplers.TPESampler(seed=os.getpid() * 1000 + len(st.get_trials(deepcopy=False)),
                                                n_startup_trials=spec.get("startup_trials", 10))
    # no pruner recorded: never prune (a loaded study's default would be a median pruner)
    st.pruner = make_pruner(**{k: v for k, v in (spec.get("pruner") or {"name": None}).items()},
                            startup_trials=spec.get("startup_trials", 4))
    objective = _Objective(spec, Path(runs_dir), device, steps or st.user_attrs.get("steps"), study)
    # A finished run's CUDA memory may sit in reference cycles until the next collection:
    # collect after each trial there. On the CPU Python's own collector suffices, and a full
    # collection in a big process (a notebook, a test session) costs a quarter of a second.

    collect = resolve_device(device).type == "cuda"
    done = 0
    # waiting on the others' last trials: check often enough to leave soon after they end (a
    # count of the study's trials), and within half a heartbeat for a worker that died
    poll = poll if poll is not None else min(2.0, heartbeat / 2)
    while trials is None or done < trials:
        fail_stale_trials(st)  # trials of dead workers: failed, then enqueued again by the retry callback
        counts = _counts(st)
        if "grid" in spec and counts["WAITING"] == 0:
            if counts["RUNNING"] == 0:
                break
            time.sleep(poll)  # others are running: wait in case one of them dies
            continue
        if "search" in spec and trials is None:
            raise ValueError("a search space has no end: give --trials N")
        try:
            st.optimize(objective, n_trials=1, catch=(Exception,), gc_after_trial=collect)
        except RunInterrupted:  # SIGINT/SIGTERM: the run wrote its checkpoint; Optuna failed the trial
            from optuna.storages import RetryHeartbeatStaleTrialCallback

            failed = next(t for t in st.get_trials(deepcopy=False) if t.number == objective.current)
            RetryHeartbeatStaleTrialCallback(max_retry=None)(st, failed)  # queued again: the next worker resumes it
            raise
        except (ValueError, AssertionError) as e:
            # This worker missed its heartbeats for longer than the grace period (suspended,
            # or starved of CPU) and another worker failed its trial and enqueued it again.
            # The run's folder keeps what it finished: the retry reads it back or resumes it.
            # (Optuna refuses the tell, and its logging of the refusal may then assert.)
            refused = e if isinstance(e, ValueError) else e.__context__
            if not (isinstance(refused, ValueError) and str(refused).startswith("Cannot tell a")):
                raise
            warnings.warn(f"another worker failed this worker's trial after a missed heartbeat ({refused}); its "
                          "retry reads the run back from its folder", stacklevel=2)
        done += 1
    return done



def run_study(runs: dict, jobs: int = 1, device: str = "auto", storage: str | None = None,
              study: str | None = None, name: str = "runs", heartbeat: int = 30) -> tuple[str, str]:
    """Run ``{run id: (TrainConfig, run_dir)}`` as one study of runs (:func:`create_runs`),
    done by ``jobs`` workers: this process for one, else ``jobs`` ``invlab sweep work``
    processes that share the cores (one thread each on a 2-core machine with two). The one
    way invlab runs many trainings: N workers on one GPU are N workers with its ``device``.

    Storage: ``storage``, else SQLite in the run folders' common parent; study name:
    ``study``, else ``name`` and a hash of the runs. Calling it again continues: finished
    runs are read back, unfinished ones resume from their checkpoints, failed ones run
    again. Returns (study, storage URL)."""
    import hashlib
    import subprocess
    import sys

    if not runs:
        raise ValueError("run_study needs at least one run")
    dirs = [Path(d).resolve() for _, d in runs.values()]
    if storage is None:
        root = Path(os.path.commonpath([d.parent for d in dirs]))
        root.mkdir(parents=True, exist_ok=True)
        storage = f"sqlite:///{root / 'sweeps.db'}"
    plan = " ".join(f"{k}={d}" for k, d in sorted(zip(runs, map(str, dirs))))
    study = study or f"{Path(name).stem}-{hashlib.sha1(plan.encode()).hexdigest()[:10]}"
    create_runs(study, storage, runs, name=name)
    if jobs <= 1:
        work(study, storage, device=device, heartbeat=heartbeat)
        return study, storage
    print(f"study {study} in {storage}: {len(runs)} runs, {jobs} workers", flush=True)
    threads = max(1, (os.cpu_count() or 1) // jobs)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    cmd = [sys.executable, "-m", "invlab.cli", "sweep", "work", "--study", study, "--storage", storage,
           "--device", device, "--heartbeat", str(heartbeat)]
    workers = [subprocess.Popen(cmd, env=env) for _ in range(jobs)]
    try:
        codes = [w.wait() for w in workers]
    finally:
        for w in workers:
            if w.poll() is None:
                w.terminate()
    if any(codes):
        print(f"warning: worker exit codes {codes}", file=sys.stderr)
    return study, storage


def failures(study: str, storage: str | None) -> dict[str, str]:
    """{run id: reason} of the runs of a study of runs whose every trial failed."""
    with opened(storage) as st_storage:
        trials = _optuna().load_study(study_name=study, storage=st_storage).get_trials(deepcopy=False)
    return {run: t.user_attrs.get("failure", "failed") for run, t in _failed_runs(trials).items()}


# -- report ---------------------------------------------------------------------------------

def trial_table(study) -> list[dict]:
    """Every trial: number, state, params, entry, seed and the recorded results."""
    return [{"number": t.number, "state": t.state.name, "params": t.params, "value": t.value,
             **{k: t.user_attrs.get(k) for k in ("entry", "seed", "failure", "worker", "steps_override", "pruned_at",
                                                  "test_selected_accuracy", *RESULT_KEYS)},
             "retry_of": t.system_attrs.get("failed_trial")} for t in study.get_trials(deepcopy=False)]


def summarise(study) -> dict[str, dict]:
    """Per entry: validation-selected test accuracy, mean ± std over the completed draws."""
    rows: dict[str, list] = {}
    for t in study.get_trials(deepcopy=False):
        if t.state.name == "COMPLETE":
            rows.setdefault(t.user_attrs["entry"], []).append(t)
    out = {}
    for entry, ts in rows.items():
        ts.sort(key=lambda t: str(t.user_attrs.get("seed")))
        test = [t.user_attrs["test_accuracy"] for t in ts]
        val = [t.user_attrs["best_val_accuracy"] for t in ts]
        sel = [t.user_attrs["test_selected_accuracy"] for t in ts]
        out[entry] = {"params": {k: v for k, v in ts[0].params.items() if k != "seed"},
                      "seeds": [t.user_attrs.get("seed") for t in ts], "trials": [t.number for t in ts],
                      "test_accuracies": test, "mean": mean_std(test)[0], "std": mean_std(test)[1],
                      "val_accuracies": val, "val_mean": mean_std(val)[0], "val_std": mean_std(val)[1],
                      "test_selected_accuracies": sel, "test_selected_mean": mean_std(sel)[0],
                      "steps": ts[0].user_attrs.get("steps_done"), "hardware": ts[0].user_attrs.get("hardware"),
                      "wall_time_s": sum(t.user_attrs.get("wall_time_s") or 0 for t in ts)}
    return out


def markdown(out: dict) -> str:
    lines = [f"Study `{out['study']}` ({out['space']}): {out['counts']}", "", markdown_table(
        ["entry", "draws", "test (%) mean ± std, validation-selected", "validation (%)",
         "best test evaluation (%), test-selected, comparison only", "steps", "hardware"],
        [[entry, len(r["seeds"]), f"{r['mean']:.2f} ± {r['std']:.2f}", f"{r['val_mean']:.2f}",
          f"{r['test_selected_mean']:.2f}", r["steps"], r["hardware"]] for entry, r in out["entries"].items()])]
    best = out.get("best_trial")
    if best:
        lines += ["", f"Best trial on validation: #{best['number']} {best['params']}: validation "
                  f"{best['val_accuracy']:.2f} %, test {best['test_accuracy']:.2f} %."]
    lines += ["", provenance_line({**out, "hardware": None}), ""]
    return "\n".join(lines)


def report(study: str, storage: str | None, out: str | os.PathLike, figures: str | os.PathLike | None = None) -> dict:
    """Write ``out`` (JSON) and its Markdown table, and plotly figures of the study under
    ``figures`` (history, parameter importances, alpha x beta contour when both vary)."""
    optuna = _optuna()
    with opened(storage) as st_storage:
        try:
            st = optuna.load_study(study_name=study, storage=st_storage)
        except KeyError:
            raise ValueError(f"no study {study!r} in {storage_url(storage)}") from None
        return _report(st, study, out, figures)


def _report(st, study: str, out, figures) -> dict:
    trials = trial_table(st)
    states = [t["state"] for t in trials]
    complete = [t for t in st.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    best = max(complete, key=lambda t: t.value) if complete else None  # on validation accuracy
    result = {"study": study, "space": st.user_attrs["space"]["name"], "entries": summarise(st),
              "best_trial": None if best is None else {
                  "number": best.number, "params": best.params, "val_accuracy": best.value,
                  "test_accuracy": best.user_attrs.get("test_accuracy")},
              "counts": {s: states.count(s) for s in sorted(set(states))}, "trials": trials,
              **results_header()}
    save_report(result, out, markdown(result))
    if figures is not None:
        write_figures(st, Path(figures))
    return result


def write_figures(study, folder: Path) -> list[Path]:
    """History, parameter importances and, when alpha and beta vary, their contour."""
    from optuna import visualization as vis

    complete = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    if not complete:
        return []
    written = [save_figure_html(vis.plot_optimization_history(study), folder / "history.html", plotlyjs="directory")]
    varying = [k for k in complete[0].params if len({str(t.params.get(k)) for t in complete}) > 1]
    if len(complete) > 2 and varying and len({t.value for t in complete}) > 1:  # ties say nothing of importance
        try:
            with warnings.catch_warnings():  # optuna's note that a few trials tie at its quantiles
                warnings.filterwarnings("ignore", message="Target and region quantiles")
                figure = vis.plot_param_importances(study)
            written.append(save_figure_html(figure, folder / "importances.html", plotlyjs="directory"))
        except (RuntimeError, ValueError):  # too few distinct trials to estimate importances
            pass
    if {"alpha", "beta"} <= set(varying):
        written.append(save_figure_html(vis.plot_contour(study, params=["alpha", "beta"]), folder / "contour.html",
                                        plotlyjs="directory"))
    return written
