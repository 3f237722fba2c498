"""Batched projection onto Wyckoff positions and exact replication of orbits (numpy only).

A Wyckoff position with multiplicity m is the union of m affine components
C_j = {g_j(r(x))}, where r(x) = A x + b is its first component and g_j its orbit operations
(``tables.ORBIT_OPS``). Distances are Euclidean in fractional coordinates, modulo lattice
translations (not metric-aware: cheap, and the same for every lattice). Every function works
on flat arrays of sites; the only loop is over the 27 neighbouring lattice translations.
"""

from typing import NamedTuple

import numpy as np

from symmcd.errors import InputError
from symmcd.symmetry import tables as T

_SHIFTS = np.stack(np.meshgrid(*[[-1.0, 0.0, 1.0]] * 3, indexing="ij"), axis=-1).reshape(-1, 3)
_ROWS_PER_CHUNK = 100_000
_TIE_TOLERANCE = 1e-9


def _component_tables() -> dict[str, np.ndarray]:
    """Per orbit row: offset b_j, projector onto the direction space of C_j, inverse op."""
    owner = np.repeat(np.arange(T.NUM_WYCKOFF_POSITIONS), T.WP_MULTIPLICITY)
    rotation, translation = T.ORBIT_OPS[:, :, :3], T.ORBIT_OPS[:, :, 3]
    rep = T.WP_REPRESENTATIVE[owner]
    linear = rotation @ rep[:, :, :3]
    offset = np.einsum("rij,rj->ri", rotation, rep[:, :, 3]) + translation
    projector = linear @ np.linalg.pinv(linear)
    return {
        "offset": offset,
        "projector": projector,
        "inverse_rotation": np.linalg.inv(rotation),
        "translation": translation,
        "dof": T.WP_DOF[owner],
    }


_COMPONENT = _component_tables()
_FIRST_PROJECTOR = _COMPONENT["projector"][T.ORBIT_OFFSET[:-1]]


class Projection(NamedTuple):
    """Result of ``project``: chosen positions, representatives, and how far each moved."""

    global_wp_index: np.ndarray
    coords: np.ndarray
    symmetry_distance: np.ndarray
    coord_distance: np.ndarray


def wrap01(frac: np.ndarray) -> np.ndarray:
    """Fractional coordinates wrapped into [0, 1) (also for tiny negative values)."""
    wrapped = frac - np.floor(frac)
    return np.where(wrapped >= 1.0, 0.0, wrapped)


def _check_indices(global_wp_index: np.ndarray) -> np.ndarray:
    index = np.asarray(global_wp_index)
    if index.ndim != 1 or not np.issubdtype(index.dtype, np.integer):
        raise InputError(f"global Wyckoff indices must be a 1-d integer array, got {index.dtype}")
    if index.size and (index.min() < 0 or index.max() >= T.NUM_WYCKOFF_POSITIONS):
        raise InputError("global Wyckoff indices must lie in 0..1730")
    return index.astype(np.int64)


def _check_coords(coords: np.ndarray, n: int) -> np.ndarray:
    coords = np.asarray(coords, dtype=float)
    if coords.shape != (n, 3) or not np.all(np.isfinite(coords)):
        raise InputError(f"coords must be a finite ({n}, 3) array, got shape {coords.shape}")
    return coords


