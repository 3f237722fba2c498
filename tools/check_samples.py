"""Acceptance check of a `symmcd sample` output folder.

Each CIF of DIR/samples.jsonl passes when spglib (symprec 0.1) finds its JSONL `spacegroup` and
orbits with exactly the multiplicities of its `wyckoff` template. With one requested space group
or a formula (DIR/summary.json, or the options) every crystal must also have it. Exit status 0
when the share of passing crystals reaches the target, 1 otherwise, 2 without samples.jsonl.

    python tools/check_samples.py DIR [--spacegroup N] [--formula F] [--target 0.995]
"""

import argparse
import json
import re
import sys
import warnings
from collections import Counter
from pathlib import Path

import spglib
from pymatgen.core import Composition, Structure

SYMPREC = 0.1


def template_multiplicities(wyckoff: str) -> list[int]:
    """Multiplicities of a template string like 'Fm-3m: Na 4a, Cl 4b' -> [4, 4]."""
    return sorted(int(m) for m in re.findall(r"\s(\d+)[a-zA-Z]\b", wyckoff.split(":", 1)[1]))


def check_crystal(path: Path, record: dict) -> dict:
    """spglib's view of one CIF compared with its JSONL record."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            structure = Structure.from_file(path)
        except Exception:  # e.g. atoms on top of each other: pymatgen refuses the file
            return {"spacegroup": 0, "orbits_ok": False, "formula": None, "readable": False}
        cell = (structure.lattice.matrix, structure.frac_coords, structure.atomic_numbers)
        dataset = spglib.get_symmetry_dataset(cell, symprec=SYMPREC)
    formula = structure.composition.reduced_formula
    if dataset is None:
        return {"spacegroup": 0, "orbits_ok": False, "formula": formula}
    orbit_sizes = sorted(Counter(dataset.equivalent_atoms.tolist()).values())
    orbits_ok = orbit_sizes == template_multiplicities(record["wyckoff"])
    return {"spacegroup": int(dataset.number), "orbits_ok": orbits_ok, "formula": formula}


def fraction(flags: list[bool]) -> str:
    return f"{sum(flags)}/{len(flags)} ({sum(flags) / max(len(flags), 1):.2%})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Check that sampled CIFs keep their symmetry.")
    parser.add_argument("dir", type=Path)
    parser.add_argument("--spacegroup", type=int, default=None, help="expected single group")
    parser.add_argument("--formula", default=None, help="expected reduced formula")
    parser.add_argument("--target", type=float, default=0.995)
    args = parser.parse_args(argv)

    records_path, summary = args.dir / "samples.jsonl", args.dir / "summary.json"
    if not records_path.is_file():
        print(f"error: {records_path} does not exist", file=sys.stderr)
        return 2
    records = [json.loads(line) for line in records_path.read_text().splitlines() if line.strip()]
    conditions = json.loads(summary.read_text()).get("conditions", {}) if summary.is_file() else {}
    groups = conditions.get("spacegroups") or []
    expected_group = args.spacegroup or (groups[0] if len(groups) == 1 else None)
    formula = args.formula or conditions.get("formula")
    expected_formula = Composition(formula).reduced_formula if formula else None

    results = [check_crystal(args.dir / r["file"], r) for r in records]
    pairs = list(zip(results, records, strict=True))
    n = len(results)
    same_group = [res["spacegroup"] == r["spacegroup"] for res, r in pairs]
    orbits_ok = [res["orbits_ok"] for res in results]
    passed = [a and b for a, b in zip(same_group, orbits_ok, strict=True)]
    collapsed = [bool(r.get("collapsed")) for r in records]
    print(f"crystals: {n}")
    print(f"CIF readable by pymatgen: {fraction([res.get('readable', True) for res in results])}")
    print(f"spglib space group == samples.jsonl: {fraction(same_group)}")
    print(f"orbits with their Wyckoff multiplicity: {fraction(orbits_ok)}")
    print(f"both (pass): {fraction(passed)}, target {args.target:.1%}")
    print(f"flagged collapsed (atoms < 0.5 A apart): {fraction(collapsed)}")
    kept = [ok for ok, flag in zip(passed, collapsed, strict=True) if not flag]
    print(f"pass among crystals not flagged collapsed: {fraction(kept)}")
    ok = sum(passed) / max(n, 1) >= args.target
    if expected_group is not None:
        in_group = sum(r["spacegroup"] == expected_group == res["spacegroup"] for res, r in pairs)
        print(f"in requested space group {expected_group}: {in_group}/{n}")
        ok = ok and in_group == n
    if expected_formula is not None:
        right = sum(res["formula"] == expected_formula for res in results)
        print(f"reduced formula {expected_formula}: {right}/{n}")
        ok = ok and right == n
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
