"""Model registry: models are registered by name and built with :func:`create_model`."""

from __future__ import annotations

from typing import Callable

import torch.nn as nn

_MODELS: dict[str, Callable[..., nn.Module]] = {}


def register_model(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator: register a model factory under ``name``."""

    def wrap(factory: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _MODELS:
            raise ValueError(f"model name {name!r} is already registered")
        _MODELS[name] = factory
        return factory

    return wrap


def list_models() -> list[str]:
    """All registered model names, sorted."""
    return sorted(_MODELS)


def create_model(name: str, num_classes: int = 10, in_channels: int = 1, **kwargs) -> nn.Module:
    """Build the model registered as ``name``.

    Extra keyword arguments go to the model's factory (e.g. ``image_size`` for the
    MNIST networks, ``segment_length`` for ``bird10-cnn``). The returned module has
    the attribute ``input_ndim`` (3 for 1-D signals (B, C, T), 4 for images
    (B, C, H, W)) and ``in_channels``, used to validate inputs.
    """
    if name not in _MODELS:
        known = ", ".join(list_models())
        raise ValueError(f"unknown model {name!r}. Known models: {known}")
    if num_classes < 2:
        raise ValueError(f"num_classes must be at least 2, got {num_classes}")
    if in_channels < 1:
        raise ValueError(f"in_channels must be at least 1, got {in_channels}")
    model = _MODELS[name](num_classes=num_classes, in_channels=in_channels, **kwargs)
    model.model_name = name
    return model
