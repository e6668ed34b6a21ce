"""A tiny synthetic stand-in for MNIST: smoke runs, sweeps' own tests, offline demos.

Ten classes of 28x28 images, each a fixed random prototype plus pixel noise, clipped to
[0, 1]. It has MNIST's shapes and splits but none of its difficulty: numbers measured on
it say that code runs, not how well a method works.
"""

from __future__ import annotations

import torch

from invlab.data.mnist import MNIST_CLASSES, MNIST_INPUT_SHAPE
from invlab.data.splits import SemiSupervisedData, labelled_split


def synthetic_digits(labels_per_class: int | None = 5, seed: int = 0, n_train: int = 600, n_val: int = 200,
                     n_test: int = 200, noise: float = 0.3) -> SemiSupervisedData:
    """The synthetic task (prototypes fixed by ``seed`` 0, label draw by ``seed``)."""
    classes = len(MNIST_CLASSES)  # MNIST's shapes, none of its difficulty
    protos = torch.rand(classes, *MNIST_INPUT_SHAPE, generator=torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(1000 + seed)

    def draw(n):
        y = torch.arange(n) % classes
        return (protos[y] + noise * torch.randn(n, *MNIST_INPUT_SHAPE, generator=g)).clamp(0, 1), y

    (xt, yt), (xv, yv), (xs, ys) = draw(n_train), draw(n_val), draw(n_test)
    labelled = torch.arange(n_train) if labels_per_class is None else labelled_split(yt, labels_per_class, seed,
                                                                                       num_classes=classes)
    return SemiSupervisedData(xt, yt, labelled, xv, yv, xs, ys, classes, "synthetic",
                              class_names=[f"prototype {c}" for c in range(classes)],
                              info={"source": "invlab.data.synthetic (random prototypes plus noise)",
                                    "split": {"validation": f"{n_val} drawn", "test": f"{n_test} drawn"}})
