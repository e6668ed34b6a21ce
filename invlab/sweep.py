"""``invlab.sweep``: the public name of :mod:`invlab.experiments.sweep` (Optuna studies of many
trainings), the same module object under both names."""

import sys

from invlab.experiments import sweep as _sweep

sys.modules[__name__] = _sweep
