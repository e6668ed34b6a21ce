"""The command line, end to end on a stand-in MNIST file (offline, small): training, its refusals and
messages, its defaults (the recipe, as TrainConfig's), `invlab models`."""

import json
import re

import pytest
import torch

from invlab.cli import main
from invlab.methods import METHODS as METHODS_ALL

TRAIN = ["train", "--steps", "2", "--eval-every", "2", "--val-size", "200", "--labelled-batch", "10",
         "--unlabelled-batch", "10", "--no-progress"]

def _flip_byte(path, offset=-1000):
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))

# 2 -----------------------------------------------------------------------------------
@pytest.mark.parametrize("args,match", [
    (["--labels", "100000"], "smallest class"),
    (["--resume"], "no checkpoint"),
    (["--lr", "0"], "lr must be positive"),
])
def test_failed_start_leaves_no_output_folder(fake_mnist_root, tmp_path, capsys, args, match):
    out = tmp_path / "deep" / "run"
    assert main([*TRAIN, "--out", str(out), *args]) == 2
    assert re.search(match, capsys.readouterr().err)
    assert not (tmp_path / "deep").exists()


def test_corrupt_cache_or_missing_gpu_leaves_no_output_folder(fake_mnist_root, tmp_path, capsys):
    if not torch.cuda.is_available():
        assert main([*TRAIN, "--out", str(tmp_path / "gpu"), "--device", "cuda"]) == 2
        assert "no CUDA GPU" in capsys.readouterr().err
        assert not (tmp_path / "gpu").exists()
    _flip_byte(fake_mnist_root / "mnist.pt")
    assert main([*TRAIN, "--out", str(tmp_path / "bad")]) == 2
    assert not (tmp_path / "bad").exists()


# 3 -----------------------------------------------------------------------------------
def test_finished_run_is_not_overwritten(fake_mnist_root, tmp_path, capsys):
    out = tmp_path / "run"
    assert main([*TRAIN, "--out", str(out)]) == 0
    before = (out / "metrics.json").read_bytes()
    assert main([*TRAIN, "--out", str(out), "--seed", "1"]) == 2
    err = capsys.readouterr().err
    assert "already holds a run" in err and "--overwrite" in err and "--resume" in err
    assert (out / "metrics.json").read_bytes() == before
    assert main([*TRAIN, "--out", str(out), "--seed", "1", "--overwrite"]) == 0
    assert json.loads((out / "metrics.json").read_text())["config"]["seed"] == 1


# 4 -----------------------------------------------------------------------------------
def test_labels_message_names_the_smallest_class_and_the_largest_valid_total(fake_mnist_root, tmp_path, capsys):
    assert main([*TRAIN, "--out", str(tmp_path / "run"), "--labels", "100000"]) == 2
    err = capsys.readouterr().err
    # the stand-in has 5980 images of every class in its 59 800-image pool: class 0 is the first smallest
    assert "smallest class, 0, has only 5980" in err and "--labels 59800" in err


# 5 -----------------------------------------------------------------------------------
@pytest.mark.parametrize("args,match", [
    (["--lr", "-0.1"], "lr must be positive"), (["--steps", "0"], "steps must be at least 1"),
    (["--labelled-batch", "0"], "labelled_batch must be at least 1"),
    (["--unlabelled-batch", "0"], "unlabelled batch"),
])
def test_non_positive_settings_are_refused(fake_mnist_root, tmp_path, capsys, args, match):
    assert main([*TRAIN, "--out", str(tmp_path / "run"), *args]) == 2
    assert re.search(match, capsys.readouterr().err)


