"""Build the small reference files shipped in ``symmcd/evaluation/data/`` (run once).

    python -m symmcd.evaluation.build_data \
        ../shared/data/mp_elemental_refs/2023-02-07-mp-elemental-reference-entries.json.gz \
        --mpts52 ../shared/data/mpts_52/val.csv.gz ../shared/data/mpts_52/test.csv.gz
    python -m symmcd.evaluation.build_data --cache   # after one `symmcd evaluate` run

* ``elemental_refs.json``: energy per atom (eV, MP2020-corrected) of the lowest-energy Materials
  Project entry of each element (Matbench Discovery's reference entries, 2023-02-07);
* ``mp_hull_points.csv.gz``: one point per Materials Project entry at hand that carries both a
  DFT formation energy and an energy above hull (MP-20 train at hand + val + test, then the
  MPTS-52 val + test entries not already in MP-20): the formation energy minus the energy above
  hull, i.e. the MP convex hull at that composition. Columns ``material_id, formula,
  e_form_hull, e_above_hull, dataset`` (``mp20`` or ``mpts52``).
* ``cache/``: copies of what ``symmcd evaluate`` derives from the shipped MP-20 files (the test
  split's descriptors with fingerprints, the training files' descriptors, CHGNet formation
  energies of the test split's seeded 1,000-crystal subsample, CDVAE-model formation energies of
  every readable test crystal), so that a fresh install does not
  spend its first evaluation fingerprinting 9,046 reference crystals. Keyed by the files'
  sha256, so they are used only for exactly these files.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
from pathlib import Path

import pandas as pd
from pymatgen.core import Composition
from pymatgen.entries.computed_entries import ComputedEntry

from symmcd.evaluation.hull import HULL_POINTS_PATH
from symmcd.evaluation.io import DEFAULT_REFERENCE, DEFAULT_TRAIN

DATA_DIR = Path(__file__).resolve().parent / "data"


def elemental_reference_energies(entries_file: Path) -> dict[str, float]:
    """Element symbol -> corrected energy per atom of its MP ground-state entry."""
    with gzip.open(entries_file, "rt") as handle:
        raw = json.load(handle)
    return {
        symbol: float(ComputedEntry.from_dict(entry).energy_per_atom)
        for symbol, entry in sorted(raw.items())
    }


def hull_points(mp20_files: list[Path], mpts52_files: list[Path]) -> pd.DataFrame:
    """Entries with formation energy and e_above_hull -> one hull point each (see above)."""
    frames = []
    for path in mp20_files:
        frame = pd.read_csv(path, usecols=lambda c: c != "cif")
        frame["formula"] = frame["pretty_formula"]
        frame["dataset"] = "mp20"
        frames.append(frame)
    for path in mpts52_files:
        frame = pd.read_csv(path)
        frame = frame.rename(columns={"energy_above_hull": "e_above_hull"})
        frame["formula"] = [_cif_formula(text) for text in frame["cif"]]
        frame["dataset"] = "mpts52"
        frames.append(frame.drop(columns="cif"))
    rows = pd.concat(frames).dropna(subset=["formation_energy_per_atom", "e_above_hull"])
    rows = rows.drop_duplicates("material_id")  # MP-20's row wins over MPTS-52's
    return pd.DataFrame(
        {
            "material_id": rows["material_id"],
            "formula": [Composition(f).reduced_formula for f in rows["formula"]],
            "e_form_hull": (rows["formation_energy_per_atom"] - rows["e_above_hull"]).round(6),
            "e_above_hull": rows["e_above_hull"].round(6),
            "dataset": rows["dataset"],
        }
    )


def _cif_formula(cif: str) -> str:
    """The ``_chemical_formula_sum`` of a CIF (without parsing its structure)."""
    match = re.search(r"^_chemical_formula_sum\s+'?([^'\n]+)'?", cif, flags=re.MULTILINE)
    if match is None:
        raise ValueError("CIF without _chemical_formula_sum")
    return match.group(1).strip()


def ship_cache() -> list[Path]:
    """Copy the cached derivations of the default reference and training files into the
    package (``store.SHIPPED_CACHE``); an InputError names any that is not cached yet."""
    import shutil

    from symmcd.errors import InputError
    from symmcd.evaluation.evaluate import WDIST_MAX_SAMPLES
    from symmcd.evaluation.io import file_digest
    from symmcd.evaluation.store import SHIPPED_CACHE, cache_dir
    from symmcd.evaluation.summary import cache_path

    reference = file_digest(DEFAULT_REFERENCE)
    wanted = [cache_path(reference, True)]
    wanted += [cache_path(file_digest(path), False) for path in DEFAULT_TRAIN]
    energies = cache_dir() / "formation_energy"
    wanted.append(energies / f"{reference}-all-0-{WDIST_MAX_SAMPLES}.npy")
    cdvae = sorted(energies.glob(f"{reference}-cdvae-mp20-*.npy"))  # named by its row count
    wanted.append(cdvae[-1] if cdvae else energies / f"{reference}-cdvae-mp20-N.npy")
    missing = [str(path) for path in wanted if not path.is_file()]
    if missing:
        raise InputError("not cached yet (run `symmcd evaluate` once): " + ", ".join(missing))
    if SHIPPED_CACHE.exists():
        shutil.rmtree(SHIPPED_CACHE)
    copied = []
    for path in wanted:
        target = SHIPPED_CACHE / path.relative_to(cache_dir())
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        copied.append(target)
    return copied


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("elemental_entries", type=Path, nargs="?")
    parser.add_argument("--mpts52", type=Path, nargs="*", default=[], help="MPTS-52 CSVs")
    parser.add_argument("--cache", action="store_true", help="ship the evaluation caches")
    args = parser.parse_args()
    if args.cache:
        for path in ship_cache():
            print(f"{path} ({path.stat().st_size / 1e6:.1f} MB)")
        return
    if args.elemental_entries is None:
        parser.error("give the elemental reference entries file (or --cache)")
    DATA_DIR.mkdir(exist_ok=True)
    refs = elemental_reference_energies(args.elemental_entries)
    (DATA_DIR / "elemental_refs.json").write_text(json.dumps(refs, indent=1) + "\n")
    points = hull_points([*DEFAULT_TRAIN, DEFAULT_REFERENCE], args.mpts52)
    points.to_csv(HULL_POINTS_PATH, index=False)
    print(f"{len(refs)} elements, {len(points)} hull points written")


if __name__ == "__main__":
    main()
