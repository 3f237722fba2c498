"""Build the small reference files shipped in ``symmcd/evaluation/data/`` (run once).

    python -m symmcd.evaluation.build_data \
        /work/shared/data/mp_elemental_refs/2023-02-07-mp-elemental-reference-entries.json.gz

* ``elemental_refs.json``: energy per atom (eV, MP2020-corrected) of the lowest-energy Materials
  Project entry of each element (Matbench Discovery's reference entries, 2023-02-07);
* ``magpie_scaler.json``: means / stds of raw Magpie fingerprints over the shipped MP-20 train set;
* ``mp20_hull_points.csv.gz``: one point per MP-20 entry (train + val + test) that carries both a
  DFT formation energy and an energy above hull: the formation energy minus the energy above
  hull, i.e. the MP convex hull at that composition.
"""

from __future__ import annotations

import argparse
import gzip
import json
from pathlib import Path

import numpy as np
import pandas as pd
from pymatgen.core import Composition
from pymatgen.entries.computed_entries import ComputedEntry

from symmcd.evaluation.coverage import SCALER_PATH, composition_fingerprint, fit_composition_scaler
from symmcd.evaluation.io import DEFAULT_REFERENCE, DEFAULT_TRAIN, read_csv_of_cifs

DATA_DIR = Path(__file__).resolve().parent / "data"


def elemental_reference_energies(entries_file: Path) -> dict[str, float]:
    """Element symbol -> corrected energy per atom of its MP ground-state entry."""
    with gzip.open(entries_file, "rt") as handle:
        raw = json.load(handle)
    return {
        symbol: float(ComputedEntry.from_dict(entry).energy_per_atom)
        for symbol, entry in sorted(raw.items())
    }


def hull_points(csv_files: list[Path]) -> pd.DataFrame:
    """MP-20 rows with formation energy and e_above_hull -> (material_id, formula, e_hull)."""
    frames = []
    for path in csv_files:
        frame = pd.read_csv(path, usecols=lambda c: c != "cif")
        frame = frame.dropna(subset=["formation_energy_per_atom", "e_above_hull"])
        frames.append(frame)
    rows = pd.concat(frames).drop_duplicates("material_id")
    formulas = [Composition(f).reduced_formula for f in rows["pretty_formula"]]
    points = rows["formation_energy_per_atom"] - rows["e_above_hull"]
    return pd.DataFrame(
        {"material_id": rows["material_id"], "formula": formulas, "e_form_hull": points.round(6)}
    )


def magpie_scaler(train_files: list[Path]) -> dict[str, list[float]]:
    """Scaler fitted on the Magpie fingerprints of all training structures."""
    compositions = []
    for path in train_files:
        compositions += [s.composition for s in read_csv_of_cifs(path).structures if s]
    raw = np.array([composition_fingerprint(c) for c in compositions])
    return fit_composition_scaler(raw)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("elemental_entries", type=Path)
    args = parser.parse_args()
    DATA_DIR.mkdir(exist_ok=True)
    refs = elemental_reference_energies(args.elemental_entries)
    (DATA_DIR / "elemental_refs.json").write_text(json.dumps(refs, indent=1) + "\n")
    points = hull_points([*DEFAULT_TRAIN, DEFAULT_REFERENCE])
    points.to_csv(DATA_DIR / "mp20_hull_points.csv.gz", index=False)
    SCALER_PATH.write_text(json.dumps(magpie_scaler(list(DEFAULT_TRAIN))) + "\n")
    print(f"{len(refs)} elements, {len(points)} hull points, scaler written")


if __name__ == "__main__":
    main()
