"""Projection + replication speed: symmcd's batched `wyckoff.project` + `wyckoff.replicate`
against a per-site pyxtal reference (nearest site symmetry by Frobenius distance, ties broken by
coordinate distance, then `search_cloest_wp` and `apply_ops`; groups built outside the timing),
target 50x faster per crystal, and how often the two agree. Inputs: MP-20 test space groups, 1-6
random Wyckoff sites per crystal, coordinates + N(0, 0.02), site-symmetry probabilities (15, 13)
softmax(3 one-hot + N(0, 1))."""

import functools
from pathlib import Path

import harness
import numpy as np
import pandas as pd
from pyxtal.symmetry import Group, search_cloest_wp

from symmcd.symmetry import tables, wyckoff

MP20_TEST = Path(__file__).resolve().parents[1] / "symmcd/data/mp20/test.csv.gz"


def make_inputs(num_crystals: int, seed: int) -> tuple[np.ndarray, ...]:
    """Noisy asymmetric units flat over sites (groups, probs, coords) and sites per crystal."""
    rng = np.random.default_rng(seed)
    seen = pd.read_csv(MP20_TEST, usecols=["spacegroup.number"])["spacegroup.number"]
    counts = np.bincount(seen.to_numpy(), minlength=231)[1:].astype(float)
    crystal_groups = rng.choice(np.arange(1, 231), size=num_crystals, p=counts / counts.sum())
    sites = rng.integers(1, 7, size=num_crystals)
    groups = np.repeat(crystal_groups, sites)
    first, count = tables.SG_FIRST_WYCKOFF[groups - 1], np.diff(tables.SG_FIRST_WYCKOFF)
    wp = first + (rng.random(len(groups)) * count[groups - 1]).astype(int)
    rep = tables.WP_REPRESENTATIVE[wp]
    exact = np.einsum("nij,nj->ni", rep[:, :, :3], rng.random((len(groups), 3))) + rep[:, :, 3]
    coords = np.mod(exact + rng.normal(0.0, 0.02, exact.shape), 1.0)
    logits = 3.0 * np.eye(13)[tables.WP_SITE_SYMMETRY[wp]] + rng.normal(0, 1, (len(wp), 15, 13))
    probs = np.exp(logits) / np.exp(logits).sum(axis=2, keepdims=True)
    return groups, probs, coords, sites


def symmcd_step(groups: np.ndarray, probs: np.ndarray, coords: np.ndarray) -> tuple:
    """Global Wyckoff index per site, orbit points and the site owning each point."""
    wp = wyckoff.project(groups, probs, coords)
    return wp.global_wp_index, *wyckoff.replicate(wp.global_wp_index, wp.coords)


@functools.cache
def pyxtal_group(number: int) -> tuple[Group, np.ndarray]:
    """A pyxtal group and its positions' site-symmetry one-hots."""
    group = Group(number)
    return group, np.stack([wp.get_site_symmetry_object().to_one_hot() for wp in group])


def wrapped(delta: np.ndarray) -> np.ndarray:
    """Lengths of fractional differences, modulo lattice translations."""
    return np.linalg.norm(delta - np.rint(delta), axis=-1)


def pyxtal_site(number: int, probs: np.ndarray, coords: np.ndarray) -> tuple[int, np.ndarray]:
    """Per-site pyxtal projection + replication: (local Wyckoff index, orbit points)."""
    group, one_hots = pyxtal_group(number)
    distance = np.linalg.norm((one_hots - probs).reshape(len(one_hots), -1), axis=1)
    best = None
    for index in map(int, np.flatnonzero(distance <= distance.min() + 1e-9)):
        position = np.mod(search_cloest_wp(group, group[index], group[index].ops[0], coords), 1.0)
        moved = wrapped(position - coords)
        if best is None or moved < best[0] - 1e-9:
            best = (moved, index, position)
    return best[1], np.mod(group[best[1]].apply_ops(best[2]), 1.0)


def same_orbit(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two point sets are equal modulo lattice translations."""
    close = wrapped(a[:, None] - b[None]) < 1e-4 if a.shape == b.shape else np.zeros((1, 1))
    return bool(close.any(axis=1).all() and close.any(axis=0).all())


def main() -> None:
    flags = {"crystals": 10_000, "reference_crystals": 300, "seed": 0}
    args = harness.parser(__file__, __doc__, **flags).parse_args()
    groups, probs, coords, sites = make_inputs(args.crystals, args.seed)
    symmcd_step(groups[:100], probs[:100], coords[:100])  # warm-up
    (wp_index, frac, owner), ours = harness.timed(symmcd_step, groups, probs, coords)
    n_ref = int(sites[: args.reference_crystals].sum())
    for number in np.unique(groups[:n_ref]):
        pyxtal_group(int(number))  # built outside the timing
    sites_in = [(int(groups[i]), probs[i], coords[i]) for i in range(n_ref)]
    reference, theirs = harness.timed(lambda: [pyxtal_site(*site) for site in sites_in])
    local = wp_index - tables.SG_FIRST_WYCKOFF[groups - 1]
    ref_wp, ref_orbits = zip(*reference, strict=True)
    pairs = list(zip([frac[owner == i] for i in range(n_ref)], ref_orbits, coords, strict=False))
    same_points = np.mean([same_orbit(a, b) for a, b, _ in pairs])
    gap = np.array([wrapped(a - point).min() - wrapped(b - point).min() for a, b, point in pairs])
    ours_ms, theirs_ms = 1e3 * ours / args.crystals, 1e3 * theirs / args.reference_crystals
    harness.report(
        args.out,
        f"Projection + replication speed, numpy, 1 process, {harness.machine()}",
        "implementation | crystals | seconds | ms / crystal",
        [
            f"symmcd batched (project + replicate) | {args.crystals} | {ours:.3f} | {ours_ms:.4f}",
            f"pyxtal per site (search_cloest_wp + apply_ops) | {args.reference_crystals} | "
            f"{theirs:.3f} | {theirs_ms:.3f}",
        ],
        f"Inputs: {args.crystals} noisy asymmetric units ({len(groups)} sites), seed {args.seed}; "
        f"pyxtal reference on the first {args.reference_crystals} crystals ({n_ref} sites).",
        f"Speed-up: {theirs_ms / ours_ms:.0f}x (target >= 50x).\nAgreement on the reference "
        f"sites: same Wyckoff position {np.mean(local[:n_ref] == ref_wp):.1%}, same orbit points "
        f"{same_points:.1%}; where the orbits differ, symmcd's orbit passes closer to the sampled "
        f"point on {(gap < -1e-6).sum()} sites, pyxtal's on {(gap > 1e-6).sum()} (pyxtal's "
        "search_cloest_wp is a heuristic).",
    )


if __name__ == "__main__":
    main()
