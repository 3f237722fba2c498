"""Projection + replication speed: symmcd's batched numpy step vs a per-site pyxtal reference.

Both take the same noisy sampled asymmetric units (space group, site-symmetry probabilities
(15, 13), coordinates) and return the full orbit of every site:
- symmcd: ``wyckoff.project`` + ``wyckoff.replicate`` over the whole batch at once;
- pyxtal, per site: nearest site symmetry among the group's positions (Frobenius, one-hots
  cached per group), ties broken by coordinate distance, ``search_cloest_wp`` for the
  coordinates, ``Wyckoff_position.apply_ops`` for the orbit. Groups are built once and cached,
  which favours the reference.
Inputs: space groups drawn from the MP-20 test split's distribution, 1-6 sites per crystal on
random Wyckoff positions, coordinates moved by N(0, 0.02), site symmetry
softmax(3 one-hot + N(0, 1)).
Writes a markdown table to bench/projection_speed.out.txt.

    python bench/projection_speed.py [--crystals 10000] [--reference-crystals 300]
"""

from __future__ import annotations

import argparse
import functools
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd
from pyxtal.symmetry import Group, search_cloest_wp

from symmcd.symmetry import tables, wyckoff

MP20_TEST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mp_20" / "test.csv"
OUT_PATH = Path(__file__).with_suffix(".out.txt")


def make_inputs(num_crystals: int, seed: int) -> dict[str, np.ndarray]:
    """Noisy asymmetric units, flat over sites, with the true position of each site."""
    rng = np.random.default_rng(seed)
    groups_seen = pd.read_csv(MP20_TEST, usecols=["spacegroup.number"])["spacegroup.number"]
    counts = np.bincount(groups_seen.to_numpy(), minlength=231)[1:].astype(float)
    crystal_groups = rng.choice(np.arange(1, 231), size=num_crystals, p=counts / counts.sum())
    sites_per_crystal = rng.integers(1, 7, size=num_crystals)
    site_groups = np.repeat(crystal_groups, sites_per_crystal)
    first, count = tables.SG_FIRST_WYCKOFF[site_groups - 1], np.diff(tables.SG_FIRST_WYCKOFF)
    true_wp = first + (rng.random(len(site_groups)) * count[site_groups - 1]).astype(int)
    params = rng.random((len(site_groups), 3))
    rep = tables.WP_REPRESENTATIVE[true_wp]
    exact = np.einsum("nij,nj->ni", rep[:, :, :3], params) + rep[:, :, 3]
    coords = np.mod(exact + rng.normal(0.0, 0.02, exact.shape), 1.0)
    logits = 3.0 * np.eye(13)[tables.WP_SITE_SYMMETRY[true_wp]] + rng.normal(
        0, 1, (len(true_wp), 15, 13)
    )
    probs = np.exp(logits) / np.exp(logits).sum(axis=2, keepdims=True)
    return {"groups": site_groups, "probs": probs, "coords": coords, "sites": sites_per_crystal}


def symmcd_step(groups, probs, coords) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    projection = wyckoff.project(groups, probs, coords)
    frac, owner = wyckoff.replicate(projection.global_wp_index, projection.coords)
    return projection.global_wp_index, frac, owner


@functools.cache
def pyxtal_group(number: int) -> tuple[Group, np.ndarray]:
    group = Group(number)
    one_hots = np.stack([wp.get_site_symmetry_object().to_one_hot() for wp in group])
    return group, one_hots


def pyxtal_site(number: int, probs: np.ndarray, coords: np.ndarray) -> tuple[int, np.ndarray]:
    """Per-site pyxtal projection + replication: (local Wyckoff index, orbit points)."""
    group, one_hots = pyxtal_group(number)
    distance = np.linalg.norm((one_hots - probs).reshape(len(one_hots), -1), axis=1)
    tied = np.flatnonzero(distance <= distance.min() + 1e-9)
    best = None
    for index in tied:
        wp = group[int(index)]
        position = np.mod(search_cloest_wp(group, wp, wp.ops[0], coords), 1.0)
        delta = position - coords
        moved = np.linalg.norm(delta - np.rint(delta))
        if best is None or moved < best[0] - 1e-9:
            best = (moved, int(index), position)
    _, index, position = best
    return index, np.mod(group[index].apply_ops(position), 1.0)


