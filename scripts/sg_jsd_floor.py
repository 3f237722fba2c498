"""How low can the space-group JSD of N samples go? The metric's floor on MP-20.

The README's SG JSD compares the space groups of N generated crystals with those of the whole
MP-20 test split (Jensen-Shannon distance, base 2, as `symmcd evaluate`). Even a perfect
generator, one whose groups are independent draws from the data's own distribution, scores
above zero: two finite samples of ~200 groups differ. This script measures that floor with real
data: other MP-20 splits against the test split, and N independent draws (with replacement) from
the offline training set's groups, the distribution `symmcd sample` draws its groups from,
over several seeds; `--set top10` restricts the draws to the 10 most common MP-20 groups as the
README's second table does.

    python scripts/sg_jsd_floor.py [--n 10000] [--seeds 10]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from symmcd.evaluation.distributions import spacegroup_jsd

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DATA = ROOT / "symmcd" / "data" / "mp20"
SHARED_DATA = ROOT.parent / "shared" / "data" / "mp_20"
TOP10 = (2, 12, 14, 62, 63, 139, 166, 194, 221, 225)


def spacegroups(path: Path) -> list[int]:
    return pd.read_csv(path, usecols=["spacegroup.number"])["spacegroup.number"].tolist()


def draws_floor(pool: list[int], reference: list[int], n: int, seeds: int) -> np.ndarray:
    """SG JSD of `n` draws from `pool` against `reference`, one value per seed."""
    pool_array = np.asarray(pool)
    return np.array(
        [
            spacegroup_jsd(np.random.default_rng(seed).choice(pool_array, n).tolist(), reference)
            for seed in range(seeds)
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=10_000, help="samples per draw")
    parser.add_argument("--seeds", type=int, default=10, help="independent draws")
    args = parser.parse_args()

    test = spacegroups(PACKAGE_DATA / "test.csv.gz")
    train = spacegroups(PACKAGE_DATA / "train.csv.gz")
    print(f"reference: MP-20 test split, {len(test)} crystals (recorded spacegroup.number)")
    print("| compared with the test split | crystals | SG JSD |")
    print("|---|---|---|")
    print(
        f"| offline training set (symmcd/data/mp20/train.csv.gz) | {len(train)} | "
        f"{spacegroup_jsd(train, test):.4f} |"
    )
    for name in ("val.csv", "train_partial.csv"):
        if (SHARED_DATA / name).is_file():
            groups = spacegroups(SHARED_DATA / name)
            print(
                f"| MP-20 {name} (shared data) | {len(groups)} | "
                f"{spacegroup_jsd(groups, test):.4f} |"
            )
    top10_pool = [g for g in train if g in TOP10]
    for label, pool in (("all groups", train), ("10 most common groups", top10_pool)):
        values = draws_floor(pool, test, args.n, args.seeds)
        print(
            f"| {args.n} draws from the training set's groups, {label} "
            f"({args.seeds} seeds: mean +- sd, min-max) | {args.n} | "
            f"{values.mean():.4f} +- {values.std(ddof=1):.4f} "
            f"({values.min():.4f}-{values.max():.4f}) |"
        )


if __name__ == "__main__":
    main()
