"""Multi-seed studies: :func:`run_many` runs a list of runs as one :mod:`invlab.experiments.sweep`
study (the one runner: any number of workers, one thread each by default), so that the same
command, run again in a later session, carries on where the last one stopped.

A study is a list of runs, each a :class:`~invlab.train.TrainConfig` and a folder, each
trained by :func:`~invlab.experiments.runs.run_resumable` (resumable, read back once
finished). The helpers of :mod:`invlab.experiments.runs` are importable from here too.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from invlab.experiments import sweep
from invlab.experiments.runs import (  # noqa: F401 (the names studies have always offered)
    RESULT,
    STOPPED,
    Clock,
    TrainAccuracyProbe,
    best_test_epoch,
    mean_std,
    run_resumable,
    runs_hardware,
)


def run_many(runs: list[tuple[object, str | os.PathLike]], jobs: int = 1,
             on_done: Callable[[int, dict], None] | None = None, train: bool = True,
             keep_going: bool = False, device: str | None = None, storage: str | None = None,
             study: str | None = None, name: str = "runs", labels: list[str] | None = None) -> list[dict | None]:
    """Run every ``(config, run_dir)``; results in input order.

    The runs not finished yet become one study of :func:`invlab.experiments.sweep.run_study`, done by
    ``jobs`` workers sharing the cores, in the order given (``storage``: SQLite beside the
    run folders unless given; ``device``: the workers', default the first config's).
    ``on_done(i, result)`` is called for each run, in input order, once all have ended
    (finished runs read back count too); with ``labels`` (one per run) a line per finished
    run is printed: its test accuracy and the validation accuracy and step that chose it.

    ``train=False`` only reads finished runs back (a report of a study still under way,
    or of runs made elsewhere): unfinished ones give ``None``. A run that fails (a diverged
    loss, say) stops the study with its reason, unless ``keep_going=True``: then it gives
    ``None`` and a printed reason, and the others carry on.
    """
    todo = {str(Path(d)): (config, d) for config, d in runs if not (Path(d) / RESULT).exists()}
    if train and todo:
        device = device or runs[0][0].device
        study, storage = sweep.run_study(todo, jobs, device=device, storage=storage, study=study, name=name)
        failed = {k: why for k, why in sweep.failures(study, storage).items() if k in todo}
        if failed and not keep_going:
            raise RuntimeError(f"{len(failed)} of {len(todo)} runs failed (rerun the command to retry them): "
                               + "; ".join(f"{k}: {why}" for k, why in failed.items()))
        for k, why in failed.items():
            print(f"run {k} failed: {why}", flush=True)
    results: list[dict | None] = []
    for i, (config, run_dir) in enumerate(runs):
        res = run_resumable(config, run_dir) if (Path(run_dir) / RESULT).exists() else None  # read back
        results.append(res)
        if res is not None and labels is not None:
            print(f"{labels[i]}: test {res['test_accuracy']:.2f} % (val {res['best_val_accuracy']:.2f} % at step "
                  f"{res['best_step']}) in {res['wall_time_s']:.0f} s", flush=True)
        if res is not None and on_done is not None:
            on_done(i, res)
    return results


__all__ = ["Clock", "RESULT", "STOPPED", "TrainAccuracyProbe", "best_test_epoch", "mean_std", "run_many",
           "run_resumable", "runs_hardware"]
