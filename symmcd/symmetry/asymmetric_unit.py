"""``AsymmetricUnit``: a crystal as space group + k-vector + one site per crystallographic orbit.

``from_structure`` finds the group with spglib, takes spglib's standardised conventional cell in
the setting of symmcd's tables (``SpaceGroup.hall_number``), and assigns every atom to an orbit
and a Wyckoff position with symmcd's own tables, so that representatives lie exactly on the first
component of their position and ``to_structure`` rebuilds the cell by exact replication.
"""

from dataclasses import dataclass

import numpy as np
from pymatgen.core import Element, Lattice, Structure

from symmcd.errors import InputError, StructureError, SymmetryError
from symmcd.symmetry import tables as T
from symmcd.symmetry.detect import symmetry_dataset
from symmcd.symmetry.encoding import NUM_ELEMENTS
from symmcd.symmetry.lattice import apply_k_constraints, k_mask, k_to_lattice, lattice_to_k
from symmcd.symmetry.wyckoff import nearest_point_on_position, replicate, wrap01

K_FIXED_TOLERANCE = 1e-4
MAX_IDEALISATION_PASSES = 3  # re-analyses of an idealised cell that spglib finds more symmetric


@dataclass(frozen=True, eq=False)
class AsymmetricUnit:
    """A symmetric crystal in its conventional cell (standard setting of symmcd's tables).

    ``k`` (6,) encodes the lattice (``symmcd.symmetry.lattice``); site i is element
    ``species[i]`` at ``frac_coords[i]`` (on the first component of Wyckoff position
    ``wyckoff_letters[i]`` of ``spacegroup``) and stands for its whole orbit.
    """

    spacegroup: int
    k: np.ndarray
    species: tuple[str, ...]
    frac_coords: np.ndarray
    wyckoff_letters: tuple[str, ...]

    def __post_init__(self):
        group = T.space_group(self.spacegroup)
        k = np.array(self.k, dtype=float)
        coords = np.array(self.frac_coords, dtype=float).reshape(-1, 3)
        species, letters = tuple(self.species), tuple(self.wyckoff_letters)
        if k.shape != (6,) or not np.all(np.isfinite(k)):
            raise InputError(f"k must be 6 finite numbers, got {self.k!r}")
        if not len(species) == len(letters) == len(coords):
            raise InputError(
                f"{len(species)} species, {len(letters)} Wyckoff letters and {len(coords)} "
                "coordinates must have the same length"
            )
        for symbol in species:
            _check_element(symbol)
        indices = tuple(group.wyckoff(letter).index for letter in letters)
        k.setflags(write=False)
        coords.setflags(write=False)
        object.__setattr__(self, "spacegroup", group.number)
        object.__setattr__(self, "k", k)
        object.__setattr__(self, "species", species)
        object.__setattr__(self, "frac_coords", coords)
        object.__setattr__(self, "wyckoff_letters", letters)
        object.__setattr__(self, "_indices", np.array(indices, dtype=np.int64))

    @property
    def wyckoff_indices(self) -> np.ndarray:
        """(n,) index of each site's Wyckoff position within its group (0 = general)."""
        return self._indices

    @property
    def global_wyckoff_indices(self) -> np.ndarray:
        """(n,) global Wyckoff index (0..1730) of each site."""
        return T.SG_FIRST_WYCKOFF[self.spacegroup - 1] + self._indices

    @property
    def multiplicities(self) -> np.ndarray:
        """(n,) number of atoms in the conventional cell that each site stands for."""
        return T.WP_MULTIPLICITY[self.global_wyckoff_indices]

    @property
    def site_symmetry(self) -> np.ndarray:
        """(n, 15) site-symmetry classes (order in ``symmcd.symmetry.encoding``)."""
        return T.WP_SITE_SYMMETRY[self.global_wyckoff_indices]

    @property
    def lattice_matrix(self) -> np.ndarray:
        """(3, 3) symmetric lattice matrix expm(S(k)), rows = lattice vectors."""
        return k_to_lattice(self.k)

    @property
    def num_orbits(self) -> int:
        """Number of sites of the asymmetric unit (one per orbit)."""
        return len(self.species)

    @property
    def num_sites(self) -> int:
        """Number of atoms in the conventional cell."""
        return int(self.multiplicities.sum())

    @property
    def template(self) -> tuple[int, tuple[str, ...]]:
        """Space group and sorted Wyckoff letters: the crystal's symmetry template."""
        return self.spacegroup, tuple(sorted(self.wyckoff_letters))

    def to_structure(self) -> Structure:
        """The conventional cell as a pymatgen Structure, rebuilt by exact replication."""
        frac, owner = replicate(self.global_wyckoff_indices, self.frac_coords)
        species = [self.species[i] for i in owner]
        return Structure(Lattice(self.lattice_matrix), species, frac)

    def to_dict(self) -> dict:
        """JSON-ready dictionary; ``from_dict`` inverts it."""
        return {
            "spacegroup": self.spacegroup,
            "k": self.k.tolist(),
            "species": list(self.species),
            "frac_coords": self.frac_coords.tolist(),
            "wyckoff_letters": list(self.wyckoff_letters),
        }

    @classmethod
    def from_dict(cls, data: dict) -> "AsymmetricUnit":
        """Inverse of ``to_dict`` (``InputError`` naming a missing key)."""
        keys = ("spacegroup", "k", "species", "frac_coords", "wyckoff_letters")
        missing = [key for key in keys if key not in data]
        if missing:
            raise InputError(f"asymmetric-unit dictionary lacks {', '.join(missing)}")
        return cls(**{key: data[key] for key in keys})

    def __repr__(self) -> str:
        sites = " ".join(
            f"{s}{m}{w}"
            for s, m, w in zip(self.species, self.multiplicities, self.wyckoff_letters, strict=True)
        )
        return f"AsymmetricUnit(sg={self.spacegroup}, {sites})"

    @classmethod
    def from_structure(
        cls, structure: Structure, symprec: float = 0.1, angle_tolerance: float = 5.0
    ) -> "AsymmetricUnit":
        """Asymmetric unit of an ordered structure (``StructureError`` for disorder, vacancies,
        elements beyond Z = 100; ``SymmetryError`` when the orbits cannot be assigned).

        The group is that of the idealised cell: spglib's tolerance is not transitive, so
        idealising a crystal in the group spglib finds can bring it within ``symprec`` of a
        supergroup (14 of the 9,046 MP-20 test crystals, e.g. Cmm2 -> Pm-3m). The analysis is
        then repeated on the idealised cell, so that the unit's group is the one spglib finds
        in ``to_structure()`` and the encoding of a training crystal matches its geometry.
        """
        unit = cls._from_structure_once(structure, symprec, angle_tolerance)
        for _ in range(MAX_IDEALISATION_PASSES):
            rebuilt = unit.to_structure()
            cell = (rebuilt.lattice.matrix, rebuilt.frac_coords, rebuilt.atomic_numbers)
            found = symmetry_dataset(cell, symprec, angle_tolerance)
            if found is None or int(found.number) == unit.spacegroup:
                break
            unit = cls._from_structure_once(rebuilt, symprec, angle_tolerance)
        return unit

    @classmethod
    def _from_structure_once(
        cls, structure: Structure, symprec: float, angle_tolerance: float
    ) -> "AsymmetricUnit":
        """One pass of spglib's analysis: the group it finds, cell and orbits idealised in it."""
        numbers = _atomic_numbers(structure)
        cell = (structure.lattice.matrix, structure.frac_coords, numbers)
        found = symmetry_dataset(cell, symprec, angle_tolerance)
        if found is None:
            raise SymmetryError(f"spglib found no symmetry for {structure.formula}")
        number = int(found.number)
        hall_number = int(T.SG_HALL_NUMBER[number - 1])
        dataset = symmetry_dataset(cell, symprec, angle_tolerance, hall_number)
        if dataset is None or int(dataset.number) != number:
            raise SymmetryError(f"spglib gave no standard setting of group {number}")
        lattice = np.asarray(dataset.std_lattice, dtype=float)
        k = lattice_to_k(lattice)
        fixed = apply_k_constraints(k, number)
        if np.abs(fixed - k)[~k_mask(number)].max(initial=0.0) > K_FIXED_TOLERANCE:
            raise SymmetryError(f"standard cell of group {number} breaks the lattice constraints")
        lattice = k_to_lattice(fixed)
        species = [Element.from_Z(int(z)).symbol for z in dataset.std_types]
        orbits = assign_orbits(number, lattice, np.asarray(dataset.std_positions), species, symprec)
        global_index, coords, orbit_species = orbits
        letters = tuple(str(T.WP_LETTER[g]) for g in global_index)
        return cls(number, fixed, tuple(orbit_species), coords, letters)


