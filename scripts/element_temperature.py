"""Sample quality against the element temperature (`symmcd sample --element-temperature`).

For each temperature, sample N crystals with the given (default: shipped) model, one draw per
crystal unless told otherwise, and report structural validity (0.5 A and 1 A), compositional
validity (SMACT), the mean number of elements per crystal and its Wasserstein distance to the
whole MP-20 test split, the share of distinct reduced formulas among the samples and the share
of samples whose reduced formula is absent from the shipped training set (train + val). The
formula columns are cheap stand-ins for uniqueness and novelty, which `symmcd evaluate`
measures with StructureMatcher.

    python scripts/element_temperature.py --n 1000 --temperatures 1.0,0.8,0.6
        [--steps 100] [--seed 0] [--max-attempts 1] [--checkpoint model.pt]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
from pymatgen.core import Composition

from symmcd.evaluation.distributions import wasserstein
from symmcd.evaluation.validity import close_contact_free_flags, validity_flags
from symmcd.sampling import sample

DATA = Path(__file__).resolve().parents[1] / "symmcd" / "data" / "mp20"


def formula_table(name: str) -> pd.Series:
    """Reduced formulas of a shipped split."""
    formulas = pd.read_csv(DATA / name, usecols=["pretty_formula"])["pretty_formula"]
    return formulas.map(lambda f: Composition(f).reduced_formula)


def measure(args: argparse.Namespace, temperature: float, test_counts, train_formulas) -> dict:
    started = time.perf_counter()
    crystals = sample(
        args.n,
        checkpoint=args.checkpoint,
        steps=args.steps,
        seed=args.seed,
        max_attempts=args.max_attempts,
        element_temperature=temperature,
        progress=False,
    )
    seconds = time.perf_counter() - started
    structures = [crystal.structure for crystal in crystals]
    struct_valid, comp_valid = validity_flags(structures)
    counts = np.array([len(s.composition.elements) for s in structures])
    formulas = [s.composition.reduced_formula for s in structures]
    return {
        "temperature": temperature,
        "struct_valid": float(np.mean(struct_valid)),
        "struct_valid_1A": float(np.mean(close_contact_free_flags(structures))),
        "comp_valid": float(np.mean(comp_valid)),
        "mean_elements": float(counts.mean()),
        "wdist_elements": wasserstein(counts, test_counts),
        "distinct_formulas": len(set(formulas)) / len(formulas),
        "new_formulas": float(np.mean([f not in train_formulas for f in formulas])),
        "crystals_per_s": len(crystals) / seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--temperatures", default="1.0,0.8,0.6")
    parser.add_argument("--steps", type=int, default=None, help="default: the model's own")
    parser.add_argument("--checkpoint", type=Path, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--max-attempts", type=int, default=1, help="draws per crystal (1: published protocol)"
    )
    args = parser.parse_args()
    test = pd.read_csv(DATA / "test.csv.gz", usecols=["pretty_formula"])["pretty_formula"]
    test_counts = np.array([len(Composition(f).elements) for f in test])
    train_formulas = set(formula_table("train.csv.gz")) | set(formula_table("val.csv.gz"))
    temperatures = [float(t) for t in args.temperatures.split(",")]
    rows = [measure(args, t, test_counts, train_formulas) for t in temperatures]
    model = args.checkpoint or "shipped model (symmcd/weights/default.pt)"
    print(
        f"{args.n} crystals per row, seed {args.seed}, model: {model}, "
        f"{args.max_attempts} draw(s) per crystal, steps {args.steps or 'model default'}. "
        f"MP-20 test split: {test_counts.mean():.2f} elements per crystal."
    )
    print()
    print(
        "| element temperature | struct. valid | at 1 A | comp. valid | elements per crystal"
        " | wdist #elements | distinct formulas | formulas not in train | crystals/s |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['temperature']:g} | {row['struct_valid']:.2%} | {row['struct_valid_1A']:.2%}"
            f" | {row['comp_valid']:.2%} | {row['mean_elements']:.2f} |"
            f" {row['wdist_elements']:.3f} | {row['distinct_formulas']:.2%} |"
            f" {row['new_formulas']:.2%} | {row['crystals_per_s']:.1f} |"
        )


if __name__ == "__main__":
    main()
