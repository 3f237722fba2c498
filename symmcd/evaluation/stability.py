"""Stability metrics of a seeded subsample of valid samples relaxed with CHGNet.

Each chosen sample is relaxed freely and (unless ``symmetric=False``, which halves the cost)
keeping its symmetry (ASE ``FixSymmetry``).
Energies above the reference hull of MP entries (see ``hull.py``) give, over the relaxed subsample:
``stable`` (e_hull <= 0), ``metastable`` (<= 0.1 eV/atom), ``sun`` (stable, unique, novel),
``msun`` (metastable, unique, novel) and ``ssun`` (stable, unique, novel and not P1 after
relaxation). The unsuffixed keys use the free relaxation, ``*_fixsym`` the symmetric one.

The subsample is a prefix of one seeded random order of the valid samples, relaxed in that order:
``relax=k`` picks the first k crystals of any larger run, so a run stopped part-way has relaxed a
uniform random subsample that a smaller ``relax`` reproduces from the crystal store, and raising
``relax`` only relaxes the new crystals.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from symmcd.evaluation.hull import METASTABLE, STABLE, energy_above_hull
from symmcd.evaluation.io import CrystalSet
from symmcd.evaluation.relax import relax_many, relaxed_cif, result_record
from symmcd.evaluation.summary import CrystalSummary


def relaxation_order(indices: np.ndarray, count: int, seed: int) -> np.ndarray:
    """The first ``count`` of ``indices`` in a seeded random order (a prefix of the order that
    any larger ``count`` gives)."""
    return np.random.default_rng(seed).permutation(np.asarray(indices))[:count]


def stability_flags(
    e_hull: np.ndarray, unique: np.ndarray, novel: np.ndarray, spacegroup_after: np.ndarray
) -> dict[str, np.ndarray]:
    """Per-crystal boolean flags from energies above hull (NaN counts as unstable)."""
    finite = np.isfinite(e_hull)
    stable = finite & (np.nan_to_num(e_hull, nan=np.inf) <= STABLE)
    metastable = finite & (np.nan_to_num(e_hull, nan=np.inf) <= METASTABLE)
    new = unique & novel
    return {
        "stable": stable,
        "metastable": metastable,
        "sun": stable & new,
        "msun": metastable & new,
        "ssun": stable & new & (spacegroup_after > 1),
    }


def stability_metrics(
    crystals: CrystalSet,
    summary: CrystalSummary,
    unique: np.ndarray,
    novel: np.ndarray,
    count: int,
    seed: int,
    out_dir: Path,
    progress: bool = True,
    workers: int | None = None,
    symmetric: bool = True,
) -> tuple[dict, list[dict]]:
    """Relax up to ``count`` valid samples (``relaxation_order``) freely and, with ``symmetric``,
    keeping their symmetry, over ``workers`` processes; return metrics + records."""
    rows = relaxation_order(np.flatnonzero(summary.valid), count, seed)
    metrics: dict = {"n_relaxed": int(len(rows))}
    records: list[dict] = []
    modes = ((False, ""), (True, "_fixsym")) if symmetric else ((False, ""),)
    for keep_symmetry, suffix in modes:
        folder = out_dir / ("fixsym" if keep_symmetry else "free")
        folder.mkdir(parents=True, exist_ok=True)
        e_hull = np.full(len(rows), np.nan)
        after = np.zeros(len(rows), dtype=int)
        seconds = []
        label = "relax (symmetric)" if keep_symmetry else "relax (free)"
        structures = [crystals.structures[index] for index in rows]
        results = relax_many(
            structures, keep_symmetry, workers=workers, progress=progress, label=label
        )
        for k, (index, structure, result) in enumerate(zip(rows, structures, results, strict=True)):
            e_hull[k] = energy_above_hull(structure.composition, result.formation_energy_per_atom)
            after[k] = result.spacegroup_after or 0
            seconds.append(result.seconds)
            record = result_record(crystals.names[index], result, keep_symmetry)
            record["e_above_hull"] = None if not np.isfinite(e_hull[k]) else float(e_hull[k])
            records.append(record)
            if result.structure is not None:
                (folder / f"{k:05d}.cif").write_text(relaxed_cif(result.structure, keep_symmetry))
        flags = stability_flags(e_hull, unique[rows], novel[rows], after)
        for name, mask in flags.items():
            metrics[name + suffix] = float(mask.mean()) if len(rows) else None
        metrics["seconds_per_relaxation" + suffix] = float(np.mean(seconds)) if seconds else None
    with open(out_dir / "relaxed.jsonl", "w") as handle:
        for record in records:
            handle.write(json.dumps(record) + "\n")
    return metrics, records
