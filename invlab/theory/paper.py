"""Facts of the paper that code relies on (see the paper's Table 2, §3)."""

from __future__ import annotations

#: model: (test % with 50 labels, (alpha, beta), Sup1000 test %) — Table 2
TABLE2 = {
    "smallcnn-mean": (99.07, (0.7, 0.2), 94.9), "smallcnn-max": (98.63, (0.7, 0.2), 95.0),
    "smallucnn": (98.85, (0.5, 0.2), 96.0), "largecnn-mean": (98.63, (0.6, 0.5), 94.7),
    "largecnn-max": (98.79, (0.7, 0.5), 94.8), "largeucnn": (98.23, (0.5, 0.5), 96.1),
    "resnet2-32-mean": (99.11, (0.7, 0.2), 95.5), "resnet2-32-max": (99.14, (0.7, 0.2), 94.9),
    "uresnet2-32": (98.84, (0.7, 0.2), 95.6), "resnet3-16-mean": (98.67, (0.7, 0.2), 95.4),
    "resnet3-16-max": (98.56, (0.5, 0.5), 94.8), "uresnet3-16": (98.7, (0.7, 0.2), 95.5),
}
#: the paper's (alpha, beta) search for SmallCNN
GRID_ALPHAS, GRID_BETAS = (0.3, 0.4, 0.5, 0.6, 0.7), (0.2, 0.3, 0.5)
