"""Helpers for multi-seed studies: provenance (command, commit, hardware, date), mean ± std,
and a callback that tracks training accuracy for learning curves."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import shlex
import statistics
import subprocess
import sys

import torch

from .train import Trainer, accuracy


def provenance(argv: list[str] | None = None, device: str = "cpu") -> dict:
    """Command line, git commit, hardware and UTC date of a run, for results files."""
    argv = sys.argv if argv is None else argv
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True).stdout.strip()
        commit += "+uncommitted" if dirty else ""
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    return {"command": " ".join(shlex.quote(a) for a in argv), "commit": commit,
            "hardware": hardware(device), "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d")}


def hardware(device: str = "cpu") -> str:
    """A one-line description: CPU and core count, or the GPU's name."""
    if str(device).startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"{platform.machine()} CPU, {os.cpu_count()} cores, torch {torch.__version__.split('+')[0]}"


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
