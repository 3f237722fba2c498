"""From sampled asymmetric units to full-cell pymatgen Structures, vectorised over a batch.

Each node's sampled site symmetry is projected onto the nearest site symmetry that exists in its
space group, its coordinates onto the nearest point of that Wyckoff position
(``symmcd.symmetry.wyckoff.project``); the orbits are then replicated exactly
(``wyckoff.replicate``) and the lattice is built from k with the group's fixed entries.

A fixed point (a position without free parameters) holds at most one orbit: when several orbits
of a crystal project onto the same one, all but the closest move to their next-best position
(counted in ``reassigned_orbits``). Atoms that end up close to each other otherwise are not
repaired: the crystal is kept and its metadata says ``collapsed: true`` (shortest interatomic
distance below 0.5 A, also recorded), so that callers and evaluations can see and count them.
``symmetry_ok`` records whether spglib (symprec 0.1) finds exactly the sampled group and orbits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pymatgen.core import Element, Lattice, Structure

from symmcd.sampling.config import COLLAPSE_DISTANCE, ELEMENT_DECODINGS
from symmcd.sampling.writers import Orbit, SampledCrystal
from symmcd.symmetry import tables, wyckoff
from symmcd.symmetry.detect import symmetry_dataset
from symmcd.symmetry.lattice import apply_k_constraints_batch, k_to_lattices

SYMMETRY_CHECK_SYMPREC = 0.1  # the tolerance of tools/check_samples.py
ELEMENT_SYMBOLS = tuple(Element.from_Z(z).symbol for z in range(1, 101))


@dataclass
class AsymmetricUnits:
    """A batch of sampled asymmetric units as numpy arrays (nodes of crystal b contiguous)."""

    spacegroup: np.ndarray  # (B,) int, 1..230
    num_nodes: np.ndarray  # (B,) int
    k: np.ndarray  # (B, 6) float
    atom_types: np.ndarray  # (N,) int, Z - 1
    site_symmetry: np.ndarray  # (N, 15) classes or (N, 15, 13) probabilities
    frac_coords: np.ndarray  # (N, 3) float
    # (N, 100) the network's last clean-element distributions (charge-balanced decoding), if kept
    element_probs: np.ndarray | None = None

    @property
    def node_batch(self) -> np.ndarray:
        return np.repeat(np.arange(len(self.num_nodes)), self.num_nodes)


def unfold(
    units: AsymmetricUnits,
    fixed_wyckoff: np.ndarray | None = None,
    extra_metadata: list[dict] | None = None,
    element_decoding: str = "argmax",
) -> list[SampledCrystal]:
    """Project and replicate a batch of asymmetric units into full-cell crystals.

    With ``element_decoding="charge-balanced"`` (and ``units.element_probs``), each crystal whose
    composition fails SMACT's test takes the likeliest charge-balanced elements instead
    (``symmcd.sampling.charge_balance``); ``rebalanced_orbits`` counts the orbits changed.

    `fixed_wyckoff` (N,) global Wyckoff indices (-1 = free) pins nodes of a template to their
    position: only their coordinates are projected (ties between positions with the same site
    symmetry, such as 4a and 4b, must not move an orbit onto another one).
    """
    node_batch = units.node_batch
    node_groups = np.asarray(units.spacegroup)[node_batch]
    projection = wyckoff.project(node_groups, units.site_symmetry, units.frac_coords)
    if fixed_wyckoff is not None:
        projection = pin_positions(projection, np.asarray(fixed_wyckoff), units.frac_coords)
    projection, moved = separate_fixed_points(
        projection, node_batch, node_groups, units.site_symmetry, units.frac_coords
    )
    atom_types, rebalanced = decoded_elements(units, projection.global_wp_index, element_decoding)
    frac_coords, owner = wyckoff.replicate(projection.global_wp_index, projection.coords)
    k = apply_k_constraints_batch(np.asarray(units.k, dtype=float), units.spacegroup)
    lattices = k_to_lattices(k)

    atom_crystal = node_batch[owner]
    atom_order = np.argsort(atom_crystal, kind="stable")
    atom_bounds = np.searchsorted(atom_crystal[atom_order], np.arange(len(units.num_nodes) + 1))
    node_bounds = np.concatenate([[0], np.cumsum(units.num_nodes)])

    crystals = []
    for b in range(len(units.num_nodes)):
        atoms = atom_order[atom_bounds[b] : atom_bounds[b + 1]]
        nodes = slice(node_bounds[b], node_bounds[b + 1])
        species = [ELEMENT_SYMBOLS[t] for t in atom_types[owner[atoms]]]
        structure = Structure(Lattice(lattices[b]), species, frac_coords[atoms])
        metadata = crystal_metadata(
            int(units.spacegroup[b]),
            structure,
            atom_types[nodes],
            projection.global_wp_index[nodes],
            projection.symmetry_distance[nodes],
            projection.coord_distance[nodes],
        )
        metadata["reassigned_orbits"] = int(moved[nodes].sum())
        if rebalanced is not None:
            metadata["rebalanced_orbits"] = int(rebalanced[nodes].sum())
        if extra_metadata is not None:
            metadata.update(extra_metadata[b])
        orbits = crystal_orbits(
            atom_types[nodes], projection.global_wp_index[nodes], projection.coords[nodes]
        )
        crystals.append(SampledCrystal(structure, metadata, orbits))
    return crystals


def decoded_elements(
    units: AsymmetricUnits, global_wp_index: np.ndarray, element_decoding: str
) -> tuple[np.ndarray, np.ndarray | None]:
    """(N,) elements of the nodes under ``element_decoding`` and the (N,) mask of those changed
    from the sampled ones (None when the decoding is "argmax" or there are no probabilities)."""
    if element_decoding not in ELEMENT_DECODINGS:
        raise ValueError(f"element_decoding must be one of {ELEMENT_DECODINGS}")
    atom_types = np.asarray(units.atom_types).copy()
    if element_decoding == "argmax" or units.element_probs is None:
        return atom_types, None
    from symmcd.chemistry import composition_is_valid
    from symmcd.sampling.charge_balance import balanced_elements, composition_of

    multiplicities = tables.WP_MULTIPLICITY[global_wp_index]
    bounds = np.concatenate([[0], np.cumsum(units.num_nodes)])
    for begin, end in zip(bounds[:-1], bounds[1:], strict=True):
        nodes = slice(int(begin), int(end))
        if composition_is_valid(composition_of(atom_types[nodes], multiplicities[nodes])):
            continue
        balanced = balanced_elements(units.element_probs[nodes], multiplicities[nodes])
        if balanced is not None:
            atom_types[nodes] = balanced
    return atom_types, atom_types != np.asarray(units.atom_types)


def separate_fixed_points(
    projection: wyckoff.Projection,
    node_batch: np.ndarray,
    node_groups: np.ndarray,
    site_symmetry: np.ndarray,
    coords: np.ndarray,
) -> tuple[wyckoff.Projection, np.ndarray]:
    """Give every fixed point (dof 0) of a crystal to at most one orbit.

    Two orbits on one fixed point are not a valid asymmetric unit. Of the orbits projected onto
    the same fixed point, the one that moved least keeps it; each other one goes to the next
    best position of its group (smallest site-symmetry distance, then coordinate distance) that
    is not an occupied fixed point. Returns the new projection and the (N,) mask of moved nodes.
    """
    index = projection.global_wp_index
    order = np.lexsort((projection.coord_distance, index, node_batch))
    repeats = np.zeros(len(index), dtype=bool)
    repeats[order[1:]] = (node_batch[order[1:]] == node_batch[order[:-1]]) & (
        index[order[1:]] == index[order[:-1]]
    )
    moved = repeats & (tables.WP_DOF[index] == 0)
    if not moved.any():
        return projection, moved
    index, new_coords = index.copy(), projection.coords.copy()
    symmetry_distance = projection.symmetry_distance.copy()
    coord_distance = projection.coord_distance.copy()
    probabilities = site_probabilities(site_symmetry)
    pending = moved.copy()
    for node in np.flatnonzero(moved):
        settled = (node_batch == node_batch[node]) & ~pending
        occupied = index[settled & (tables.WP_DOF[index] == 0)]
        group = int(node_groups[node])
        candidates = np.arange(tables.SG_FIRST_WYCKOFF[group - 1], tables.SG_FIRST_WYCKOFF[group])
        candidates = candidates[~np.isin(candidates, occupied)]
        one_hot = np.eye(13)[tables.WP_SITE_SYMMETRY[candidates]]
        symmetry = np.linalg.norm(
            (one_hot - probabilities[node]).reshape(len(candidates), -1), axis=1
        )
        points, distances = wyckoff.nearest_point_on_position(
            candidates, np.repeat(coords[node][None], len(candidates), axis=0)
        )
        best = np.lexsort((distances, np.round(symmetry, 9)))[0]
        index[node], new_coords[node] = candidates[best], points[best]
        symmetry_distance[node], coord_distance[node] = symmetry[best], distances[best]
        pending[node] = False
    return wyckoff.Projection(index, new_coords, symmetry_distance, coord_distance), moved


def site_probabilities(site_symmetry: np.ndarray) -> np.ndarray:
    """(N, 15, 13) distributions from classes (N, 15) or probabilities (N, 15, 13)."""
    site = np.asarray(site_symmetry)
    return np.eye(13)[site.astype(np.int64)] if site.ndim == 2 else site.astype(float)


def crystal_orbits(
    atom_types: np.ndarray, global_wp_index: np.ndarray, coords: np.ndarray
) -> tuple[Orbit, ...]:
    """The orbits of one crystal (element, Wyckoff letter, multiplicity, representative)."""
    return tuple(
        Orbit(
            ELEMENT_SYMBOLS[int(t)],
            str(tables.WP_LETTER[g]),
            int(tables.WP_MULTIPLICITY[g]),
            tuple(float(x) for x in xyz),
        )
        for t, g, xyz in zip(atom_types, global_wp_index, coords, strict=True)
    )


def pin_positions(
    projection: wyckoff.Projection, fixed_wyckoff: np.ndarray, coords: np.ndarray
) -> wyckoff.Projection:
    """The projection with pinned nodes (index >= 0) moved onto their given position."""
    pinned = np.flatnonzero(fixed_wyckoff >= 0)
    if pinned.size == 0:
        return projection
    index = projection.global_wp_index.copy()
    projected = projection.coords.copy()
    symmetry_distance = projection.symmetry_distance.copy()
    coord_distance = projection.coord_distance.copy()
    index[pinned] = fixed_wyckoff[pinned]
    projected[pinned], coord_distance[pinned] = wyckoff.nearest_point_on_position(
        index[pinned], np.asarray(coords, dtype=float)[pinned]
    )
    symmetry_distance[pinned] = 0.0
    return wyckoff.Projection(index, projected, symmetry_distance, coord_distance)


def crystal_metadata(
    spacegroup: int,
    structure: Structure,
    atom_types: np.ndarray,
    global_wp_index: np.ndarray,
    symmetry_distance: np.ndarray,
    coord_distance: np.ndarray,
) -> dict:
    """The per-crystal record of samples.jsonl (without the file name)."""
    shortest = shortest_distance(structure)
    return {
        "spacegroup": spacegroup,
        "formula": structure.composition.reduced_formula,
        "wyckoff": wyckoff_label(spacegroup, atom_types, global_wp_index),
        "num_sites": len(structure),
        "num_orbits": len(atom_types),
        "symmetry_distance_mean": float(np.mean(symmetry_distance)),
        "symmetry_distance_max": float(np.max(symmetry_distance)),
        "coord_distance_mean": float(np.mean(coord_distance)),
        "coord_distance_max": float(np.max(coord_distance)),
        "min_distance": round(shortest, 4),
        "collapsed": bool(shortest < COLLAPSE_DISTANCE),
        "symmetry_ok": symmetry_holds(
            structure, spacegroup, tables.WP_MULTIPLICITY[global_wp_index]
        ),
    }


def symmetry_holds(structure: Structure, spacegroup: int, multiplicities: np.ndarray) -> bool:
    """Whether spglib (symprec 0.1) finds exactly `spacegroup`, with one orbit per sampled orbit
    of the same multiplicity. False for accidental supergroups, e.g. a chain of atoms on 2a and
    2b of P6_3/mmc that is really P6/mmm with half the cell."""
    dataset = symmetry_dataset(structure, symprec=SYMMETRY_CHECK_SYMPREC)
    if dataset is None or int(dataset.number) != spacegroup:
        return False
    orbit_sizes = np.unique(dataset.equivalent_atoms, return_counts=True)[1]
    return sorted(orbit_sizes.tolist()) == sorted(np.asarray(multiplicities).tolist())


def wyckoff_label(spacegroup: int, atom_types: np.ndarray, global_wp_index: np.ndarray) -> str:
    """A readable template, e.g. 'Fm-3m: Na 4a, Cl 4b' (orbits sorted by Z, then letter)."""
    orbits = sorted(
        (int(t), int(tables.WP_MULTIPLICITY[g]), str(tables.WP_LETTER[g]))
        for t, g in zip(atom_types, global_wp_index, strict=True)
    )
    sites = ", ".join(f"{ELEMENT_SYMBOLS[t]} {m}{letter}" for t, m, letter in orbits)
    return f"{tables.SG_SYMBOL[spacegroup - 1]}: {sites}"


def shortest_distance(structure: Structure) -> float:
    """Shortest interatomic distance under periodic boundaries (inf for a single atom whose
    periodic images are further than the cell's shortest lattice vector)."""
    if len(structure) < 2:
        return float(min(structure.lattice.abc))
    distances = structure.lattice.get_all_distances(structure.frac_coords, structure.frac_coords)
    np.fill_diagonal(distances, np.inf)
    return float(min(distances.min(), min(structure.lattice.abc)))
