"""invlab — semi-supervised learning via deep-network inversion.

Reference implementation of Balestriero, Roger, Glotin & Baraniuk, "Semi-Supervised
Learning via New Deep Network Inversion" (arXiv 1711.04313).

The package's layers (what may import what) are the import-linter contract in pyproject.toml,
drawn in the guide's "The library" page (docs/site/guide/library.md).

The names below are loaded when first used (PEP 562), so that importing a part of invlab that
needs no torch (``invlab.experiments.storage``, ``invlab.io``) does not load torch.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING

__version__ = "0.1.0"
#: each top-level name and the module it comes from
_HOMES = {
    "forward_inverse": "invlab.inverse",
    "reconstruct": "invlab.inverse",
    "templates": "invlab.inverse",
    "SemiSupervisedLoss": "invlab.losses",
    "entropy_loss": "invlab.losses",
    "reconstruction_loss": "invlab.losses",
    "create_model": "invlab.models",
    "list_models": "invlab.models",
}
__all__ = ["SemiSupervisedLoss", "create_model", "entropy_loss", "forward_inverse", "list_models",
           "reconstruct", "reconstruction_loss", "templates"]

if TYPE_CHECKING:  # for type checkers and editors: the same names, eagerly
    from invlab.inverse import forward_inverse, reconstruct, templates
    from invlab.losses import SemiSupervisedLoss, entropy_loss, reconstruction_loss
    from invlab.models import create_model, list_models


def __getattr__(name: str):
    home = _HOMES.get(name)
    if home is None:  # a submodule, as ``import invlab; invlab.models`` found it when this file imported them
        if name.startswith("_") or importlib.util.find_spec(f"invlab.{name}") is None:
            raise AttributeError(f"module 'invlab' has no attribute {name!r}")
        return importlib.import_module(f"invlab.{name}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # looked up once
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOMES])
