"""Structural and compositional validity, as defined by CDVAE and used by DiffCSP/FlowMM/SymmCD.

* structural: every interatomic distance (periodic images included) is at least 0.5 A and the
  cell volume is at least 0.1 A^3;
* compositional: SMACT charge neutrality with the Pauling electronegativity test on the formula
  reduced by its gcd, using SMACT's original 2014 oxidation-state set (``smact14``; SMACT >= 3
  defaults to ICSD24, which changes the numbers). Single elements and all-metal compositions
  (alloys) count as valid.
"""

from __future__ import annotations

import functools
import warnings

import numpy as np
from pymatgen.core import Composition, Structure

MIN_DISTANCE = 0.5  # Angstrom
MIN_VOLUME = 0.1  # Angstrom^3
OXIDATION_STATES_SET = "smact14"


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
    from smact.screening import smact_validity

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return bool(
                smact_validity(
                    Composition(formula),
                    use_pauling_test=True,
                    include_alloys=True,
                    oxidation_states_set=OXIDATION_STATES_SET,
                )
            )
    except Exception:  # noqa: BLE001 - element unknown to SMACT: not a valid composition
        return False


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
