"""Where compositional validity is lost: samples against the MP-20 test split, by crystal size.

Reads a samples folder written by `symmcd sample` (its `samples.jsonl`: reduced formula and
number of orbits per crystal) and the MP-20 test split (orbits = spglib's symmetry-distinct
sites at symprec 0.1), and prints, for each number of distinct elements, how many crystals have
it and the share that is compositionally valid (SMACT, as `symmcd evaluate`), then the mean
number of distinct elements for each number of orbits: how often the model puts one element on
several orbits, as real crystals do.

    python scripts/composition_analysis.py SAMPLES_DIR
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from pymatgen.core import Composition, Structure

from symmcd.evaluation.templates import symmetry_dataset
from symmcd.evaluation.validity import composition_is_valid

TEST_SPLIT = Path(__file__).resolve().parents[1] / "symmcd" / "data" / "mp20" / "test.csv.gz"


def sample_table(samples_dir: Path) -> pd.DataFrame:
    lines = (samples_dir / "samples.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in lines if line.strip()]
    return pd.DataFrame(
        {
            "formula": [row["formula"] for row in rows],
            "orbits": [row["num_orbits"] for row in rows],
        }
    )


def test_table() -> pd.DataFrame:
    data = pd.read_csv(TEST_SPLIT, usecols=["pretty_formula", "cif"])
    orbits = []
    for cif in data["cif"]:
        dataset = symmetry_dataset(Structure.from_str(cif, fmt="cif"))
        orbits.append(len(set(dataset.equivalent_atoms)) if dataset is not None else 0)
    return pd.DataFrame({"formula": data["pretty_formula"], "orbits": orbits})


def describe(table: pd.DataFrame) -> pd.DataFrame:
    compositions = [Composition(formula) for formula in table["formula"]]
    return table.assign(
        elements=[len(c.elements) for c in compositions],
        comp_valid=[composition_is_valid(c) for c in compositions],
    )


def share_valid(table: pd.DataFrame) -> str:
    return f"{table.comp_valid.mean():.1%}" if len(table) else "-"


def mean_elements(table: pd.DataFrame) -> str:
    return f"{np.mean(table.elements):.2f}" if len(table) else "-"


def print_by(
    column: str,
    label: str,
    value: Callable[[pd.DataFrame], str],
    value_label: str,
    samples: pd.DataFrame,
    test: pd.DataFrame,
) -> None:
    """A markdown table: per value of `column`, counts and `value` of samples and test crystals."""
    print(f"| {label} | samples | {value_label} | test crystals | {value_label} |")
    print("|---|---|---|---|---|")
    for k in sorted(set(samples[column]) | set(test[column])):
        mine, theirs = samples[samples[column] == k], test[test[column] == k]
        print(f"| {k} | {len(mine)} | {value(mine)} | {len(theirs)} | {value(theirs)} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("samples_dir", type=Path)
    args = parser.parse_args()
    samples = describe(sample_table(args.samples_dir))
    test = describe(test_table())
    print(f"samples: {args.samples_dir} ({len(samples)}); reference: MP-20 test ({len(test)})")
    print(
        f"comp. valid: samples {samples.comp_valid.mean():.2%}, test {test.comp_valid.mean():.2%};"
        f" mean distinct elements: samples {samples.elements.mean():.2f},"
        f" test {test.elements.mean():.2f}"
    )
    print()
    print_by("elements", "distinct elements", share_valid, "comp. valid", samples, test)
    print()
    print_by("orbits", "orbits", mean_elements, "mean distinct elements", samples, test)


if __name__ == "__main__":
    main()
