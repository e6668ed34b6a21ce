"""Audio recordings -> fixed-length segments, split by recording (Bird10, paper §3.2).

A recording is cut into windows of ``window`` samples every ``hop`` samples (500 ms with
90 % overlap = a 50 ms hop in the paper): recording of T samples gives
1 + (T - window) // hop segments, the last partial window dropped. Segments are views into
the recordings' audio, gathered only when a batch asks for them.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import torch

AUDIO_SUFFIXES = {".wav", ".flac"}


@dataclass
class Recording:
    """One mono recording: waveform (T,) float32 at ``sample_rate``, class index ``label``."""

    waveform: torch.Tensor
    sample_rate: int
    label: int
    name: str


def read_audio(path: str | os.PathLike) -> tuple[torch.Tensor, int]:
    """Read a WAV/FLAC file as mono float32 (T,) and its sample rate (soundfile, not FFmpeg)."""
    import soundfile

    try:
        data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)  # (T, channels)
    except Exception as err:  # soundfile raises its own error types and RuntimeError
        raise ValueError(f"cannot read audio file {path}: {err}; check that it is a valid WAV or FLAC file") from err
    return torch.from_numpy(data).mean(1), int(rate)


def load_recordings(root: str | os.PathLike, sample_rate: int | None = 44_100) -> tuple[list[Recording], list[str]]:
    """All recordings under ``root``, resampled to ``sample_rate`` with torchaudio.

    Layout: one sub-folder per class (``root/<species>/*.wav|flac``), or a CSV index
    ``root/index.csv`` with columns ``path,label`` (paths relative to ``root``).
    ``sample_rate=None`` keeps the files' rate, which must then be the same for all.

    Returns the recordings and the sorted class names (label i = classes[i]).
    """
    import torchaudio.functional as AF

    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"audio folder {root} does not exist")
    index = root / "index.csv"
    if index.is_file():
        with open(index, newline="") as f:
            rows = list(csv.DictReader(f))
        if not rows or not {"path", "label"} <= set(rows[0]):
            raise ValueError(f"{index} must have a header 'path,label' and at least one row")
        entries = [(root / r["path"], r["label"]) for r in rows]
    else:
        entries = [(p, d.name) for d in sorted(root.iterdir()) if d.is_dir()
                   for p in sorted(d.iterdir()) if p.suffix.lower() in AUDIO_SUFFIXES]
    if not entries:
        raise ValueError(f"no recordings in {root}: expected one sub-folder of .wav/.flac files per "
                         "species, or an index.csv with columns path,label")
    classes = sorted({label for _, label in entries})
    recordings, rates = [], set()
    for path, label in entries:
        wave, rate = read_audio(path)
        rates.add(rate)
        if sample_rate is not None and rate != sample_rate:
            wave = AF.resample(wave, rate, sample_rate)
        recordings.append(Recording(wave.contiguous(), sample_rate or rate, classes.index(label), str(path)))
    if sample_rate is None and len(rates) > 1:
        raise ValueError(f"recordings have mixed sample rates {sorted(rates)}; pass a sample_rate "
                         "(e.g. 44100) to resample them to one rate")
    return recordings, classes


def segment_starts(length: int, window: int, hop: int) -> torch.Tensor:
    """Start offsets of the full windows in a signal of ``length`` samples: (1 + (length-window)//hop,)."""
    if window < 1 or hop < 1:
        raise ValueError(f"window and hop must be positive, got {window}, {hop}")
    if length < window:
        return torch.empty(0, dtype=torch.long)
    return torch.arange(0, length - window + 1, hop)


class Segments:
    """Fixed-length windows into a set of recordings, indexed like a (N, 1, window) tensor.

    ``segments[idx]`` with an index tensor or list gathers those windows into a float32
    tensor; a slice gives a lighter ``Segments`` view; ``.to(device)`` materialises all.
    ``transform``, when given, is applied to every gathered batch (per-example
    preprocessing, see :mod:`invlab.data.preprocess`).
    """

    def __init__(self, audio: torch.Tensor, starts: torch.Tensor, window: int, transform=None):
        self.audio, self.starts, self.window, self.transform = audio, starts, window, transform
        self._offsets = torch.arange(window)

    def with_transform(self, transform) -> "Segments":
        """The same windows, with ``transform`` applied to each gathered batch."""
        return Segments(self.audio, self.starts, self.window, transform)

    @classmethod
    def from_recordings(cls, recordings: list[Recording], window: int, hop: int):
        """Segments of every recording, their labels (N,) and recording ids (N,)."""
        if not recordings:
            raise ValueError("no recordings to segment (is a split empty?)")
        audio = torch.cat([r.waveform for r in recordings])
        starts, labels, groups, offset = [], [], [], 0
        for i, rec in enumerate(recordings):
            s = segment_starts(len(rec.waveform), window, hop)
            if len(s) == 0:
                raise ValueError(f"recording {rec.name} has {len(rec.waveform)} samples, shorter than one "
                                 f"{window}-sample window; remove it or use a shorter window")
            starts.append(s + offset)
            labels.append(torch.full((len(s),), rec.label))
            groups.append(torch.full((len(s),), i))
            offset += len(rec.waveform)
        return cls(audio, torch.cat(starts), window), torch.cat(labels), torch.cat(groups)

    def __len__(self) -> int:
        return len(self.starts)

    @property
    def shape(self) -> tuple[int, int, int]:
        return (len(self), 1, self.window)

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return Segments(self.audio, self.starts[idx], self.window, self.transform)
        starts = self.starts[torch.as_tensor(idx)]
        batch = self.audio[starts.reshape(-1, 1) + self._offsets].reshape(*starts.shape, 1, self.window)
        return batch if self.transform is None else self.transform(batch)

    def to(self, *args, **kwargs) -> torch.Tensor:
        return self[torch.arange(len(self))].to(*args, **kwargs)


def split_by_recording(recordings: list[Recording], val_fraction: float = 0.2, test_fraction: float = 0.2,
                       seed: int = 0) -> tuple[list[Recording], list[Recording], list[Recording]]:
    """Train / validation / test recordings, stratified by class, so that the segments of one
    recording never straddle two splits. Every class needs at least 3 recordings."""
    gen = torch.Generator().manual_seed(seed)
    train, val, test = [], [], []
    for c in sorted({r.label for r in recordings}):
        mine = [r for r in recordings if r.label == c]
        if len(mine) < 3:
            raise ValueError(f"class {c} has {len(mine)} recording(s); a train/validation/test split by "
                             "recording needs at least 3 per class")
        order = [mine[i] for i in torch.randperm(len(mine), generator=gen)]
        n_test = max(1, round(test_fraction * len(mine)))
        n_val = max(1, round(val_fraction * len(mine)))
        test += order[:n_test]
        val += order[n_test:n_test + n_val]
        train += order[n_test + n_val:]
    return train, val, test
