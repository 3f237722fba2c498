"""Training-set statistics: the priors that sampling draws from and the diffusion marginals.

``DatasetStatistics`` holds raw counts (numpy arrays) and turns them into distributions on demand.
It is stored inside checkpoints through ``to_dict`` / ``from_dict`` (plain JSON types only), so
that sampling needs nothing but the checkpoint.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

import numpy as np

from symmcd.errors import InputError
from symmcd.symmetry.encoding import NUM_DIRECTIONS, NUM_ELEMENTS, NUM_SITE_CLASSES
from symmcd.symmetry.lattice import k_masks
from symmcd.symmetry.tables import NUM_SPACE_GROUPS, WP_SITE_SYMMETRY, WP_SPACEGROUP

if TYPE_CHECKING:
    from symmcd.data.dataset import CrystalRecord

K_STD_FLOOR = 1e-3
SITE_SYMMETRY_SMOOTHING = 1e-3


def allowed_site_symmetry_classes() -> np.ndarray:
    """(230, 15, 13) bool: class c occurs on direction d in some Wyckoff position of the group."""
    allowed = np.zeros((NUM_SPACE_GROUPS, NUM_DIRECTIONS, NUM_SITE_CLASSES), dtype=bool)
    directions = np.broadcast_to(np.arange(NUM_DIRECTIONS), WP_SITE_SYMMETRY.shape)
    groups = np.broadcast_to((WP_SPACEGROUP - 1)[:, None], WP_SITE_SYMMETRY.shape)
    allowed[groups, directions, WP_SITE_SYMMETRY] = True
    return allowed


def _normalise(counts: np.ndarray, axis: int = -1) -> np.ndarray:
    total = counts.sum(axis=axis, keepdims=True)
    return counts / np.where(total > 0, total, 1)


@dataclass
class DatasetStatistics:
    """Counts over a training split (orbits = nodes of the asymmetric unit)."""

    spacegroup_counts: np.ndarray  # (230,)
    num_orbits_counts: np.ndarray  # (230, max_orbits + 1)
    num_atoms_counts: np.ndarray  # (230, max_atoms + 1), conventional cell
    element_counts: np.ndarray  # (100,), over orbits
    site_symmetry_counts: np.ndarray  # (230, 15, 13), over orbits
    k_mean: np.ndarray  # (6,), over free entries
    k_std: np.ndarray  # (6,), over free entries, floored at K_STD_FLOOR (see compute_statistics)
    num_crystals: int

    @property
    def max_orbits(self) -> int:
        return self.num_orbits_counts.shape[1] - 1

    @property
    def max_atoms(self) -> int:
        return self.num_atoms_counts.shape[1] - 1

    def to_dict(self) -> dict:
        """Plain JSON-safe dict (lists and numbers)."""
        return {
            f.name: value.tolist() if isinstance(value, np.ndarray) else value
            for f in fields(self)
            for value in [getattr(self, f.name)]
        }

    @classmethod
    def from_dict(cls, data: dict) -> DatasetStatistics:
        """Inverse of ``to_dict``; ``InputError`` when a key is missing or a shape is wrong."""
        names = [f.name for f in fields(cls)]
        missing = [name for name in names if name not in data]
        if missing:
            raise InputError(f"dataset statistics lack {missing}")
        integer_arrays = (
            "spacegroup_counts",
            "num_orbits_counts",
            "num_atoms_counts",
            "element_counts",
            "site_symmetry_counts",
        )
        values = {
            name: np.asarray(data[name], dtype=np.int64 if name in integer_arrays else np.float64)
            for name in names
            if name != "num_crystals"
        }
        stats = cls(**values, num_crystals=int(data["num_crystals"]))
        stats.check_shapes()
        return stats

    def check_shapes(self) -> None:
        expected = {
            "spacegroup_counts": (NUM_SPACE_GROUPS,),
            "element_counts": (NUM_ELEMENTS,),
            "site_symmetry_counts": (NUM_SPACE_GROUPS, NUM_DIRECTIONS, NUM_SITE_CLASSES),
            "k_mean": (6,),
            "k_std": (6,),
        }
        for name, shape in expected.items():
            if getattr(self, name).shape != shape:
                raise InputError(
                    f"dataset statistics: {name} has shape "
                    f"{getattr(self, name).shape}, expected {shape}"
                )
        for name in ("num_orbits_counts", "num_atoms_counts"):
            array = getattr(self, name)
            if array.ndim != 2 or array.shape[0] != NUM_SPACE_GROUPS:
                raise InputError(f"dataset statistics: {name} has shape {array.shape}")

    def spacegroup_distribution(self) -> np.ndarray:
        """(230,) probability of each space group (index = number - 1)."""
        return _normalise(self.spacegroup_counts.astype(np.float64))

    def element_marginals(self, smoothing: float = 0.0) -> np.ndarray:
        """(100,) element frequencies over orbits; ``smoothing`` is added to every count."""
        return _normalise(self.element_counts.astype(np.float64) + smoothing)

    def site_symmetry_marginals(self) -> np.ndarray:
        """(230, 15, 13) per group and direction, the distribution of site-symmetry classes.

        Counts of a group plus ``SITE_SYMMETRY_SMOOTHING`` (relative to that direction's count)
        on every class that some Wyckoff position of the group has on that direction, so classes
        a group can use but the data never showed keep a small non-zero mass, while classes no
        position of the group has stay exactly zero. A group without data uses the global
        marginal (all groups pooled) restricted to its allowed classes, then the same smoothing.
        """
        allowed = allowed_site_symmetry_classes()
        counts = self.site_symmetry_counts.astype(np.float64)
        pooled = _normalise(counts.sum(axis=0))
        no_data = counts.sum(axis=(1, 2)) == 0
        counts[no_data] = pooled[None] * allowed[no_data]
        counts = _normalise(counts)
        return _normalise(counts + SITE_SYMMETRY_SMOOTHING * allowed)

    def num_orbits_distribution(self, spacegroup: int) -> np.ndarray:
        """(max_orbits + 1,) distribution of the number of orbits for one group.

        A group without data falls back to the histogram pooled over all groups.
        """
        if not isinstance(spacegroup, int | np.integer) or not 1 <= spacegroup <= 230:
            raise InputError(f"space group must be an integer in 1..230, got {spacegroup!r}")
        row = self.num_orbits_counts[spacegroup - 1].astype(np.float64)
        if row.sum() == 0:
            row = self.num_orbits_counts.sum(axis=0).astype(np.float64)
        return _normalise(row)


def compute_statistics(records: Sequence[CrystalRecord]) -> DatasetStatistics:
    """Count space groups, orbits, atoms, elements and site symmetries; k mean/std.

    k mean and std are taken over the crystals whose group leaves that entry free; an entry free
    in fewer than two crystals gets mean 0 (when unseen) and std 1, so it is never over-scaled.
    """
    if len(records) == 0:
        raise InputError("cannot compute dataset statistics of an empty training split")
    spacegroups = np.array([r.spacegroup for r in records], dtype=np.int64)
    num_orbits = np.array([r.num_orbits for r in records], dtype=np.int64)
    num_atoms = np.array([r.num_atoms for r in records], dtype=np.int64)
    orbit_groups = np.repeat(spacegroups - 1, num_orbits)
    elements = np.concatenate([r.orbit_element for r in records]).astype(np.int64)
    site_symmetry = np.concatenate([r.orbit_site_symmetry for r in records]).astype(np.int64)

    num_orbits_counts = np.zeros((NUM_SPACE_GROUPS, num_orbits.max() + 1), dtype=np.int64)
    np.add.at(num_orbits_counts, (spacegroups - 1, num_orbits), 1)
    num_atoms_counts = np.zeros((NUM_SPACE_GROUPS, num_atoms.max() + 1), dtype=np.int64)
    np.add.at(num_atoms_counts, (spacegroups - 1, num_atoms), 1)
    site_symmetry_counts = np.zeros(
        (NUM_SPACE_GROUPS, NUM_DIRECTIONS, NUM_SITE_CLASSES), dtype=np.int64
    )
    directions = np.broadcast_to(np.arange(NUM_DIRECTIONS), site_symmetry.shape)
    groups = np.broadcast_to(orbit_groups[:, None], site_symmetry.shape)
    np.add.at(site_symmetry_counts, (groups, directions, site_symmetry), 1)

    k = np.array([r.k for r in records], dtype=np.float64)
    free = k_masks(spacegroups)
    free_count = free.sum(axis=0)
    k_mean = np.where(free, k, 0).sum(axis=0) / np.maximum(free_count, 1)
    k_var = np.where(free, (k - k_mean) ** 2, 0).sum(axis=0) / np.maximum(free_count, 1)
    return DatasetStatistics(
        spacegroup_counts=np.bincount(spacegroups - 1, minlength=NUM_SPACE_GROUPS),
        num_orbits_counts=num_orbits_counts,
        num_atoms_counts=num_atoms_counts,
        element_counts=np.bincount(elements, minlength=NUM_ELEMENTS),
        site_symmetry_counts=site_symmetry_counts,
        k_mean=k_mean,
        k_std=np.where(free_count >= 2, np.maximum(np.sqrt(k_var), K_STD_FLOOR), 1.0),
        num_crystals=len(records),
    )
