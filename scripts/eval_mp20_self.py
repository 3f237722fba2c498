"""Sanity check of ``symmcd.evaluation``: the MP-20 test split evaluated against itself must give
cov_recall = cov_precision = 1, sg_jsd = 0 and the data's own validity (comp_valid 0.910).

    nice python scripts/eval_mp20_self.py --n 1000 | tee scripts/eval_mp20_self.out.txt

``--n`` takes a seeded subsample of the test split (used both as samples and as reference);
``--n 0`` uses all 9,046 crystals.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import warnings
from pathlib import Path

from symmcd.evaluation import evaluate
from symmcd.evaluation.io import DEFAULT_REFERENCE, write_subsample_csv

KEYS = (
    "n",
    "struct_valid",
    "struct_valid_1A",
    "comp_valid",
    "valid",
    "cov_recall",
    "cov_precision",
    "sg_jsd",
    "wdist_density",
    "wdist_num_elements",
    "wdist_formation_energy",
    "p1_fraction",
    "unique_templates",
    "templates_in_train",
    "new_templates",
    "unique",
    "novel",
    "seconds_samples",
    "seconds_reference",
    "seconds_total",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--out", type=Path, default=Path("eval_mp20_self"))
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    with tempfile.TemporaryDirectory() as scratch:
        data = write_subsample_csv(DEFAULT_REFERENCE, args.n, args.seed, Path(scratch))
        started = time.perf_counter()
        metrics = evaluate(data, data, None, args.out, workers=args.workers, seed=args.seed)
        elapsed = time.perf_counter() - started
    size = "all 9,046" if args.n <= 0 else f"seeded subsample of {args.n} (seed {args.seed})"
    print(f"MP-20 test split against itself: {size}; train = shipped train + val")
    for key in KEYS:
        print(f"{key}: {metrics.get(key)}")
    print(f"wall time: {elapsed:.1f} s; report: {args.out / 'report.html'}")
    print(json.dumps({k: metrics.get(k) for k in ("cov_recall", "cov_precision", "sg_jsd")}))


if __name__ == "__main__":
    main()
