"""Element substitution probabilities mined from known structures.

Two crystals of one prototype (same space group, same Wyckoff positions per element; see
:mod:`symmcd.csp.templates`) hold, on each Wyckoff position, elements that can replace each
other. Counting such pairs over a template pool gives a symmetric matrix ``M[a, b]`` (pairs of
crystals that put ``a`` and ``b`` on the same position), the data-mined analogue of Hautier et
al.'s ionic substitution table, learned from the pool itself, per element rather than per ion.
``log_prob[a, b] = log p(b | a)``, smoothed toward the elements' overall frequency, so that
unseen pairs keep a small, finite probability.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from symmcd.symmetry.encoding import NUM_ELEMENTS

if TYPE_CHECKING:
    from symmcd.csp.templates import TemplatePool

SMOOTHING = 1.0  # pseudo-counts spread over the elements by their frequency


@dataclass(frozen=True)
class SubstitutionTable:
    """``log_prob`` (100, 100): log p(new element | old element) on the same site."""

    log_prob: np.ndarray
    pair_counts: np.ndarray  # (100, 100) symmetric M

    @classmethod
    def from_pool(cls, pool: TemplatePool, smoothing: float = SMOOTHING) -> SubstitutionTable:
        histograms: dict[tuple, np.ndarray] = defaultdict(lambda: np.zeros(NUM_ELEMENTS))
        for i, key in enumerate(pool.prototype):
            for role, element in element_roles(pool.reduced_counts[i]).items():
                histograms[(key, role)][element] += 1.0
        counts = np.zeros((NUM_ELEMENTS, NUM_ELEMENTS))
        for h in histograms.values():
            size = h.sum()
            if size > 1:  # pairs of distinct crystals, each prototype weighted by its size
                counts += (np.outer(h, h) - np.diag(h)) / (size - 1)
        return cls(log_prob=log_probabilities(counts, pool, smoothing), pair_counts=counts)


def element_roles(reduced_counts: dict[int, int]) -> dict[tuple[int, int], int]:
    """Each element's role in its crystal: (its count in the reduced formula, its rank by
    electronegativity among the elements of that count). Crystals of one prototype with the
    same roles put them on the same sites (the Wyckoff letters themselves can differ by an
    origin shift, as 1a / 1b in CsCl), so roles, not letters, pair elements."""
    by_count: dict[int, list[int]] = defaultdict(list)
    for element, count in reduced_counts.items():
        by_count[count].append(element)
    roles = {}
    for count, elements in by_count.items():
        for rank, element in enumerate(sorted(elements, key=lambda e: (ELECTRONEGATIVITY[e], e))):
            roles[(count, rank)] = element
    return roles


def _electronegativities() -> np.ndarray:
    """(100,) Pauling electronegativity per element (Z - 1); 0 where pymatgen has none."""
    import warnings

    from pymatgen.core import Element

    values = np.zeros(NUM_ELEMENTS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for z in range(1, NUM_ELEMENTS + 1):
            x = Element.from_Z(z).X
            values[z - 1] = 0.0 if x is None or not np.isfinite(x) else float(x)
    return values


ELECTRONEGATIVITY = _electronegativities()


def log_probabilities(counts: np.ndarray, pool: TemplatePool, smoothing: float) -> np.ndarray:
    """log p(b | a) = log((M[a, b] + s q(b)) / (sum_b M[a, b] + s)), q = element frequency."""
    frequency = np.bincount(pool.orbit_element.astype(np.int64), minlength=NUM_ELEMENTS) + 1.0
    q = frequency / frequency.sum()
    numerator = counts + smoothing * q[None, :]
    return np.log(numerator / numerator.sum(axis=1, keepdims=True))