def _check_element(symbol: str) -> None:
    """``StructureError`` unless ``symbol`` is an element with 1 <= Z <= 100."""
    try:
        z = Element(symbol).Z
    except (ValueError, KeyError):
        raise StructureError(f"unknown element {symbol!r}") from None
    if not 1 <= z <= NUM_ELEMENTS:
        raise StructureError(f"element {symbol} (Z = {z}) is beyond Z = {NUM_ELEMENTS}")


def _atomic_numbers(structure: Structure) -> np.ndarray:
    """Atomic number of each site; ``StructureError`` for anything but one element per site."""
    if not isinstance(structure, Structure):
        raise StructureError(f"expected a pymatgen Structure, got {type(structure).__name__}")
    if len(structure) == 0:
        raise StructureError("structure has no sites")
    numbers = []
    for i, site in enumerate(structure):
        composition = site.species
        if len(composition) != 1:
            raise StructureError(f"site {i} is disordered ({composition.formula})")
        specie, occupancy = next(iter(composition.items()))
        if not np.isclose(occupancy, 1.0):
            raise StructureError(f"site {i} has partial occupancy {occupancy:g} (vacancy)")
        element = getattr(specie, "element", specie)
        if not isinstance(element, Element):
            raise StructureError(f"site {i} holds {specie}, which is not an element")
        _check_element(element.symbol)
        numbers.append(element.Z)
    return np.array(numbers)


