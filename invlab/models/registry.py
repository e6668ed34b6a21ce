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


#: Weight initialisations of :func:`create_model`.
INITS = ("default", "xavier")


def create_model(name: str, num_classes: int = 10, in_channels: int = 1, bias: bool | None = None,
                 init: str = "default", **kwargs) -> nn.Module:
    """Build the model registered as ``name``.

    Args:
        bias: ``None`` keeps the model's own choice (biases in the plain networks, none in
            the inhibitor "U" networks, which are bias-free by definition); ``False``
            removes every bias, so that f(x) = A[x]x exactly (b[x] = 0) and
            R = ||A[x]^T A[x] x - x||^2; ``True`` on a "U" network is an error.
        init: ``"default"`` (PyTorch's per-layer defaults) or ``"xavier"`` (Xavier-uniform
            weights and zero biases in every convolution and dense layer, as the first
            author's later code did), see :func:`init_weights`.

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
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}; use one of {', '.join(INITS)}")
    if bias is not None:
        kwargs["bias"] = bias
    try:
        model = _MODELS[name](num_classes=num_classes, in_channels=in_channels, **kwargs)
    except BiasFreeModelError as err:
        raise ValueError(f"model {name!r} {err}") from None
    model.model_name = name
    init_weights(model, init)
    return model


class BiasFreeModelError(ValueError):
    """Raised by the factory of a bias-free model asked for biases."""


def bias_free(factory: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Wrap the factory of a model that has no bias by definition (the "U" networks)."""

    def build(bias: bool = False, **kw) -> nn.Module:
        if bias:
            raise BiasFreeModelError("has no biases by definition (inhibitor network); drop --bias")
        return factory(**kw)

    return build


def init_weights(model: nn.Module, init: str = "default") -> nn.Module:
    """Re-initialise ``model`` in place: ``"default"`` leaves it as built; ``"xavier"``
    draws every convolution and dense weight Xavier-uniform (Glorot & Bengio 2010) and
    zeroes their biases."""
    if init == "xavier":
        for module in model.modules():
            if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Linear)):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
    elif init != "default":
        raise ValueError(f"unknown init {init!r}; use one of {', '.join(INITS)}")
    return model