def same_orbit(a: np.ndarray, b: np.ndarray, tol: float = 1e-4) -> bool:
    """Whether two point sets are equal modulo lattice translations."""
    if a.shape != b.shape:
        return False
    delta = a[:, None, :] - b[None, :, :]
    close = np.linalg.norm(delta - np.rint(delta), axis=2) < tol
    return bool(close.any(axis=1).all() and close.any(axis=0).all())


def nearest_orbit_distance(orbit: np.ndarray, point: np.ndarray) -> float:
    """Fractional distance (modulo translations) from a point to the nearest orbit point."""
    delta = orbit - point
    return float(np.linalg.norm(delta - np.rint(delta), axis=1).min())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crystals", type=int, default=10_000)
    parser.add_argument("--reference-crystals", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    data = make_inputs(args.crystals, args.seed)
    symmcd_step(data["groups"][:100], data["probs"][:100], data["coords"][:100])  # warm-up
    start = time.perf_counter()
    wp_index, frac, owner = symmcd_step(data["groups"], data["probs"], data["coords"])
    ours = time.perf_counter() - start

    num_ref_sites = int(data["sites"][: args.reference_crystals].sum())
    for number in np.unique(data["groups"][:num_ref_sites]):
        pyxtal_group(int(number))  # build groups outside the timing
    start = time.perf_counter()
    reference = [
        pyxtal_site(int(data["groups"][i]), data["probs"][i], data["coords"][i])
        for i in range(num_ref_sites)
    ]
    theirs = time.perf_counter() - start

    local = wp_index - tables.SG_FIRST_WYCKOFF[data["groups"] - 1]
    same_position = np.array([local[i] == reference[i][0] for i in range(num_ref_sites)])
    same_points = np.array(
        [same_orbit(frac[owner == i], reference[i][1]) for i in range(num_ref_sites)]
    )
    ours_closer = np.array(
        [
            nearest_orbit_distance(frac[owner == i], data["coords"][i])
            < nearest_orbit_distance(reference[i][1], data["coords"][i]) - 1e-6
            for i in range(num_ref_sites)
        ]
    )
    theirs_closer = np.array(
        [
            nearest_orbit_distance(reference[i][1], data["coords"][i])
            < nearest_orbit_distance(frac[owner == i], data["coords"][i]) - 1e-6
            for i in range(num_ref_sites)
        ]
    )
    ours_per_crystal = ours / args.crystals * 1e3
    theirs_per_crystal = theirs / args.reference_crystals * 1e3
    lines = [
        f"# Projection + replication speed ({platform.processor() or platform.machine()}, "
        "numpy, 1 process)",
        "",
        f"Inputs: {args.crystals} noisy asymmetric units ({len(data['groups'])} sites), seed "
        f"{args.seed}; pyxtal reference on the first {args.reference_crystals} crystals "
        f"({num_ref_sites} sites).",
        "",
        "| implementation | crystals | seconds | ms / crystal |",
        "|---|---|---|---|",
        f"| symmcd batched (project + replicate) | {args.crystals} | {ours:.3f} | "
        f"{ours_per_crystal:.4f} |",
        f"| pyxtal per site (search_cloest_wp + apply_ops) | {args.reference_crystals} | "
        f"{theirs:.3f} | {theirs_per_crystal:.3f} |",
        "",
        f"Speed-up: {theirs_per_crystal / ours_per_crystal:.0f}x (target >= 50x).",
        f"Agreement on the reference sites: same Wyckoff position {same_position.mean():.1%}, "
        f"same orbit points {same_points.mean():.1%}; where the orbits differ, symmcd's orbit "
        f"passes closer to the sampled point on {ours_closer.sum()} sites, pyxtal's on "
        f"{theirs_closer.sum()} (pyxtal's search_cloest_wp is a heuristic).",
    ]
    text = "\n".join(lines) + "\n"
    OUT_PATH.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
