"""invlab.data.splits: the labelled draw, balanced and deterministic, and its refusals."""


import pytest
import torch

from invlab.data import labelled_split


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
