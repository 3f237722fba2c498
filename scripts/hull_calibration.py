"""How far can the offline reference hull be trusted? Its leave-out false-stable rate.

Every stability figure (``stable``, S.U.N.) compares a crystal's energy with a hull made of the
Materials Project entries at hand (``symmcd/evaluation/data/mp_hull_points.csv.gz``). Missing
phases lift that hull, so crystals above the real MP hull can be called stable. This script
measures it with crystals whose MP answer is known: every MP-20 test crystal, at its own DFT
formation energy, against a hull built without the test split:

* ``MP-20 train + val``: the MP-20 points at hand other than the test split;
* ``+ MPTS-52``: the same plus the MPTS-52 val/test entries (cells up to 52 atoms);
* ``+ MPTS-52, CHGNet on both sides`` (``--chgnet``): hull points and test crystals both at
  their CHGNet formation energies (static, on the DFT structures), so one energy model is used
  on both sides, as for generated crystals; the MP labels stay DFT's.

False-stable rate: the share of crystals with MP e_above_hull > threshold that the reduced hull
puts at or below 0 eV/atom (> 0.1 for the metastable version: at or below 0.1). A DFT hull
without some points can only lie higher, so with DFT energies every MP-stable crystal stays
stable and the error is one-sided.

    python scripts/hull_calibration.py [--chgnet] [--out docs/results/hull_calibration.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
from pymatgen.core import Composition
from tqdm import tqdm

from symmcd.evaluation.hull import HULL_POINTS_PATH, ReferenceHull
from symmcd.evaluation.io import DEFAULT_REFERENCE

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
# eV/atom: MP e_above_hull above which MP says unstable (MP-20 holds only crystals < 0.08)
THRESHOLDS = (0.0, 0.01, 0.025, 0.05)
TOLERANCE = 1e-6  # eV/atom: linear-program round-off


def rates(predicted: np.ndarray, mp_e_hull: np.ndarray) -> dict:
    """False-stable rates at each threshold, false-metastable, and the mean underestimate."""
    out = {}
    for threshold in THRESHOLDS:
        above = mp_e_hull > threshold
        called_stable = predicted[above] <= TOLERANCE
        out[f"false_stable_above_{threshold:g}"] = float(called_stable.mean())
        out[f"n_above_{threshold:g}"] = int(above.sum())
    above = mp_e_hull > 0.1
    if above.any():  # none in MP-20, whose crystals all lie within 0.08 eV/atom of MP's hull
        out["false_metastable_above_0.1"] = float((predicted[above] <= 0.1 + TOLERANCE).mean())
        out["n_above_0.1"] = int(above.sum())
    stable = mp_e_hull <= 0
    out["stable_recall"] = float((predicted[stable] <= TOLERANCE).mean())
    out["mean_underestimate_eV"] = float(np.mean(mp_e_hull - predicted))
    return out


def chgnet_formation_energies(ids: list[str], cache: Path) -> dict[str, float]:
    """CHGNet formation energies (static) of MP-20 and MPTS-52 crystals by id, cached."""
    from pymatgen.core import Structure

    from symmcd.evaluation.formation_energy import predict_formation_energy

    known = json.loads(cache.read_text()) if cache.is_file() else {}
    todo = set(ids) - set(known)
    sources = [
        ROOT / "symmcd" / "data" / "mp20" / f"{split}.csv.gz" for split in ("train", "val", "test")
    ] + [SHARED / "mpts_52" / f"{split}.csv.gz" for split in ("val", "test")]
    for source in sources:
        frame = pd.read_csv(source, usecols=["material_id", "cif"])
        frame = frame[frame["material_id"].isin(todo)]
        for start in tqdm(range(0, len(frame), 256), desc=source.name, unit="batch"):
            chunk = frame.iloc[start : start + 256]
            structures = [Structure.from_str(c, fmt="cif") for c in chunk["cif"]]
            energies = predict_formation_energy(structures)
            known.update(zip(chunk["material_id"], map(float, energies), strict=True))
            cache.write_text(json.dumps(known))
        todo -= set(frame["material_id"])
    return known


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chgnet", action="store_true", help="also the one-energy-model hull")
    parser.add_argument(
        "--chgnet-cache", type=Path, default=Path.home() / ".cache/symmcd/chgnet_eform.json"
    )
    parser.add_argument(
        "--out", type=Path, default=ROOT / "docs" / "results" / "hull_calibration.json"
    )
    args = parser.parse_args()
    started = time.perf_counter()

    points = pd.read_csv(HULL_POINTS_PATH)
    mp20_test_ids = set(pd.read_csv(DEFAULT_REFERENCE, usecols=["material_id"])["material_id"])
    mpts52_test_ids = set(
        pd.read_csv(SHARED / "mpts_52" / "test.csv.gz", usecols=["material_id"])["material_id"]
    )
    is_test = points["material_id"].isin(mp20_test_ids)
    test = points[is_test].reset_index(drop=True)
    others = points[~is_test]
    compositions = [Composition(f) for f in test["formula"]]
    mp_e_hull = test["e_above_hull"].to_numpy()

    results = {}

    def calibrate(name: str, hull_frame: pd.DataFrame, test_frame: pd.DataFrame) -> None:
        hull = ReferenceHull(hull_frame["formula"], hull_frame["e_form_hull"])
        energies = (test_frame["e_form_hull"] + test_frame["e_above_hull"]).to_numpy()
        pairs = zip(test_frame["formula"], energies, strict=True)
        predicted = np.array(
            [
                hull.energy_above_hull(Composition(f), e)
                for f, e in tqdm(pairs, desc=name, total=len(energies))
            ]
        )
        truth = test_frame["e_above_hull"].to_numpy()
        results[name] = {
            "test_crystals": len(test_frame),
            "hull_points": len(hull_frame),
            **rates(predicted, truth),
        }

    calibrate("MP-20 test vs MP-20 train + val", others[others["dataset"] == "mp20"], test)
    calibrate("MP-20 test vs MP-20 train + val + MPTS-52", others, test)
    # a wider range of energies: MPTS-52 test entries (those not in MP-20) against the rest
    is_mpts_test = points["material_id"].isin(mpts52_test_ids) & (points["dataset"] == "mpts52")
    calibrate("MPTS-52 test vs MP-20 + MPTS-52 val", points[~is_mpts_test], points[is_mpts_test])

    if args.chgnet:
        args.chgnet_cache.parent.mkdir(parents=True, exist_ok=True)
        energies = chgnet_formation_energies(list(points["material_id"]), args.chgnet_cache)
        chgnet = points["material_id"].map(energies)
        usable = np.isfinite(chgnet.to_numpy())
        frame = others[usable[~is_test.to_numpy()]]
        hull = ReferenceHull(frame["formula"], chgnet[frame.index])
        test_chgnet = chgnet[is_test].to_numpy()
        keep = np.isfinite(test_chgnet)
        predicted = np.array(
            [
                hull.energy_above_hull(c, e)
                for c, e, k in zip(compositions, test_chgnet, keep, strict=True)
                if k
            ]
        )
        name = "MP-20 test vs MP-20 train + val + MPTS-52, CHGNet on both sides"
        results[name] = {
            "test_crystals": int(keep.sum()),
            "hull_points": len(frame),
            **rates(predicted, mp_e_hull[keep]),
        }

    output = {
        "what": "MP-20 test crystals (DFT formation energy, MP e_above_hull) against hulls "
        "built without the test split; false_stable_above_X = share of crystals with MP "
        "e_above_hull > X eV/atom that the hull calls stable (e_hull <= 0)",
        "command": "python scripts/hull_calibration.py" + (" --chgnet" if args.chgnet else ""),
        "results": results,
        "seconds": round(time.perf_counter() - started, 1),
    }
    args.out.write_text(json.dumps(output, indent=1) + "\n")
    print(
        "| crystals vs hull | crystals | hull points | false stable (MP e_hull > 0 / > 0.025 / "
        "> 0.05) | false metastable (> 0.1) | mean underestimate (eV/atom) |"
    )
    print("|---|---|---|---|---|---|")
    for name, r in results.items():
        metastable = r.get("false_metastable_above_0.1")
        print(
            f"| {name} | {r['test_crystals']} | {r['hull_points']} | "
            f"{r['false_stable_above_0']:.1%} / {r['false_stable_above_0.025']:.1%} / "
            f"{r['false_stable_above_0.05']:.1%} | "
            f"{'-' if metastable is None else f'{metastable:.1%}'} | "
            f"{r['mean_underestimate_eV']:.3f} |"
        )


if __name__ == "__main__":
    main()
