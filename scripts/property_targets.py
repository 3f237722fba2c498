"""How well property-targeted sampling hits its target, and what guidance costs.

Per target value and guidance weight (plus the model without a target, the reference), samples N
crystals with the conditioned model and the default sampler and measures, on the structurally
valid ones, the property: CHGNet's formation energy per atom after relaxation (as sampled, CHGNet
sees the unrelaxed geometry more than the chemistry), or a symmcd property model's prediction
(``--predictor``). Also validity, space-group match and novelty against the shipped MP-20
training split. One JSON row per (target, guidance), written after each: a stopped run resumes.

    python scripts/property_targets.py --targets=-3.0,-0.5 --guidance 1,2 --n 200 --seed 0
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from pymatgen.core import Composition

from symmcd.checkpoint import CONDITIONED_CHECKPOINT
from symmcd.evaluation.cdvae_property import target_distance
from symmcd.evaluation.io import read_csv_of_cifs
from symmcd.evaluation.novelty import novel_mask
from symmcd.evaluation.relax import relax_many
from symmcd.evaluation.validity import validity_flags
from symmcd.sampling import sample
from symmcd.sampling.config import SamplingConfig

ROOT = Path(__file__).resolve().parents[1]
TRAIN_SPLIT = ROOT / "symmcd" / "data" / "mp20" / "train.csv.gz"
RESULTS = ROOT / "docs" / "results"
SAME_MEASUREMENT = ("property", "measured_with", "checkpoint", "sampler", "n", "seed")
HIT_WINDOW = 0.25  # a crystal "hits" a target when its measured property lies this close


def relaxed(structures, steps: int, workers: int | None) -> tuple[list, np.ndarray, float]:
    """CHGNet-relaxed structures (None where relaxation failed), their formation energies, and
    the fraction of relaxations that converged (fmax 0.1 eV/Å) within ``steps``."""
    results = list(relax_many(structures, steps=steps, workers=workers, label="relax"))
    energies = np.array(
        [np.nan if r.error else r.formation_energy_per_atom for r in results], dtype=float
    )
    converged = float(np.mean([r.converged for r in results])) if results else float("nan")
    return [None if r.error else r.structure for r in results], energies, converged


def predicted(structures, name: str, predictor: Path) -> np.ndarray:
    """A symmcd property model's prediction of ``name`` for each structure (NaN for None)."""
    from symmcd.property.predict import predict_cifs

    with tempfile.TemporaryDirectory(prefix="symmcd-targets-") as tmp:
        for index, structure in enumerate(structures):
            if structure is not None:
                structure.to(filename=str(Path(tmp) / f"s{index:05d}.cif"))
        frame = predict_cifs(predictor, Path(tmp))
    by_id = dict(zip(frame["id"].astype(str), frame.get(name, pd.Series(dtype=float)), strict=True))
    return np.array([by_id.get(f"s{i:05d}", np.nan) for i in range(len(structures))], dtype=float)


def row(args, target: float | None, guidance: float, train) -> dict:
    targets = None if target is None else {args.property: target}
    started = time.perf_counter()
    screen = args.screen if targets else 1  # the untargeted reference is not screened
    crystals = sample(
        args.n,
        checkpoint=args.checkpoint,
        targets=targets,
        guidance=guidance if targets else None,  # no weight without a target
        seed=args.seed,
        progress=False,
        screen=screen,
        screen_scores=target_distance(targets, args.workers or 1) if screen > 1 else None,
    )
    seconds = time.perf_counter() - started
    structures = [c.structure for c in crystals]
    struct_valid, comp_valid = validity_flags(structures)
    valid = [s for s, ok in zip(structures, struct_valid, strict=True) if ok]
    if args.relax_steps:
        valid, energies, converged = relaxed(valid, args.relax_steps, args.workers)
    if args.predictor is not None:
        values = predicted(valid, args.property, args.predictor)
    elif args.property == "formation_energy_per_atom" and args.relax_steps:
        values = energies
    else:
        raise SystemExit(f"measuring {args.property} needs --predictor (or relaxation for E_form)")
    known = values[np.isfinite(values)]
    formulas = [s.composition.reduced_formula for s in structures]
    novel = novel_mask(structures, formulas, *train) if train else None
    q25, median, q75 = np.quantile(known, [0.25, 0.5, 0.75]) if len(known) else [np.nan] * 3
    out = {
        "target": target,
        "guidance": guidance if target is not None else None,
        "n": len(structures),
        "struct_valid": float(struct_valid.mean()),
        "comp_valid": float(comp_valid.mean()),
        "novel": None if novel is None else float(novel.mean()),
        "sg_match": float(np.mean([bool(c.metadata["symmetry_ok"]) for c in crystals])),
        "measured_n": int(len(known)),
        "relax_converged": converged if args.relax_steps else None,
        "median": float(median),
        "q25": float(q25),
        "q75": float(q75),
        "mean": float(known.mean()) if len(known) else None,
        "sampling_seconds": round(seconds, 1),
        "draws_per_crystal": float(np.mean([c.metadata["attempts"] for c in crystals])),
    }
    if target is not None and len(known):
        out["mae_to_target"] = float(np.mean(np.abs(known - target)))
        out["within_0.5"] = float(np.mean(np.abs(known - target) <= 0.5))
        out["within_0.25"] = float(np.mean(np.abs(known - target) <= HIT_WINDOW))
    print(json.dumps(out), flush=True)
    out["values"] = [round(float(v), 4) for v in values]  # per valid crystal, NaN = failed
    return out


