"""Bird10 (paper §3.2): real recordings when present, else the labelled synthetic stand-in."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from invlab.data.audio import Segments, load_recordings, split_by_recording
from invlab.data.mnist import data_dir
from invlab.data.splits import SemiSupervisedData, labelled_split
from invlab.data.synthetic_birds import SPECIES, synthetic_bird10


def bird10_dir(root: str | os.PathLike | None = None) -> Path:
    """Where real Bird10 recordings are looked for: ``root`` or ``<data folder>/bird10``."""
    return Path(root) if root is not None else data_dir() / "bird10"


def load_bird10(root: str | os.PathLike | None = None, sample_rate: int = 44_100, window_s: float = 0.5,
                hop_s: float = 0.05, seed: int = 0, labels_per_class: int | None = None,
                val_fraction: float = 0.2, test_fraction: float = 0.2, synthetic: bool | None = None,
                recordings_per_species: int = 12) -> SemiSupervisedData:
    """Bird10 as segments of ``window_s`` seconds every ``hop_s`` seconds (paper: 500 ms, 90 % overlap).

    Args:
        root: folder of real recordings (see :func:`~invlab.data.audio.load_recordings`);
            default ``<data folder>/bird10``.
        synthetic: ``None`` — real data if ``root`` holds any, else the synthetic stand-in;
            ``True`` / ``False`` force one or the other.
        seed: the split of recordings into train / validation / test (and the label draw).
        labels_per_class: ``None`` labels every training segment (the paper's setting);
            an integer draws that many labelled segments per class.
        recordings_per_species: size of the synthetic data set.

    The split is by recording: all segments of one recording land in the same split.
    ``name`` is ``"bird10"`` or ``"synthetic-bird10"``.
    """
    folder = bird10_dir(root)
    if synthetic is None:
        synthetic = not (folder.is_dir() and any(folder.iterdir()))
    if synthetic:
        recordings = synthetic_bird10(recordings_per_species, sample_rate, seed=0)
        classes, name = [s.name for s in SPECIES], "synthetic-bird10"
    else:
        recordings, classes = load_recordings(folder, sample_rate)
        name = "bird10"
    window, hop = round(window_s * sample_rate), round(hop_s * sample_rate)
    train, val, test = split_by_recording(recordings, val_fraction, test_fraction, seed)
    x_train, y_train, _ = Segments.from_recordings(train, window, hop)
    x_val, y_val, g_val = Segments.from_recordings(val, window, hop)
    x_test, y_test, g_test = Segments.from_recordings(test, window, hop)
    labelled = (torch.arange(len(y_train)) if labels_per_class is None
                else labelled_split(y_train, labels_per_class, seed, num_classes=len(classes)))
    return SemiSupervisedData(x_train, y_train, labelled, x_val, y_val, x_test, y_test, len(classes), name,
                              groups_val=g_val, groups_test=g_test, class_names=classes)
