"""Semi-supervised splits: a class-balanced labelled set and a held-out validation set."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


def labelled_split(targets: torch.Tensor, per_class: int, seed: int,
                   num_classes: int | None = None, class_names: list[str] | None = None) -> torch.Tensor:
    """Draw ``per_class`` labelled examples of every class, reproducibly.

    Args:
        targets: (N,) int64 labels of the pool to draw from (the training part only).
        per_class: examples per class (5 for the paper's N_L = 50 on MNIST).
        seed: the label draw; the same seed always gives the same indices.
        num_classes: classes expected (default: max label + 1); every one must be present.
        class_names: names of the classes, for the error message.

    Returns:
        (per_class * num_classes,) int64 indices into ``targets``, sorted by class then draw.
    """
    if per_class < 1:
        raise ValueError(f"the labelled set would be empty: per_class={per_class}; ask for at least "
                         "1 label per class (--labels-per-class 1)")
    targets = torch.as_tensor(targets)
    num_classes = int(targets.max()) + 1 if num_classes is None else num_classes
    gen = torch.Generator().manual_seed(seed)
    counts = torch.bincount(targets, minlength=num_classes)[:num_classes]
    smallest = int(counts.argmin())
    if counts[smallest] < per_class:
        n_min = int(counts[smallest])
        named = f"{smallest} ({class_names[smallest]!r})" if class_names else str(smallest)
        raise ValueError(f"{per_class} labels per class were asked for ({per_class * num_classes} in total), but "
                         f"the smallest class, {named}, has only {n_min} examples in the training pool: "
                         f"ask for at most {n_min} per class, i.e. --labels {n_min * num_classes}")
    picks = []
    for c in range(num_classes):
        idx = (targets == c).nonzero().flatten()
        picks.append(idx[torch.randperm(len(idx), generator=gen)[:per_class]])
    return torch.cat(picks)


@dataclass
class SemiSupervisedData:
    """Tensors of a semi-supervised task. Images are float32 in [0, 1].

    ``x_train`` (N, *D) is the unlabelled pool (the whole training part, labelled
    examples included, labels unused); ``labelled`` indexes the few labelled examples in
    it. ``x_val`` is carved from the original training set, never from the test set.
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    labelled: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    name: str
    #: recording id of each validation / test segment (audio), for per-recording votes
    groups_val: torch.Tensor | None = None
    groups_test: torch.Tensor | None = None
    class_names: list[str] | None = None
    #: where the data came from and how validation and test were carved (recorded with every run)
    info: dict = field(default_factory=dict)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one example: (C, H, W) for images, (C, L) for signals."""
        return tuple(self.x_train.shape[1:])

    @property
    def x_labelled(self) -> torch.Tensor:
        return self.x_train[self.labelled]

    @property
    def y_labelled(self) -> torch.Tensor:
        return self.y_train[self.labelled]

    def summary(self) -> dict:
        """What a run records about its data (``metrics.json``, the checkpoint): the name,
        sizes, input shape, class names, and the source and split of ``info``."""
        names = self.class_names or [str(c) for c in range(self.num_classes)]
        return {"dataset": self.name, "train": len(self.x_train), "labelled": len(self.labelled),
                "validation": len(self.x_val), "test": len(self.x_test),
                "input_shape": list(self.input_shape), "num_classes": self.num_classes,
                "class_names": list(names), **self.info}


def subset(data: SemiSupervisedData, n_val: int | None = None, n_test: int | None = None) -> SemiSupervisedData:
    """The same task with only the first ``n_val`` validation and ``n_test`` test examples
    (faster evaluation for demos and notebooks; the training part is unchanged)."""
    from dataclasses import replace

    def cut(groups, n):
        return None if groups is None else groups[:n]

    return replace(data, x_val=data.x_val[:n_val], y_val=data.y_val[:n_val],
                   x_test=data.x_test[:n_test], y_test=data.y_test[:n_test],
                   groups_val=cut(data.groups_val, n_val), groups_test=cut(data.groups_test, n_test))
