"""Round trip structure -> AsymmetricUnit -> structure on the MP-20 test set, and
lattice -> k -> lattice on every MP-20 lattice at hand.

    python scripts/roundtrip_mp20.py [--data ../shared/data/mp_20] [--workers 2] [--limit N]

Prints the share of crystals whose rebuilt conventional cell matches the original under
pymatgen's StructureMatcher (default tolerances), the share whose spglib group (symprec 0.1) on
the rebuilt cell equals the recorded one (and the unit's own group), the failures with reasons,
mean orbits per crystal vs mean atoms per conventional cell, and the worst lattice round-trip
errors.
"""

import argparse
import re
import time
import warnings
from multiprocessing import Pool
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from symmcd.symmetry.lattice import k_to_lattices, lattices_to_k

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "mp_20"
_CELL_KEYS = ("a", "b", "c", "alpha", "beta", "gamma")


def roundtrip_one(row: tuple[str, str, int]) -> dict:
    """Round trip one crystal; returns the outcome as a flat dictionary."""
    warnings.filterwarnings("ignore")
    import spglib
    from pymatgen.analysis.structure_matcher import StructureMatcher
    from pymatgen.core import Structure

    from symmcd.symmetry.asymmetric_unit import AsymmetricUnit

    material_id, cif, recorded_group = row
    result = {"material_id": material_id, "recorded": recorded_group, "error": "", "reference": ""}
    try:
        structure = Structure.from_str(cif, fmt="cif")
        unit = AsymmetricUnit.from_structure(structure, symprec=0.1)
        rebuilt = unit.to_structure()
        cell = (rebuilt.lattice.matrix, rebuilt.frac_coords, rebuilt.atomic_numbers)
        dataset = spglib.get_symmetry_dataset(cell, symprec=0.1)
        result.update(
            matched=bool(StructureMatcher().fit(structure, rebuilt)),
            rebuilt_group=int(dataset.number) if dataset is not None else 0,
            unit_group=unit.spacegroup,
            orbits=unit.num_orbits,
            conventional_atoms=unit.num_sites,
            primitive_atoms=len(structure),
        )
        if not result["matched"] or result["rebuilt_group"] != recorded_group:
            result["reference"] = spglib_refinement_check(structure)
    except Exception as error:  # report every failure with its reason
        result.update(
            matched=False, rebuilt_group=0, unit_group=0, error=f"{type(error).__name__}: {error}"
        )
    return result


def spglib_refinement_check(structure) -> str:
    """Does spglib's own symmetrised cell (symprec 0.1) show the same failure? (a diagnosis)"""
    import spglib
    from pymatgen.analysis.structure_matcher import StructureMatcher
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    refined = SpacegroupAnalyzer(structure, symprec=0.1).get_refined_structure()
    cell = (refined.lattice.matrix, refined.frac_coords, refined.atomic_numbers)
    group = spglib.get_symmetry_dataset(cell, symprec=0.1).number
    matched = StructureMatcher().fit(structure, refined)
    return f"spglib's refined cell: matched={matched} group {group}"


def cell_parameters(cif: str) -> np.ndarray:
    """The six cell parameters written in a CIF (no structure parsing)."""
    values = [re.search(rf"_cell_(?:length|angle)_{key}\s+([\d.]+)", cif) for key in _CELL_KEYS]
    return np.array([float(v.group(1)) for v in values])


def lattice_roundtrip(cifs: list[str]) -> tuple[float, float]:
    """Largest length (Angstrom) and angle (degree) errors of lattice -> k -> lattice."""
    from pymatgen.core import Lattice

    parameters = np.array([cell_parameters(cif) for cif in cifs])
    matrices = np.array([Lattice.from_parameters(*p).matrix for p in parameters])
    rebuilt = k_to_lattices(lattices_to_k(matrices))
    rebuilt_parameters = np.array([Lattice(m).parameters for m in rebuilt])
    errors = np.abs(rebuilt_parameters - np.array([Lattice(m).parameters for m in matrices]))
    return float(errors[:, :3].max()), float(errors[:, 3:].max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--limit", type=int, default=None)
    args = parser.parse_args()

    test = pd.read_csv(args.data / "test.csv", nrows=args.limit)
    rows = list(zip(test["material_id"], test["cif"], test["spacegroup.number"], strict=True))
    start = time.time()
    with Pool(args.workers) as pool:
        results = list(
            tqdm(pool.imap(roundtrip_one, rows, chunksize=16), total=len(rows), mininterval=10)
        )
    elapsed = time.time() - start
    frame = pd.DataFrame(results)
    n = len(frame)
    matched = frame["matched"].sum()
    same_group = (frame["rebuilt_group"] == frame["recorded"]).sum()
    print(f"MP-20 test: {n} crystals, {args.workers} processes, {elapsed:.0f} s")
    print(f"StructureMatcher match: {matched}/{n} = {matched / n:.4%}")
    print(
        f"spglib group (symprec 0.1) of rebuilt cell == recorded: {same_group}/{n} = "
        f"{same_group / n:.4%}"
    )
    own_group = (frame["rebuilt_group"] == frame["unit_group"]).sum()
    print(
        f"spglib group (symprec 0.1) of rebuilt cell == the unit's own group: {own_group}/{n} = "
        f"{own_group / n:.4%}"
    )
    ok = frame[frame["error"] == ""]
    ratio = ok["conventional_atoms"].sum() / ok["orbits"].sum()
    print(
        f"mean orbits per crystal: {ok['orbits'].mean():.3f}; mean atoms per conventional cell: "
        f"{ok['conventional_atoms'].mean():.3f} (ratio {ratio:.2f}); mean atoms per given cell: "
        f"{ok['primitive_atoms'].mean():.3f}"
    )
    failures = frame[~frame["matched"] | (frame["rebuilt_group"] != frame["recorded"])]
    print(f"failures: {len(failures)}")
    for failure in failures.itertuples():
        reason = failure.error or (
            f"matched={failure.matched} rebuilt group {failure.rebuilt_group}, unit "
            f"{failure.unit_group}, recorded {failure.recorded}; "
            f"{failure.reference}"
        )
        print(f"  {failure.material_id}: {reason}")

    cifs = []
    for name in ("test.csv", "val.csv", "train_partial.csv"):
        cifs += pd.read_csv(args.data / name, usecols=["cif"], nrows=args.limit)["cif"].tolist()
    length_error, angle_error = lattice_roundtrip(cifs)
    print(
        f"lattice -> k -> lattice on {len(cifs)} MP-20 lattices (test + val + train_partial): "
        f"max length error {length_error:.2e} A, max angle error {angle_error:.2e} deg"
    )


if __name__ == "__main__":
    main()
