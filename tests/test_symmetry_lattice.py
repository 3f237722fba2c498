"""Lattice <-> k-vector: exact round trips and crystal-system constraints."""

import numpy as np
import pandas as pd
import pytest
from pymatgen.core import Lattice
from shared_data import MP20

from symmcd.errors import InputError
from symmcd.symmetry.lattice import (
    HEXAGONAL_K1,
    apply_k_constraints,
    apply_k_constraints_batch,
    crystal_system,
    k_fixed_values,
    k_mask,
    k_to_lattice,
    k_to_lattices,
    lattice_to_k,
    lattices_to_k,
)


def _parameters(matrix: np.ndarray) -> np.ndarray:
    return np.array(Lattice(matrix).parameters)


def test_monoclinic_105_degrees_survives():
    lattice = Lattice.from_parameters(5.0, 6.0, 7.0, 90.0, 105.0, 90.0)
    k = lattice_to_k(lattice.matrix)
    assert abs(k[0]) < 1e-12 and abs(k[2]) < 1e-12
    assert np.allclose(_parameters(k_to_lattice(k)), [5, 6, 7, 90, 105, 90], atol=1e-9)


def test_hexagonal_fixed_entry_is_exact():
    lattice = Lattice.hexagonal(3.1, 5.2)
    k = lattice_to_k(lattice.matrix)
    assert np.isclose(k[0], HEXAGONAL_K1, atol=1e-12)
    assert np.allclose(k[1:4], 0.0, atol=1e-12)
    assert np.allclose(_parameters(k_to_lattice(k)), [3.1, 3.1, 5.2, 90, 90, 120], atol=1e-9)


def test_rotation_does_not_change_k():
    rng = np.random.default_rng(0)
    matrix = Lattice.from_parameters(4, 5, 6, 80, 95, 110).matrix
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    assert np.allclose(lattice_to_k(matrix), lattice_to_k(matrix @ q.T), atol=1e-12)


def test_random_triclinic_roundtrip_batched():
    rng = np.random.default_rng(1)
    k = rng.normal(scale=0.5, size=(500, 6))
    assert np.allclose(lattices_to_k(k_to_lattices(k)), k, atol=1e-10)
    lattices = k_to_lattices(k)
    assert np.allclose(lattices, np.swapaxes(lattices, 1, 2))


@pytest.mark.parametrize(
    ("number", "system", "mask"),
    [
        (1, "triclinic", [1, 1, 1, 1, 1, 1]),
        (14, "monoclinic", [0, 1, 0, 1, 1, 1]),
        (62, "orthorhombic", [0, 0, 0, 1, 1, 1]),
        (139, "tetragonal", [0, 0, 0, 0, 1, 1]),
        (166, "trigonal", [0, 0, 0, 0, 1, 1]),
        (194, "hexagonal", [0, 0, 0, 0, 1, 1]),
        (225, "cubic", [0, 0, 0, 0, 0, 1]),
    ],
)
def test_masks_and_systems(number, system, mask):
    assert crystal_system(number) == system
    assert k_mask(number).tolist() == [bool(m) for m in mask]
    k = apply_k_constraints(np.full(6, 0.3), number)
    assert np.array_equal(k[~k_mask(number)], k_fixed_values(number)[~k_mask(number)])
    assert np.all(k[k_mask(number)] == 0.3)


def test_constraints_match_the_metric_of_each_system():
    """Lattices built from constrained k have the metric their crystal system demands."""
    rng = np.random.default_rng(2)
    for number in (5, 30, 100, 160, 190, 210):
        k = apply_k_constraints(rng.normal(scale=0.3, size=6), number)
        a, b, c, alpha, beta, gamma = _parameters(k_to_lattice(k))
        system = crystal_system(number)
        if system == "monoclinic":
            assert np.allclose([alpha, gamma], 90)
        if system in ("orthorhombic", "tetragonal", "cubic"):
            assert np.allclose([alpha, beta, gamma], 90)
        if system in ("tetragonal", "cubic", "trigonal", "hexagonal"):
            assert np.isclose(a, b)
        if system in ("trigonal", "hexagonal"):
            assert np.allclose([alpha, beta, gamma], [90, 90, 120])
        if system == "cubic":
            assert np.isclose(a, c)


def test_batch_constraints():
    k = np.full((3, 6), 0.2)
    out = apply_k_constraints_batch(k, np.array([1, 194, 225]))
    assert np.allclose(out[0], 0.2) and np.isclose(out[1, 0], HEXAGONAL_K1)
    assert np.allclose(out[2], [0, 0, 0, 0, 0, 0.2])


@pytest.mark.parametrize("bad", [0, 231])
def test_bad_group(bad):
    with pytest.raises(InputError, match=str(bad)):
        k_mask(bad)


def test_singular_lattice_rejected():
    with pytest.raises(InputError, match="singular"):
        lattice_to_k(np.zeros((3, 3)))


def _mp20_lattices(names, nrows=None):
    from pymatgen.core import Structure

    matrices = []
    for name in names:
        frame = pd.read_csv(f"{MP20}/{name}", usecols=["cif"], nrows=nrows)
        matrices += [Structure.from_str(cif, fmt="cif").lattice.matrix for cif in frame["cif"]]
    return np.array(matrices)


def _max_errors(matrices):
    rebuilt = k_to_lattices(lattices_to_k(matrices))
    original = np.array([Lattice(m).parameters for m in matrices])
    errors = np.abs(np.array([Lattice(m).parameters for m in rebuilt]) - original)
    return errors[:, :3].max(), errors[:, 3:].max()


NO_SHARED = pytest.mark.skipif(
    not (MP20 / "test.csv").is_file(), reason="shared MP-20 data not present"
)


@NO_SHARED
def test_mp20_lattices_roundtrip_fast():
    lengths, angles = _max_errors(_mp20_lattices(["test.csv"], nrows=300))
    assert lengths < 1e-6 and angles < 1e-6


@pytest.mark.slow
@NO_SHARED
def test_mp20_all_lattices_roundtrip():
    lengths, angles = _max_errors(_mp20_lattices(["test.csv", "val.csv", "train_partial.csv"]))
    assert lengths < 1e-6 and angles < 1e-6
