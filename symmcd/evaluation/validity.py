"""Structural and compositional validity, as defined by CDVAE and used by DiffCSP/FlowMM/SymmCD.

* structural: every interatomic distance (periodic images included) is at least 0.5 A and the
  cell volume is at least 0.1 A^3;
* compositional: SMACT charge neutrality with the Pauling test, as the field's code computes it
  (``symmcd.chemistry.composition_is_valid``, re-exported here).
"""

from __future__ import annotations

import numpy as np
from pymatgen.core import Structure

from symmcd.chemistry import OXIDATION_STATES_SET, composition_is_valid

__all__ = [
    "CLOSE_CONTACT_DISTANCE",
    "MIN_DISTANCE",
    "MIN_VOLUME",
    "OXIDATION_STATES_SET",
    "close_contact_free_flags",
    "composition_is_valid",
    "structure_is_valid",
    "validity_flags",
]

MIN_DISTANCE = 0.5  # Angstrom
# A stricter distance for the `struct_valid_1A` diagnostic: 99.2 % of MP-20 test crystals have no
# two atoms closer than 1 A (the other 73 hold bonds to hydrogen), while 0.5 A lets through
# unphysical crystals whose CHGNet energies lie eV/atom above the data's.
CLOSE_CONTACT_DISTANCE = 1.0  # Angstrom
MIN_VOLUME = 0.1  # Angstrom^3


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
