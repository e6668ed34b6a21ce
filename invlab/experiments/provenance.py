"""The former home of :mod:`invlab.training.provenance`, kept (deprecated) so that ``from
invlab.experiments.provenance import ...`` goes on working: provenance is a leaf below the
training layer, which records it in every ``metrics.json``."""

import warnings

from invlab.training.provenance import (  # noqa: F401
    _REPO,
    cpu_model,
    hardware,
    provenance,
    provenance_line,
    results_header,
)

__all__ = ["cpu_model", "hardware", "provenance", "provenance_line", "results_header"]

warnings.warn("invlab.experiments.provenance is deprecated and will be removed in invlab 0.2; import from "
              "invlab.training.provenance", DeprecationWarning, stacklevel=2)
