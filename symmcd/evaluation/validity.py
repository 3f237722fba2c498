"""Structural and compositional validity, as defined by CDVAE and used by DiffCSP/FlowMM/SymmCD.

* structural: every interatomic distance (periodic images included) is at least 0.5 A and the
  cell volume is at least 0.1 A^3;
* compositional: SMACT charge neutrality with the Pauling electronegativity test on the formula
  reduced by its gcd, using SMACT's original 2014 oxidation-state set (``smact14``; SMACT >= 3
  defaults to ICSD24, which changes the numbers). Single elements and all-metal compositions
  (alloys) count as valid. An element without an electronegativity (Pm, Rn) is treated as SMACT
  2.x did, which the field's numbers were computed with (:func:`pauling_test_smact2`).
"""

from __future__ import annotations

import functools
import itertools
import warnings

import numpy as np
from pymatgen.core import Composition, Structure

MIN_DISTANCE = 0.5  # Angstrom
# A stricter distance for the `struct_valid_1A` diagnostic: 99.2 % of MP-20 test crystals have no
# two atoms closer than 1 A (the other 73 hold bonds to hydrogen), while 0.5 A lets through
# unphysical crystals whose CHGNet energies lie eV/atom above the data's.
CLOSE_CONTACT_DISTANCE = 1.0  # Angstrom
MIN_VOLUME = 0.1  # Angstrom^3
OXIDATION_STATES_SET = "smact14"
SMACT_OXIDATION_ATTRIBUTE = "oxidation_states_smact14"  # smact.Element's list for that set


def structure_is_valid(
    structure: Structure | None, min_distance: float = MIN_DISTANCE, min_volume: float = MIN_VOLUME
) -> bool:
    """True when no two atoms (or an atom and an image) are closer than ``min_distance``."""
    if structure is None or len(structure) == 0:
        return False
    if not np.isfinite(structure.lattice.matrix).all() or structure.volume < min_volume:
        return False
    if len(structure) > 1:
        distances = structure.distance_matrix[np.triu_indices(len(structure), k=1)]
        if distances.min() < min_distance:
            return False
    # Images of the same or other atoms closer than the cutoff (thin cells, tiny lattices).
    _, _, _, image_distances = structure.get_neighbor_list(min_distance)
    return not bool(np.any(image_distances < min_distance))


