"""Build the shipped CSP template pool, ``symmcd/data/mp20/templates.npz``, from the shipped MP-20
train and validation splits (never the test split): each crystal's asymmetric unit as
``symmcd prepare`` finds it (spglib, symprec 0.1).

    python tools/build_template_pool.py [--work ~/.cache/symmcd/pool/mp20] [--workers 2]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from symmcd.csp.templates import SHIPPED_POOL, TemplatePool, fit_element_volumes
from symmcd.data.dataset import load_cache
from symmcd.data.prepare import prepare_mp20

ROOT = Path(__file__).resolve().parents[1]
SPLITS = ("train", "val")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path.home() / ".cache/symmcd/pool/mp20")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "symmcd/data/mp20" / SHIPPED_POOL)
    args = parser.parse_args()
    prepare_mp20(args.work, workers=args.workers, splits=SPLITS)
    caches = [load_cache(args.work / f"{split}.npz") for split in SPLITS]
    pool = TemplatePool.from_caches(caches, source="symmcd MP-20 train.csv.gz + val.csv.gz")
    pool.element_volumes = fit_element_volumes(pool)
    pool.save(args.out)
    print(f"{len(pool):,} templates -> {args.out} ({args.out.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
