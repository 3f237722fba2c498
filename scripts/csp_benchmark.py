"""Crystal structure prediction on MP-20 test, with DiffCSP's protocol, plus energy ranking.

For each test crystal (all 9,046, or a seeded subsample ``--compositions N``), ``symmcd csp``'s
``predict_many`` samples k candidates of its reduced formula (default sampler: redraws of
collapsed candidates included; test crystals sharing a formula share its candidates) and each
is compared with the true structure by
``StructureMatcher(stol=0.5, angle_tol=10, ltol=0.3)``, as DiffCSP's ``compute_metrics.py``:

* ``k=1``: the first sampled candidate (unranked) matches, both it and the true crystal valid
  (DiffCSP's ``RecEval``: structural and SMACT validity);
* ``k=20``: any valid candidate matches (DiffCSP's ``RecEvalBatch``); RMSE = the smallest
  normalised RMS distance among the matching candidates, averaged over matched crystals;
* ``top-1 by CHGNet energy of 20``: the lowest-static-energy candidate matches (a k=1 answer
  chosen with an energy model; no peer reports it);
* the same restricted to test compositions whose reduced formula is absent from the offline
  training set (MP-20 shares polymorphs across its splits).

Writes ``--out`` (JSON with per-composition rows) and prints the table.

    python scripts/csp_benchmark.py [--compositions 200] [--k 20] [--seed 0]
        [--out docs/results/csp_benchmark.json]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Composition, Structure
from tqdm import tqdm

from symmcd.csp import check_formulas, predict_many
from symmcd.errors import SymmcdError
from symmcd.evaluation.io import DEFAULT_REFERENCE, DEFAULT_TRAIN
from symmcd.evaluation.validity import composition_is_valid, structure_is_valid

ROOT = Path(__file__).resolve().parents[1]
MATCHER = {"stol": 0.5, "angle_tol": 10, "ltol": 0.3}
CHUNK = 25  # formulas sampled together (25 x 20 candidates = one batch of 500)


def rms(matcher: StructureMatcher, candidate: Structure, truth: Structure) -> float | None:
    try:
        result = matcher.get_rms_dist(candidate, truth)
    except Exception:  # noqa: BLE001 - DiffCSP counts a matcher failure as no match
        return None
    return None if result is None else float(result[0])


def compare(truth: Structure, candidates: list, matcher: StructureMatcher) -> dict:
    """DiffCSP's match columns for one test crystal and the candidates of its formula."""
    truth_valid = structure_is_valid(truth) and composition_is_valid(truth.composition)
    distances = []
    for candidate in sorted(candidates, key=lambda c: c.index):
        s = candidate.structure
        valid = structure_is_valid(s) and composition_is_valid(s.composition)
        distances.append(rms(matcher, s, truth) if valid else None)
    best_by_energy = next(c for c in candidates if c.rank == 1)
    matched = [d for d in distances if d is not None]
    return {
        "truth_valid": truth_valid,
        "k1_rms": distances[0] if truth_valid else None,
        "k_rms": min(matched) if matched else None,
        "energy_top1_rms": distances[best_by_energy.index],
        "candidates": len(candidates),
    }


def candidates_of(formulas: list[str], args: argparse.Namespace) -> dict[str, list]:
    """Candidates of every formula, sampled ``CHUNK`` formulas at a time in shared batches;
    a formula no template can hold (within the model's cell size) gets an error string."""
    found: dict[str, list | str] = {}
    chunks = [formulas[i : i + CHUNK] for i in range(0, len(formulas), CHUNK)]
    for chunk in tqdm(chunks, desc="formulas", unit=f"{CHUNK} formulas"):
        usable = []
        for formula in chunk:
            try:
                check_formulas([formula])
                plan_check(formula)
                usable.append(formula)
            except SymmcdError as error:
                found[formula] = str(error)
        if usable:
            found.update(
                predict_many(
                    usable,
                    n=args.k,
                    checkpoint=args.checkpoint,
                    progress=False,
                    seed=args.seed,
                    **({} if args.repulsion is None else {"repulsion": args.repulsion}),
                )
            )
    return found


