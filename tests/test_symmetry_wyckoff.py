"""Batched projection onto Wyckoff positions and exact replication."""

import numpy as np
import pytest

from symmcd.errors import InputError
from symmcd.symmetry import tables as T
from symmcd.symmetry.wyckoff import nearest_point_on_position, project, replicate, wrap01

ALL = np.arange(T.NUM_WYCKOFF_POSITIONS)
ZERO = np.zeros((1, 3))


def _on_position(rng, index):
    """A random point of each position's first component, and a random orbit point of it."""
    rep = T.WP_REPRESENTATIVE[index]
    first = np.einsum("gij,gj->gi", rep[:, :, :3], rng.uniform(size=(len(index), 3))) + rep[:, :, 3]
    frac, owner = replicate(index, first)
    starts = np.searchsorted(owner, np.arange(len(index)))
    pick = starts + rng.integers(T.WP_MULTIPLICITY[index])
    return wrap01(first), frac[pick]


def _same_set_mod1(a, b, tol=1e-6):
    d = a[:, None, :] - b[None, :, :]
    close = np.abs(d - np.rint(d)).max(axis=2) < tol
    return len(a) == len(b) and close.any(axis=1).all() and close.any(axis=0).all()


def test_replicate_shapes_and_range():
    index = np.array([T.global_wyckoff_index(225, "a"), T.global_wyckoff_index(194, "c")])
    frac, owner = replicate(index, np.array([[0.0, 0, 0], [1 / 3, 2 / 3, 0.25]]))
    assert frac.shape == (6, 3) and owner.tolist() == [0, 0, 0, 0, 1, 1]
    assert np.all((frac >= 0) & (frac < 1))
    assert _same_set_mod1(
        frac[:4], np.array([[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]])
    )


def test_points_on_a_position_project_to_themselves():
    rng = np.random.default_rng(3)
    first, anywhere = _on_position(rng, ALL)
    projected, distance = nearest_point_on_position(ALL, anywhere)
    assert distance.max() < 1e-9
    frac_a, owner_a = replicate(ALL, projected)
    frac_b, owner_b = replicate(ALL, first)
    for g in rng.choice(ALL, 200, replace=False):
        assert _same_set_mod1(frac_a[owner_a == g], frac_b[owner_b == g])


def test_projection_lies_on_first_component_and_is_near():
    rng = np.random.default_rng(4)
    _, anywhere = _on_position(rng, ALL)
    noise = rng.normal(scale=0.02, size=anywhere.shape)
    projected, distance = nearest_point_on_position(ALL, anywhere + noise)
    assert np.all(distance <= np.linalg.norm(noise, axis=1) + 1e-9)
    # projecting again onto the first component alone moves nothing
    rows = T.ORBIT_OFFSET[:-1]
    from symmcd.symmetry.wyckoff import _nearest_on_components

    _, to_first = _nearest_on_components(rows, projected)
    assert to_first.max() < 1e-9
    assert np.all((projected >= 0) & (projected < 1))


def test_nearest_matches_brute_force_for_a_line():
    """(x, 2x, 0)-type lines of hexagonal groups: compare with a dense scan of the line."""
    g = T.global_wyckoff_index(191, "j")  # x, 2x, 0 family
    rep = T.WP_REPRESENTATIVE[g]
    rng = np.random.default_rng(5)
    points = rng.uniform(size=(20, 3))
    _, distance = nearest_point_on_position(np.full(20, g), points)
    ts = np.linspace(0, 1, 20001)
    line = ts[:, None] * rep[:, 0][None] + rep[:, 3]
    orbit, _ = replicate(np.full(len(ts), g), line)
    for point, d in zip(points, distance, strict=True):
        diff = orbit - point
        brute = np.linalg.norm(diff - np.rint(diff), axis=1).min()
        assert d <= brute + 1e-9 and brute - d < 1e-3


def test_project_with_exact_encodings():
    rng = np.random.default_rng(6)
    _, anywhere = _on_position(rng, ALL)
    result = project(T.WP_SPACEGROUP, T.WP_SITE_SYMMETRY, anywhere)
    assert np.all(result.symmetry_distance == 0)
    assert np.array_equal(T.WP_SITE_SYMMETRY[result.global_wp_index], T.WP_SITE_SYMMETRY)
    assert np.all(T.WP_SPACEGROUP[result.global_wp_index] == T.WP_SPACEGROUP)
    assert result.coord_distance.max() < 1e-9
    # a different position is chosen only where the point also lies on it (ties by coordinates)
    assert (result.global_wp_index == ALL).mean() > 0.99


def test_project_breaks_ties_by_coordinates():
    """194: 2b (0,0,1/4), 2c (1/3,2/3,1/4), 2d (1/3,2/3,3/4) share one site-symmetry encoding."""
    b, c, d = (T.global_wyckoff_index(194, x) for x in "bcd")
    assert np.array_equal(T.WP_SITE_SYMMETRY[b], T.WP_SITE_SYMMETRY[c])
    coords = np.array([[0.01, 0.0, 0.26], [0.33, 0.67, 0.24], [0.34, 0.66, 0.74]])
    result = project(np.full(3, 194), np.repeat(T.WP_SITE_SYMMETRY[[c]], 3, axis=0), coords)
    assert result.global_wp_index.tolist() == [b, c, d]
    assert np.allclose(result.coords[1], [1 / 3, 2 / 3, 0.25])


def test_project_with_probabilities_picks_nearest_encoding():
    g = T.global_wyckoff_index(225, "a")
    onehot = np.eye(13)[T.WP_SITE_SYMMETRY[g]]
    noisy = 0.7 * onehot + 0.3 / 13
    result = project(np.array([225]), noisy[None], np.array([[0.02, 0.01, 0.99]]))
    assert result.global_wp_index[0] == g
    assert np.allclose(result.coords[0], 0.0)
    assert result.symmetry_distance[0] > 0


def test_general_position_keeps_coordinates():
    coords = np.array([[0.123, 0.456, 0.789]])
    result = project(np.array([14]), T.WP_SITE_SYMMETRY[[T.global_wyckoff_index(14, "e")]], coords)
    assert np.allclose(result.coords, coords) and result.coord_distance[0] < 1e-12


def test_empty_batch():
    frac, owner = replicate(np.zeros(0, dtype=int), np.zeros((0, 3)))
    assert frac.shape == (0, 3) and owner.shape == (0,)
    empty = project(np.zeros(0, dtype=int), np.zeros((0, 15), dtype=int), np.zeros((0, 3)))
    assert empty.global_wp_index.size == 0


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: replicate(np.array([1731]), np.zeros((1, 3))), "0..1730"),
        (lambda: replicate(np.array([0]), np.zeros((2, 3))), "coords"),
        (lambda: project(np.array([231]), np.zeros((1, 15), dtype=int), ZERO), "1..230"),
        (lambda: project(np.array([1]), np.zeros((1, 14), dtype=int), ZERO), "site_symmetry"),
    ],
)
def test_bad_inputs(call, message):
    with pytest.raises(InputError, match=message):
        call()