def training_set():
    """(structures, reduced formulas) of the shipped training split, parsed on demand."""
    crystals = read_csv_of_cifs(TRAIN_SPLIT, lazy=True)
    pretty = pd.read_csv(TRAIN_SPLIT, usecols=["pretty_formula"])["pretty_formula"]
    return crystals.structures, [Composition(f).reduced_formula for f in pretty]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--property", default="formation_energy_per_atom")
    parser.add_argument("--targets", default="-3.0,-2.0,-1.0,-0.5")
    parser.add_argument("--guidance", default="1,2")
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--checkpoint", type=Path, default=CONDITIONED_CHECKPOINT)
    parser.add_argument("--predictor", type=Path, default=None, help="symmcd property model.pt")
    parser.add_argument("--no-novelty", action="store_true")
    parser.add_argument("--no-reference", action="store_true", help="skip the untargeted row")
    parser.add_argument("--relax-steps", type=int, default=100, help="0: measure as sampled")
    parser.add_argument(
        "--screen", type=int, default=1, help="K: keep the best n of K x n by CDVAE's E_form"
    )
    parser.add_argument("--workers", type=int, default=None, help="relaxation processes")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    out = args.out or RESULTS / f"property_targets_{args.property}.json"
    train = None if args.no_novelty else training_set()
    config = SamplingConfig()
    measured = "CHGNet formation energy" if args.predictor is None else "a symmcd property model"
    measured += " (predicted, not computed)" if args.predictor is not None else ""
    measured += (
        f" after CHGNet relaxation (FIRE, up to {args.relax_steps} steps)"
        if args.relax_steps
        else ", on the crystals as sampled"
    )
    screen = f", screen {args.screen}: the best of {args.screen} x n by CDVAE's formation energy"
    record = {
        "property": args.property,
        "measured_with": measured,
        "checkpoint": str(args.checkpoint).replace(str(ROOT) + "/", ""),
        "sampler": f"default (repulsion {config.repulsion:g} Å, {config.element_decoding} "
        f"elements, up to {config.max_attempts} draws, 100 steps)"
        + (screen if args.screen > 1 else ""),
        "n": args.n,
        "seed": args.seed,
        "rows": [],
        "command": "python scripts/property_targets.py "
        + " ".join(shlex.quote(a) for a in sys.argv[1:]),
    }
    if args.predictor is not None:
        record["predictor"] = predictor_summary(args.predictor)
    record["rows"] = finished_rows(out, record)
    done = {(r["target"], r["guidance"]) for r in record["rows"]}
    plan = [(float(t), float(g)) for g in args.guidance.split(",") for t in args.targets.split(",")]
    plan += [] if args.no_reference else [(None, 0.0)]  # last: the targeted rows matter most
    for target, guidance in plan:
        if (target, None if target is None else guidance) in done:
            continue
        record["rows"].append(row(args, target, guidance, train))
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(record, indent=1) + "\n")  # after each row: a stop resumes
    print(f"wrote {out}")


def predictor_summary(predictor: Path) -> dict:
    """What the property model is and how well it does on the test split (its metrics.json)."""
    metrics_path = predictor.parent / "metrics.json"
    if not metrics_path.is_file():
        return {"model": predictor.name}
    metrics = json.loads(metrics_path.read_text())
    keys = ("test_mae", "test_labels", "train_labels", "best_epoch", "parameters")
    return {"model": predictor.name, "config": metrics.get("config")} | {
        k: metrics.get(k) for k in keys
    }


def finished_rows(out: Path, record: dict) -> list[dict]:
    """Rows of an earlier run of the same measurement in ``out``, so a stopped run resumes."""
    if not out.is_file():
        return []
    earlier = json.loads(out.read_text())
    same = all(earlier.get(k) == record[k] for k in SAME_MEASUREMENT)
    return earlier.get("rows", []) if same else []


if __name__ == "__main__":
    main()
