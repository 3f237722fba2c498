"""Symmetry detection with spglib: the one wrapper every part of symmcd calls.

spglib reports failure in two ways depending on its version and settings (``None`` or a
``SpglibError``), and it raises on degenerate cells (atoms on top of each other); here every
failure is ``None``, and spglib's deprecation chatter is silenced.
"""

from __future__ import annotations

import warnings

import numpy as np
import spglib
from pymatgen.core import Structure

Cell = tuple[np.ndarray, np.ndarray, np.ndarray]  # lattice rows, fractional coords, numbers


def spglib_cell(structure: Structure) -> Cell:
    """(lattice matrix, fractional coordinates, atomic numbers) of an ordered structure."""
    numbers = np.array([site.specie.Z for site in structure])
    return structure.lattice.matrix, structure.frac_coords, numbers


def symmetry_dataset(
    cell: Structure | Cell,
    symprec: float = 0.1,
    angle_tolerance: float = -1.0,
    hall_number: int = 0,
):
    """spglib's symmetry dataset of a structure or cell, or ``None`` when the search fails
    (``angle_tolerance`` in degrees, spglib's default -1 lets it choose; ``hall_number`` 0 lets
    spglib pick the setting)."""
    if isinstance(cell, Structure):
        cell = spglib_cell(cell)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return spglib.get_symmetry_dataset(
                cell, symprec=symprec, angle_tolerance=angle_tolerance, hall_number=hall_number
            )
    except Exception:  # noqa: BLE001 - spglib raises on degenerate cells
        return None
