"""Data sets by name (:func:`load_dataset`, :func:`register_dataset`) and semi-supervised splits.

Built in: ``mnist`` (fetched, checksum-verified, cached), ``fashion-mnist``, ``kmnist``,
``cifar10``, ``svhn`` (torchvision), ``bird10`` (raw audio), ``synthetic`` (smoke runs),
``folder:PATH`` and ``npz:PATH`` (your own data). Everything about MNIST's size and class
count lives in :mod:`invlab.data.mnist`.
"""

from __future__ import annotations

from invlab.data.arrays import SPLIT_SEED, check_examples, semi_supervised
from invlab.data.audio import Recording, Segments, load_recordings, read_audio, segment_starts, split_by_recording
from invlab.data.bird10 import load_bird10
from invlab.data.mnist import MNIST_CLASSES, data_dir, fetch_mnist, load_mnist, load_mnist_arrays
from invlab.data.preprocess import PREPROCESSING, Preprocess, preprocess, preprocess_data
from invlab.data.registry import (
    dataset_entry,
    fetch_dataset,
    fetchable_datasets,
    list_datasets,
    load_dataset,
    register_dataset,
)
from invlab.data.splits import SemiSupervisedData, labelled_split, subset


def _mnist(labels_per_class=5, seed=0, val_size=None, root=None):
    """MNIST: 60 000 training and 10 000 test digits, fetched and verified."""
    return load_mnist(labels_per_class, seed, val_size, root=root)


def _bird10(labels_per_class=None, seed=0, val_size=None, root=None):
    """Bird10's raw audio (real recordings under the folder, else the synthetic stand-in)."""
    if val_size is not None:
        raise ValueError("bird10 splits by recording (20 % of each species' recordings for validation); "
                         "val_size does not apply to it: drop --val-size")
    return load_bird10(root, seed=seed, labels_per_class=labels_per_class)


def _synthetic(labels_per_class=5, seed=0, val_size=None, root=None):
    """Ten classes of noisy random 28x28 prototypes: smoke runs, no difficulty."""
    from invlab.data.synthetic import synthetic_digits

    return synthetic_digits(labels_per_class, seed, n_val=200 if val_size is None else val_size)


register_dataset("mnist", _mnist, fetch=lambda root=None, force=False: fetch_mnist(root, force=force))
register_dataset("bird10", _bird10)
register_dataset("synthetic", _synthetic)
from invlab.data import files, vision  # noqa: E402,F401  (register fashion-mnist, kmnist, cifar10, svhn, folder:, npz:)

__all__ = [
    "MNIST_CLASSES",
    "SPLIT_SEED",
    "check_examples",
    "dataset_entry",
    "fetch_dataset",
    "fetchable_datasets",
    "list_datasets",
    "load_dataset",
    "register_dataset",
    "semi_supervised",
    "PREPROCESSING",
    "Preprocess",
    "preprocess",
    "preprocess_data",
    "Recording",
    "Segments",
    "load_bird10",
    "load_recordings",
    "read_audio",
    "segment_starts",
    "split_by_recording",
    "SemiSupervisedData",
    "data_dir",
    "fetch_mnist",
    "labelled_split",
    "load_mnist",
    "subset",
    "load_mnist_arrays",
]
