"""``invlab.train``: the public names of training, kept where users import them from.

The code lives in :mod:`invlab.training` (``config``: :class:`TrainConfig` and
:func:`run_key`; ``trainer``: :class:`Trainer` and :func:`train`; ``checkpoints``:
:func:`load_model`; ``sampling``, ``device``: samplers and the device)."""

from invlab.training.checkpoints import CHECKPOINT, METRICS, load_model
from invlab.training.config import (
    PAPER,
    RECIPES,
    RECOMMENDED,
    SCHEDULES,
    TrainConfig,
    build_data,
    default_lr,
    describe_data,
    run_key,
)
from invlab.training.device import resolve_device
from invlab.training.sampling import BalancedSampler, CyclingSampler
from invlab.training.trainer import Callback, Trainer, TrainResult, lr_factor, train

__all__ = ["BalancedSampler", "CHECKPOINT", "Callback", "CyclingSampler", "METRICS", "PAPER", "RECIPES", "RECOMMENDED",
           "SCHEDULES", "TrainConfig", "TrainResult", "Trainer", "build_data", "default_lr", "describe_data",
           "load_model", "lr_factor", "resolve_device", "run_key", "train"]
