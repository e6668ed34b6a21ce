"""invlab.training.lr_schedules: the learning-rate factor and the optimiser it drives."""


import math

import pytest

from invlab.train import TrainConfig, Trainer, lr_factor

FAST = dict(model="smallcnn-mean", labelled_batch=10, unlabelled_batch=20, eval_every=3, val_size=100)


# -- schedules ---------------------------------------------------------------------------
def test_schedules():
    def factors(**kw):
        cfg = TrainConfig(**kw)
        return [lr_factor(cfg, t, 100, 25) for t in (0, 49, 50, 74, 75, 100)]

    assert factors(schedule="constant") == [1.0] * 6
    cos = factors(schedule="cosine")
    assert cos[0] == 1.0 and cos[-1] == pytest.approx(0.0) and cos[2] == pytest.approx(0.5)
    assert factors(schedule="step") == pytest.approx([1, 1, 0.2, 0.2, 0.04, 0.04])
    assert factors(schedule="step", milestones=(0.25,), lr_decay=0.5) == pytest.approx([1, 0.5, 0.5, 0.5, 0.5, 0.5])
    inv = factors(schedule="invsqrt")
    assert inv[0] == 1.0 and inv[-1] == pytest.approx(1 / math.sqrt(5))  # 100 steps = 4 epochs of 25


def test_schedule_drives_the_optimizer(task):
    trainer = Trainer(TrainConfig(steps=4, schedule="step", milestones=(0.5,), lr_decay=0.1, lr=0.01, **FAST), task)
    lrs = []
    for _ in range(4):
        lrs.append(trainer.optimizer.param_groups[0]["lr"])
        trainer.train_step()
    assert lrs == pytest.approx([0.01, 0.01, 0.001, 0.001])
