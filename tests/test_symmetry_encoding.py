"""Classification of space-group operations and symmetry directions."""

import numpy as np
import pytest

from symmcd.symmetry.encoding import (
    DIRECTIONS,
    OPERATION_TYPES,
    SPACE_GROUP_ENCODING_SIZE,
    direction_slot,
    operation_type,
    site_symmetry_onehot,
)


def _op(rotation, translation=(0, 0, 0)):
    return np.array(rotation, dtype=float), np.array(translation, dtype=float)


FOUR_Z = [[0, -1, 0], [1, 0, 0], [0, 0, 1]]  # 4+ along [001]


@pytest.mark.parametrize(
    ("rotation", "translation", "expected"),
    [
        (np.eye(3), (0, 0, 0), "1"),
        (-np.eye(3), (0, 0, 0), "-1"),
        ([[-1, 0, 0], [0, -1, 0], [0, 0, 1]], (0, 0, 0.5), "2_1"),
        (FOUR_Z, (0, 0, 0.25), "4_1"),
        (FOUR_Z, (0, 0, 0.75), "4_3"),
        (np.array(FOUR_Z).T, (0, 0, 0.75), "4_1"),  # 4- with 3/4 is part of 4_1
        ([[1, 0, 0], [0, 1, 0], [0, 0, -1]], (0, 0, 0), "m"),
        ([[1, 0, 0], [0, 1, 0], [0, 0, -1]], (0.5, 0, 0), "a"),
        ([[1, 0, 0], [0, -1, 0], [0, 0, 1]], (0, 0, 0.5), "c"),
        ([[1, 0, 0], [0, 1, 0], [0, 0, -1]], (0.5, 0.5, 0), "n"),
        ([[1, 0, 0], [0, 1, 0], [0, 0, -1]], (0.25, 0.25, 0), "d"),
        ([[0, -1, 0], [1, -1, 0], [0, 0, 1]], (0, 0, 1 / 3), "3_1"),
        ([[0, -1, 0], [1, -1, 0], [0, 0, 1]], (0, 0, 2 / 3), "3_2"),
        ([[0, 1, 0], [-1, 1, 0], [0, 0, -1]], (0, 0, 0), "-3"),
    ],
)
def test_operation_types(rotation, translation, expected):
    name, axis = operation_type(*_op(rotation, translation))
    assert name == expected and name in OPERATION_TYPES


def test_axis_of_a_mirror_is_its_normal():
    _, axis = operation_type(*_op([[1, 0, 0], [0, -1, 0], [0, 0, 1]]))
    assert np.allclose(np.abs(axis), [0, 1, 0])


def test_hexagonal_direction_slots():
    expected = {(1, 0, 0): (1, 0, 0), (0, 1, 0): (1, -2, 0), (1, 2, 0): (0, 1, 0)}
    for axis, slot in expected.items():
        assert DIRECTIONS[direction_slot(np.array(axis), hexagonal=True)] == slot
    assert DIRECTIONS[direction_slot(np.array([1, 1, 0]), hexagonal=False)] == (1, 1, 0)


def test_sizes_and_onehot():
    assert SPACE_GROUP_ENCODING_SIZE == 397 and len(DIRECTIONS) == 15
    onehot = site_symmetry_onehot(np.arange(15) % 13)
    assert onehot.shape == (15, 13) and np.all(onehot.sum(axis=1) == 1)
