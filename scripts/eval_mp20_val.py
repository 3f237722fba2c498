"""Evaluate the 1,000 held-out MP-20 validation crystals shipped with symmcd as if they were
samples, against the MP-20 test split (REF) and the shipped ``train.csv.gz`` (TRAIN; the default
TRAIN also holds ``val.csv.gz``, which would make every sample trivially non-novel): the numbers
a model that reproduces the data distribution would reach, for the README.

    nice python scripts/eval_mp20_val.py | tee scripts/eval_mp20_val.out.txt
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

from symmcd.evaluation import evaluate
from symmcd.evaluation.io import DEFAULT_REFERENCE, PACKAGE_DATA, write_subsample_csv


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=Path, default=PACKAGE_DATA / "val.csv.gz")
    parser.add_argument("--reference", type=Path, default=DEFAULT_REFERENCE)
    parser.add_argument("--train", type=Path, nargs="+", default=[PACKAGE_DATA / "train.csv.gz"])
    parser.add_argument(
        "--reference-n", type=int, default=0, help="seeded subsample of REF (0 = all of it)"
    )
    parser.add_argument("--relax", type=int, default=0)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--out", type=Path, default=Path("eval_mp20_val"))
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    started = time.perf_counter()
    scratch = tempfile.TemporaryDirectory()
    reference = write_subsample_csv(args.reference, args.reference_n, 0, Path(scratch.name))
    metrics = evaluate(
        args.samples,
        reference,
        args.train,
        args.out,
        relax=args.relax,
        workers=args.workers,
    )
    size = f"seeded subsample of {args.reference_n} (seed 0)" if args.reference_n else "all"
    print(f"samples: {args.samples}; train: {args.train}")
    print(f"reference: {args.reference}, {size} ({metrics['n_reference']} crystals)")
    for key, value in metrics.items():
        print(f"{key}: {value}")
    print(f"wall time: {time.perf_counter() - started:.1f} s; report: {args.out / 'report.html'}")


if __name__ == "__main__":
    main()
