"""What a new user met on the way to a first picture: messages that stop short of the reason."""

from __future__ import annotations

import numpy as np
import pytest

from invlab.data import load_dataset
from invlab.data.mnist import download_failure


def test_npz_labels_with_a_gap_name_the_labels_found_and_the_missing_classes(tmp_path):
    rng = np.random.default_rng(0)
    y = np.array([0, 1, 5] * 40)
    np.savez(tmp_path / "d.npz", x=rng.random((len(y), 1, 8, 8)).astype("float32"), y=y)
    with pytest.raises(ValueError) as err:
        load_dataset(f"npz:{tmp_path / 'd.npz'}", 2, 0, None)
    message = str(err.value)
    assert "the training labels are {0, 1, 5}, so classes 2, 3, 4 of 0..5 have no training example" in message
    assert "renumber the labels 0..C-1 without gaps" in message


def test_a_failed_download_gives_its_reason_after_the_colon():
    """torchvision's message spans lines; the first ends at "Error downloading X:"."""
    err = RuntimeError("Error downloading train-images-idx3-ubyte.gz:\nTried https://ossci-datasets.s3.amazonaws.com/"
                       "mnist/, got:\n<urlopen error [Errno -2] Name or service not known>\n")
    text = download_failure(err)
    assert text.startswith("no network (Error downloading train-images-idx3-ubyte.gz: Tried https://")
    assert "Name or service not known" in text and "\n" not in text
    assert download_failure(RuntimeError("checksum mismatch for t10k-labels")) == "checksum mismatch for t10k-labels"
    assert download_failure(TimeoutError()) == "TimeoutError"
