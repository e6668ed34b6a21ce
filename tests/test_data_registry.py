"""invlab.data.registry: every loader on small files it writes in the official formats, offline, and
every kind of bad data refused with a message that names the fix."""

from __future__ import annotations

import gzip
import hashlib
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from invlab.data import list_datasets, load_dataset, register_dataset, semi_supervised, vision
from invlab.data.registry import _DATASETS


def _idx(array: np.ndarray) -> bytes:
    """An IDX file (the MNIST family's format): magic, sizes, uint8 data."""
    return struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()

def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()

def _mnist_like(n_train=60, n_test=20, side=28, seed=0):
    rng = np.random.default_rng(seed)
    return {"train-images-idx3-ubyte": rng.integers(0, 256, (n_train, side, side), dtype=np.uint8),
            "train-labels-idx1-ubyte": (np.arange(n_train) % 10).astype(np.uint8),
            "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, side, side), dtype=np.uint8),
            "t10k-labels-idx1-ubyte": (np.arange(n_test) % 10).astype(np.uint8)}

def _folder(root: Path, classes=("cat", "dog", "owl"), per_class=8, size=(20, 16), mode="L", seed=0) -> Path:
    from PIL import Image

    rng = np.random.default_rng(seed)
    for c in classes:
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            shape = (size[0], size[1], 3) if mode == "RGB" else size
            Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode=mode).save(root / c / f"{i}.png")
    return root


def test_npz_labels_with_a_gap_name_the_labels_found_and_the_missing_classes(tmp_path):
    rng = np.random.default_rng(0)
    y = np.array([0, 1, 5] * 40)
    np.savez(tmp_path / "d.npz", x=rng.random((len(y), 1, 8, 8)).astype("float32"), y=y)
    with pytest.raises(ValueError) as err:
        load_dataset(f"npz:{tmp_path / 'd.npz'}", 2, 0, None)
    message = str(err.value)
    assert "the training labels are {0, 1, 5}, so classes 2, 3, 4 of 0..5 have no training example" in message
    assert "renumber the labels 0..C-1 without gaps" in message


def test_registry_lists_every_built_in_name_and_takes_new_ones():
    names = list_datasets()
    for name in ("mnist", "fashion-mnist", "kmnist", "cifar10", "svhn", "bird10", "synthetic", "folder:PATH",
                 "npz:PATH"):
        assert name in names
    with pytest.raises(ValueError, match="unknown data set 'nope'.*fashion-mnist"):
        load_dataset("nope")
    with pytest.raises(ValueError, match="needs an argument: folder:PATH"):
        load_dataset("folder")

    def blobs(labels_per_class, seed, val_size, root):
        g = torch.Generator().manual_seed(1)
        x, y = torch.rand(40, 2, 9, generator=g), torch.arange(40) % 4
        return semi_supervised("blobs", x, y, labels_per_class=labels_per_class, seed=seed, val_size=val_size)

    register_dataset("test-blobs", blobs)
    try:
        d = load_dataset("test-blobs", labels_per_class=2, seed=3, val_size=5)
        assert d.input_shape == (2, 9) and d.num_classes == 4 and len(d.labelled) == 8 and len(d.x_val) == 5
        assert len(d.x_test) == 8  # 20 % of 40 carved for test, before validation
        with pytest.raises(ValueError, match="already registered"):
            register_dataset("test-blobs", blobs)
    finally:
        _DATASETS.pop("test-blobs")


def test_fashion_mnist_fetch_verifies_the_official_contents(tmp_path, monkeypatch):
    arrays = _mnist_like()
    source = tmp_path / "debian"
    source.mkdir()
    for name, a in arrays.items():
        (source / f"{name}.gz").write_bytes(gzip.compress(_idx(a)))
    md5 = {name: hashlib.md5(_idx(a)).hexdigest() for name, a in arrays.items()}
    monkeypatch.setattr(vision, "FASHION_MNIST_MD5", md5)
    root = tmp_path / "fm"
    assert vision.fetch_fashion_mnist(root, source=source, online=False) == root
    raw = root / "FashionMNIST" / "raw"
    assert sorted(p.name for p in raw.iterdir()) == sorted(md5)  # no temporary file left
    d = load_dataset("fashion-mnist", labels_per_class=2, seed=0, val_size=10, root=root)
    assert d.class_names[0] == "T-shirt/top" and d.input_shape == (1, 28, 28)
    assert (len(d.x_train), len(d.x_val), len(d.x_test)) == (50, 10, 20)
    assert torch.equal(d.x_val[-1, 0], torch.from_numpy(arrays["train-images-idx3-ubyte"][-1]).float() / 255)
    (raw / "t10k-labels-idx1-ubyte").write_bytes(b"corrupt")
    with pytest.raises(ValueError, match="checksum mismatch.*fetch fashion-mnist --force"):
        vision.fetch_fashion_mnist(root, source=source, online=False)
    vision.fetch_fashion_mnist(root, source=source, online=False, force=True)  # rebuilt from the source
    bad = tmp_path / "bad"
    bad.mkdir()
    for name in md5:
        (bad / f"{name}.gz").write_bytes(gzip.compress(b"not fashion"))
    with pytest.raises(ValueError, match="does not hold the official"):
        vision.fetch_fashion_mnist(tmp_path / "fm2", source=bad, online=False)
    assert not any((tmp_path / "fm2" / "FashionMNIST" / "raw").iterdir())  # nothing half written
    with pytest.raises(FileNotFoundError, match="dataset-fashion-mnist"):
        vision.fetch_fashion_mnist(tmp_path / "fm3", source=tmp_path / "nowhere", online=False)


