"""Data sets by name: one registry, as :mod:`invlab.models` has for networks.

    load_dataset("fashion-mnist", labels_per_class=5, seed=0)  # -> SemiSupervisedData
    load_dataset("folder:path/to/images", labels_per_class=2, seed=0, resize=(64, 64))
    load_dataset("npz:my_signals.npz", labels_per_class=3, seed=1)

A loader is a function ``loader(labels_per_class, seed, val_size, root, **options)``
returning a :class:`~invlab.data.splits.SemiSupervisedData`; ``val_size=None`` takes the
data set's own default. A name registered with ``parametric=True`` takes an argument after
a colon (``folder:PATH``), handed to the loader as ``arg``. ``fetch``, when given, makes
``invlab data fetch NAME`` work.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from invlab.data.splits import SemiSupervisedData

Loader = Callable[..., SemiSupervisedData]


@dataclass(frozen=True)
class DatasetEntry:
    name: str
    loader: Loader
    fetch: Callable[..., Path] | None = None
    parametric: bool = False  # "name:ARG"
    description: str = ""
    options: tuple[str, ...] = ()  # loader options a run may set (recorded in its config)


_DATASETS: dict[str, DatasetEntry] = {}


def register_dataset(name: str, loader: Loader | None = None, *, fetch: Callable[..., Path] | None = None,
                     parametric: bool = False, description: str = "", options: tuple[str, ...] = ()):
    """Register ``loader`` under ``name`` (or use as a decorator: ``@register_dataset("x")``)."""

    def add(fn: Loader) -> Loader:
        if ":" in name or not name:
            raise ValueError(f"data set name {name!r}: use a non-empty name without ':'")
        if name in _DATASETS:
            raise ValueError(f"data set name {name!r} is already registered")
        _DATASETS[name] = DatasetEntry(name, fn, fetch, parametric, description or (fn.__doc__ or "").strip()
                                       .split("\n")[0], tuple(options))
        return fn

    return add(loader) if loader is not None else add


def list_datasets() -> list[str]:
    """Every registered name, sorted; a parametric one shows its argument (``folder:PATH``)."""
    return sorted(f"{e.name}:PATH" if e.parametric else e.name for e in _DATASETS.values())


def fetchable_datasets() -> list[str]:
    """Names that ``invlab data fetch`` can fetch."""
    return sorted(e.name for e in _DATASETS.values() if e.fetch is not None)


def dataset_entry(name: str) -> tuple[DatasetEntry, str | None]:
    """The registry entry of ``name`` and its argument (``folder:PATH`` -> PATH)."""
    base, sep, arg = name.partition(":")
    entry = _DATASETS.get(base)
    if entry is None:
        raise ValueError(f"unknown data set {name!r}; available: {', '.join(list_datasets())} "
                         "(register your own with invlab.data.register_dataset)")
    if entry.parametric and not arg:
        raise ValueError(f"data set {base!r} needs an argument: {base}:PATH")
    if not entry.parametric and sep:
        raise ValueError(f"data set {base!r} takes no argument; drop ':{arg}'")
    return entry, (arg if entry.parametric else None)


def load_dataset(name: str, labels_per_class: int | None = 5, seed: int = 0, val_size: int | None = None,
                 root: str | os.PathLike | None = None, **options) -> SemiSupervisedData:
    """The data set registered as ``name`` as a semi-supervised task.

    Args:
        name: a name of :func:`list_datasets` (``folder:PATH``, ``npz:PATH`` included).
        labels_per_class: labelled examples drawn per class (``None``: all labelled).
        seed: the label draw; validation and test never depend on it.
        val_size: validation examples carved from training (``None``: the data set's default).
        root: the data folder of this data set (default ``<data folder>/<name>``).
        options: the loader's own options (``resize=(H, W)`` for ``folder:``).
    """
    entry, arg = dataset_entry(name)
    unknown = sorted(k for k, v in options.items() if v is not None and k not in entry.options)
    if unknown:
        raise ValueError(f"data set {entry.name!r} takes no option {', '.join(unknown)}"
                         + (f" (its options: {', '.join(entry.options)})" if entry.options else ""))
    kwargs = {k: v for k, v in options.items() if v is not None}
    if arg is not None:
        kwargs["arg"] = arg
    return entry.loader(labels_per_class=labels_per_class, seed=seed, val_size=val_size, root=root, **kwargs)


def fetch_dataset(name: str, root: str | os.PathLike | None = None, force: bool = False) -> Path:
    """Download (or find offline) and verify ``name``'s files; return where they are."""
    entry, _ = dataset_entry(name)
    if entry.fetch is None:
        raise ValueError(f"data set {name!r} has nothing to fetch; fetchable: {', '.join(fetchable_datasets())}")
    return entry.fetch(root=root, force=force)


__all__ = ["DatasetEntry", "dataset_entry", "fetch_dataset", "fetchable_datasets", "list_datasets", "load_dataset",
           "register_dataset"]
