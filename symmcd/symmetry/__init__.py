"""The exact crystallographic core: space-group tables, encodings, k-vectors, Wyckoff positions.

Everything here is numpy/scipy only, except ``asymmetric_unit`` (spglib, pymatgen), which is
imported lazily, and ``tables.spacegroup_number``, which asks spglib's offline Hall tables for
symbols in non-standard settings (``P2_1/n``, ``R-3m:H``) on first need.
"""

from symmcd.symmetry.lattice import (
    apply_k_constraints,
    crystal_system,
    k_fixed_values,
    k_mask,
    k_to_lattice,
    k_to_lattices,
    lattice_to_k,
    lattices_to_k,
)
from symmcd.symmetry.tables import SpaceGroup, WyckoffPosition, space_group, wyckoff_position
from symmcd.symmetry.wyckoff import Projection, nearest_point_on_position, project, replicate

__all__ = [
    "AsymmetricUnit",
    "Projection",
    "SpaceGroup",
    "WyckoffPosition",
    "apply_k_constraints",
    "crystal_system",
    "k_fixed_values",
    "k_mask",
    "k_to_lattice",
    "k_to_lattices",
    "lattice_to_k",
    "lattices_to_k",
    "nearest_point_on_position",
    "project",
    "replicate",
    "space_group",
    "wyckoff_position",
]


def __getattr__(name: str):
    if name == "AsymmetricUnit":
        from symmcd.symmetry.asymmetric_unit import AsymmetricUnit

        return AsymmetricUnit
    raise AttributeError(f"module 'symmcd.symmetry' has no attribute {name!r}")
