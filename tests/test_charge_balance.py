"""Charge-balanced decoding of the last element draw."""

import dataclasses

import numpy as np
import pytest

from symmcd.errors import InputError
from symmcd.sampling.charge_balance import balanced_elements, composition_of
from symmcd.sampling.config import SamplingConfig
from symmcd.sampling.unfold import AsymmetricUnits, unfold
from symmcd.symmetry import tables
from symmcd.symmetry.lattice import lattice_to_k

NA, MG, CL, O, CS = 10, 11, 16, 7, 54  # Z - 1


def beliefs(*rows: dict[int, float]) -> np.ndarray:
    """(n, 100) distributions from {element: probability} rows."""
    probs = np.zeros((len(rows), 100))
    for i, row in enumerate(rows):
        for element, p in row.items():
            probs[i, element] = p
    return probs


def test_composition_of_counts_multiplicities():
    composition = composition_of(np.array([MG, CL, CL]), np.array([4, 4, 4]))
    assert composition.reduced_formula == "MgCl2" and composition.num_atoms == 12


def test_balanced_argmax_is_kept():
    probs = beliefs({NA: 0.9, MG: 0.1}, {CL: 0.6, O: 0.4})
    np.testing.assert_array_equal(balanced_elements(probs, np.array([4, 4])), [NA, CL])


def test_most_probable_balanced_assignment_wins():
    # Na4Cl8 and Na4O8 fail SMACT; Mg4Cl8 (MgCl2) passes, Mg4O8 does not
    probs = beliefs({NA: 0.9, MG: 0.1}, {CL: 0.6, O: 0.4})
    np.testing.assert_array_equal(balanced_elements(probs, np.array([4, 8])), [MG, CL])


def test_unlikely_elements_are_not_candidates():
    probs = beliefs({NA: 0.99, MG: 0.01}, {CL: 1.0})
    assert balanced_elements(probs, np.array([4, 8]), min_probability=0.02) is None
    np.testing.assert_array_equal(
        balanced_elements(probs, np.array([4, 8]), min_probability=0.005), [MG, CL]
    )


def nacl_with_too_much_chlorine() -> AsymmetricUnits:
    """Fm-3m: Na 4a, Cl 8c (NaCl2, not charge balanced); the network also believed in Mg."""
    site = [tables.space_group(225).wyckoff(letter).site_symmetry for letter in ("a", "c")]
    return AsymmetricUnits(
        spacegroup=np.array([225]),
        num_nodes=np.array([2]),
        k=lattice_to_k(np.eye(3) * 5.6)[None],
        atom_types=np.array([NA, CL]),
        site_symmetry=np.stack(site),
        frac_coords=np.array([[0.0, 0.0, 0.0], [0.25, 0.25, 0.25]]),
        element_probs=beliefs({NA: 0.7, MG: 0.3}, {CL: 0.9, O: 0.1}),
    )


def test_unfold_decodes_charge_balanced_elements():
    units = nacl_with_too_much_chlorine()
    plain = unfold(units)[0]
    assert plain.structure.composition.reduced_formula == "NaCl2"
    assert "rebalanced_orbits" not in plain.metadata
    balanced = unfold(units, element_decoding="charge-balanced")[0]
    assert balanced.structure.composition.reduced_formula == "MgCl2"
    assert balanced.metadata["rebalanced_orbits"] == 1
    assert balanced.metadata["wyckoff"] == "Fm-3m: Mg 4a, Cl 8c"
    assert balanced.orbits[0].element == "Mg"
    np.testing.assert_allclose(balanced.structure.frac_coords, plain.structure.frac_coords)
    # without the network's beliefs there is nothing to decode from
    bare = dataclasses.replace(units, element_probs=None)
    assert (
        unfold(bare, element_decoding="charge-balanced")[0].metadata.get("rebalanced_orbits")
        is None
    )


def test_element_decoding_is_checked():
    with pytest.raises(InputError, match="element_decoding"):
        SamplingConfig(element_decoding="greedy")
