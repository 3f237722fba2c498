"""How much does the 1,000-crystal subsample move the density and number-of-elements distances?

`symmcd evaluate` reports `wdist_density` and `wdist_num_elements` as CDVAE does: a seeded
1,000-crystal subsample of the valid samples against every readable reference crystal. This
script recomputes both on every valid sample (`*_all_valid` in metrics.json) and on many
subsamples drawn with other seeds, so that a difference between two sample sets can be told
apart from the subsample's own noise. It reads the samples' densities, formulas and validity
from the `per_sample.csv` that `symmcd evaluate` wrote, and the reference through the
evaluation's cache.

    python scripts/wdist_subsample_spread.py EVAL_DIR [--draws 100] [--workers 2]
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from pymatgen.core import Composition

from symmcd.evaluation.distributions import seeded_subsample, wasserstein
from symmcd.evaluation.evaluate import WDIST_MAX_SAMPLES, readable, set_digest
from symmcd.evaluation.io import DEFAULT_REFERENCE, load_reference
from symmcd.evaluation.summary import summarize


def spread(values: np.ndarray, reference: np.ndarray, valid: np.ndarray, draws: int) -> str:
    """One table row: distance on every valid sample, then over `draws` seeded subsamples."""
    everything = wasserstein(values[valid], reference)
    subsampled = np.array(
        [
            wasserstein(values[seeded_subsample(valid, WDIST_MAX_SAMPLES, seed)], reference)
            for seed in range(draws)
        ]
    )
    low, high = np.percentile(subsampled, [5, 95])
    return (
        f"{everything:.3f} | {subsampled[0]:.3f} | {subsampled.mean():.3f} +- "
        f"{subsampled.std():.3f} | {low:.3f}-{high:.3f} | {subsampled.min():.3f}-"
        f"{subsampled.max():.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("eval_dir", type=Path, help="an OUT folder of `symmcd evaluate`")
    parser.add_argument("--draws", type=int, default=100, help="subsample seeds")
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")

    per_sample = args.eval_dir / "per_sample.csv"
    if not per_sample.is_file():
        parser.error(f"{per_sample} not found: EVAL_DIR must be an OUT folder of `symmcd evaluate`")
    table = pd.read_csv(per_sample, keep_default_na=False)
    valid_mask = table["struct_valid"].astype(bool) & table["comp_valid"].astype(bool)
    valid = np.flatnonzero(valid_mask.to_numpy())
    density = pd.to_numeric(table["density"], errors="coerce").to_numpy(float)
    num_elements = np.array(
        [
            len(Composition(f).elements) if ok else np.nan
            for f, ok in zip(table["formula"], valid_mask, strict=True)
        ]
    )
    reference = load_reference(DEFAULT_REFERENCE, args.workers, progress=True)
    ref_summary = summarize(reference.structures, set_digest(reference), False, args.workers)
    ref_rows = readable(reference)
    print(f"samples: {per_sample} ({len(table)}, {len(valid)} valid)")
    print(f"reference: {DEFAULT_REFERENCE.name} ({int(ref_rows.sum())} readable crystals)")
    print(
        f"| distance | every valid sample | subsample seed 0 (metrics.json) | "
        f"{args.draws} subsamples of {WDIST_MAX_SAMPLES}: mean +- sd | 5-95 % | min-max |"
    )
    print("|---|---|---|---|---|---|")
    for name, values, ref_values in (
        ("density (g/cm^3)", density, ref_summary.density[ref_rows]),
        ("number of elements", num_elements, ref_summary.num_elements[ref_rows]),
    ):
        print(f"| {name} | {spread(values, np.asarray(ref_values, float), valid, args.draws)} |")


if __name__ == "__main__":
    main()
