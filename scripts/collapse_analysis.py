"""Why first-draw samples collapse: classify the closest atom pair of each collapsed crystal.

Samples N crystals with one draw each (the shipped model unless --checkpoint) and, for every
crystal with atoms closer than 0.5 A, reports whether the two closest atoms belong to the same
orbit, to two orbits on the same Wyckoff position, or to two orbits on different positions.

    python scripts/collapse_analysis.py [--n 600] [--seed 1] [--checkpoint PATH]
"""

from __future__ import annotations

import argparse
import warnings
from collections import Counter

import numpy as np

from symmcd.sampling import sample
from symmcd.symmetry import tables, wyckoff


def closest_pair_kind(crystal) -> str:
    """Which orbits the two closest atoms of a collapsed crystal come from."""
    group = crystal.metadata["spacegroup"]
    index = np.array([tables.global_wyckoff_index(group, o.letter) for o in crystal.orbits])
    coords = np.array([o.frac_coords for o in crystal.orbits])
    frac, owner = wyckoff.replicate(index, coords)
    distances = crystal.structure.lattice.get_all_distances(frac, frac)
    np.fill_diagonal(distances, np.inf)
    i, j = np.unravel_index(np.argmin(distances), distances.shape)
    if owner[i] == owner[j]:
        return "one orbit (near a more special position)"
    if index[owner[i]] == index[owner[j]]:
        return "two orbits on the same Wyckoff position"
    return "two orbits on different positions"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=600)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--checkpoint", default=None)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    crystals = sample(args.n, checkpoint=args.checkpoint, seed=args.seed, max_attempts=1)
    kinds = Counter(closest_pair_kind(c) for c in crystals if c.metadata["collapsed"])
    collapsed = sum(kinds.values())
    print(f"{len(crystals)} crystals (seed {args.seed}, one draw), collapsed: {collapsed}")
    for kind, count in kinds.most_common():
        print(f"  {kind}: {count}")


if __name__ == "__main__":
    main()
