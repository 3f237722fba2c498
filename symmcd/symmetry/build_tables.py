"""Build ``symmcd/symmetry/data/tables.npz`` from pyxtal's space-group tables (run once).

    python -m symmcd.symmetry.build_tables

This is the only module that imports pyxtal; the shipped file makes symmcd independent of the
installed pyxtal version. For each Wyckoff position it stores the first component of the
position (pyxtal's ``wp.ops[0]``), the site symmetry (``to_one_hot``) and the ``multiplicity``
general-position operations that carry a generic point of the first component onto the distinct
points of its orbit, in the order of pyxtal's ``wp.ops`` (so the identity comes first).
Replicating with these operations is exact; applying the orbit operators to an already
transformed point is not.
"""

from pathlib import Path

import numpy as np
import spglib

from symmcd.symmetry.encoding import NUM_DIRECTIONS, space_group_encoding

TABLES_PATH = Path(__file__).parent / "data" / "tables.npz"
MAX_MULTIPLICITY = 192
CENTRING_COUNT = {"P": 1, "A": 2, "B": 2, "C": 2, "I": 2, "R": 3, "F": 4}
_TOL = 1e-6


def _affine(op) -> np.ndarray:
    """(3, 4) affine matrix [W | t] of a pymatgen SymmOp."""
    return np.asarray(op.affine_matrix, dtype=float)[:3]


def _wrapped_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Largest per-component distance between points, modulo lattice translations."""
    d = a - b
    return np.abs(d - np.rint(d)).max(axis=-1)


def _apply(ops: np.ndarray, point: np.ndarray) -> np.ndarray:
    """Images (M, 3) of one point under affine operations (M, 3, 4)."""
    return ops[:, :, :3] @ point + ops[:, :, 3]


def orbit_op_indices(general_ops: np.ndarray, wp, rng: np.random.Generator) -> list[int]:
    """Indices of the general ops that map the first component onto each component of ``wp``.

    For each component ``wp.ops[j]`` pick the first general op g with g(r(x)) = ops_j(x) mod 1
    for two random generic parameter vectors x (an equality at generic points of two affine maps
    means they are the same map).
    """
    components = np.stack([_affine(op) for op in wp.ops])
    representative = components[0]
    params = rng.uniform(0.05, 0.95, size=(2, 3))
    points = [representative[:, :3] @ x + representative[:, 3] for x in params]
    images = [_apply(general_ops, p) for p in points]
    targets = [_apply(components, x) for x in params]
    chosen = []
    for j in range(len(components)):
        match = np.ones(len(general_ops), dtype=bool)
        for image, target in zip(images, targets, strict=True):
            match &= _wrapped_distance(image, target[j]) < _TOL
        if not match.any():
            raise RuntimeError(f"no general op maps {wp.letter} onto component {j}")
        chosen.append(int(np.flatnonzero(match)[0]))
    if chosen[0] != 0 or len(set(chosen)) != wp.multiplicity:
        raise RuntimeError(f"bad orbit ops {chosen} for {wp.number}{wp.letter}")
    return chosen


def check_hall_setting(general_ops: np.ndarray, hall_number: int) -> None:
    """Raise unless spglib's operations for ``hall_number`` equal pyxtal's as a set mod 1."""
    database = spglib.get_symmetry_from_database(hall_number)
    spglib_ops = np.concatenate(
        [database["rotations"], database["translations"][:, :, None]], axis=2
    ).astype(float)
    if len(spglib_ops) != len(general_ops):
        raise RuntimeError(f"Hall {hall_number}: {len(spglib_ops)} vs {len(general_ops)} ops")
    for op in general_ops:
        same_rotation = np.all(np.isclose(spglib_ops[:, :, :3], op[:, :3]), axis=(1, 2))
        same_translation = _wrapped_distance(spglib_ops[:, :, 3], op[:, 3]) < _TOL
        if not np.any(same_rotation & same_translation):
            raise RuntimeError(f"Hall {hall_number} lacks op {op.tolist()}")


def build() -> dict[str, np.ndarray]:
    """All arrays of tables.npz, computed from pyxtal."""
    from pyxtal.symmetry import Group, pyxtal_hall_numbers

    rng = np.random.default_rng(0)
    symbols, halls, op_offsets, all_ops, encodings = [], [], [0], [], []
    wp_sg, wp_index, wp_letter, wp_mult, wp_site, wp_rep, wp_orbit = [], [], [], [], [], [], []
    first_global = [0]
    for number in range(1, 231):
        group = Group(number)
        general_ops = np.stack([_affine(op) for op in group[0].ops])
        general_ops[:, :, 3] %= 1.0
        general_ops[:, :, 3][np.isclose(general_ops[:, :, 3], 1.0)] = 0.0
        hall = pyxtal_hall_numbers[number - 1]
        check_hall_setting(general_ops, hall)
        centring = group.symbol[0]
        coset_ops = general_ops[: len(general_ops) // CENTRING_COUNT[centring]]
        encodings.append(space_group_encoding(coset_ops, centring, 143 <= number <= 194))
        symbols.append(group.symbol)
        halls.append(hall)
        all_ops.append(general_ops)
        op_offsets.append(op_offsets[-1] + len(general_ops))
        for index, wp in enumerate(group.Wyckoff_positions):
            representative = _affine(wp.ops[0])
            representative[:, 3] %= 1.0
            orbit = np.full(MAX_MULTIPLICITY, -1, dtype=np.int16)
            orbit[: wp.multiplicity] = orbit_op_indices(general_ops, wp, rng)
            site = wp.get_site_symmetry_object().to_one_hot()
            assert site.shape == (NUM_DIRECTIONS, 13) and np.all(site.sum(axis=1) == 1)
            wp_sg.append(number)
            wp_index.append(index)
            wp_letter.append(wp.letter)
            wp_mult.append(wp.multiplicity)
            wp_site.append(site.argmax(axis=1))
            wp_rep.append(representative)
            wp_orbit.append(orbit)
        first_global.append(first_global[-1] + len(group.Wyckoff_positions))
    return {
        "sg_symbol": np.array(symbols),
        "sg_hall_number": np.array(halls, dtype=np.int16),
        "sg_encoding": np.array(encodings, dtype=np.uint8),
        "sg_op_offset": np.array(op_offsets, dtype=np.int32),
        "general_ops": np.concatenate(all_ops),
        "sg_first_wyckoff": np.array(first_global, dtype=np.int16),
        "wp_spacegroup": np.array(wp_sg, dtype=np.int16),
        "wp_index": np.array(wp_index, dtype=np.int16),
        "wp_letter": np.array(wp_letter),
        "wp_multiplicity": np.array(wp_mult, dtype=np.int16),
        "wp_site_symmetry": np.array(wp_site, dtype=np.int8),
        "wp_representative": np.array(wp_rep),
        "wp_orbit_op": np.array(wp_orbit),
    }


def main() -> None:
    """Build the tables and write them next to this module."""
    arrays = build()
    encodings = arrays["sg_encoding"]
    distinct = len({row.tobytes() for row in encodings})
    if distinct != 230:
        raise RuntimeError(f"only {distinct} of 230 space-group encodings are distinct")
    TABLES_PATH.parent.mkdir(exist_ok=True)
    np.savez_compressed(TABLES_PATH, **arrays)
    print(f"wrote {TABLES_PATH} ({len(arrays['wp_spacegroup'])} Wyckoff positions)")


if __name__ == "__main__":
    main()
