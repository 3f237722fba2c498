"""Unfolding sampled asymmetric units into full-cell structures."""

import numpy as np
import pytest
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from symmcd.sampling.unfold import AsymmetricUnits, unfold, wyckoff_label
from symmcd.symmetry import tables
from symmcd.symmetry.lattice import lattice_to_k


def site_classes(spacegroup: int, letter: str) -> np.ndarray:
    return tables.space_group(spacegroup).wyckoff(letter).site_symmetry


def rock_salt_and_noisy_copy() -> AsymmetricUnits:
    """Two crystals: exact NaCl (4a, 4b) and a CsCl-like P m-3m pair with noisy coordinates."""
    k_nacl = lattice_to_k(np.eye(3) * 5.64)
    k_cscl = lattice_to_k(np.eye(3) * 4.1) + np.array([0.01, -0.02, 0.0, 0.0, 0.0, 0.0])
    return AsymmetricUnits(
        spacegroup=np.array([225, 221]),
        num_nodes=np.array([2, 2]),
        k=np.stack([k_nacl, k_cscl]),
        atom_types=np.array([10, 16, 54, 16]),  # Na Cl | Cs Cl
        site_symmetry=np.stack(
            [site_classes(225, "a"), site_classes(225, "b")]
            + [site_classes(221, "a"), site_classes(221, "b")]
        ),
        frac_coords=np.array(
            [[0.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.02, 0.99, 0.0], [0.48, 0.5, 0.51]]
        ),
    )


def test_rock_salt_unfolds_to_fm3m_with_8_atoms():
    crystals = unfold(rock_salt_and_noisy_copy())
    nacl, cscl = crystals
    assert len(nacl.structure) == 8
    assert nacl.structure.composition.reduced_formula == "NaCl"
    assert SpacegroupAnalyzer(nacl.structure, symprec=0.1).get_space_group_number() == 225
    assert nacl.metadata["wyckoff"] == "Fm-3m: Na 4a, Cl 4b"
    assert nacl.metadata["coord_distance_max"] < 1e-9
    assert not nacl.metadata["collapsed"]
    np.testing.assert_allclose(nacl.structure.lattice.abc, [5.64] * 3, atol=1e-9)
    # k noise in fixed entries is removed, noisy coordinates are projected onto 1a / 1b
    assert SpacegroupAnalyzer(cscl.structure, symprec=0.01).get_space_group_number() == 221
    np.testing.assert_allclose(cscl.structure.lattice.angles, [90.0] * 3, atol=1e-9)
    assert cscl.metadata["coord_distance_max"] > 0.01
    assert cscl.metadata["num_sites"] == 2 and cscl.metadata["num_orbits"] == 2


def test_two_orbits_on_one_fixed_point_are_separated():
    units = rock_salt_and_noisy_copy()
    units.frac_coords[1] = [0.0, 0.0, 0.02]  # Cl sampled next to Na, with 4a's site symmetry
    units.site_symmetry[1] = site_classes(225, "a")
    nacl = unfold(units)[0]
    assert nacl.metadata["wyckoff"] == "Fm-3m: Na 4a, Cl 4b"
    assert nacl.metadata["reassigned_orbits"] == 1 and not nacl.metadata["collapsed"]
    assert SpacegroupAnalyzer(nacl.structure, symprec=0.1).get_space_group_number() == 225


def test_close_orbits_are_flagged_not_removed():
    general = tables.space_group(1).wyckoff("a").site_symmetry
    units = AsymmetricUnits(
        spacegroup=np.array([1]),
        num_nodes=np.array([2]),
        k=lattice_to_k(np.eye(3) * 4.0)[None],
        atom_types=np.array([7, 7]),
        site_symmetry=np.stack([general, general]),
        frac_coords=np.array([[0.1, 0.2, 0.3], [0.1, 0.2, 0.35]]),
    )
    crystal = unfold(units)[0]
    assert len(crystal.structure) == 2 and crystal.metadata["reassigned_orbits"] == 0
    assert crystal.metadata["collapsed"]
    assert crystal.metadata["min_distance"] == pytest.approx(0.2, abs=1e-6)


def test_wyckoff_label_sorts_by_element():
    a, b = tables.global_wyckoff_index(225, "a"), tables.global_wyckoff_index(225, "b")
    assert wyckoff_label(225, np.array([16, 10]), np.array([b, a])) == "Fm-3m: Na 4a, Cl 4b"


def test_orbit_cif_is_exact_and_readable_by_pymatgen_and_ase(tmp_path):
    from ase.io import read as ase_read
    from pymatgen.core import Structure

    from symmcd.sampling.writers import cif_text

    # wurtzite-like P6_3mc (186): Zn 2b, O 2b; plus rock salt from above
    k = lattice_to_k(np.array([[3.25, 0, 0], [-1.625, 2.8146, 0], [0, 0, 5.2]]))
    wurtzite = AsymmetricUnits(
        spacegroup=np.array([186]),
        num_nodes=np.array([2]),
        k=k[None],
        atom_types=np.array([29, 7]),
        site_symmetry=np.stack([site_classes(186, "b")] * 2),
        frac_coords=np.array([[1 / 3, 2 / 3, 0.0], [1 / 3, 2 / 3, 0.38]]),
    )
    crystals = unfold(rock_salt_and_noisy_copy()) + unfold(wurtzite)
    for i, crystal in enumerate(crystals):
        assert crystal.orbits is not None
        path = tmp_path / f"{i}.cif"
        path.write_text(cif_text(crystal))
        back = Structure.from_file(path)
        assert len(back) == crystal.metadata["num_sites"] == len(ase_read(path))
        expected = crystal.metadata["spacegroup"]
        assert SpacegroupAnalyzer(back, symprec=0.1).get_space_group_number() == expected
        np.testing.assert_allclose(back.lattice.abc, crystal.structure.lattice.abc, atol=1e-6)


def test_accidental_supergroup_is_flagged():
    """Si on 8c of Fm-3m is a simple cubic lattice of half the edge: really Pm-3m."""
    units = AsymmetricUnits(
        spacegroup=np.array([225]),
        num_nodes=np.array([1]),
        k=lattice_to_k(np.eye(3) * 5.0)[None],
        atom_types=np.array([13]),
        site_symmetry=site_classes(225, "c")[None],
        frac_coords=np.array([[0.25, 0.25, 0.25]]),
    )
    crystal = unfold(units)[0]
    assert crystal.metadata["wyckoff"] == "Fm-3m: Si 8c"
    assert not crystal.metadata["symmetry_ok"] and not crystal.metadata["collapsed"]
    assert unfold(rock_salt_and_noisy_copy())[0].metadata["symmetry_ok"]
