"""AsymmetricUnit: round trips on MP-20, idealisation, and rejected inputs."""

import json
import warnings

import numpy as np
import pandas as pd
import pytest
import spglib
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import DummySpecies, Lattice, Structure
from shared_data import MP20

from symmcd import AsymmetricUnit
from symmcd.errors import InputError, StructureError
from symmcd.symmetry import tables as T
from symmcd.symmetry.lattice import k_fixed_values, k_mask, lattice_to_k


def _rocksalt() -> AsymmetricUnit:
    k = lattice_to_k(Lattice.cubic(5.64).matrix)
    return AsymmetricUnit(225, k, ("Na", "Cl"), [[0, 0, 0], [0.5, 0.5, 0.5]], ("a", "b"))


def test_rocksalt_properties():
    unit = _rocksalt()
    assert unit.num_orbits == 2 and unit.num_sites == 8
    assert unit.multiplicities.tolist() == [4, 4]
    last = len(T.space_group(225).wyckoff_positions) - 1
    assert unit.wyckoff_indices.tolist() == [last, last - 1]
    assert unit.site_symmetry.shape == (2, 15)
    assert unit.template == (225, ("a", "b"))
    assert np.allclose(unit.lattice_matrix, 5.64 * np.eye(3))
    structure = unit.to_structure()
    assert structure.composition.reduced_formula == "NaCl" and len(structure) == 8
    assert "Na4a" in repr(unit)


def test_dict_roundtrip_is_json_ready():
    unit = _rocksalt()
    again = AsymmetricUnit.from_dict(json.loads(json.dumps(unit.to_dict())))
    assert again.to_dict() == unit.to_dict()
    with pytest.raises(InputError, match="wyckoff_letters"):
        AsymmetricUnit.from_dict({"spacegroup": 1, "k": [0] * 6, "species": [], "frac_coords": []})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"spacegroup": 231}, "231"),
        ({"wyckoff_letters": ("a", "z")}, "'z'"),
        ({"species": ("Na", "Xx")}, "Xx"),
        ({"species": ("Na",)}, "same length"),
        ({"k": [0, 0, 0]}, "k must"),
    ],
)
def test_invalid_fields(kwargs, message):
    fields = _rocksalt().to_dict() | kwargs
    with pytest.raises(InputError, match=message):
        AsymmetricUnit(**fields)


def _cubic(species) -> Structure:
    return Structure(Lattice.cubic(4.0), species, [[0, 0, 0], [0.5, 0.5, 0.5]])


@pytest.mark.parametrize(
    ("species", "message"),
    [
        ([{"Fe": 0.5, "Ni": 0.5}, "O"], "disordered"),
        ([{"Fe": 0.5}, "O"], "partial occupancy"),
        ([DummySpecies("X"), "O"], "not an element"),
        (["Md", "O"], "Z = 101"),
    ],
)
def test_rejected_structures(species, message):
    with pytest.raises(StructureError, match=message):
        AsymmetricUnit.from_structure(_cubic(species))


def _check_roundtrip(cif: str, recorded: int) -> None:
    structure = Structure.from_str(cif, fmt="cif")
    unit = AsymmetricUnit.from_structure(structure, symprec=0.1)
    assert unit.spacegroup == recorded
    fixed = ~k_mask(unit.spacegroup)
    assert np.array_equal(unit.k[fixed], k_fixed_values(unit.spacegroup)[fixed])
    rebuilt = unit.to_structure()
    assert StructureMatcher().fit(structure, rebuilt)
    cell = (rebuilt.lattice.matrix, rebuilt.frac_coords, rebuilt.atomic_numbers)
    assert spglib.get_symmetry_dataset(cell, symprec=0.1).number == recorded
    # idealised: representatives exactly on their positions, so no near-duplicate atoms
    assert rebuilt.distance_matrix[np.triu_indices(len(rebuilt), 1)].min(initial=9) > 0.5


def _mp20_rows(name: str, nrows: int, skip: int = 0):
    """(cif, recorded group) rows of a shared MP-20 split; none (the tests skip) without it."""
    if not (MP20 / name).is_file():
        return []
    frame = pd.read_csv(f"{MP20}/{name}", nrows=nrows, skiprows=range(1, skip + 1))
    return list(zip(frame["cif"], frame["spacegroup.number"], strict=True))


@pytest.mark.parametrize(("cif", "recorded"), _mp20_rows("val.csv", 80))
def test_mp20_roundtrip(cif, recorded):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _check_roundtrip(cif, recorded)


@pytest.mark.slow
@pytest.mark.skipif(not (MP20 / "val.csv").is_file(), reason="shared MP-20 data not present")
def test_mp20_roundtrip_many():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for cif, recorded in _mp20_rows("val.csv", 1500, skip=80):
            _check_roundtrip(cif, recorded)


def test_group_is_that_of_the_idealised_cell():
    """mp-998306 is Amm2 to spglib (symprec 0.1), but its Amm2-idealised cell is Pm-3m within
    the same tolerance: the unit takes the group its own rebuilt cell has."""
    from symmcd.evaluation.io import PACKAGE_DATA

    frame = pd.read_csv(PACKAGE_DATA / "test.csv.gz")
    cif = frame.loc[frame["material_id"] == "mp-998306", "cif"].iloc[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        structure = Structure.from_str(cif, fmt="cif")
        original = spglib.get_symmetry_dataset(
            (structure.lattice.matrix, structure.frac_coords, structure.atomic_numbers),
            symprec=0.1,
            angle_tolerance=5.0,
        )
        unit = AsymmetricUnit.from_structure(structure)
        rebuilt = unit.to_structure()
        cell = (rebuilt.lattice.matrix, rebuilt.frac_coords, rebuilt.atomic_numbers)
        assert original.number == 38
        assert unit.spacegroup == 221
        assert spglib.get_symmetry_dataset(cell, symprec=0.1).number == 221
        assert StructureMatcher().fit(structure, rebuilt)


def test_incomplete_orbit_raises_symmetry_error():
    from symmcd.errors import SymmetryError
    from symmcd.symmetry.asymmetric_unit import assign_orbits

    with pytest.raises(SymmetryError, match="space group 225"):
        assign_orbits(225, 4.0 * np.eye(3), np.array([[0.0, 0.0, 0.0]]), ["Na"], 0.1)


def test_assign_orbits_finds_special_positions():
    from symmcd.symmetry.asymmetric_unit import assign_orbits

    fcc = np.array([[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]])
    frac = np.concatenate([fcc, (fcc + 0.25) % 1, (fcc + 0.75) % 1])  # fluorite
    wps, coords, species = assign_orbits(225, 5.0 * np.eye(3), frac, ["Ca"] * 4 + ["F"] * 8, 0.1)
    assert [str(T.WP_LETTER[g]) for g in wps] == ["a", "c"]
    assert species == ["Ca", "F"]
    assert np.allclose(coords[0], 0.0)
