"""Per-example input preprocessing, the same for training, validation and test.

Each example is transformed on its own (no statistics of the training set), so the
transform is known from its name alone: a checkpoint records the name, and
:func:`invlab.train.load_model` hands the same transform back with the network.

* ``"none"`` — the data as loaded (MNIST pixels in [0, 1]).
* ``"center-maxabs"`` — x ← (x − mean(x)) / max|x − mean(x)|: centred on the example's
  own mean, then scaled into [−1, 1]. What the first author's later public code did
  for MNIST. The background becomes a non-zero negative level, so the reconstruction
  (df/dx)ᵀf(x) has to reproduce it too: R no longer rewards an all-zero background.
* ``"standardize"`` — x ← (x − mean(x)) / std(x): zero mean, unit variance per example.

Means, maxima and standard deviations are taken over all the example's dimensions
(channels, pixels or samples). A constant example (max|x − mean| = 0) maps to zeros.
"""

from __future__ import annotations

from dataclasses import replace

import torch

from invlab.data.splits import SemiSupervisedData

PREPROCESSING = ("none", "center-maxabs", "standardize")
_EPS = 1e-8


def check_preprocess(kind: str) -> str:
    if kind not in PREPROCESSING:
        raise ValueError(f"unknown preprocessing {kind!r}; use one of {', '.join(PREPROCESSING)}")
    return kind


def preprocess(x: torch.Tensor, kind: str) -> torch.Tensor:
    """Transform every example of x (B, *D) on its own; returns a new (B, *D) tensor."""
    check_preprocess(kind)
    if kind == "none":
        return x
    flat = x.flatten(1)  # (B, D)
    centred = flat - flat.mean(1, keepdim=True)
    if kind == "center-maxabs":
        scale = centred.abs().amax(1, keepdim=True)
    else:  # standardize
        scale = centred.pow(2).mean(1, keepdim=True).sqrt()
    return (centred / scale.clamp_min(_EPS)).reshape(x.shape)


class Preprocess:
    """The transform of one preprocessing name, as a callable: ``Preprocess(kind)(x)``."""

    def __init__(self, kind: str = "none"):
        self.kind = check_preprocess(kind)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return preprocess(x, self.kind)

    def __repr__(self) -> str:
        return f"Preprocess({self.kind!r})"


def preprocess_data(data: SemiSupervisedData, kind: str) -> SemiSupervisedData:
    """The same task with every split (train, validation, test) preprocessed by ``kind``.

    Tensors are transformed once, here; lazily gathered audio segments
    (:class:`~invlab.data.audio.Segments`) get the transform attached and apply it to
    each batch they gather.
    """
    if check_preprocess(kind) == "none":
        return data

    def apply(x):
        return x.with_transform(Preprocess(kind)) if hasattr(x, "with_transform") else preprocess(x, kind)

    return replace(data, x_train=apply(data.x_train), x_val=apply(data.x_val), x_test=apply(data.x_test))
