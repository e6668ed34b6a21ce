"""Your data, your model, through the command line: train, checkpoint, reload, reconstruct."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from invlab.cli import main
from invlab.inverse import reconstruct
from invlab.models import list_models
from invlab.train import load_model

TINY = ["--steps", "2", "--eval-every", "2", "--labelled-batch", "6", "--unlabelled-batch", "6", "--no-progress"]


@pytest.fixture(scope="module")
def grey64(tmp_path_factory) -> Path:
    """A 1x64x64 image folder with 3 classes."""
    from PIL import Image

    root = tmp_path_factory.mktemp("folder") / "grey64"
    rng = np.random.default_rng(1)
    for c in ("circle", "square", "star"):
        (root / c).mkdir(parents=True)
        for i in range(10):
            Image.fromarray(rng.integers(0, 256, (64, 64), dtype=np.uint8)).save(root / c / f"{i}.png")
    return root


def _round_trip(dataset: str, out: Path, shape: tuple, classes: list[str], *extra: str) -> None:
    assert main(["train", "--dataset", dataset, "--labels-per-class", "2", "--val-size", "6", "--out", str(out),
                 *TINY, *extra]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["data"]["input_shape"] == list(shape) and metrics["data"]["class_names"] == classes
    assert metrics["config"]["dataset"] == dataset and metrics["data"]["labelled"] == 2 * len(classes)
    model = load_model(out / "checkpoint.pt")
    x = torch.rand(3, *shape)
    assert model(model.preprocess(x)).shape == (3, len(classes))
    assert reconstruct(model, model.preprocess(x)).shape == (3, *shape)
    assert model.data_info["dataset"] == dataset


def test_colour_32_with_6_classes_default_model(colour32, tmp_path):
    _round_trip(f"npz:{colour32}", tmp_path / "run", (3, 32, 32), ["ant", "bee", "cat", "dog", "eel", "fox"])
    assert (tmp_path / "run" / "reconstructions.png").stat().st_size > 0


def test_grey_64_folder_with_3_classes_default_model(grey64, tmp_path):
    _round_trip(f"folder:{grey64}", tmp_path / "run", (1, 64, 64), ["circle", "square", "star"])


@pytest.mark.slow
@pytest.mark.parametrize("model", [m for m in list_models() if m not in ("bird10-cnn", "smallcnn-mean")])
def test_every_image_model_takes_both_data_sets(model, colour32, grey64, tmp_path):
    one_step = ["--model", model, "--steps", "1", "--eval-every", "1"]  # the large networks' steps are slow
    _round_trip(f"npz:{colour32}", tmp_path / "a", (3, 32, 32), ["ant", "bee", "cat", "dog", "eel", "fox"], *one_step)
    _round_trip(f"folder:{grey64}", tmp_path / "b", (1, 64, 64), ["circle", "square", "star"], *one_step)


def test_labels_are_split_over_the_real_class_count(colour32, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--dataset", f"npz:{colour32}", "--labels", "12", "--val-size", "6", "--out", str(out),
                 *TINY]) == 0
    assert json.loads((out / "metrics.json").read_text())["config"]["labels_per_class"] == 2
    assert main(["train", "--dataset", f"npz:{colour32}", "--labels", "10", "--out", str(tmp_path / "x"), *TINY]) == 2
    assert "has 6 classes" in capsys.readouterr().err and not (tmp_path / "x").exists()


def test_bad_data_leaves_no_run_folder(tmp_path, capsys):
    bad = tmp_path / "bad.npz"
    np.savez(bad, x=np.zeros((8, 1, 20, 20)))
    out = tmp_path / "run"
    assert main(["train", "--dataset", f"npz:{bad}", "--out", str(out), *TINY]) == 2
    assert "has no array 'y'" in capsys.readouterr().err and not out.exists()
    with pytest.raises(SystemExit):  # argparse refuses an unknown name, listing the known ones
        main(["train", "--dataset", "nope", "--out", str(out)])
    assert "unknown data set 'nope'" in capsys.readouterr().err


def test_too_small_for_the_model_names_the_smallest_size(tmp_path, capsys):
    small = tmp_path / "small.npz"
    np.savez(small, x=np.random.default_rng(0).random((30, 1, 10, 10)).astype(np.float32), y=np.arange(30) % 3)
    assert main(["train", "--dataset", f"npz:{small}", "--labels-per-class", "1", "--val-size", "3",
                 "--out", str(tmp_path / "run"), *TINY]) == 2
    assert "needs images of at least 16x16" in capsys.readouterr().err
    assert main(["models", "--dataset", f"npz:{small}"]) == 0
    table = capsys.readouterr().out
    assert "smallcnn-mean    cannot take (1, 10, 10)" in table and "resnet3-16-mean  ResNet" in table


def test_models_are_sized_for_a_data_set(colour32, capsys):
    assert main(["models", "--dataset", f"npz:{colour32}"]) == 0
    table = capsys.readouterr().out
    line = next(ln for ln in table.splitlines() if ln.startswith("smallcnn-mean"))
    # conv 3->32 5x5, conv 32->64 5x5, dense 64*5*5 -> 6: (2400+32) + (51200+64) + (9600+6) parameters
    assert "63,302 parameters" in line and "input (3, 32, 32)" in line


FACTORY = '''
import torch.nn as nn


def tiny_mlp(input_shape, num_classes):
    c, h, w = input_shape
    return nn.Sequential(nn.Flatten(), nn.Linear(c * h * w, 12), nn.ReLU(), nn.Linear(12, num_classes))


def with_batch_norm():
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 30 * 30, 6))


def not_a_module():
    return 3
'''


def test_model_file_trains_and_reloads(colour32, tmp_path, capsys):
    nets = tmp_path / "nets.py"
    nets.write_text(FACTORY)
    out = tmp_path / "run"
    _round_trip(f"npz:{colour32}", out, (3, 32, 32), ["ant", "bee", "cat", "dog", "eel", "fox"],
                "--model-file", f"{nets}:tiny_mlp")
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    assert state["model_source"]["kind"] == "file" and state["model_source"]["spec"] == f"{nets}:tiny_mlp"
    assert json.loads((out / "metrics.json").read_text())["config"]["model"] == "custom"
    for spec, message in ((f"{nets}:with_batch_norm", "BatchNorm2d) is in training mode"),
                          (f"{nets}:not_a_module", "returned a int, not a torch.nn.Module"),
                          (f"{nets}:missing", "has no function 'missing'"),
                          (f"{tmp_path / 'none.py'}:f", "does not exist"),
                          ("nets.py", "expected FILE.py:FACTORY")):
        assert main(["train", "--dataset", f"npz:{colour32}", "--model-file", spec, "--out", str(tmp_path / "x"),
                     *TINY]) == 2
        assert message in capsys.readouterr().err and not (tmp_path / "x").exists()


def test_a_module_given_to_train_is_recorded_and_reloaded_into_a_fresh_one(tmp_path):
    import torch.nn as nn

    from invlab.data import load_dataset
    from invlab.train import TrainConfig, train

    data = load_dataset("synthetic", 2, 0, 20)
    net = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    res = train(TrainConfig(steps=2, eval_every=2, labelled_batch=4, unlabelled_batch=4), data=data, model=net,
                out_dir=tmp_path / "run", progress=False)
    assert res.config["dataset"] == "synthetic" and res.config["labels_per_class"] == 2 and res.config["val_size"] == 20
    with pytest.raises(ValueError, match=r"given to train\(\) as a module .*model=MyNet\(\)"):
        load_model(tmp_path / "run" / "checkpoint.pt")
    fresh = load_model(tmp_path / "run" / "checkpoint.pt", model=nn.Sequential(nn.Flatten(), nn.Linear(784, 10)))
    assert torch.equal(fresh[1].weight, res.model[1].weight)


def test_every_registered_name_is_a_dataset_choice_and_fetchable_ones_fetch(capsys):
    from invlab.data import fetchable_datasets, list_datasets

    assert main(["data", "list"]) == 0
    assert capsys.readouterr().out.split() == list_datasets()
    assert set(fetchable_datasets()) == {"mnist", "fashion-mnist", "kmnist", "cifar10", "svhn"}
    with pytest.raises(SystemExit):
        main(["data", "fetch", "synthetic"])


def test_sweeps_take_any_data_set(colour32, tmp_path):
    """(The benchmarks' side: tests/test_benchmarks.py::test_the_benchmarks_take_any_data_set.)"""
    import optuna

    space = tmp_path / "space.json"
    space.write_text(json.dumps({"base": {"labels_per_class": 1, "val_size": 6, "labelled_batch": 6,
                                          "unlabelled_batch": 6, "eval_every": 2, "log_unweighted": False},
                                 "grid": {"seed": [0]}}))
    storage = f"sqlite:///{tmp_path / 'sweeps.db'}"
    assert main(["sweep", "create", "--study", "c32", "--storage", storage, "--space", str(space), "--steps", "2",
                 "--dataset", f"npz:{colour32}"]) == 0
    assert main(["sweep", "work", "--study", "c32", "--storage", storage, "--device", "cpu",
                 "--runs-dir", str(tmp_path / "runs")]) == 0
    (trial,) = optuna.load_study(study_name="c32", storage=storage).get_trials()
    assert trial.state.name == "COMPLETE"
    result = json.loads((Path(trial.user_attrs["run_dir"]) / "result.json").read_text())
    assert result["data"]["input_shape"] == [3, 32, 32] and result["config"]["dataset"] == f"npz:{colour32}"