@functools.cache
def shipped_statistics():
    from symmcd.sampling.sampler import load_model

    return load_model(None).statistics


def plan_check(formula: str) -> None:
    """Raise the sampler's InputError when no Wyckoff template of the model holds ``formula``."""
    from symmcd.sampling import conditions, plan

    statistics = shipped_statistics()
    plan.plan_formula(
        1, statistics, conditions.parse_formula(formula), None, np.random.default_rng(0)
    )


def summarise(rows: list[dict]) -> dict:
    """Match rates (share of all compositions) and mean RMS of the matched ones."""
    n = len(rows)
    out = {"compositions": n, "no_template": sum("error" in r for r in rows)}
    for key, name in (("k1_rms", "k1"), ("k_rms", "k20"), ("energy_top1_rms", "energy_top1")):
        values = [r.get(key) for r in rows]
        matched = [v for v in values if v is not None]
        out[f"{name}_match_rate"] = len(matched) / n if n else float("nan")
        out[f"{name}_rmse"] = float(np.mean(matched)) if matched else None
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compositions", type=int, default=200, help="0: all 9,046")
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--checkpoint", type=Path, default=None)
    parser.add_argument("--repulsion", type=float, default=None, help="default: the sampler's")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "docs" / "results" / "csp_benchmark.json"
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    test = pd.read_csv(DEFAULT_REFERENCE)
    if args.compositions:
        test = test.sample(args.compositions, random_state=args.seed)
    train_formulas = set()
    for path in DEFAULT_TRAIN:
        formulas = pd.read_csv(path, usecols=["pretty_formula"])["pretty_formula"]
        train_formulas |= {Composition(f).reduced_formula for f in formulas}
    matcher = StructureMatcher(**MATCHER)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        truths = [Structure.from_str(cif, fmt="cif") for cif in test["cif"]]
        formulas = [t.composition.reduced_formula for t in truths]
        found = candidates_of(sorted(set(formulas)), args)
        rows = []
        for material_id, truth, formula in tqdm(
            zip(test["material_id"], truths, formulas, strict=True), total=len(truths)
        ):
            row = {"material_id": material_id, "formula": formula}
            if isinstance(found[formula], str):
                row["error"] = found[formula]
            else:
                row.update(compare(truth, found[formula], matcher))
            row["formula_in_train"] = formula in train_formulas
            rows.append(row)
    unseen = [r for r in rows if not r["formula_in_train"]]
    result = {
        "command": "python scripts/csp_benchmark.py "
        f"--compositions {args.compositions} --k {args.k} --seed {args.seed}"
        + (f" --checkpoint {args.checkpoint}" if args.checkpoint else "")
        + (f" --repulsion {args.repulsion}" if args.repulsion is not None else ""),
        "protocol": "DiffCSP: StructureMatcher(stol=0.5, angle_tol=10, ltol=0.3); k=1 first "
        "sampled candidate, both valid; k=20 any valid candidate; energy_top1 = lowest CHGNet "
        "static energy per atom of the k candidates",
        "k": args.k,
        "all": summarise(rows),
        "formula_not_in_train": summarise(unseen),
        "seconds": round(time.perf_counter() - started, 1),
        "cores": os.cpu_count(),
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"| test compositions | k=1 | k={args.k} | top-1 by CHGNet energy of {args.k} |")
    print("|---|---|---|---|")
    for name, s in (
        ("all", result["all"]),
        ("formula not in train", result["formula_not_in_train"]),
    ):
        cells = []
        for key in ("k1", "k20", "energy_top1"):
            rmse = s[f"{key}_rmse"]
            cells.append(f"{s[f'{key}_match_rate']:.2%} / {rmse:.4f}" if rmse else "0 %")
        print(f"| {name} ({s['compositions']}) | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
