"""One-draw sample quality of a model: the fixed protocol of the network ablation.

Samples N crystals with one draw each (the published protocol: collapsed and off-symmetry
crystals count as failures) at each seed and appends one JSON row to ``--out`` (the docs'
ablation table is made from it) with, per seed and pooled: structural validity (0.5 A, the
field's, and 1 A), compositional validity (SMACT, as ``symmcd evaluate``), the share whose spglib
group (symprec 0.1) is the sampled one, the Wasserstein distance of the valid samples' number of
elements to the MP-20 test split's, the share the charge-balanced decoding changed, and speed.

    python scripts/one_draw_table.py --label "v2 (shipped)" [--checkpoint model.pt] [--n 1000]
        [--seeds 0,1] [--steps 100] [--corrector-steps 1] [--precision 32] [--repulsion 1.0]
        [--element-decoding charge-balanced] [--threads N] [--out docs/results/ablation.jsonl]
"""

import argparse
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from pymatgen.core import Composition

from symmcd.cli import add_sampling_options
from symmcd.evaluation.distributions import wasserstein
from symmcd.evaluation.templates import spacegroup_and_template
from symmcd.evaluation.validity import close_contact_free_flags, validity_flags
from symmcd.sampling import sample
from symmcd.sampling.config import PRESETS

ROOT = Path(__file__).resolve().parents[1]
TEST_SPLIT = ROOT / "symmcd" / "data" / "mp20" / "test.csv.gz"
DEFAULT_OUT = ROOT / "docs" / "results" / "ablation.jsonl"
LEVERS = ("steps", "corrector_steps", "repulsion", "element_decoding", "precision")
POOLED = "struct_valid struct_valid_1A comp_valid sg_match wdist_num_elements rebalanced".split()


def measure(args: argparse.Namespace, seed: int, reference: np.ndarray) -> dict:
    """One seed's metrics (see the module docstring)."""
    levers = {name: getattr(args, name) for name in LEVERS}
    started = time.perf_counter()
    crystals = sample(
        args.n, checkpoint=args.checkpoint, seed=seed, max_attempts=1, progress=False, **levers
    )
    seconds = time.perf_counter() - started
    structures = [crystal.structure for crystal in crystals]
    struct_valid, comp_valid = validity_flags(structures)
    elements = np.array([len(s.composition.elements) for s in structures])
    detected = [spacegroup_and_template(s)[0] for s in structures]
    sg_match = [d == c.metadata["spacegroup"] for d, c in zip(detected, crystals, strict=True)]
    rebalanced = [c.metadata.get("rebalanced_orbits", 0) > 0 for c in crystals]
    return {
        "seed": seed,
        "n": len(structures),
        "struct_valid": float(struct_valid.mean()),
        "struct_valid_1A": float(close_contact_free_flags(structures).mean()),
        "comp_valid": float(comp_valid.mean()),
        "sg_match": float(np.mean(sg_match)),
        "wdist_num_elements": wasserstein(elements[struct_valid & comp_valid], reference),
        "rebalanced": float(np.mean(rebalanced)),
        "seconds": round(seconds, 1),
        "crystals_per_s": round(len(structures) / seconds, 2),
    }


def columns(row: dict) -> str:
    """The ablation table's columns of a pooled or per-seed row."""
    return (
        f"{row['struct_valid']:.2%} | {row['struct_valid_1A']:.2%} | {row['comp_valid']:.2%} | "
        f"{row['sg_match']:.2%} | {row['wdist_num_elements']:.3f} | {row['crystals_per_s']:.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", required=True, help="row name, e.g. the lever measured")
    parser.add_argument("--checkpoint", type=Path, default=None, help="model.pt (default shipped)")
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--seeds", default="0,1")
    # the ablation protocol the recorded rows were run with: published, float32, one corrector
    protocol = {**PRESETS["published"], "corrector_steps": 1, "precision": "32"}
    names = ["steps", "corrector_steps", "precision", "repulsion", "element_decoding"]
    add_sampling_options(parser, names, protocol)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    formulas = pd.read_csv(TEST_SPLIT, usecols=["pretty_formula"])["pretty_formula"]
    reference = np.array([len(Composition(f).elements) for f in formulas])
    load_before = os.getloadavg()
    rows = [measure(args, int(seed), reference) for seed in args.seeds.split(",")]
    record = {
        "label": args.label,
        "checkpoint": str(args.checkpoint) if args.checkpoint else "shipped",
        **{name: getattr(args, name) for name in LEVERS},
        # means over seeds, which all have the same n
        **{key: float(np.mean([row[key] for row in rows])) for key in POOLED},
        "crystals_per_s": round(sum(r["n"] for r in rows) / sum(r["seconds"] for r in rows), 2),
        "per_seed": rows,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads",
        "load_average_before": [round(x, 1) for x in load_before],
        "command": "python scripts/one_draw_table.py "
        + " ".join(shlex.quote(a) for a in sys.argv[1:]),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("a") as handle:
        handle.write(json.dumps(record) + "\n")
    print(f"| {args.label} | {columns(record)} |")
    print("; ".join(f"seed {row['seed']}: {columns(row)}" for row in rows))


if __name__ == "__main__":
    main()
