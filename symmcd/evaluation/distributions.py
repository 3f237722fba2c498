"""Distribution distances between samples and a reference set.

* ``wdist_*``: scipy's 1-D Wasserstein (earth mover's) distance of per-crystal values;
* ``sg_jsd``: Jensen-Shannon *distance* (square root of the divergence) between space-group
  histograms over all 230 groups, as the field's code computes it: scipy's ``jensenshannon``
  with its default natural logarithm (so in [0, sqrt(ln 2)] = [0, 0.833]); the base-2 variant
  (in [0, 1]) is 1.201x larger.
"""

from __future__ import annotations

import numpy as np
from pymatgen.core import Structure
from scipy.spatial.distance import jensenshannon
from scipy.stats import wasserstein_distance

from symmcd.symmetry.tables import NUM_SPACE_GROUPS as NUM_SPACEGROUPS

JSD_BASE: float | None = None  # scipy's default: natural logarithm (the field's choice)


def density(structure: Structure) -> float:
    """Mass density in g/cm^3."""
    return float(structure.density)


def num_elements(structure: Structure) -> int:
    """Number of distinct elements."""
    return len(structure.composition.elements)


def wasserstein(values: np.ndarray, reference: np.ndarray) -> float:
    """1-D Wasserstein distance ignoring non-finite entries; NaN when either side is empty."""
    values = np.asarray(values, dtype=float)
    reference = np.asarray(reference, dtype=float)
    values, reference = values[np.isfinite(values)], reference[np.isfinite(reference)]
    if len(values) == 0 or len(reference) == 0:
        return float("nan")
    return float(wasserstein_distance(values, reference))


def spacegroup_histogram(numbers: list[int | None]) -> np.ndarray:
    """Counts per space group 1..230 (index ``n - 1``); undetected groups are skipped."""
    counts = np.zeros(NUM_SPACEGROUPS, dtype=float)
    for number in numbers:
        if number is not None and 1 <= number <= NUM_SPACEGROUPS:
            counts[number - 1] += 1
    return counts


def spacegroup_jsd(
    numbers: list[int | None], reference: list[int | None], base: float | None = JSD_BASE
) -> float:
    """Jensen-Shannon distance between two space-group histograms (natural log by default)."""
    p, q = spacegroup_histogram(numbers), spacegroup_histogram(reference)
    if p.sum() == 0 or q.sum() == 0:
        return float("nan")
    return float(jensenshannon(p / p.sum(), q / q.sum(), base=base))


def seeded_subsample(indices: np.ndarray, size: int, seed: int) -> np.ndarray:
    """A sorted seeded random subset of ``indices`` of at most ``size`` entries."""
    indices = np.asarray(indices)
    if len(indices) <= size:
        return indices
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(indices, size=size, replace=False))
