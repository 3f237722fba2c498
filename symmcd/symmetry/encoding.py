"""The one place that fixes the order of every symmetry encoding used by symmcd.

Site symmetry (per Wyckoff position): 15 directions x 13 classes, one class per direction.
Space group: 15 directions x 26 operation types (multi-hot) + 7 centrings (one-hot) = 397 numbers.

Symmetry directions
-------------------
The 15 slots are pyxtal's ``all_sym_directions`` (``DIRECTIONS`` below), written as integer
triplets. For monoclinic (unique axis b), orthorhombic, tetragonal and cubic groups a slot holds
the symmetry elements whose axis (for mirrors and glides: whose plane normal) is the lattice
direction [uvw] of that triplet: [100] [010] [001] are the cell axes, [111] [1-1-1] [-11-1]
[-1-11] the cube body diagonals, [1-10] [110] [01-1] [011] [-101] [101] the face diagonals, and
[1-20] [2-10] are unused. For trigonal and hexagonal groups (hexagonal axes, also for R groups)
pyxtal takes an axis u in lattice coordinates to the slot parallel to G u, with G the metric of
the unit hexagonal cell, except that [100] keeps slot (1, 0, 0). This puts [001] in slot (0,0,1),
the secondary directions [100] [010] [110] in (1,0,0) (1,-2,0) (1,1,0) and the tertiary ones
[1-10] [120] [210] in (1,-1,0) (0,1,0) (1,0,0): [210] shares the slot of [100], and slot
(2,-1,0) stays empty. ``direction_slot`` implements exactly this rule so that site-symmetry and
space-group encodings use the same slots.

Site-symmetry classes
---------------------
``SITE_SYMMETRY_CLASSES`` in pyxtal's ``site_symmetry.to_one_hot`` order (pyxtal 1.1.5, read
once by ``build_tables``): the highest symmetry element along that direction; a direction with
nothing on it holds ``1`` (or ``-1`` when the site has an inversion centre).

Space-group operation types
---------------------------
``OPERATION_TYPES``: 10 point operations, 11 screw rotations, 5 glide reflections. Each
general-position operation (W, t) of the group is classified by W's order and determinant, its
axis (for m, glides and rotoinversions the axis of -W, i.e. the plane normal) and its intrinsic
translation: the screw part (1/n) sum_k W^k t, measured along the axis oriented so that W turns
counter-clockwise about it, gives n_p (so 4_1 and 4_3, 3_1 and 3_2 differ); the glide vector
(W + 1) t / 2 gives a, b, c (one non-zero component along that axis), n (several components
1/2) or d (a component 1/4 or 3/4); this labels the tabulated operation deterministically but
is not always the ITA symbol (e glides come out as a, b or n). Only the first block of
operations is used, i.e. pyxtal's tabulated coset representatives before the centring
translations are added; with the centred copies I222/I2_12_12_1 (23/24) and I23/I2_13
(197/199) would collide.
``1`` and ``-1`` are marked on all 15 directions, as pyxtal does for site symmetry.
"""

import numpy as np

NUM_ELEMENTS = 100
NUM_DIRECTIONS = 15

DIRECTIONS: tuple[tuple[int, int, int], ...] = (
    (1, 0, 0),
    (0, 1, 0),
    (0, 0, 1),
    (1, 1, 1),
    (1, -1, -1),
    (-1, 1, -1),
    (-1, -1, 1),
    (1, -1, 0),
    (1, 1, 0),
    (0, 1, -1),
    (0, 1, 1),
    (-1, 0, 1),
    (1, 0, 1),
    (1, -2, 0),
    (2, -1, 0),
)

SITE_SYMMETRY_CLASSES: tuple[str, ...] = (
    "1", "-1", "2", "m", "3", "4", "-4", "2/m", "-3", "6", "-6", "4/m", "6/m",
)  # fmt: skip
NUM_SITE_CLASSES = len(SITE_SYMMETRY_CLASSES)

POINT_OPERATIONS = ("1", "-1", "2", "m", "3", "4", "-4", "-3", "6", "-6")
SCREW_OPERATIONS = ("2_1", "3_1", "3_2", "4_1", "4_2", "4_3", "6_1", "6_2", "6_3", "6_4", "6_5")
GLIDE_OPERATIONS = ("a", "b", "c", "n", "d")
OPERATION_TYPES: tuple[str, ...] = POINT_OPERATIONS + SCREW_OPERATIONS + GLIDE_OPERATIONS
NUM_OPERATION_TYPES = len(OPERATION_TYPES)

CENTRINGS: tuple[str, ...] = ("P", "A", "B", "C", "I", "F", "R")
SPACE_GROUP_ENCODING_SIZE = NUM_DIRECTIONS * NUM_OPERATION_TYPES + len(CENTRINGS)

HEXAGONAL_METRIC = np.array([[1.0, -0.5, 0.0], [-0.5, 1.0, 0.0], [0.0, 0.0, 1.0]])

_PROPER_BY_TRACE = {3: "1", -1: "2", 0: "3", 1: "4", 2: "6"}
_IMPROPER_BY_TRACE = {-3: "-1", 1: "m", 0: "-3", -1: "-4", -2: "-6"}


