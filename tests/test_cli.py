"""The command line, end to end on a stand-in MNIST file (offline, small)."""

import json

import pytest

from invlab.cli import main


def test_train_writes_metrics_checkpoint_and_figures(fake_mnist_root, tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["train", "--model", "smallcnn-mean", "--labels", "50", "--alpha", "0.7", "--beta", "0.2",
                 "--seed", "0", "--steps", "4", "--eval-every", "2", "--val-size", "200",
                 "--labelled-batch", "10", "--unlabelled-batch", "10", "--out", str(out), "--no-progress"])
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) >= {"test_accuracy", "history", "config", "best_val_accuracy", "wall_time_s"}
    assert metrics["config"]["labels_per_class"] == 5 and metrics["data"]["labelled"] == 50
    assert [r["step"] for r in metrics["history"]] == [2, 4]
    assert 0 <= metrics["test_accuracy"] <= 100
    for name in ("checkpoint.pt", "reconstructions.png", "learning_curves.html"):
        assert (out / name).stat().st_size > 0
    assert (out / "reconstructions.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "test accuracy" in capsys.readouterr().out
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def test_train_protocol_options(fake_mnist_root, tmp_path):
    out = tmp_path / "run"
    code = main(["train", "--steps", "2", "--eval-every", "2", "--val-size", "200", "--labelled-batch", "20",
                 "--unlabelled-batch", "10", "--balanced", "--preprocess", "center-maxabs", "--no-bias",
                 "--init", "xavier", "--schedule", "step", "--milestones", "0.5", "--lr-decay", "0.1",
                 "--train-seed", "1000", "--out", str(out), "--no-progress"])
    assert code == 0
    config = json.loads((out / "metrics.json").read_text())["config"]
    assert {k: config[k] for k in ("preprocess", "bias", "init", "schedule", "milestones", "lr_decay", "balanced",
                                   "labelled_batch", "unlabelled_batch", "train_seed")} == {
        "preprocess": "center-maxabs", "bias": False, "init": "xavier", "schedule": "step", "milestones": [0.5],
        "lr_decay": 0.1, "balanced": True, "labelled_batch": 20, "unlabelled_batch": 10, "train_seed": 1000}
    from invlab.train import load_model
    model = load_model(out / "checkpoint.pt")
    assert model.preprocess.kind == "center-maxabs"
    assert not [n for n, _ in model.named_parameters() if n.endswith("bias")]


@pytest.mark.parametrize("args,match", [
    (["--labels", "55"], "multiple of 10"),
    (["--labels", "0"], "multiple of 10"),
    (["--alpha", "1.5"], r"alpha must lie in \[0, 1\]"),
    (["--beta", "-0.1"], r"beta must lie in \[0, 1\]"),
    (["--model", "vgg"], "Known models: bird10-cnn"),
    (["--labels", "60000"], "labels per class were asked for"),
    (["--model", "smallucnn", "--bias"], "no biases by definition"),
    (["--milestones", "0.9", "0.2"], "milestones must be increasing"),
])
def test_bad_arguments_give_clear_errors(fake_mnist_root, tmp_path, capsys, args, match):
    code = main(["train", "--steps", "1", "--out", str(tmp_path / "run"), "--no-progress", *args])
    assert code == 2
    import re

    assert re.search(match, capsys.readouterr().err)
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_unwritable_out(fake_mnist_root, tmp_path, capsys):
    (tmp_path / "f").write_text("")
    assert main(["train", "--steps", "1", "--out", str(tmp_path / "f" / "run"), "--no-progress"]) == 2
    assert "cannot write to output folder" in capsys.readouterr().err


def test_models_and_help(capsys):
    assert main(["models"]) == 0
    assert "smallcnn-mean" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--help"])
    assert exit_.value.code == 0
    assert "eq. 10" in capsys.readouterr().out


def test_data_fetch_uses_existing_file(fake_mnist_root, capsys):
    assert main(["data", "fetch", "mnist"]) == 0
    assert "mnist.pt" in capsys.readouterr().out


def test_train_bird10_on_a_recordings_folder(tmp_path, capsys):
    import numpy as np
    import soundfile

    root = tmp_path / "birds"
    for c, name in enumerate(["owl", "wren"]):
        (root / name).mkdir(parents=True)
        for k in range(3):
            t = np.arange(int(0.71 * 44_100)) / 44_100
            soundfile.write(root / name / f"r{k}.flac", 0.3 * np.sin(2 * np.pi * (500 + 700 * c + 20 * k) * t), 44_100)
    out = tmp_path / "run"
    code = main(
        [
            "train",
            "--dataset",
            "bird10",
            "--data-root",
            str(root),
            "--model",
            "bird10-cnn",
            "--steps",
            "3",
            "--eval-every",
            "3",
            "--labelled-batch",
            "4",
            "--unlabelled-batch",
            "4",
            "--out",
            str(out),
            "--no-progress",
        ]
    )
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["data"]["dataset"] == "bird10" and metrics["config"]["labels_per_class"] is None
    assert metrics["data"]["train"] == 2 * 5  # one training recording per class, 5 windows of 0.5 s in 0.71 s
    assert set(metrics["extra"]) == {"labelled_train_accuracy", "val_recording_accuracy", "test_recording_accuracy",
                                     "eval_time_s"}
    assert (out / "reconstructions.html").stat().st_size > 0
    assert "[bird10] test accuracy" in capsys.readouterr().out


def test_every_config_field_is_an_option_everywhere_from_one_source():
    """invlab train, the benchmarks and the fields share one description (invlab.training.options):
    a new TrainConfig field is a new flag of `invlab train`, with the field's help."""
    import dataclasses

    from benchmarks import recipe_study, table2
    from invlab.cli import _parser
    from invlab.train import TrainConfig
    from invlab.training.options import flag

    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    train_parser = _parser()._subparsers._group_actions[0].choices["train"]
    actions = {a.dest: a for a in train_parser._actions}
    assert set(fields) <= set(actions), set(fields) - set(actions)
    for name, field in fields.items():
        assert actions[name].option_strings[0] == flag(field)
        assert actions[name].help.startswith(field.metadata["help"].replace("%", "%%"))
    for module in (table2, recipe_study):  # the benchmarks take the same options, with their own defaults
        args = module.parse_args([])
        assert args.val_size == 10_000 and args.device == "auto" and args.dataset == "mnist"
    args = table2.parse_args(["--milestones", "0.3", "--no-bias", "--schedule", "cosine"])
    assert (args.milestones, args.bias, args.schedule) == ([0.3], False, "cosine")
