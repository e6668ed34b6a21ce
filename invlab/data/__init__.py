"""Data: real MNIST (fetched, checksum-verified, cached) and semi-supervised splits."""

from __future__ import annotations

import os


from .audio import Recording, Segments, load_recordings, read_audio, segment_starts, split_by_recording
from .bird10 import load_bird10
from .mnist import data_dir, fetch_mnist, load_mnist_arrays
from .preprocess import PREPROCESSING, Preprocess, preprocess, preprocess_data
from .splits import SemiSupervisedData, labelled_split, subset


def load_mnist(labels_per_class: int = 5, seed: int = 0, val_size: int = 10_000,
               root: str | os.PathLike | None = None, fetch: bool = True) -> SemiSupervisedData:
    """MNIST as a semi-supervised task.

    The last ``val_size`` images of the official 60 000-image training set form the
    validation split (the classic 50k/10k split); the labelled set is drawn from the
    remaining training images with :func:`labelled_split` (``seed`` is the label draw);
    the 10 000 official test images are only ever used for the final report.
    """
    if not 0 < val_size < 60_000:
        raise ValueError(f"val_size must be between 1 and 59 999, got {val_size}")
    arrays = load_mnist_arrays(root, fetch=fetch)
    x = arrays["train_images"].unsqueeze(1).float().div_(255)  # (60000, 1, 28, 28)
    y = arrays["train_targets"]
    n_train = len(x) - val_size
    x_train, y_train = x[:n_train], y[:n_train]
    return SemiSupervisedData(
        x_train=x_train, y_train=y_train,
        labelled=labelled_split(y_train, labels_per_class, seed, num_classes=10),
        x_val=x[n_train:], y_val=y[n_train:],
        x_test=arrays["test_images"].unsqueeze(1).float().div_(255), y_test=arrays["test_targets"],
        num_classes=10, name="mnist")


__all__ = ["PREPROCESSING", "Preprocess", "preprocess", "preprocess_data", "Recording", "Segments", "load_bird10", "load_recordings", "read_audio", "segment_starts",
           "split_by_recording", "SemiSupervisedData", "data_dir", "fetch_mnist", "labelled_split", "load_mnist", "subset",
           "load_mnist_arrays"]