@pytest.mark.skipif(not vision.DEBIAN_FASHION_MNIST.is_dir(), reason="Debian's dataset-fashion-mnist not installed")
def test_fashion_mnist_from_debian_is_the_official_data(tmp_path):
    vision.fetch_fashion_mnist(tmp_path / "fm", online=False)
    d = load_dataset("fashion-mnist", labels_per_class=5, seed=0, root=tmp_path / "fm")
    assert (len(d.x_train), len(d.x_val), len(d.x_test)) == (50_000, 10_000, 10_000)
    assert torch.bincount(d.y_test).tolist() == [1000] * 10


def test_kmnist_reads_torchvisions_layout(tmp_path):
    raw = tmp_path / "KMNIST" / "raw"
    raw.mkdir(parents=True)
    for name, a in _mnist_like(seed=1).items():
        (raw / name).write_bytes(_idx(a))
    d = load_dataset("kmnist", labels_per_class=1, seed=0, val_size=10, root=tmp_path)
    assert d.class_names[:2] == ["o", "ki"] and d.input_shape == (1, 28, 28) and len(d.labelled) == 10


def test_kmnist_missing_names_the_layout_and_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"KMNIST/raw/.*invlab data fetch kmnist"):
        vision._read.__wrapped__("kmnist", str(tmp_path))  # the download fails offline, then the message


def test_cifar10_reads_the_python_batches(tmp_path, monkeypatch):
    from torchvision.datasets import CIFAR10

    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(2)
    images = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, (12, 3072), dtype=np.uint8)
        images[name] = data
        with open(folder / name, "wb") as f:
            pickle.dump({"data": data, "labels": list(np.arange(12) % 10)}, f)
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": names}, f)
    monkeypatch.setattr(
        CIFAR10, "train_list", [[f"data_batch_{i}", _md5(folder / f"data_batch_{i}")] for i in range(1, 6)]
    )
    monkeypatch.setattr(CIFAR10, "test_list", [["test_batch", _md5(folder / "test_batch")]])
    monkeypatch.setattr(CIFAR10, "meta", {**CIFAR10.meta, "md5": _md5(folder / "batches.meta")})
    d = load_dataset("cifar10", labels_per_class=2, seed=0, val_size=6, root=tmp_path)
    assert d.input_shape == (3, 32, 32) and d.class_names == names
    assert (len(d.x_train), len(d.x_val), len(d.x_test)) == (54, 6, 12)
    first = torch.from_numpy(images["data_batch_1"][0].reshape(3, 32, 32)).float() / 255
    assert torch.equal(d.x_train[0], first)  # channels first, red plane first, as the format stores it


def test_svhn_reads_the_mat_files(tmp_path, monkeypatch):
    from scipy.io import savemat
    from torchvision.datasets import SVHN

    rng = np.random.default_rng(3)
    split_list = {}
    for split, n in (("train", 30), ("test", 10)):
        x = rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8)
        y = (np.arange(n) % 10 + 1).reshape(n, 1)  # SVHN stores the digit 0 as label 10
        savemat(tmp_path / f"{split}_32x32.mat", {"X": x, "y": y})
        split_list[split] = ["", f"{split}_32x32.mat", _md5(tmp_path / f"{split}_32x32.mat")]
    monkeypatch.setattr(SVHN, "split_list", {**SVHN.split_list, **split_list})
    d = load_dataset("svhn", labels_per_class=1, seed=0, val_size=5, root=tmp_path)
    assert d.input_shape == (3, 32, 32) and sorted(torch.unique(d.y_test).tolist()) == list(range(10))
    assert int(d.y_test[9]) == 0  # label 10 is the digit 0


def test_folder_carves_validation_and_test_reproducibly(tmp_path):
    root = _folder(tmp_path / "imgs")
    a = load_dataset(f"folder:{root}", labels_per_class=2, seed=0, val_size=4)
    b = load_dataset(f"folder:{root}", labels_per_class=2, seed=1, val_size=4)
    assert a.input_shape == (1, 20, 16) and a.class_names == ["cat", "dog", "owl"]
    assert (len(a.x_train), len(a.x_val), len(a.x_test)) == (15, 4, 5)  # 20 % of 24 for test, then 4 validation
    assert torch.equal(a.x_val, b.x_val) and torch.equal(a.x_test, b.x_test)  # the split never follows the draw
    assert not torch.equal(a.labelled, b.labelled)
    assert "split_seed 0" in a.summary()["split"]["test"]


