"""The former home of the samplers, the learning-rate factor and the device choice, kept so
that ``from invlab.training.loop import ...`` goes on working: they live in
:mod:`invlab.training.sampling`, :mod:`invlab.training.lr_schedules` and
:mod:`invlab.training.device`."""

from invlab.training.device import resolve_device
from invlab.training.lr_schedules import schedule_factor
from invlab.training.sampling import BalancedSampler, CyclingSampler

__all__ = ["BalancedSampler", "CyclingSampler", "resolve_device", "schedule_factor"]
