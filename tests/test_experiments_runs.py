"""invlab.experiments.runs: resumable runs equal uninterrupted ones, across checkpoints written by earlier versions."""

import json

import pytest
import torch

from invlab.experiments.studies import best_test_epoch, run_resumable
from invlab.io import load_torch
from invlab.train import TrainConfig, Trainer

FAST = dict(model="smallcnn-mean", labelled_batch=10, unlabelled_batch=20, eval_every=3, val_size=100)


# -- resumable studies -----------------------------------------------------------------------
def test_resumable_run_equals_uninterrupted(task, tmp_path):
    cfg = TrainConfig(steps=6, preprocess="center-maxabs", balanced=True, schedule="step", **FAST)
    full = run_resumable(cfg, tmp_path / "full", data=task)
    # interrupted after 3 steps: the first session stopped with a checkpoint and no result
    class Interrupt:  # the session ends during step 5, after the checkpoint of step 3
        def on_step(self, trainer, step, losses):
            if step == 5:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        Trainer(cfg, task).run([Interrupt()], progress=False, checkpoint_path=tmp_path / "cut" / "checkpoint.pt")
    assert not (tmp_path / "cut" / "result.json").exists()
    resumed = run_resumable(cfg, tmp_path / "cut", data=task)
    assert resumed["resumed_from"] == 3 and full["resumed_from"] == 0
    clocks = ("elapsed_s", "cpu_s")
    strip = [{k: v for k, v in r.items() if k not in clocks} for r in full["history"]]
    assert [{k: v for k, v in r.items() if k not in clocks} for r in resumed["history"]] == strip
    # wall and CPU seconds, counted over the sessions: what a compute plan divides by
    assert 0 < full["cpu_s"] and 0 < full["elapsed_s"]
    assert all(0 < r["cpu_s"] for r in full["history"]) and full["history"][-1]["cpu_s"] <= full["cpu_s"] + 1e-9
    assert resumed["test_accuracy"] == full["test_accuracy"] and resumed["best_step"] == full["best_step"]
    # finished: read back, not retrained
    again = run_resumable(cfg, tmp_path / "cut", data=task)
    assert again == json.loads((tmp_path / "cut" / "result.json").read_text())
    best, step = best_test_epoch(full)
    assert best == max(r["test_accuracy"] for r in full["history"]) and step in (3, 6)


def test_a_run_resumed_from_a_checkpoint_without_cpu_time_says_it_is_unknown(task, tmp_path):
    """A checkpoint written before runs counted CPU time: the run's ``cpu_s`` is ``None``
    (unknown), never the part of it this session saw."""
    cfg = TrainConfig(steps=6, **FAST)

    class Stop:  # during step 5, after the checkpoint of step 3
        def on_step(self, trainer, step, losses):
            if step == 5:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        Trainer(cfg, task).run([Stop()], progress=False, checkpoint_path=tmp_path / "old" / "checkpoint.pt")
    state = load_torch(tmp_path / "old" / "checkpoint.pt")  # as the trainer reads it (weights only)
    assert state["step"] == 3 and "cpu_s" in state
    del state["cpu_s"]
    torch.save(state, tmp_path / "old" / "checkpoint.pt")
    resumed = run_resumable(cfg, tmp_path / "old", data=task)
    assert resumed["resumed_from"] == 3 and resumed["cpu_s"] is None and resumed["elapsed_s"] > 0


def test_a_checkpoint_made_before_the_recipes_resumes_as_the_paper_recipe(task, tmp_path):
    """A checkpoint whose configuration names no recipe and lacks a field added since (here
    ``balance``) reads the missing field as the paper recipe's, the default it had then: it
    resumes under ``recipe="paper"``, and the recommended recipe is refused, naming what differs."""
    cfg = TrainConfig(recipe="paper", steps=6, **FAST)

    class Stop:
        def on_step(self, trainer, step, losses):
            if step == 5:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        Trainer(cfg, task).run([Stop()], progress=False, checkpoint_path=tmp_path / "old" / "checkpoint.pt")
    state = load_torch(tmp_path / "old" / "checkpoint.pt")
    del state["config"]["recipe"], state["config"]["balance"]
    torch.save(state, tmp_path / "old" / "checkpoint.pt")
    refused = r"balance: checkpoint 0.0 vs now 1.0, schedule: checkpoint 'constant' vs now 'cosine'"
    with pytest.raises(ValueError, match=refused):
        Trainer(TrainConfig(steps=6, **FAST), task).load_state_dict(state)
    resumed = run_resumable(cfg, tmp_path / "old", data=task)
    assert resumed["resumed_from"] == 3 and resumed["steps_done"] == 6
