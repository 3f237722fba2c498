"""symmcd: symmetry-preserving crystal diffusion over the asymmetric unit.

Public API (imported lazily so `import symmcd` stays fast):
- `symmcd.AsymmetricUnit`: a crystal as space group + lattice k-vector + one node per orbit.
- `symmcd.sample(...)`: generate crystals with the shipped (or a given) model.
- `symmcd.SamplingConfig`: every sampling setting, validated once.
- `symmcd.predict_structures(formula, ...)`: candidate structures of a composition, ranked by
  CHGNet energy (structure prediction).
- `symmcd.evaluate(...)`: the field's metrics on a folder of samples.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "AsymmetricUnit": "symmcd.symmetry.asymmetric_unit",
    "sample": "symmcd.sampling",
    "SamplingConfig": "symmcd.sampling.config",
    "predict_structures": "symmcd.csp",
    "evaluate": "symmcd.evaluation",
}

__all__ = [
    "AsymmetricUnit",
    "SamplingConfig",
    "__version__",
    "evaluate",
    "predict_structures",
    "sample",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'symmcd' has no attribute {name!r}")
