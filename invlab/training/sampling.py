"""The samplers of every training loop: an endless reshuffled stream of indices, and its
class-balanced variant for the labelled set. :class:`~invlab.train.Trainer`, the EBGAN game and
the clustering runs draw their batches with them."""

from __future__ import annotations

import torch


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


__all__ = ["BalancedSampler", "CyclingSampler"]