def _cartesian_distances(lattice: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) Cartesian distances between fractional points, nearest images."""
    d = a[:, None, :] - b[None, :, :]
    d -= np.rint(d)
    return np.linalg.norm(d @ lattice, axis=-1)


def assign_orbits(
    spacegroup: int, lattice: np.ndarray, frac: np.ndarray, species: list[str], tol: float
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Split the atoms of a conventional cell into orbits.

    For each unassigned atom, try the Wyckoff positions of the group from the most special to
    the general one: project the atom onto the position; accept it if the atom lies within
    ``tol`` (Angstrom) of the position and the replicated orbit matches distinct unassigned atoms
    of the same element one to one. Returns global Wyckoff indices, representatives on the first
    component, and the element of each orbit.
    """
    first, last = T.SG_FIRST_WYCKOFF[spacegroup - 1], T.SG_FIRST_WYCKOFF[spacegroup]
    candidates = np.arange(last - 1, first - 1, -1)
    species_array = np.array(species)
    assigned = np.zeros(len(frac), dtype=bool)
    orbit_wp, orbit_coords, orbit_species = [], [], []
    for atom in range(len(frac)):
        if assigned[atom]:
            continue
        atom_coords = np.repeat(frac[atom][None], len(candidates), axis=0)
        representatives, _ = nearest_point_on_position(candidates, atom_coords)
        for wp, rep in zip(candidates, representatives, strict=True):
            orbit, _ = replicate(np.array([wp]), rep[None])
            if _cartesian_distances(lattice, frac[atom][None], orbit).min() > tol:
                continue
            matched = _match_orbit(
                lattice, orbit, frac, species_array, species[atom], assigned, tol
            )
            if matched is not None:
                assigned[matched] = True
                orbit_wp.append(int(wp))
                orbit_coords.append(rep)
                orbit_species.append(species[atom])
                break
        else:
            raise SymmetryError(
                f"atom {atom} ({species[atom]} at {np.round(frac[atom], 4).tolist()}) fits no "
                f"Wyckoff position of space group {spacegroup}"
            )
    return np.array(orbit_wp), wrap01(np.array(orbit_coords)), orbit_species


def _match_orbit(
    lattice: np.ndarray,
    orbit: np.ndarray,
    frac: np.ndarray,
    species: np.ndarray,
    element: str,
    assigned: np.ndarray,
    tol: float,
) -> np.ndarray | None:
    """Indices of distinct unassigned atoms of ``element`` within ``tol`` of each orbit point
    (one atom per point), or None if there are none."""
    available = np.flatnonzero(~assigned & (species == element))
    if len(available) < len(orbit):
        return None
    distances = _cartesian_distances(lattice, orbit, frac[available])
    nearest = distances.argmin(axis=1)
    if distances[np.arange(len(orbit)), nearest].max() > tol:
        return None
    if len(np.unique(nearest)) != len(orbit):
        return None
    return available[nearest]
