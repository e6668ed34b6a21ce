"""The device a run trains on: ``auto`` takes a CUDA GPU when there is one."""

from __future__ import annotations

import torch


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError("--device cuda was asked for but no CUDA GPU is available; use --device cpu or auto")
    return torch.device(name)


__all__ = ["resolve_device"]