def test_folder_with_train_val_test_and_colour(tmp_path):
    root = tmp_path / "parts"
    _folder(root / "train", mode="RGB", per_class=4)
    _folder(root / "val", mode="RGB", per_class=1, seed=1)
    _folder(root / "test", classes=("dog",), mode="RGB", per_class=2, seed=2)
    d = load_dataset(f"folder:{root}", labels_per_class=1, seed=0)
    assert d.input_shape == (3, 20, 16) and len(d.x_train) == 12 and len(d.x_val) == 3 and len(d.x_test) == 2
    assert d.y_test.tolist() == [1, 1]  # "dog" keeps train/'s index
    assert d.summary()["split"] == {"split_seed": 0, "test": "given", "validation": "given"}


def test_folder_bad_data_is_named(tmp_path):
    from PIL import Image

    empty = _folder(tmp_path / "empty")
    (empty / "eel").mkdir()
    with pytest.raises(ValueError, match=r"class folder .*eel is empty"):
        load_dataset(f"folder:{empty}")
    text = _folder(tmp_path / "text")
    (text / "dog" / "notes.png").write_text("not an image")
    with pytest.raises(ValueError, match=r"notes.png is not an image"):
        load_dataset(f"folder:{text}")
    sizes = _folder(tmp_path / "sizes")
    Image.fromarray(np.zeros((30, 30), dtype=np.uint8)).save(sizes / "owl" / "big.png")
    with pytest.raises(ValueError, match=r"different sizes.*--resize H W"):
        load_dataset(f"folder:{sizes}")
    d = load_dataset(f"folder:{sizes}", labels_per_class=1, resize=(12, 12))
    assert d.input_shape == (1, 12, 12) and "resized to 12x12" in d.summary()["source"]
    with pytest.raises(ValueError, match=r"the smallest class, \d \('\w+'\), has only \d examples"):
        load_dataset(f"folder:{sizes}", labels_per_class=7, resize=(12, 12))
    with pytest.raises(ValueError, match="no option resize"):
        load_dataset("synthetic", resize=(12, 12))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_dataset(f"folder:{tmp_path / 'nowhere'}")


def test_npz_images_and_signals(tmp_path):
    rng = np.random.default_rng(4)
    np.savez(tmp_path / "img.npz", x=rng.integers(0, 256, (40, 3, 8, 8), dtype=np.uint8), y=np.arange(40) % 4,
             x_test=rng.integers(0, 256, (8, 3, 8, 8), dtype=np.uint8), y_test=np.arange(8) % 4,
             class_names=np.array(["a", "b", "c", "d"]))
    d = load_dataset(f"npz:{tmp_path / 'img.npz'}", labels_per_class=2, seed=0, val_size=8)
    assert d.input_shape == (3, 8, 8) and float(d.x_train.max()) <= 1 and d.class_names == ["a", "b", "c", "d"]
    assert (len(d.x_train), len(d.x_val), len(d.x_test)) == (32, 8, 8)
    np.savez(tmp_path / "sig.npz", x=rng.standard_normal((30, 2, 50)).astype(np.float32), y=np.arange(30) % 3)
    s = load_dataset(f"npz:{tmp_path / 'sig.npz'}", labels_per_class=1, seed=0, val_size=3)
    assert s.input_shape == (2, 50) and s.num_classes == 3


@pytest.mark.parametrize("arrays, message", [
    ({"y": np.zeros(4)}, r"has no array 'x'.*np.savez"),
    ({"x": np.zeros((4, 1, 8, 8))}, r"has no array 'y'"),
    ({"x": np.zeros((4, 1, 8, 8)), "y": np.array([0, 1, 2, 1.5])}, r"labels must be integers"),
    ({"x": np.zeros((4, 1, 8, 8)), "y": np.array([0, 1, -1, 1])}, r"label -1 of example 2 is outside"),
    ({"x": np.zeros((4, 1, 8, 8)), "y": np.array([0, 1, 5, 1]), "class_names": np.array(["a", "b"])},
     r"label 5 of example 2 is outside 0..1"),
    ({"x": np.array([[[[np.nan]]]] * 4), "y": np.array([0, 1, 0, 1])}, r"example 0 holds NaN or infinite"),
    ({"x": np.full((4, 1, 2, 2), np.inf), "y": np.array([0, 1, 0, 1])}, r"NaN or infinite"),
    ({"x": np.zeros((4, 8)), "y": np.array([0, 1, 0, 1])}, r"expected images \(N, C, H, W\) or signals"),
    ({"x": np.zeros((4, 1, 8)), "y": np.array([0, 1, 0])}, r"4 examples but labels of shape \(3,\)"),
    ({"x": np.zeros((4, 1, 8)), "y": np.array([0, 1, 0, 1]), "x_test": np.zeros((2, 1, 8))}, r"without 'y_test'"),
])
def test_npz_bad_data_is_named(tmp_path, arrays, message):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match=message):
        load_dataset(f"npz:{path}", labels_per_class=1, val_size=1)


def test_npz_of_python_objects_is_refused(tmp_path):
    path = tmp_path / "objects.npz"
    np.savez(path, x=np.array([{"evil": 1}] * 4, dtype=object), y=np.arange(4))
    with pytest.raises(ValueError, match="without pickle"):
        load_dataset(f"npz:{path}")
