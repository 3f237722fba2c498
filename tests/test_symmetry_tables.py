"""Tables: distinct encodings, settings, and exact replication of every Wyckoff position."""

import numpy as np
import pytest
import spglib

from symmcd.errors import InputError
from symmcd.symmetry import tables as T
from symmcd.symmetry.encoding import SPACE_GROUP_ENCODING_SIZE
from symmcd.symmetry.wyckoff import replicate


def _same_set_mod1(a: np.ndarray, b: np.ndarray, tol: float = 1e-6) -> bool:
    """True if point sets a and b (k, 3) are equal modulo lattice translations."""
    if len(a) != len(b):
        return False
    d = a[:, None, :] - b[None, :, :]
    close = np.abs(d - np.rint(d)).max(axis=2) < tol
    return bool(close.any(axis=1).all() and close.any(axis=0).all())


def _count_distinct_mod1(points: np.ndarray, tol: float = 1e-6) -> int:
    """Number of distinct points modulo lattice translations."""
    d = points[:, None, :] - points[None, :, :]
    close = np.abs(d - np.rint(d)).max(axis=2) < tol
    return int(sum(not close[i, :i].any() for i in range(len(points))))


def test_counts_and_shapes():
    assert len(T.WP_SPACEGROUP) == 1731
    assert T.SG_ENCODING.shape == (230, SPACE_GROUP_ENCODING_SIZE) == (230, 397)
    assert T.SG_FIRST_WYCKOFF[-1] == 1731
    assert T.WP_ORBIT_OP.shape == (1731, 192)
    assert np.all((T.WP_ORBIT_OP >= 0).sum(axis=1) == T.WP_MULTIPLICITY)
    assert np.all(T.WP_INDEX[T.SG_FIRST_WYCKOFF[:-1]] == 0)


def test_all_230_space_group_encodings_distinct():
    assert len({row.tobytes() for row in T.SG_ENCODING}) == 230
    for pair in [(23, 24), (197, 199), (76, 78), (144, 145)]:
        assert not np.array_equal(T.SG_ENCODING[pair[0] - 1], T.SG_ENCODING[pair[1] - 1])


def test_site_symmetry_has_75_distinct_encodings():
    assert len({row.tobytes() for row in T.WP_SITE_SYMMETRY}) == 75


def test_site_symmetry_slots_carry_space_group_operations():
    """Every direction with a non-trivial site-symmetry class has operations in the group."""
    table = T.SG_ENCODING[:, :390].reshape(230, 15, 26)
    has_operation = table[:, :, 2:].sum(axis=2) > 0
    special = T.WP_SITE_SYMMETRY > 1
    assert not np.any(special & ~has_operation[T.WP_SPACEGROUP - 1])


def test_space_group_record():
    group = T.space_group(194)
    assert group.symbol == "P63/mmc" and group.hall_number == 488
    assert group.crystal_system == "hexagonal" and group.centring == "P"
    assert group.wyckoff_positions[0].multiplicity == 24
    assert group.wyckoff("a").label == "2a"
    assert T.space_group(194) is group
    assert group.general_ops.shape == (24, 3, 4)


@pytest.mark.parametrize("bad", [0, 231, -3, 2.5, "12", None])
def test_space_group_out_of_range(bad):
    with pytest.raises(InputError, match=repr(bad).strip("'")):
        T.space_group(bad)


def test_hall_numbers_give_the_same_operations_as_the_tables():
    for number in range(1, 231):
        group = T.space_group(number)
        data = spglib.get_symmetry_from_database(group.hall_number)
        assert len(data["rotations"]) == len(group.general_ops)
        for rotation, translation in zip(data["rotations"], data["translations"], strict=True):
            same_rotation = np.all(group.general_ops[:, :, :3] == rotation, axis=(1, 2))
            d = group.general_ops[:, :, 3] - translation
            same_translation = np.abs(d - np.rint(d)).max(axis=1) < 1e-6
            assert np.any(same_rotation & same_translation), number


def test_replication_of_every_wyckoff_position_matches_pyxtal():
    pyxtal_symmetry = pytest.importorskip("pyxtal.symmetry")
    rng = np.random.default_rng(1)
    params = rng.uniform(0.0, 1.0, size=(1731, 3))
    rep = T.WP_REPRESENTATIVE
    points = np.einsum("gij,gj->gi", rep[:, :, :3], params) + rep[:, :, 3]
    frac, owner = replicate(np.arange(1731), points)
    failures = []
    for number in range(1, 231):
        group = pyxtal_symmetry.Group(number)
        for wp in group.Wyckoff_positions:
            g = T.global_wyckoff_index(number, wp.letter)
            ours = frac[owner == g]
            reference = np.array([op.operate(params[g]) for op in wp.ops])
            if _count_distinct_mod1(ours) != wp.multiplicity or not _same_set_mod1(ours, reference):
                failures.append(f"{number}{wp.letter}")
    assert failures == []


def test_tables_load_fast():
    """Loading the tables and the derived projection tables (numpy already imported); CPU time,
    best of three, so that a busy machine does not fail the test."""
    import subprocess
    import sys

    code = (
        "import numpy, time; t = time.process_time(); import symmcd.symmetry.wyckoff; "
        "print(time.process_time() - t)"
    )
    runs = [
        float(subprocess.run([sys.executable, "-c", code], capture_output=True, check=True).stdout)
        for _ in range(3)
    ]
    assert min(runs) < 0.5, runs
