"""Any labelled arrays as a semi-supervised task: checks, carved splits, the label draw.

Every array-backed data set of the registry (torchvision's, ``folder:``, ``npz:``) ends
here: :func:`check_examples` refuses what would train silently wrong (NaN, labels that
are not integers in 0..C-1, shapes that do not match), :func:`carve` cuts validation (and,
when a data set has none, test) out of the training examples with a fixed split seed, and
:func:`semi_supervised` draws the labelled set with the run's seed. The split never
depends on the label draw, so every draw of a data set shares its validation and test.
"""

from __future__ import annotations

import torch

from invlab.data.splits import SemiSupervisedData, labelled_split

#: Seed of every carved validation / test split (recorded as ``split_seed``): fixed, so
#: that the label draws of one data set are compared on the same held-out examples.
SPLIT_SEED = 0


def check_examples(x: torch.Tensor, y: torch.Tensor, where: str, num_classes: int | None = None,
                   fix: str = "") -> tuple[torch.Tensor, torch.Tensor]:
    """``x`` (N, C, *D) float32 and ``y`` (N,) int64, or a ValueError naming ``where``.

    Refused: fewer than 3 dimensions in ``x`` (images are (N, C, H, W), signals (N, C, L)),
    N that differ, NaN or infinite values, labels that are not integers or lie outside
    0..C-1 (C = ``num_classes`` when given, else max + 1).
    """
    then = f"; {fix}" if fix else ""
    x, y = torch.as_tensor(x), torch.as_tensor(y)
    if x.ndim not in (3, 4):
        raise ValueError(f"{where}: examples of shape {tuple(x.shape)}; expected images (N, C, H, W) or signals "
                         f"(N, C, L) (add the channel axis, e.g. x[:, None]){then}")
    if y.ndim != 1 or len(y) != len(x):
        raise ValueError(f"{where}: {len(x)} examples but labels of shape {tuple(y.shape)}; expected ({len(x)},){then}")
    if len(x) == 0:
        raise ValueError(f"{where}: no examples{then}")
    if y.dtype.is_floating_point or y.dtype.is_complex or y.dtype == torch.bool:
        if y.dtype == torch.bool or not torch.equal(y, y.round()):
            raise ValueError(f"{where}: labels must be integers 0..C-1, got {y.dtype} values such as "
                             f"{y[:3].tolist()}{then}")
    y = y.long()
    top = num_classes if num_classes is not None else int(y.max()) + 1
    bad = (y < 0) | (y >= top)
    if bad.any():
        i = int(bad.nonzero()[0])
        raise ValueError(f"{where}: label {int(y[i])} of example {i} is outside 0..{top - 1} "
                         f"({top} classes){then}")
    x = x.float()
    finite = torch.isfinite(x.flatten(1)).all(1)
    if not finite.all():
        i = int((~finite).nonzero()[0])
        raise ValueError(f"{where}: example {i} holds NaN or infinite values; clean or drop it{then}")
    return x, y


def carve(n: int, sizes: tuple[int, ...], seed: int = SPLIT_SEED) -> list[torch.Tensor]:
    """Split range(n) at random (seeded) into parts of ``sizes`` and the rest, which comes first."""
    if sum(sizes) >= n:
        raise ValueError(f"cannot carve {' + '.join(map(str, sizes))} held-out examples from {n}: leave some to "
                         "train on (a smaller --val-size)")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    parts, start = [], n - sum(sizes)
    for size in sizes:
        parts.append(perm[start:start + size].sort().values)
        start += size
    return [perm[:n - sum(sizes)].sort().values, *parts]


def default_val_size(n_train: int) -> int:
    """Validation examples carved when none is asked for: 10 % of the training examples,
    at least one and at most 10 000 (MNIST's classic 50k/10k split)."""
    return max(1, min(10_000, n_train // 10))


def semi_supervised(name: str, x_train, y_train, x_test=None, y_test=None, *, labels_per_class: int | None,
                    seed: int, val_size: int | None = None, x_val=None, y_val=None,
                    class_names: list[str] | None = None, source: str = "", val_from: str = "random",
                    test_fraction: float = 0.2) -> SemiSupervisedData:
    """A :class:`SemiSupervisedData` from labelled arrays, checked.

    Validation: ``x_val`` when given, else ``val_size`` training examples carved off
    (``val_from="tail"``: the last ones, MNIST's convention; ``"random"``: drawn with
    :data:`SPLIT_SEED`). Test: ``x_test`` when given, else ``test_fraction`` of the
    training examples, carved the same way. The labelled set (``labels_per_class`` per
    class, ``None`` = all) is drawn with ``seed`` from what remains for training.
    ``info`` records the source and how every split was made.
    """
    num_classes = len(class_names) if class_names is not None else None
    x_train, y_train = check_examples(x_train, y_train, f"{name}: training examples", num_classes)
    if num_classes is None:
        num_classes = int(y_train.max()) + 1
    split = {"split_seed": SPLIT_SEED}
    if x_test is None:
        n_test = max(1, round(test_fraction * len(x_train)))
        keep, test = carve(len(x_train), (n_test,))
        x_test, y_test, x_train, y_train = x_train[test], y_train[test], x_train[keep], y_train[keep]
        split["test"] = f"carved: {n_test} random training examples (split_seed {SPLIT_SEED})"
    else:
        x_test, y_test = check_examples(x_test, y_test, f"{name}: test examples", num_classes)
        split["test"] = "given"
    if x_val is None:
        val_size = default_val_size(len(x_train)) if val_size is None else val_size
        if not 0 < val_size < len(x_train):
            raise ValueError(f"{name}: val_size must be between 1 and {len(x_train) - 1} (the training examples "
                             f"left), got {val_size}")
        if val_from == "tail":
            keep, val = torch.arange(len(x_train) - val_size), torch.arange(len(x_train) - val_size, len(x_train))
            split["validation"] = f"carved: the last {val_size} training examples"
        else:
            keep, val = carve(len(x_train), (val_size,))
            split["validation"] = f"carved: {val_size} random training examples (split_seed {SPLIT_SEED})"
        x_val, y_val, x_train, y_train = x_train[val], y_train[val], x_train[keep], y_train[keep]
    else:
        x_val, y_val = check_examples(x_val, y_val, f"{name}: validation examples", num_classes)
        split["validation"] = "given"
    shapes = {tuple(t.shape[1:]) for t in (x_train, x_val, x_test)}
    if len(shapes) > 1:
        raise ValueError(f"{name}: training, validation and test examples have different shapes {sorted(shapes)}")
    names = list(class_names) if class_names is not None else [str(c) for c in range(num_classes)]
    present = torch.bincount(y_train, minlength=num_classes)
    if (present == 0).any():
        found = ", ".join(map(str, (present > 0).nonzero().flatten().tolist()))
        missing = ", ".join(f"{c} ({names[c]!r})" if names[c] != str(c) else str(c)
                            for c in (present == 0).nonzero().flatten().tolist())
        raise ValueError(f"{name}: the training labels are {{{found}}}, so classes {missing} of 0..{num_classes - 1} "
                         "have no training example; every class needs some: renumber the labels 0..C-1 without gaps")
    labelled = (torch.arange(len(y_train)) if labels_per_class is None
                else labelled_split(y_train, labels_per_class, seed, num_classes=num_classes, class_names=names))
    return SemiSupervisedData(x_train, y_train, labelled, x_val, y_val, x_test, y_test, num_classes, name,
                              class_names=names, info={"source": source, "split": split})


__all__ = ["SPLIT_SEED", "carve", "check_examples", "default_val_size", "semi_supervised"]
