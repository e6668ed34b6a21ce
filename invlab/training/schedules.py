"""The former home of the loss weights' changes over a run (eq. 13), kept so that ``from
invlab.training.schedules import ...`` goes on working: they live in
:mod:`invlab.training.loss_weights` ("schedule" means the learning rate in invlab)."""

from invlab.training.loss_weights import SHAPES, WeightSchedule, weight_arg

__all__ = ["SHAPES", "WeightSchedule", "weight_arg"]
