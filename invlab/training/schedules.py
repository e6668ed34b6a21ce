"""The former home of the loss weights' changes over a run (eq. 13), kept (deprecated) so that ``from
invlab.training.schedules import ...`` goes on working: they live in
:mod:`invlab.training.loss_weights` ("schedule" means the learning rate in invlab)."""

import warnings

from invlab.training.loss_weights import SHAPES, WeightSchedule, weight_arg

__all__ = ["SHAPES", "WeightSchedule", "weight_arg"]

warnings.warn("invlab.training.schedules is deprecated and will be removed in invlab 0.2; import from "
              "invlab.training.loss_weights", DeprecationWarning, stacklevel=2)
