"""Networks of your own: ``--model-file FILE.py:FACTORY`` and modules handed to ``train``.

A factory is a function in a Python file that returns an ``nn.Module`` mapping a batch
(B, *input_shape) to logits (B, num_classes). It may take the keyword arguments
``input_shape`` and ``num_classes`` (the data set's); invlab passes those it accepts. The
checkpoint records the factory (path and SHA-256 of the file), so
:func:`invlab.train.load_model` rebuilds the network. The inverse's own checks apply: the
module must be piecewise affine for (df/dx)^T f(x) to be the paper's inverse, and batch
norm in training mode is refused (it mixes the samples of a batch).
"""

from __future__ import annotations

import importlib.util
import inspect
from pathlib import Path

import torch.nn as nn

from invlab.io import sha256_file


def load_factory(spec: str):
    """The function named by ``"FILE.py:FACTORY"``, imported from its file."""
    path, sep, name = spec.rpartition(":")
    if not sep or not path or not name.isidentifier():
        raise ValueError(f"--model-file {spec!r}: expected FILE.py:FACTORY, e.g. --model-file nets.py:tiny_cnn")
    file = Path(path).expanduser()
    if not file.is_file():
        raise FileNotFoundError(f"--model-file {spec!r}: {file} does not exist")
    module_spec = importlib.util.spec_from_file_location(f"invlab_model_file_{file.stem}", file)
    if module_spec is None or module_spec.loader is None:
        raise ValueError(f"--model-file {spec!r}: {file} is not a Python file")
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    factory = getattr(module, name, None)
    if not callable(factory):
        found = sorted(k for k, v in vars(module).items() if callable(v) and not k.startswith("_"))
        raise ValueError(
            f"--model-file {spec!r}: {file} has no function {name!r} (it has {', '.join(found) or 'none'})"
        )
    return factory, file


def build_custom_model(spec: str, input_shape: tuple[int, ...], num_classes: int | None) -> tuple[nn.Module, dict]:
    """Call the factory of ``spec`` for this data set; return the module and its record. With
    ``num_classes=None`` (a network exported without class names) the factory is offered the input
    shape alone, and one that requires ``num_classes`` is refused."""
    factory, file = load_factory(spec)
    params = inspect.signature(factory).parameters
    takes_all = any(p.kind == p.VAR_KEYWORD for p in params.values())
    offered = {"input_shape": tuple(input_shape)}
    if num_classes is not None:
        offered["num_classes"] = num_classes
    elif "num_classes" in params and params["num_classes"].default is inspect.Parameter.empty:
        raise ValueError(f"--model-file {spec!r}: {factory.__name__}() needs num_classes (invlab export: give "
                         "--class-names)")
    model = factory(**{k: v for k, v in offered.items() if takes_all or k in params})
    if not isinstance(model, nn.Module):
        raise TypeError(f"--model-file {spec!r}: {factory.__name__}() returned a {type(model).__name__}, "
                        "not a torch.nn.Module")
    if not hasattr(model, "input_ndim"):
        model.input_ndim = len(input_shape) + 1  # lets the inverse's input checks name the layout
    return model, {"kind": "file", "spec": spec, "path": str(file.resolve()), "sha256": sha256_file(file)}


def model_source(model: nn.Module) -> dict:
    """The record of a module handed to ``train``: a registry model by name, else its class."""
    name = getattr(model, "model_name", None)
    if name is not None:
        return {"kind": "registry", "name": name}
    cls = type(model)
    return {"kind": "module", "class": f"{cls.__module__}.{cls.__qualname__}"}


__all__ = ["build_custom_model", "load_factory", "model_source"]