# 6 -----------------------------------------------------------------------------------
def test_help_shows_every_default(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for flag, default in (("--recipe", "recommended"), ("--reconstruction", "mse"), ("--reduce-dims", "mean"),
                          ("--eval-every", "250")):
        assert re.search(re.escape(flag) + r" .*?\(default " + re.escape(default) + r"\)", text), flag
    for flag, default, paper in (("--schedule", "cosine", "constant"), ("--preprocess", "center-maxabs", "none"),
                                 ("--balance", "1", "0"), ("--steps", "2000", "1000")):  # the fields a recipe fills
        assert re.search(re.escape(flag) + rf" .*?\(default: the recipe's, {default}; paper: {paper}\)", text), flag
    assert re.search(r"--val-size N .*?\(default: the data set's own, 10 000 on mnist", text)


@pytest.mark.parametrize("recipe", [None, "paper"])
def test_python_and_the_command_line_train_the_same_run(fake_mnist_root, tmp_path, recipe):
    """One recipe, one default: ``TrainConfig(...)`` and ``invlab train ...`` with the same
    settings record the same configuration and reach the same numbers."""
    from invlab.train import TrainConfig, run_key, train

    settings = {"steps": 2, "eval_every": 2, "val_size": 100, **({"recipe": recipe} if recipe else {})}
    argv = [x for k, v in settings.items() for x in (f"--{k.replace('_', '-')}", str(v))]
    assert main(["train", *argv, "--out", str(tmp_path / "cli"), "--no-progress"]) == 0
    train(TrainConfig(**settings), out_dir=tmp_path / "py", progress=False)
    cli, py = (json.loads((tmp_path / d / "metrics.json").read_text()) for d in ("cli", "py"))
    assert cli["config"] == py["config"] and cli["config"]["recipe"] == (recipe or "recommended")
    assert [h["val_accuracy"] for h in cli["history"]] == [h["val_accuracy"] for h in py["history"]]
    assert cli["test_accuracy"] == py["test_accuracy"]
    assert run_key(TrainConfig(**cli["config"])) == run_key(TrainConfig(**settings))


def test_cli_defaults_are_the_recommended_recipe(fake_mnist_root, tmp_path):
    from invlab.train import RECOMMENDED

    assert main(["train", "--steps", "1", "--eval-every", "1", "--val-size", "100", "--out", str(tmp_path / "r"),
                 "--no-progress"]) == 0
    config = json.loads((tmp_path / "r" / "metrics.json").read_text())["config"]
    recipe = {k: v for k, v in RECOMMENDED.items() if k != "steps"}  # steps given on the command line
    assert recipe and {k: config[k] for k in recipe} == recipe
    assert config["steps"] == 1 and RECOMMENDED["steps"] == 2000


# 7 -----------------------------------------------------------------------------------
def test_models_lists_topology_pooling_parameters_and_input(capsys):
    assert main(["models"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert "SmallCNN" in lines["smallcnn-mean"] and "pool mean" in lines["smallcnn-mean"]
    assert "62,346 parameters" in lines["smallcnn-mean"] and "(1, 28, 28)" in lines["smallcnn-mean"]
    assert "pool max" in lines["smallcnn-max"] and "no biases" in lines["smallucnn"]
    assert "(1, 22050)" in lines["bird10-cnn"]


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
    """invlab train and the fields share one description (invlab.training.options):
    a new TrainConfig field is a new flag of `invlab train`, with the field's help."""
    import dataclasses

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
    # (the benchmarks' side: tests/test_benchmarks.py::test_the_benchmarks_take_the_train_options)


@pytest.mark.parametrize("method", METHODS_ALL)
def test_the_command_line_and_python_record_the_same_config_for_every_method(method):
    """`invlab train --method M` and `train(TrainConfig(method=M))` train the same run: one place (TrainConfig)
    decides every default, beta's per method included (0.2 with inversion, 0 with the others)."""
    import dataclasses

    from invlab.cli import _parser, train_config
    from invlab.train import TrainConfig, run_key

    cli = train_config(_parser().parse_args(["train", "--method", method, "--out", "unused"]))
    api = TrainConfig(method=method)
    assert dataclasses.asdict(cli) == dataclasses.asdict(api) and run_key(cli) == run_key(api)
    assert api.beta == (0.2 if method == "inversion" else 0.0)
    given = train_config(_parser().parse_args(["train", "--method", method, "--beta", "0.3", "--out", "unused"]))
    assert dataclasses.asdict(given) == dataclasses.asdict(TrainConfig(method=method, beta=0.3))
