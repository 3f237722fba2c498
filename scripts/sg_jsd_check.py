"""Does ``symmcd evaluate`` report the SG JSD the field's code computes? An independent check.

Takes N seeded MP-20 test crystals as "samples", runs ``symmcd.evaluate`` on them against the
whole test split, and recomputes the distance without symmcd's symmetry or distance code: pymatgen's
``SpacegroupAnalyzer`` at its default tolerances on every crystal (samples: those that
``per_sample.csv`` marks valid, as the field's code keeps valid samples only), histograms over
1..230, scipy's ``jensenshannon`` with its default (natural) logarithm.

    python scripts/sg_jsd_check.py [--n 200] [--seed 0] [--out docs/results/sg_jsd_check.json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from pymatgen.core import Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer
from scipy.spatial.distance import jensenshannon
from tqdm import tqdm

from symmcd.evaluation import evaluate
from symmcd.evaluation.io import DEFAULT_REFERENCE

ROOT = Path(__file__).resolve().parents[1]


def pymatgen_groups(cifs: list[str], label: str) -> list[int]:
    groups = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for cif in tqdm(cifs, desc=label, unit="crystal"):
            groups.append(
                SpacegroupAnalyzer(Structure.from_str(cif, fmt="cif")).get_space_group_number()
            )
    return groups


def histogram(groups: list[int]) -> np.ndarray:
    counts = np.bincount(groups, minlength=231)[1:].astype(float)
    return counts / counts.sum()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "results" / "sg_jsd_check.json")
    args = parser.parse_args()
    test = pd.read_csv(DEFAULT_REFERENCE)
    chosen = test.sample(args.n, random_state=args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        samples = Path(tmp) / "samples.csv"
        chosen.to_csv(samples, index=False)
        metrics = evaluate(samples, None, None, Path(tmp) / "eval", report=False, coverage=False)
        per_sample = pd.read_csv(Path(tmp) / "eval" / "per_sample.csv")
    valid = (per_sample["struct_valid"] & per_sample["comp_valid"]).to_numpy()
    sample_groups = pymatgen_groups(list(chosen["cif"][valid]), "samples")
    reference_groups = pymatgen_groups(list(test["cif"]), "reference")
    independent = float(jensenshannon(histogram(sample_groups), histogram(reference_groups)))
    result = {
        "command": f"python scripts/sg_jsd_check.py --n {args.n} --seed {args.seed}",
        "n": args.n,
        "symmcd_sg_jsd": metrics["sg_jsd"],
        "independent_sg_jsd": independent,
        "difference": abs(metrics["sg_jsd"] - independent),
        "valid_samples": int(valid.sum()),
        "symmcd_sg_jsd_base2_all_readable": metrics["sg_jsd_base2_all_readable"],
    }
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
