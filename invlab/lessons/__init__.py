"""Lesson weights: small trained networks that the notebooks show by default, so that a lesson
shows a trained network in seconds instead of one trained for 30 steps.

Each is a slim checkpoint (the selected weights, the run's config and data record: what
:func:`~invlab.train.load_model` needs, no optimiser state) made by a committed command with
fixed seeds, ``python -m benchmarks.lessons.lesson_weights``, which also writes ``manifest.json``:
each file's SHA-256 and the test accuracy of the network as stored. Every load verifies the
digest; a file that does not match is refused, with the command that rebuilds it.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch.nn as nn

FOLDER = Path(__file__).resolve().parent
MANIFEST = FOLDER / "manifest.json"
#: the lesson networks: (data set, model) -> file name
LESSONS = {
    ("mnist", "smallcnn-mean"): "mnist-smallcnn-mean.pt",
    ("mnist", "smallcnn-max"): "mnist-smallcnn-max.pt",
    ("mnist", "smallucnn"): "mnist-smallucnn.pt",
    ("fashion-mnist", "smallcnn-mean"): "fashion-mnist-smallcnn-mean.pt",
}
REBUILD = "python -m benchmarks.lessons.lesson_weights"


def manifest() -> dict:
    """{file name: its record} (digest, test accuracy, config, command, date)."""
    if not MANIFEST.exists():
        raise FileNotFoundError(f"no lesson weights: {MANIFEST} is missing; make them with `{REBUILD}`")
    return json.loads(MANIFEST.read_text())


def lesson_checkpoint(model: str = "smallcnn-mean", dataset: str = "mnist") -> Path:
    """The verified path of the lesson weights of ``model`` on ``dataset``."""
    from invlab.io import sha256_file

    key = (dataset, model)
    if key not in LESSONS:
        raise ValueError(f"no lesson weights for {model} on {dataset}; there are: "
                         + ", ".join(f"{m} on {d}" for d, m in LESSONS))
    path = FOLDER / LESSONS[key]
    record = manifest().get(path.name)
    if record is None or not path.exists():
        raise FileNotFoundError(f"lesson weights {path.name} are missing; make them with `{REBUILD}`")
    if sha256_file(path) != record["sha256"]:
        raise ValueError(f"{path} does not match its SHA-256 in {MANIFEST.name}: it was changed or cut; "
                         f"restore it from git, or rebuild every lesson file with `{REBUILD}`")
    return path


def lesson_model(model: str = "smallcnn-mean", dataset: str = "mnist") -> nn.Module:
    """The lesson network, verified and loaded safely (``weights_only``), in eval mode, with
    its input transform as ``model.preprocess`` (see :func:`~invlab.train.load_model`)."""
    from invlab.train import load_model

    return load_model(lesson_checkpoint(model, dataset))


__all__ = ["LESSONS", "lesson_checkpoint", "lesson_model", "manifest"]
