"""Charge-balanced decoding of the last element draw.

The element chain ends by taking, for every orbit, the network's most likely clean element. Charge
balance is a property of the whole cell (element x multiplicity x oxidation state), which the
per-orbit prediction sees only indirectly, so about one crystal in six comes out with a
composition that no assignment of SMACT oxidation states makes neutral. With
``element_decoding="charge-balanced"`` such a crystal instead takes the most probable assignment
(sum of the orbits' log-probabilities) among each orbit's ``CANDIDATES_PER_ORBIT`` likeliest
elements, each at least ``MIN_PROBABILITY``, whose composition passes the field's test
(``symmcd.chemistry.composition_is_valid``); the first ``MAX_ASSIGNMENTS`` assignments are tried
in order of probability, and where none passes the sampled elements stay.

The probabilities are the network's clean-element predictions averaged over the last
``BELIEF_WINDOW`` of the steps: at the very last step the network mostly copies the elements it
is given, so its alternatives there carry almost no mass. Geometry, site symmetry and space group
are untouched (one-draw figures with and without: docs/results.md, "What each lever buys").
"""

from __future__ import annotations

import heapq

import numpy as np
from pymatgen.core import Composition, Element

from symmcd.chemistry import composition_is_valid

__all__ = ["balanced_elements", "composition_of"]

CANDIDATES_PER_ORBIT = 3
MIN_PROBABILITY = 0.02
MAX_ASSIGNMENTS = 200
BELIEF_WINDOW = 0.1  # fraction of the steps, as the repulsion's (sampling/repulsion.py)


def composition_of(elements: np.ndarray, multiplicities: np.ndarray) -> Composition:
    """The cell composition of orbits with elements (Z - 1) and multiplicities."""
    counts: dict[int, float] = {}
    for element, multiplicity in zip(elements.tolist(), multiplicities.tolist(), strict=True):
        counts[element + 1] = counts.get(element + 1, 0) + multiplicity
    return Composition({Element.from_Z(z): n for z, n in counts.items()})


def balanced_elements(
    probabilities: np.ndarray,
    multiplicities: np.ndarray,
    candidates_per_orbit: int = CANDIDATES_PER_ORBIT,
    min_probability: float = MIN_PROBABILITY,
    max_assignments: int = MAX_ASSIGNMENTS,
) -> np.ndarray | None:
    """The most probable element per orbit (Z - 1) whose cell composition is charge balanced.

    ``probabilities`` (n, 100) are the network's clean-element distributions of one crystal's
    orbits, ``multiplicities`` (n,) their orbit sizes. Assignments are visited best first over
    the product of each orbit's candidates (k-best enumeration with a heap); None when none of
    the first ``max_assignments`` passes.
    """
    probabilities = np.asarray(probabilities, dtype=float)
    order = np.argsort(-probabilities, axis=1)[:, :candidates_per_orbit]
    candidates = []
    for row, choices in zip(probabilities, order, strict=True):
        kept = [c for c in choices if row[c] >= min_probability] or [int(choices[0])]
        candidates.append(np.array(kept, dtype=np.int64))
    log_p = [np.log(np.maximum(probabilities[i, c], 1e-300)) for i, c in enumerate(candidates)]
    multiplicities = np.asarray(multiplicities)

    start = (0,) * len(candidates)
    heap = [(-sum(lp[0] for lp in log_p), start)]
    seen = {start}
    for _ in range(max_assignments):
        if not heap:
            return None
        _, picks = heapq.heappop(heap)
        elements = np.array([c[p] for c, p in zip(candidates, picks, strict=True)])
        if composition_is_valid(composition_of(elements, multiplicities)):
            return elements
        for i in range(len(picks)):
            if picks[i] + 1 < len(candidates[i]):
                nxt = picks[:i] + (picks[i] + 1,) + picks[i + 1 :]
                if nxt not in seen:
                    seen.add(nxt)
                    score = sum(lp[p] for lp, p in zip(log_p, nxt, strict=True))
                    heapq.heappush(heap, (-score, nxt))
    return None
