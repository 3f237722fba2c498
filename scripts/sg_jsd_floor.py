"""How low can the space-group JSD of N samples go? The metric's floor on MP-20.

`symmcd evaluate`'s SG JSD compares the space groups of the valid generated crystals with those
of the whole MP-20 test split, as the field's code does: groups detected at pymatgen's default
tolerances (symprec 0.01), scipy's Jensen-Shannon distance with the natural log. Even a perfect
generator, one whose crystals are independent draws from the data's own distribution, scores
above zero: two finite samples of ~200 groups differ. This script measures that floor with real
data: the offline training set against the test split, and N independent draws (with
replacement) of training crystals, over several seeds, also restricted to the 10 most common
MP-20 groups as the paper's second table is. Groups come from the evaluation's own cached
descriptors of those files (computed once, minutes on 2 cores).

    python scripts/sg_jsd_floor.py [--n 10000] [--seeds 10] [--out docs/results/sg_jsd_floor.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from symmcd.evaluation.distributions import spacegroup_jsd

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DATA = ROOT / "symmcd" / "data" / "mp20"
TOP10 = (2, 12, 14, 62, 63, 139, 166, 194, 221, 225)


def field_spacegroups(path: Path) -> tuple[list[int], list[int]]:
    """(groups at pymatgen's default tolerances, recorded spglib groups at 0.1) of a CSV."""
    from symmcd.evaluation.evaluate import training_set

    _, summary = training_set([path], workers=None, progress=True)
    recorded = pd.read_csv(path, usecols=["spacegroup.number"])["spacegroup.number"].tolist()
    return [int(g) for g in summary.spacegroup_field], recorded


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
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "results" / "sg_jsd_floor.json")
    args = parser.parse_args()

    test, test_recorded = field_spacegroups(PACKAGE_DATA / "test.csv.gz")
    train, _ = field_spacegroups(PACKAGE_DATA / "train.csv.gz")
    changed = sum(a != b for a, b in zip(test, test_recorded, strict=True))
    test = [g for g in test if g > 0]
    train = [g for g in train if g > 0]
    rows = {
        "offline training set vs test split": {
            "crystals": len(train),
            "sg_jsd": spacegroup_jsd(train, test),
        }
    }
    top10_pool = [g for g in train if g in TOP10]
    for label, pool in (("all groups", train), ("10 most common groups", top10_pool)):
        values = draws_floor(pool, test, args.n, args.seeds)
        rows[f"{args.n} draws of training crystals, {label}"] = {
            "crystals": args.n,
            "seeds": args.seeds,
            "sg_jsd_mean": float(values.mean()),
            "sg_jsd_sd": float(values.std(ddof=1)),
            "sg_jsd_min": float(values.min()),
            "sg_jsd_max": float(values.max()),
        }
    result = {
        "definition": "scipy jensenshannon (natural log) between space-group histograms; "
        "groups at pymatgen's default tolerances (symprec 0.01, angle 5 degrees)",
        "reference": f"MP-20 test split, {len(test)} crystals",
        "test_crystals_whose_group_differs_from_symprec_0.1": changed,
        "command": f"python scripts/sg_jsd_floor.py --n {args.n} --seeds {args.seeds}",
        "rows": rows,
    }
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