@functools.lru_cache(maxsize=65536)
def _reduced_formula_is_valid(formula: str) -> bool:
    """SMACT's ``smact_validity`` (Pauling test, alloys valid, smact14 set) of one formula, as
    SMACT 2.x and the field's code computed it (see :func:`pauling_test_smact2`)."""
    import smact

    try:
        composition = Composition(formula)
        # the field's code lists the elements in order of atomic number
        symbols = sorted((element.symbol for element in composition), key=_atomic_number)
        if len(symbols) == 1 or all(symbol in smact.metals for symbol in symbols):
            return True
        counts = [int(round(composition[symbol])) for symbol in symbols]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            elements = [smact.Element(symbol) for symbol in symbols]
        oxidation_states = [getattr(e, SMACT_OXIDATION_ATTRIBUTE) for e in elements]
        electronegativities = [e.pauling_eneg for e in elements]
    except Exception:  # noqa: BLE001 - element unknown to SMACT: not a valid composition
        return False
    if any(not states for states in oxidation_states):
        return False  # SMACT: no oxidation state, so no charge-neutral assignment
    divisor = np.gcd.reduce(counts)
    counts = [count // divisor for count in counts]
    if None in electronegativities:
        return _neutral_with_smact2_pauling(oxidation_states, counts, electronegativities)
    return neutral_with_pauling(oxidation_states, counts, electronegativities)


def _atomic_number(symbol: str) -> int:
    from pymatgen.core import Element

    return Element(symbol).Z


def pauling_test_smact2(
    oxidation_states: tuple[int, ...], electronegativities: list[float | None]
) -> bool:
    """SMACT 2.x's Pauling test of one assignment, with its handling of missing data.

    Pairs are visited in order; a cation not less electronegative than an anion fails. SMACT
    compared electronegativities with ``>=`` in Python, so a pair whose comparison involves an
    element without one (Pm, Rn, He, Ne, Ar) raised ``TypeError``, which ``smact_validity``
    caught as "no data, assume it is okay": the whole test passes at that pair, unless an
    earlier pair had already failed. SMACT 4 instead rejects such compositions.
    """
    pairs = zip(oxidation_states, electronegativities, strict=True)
    for (ox1, eneg1), (ox2, eneg2) in itertools.combinations(list(pairs), 2):
        cation_anion = ox1 > 0 and ox2 < 0
        anion_cation = not cation_anion and ox1 < 0 and ox2 > 0
        if not (cation_anion or anion_cation):
            continue
        if eneg1 is None or eneg2 is None:
            return True
        if (cation_anion and eneg1 >= eneg2) or (anion_cation and eneg1 <= eneg2):
            return False
    return True


def _neutral_with_smact2_pauling(
    oxidation_states: list[list[int]], counts: list[int], electronegativities: list[float | None]
) -> bool:
    """Whether some charge-neutral assignment passes :func:`pauling_test_smact2`: a search
    pruned on charge only (the Pauling order is not monotone here), for the rare compositions
    with an element lacking an electronegativity."""
    n = len(counts)
    low = [min(states) * count for states, count in zip(oxidation_states, counts, strict=True)]
    high = [max(states) * count for states, count in zip(oxidation_states, counts, strict=True)]
    rest_low = np.concatenate([np.cumsum(low[::-1])[::-1], [0]])
    rest_high = np.concatenate([np.cumsum(high[::-1])[::-1], [0]])

    def search(i: int, charge: int, chosen: tuple[int, ...]) -> bool:
        if i == n:
            return charge == 0 and pauling_test_smact2(chosen, electronegativities)
        for state in oxidation_states[i]:
            total = charge + state * counts[i]
            if rest_low[i + 1] <= -total <= rest_high[i + 1] and search(
                i + 1, total, (*chosen, state)
            ):
                return True
        return False

    return search(0, 0, ())


def neutral_with_pauling(
    oxidation_states: list[list[int]], counts: list[int], electronegativities: list[float]
) -> bool:
    """Whether one oxidation state per element makes the formula charge neutral with every
    cation less electronegative than every anion.

    The same answer as SMACT's exhaustive loop over all combinations (``itertools.product``),
    found by a depth-first search that drops a branch as soon as the charge can no longer reach
    zero or the Pauling order is broken: SMACT's loop takes hours on formulas with eight or more
    elements, which poorly trained generators do produce.
    """
    n = len(counts)
    low = [min(states) * count for states, count in zip(oxidation_states, counts, strict=True)]
    high = [max(states) * count for states, count in zip(oxidation_states, counts, strict=True)]
    rest_low = np.concatenate([np.cumsum(low[::-1])[::-1], [0]])
    rest_high = np.concatenate([np.cumsum(high[::-1])[::-1], [0]])

    def search(i: int, charge: int, max_cation: float, min_anion: float) -> bool:
        if i == n:
            return charge == 0
        for state in oxidation_states[i]:
            total = charge + state * counts[i]
            if not rest_low[i + 1] <= -total <= rest_high[i + 1]:
                continue
            cation = max(max_cation, electronegativities[i]) if state > 0 else max_cation
            anion = min(min_anion, electronegativities[i]) if state < 0 else min_anion
            if cation >= anion:
                continue
            if search(i + 1, total, cation, anion):
                return True
        return False

    return search(0, 0, -np.inf, np.inf)


def composition_is_valid(composition: Composition | None) -> bool:
    """SMACT validity (charge neutral + Pauling test, smact14 set) of the gcd-reduced formula."""
    if composition is None or composition.num_atoms == 0:
        return False
    reduced, _ = composition.get_integer_formula_and_factor()
    return _reduced_formula_is_valid(reduced)


def validity_flags(structures: list[Structure | None]) -> tuple[np.ndarray, np.ndarray]:
    """Boolean arrays (structurally valid, compositionally valid), one entry per structure."""
    struct_valid = np.array([structure_is_valid(s) for s in structures], dtype=bool)
    comp_valid = np.array(
        [composition_is_valid(s.composition if s is not None else None) for s in structures],
        dtype=bool,
    )
    return struct_valid, comp_valid


def close_contact_free_flags(structures: list[Structure | None]) -> np.ndarray:
    """Per structure: structurally valid at the stricter CLOSE_CONTACT_DISTANCE (the
    `struct_valid_1A` diagnostic; False if unreadable)."""
    return np.array(
        [structure_is_valid(s, min_distance=CLOSE_CONTACT_DISTANCE) for s in structures],
        dtype=bool,
    )
