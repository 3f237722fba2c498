"""One-draw sample quality of a model: the fixed protocol of the network ablation.

Samples N crystals with one draw each (the published protocol: collapsed and off-symmetry
crystals count as failures) at each seed and reports, per seed and pooled: structural validity
(0.5 A, the field's), the same at 1 A, compositional validity (SMACT, as ``symmcd evaluate``),
the share whose spglib group (symprec 0.1) equals the sampled one, the Wasserstein distance of
the number of elements of the valid samples to the MP-20 test split's, the share whose elements
the charge-balanced decoding changed, and crystals per second.
Appends one JSON row per call to ``--out`` (machine-readable; the docs' ablation table is made
from it) and prints it.

    python scripts/one_draw_table.py --label "v2 (shipped)" [--checkpoint model.pt]
        [--n 1000] [--seeds 0,1] [--steps 100] [--corrector-steps 1] [--precision 32]
        [--repulsion 1.0] [--element-decoding charge-balanced]
        [--out docs/results/ablation.jsonl]
"""

from __future__ import annotations

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


def reference_num_elements() -> np.ndarray:
    formulas = pd.read_csv(TEST_SPLIT, usecols=["pretty_formula"])["pretty_formula"]
    return np.array([len(Composition(f).elements) for f in formulas])


def measure(args: argparse.Namespace, seed: int, reference: np.ndarray) -> dict:
    started = time.perf_counter()
    crystals = sample(
        args.n,
        checkpoint=args.checkpoint,
        steps=args.steps,
        seed=seed,
        precision=args.precision,
        max_attempts=1,
        corrector_steps=args.corrector_steps,
        repulsion=args.repulsion,
        element_decoding=args.element_decoding,
        progress=False,
    )
    seconds = time.perf_counter() - started
    structures = [crystal.structure for crystal in crystals]
    struct_valid, comp_valid = validity_flags(structures)
    valid = struct_valid & comp_valid
    detected = [spacegroup_and_template(s)[0] for s in structures]
    sampled = [crystal.metadata["spacegroup"] for crystal in crystals]
    elements = np.array([len(s.composition.elements) for s in structures])
    return {
        "seed": seed,
        "n": len(structures),
        "struct_valid": float(struct_valid.mean()),
        "struct_valid_1A": float(close_contact_free_flags(structures).mean()),
        "comp_valid": float(comp_valid.mean()),
        "sg_match": float(np.mean([d == s for d, s in zip(detected, sampled, strict=True)])),
        "wdist_num_elements": wasserstein(elements[valid], reference),
        "rebalanced": float(
            np.mean([c.metadata.get("rebalanced_orbits", 0) > 0 for c in crystals])
        ),
        "seconds": round(seconds, 1),
        "crystals_per_s": round(len(structures) / seconds, 2),
    }


def pooled(rows: list[dict]) -> dict:
    """Means over seeds, weighted by crystals (all seeds have the same n)."""
    keys = ("struct_valid", "struct_valid_1A", "comp_valid", "sg_match", "wdist_num_elements")
    keys += ("rebalanced",)
    out = {key: float(np.mean([row[key] for row in rows])) for key in keys}
    out["crystals_per_s"] = round(
        sum(row["n"] for row in rows) / sum(row["seconds"] for row in rows), 2
    )
    return out


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
    reference = reference_num_elements()
    load_before = os.getloadavg()
    rows = [measure(args, int(seed), reference) for seed in args.seeds.split(",")]
    record = {
        "label": args.label,
        "checkpoint": str(args.checkpoint) if args.checkpoint else "shipped",
        "steps": args.steps,
        "corrector_steps": args.corrector_steps,
        "repulsion": args.repulsion,
        "element_decoding": args.element_decoding,
        "precision": args.precision,
        **pooled(rows),
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
    print(
        f"| {args.label} | {record['struct_valid']:.2%} | {record['struct_valid_1A']:.2%} | "
        f"{record['comp_valid']:.2%} | {record['sg_match']:.2%} | "
        f"{record['wdist_num_elements']:.3f} | {record['crystals_per_s']:.1f} |"
    )
    for row in rows:
        print(
            f"  seed {row['seed']}: struct {row['struct_valid']:.2%}, 1A "
            f"{row['struct_valid_1A']:.2%}, comp {row['comp_valid']:.2%}, SG match "
            f"{row['sg_match']:.2%}, wdist #el {row['wdist_num_elements']:.3f}, "
            f"{row['crystals_per_s']:.1f}/s"
        )


if __name__ == "__main__":
    main()
