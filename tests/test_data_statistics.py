import json

import numpy as np
import pytest

from symmcd.data.dataset import CrystalRecord
from symmcd.data.statistics import (
    DatasetStatistics,
    allowed_site_symmetry_classes,
    compute_statistics,
)
from symmcd.errors import InputError
from symmcd.symmetry.tables import space_group


def _record(sg: int, letters: list[str], elements: list[int], k: list[float]) -> CrystalRecord:
    positions = [space_group(sg).wyckoff(letter) for letter in letters]
    multiplicity = np.array([p.multiplicity for p in positions])
    return CrystalRecord(
        id=f"{sg}-{''.join(letters)}",
        spacegroup=sg,
        k=np.array(k, dtype=float),
        orbit_element=np.array(elements),
        orbit_frac_coords=np.zeros((len(letters), 3)),
        orbit_wyckoff=np.array([p.global_index for p in positions]),
        orbit_multiplicity=multiplicity,
        orbit_site_symmetry=np.stack([p.site_symmetry for p in positions]),
        atom_element=np.repeat(elements, multiplicity),
        atom_frac_coords=np.zeros((int(multiplicity.sum()), 3)),
    )


@pytest.fixture(scope="module")
def stats() -> DatasetStatistics:
    records = [
        _record(225, ["a", "b"], [10, 16], [0, 0, 0, 0, 0, 1.7]),  # rock salt NaCl
        _record(225, ["a"], [28], [0, 0, 0, 0, 0, 1.3]),  # fcc Cu
        _record(1, ["a", "a", "a"], [7, 7, 13], [0.1, -0.2, 0.3, 0.0, 0.1, 1.5]),
    ]
    return compute_statistics(records)


def test_counts_sum_to_data(stats):
    assert stats.num_crystals == 3
    assert stats.spacegroup_counts[224] == 2 and stats.spacegroup_counts[0] == 1
    assert stats.num_orbits_counts[224, 2] == 1 and stats.num_orbits_counts[224, 1] == 1
    assert stats.num_atoms_counts[224, 8] == 1 and stats.num_atoms_counts[224, 4] == 1
    assert stats.element_counts.sum() == 6 and stats.element_counts[7] == 2
    assert stats.site_symmetry_counts.sum() == 6 * 15
    # k statistics only over free entries: the cubic crystals contribute to entry 5 only
    assert np.isclose(stats.k_mean[5], (1.7 + 1.3 + 1.5) / 3)
    assert np.isclose(stats.k_std[5], np.std([1.7, 1.3, 1.5]))
    # entry 0 is free in one crystal only: its std is 1, not a tiny sample estimate
    assert np.isclose(stats.k_mean[0], 0.1) and stats.k_std[0] == 1.0


def test_distributions_are_normalised_and_respect_allowed_classes(stats):
    assert np.isclose(stats.spacegroup_distribution()[224], 2 / 3)
    assert np.isclose(stats.element_marginals().sum(), 1)
    assert np.all(stats.element_marginals(smoothing=1.0) > 0)
    marginals = stats.site_symmetry_marginals()
    assert np.allclose(marginals.sum(axis=2), 1)
    allowed = allowed_site_symmetry_classes()
    assert np.all(marginals[~allowed] == 0)
    assert np.all(marginals[stats.site_symmetry_counts > 0] > 0.5 / 3)
    # a group never seen (Pnma, 62) still gets a valid distribution on its own classes
    assert np.all(marginals[61][allowed[61]] > 0)
    assert np.isclose(stats.num_orbits_distribution(225)[1], 0.5)
    assert np.isclose(stats.num_orbits_distribution(62).sum(), 1)
    with pytest.raises(InputError, match="231"):
        stats.num_orbits_distribution(231)


def test_dict_round_trip_is_json_safe(stats):
    data = json.loads(json.dumps(stats.to_dict()))
    restored = DatasetStatistics.from_dict(data)
    for name in ("spacegroup_counts", "num_orbits_counts", "site_symmetry_counts", "k_std"):
        assert np.array_equal(getattr(restored, name), getattr(stats, name))
    del data["k_mean"]
    with pytest.raises(InputError, match="k_mean"):
        DatasetStatistics.from_dict(data)
    with pytest.raises(InputError, match="empty"):
        compute_statistics([])
