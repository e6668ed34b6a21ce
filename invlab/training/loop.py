"""The former home of the samplers, the learning-rate factor and the device choice, kept (deprecated) so
that ``from invlab.training.loop import ...`` goes on working: they live in
:mod:`invlab.training.sampling`, :mod:`invlab.training.lr_schedules` and
:mod:`invlab.training.device`."""

import warnings

from invlab.training.device import resolve_device
from invlab.training.lr_schedules import schedule_factor
from invlab.training.sampling import BalancedSampler, CyclingSampler

__all__ = ["BalancedSampler", "CyclingSampler", "resolve_device", "schedule_factor"]

warnings.warn("invlab.training.loop is deprecated and will be removed in invlab 0.2; import from "
              "invlab.training.sampling, invlab.training.lr_schedules and invlab.training.device",
              DeprecationWarning, stacklevel=2)
