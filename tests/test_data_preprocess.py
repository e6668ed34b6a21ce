"""invlab.data.preprocess: the per-example input transforms, the same for every split, recorded with the run."""

import json

import pytest
import torch

from invlab.data import Preprocess, preprocess, preprocess_data
from invlab.train import TrainConfig, load_model, train

FAST = dict(model="smallcnn-mean", labelled_batch=10, unlabelled_batch=20, eval_every=3, val_size=100)


# -- preprocessing ---------------------------------------------------------------------
def test_center_maxabs_per_example():
    x = torch.rand(4, 1, 6, 6) * torch.tensor([1.0, 2.0, 0.5, 3.0]).view(4, 1, 1, 1)
    out = preprocess(x, "center-maxabs")
    flat = out.flatten(1)
    assert torch.allclose(flat.mean(1), torch.zeros(4), atol=1e-6)
    assert torch.allclose(flat.abs().amax(1), torch.ones(4))
    # each example on its own: scaling one example leaves it unchanged, the others too
    y = x.clone()
    y[0] *= 7
    assert torch.allclose(preprocess(y, "center-maxabs"), out, atol=1e-6)


def test_standardize_and_none():
    x = torch.rand(3, 2, 5)
    out = preprocess(x, "standardize").flatten(1)
    assert torch.allclose(out.mean(1), torch.zeros(3), atol=1e-6)
    assert torch.allclose(out.pow(2).mean(1), torch.ones(3), atol=1e-5)
    assert preprocess(x, "none") is x
    assert torch.equal(preprocess(torch.ones(2, 1, 3, 3), "center-maxabs"), torch.zeros(2, 1, 3, 3))  # constant


def test_bad_preprocess_name():
    with pytest.raises(ValueError, match="unknown preprocessing 'zca'"):
        preprocess(torch.rand(2, 3), "zca")
    with pytest.raises(ValueError, match="preprocessing"):
        TrainConfig(preprocess="zca")


def test_every_split_gets_the_same_transform(task):
    data = preprocess_data(task, "center-maxabs")
    for raw, new in ((task.x_train, data.x_train), (task.x_val, data.x_val), (task.x_test, data.x_test)):
        assert torch.allclose(new, preprocess(raw, "center-maxabs"))
    assert torch.equal(data.labelled, task.labelled)


def test_preprocessing_recorded_and_returned_by_load_model(task, tmp_path):
    result = train(TrainConfig(steps=3, preprocess="center-maxabs", **FAST), data=task, out_dir=tmp_path,
                   progress=False)
    assert result.config["preprocess"] == "center-maxabs"
    assert json.loads((tmp_path / "metrics.json").read_text())["config"]["preprocess"] == "center-maxabs"
    assert torch.allclose(result.data_ref.x_test, preprocess(task.x_test, "center-maxabs"))
    model = load_model(tmp_path / "checkpoint.pt")
    assert isinstance(model.preprocess, Preprocess) and model.preprocess.kind == "center-maxabs"
    with torch.no_grad():  # the reloaded model on raw inputs, preprocessed, predicts as the selected model did
        assert torch.equal(model(model.preprocess(task.x_test)).argmax(1),
                           result.model.eval()(result.data_ref.x_test).argmax(1))


def test_segments_carry_the_transform():
    from invlab.data import Segments

    seg = Segments(torch.arange(40, dtype=torch.float32), torch.tensor([0, 10, 20]), 8)
    out = seg.with_transform(Preprocess("center-maxabs"))[torch.tensor([0, 2])]
    assert out.shape == (2, 1, 8)
    assert torch.allclose(out, preprocess(seg[torch.tensor([0, 2])], "center-maxabs"))
    assert seg.with_transform(Preprocess("standardize"))[1:].transform.kind == "standardize"  # slices keep it
