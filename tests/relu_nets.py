"""A ReLU network written as people write them, for the tests of the sweep (tests/test_regions.py, in float64
against the walk; tests/test_export.py, the exported graphs against invlab.regions.segment)."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class ReLUSkip(nn.Module):
    """``F.relu`` and a skip around the second: two levels of ReLUs, and a cut of two values (the second ReLU's
    input and the first's output, which the last layer reads again). Input (1, side, side)."""

    def __init__(self, side: int = 8, classes: int = 5):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(1, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1)
        self.fc = nn.Linear(4 * side * side, classes)

    def forward(self, x):
        h = F.relu(self.conv1(x))
        r = F.relu(self.conv2(h) + h)
        return self.fc(torch.flatten(r + h, 1))
