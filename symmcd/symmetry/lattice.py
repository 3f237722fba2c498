"""Lattice matrix <-> k-vector, with the per crystal-system constraints on k.

With L the lattice matrix (rows a, b, c) and its polar decomposition L = exp(S) Q (Q
orthogonal), the rotation-free part is S = logm(L L^T) / 2, a symmetric matrix computed exactly
from the eigendecomposition of the metric G = L L^T. k holds the coefficients of S in the basis
B1..B6 below, so S = sum_i k_i B_i and the inverse lattice expm(S) has the same metric
exp(2 S) = G, hence the same lengths and angles. Conventional cells in the standard setting
(monoclinic unique axis b, hexagonal axes for trigonal groups) make some k entries zero or
fixed; ``k_mask`` marks the free ones.
"""

import numpy as np

from symmcd.errors import InputError

K_BASIS = np.array(
    [
        [[0, 1, 0], [1, 0, 0], [0, 0, 0]],
        [[0, 0, 1], [0, 0, 0], [1, 0, 0]],
        [[0, 0, 0], [0, 0, 1], [0, 1, 0]],
        [[1, 0, 0], [0, -1, 0], [0, 0, 0]],
        [[1, 0, 0], [0, 1, 0], [0, 0, -2]],
        [[1, 0, 0], [0, 1, 0], [0, 0, 1]],
    ],
    dtype=float,
)
# Dual basis: k_i = <S, K_DUAL_i> (Frobenius), since the B_i are orthogonal.
K_DUAL = K_BASIS / np.einsum("kij,kij->k", K_BASIS, K_BASIS)[:, None, None]

HEXAGONAL_K1 = -np.log(3.0) / 4.0

CRYSTAL_SYSTEMS = (
    "triclinic", "monoclinic", "orthorhombic", "tetragonal", "trigonal", "hexagonal", "cubic",
)  # fmt: skip
_LAST_GROUP_OF_SYSTEM = (2, 15, 74, 142, 167, 194, 230)

_FREE_K = {
    "triclinic": (1, 1, 1, 1, 1, 1),
    "monoclinic": (0, 1, 0, 1, 1, 1),
    "orthorhombic": (0, 0, 0, 1, 1, 1),
    "tetragonal": (0, 0, 0, 0, 1, 1),
    "trigonal": (0, 0, 0, 0, 1, 1),
    "hexagonal": (0, 0, 0, 0, 1, 1),
    "cubic": (0, 0, 0, 0, 0, 1),
}
_HEXAGONAL_FIXED_K = np.array([HEXAGONAL_K1, 0, 0, 0, 0, 0])


def crystal_system(spacegroup: int) -> str:
    """Crystal system of an ITA space-group number (trigonal R groups included)."""
    if not isinstance(spacegroup, int | np.integer) or not 1 <= spacegroup <= 230:
        raise InputError(f"space group must be an integer in 1..230, got {spacegroup!r}")
    return CRYSTAL_SYSTEMS[int(np.searchsorted(_LAST_GROUP_OF_SYSTEM, spacegroup))]


def k_mask(spacegroup: int) -> np.ndarray:
    """(6,) bool, True where k is free in this group's crystal system."""
    return np.array(_FREE_K[crystal_system(spacegroup)], dtype=bool)


def k_fixed_values(spacegroup: int) -> np.ndarray:
    """(6,) values of the fixed k entries (free entries hold 0)."""
    if crystal_system(spacegroup) in ("trigonal", "hexagonal"):
        return _HEXAGONAL_FIXED_K.copy()
    return np.zeros(6)


def apply_k_constraints(k: np.ndarray, spacegroup: int) -> np.ndarray:
    """Copy of k (6,) or (B, 6) with the fixed entries set to their exact values."""
    mask = k_mask(spacegroup)
    return np.where(mask, np.asarray(k, dtype=float), k_fixed_values(spacegroup))


def k_masks(spacegroups: np.ndarray) -> np.ndarray:
    """(B, 6) masks for a batch of space-group numbers."""
    table = np.stack([k_mask(n) for n in range(1, 231)])
    return table[np.asarray(spacegroups) - 1]


def k_fixed_values_batch(spacegroups: np.ndarray) -> np.ndarray:
    """(B, 6) fixed values for a batch of space-group numbers."""
    table = np.stack([k_fixed_values(n) for n in range(1, 231)])
    return table[np.asarray(spacegroups) - 1]


def apply_k_constraints_batch(k: np.ndarray, spacegroups: np.ndarray) -> np.ndarray:
    """(B, 6) k with each row's fixed entries set to its group's values."""
    return np.where(k_masks(spacegroups), k, k_fixed_values_batch(spacegroups))


def lattices_to_k(matrices: np.ndarray) -> np.ndarray:
    """(B, 6) k-vectors of lattice matrices (B, 3, 3) (rows = lattice vectors)."""
    matrices = np.asarray(matrices, dtype=float)
    metric = matrices @ np.swapaxes(matrices, -1, -2)
    eigenvalues, eigenvectors = np.linalg.eigh(metric)
    if np.any(eigenvalues <= 0):
        raise InputError("lattice matrix is singular (zero or negative cell volume)")
    log_half = 0.5 * np.log(eigenvalues)
    symmetric = np.einsum("bij,bj,bkj->bik", eigenvectors, log_half, eigenvectors)
    return np.einsum("bij,kij->bk", symmetric, K_DUAL)


def k_to_lattices(k: np.ndarray) -> np.ndarray:
    """(B, 3, 3) symmetric lattice matrices expm(sum_i k_i B_i) for k (B, 6)."""
    symmetric = np.einsum("bk,kij->bij", np.asarray(k, dtype=float), K_BASIS)
    eigenvalues, eigenvectors = np.linalg.eigh(symmetric)
    return np.einsum("bij,bj,bkj->bik", eigenvectors, np.exp(eigenvalues), eigenvectors)


def lattice_to_k(matrix: np.ndarray) -> np.ndarray:
    """(6,) k-vector of one lattice matrix (3, 3)."""
    return lattices_to_k(np.asarray(matrix, dtype=float)[None])[0]


def k_to_lattice(k: np.ndarray) -> np.ndarray:
    """(3, 3) lattice matrix of one k-vector (6,)."""
    return k_to_lattices(np.asarray(k, dtype=float)[None])[0]
