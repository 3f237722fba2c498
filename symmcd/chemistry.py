"""Compositional validity: SMACT charge neutrality with the Pauling electronegativity test.

As the field's code (CDVAE / DiffCSP / SymmCD, SMACT 2.x) computes it: on the formula reduced by
its gcd, with SMACT's original 2014 oxidation-state set (``smact14``; SMACT >= 3 defaults to
ICSD24, which changes the numbers). Single elements and all-metal compositions (alloys) count as
valid. An element without an electronegativity (Pm, Rn) is treated as SMACT 2.x did
(:func:`pauling_test_smact2`). Used by evaluation (``comp_valid``) and by the sampler's
``charge_balanced`` filter, so it sits below both.
"""

from __future__ import annotations

import functools
import itertools
import warnings

import numpy as np
from pymatgen.core import Composition

OXIDATION_STATES_SET = "smact14"
SMACT_OXIDATION_ATTRIBUTE = "oxidation_states_smact14"  # smact.Element's list for that set


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
