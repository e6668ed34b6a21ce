"""What every training loop of invlab shares: the samplers, the learning-rate schedules and
the device choice. :class:`~invlab.train.Trainer` is built on them; the EBGAN game
(:mod:`invlab.extensions.ebgan`) and the clustering runs (:mod:`invlab.extensions.cluster`) use the same ones.
"""

from __future__ import annotations

import math

import torch


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError("--device cuda was asked for but no CUDA GPU is available; use --device cpu or auto")
    return torch.device(name)


class CyclingSampler:
    """Endless stream of indices over ``n`` items, reshuffled at every pass, seeded."""

    def __init__(self, n: int, seed: int):
        if n < 1:
            raise ValueError("cannot sample from an empty set")
        self.n = n
        self.gen = torch.Generator().manual_seed(seed)
        self.perm = torch.randperm(n, generator=self.gen)
        self.pos = 0

    def next(self, k: int) -> torch.Tensor:
        out = []
        while k > 0:
            if self.pos == self.n:
                self.perm, self.pos = torch.randperm(self.n, generator=self.gen), 0
            take = min(k, self.n - self.pos)
            out.append(self.perm[self.pos:self.pos + take])
            self.pos += take
            k -= take
        return torch.cat(out) if out else torch.empty(0, dtype=torch.long)

    def state_dict(self) -> dict:
        return {"gen": self.gen.get_state(), "perm": self.perm, "pos": self.pos}

    def load_state_dict(self, state: dict) -> None:
        self.gen.set_state(state["gen"])
        self.perm, self.pos = state["perm"], int(state["pos"])


class BalancedSampler:
    """Class-balanced stream of indices into a labelled set with labels ``targets`` (n,).

    Each batch of k takes k // C examples of every class (each class cycled and
    reshuffled on its own) and the k % C remaining ones from classes taken in a
    reshuffled rotation, so that over a few batches every class is drawn equally often.
    Indices are positions in ``targets``, like :class:`CyclingSampler`'s.
    """

    def __init__(self, targets: torch.Tensor, seed: int):
        targets = torch.as_tensor(targets)
        self.classes = targets.unique()
        self.members = [(targets == c).nonzero().flatten() for c in self.classes]
        self.per_class = [CyclingSampler(len(m), seed + 1000 * i) for i, m in enumerate(self.members)]
        self.rotation = CyclingSampler(len(self.classes), seed + 999)

    def next(self, k: int) -> torch.Tensor:
        counts = [k // len(self.classes)] * len(self.classes)
        for c in self.rotation.next(k % len(self.classes)).tolist():
            counts[c] += 1
        return torch.cat([m[s.next(n)] for m, s, n in zip(self.members, self.per_class, counts)])

    def state_dict(self) -> dict:
        return {"per_class": [s.state_dict() for s in self.per_class], "rotation": self.rotation.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        for s, st in zip(self.per_class, state["per_class"]):
            s.load_state_dict(st)
        self.rotation.load_state_dict(state["rotation"])


def schedule_factor(schedule: str, step: int, total_steps: int, steps_per_epoch: int = 1,
                    milestones: tuple[float, ...] = (0.5, 0.75), lr_decay: float = 0.2) -> float:
    """Factor applied to the learning rate at ``step`` of ``total_steps``: ``constant`` 1;
    ``cosine`` (1 + cos(pi t / T)) / 2; ``step`` ``lr_decay`` ** (milestones passed);
    ``invsqrt`` 1 / sqrt(1 + t / steps_per_epoch)."""
    t = min(step, total_steps)
    if schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * t / total_steps))
    if schedule == "step":
        return lr_decay ** sum(t >= m * total_steps for m in milestones)
    if schedule == "invsqrt":
        return 1 / math.sqrt(1 + t / steps_per_epoch)
    return 1.0


__all__ = ["BalancedSampler", "CyclingSampler", "resolve_device", "schedule_factor"]
