"""One resumable run and the helpers of multi-seed studies: mean ± std, a callback that tracks
training accuracy for learning curves, the run's clock, and :func:`run_resumable`.

A study is a list of runs, each a :class:`~invlab.train.TrainConfig` and a folder.
:func:`run_resumable` trains one of them so that it survives the end of a session: the
checkpoint in its folder is rewritten at every evaluation, an unfinished run is continued
from it, and a finished one is read back from its ``result.json``. Below
:mod:`invlab.experiments.sweep` (whose trials are such runs) and
:mod:`invlab.experiments.studies` (which runs a list of them as one sweep study).
"""

from __future__ import annotations

import json
import os
import statistics
import time
from pathlib import Path

import torch

from invlab.io import save_json
from invlab.training.checkpoints import CHECKPOINT
from invlab.training.device import resolve_device
from invlab.training.evaluate import accuracy
from invlab.training.guard import RunInterrupted, RunLock
from invlab.training.provenance import hardware
from invlab.training.trainer import Trainer


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


class TrainAccuracyProbe:
    """Callback: adds ``train_accuracy`` (on a fixed subset of labelled training examples)
    to every history record, so that learning curves show train, validation and test."""

    def __init__(self, max_examples: int = 2000, seed: int = 0):
        self.max_examples, self.seed = max_examples, seed
        self.index = None

    def on_eval(self, trainer: Trainer, record: dict) -> None:
        if self.index is None:
            labelled = trainer.data.labelled
            g = torch.Generator().manual_seed(self.seed)
            self.index = labelled[torch.randperm(len(labelled), generator=g)[: self.max_examples]]
        record["train_accuracy"] = accuracy(trainer.model, trainer.data.x_train, trainer.data.y_train, self.index)


RESULT = "result.json"
#: written instead of ``result.json`` by a run stopped before its budget (a pruned trial):
#: the folder holds a checkpoint to continue from, never a result to read back
STOPPED = "stopped.json"


class Clock:
    """Callback: ``elapsed_s``, wall seconds of training and evaluation since the run began,
    and ``cpu_s``, this process's CPU seconds over the same span (both summed over resumed
    sessions), in every history record. Wall time grows while the run waits (other jobs on
    the cores, a paused worker); CPU time is what the run costs, so compute plans use it.
    ``cpu_s`` is ``None`` for a run resumed from a checkpoint that did not count it."""

    def __init__(self, trainer: Trainer):
        self.offset, self.cpu_offset = trainer.elapsed_s, trainer.cpu_s
        self.t0, self.c0 = time.perf_counter(), time.process_time()

    def now(self) -> float:
        return self.offset + time.perf_counter() - self.t0

    def cpu(self) -> float | None:
        return None if self.cpu_offset is None else self.cpu_offset + time.process_time() - self.c0

    def on_eval(self, trainer: Trainer, record: dict) -> None:
        trainer.elapsed_s = record["elapsed_s"] = self.now()
        trainer.cpu_s = record["cpu_s"] = self.cpu()


def run_resumable(config, run_dir: str | os.PathLike, threads: int | None = None, data=None,
                  callbacks=()) -> dict:
    """Train ``config`` in ``run_dir``, resuming from its checkpoint; return the result dict.

    ``run_dir`` holds ``checkpoint.pt`` (rewritten atomically at every evaluation) and,
    once the run is finished, ``result.json`` (the :class:`~invlab.train.TrainResult`
    fields, plus ``hardware``, ``threads`` and ``resumed_from`` — the steps done before
    this call). A finished run is read back, not retrained; an interrupted one continues
    from its last checkpoint and gives the same numbers as an uninterrupted run.

    The folder's lock (:class:`~invlab.training.guard.RunLock`) is held for the whole run.
    SIGINT or SIGTERM stops it after the current step with a checkpoint there and raises
    :class:`~invlab.training.guard.RunInterrupted` (a sweep worker then queues its trial
    again and exits). ``callbacks`` go to the trainer beside the run's clock. One that stops the run before
    its budget (``trainer.stop``, with ``trainer.stop_reason``, e.g. a pruned trial) leaves
    ``stopped.json`` (reason, step, best validation accuracy so far) and no ``result.json``:
    the folder is an unfinished run, which a later call continues. The returned dict then
    has ``stopped`` set to the reason.
    """
    run_dir = Path(run_dir)
    if (run_dir / RESULT).exists():
        return json.loads((run_dir / RESULT).read_text())
    if threads:
        torch.set_num_threads(threads)
    with RunLock(run_dir):  # one writer: a second worker on this folder fails at once, naming the first
        return _run_locked(config, run_dir, data, callbacks)


def _run_locked(config, run_dir: Path, data, callbacks) -> dict:
    if (run_dir / RESULT).exists():  # finished by the lock's last holder
        return json.loads((run_dir / RESULT).read_text())
    trainer = Trainer(config, data)
    if (run_dir / CHECKPOINT).exists():
        trainer.load_checkpoint(run_dir / CHECKPOINT)
    resumed_from = trainer.step
    result = trainer.run([Clock(trainer), *callbacks], progress=False, checkpoint_path=run_dir / CHECKPOINT)
    if trainer.interrupted is not None:  # its checkpoint is written: a retry continues from it
        raise RunInterrupted(trainer.interrupted, trainer.step, run_dir)
    out = result.to_dict()
    out.update(hardware=hardware(str(resolve_device(config.device))), threads=torch.get_num_threads(),
               resumed_from=resumed_from, elapsed_s=trainer.elapsed_s, cpu_s=trainer.cpu_s)
    if trainer.step < trainer.total_steps:  # stopped early: not a result
        trainer.save_checkpoint(run_dir / CHECKPOINT)
        reason = trainer.stop_reason or "stopped"
        save_json({"reason": reason, "step": trainer.step, "steps": trainer.total_steps,
                   "best_val_accuracy": trainer.best_val, "elapsed_s": trainer.elapsed_s,
                   "cpu_s": trainer.cpu_s}, run_dir / STOPPED)
        return {**out, "stopped": reason}
    save_json(out, run_dir / RESULT)
    (run_dir / STOPPED).unlink(missing_ok=True)
    return out


def runs_hardware(results: list[dict | None]) -> str:
    """Where a study's runs were made: their distinct ``hardware`` strings, joined."""
    seen = dict.fromkeys(r["hardware"] for r in results if r is not None and "hardware" in r)
    return " + ".join(seen) if seen else "none finished"


def best_test_epoch(result: dict) -> tuple[float, int]:
    """The paper's protocol, for comparison only: the best test accuracy over the run's
    evaluations and its step. It reads the test set to choose, so it is biased upwards."""
    best = max(result["history"], key=lambda r: r["test_accuracy"])
    return best["test_accuracy"], best["step"]


__all__ = ["Clock", "RESULT", "STOPPED", "TrainAccuracyProbe", "best_test_epoch", "mean_std", "run_resumable",
           "runs_hardware"]