def orbit_rows(global_wp_index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ``tables.ORBIT_OPS`` for each orbit point of each site, and the site owning it."""
    multiplicity = T.WP_MULTIPLICITY[global_wp_index]
    owner = np.repeat(np.arange(len(global_wp_index)), multiplicity)
    first_row_of_owner = np.cumsum(multiplicity) - multiplicity
    rank = np.arange(len(owner)) - first_row_of_owner[owner]
    return T.ORBIT_OFFSET[global_wp_index][owner] + rank, owner


def replicate(global_wp_index: np.ndarray, coords: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All orbit points (sum m, 3) in [0, 1) of representatives ``coords`` (n, 3) and the
    index of the representative (orbit) each point belongs to."""
    index = _check_indices(global_wp_index)
    coords = _check_coords(coords, len(index))
    rows, owner = orbit_rows(index)
    ops = T.ORBIT_OPS[rows]
    frac = np.einsum("rij,rj->ri", ops[:, :, :3], coords[owner]) + ops[:, :, 3]
    return wrap01(frac), owner


def _nearest_on_components(rows: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nearest point of component ``rows`` to ``points`` (both per row), and its distance.

    Points (dof 0) and the general position (dof 3) need only the nearest lattice image; lines
    and planes are also tried against the 26 neighbouring translates.
    """
    offset, projector = _COMPONENT["offset"][rows], _COMPONENT["projector"][rows]
    delta = points - offset
    delta -= np.rint(delta)
    along = np.einsum("rij,rj->ri", projector, delta)
    distance = np.linalg.norm(delta - along, axis=1)
    partial = np.flatnonzero(np.isin(_COMPONENT["dof"][rows], (1, 2)))
    if len(partial):
        sub_projector, sub_delta = projector[partial], delta[partial]
        best_distance, best_along = distance[partial], along[partial]
        for shift in _SHIFTS:
            shifted = sub_delta + shift
            shifted_along = np.einsum("rij,rj->ri", sub_projector, shifted)
            shifted_distance = np.linalg.norm(shifted - shifted_along, axis=1)
            better = shifted_distance < best_distance - 1e-12
            best_distance = np.where(better, shifted_distance, best_distance)
            best_along = np.where(better[:, None], shifted_along, best_along)
        distance[partial], along[partial] = best_distance, best_along
    return offset + along, distance


def _to_first_component(rows: np.ndarray, index: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Map points on component ``rows`` back onto the first component, wrapped into [0, 1)."""
    inverse, translation = _COMPONENT["inverse_rotation"][rows], _COMPONENT["translation"][rows]
    on_first = np.einsum("rij,rj->ri", inverse, points - translation)
    rep = T.WP_REPRESENTATIVE[index]
    offset = rep[:, :, 3]
    cleaned = offset + np.einsum("rij,rj->ri", _FIRST_PROJECTOR[index], on_first - offset)
    return wrap01(np.where(T.WP_DOF[index][:, None] == 0, offset, cleaned))


def nearest_point_on_position(
    global_wp_index: np.ndarray, coords: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Nearest point of each site's Wyckoff position (any component, any lattice translate),
    mapped onto the first component: (projected (n, 3) in [0, 1), distance (n,))."""
    index = _check_indices(global_wp_index)
    coords = _check_coords(coords, len(index))
    projected = np.empty_like(coords)
    distance = np.empty(len(index))
    chunk = max(1, _ROWS_PER_CHUNK // T.MAX_MULTIPLICITY)
    for start in range(0, len(index), chunk):
        part = slice(start, start + chunk)
        projected[part], distance[part] = _nearest_chunk(index[part], coords[part])
    return projected, distance


def _nearest_chunk(index: np.ndarray, coords: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    rows, owner = orbit_rows(index)
    nearest, distance = _nearest_on_components(rows, coords[owner])
    order = np.lexsort((distance, owner))
    best = order[np.searchsorted(owner[order], np.arange(len(index)))]  # nearest row per site
    projected = _to_first_component(rows[best], index, nearest[best])
    return projected, distance[best]


def _candidate_table() -> np.ndarray:
    """(230, max positions per group) global indices of each group's positions, -1 padded."""
    counts = np.diff(T.SG_FIRST_WYCKOFF)
    table = np.full((T.NUM_SPACE_GROUPS, counts.max()), -1, dtype=np.int64)
    for sg in range(T.NUM_SPACE_GROUPS):
        table[sg, : counts[sg]] = np.arange(T.SG_FIRST_WYCKOFF[sg], T.SG_FIRST_WYCKOFF[sg + 1])
    return table


_CANDIDATES = _candidate_table()


def _site_probabilities(site_symmetry: np.ndarray, n: int) -> np.ndarray:
    """(n, 15, 13) one-hot or probability matrices from classes (n, 15) or (n, 15, 13)."""
    site = np.asarray(site_symmetry)
    if site.shape == (n, 15):
        if site.min(initial=0) < 0 or site.max(initial=0) > 12:
            raise InputError("site-symmetry classes must lie in 0..12")
        return np.eye(13)[site.astype(np.int64)]
    if site.shape == (n, 15, 13):
        return site.astype(float)
    raise InputError(f"site_symmetry must have shape ({n}, 15) or ({n}, 15, 13), got {site.shape}")


def project(spacegroups: np.ndarray, site_symmetry: np.ndarray, coords: np.ndarray) -> Projection:
    """Project each site onto the Wyckoff position of its group whose site symmetry is nearest
    (Frobenius distance of the 15 x 13 one-hot matrices); ties between positions with equal
    encodings are broken by the distance of ``coords`` to each tied position."""
    groups = np.asarray(spacegroups)
    if groups.ndim != 1 or (groups.size and (groups.min() < 1 or groups.max() > 230)):
        raise InputError("spacegroups must be a 1-d array of integers in 1..230")
    n = len(groups)
    probabilities = _site_probabilities(site_symmetry, n)
    coords = _check_coords(coords, n)

    candidates = _CANDIDATES[groups.astype(np.int64) - 1]
    valid = candidates >= 0
    classes = T.WP_SITE_SYMMETRY[np.where(valid, candidates, 0)]
    site_index = np.arange(n)[:, None, None]
    direction = np.arange(15)[None, None, :]
    overlap = probabilities[site_index, direction, classes].sum(axis=2)
    squared = (probabilities**2).sum(axis=(1, 2))[:, None] - 2.0 * overlap + 15.0
    symmetry_distance = np.where(valid, np.sqrt(np.maximum(squared, 0.0)), np.inf)

    best = symmetry_distance.min(axis=1, keepdims=True)
    tied = valid & (symmetry_distance <= best + _TIE_TOLERANCE)
    tied_site, tied_slot = np.nonzero(tied)
    tied_wp = candidates[tied_site, tied_slot]
    tied_coords, tied_distance = nearest_point_on_position(tied_wp, coords[tied_site])
    order = np.lexsort((tied_distance, tied_site))
    chosen = order[np.searchsorted(tied_site[order], np.arange(n))]
    return Projection(
        global_wp_index=tied_wp[chosen],
        coords=tied_coords[chosen],
        symmetry_distance=best[:, 0],
        coord_distance=tied_distance[chosen],
    )
