"""The learning-rate schedules (``--schedule``): the factor of the base learning rate at a step.
("Schedule" means the learning rate in invlab; the loss weights' changes over a run are
:mod:`invlab.training.loss_weights`.)"""

from __future__ import annotations

import math


def schedule_factor(schedule: str, step: int, total_steps: int, steps_per_epoch: int = 1,
                    milestones: tuple[float, ...] = (0.5, 0.75), lr_decay: float = 0.2) -> float:
    """Factor applied to the learning rate at ``step`` of ``total_steps``: ``constant`` 1;
    ``cosine`` (1 + cos(pi t / T)) / 2; ``step`` ``lr_decay`` ** (milestones passed);
    ``invsqrt`` 1 / sqrt(1 + t / steps_per_epoch)."""
    t = min(step, total_steps)
    if schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * t / total_steps))
    if schedule == "step":
        return lr_decay ** sum(t >= m * total_steps for m in milestones)
    if schedule == "invsqrt":
        return 1 / math.sqrt(1 + t / steps_per_epoch)
    return 1.0


__all__ = ["schedule_factor"]