def site_symmetry_onehot(classes: np.ndarray) -> np.ndarray:
    """One-hot (..., 15, 13) float matrix of integer site-symmetry classes (..., 15)."""
    return np.eye(NUM_SITE_CLASSES)[np.asarray(classes, dtype=int)]


def site_symmetry_names(classes: np.ndarray) -> tuple[str, ...]:
    """Class names of one (15,) site-symmetry row, for printing."""
    return tuple(SITE_SYMMETRY_CLASSES[int(c)] for c in classes)


def rotation_axis(rotation: np.ndarray) -> np.ndarray:
    """Primitive integer lattice direction of the axis of W (of -W when det W = -1)."""
    proper = rotation * np.sign(np.linalg.det(rotation))
    _, _, vh = np.linalg.svd(proper - np.eye(3))
    axis = vh[-1]
    axis = axis / np.abs(axis[np.abs(axis) > 1e-6]).min()
    integer = np.rint(axis)
    if not np.allclose(axis, integer, atol=1e-6):
        raise ValueError(f"axis {axis} of {rotation.tolist()} is not a low-index direction")
    return integer / np.gcd.reduce(np.abs(integer).astype(int))


def direction_slot(axis: np.ndarray, hexagonal: bool) -> int:
    """Index in ``DIRECTIONS`` of a lattice direction (see the module docstring)."""
    axis = np.asarray(axis, dtype=float)
    if hexagonal and not np.allclose(np.abs(axis), [1, 0, 0]):
        axis = HEXAGONAL_METRIC @ axis
    unit = axis / np.linalg.norm(axis)
    for slot, direction in enumerate(DIRECTIONS):
        d = np.array(direction, dtype=float)
        if np.isclose(abs(unit @ d) / np.linalg.norm(d), 1.0):
            return slot
    raise ValueError(f"direction {axis} is none of the 15 symmetry directions")


def operation_type(rotation: np.ndarray, translation: np.ndarray) -> tuple[str, np.ndarray | None]:
    """Type name of a space-group operation (W, t) and its axis (None for 1 and -1)."""
    rotation = np.rint(rotation)
    det = int(np.rint(np.linalg.det(rotation)))
    trace = int(np.rint(np.trace(rotation)))
    point = (_PROPER_BY_TRACE if det > 0 else _IMPROPER_BY_TRACE)[trace]
    if point in ("1", "-1"):
        return point, None
    axis = rotation_axis(rotation)
    if point in ("2", "3", "4", "6"):
        order = int(point)
        axis = axis * _rotation_sense(rotation, axis)
        screw = sum(np.linalg.matrix_power(rotation, k) for k in range(order)) @ translation / order
        fraction = (screw @ axis) / (axis @ axis)
        pitch = int(np.rint(fraction * order)) % order
        if not np.isclose(fraction * order, np.rint(fraction * order), atol=1e-6):
            raise ValueError(f"screw part {screw} is not a multiple of 1/{order} of {axis}")
        return (point if pitch == 0 else f"{point}_{pitch}"), axis
    if point == "m":
        return _glide_type(rotation, translation), axis
    return point, axis


def _rotation_sense(rotation: np.ndarray, axis: np.ndarray) -> int:
    """+1 if W turns counter-clockwise about ``axis`` (right-handed cell), else -1."""
    probe = np.eye(3)[int(np.argmin(np.abs(axis)))]
    sense = np.linalg.det(np.stack([axis, probe, rotation @ probe]))
    return 1 if sense > 1e-9 or np.isclose(np.trace(rotation), -1) else -1


def _glide_type(rotation: np.ndarray, translation: np.ndarray) -> str:
    """m, a, b, c, n or d from the glide vector (W + 1) t / 2 reduced mod 1."""
    glide = ((rotation + np.eye(3)) @ translation / 2.0) % 1.0
    glide[np.isclose(glide, 1.0, atol=1e-6)] = 0.0
    nonzero = ~np.isclose(glide, 0.0, atol=1e-6)
    if not nonzero.any():
        return "m"
    if np.any(np.isclose(glide[nonzero], 0.25) | np.isclose(glide[nonzero], 0.75)):
        return "d"
    if nonzero.sum() == 1:
        return "abc"[int(np.flatnonzero(nonzero)[0])]
    return "n"


def space_group_encoding(coset_ops: np.ndarray, centring: str, hexagonal: bool) -> np.ndarray:
    """The (397,) encoding of a space group from its coset representatives (M, 3, 4)."""
    table = np.zeros((NUM_DIRECTIONS, NUM_OPERATION_TYPES))
    for op in coset_ops:
        name, axis = operation_type(op[:, :3], op[:, 3])
        slots = range(NUM_DIRECTIONS) if axis is None else [direction_slot(axis, hexagonal)]
        for slot in slots:
            table[slot, OPERATION_TYPES.index(name)] = 1.0
    centring_onehot = np.zeros(len(CENTRINGS))
    centring_onehot[CENTRINGS.index(centring)] = 1.0
    return np.concatenate([table.ravel(), centring_onehot])
