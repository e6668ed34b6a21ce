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


def create_model(name: str, num_classes: int | None = None, in_channels: int | None = None, bias: bool | None = None,
                 init: str = "default", input_shape: tuple[int, ...] | None = None, **kwargs) -> nn.Module:
    """Build the model registered as ``name``, sized for ``input_shape`` and ``num_classes``.

    Args:
        input_shape: one example's shape, (C, H, W) for image models, (C, L) for signal
            models; default: the model's own (MNIST's (1, 28, 28) for the Table 2
            networks, 500 ms of 44.1 kHz audio for ``bird10-cnn``). A shape too small for
            the model's pooling raises a ValueError naming the smallest it accepts.
        num_classes: logits (default: the model's own, 10).
        in_channels: shorthand for ``input_shape``'s C with the default spatial size.
        bias: ``None`` keeps the model's own choice (biases in the plain networks, none in
            the inhibitor "U" networks, which are bias-free by definition); ``False``
            removes every bias, so that f(x) = A[x]x exactly (b[x] = 0) and
            R = ||A[x]^T A[x] x - x||^2; ``True`` on a "U" network is an error.
        init: ``"default"`` (PyTorch's per-layer defaults) or ``"xavier"`` (Xavier-uniform
            weights and zero biases in every convolution and dense layer, as the first
            author's later code did), see :func:`init_weights`.

    Extra keyword arguments go to the model's factory. The returned module has the
    attributes ``input_ndim`` (3 for 1-D signals (B, C, T), 4 for images (B, C, H, W)),
    ``input_shape`` and ``in_channels``, used to validate inputs.
    """
    if name not in _MODELS:
        known = ", ".join(list_models())
        raise ValueError(f"unknown model {name!r}. Known models: {known}")
    if num_classes is not None:
        if num_classes < 2:
            raise ValueError(f"num_classes must be at least 2, got {num_classes}")
        kwargs["num_classes"] = num_classes
    if input_shape is not None:
        input_shape = tuple(int(v) for v in input_shape)
        if in_channels is not None and in_channels != input_shape[0]:
            raise ValueError(f"in_channels={in_channels} contradicts input_shape={input_shape}")
        if min(input_shape) < 1:
            raise ValueError(f"input_shape must be positive, got {input_shape}")
        kwargs["input_shape"] = input_shape
    elif in_channels is not None:
        if in_channels < 1:
            raise ValueError(f"in_channels must be at least 1, got {in_channels}")
        kwargs["in_channels"] = in_channels
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}; use one of {', '.join(INITS)}")
    if bias is not None:
        kwargs["bias"] = bias
    try:
        model = _MODELS[name](**kwargs)
    except (BiasFreeModelError, InputShapeError) as err:
        raise ValueError(f"model {name!r} {err}") from None
    model.model_name = name
    init_weights(model, init)
    return model


class InputShapeError(ValueError):
    """Raised by a model factory for an input shape it cannot take."""


def resolve_shape(input_shape, in_channels, default: tuple[int, ...], name: str) -> tuple[int, ...]:
    """The input shape a model is built for: ``input_shape``, else ``default`` with
    ``in_channels`` channels; its rank must match ``default``'s."""
    shape = tuple(input_shape) if input_shape is not None else (
        (in_channels, *default[1:]) if in_channels is not None else default)
    if len(shape) != len(default):
        kind = "images (C, H, W)" if len(default) == 3 else "signals (C, L)"
        raise InputShapeError(f"takes {kind}, got input_shape {shape} ({name})")
    return shape


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
