"""invlab — semi-supervised learning via deep-network inversion.

Reference implementation of Balestriero, Roger, Glotin & Baraniuk, "Semi-Supervised
Learning via New Deep Network Inversion" (arXiv 1711.04313).

The package's layers (what may import what) are the import-linter contract in pyproject.toml,
drawn in the guide's "The library" page (docs/site/guide/library.md).
"""

from invlab.inverse import forward_inverse, reconstruct, templates
from invlab.losses import SemiSupervisedLoss, entropy_loss, reconstruction_loss
from invlab.models import create_model, list_models

__version__ = "0.1.0"
__all__ = ["SemiSupervisedLoss", "create_model", "entropy_loss", "forward_inverse", "list_models",
           "reconstruct", "reconstruction_loss", "templates"]
