"""What a new user hit on a clean clone: unverified caches, half-made output folders,
clobbered runs, misleading messages, hidden defaults, results without provenance."""

import json
import re
import struct
from pathlib import Path

import pytest
import torch

from invlab.cli import main
from invlab.data import load_mnist
from invlab.data.mnist import verify_mnist_cache

TRAIN = ["train", "--steps", "2", "--eval-every", "2", "--val-size", "200", "--labelled-batch", "10",
         "--unlabelled-batch", "10", "--no-progress"]


def _flip_byte(path, offset=-1000):
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def _write_idx(raw, name, array, magic):
    with open(raw / name, "wb") as f:
        f.write(struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in array.shape))
        f.write(array.numpy().tobytes())


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


def test_run_keys_made_before_the_recipes_stay_valid():
    """Keys computed by invlab 0.1.0 (TrainConfig's defaults then the paper's bare setting):
    the same runs keep their names, whichever recipe spells them now."""
    from invlab.train import RECOMMENDED, TrainConfig, run_key

    assert run_key(TrainConfig(recipe="paper")) == "bf21a9e8fbc5"
    assert run_key(TrainConfig()) == run_key(TrainConfig(recipe="paper", **RECOMMENDED)) == "60d301b8f786"
    assert run_key(TrainConfig(recipe="paper", model="smallcnn-max", seed=3, beta=0.5)) == "1a86b0b252e6"
    assert run_key(TrainConfig(dataset="fashion-mnist", method="vat", beta=0.0)) == "aab9928a53ae"
    with pytest.raises(ValueError, match="recipe must be one of recommended, paper"):
        TrainConfig(recipe="fast")


def test_a_given_option_wins_over_the_recipe():
    from invlab.train import TrainConfig

    config = TrainConfig(recipe="paper", schedule="cosine", steps=7)
    assert (config.schedule, config.steps, config.preprocess, config.balance) == ("cosine", 7, "none", 0.0)
    config = TrainConfig(preprocess="none")
    assert (config.schedule, config.steps, config.preprocess, config.balance) == ("cosine", 2000, "none", 1.0)


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


# 8 -----------------------------------------------------------------------------------
def test_metrics_carry_provenance(fake_mnist_root, tmp_path):
    out = tmp_path / "run"
    assert main([*TRAIN, "--out", str(out)]) == 0
    prov = json.loads((out / "metrics.json").read_text())["provenance"]
    assert set(prov) >= {"command", "commit", "dirty", "invlab", "torch", "python", "threads", "device",
                         "cpu_capability", "date"}
    assert prov["torch"] == torch.__version__ and prov["threads"] == torch.get_num_threads()
    assert prov["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert prov["invlab"] == "0.1.0" and "cores" in prov["device"] and prov["date"][:2] == "20"


def test_provenance_names_the_copied_commit(monkeypatch):
    """Code copied to another machine (a GPU node) says which commit it is, whatever .git it carries."""
    from invlab.experiments.provenance import provenance

    monkeypatch.setenv("INVLAB_COMMIT", "abc1234")
    assert (provenance(["x"])["commit"], provenance(["x"])["dirty"]) == ("abc1234", None)
    monkeypatch.delenv("INVLAB_COMMIT")
    assert provenance(["x"])["commit"] != "abc1234"


def test_provenance_commands_carry_no_machine_path():
    """`python -m benchmarks.NAME` puts the file's absolute path in argv[0]: recorded as typed."""
    from invlab.experiments.provenance import _REPO, provenance
    from invlab.viz.explain import runs_dir

    checkout = Path(__file__).resolve().parents[1]  # found from here, not from the module under test
    assert _REPO == checkout and runs_dir() == checkout / "runs"
    script = str(checkout / "benchmarks" / "step_cost.py")
    assert provenance([script, "--part", "methods"])["command"] == "python -m benchmarks.step_cost --part methods"
    assert provenance(["benchmarks/table2.py", "--jobs", "2"])["command"] == "benchmarks/table2.py --jobs 2"
    assert provenance(["/usr/bin/invlab", "train"])["command"] == "/usr/bin/invlab train"
    assert provenance([str(_REPO / ".venv" / "bin" / "invlab"), "train"])["command"] == "invlab train"
