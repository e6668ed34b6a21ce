"""Loss weights that change during training, the paper's eq. 13: alpha(t), beta(t), gamma_l(t).

A weight is a number (constant) or a spec string ``START:END[:SHAPE][@FRACTION]``:

    "0.7"                  constant 0.7
    "0.3:0.7"              linear ramp from 0.3 at the first step to 0.7 at the last
    "0.3:0.7:cosine"       cosine ramp (slow at both ends)
    "0.3:0.7:step"         0.3 for the first half of the run, then 0.7
    "0.3:0.7:step@0.25"    the switch at 25 % of the run
    "0.3:0.7:linear@0.5"   ramp over the first half, then hold 0.7

FRACTION is where the change ends (ramps) or happens (step), as a share of the run; a
ramp starts at step 0. The paper's suggestion, "reconstruction first, then
classification and entropy", is for example ``--alpha 0.3:0.7 --beta 0.8:0.2``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

SHAPES = ("linear", "cosine", "step")


@dataclass(frozen=True)
class WeightSchedule:
    """A loss weight as a function of the training step (see the module docstring)."""

    start: float
    end: float
    shape: str = "linear"
    at: float | None = None  # fraction of the run where the change ends (ramps) or happens (step)

    @classmethod
    def parse(cls, spec: float | int | str) -> WeightSchedule:
        """A number, or ``START:END[:SHAPE][@FRACTION]``; errors name the expected form."""
        if isinstance(spec, (int, float)):
            return cls(float(spec), float(spec))
        text = str(spec).strip()
        form = "a number or START:END[:SHAPE][@FRACTION], e.g. 0.7, 0.3:0.7, 0.3:0.7:cosine, 0.3:0.7:step@0.25"
        body, _, at = text.partition("@")
        parts = body.split(":")
        try:
            if len(parts) == 1 and not at:
                return cls(float(parts[0]), float(parts[0]))
            if len(parts) not in (2, 3):
                raise ValueError
            start, end = float(parts[0]), float(parts[1])
            fraction = float(at) if at else None
        except ValueError:
            raise ValueError(f"cannot read the weight {text!r}: expected {form}") from None
        shape = parts[2] if len(parts) == 3 else "linear"
        if shape not in SHAPES:
            raise ValueError(f"unknown schedule shape {shape!r} in {text!r}; use one of {', '.join(SHAPES)}")
        if fraction is not None and not 0 < fraction <= 1:
            raise ValueError(f"the fraction after @ in {text!r} must lie in (0, 1]")
        return cls(start, end, shape, fraction)

    @property
    def constant(self) -> bool:
        return self.start == self.end

    def __call__(self, step: int, total_steps: int) -> float:
        """The weight at ``step`` (0-based) of a run of ``total_steps``."""
        if self.constant:
            return self.start
        at = self.at if self.at is not None else (0.5 if self.shape == "step" else 1.0)
        progress = step / max(1, total_steps - 1)  # 0 at the first step, 1 at the last
        if self.shape == "step":
            return self.end if progress >= at else self.start
        u = min(1.0, progress / at)
        if self.shape == "cosine":
            u = (1 - math.cos(math.pi * u)) / 2
        return self.start + (self.end - self.start) * u

    def check_range(self, name: str, low: float = 0.0, high: float | None = 1.0) -> None:
        for v in (self.start, self.end):
            if v < low or (high is not None and v > high):
                where = "" if self.constant else f" (in the schedule {self.spec()})"
                if high is None:
                    raise ValueError(f"{name} must be >= {low:g}, got {v:g}{where}")
                raise ValueError(f"{name} must lie in [{low:g}, {high:g}] (paper eq. 10), got {v:g}{where}")

    def spec(self) -> str:
        if self.constant:
            return f"{self.start:g}"
        return f"{self.start:g}:{self.end:g}:{self.shape}" + (f"@{self.at:g}" if self.at is not None else "")


def weight_arg(text: str) -> float | str:
    """argparse type of a weight: a float when constant, else the validated spec string."""
    import argparse

    try:
        schedule = WeightSchedule.parse(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return schedule.start if schedule.constant else schedule.spec()
