"""The old module names still import, and say where their names live now (removed in invlab 0.2)."""

from __future__ import annotations

import importlib
import sys

import pytest

OLD = {
    "invlab.training.loop": ("invlab.training.sampling", "CyclingSampler"),
    "invlab.training.schedules": ("invlab.training.loss_weights", "WeightSchedule"),
    "invlab.experiments.provenance": ("invlab.training.provenance", "provenance"),
}


@pytest.mark.parametrize("old", sorted(OLD))
def test_an_old_module_warns_and_names_its_replacement(old):
    new, name = OLD[old]
    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match=f"{old} is deprecated.*{new}"):
        module = importlib.import_module(old)
    assert getattr(module, name) is getattr(importlib.import_module(new), name)
    sys.modules.pop(old, None)
