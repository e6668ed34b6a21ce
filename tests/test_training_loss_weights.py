"""The loss weights' changes over a run (eq. 13): schedules, the trainer following them, the CLI reading them."""

from __future__ import annotations

import math

import pytest

from invlab.train import TrainConfig, Trainer
from invlab.training.loss_weights import WeightSchedule, weight_arg


def test_weight_schedules():
    lin = WeightSchedule.parse("0.3:0.7")
    assert (
        lin(0, 101) == pytest.approx(0.3) and lin(100, 101) == pytest.approx(0.7) and lin(50, 101) == pytest.approx(0.5)
    )
    cos = WeightSchedule.parse("0:1:cosine")
    assert cos(25, 101) == pytest.approx((1 - math.cos(math.pi / 4)) / 2)
    step = WeightSchedule.parse("0.8:0.2:step@0.25")
    assert step(24, 101) == 0.8 and step(25, 101) == 0.2
    half = WeightSchedule.parse("0.3:0.7:linear@0.5")
    assert half(25, 101) == pytest.approx(0.5) and half(80, 101) == pytest.approx(0.7)
    assert WeightSchedule.parse(0.4)(7, 10) == 0.4 and WeightSchedule.parse("0.4").constant
    assert weight_arg("0.5") == 0.5 and weight_arg("0.3:0.7:cosine") == "0.3:0.7:cosine"
    for bad, match in (("a:b", "cannot read"), ("0.1:0.2:zigzag", "unknown schedule shape"),
                       ("0.1:0.2@1.5", "must lie in"), ("1:2:3:4", "cannot read")):
        with pytest.raises(ValueError, match=match):
            WeightSchedule.parse(bad)
    with pytest.raises(ValueError, match="alpha must lie in"):
        TrainConfig(alpha="0.5:1.2")


def test_trainer_follows_the_schedules_and_layer_weights(task):
    cfg = TrainConfig(steps=6, eval_every=2, labelled_batch=10, unlabelled_batch=10, alpha="0.3:0.7",
                      beta="0.8:0.2:step", layers={"features.2": "0:0.1"}, device="cpu")
    trainer = Trainer(cfg, task)
    result = trainer.run(progress=False)
    for record in result.history:  # the weights of the last step before each evaluation
        t = record["step"] - 1
        assert record["alpha"] == pytest.approx(0.3 + 0.4 * t / 5)
        assert record["beta"] == (0.2 if t >= 2.5 else 0.8)
        assert record["gamma:features.2"] == pytest.approx(0.1 * t / 5)
        assert record["R:features.2"] > 0
    with pytest.raises(ValueError, match="hidden layers only"):
        TrainConfig(layers={"input": 0.1})
    with pytest.raises(ValueError, match="reconstruction='mse'"):
        TrainConfig(layers={"features.2": 0.1}, reconstruction="cosine")


def test_cli_reads_schedules_and_layers(capsys, task):
    from invlab.cli import _parser, main, train_config

    args = _parser().parse_args(["train", "--out", "x", "--alpha", "0.3:0.7", "--beta", "0.8:0.2:step@0.25",
                                 "--layer", "features.2=0.05", "--layer", "features.5=0:0.1:cosine"])
    config = train_config(args)  # the CLI maps the flags; TrainConfig reads the weights, in one form
    assert config.alpha == "0.3:0.7:linear" and config.beta == "0.8:0.2:step@0.25"
    assert config.layers == {"features.2": 0.05, "features.5": "0:0.1:cosine"}
    assert config == TrainConfig(alpha="0.3:0.7", beta="0.8:0.2:step@0.25",
                                 layers={"features.2": "0.05", "features.5": "0:0.1:cosine"})
    config.alpha = 0.5  # a field set after the config was made is read again, and checked
    assert config.loss_weights()["alpha"].start == 0.5
    config.beta = 1.5
    with pytest.raises(ValueError, match=r"beta must lie in \[0, 1\]"):
        config.loss_weights()
    assert main(["train", "--out", "x", "--alpha", "0.3:zig"]) == 2
    assert "cannot read the weight" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "--out", "x", "--layer", "features.2"])
    assert "expected NAME=GAMMA" in capsys.readouterr().err
    with pytest.raises(ValueError, match="not modules of 'smallcnn-mean'; available: features"):
        Trainer(TrainConfig(layers={"features.9": 0.1}, device="cpu"), task)
