"""How the property-targets measurement reads known crystals: CHGNet vs DFT formation energy.

``scripts/property_targets.py`` scores targeted samples by their CHGNet formation energy after a
CHGNet relaxation. This script runs the same measurement (same relaxation, same elemental
references) on MP-20 test crystals whose DFT formation energy lies near each target, so the
sampler's numbers can be read against what the measurement gives for real crystals at the target:
if CHGNet compressed or shifted the range, a perfectly targeted sampler would miss by as much.

    python scripts/chgnet_calibration.py --centres=-3.0,-0.5 --n 100 --relax-steps 500
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from pymatgen.core import Structure

from symmcd.evaluation.relax import relax_many

ROOT = Path(__file__).resolve().parents[1]
TEST_SPLIT = ROOT.parent / "shared" / "data" / "mp_20" / "test.csv"
OUT = ROOT / "docs" / "results" / "chgnet_calibration.json"


def crystals_near(frame: pd.DataFrame, centre: float, width: float, n: int, seed: int):
    """Up to ``n`` rows (drawn with ``seed``) whose DFT formation energy is within ``width``."""
    near = frame[(frame["formation_energy_per_atom"] - centre).abs() <= width]
    return near.sample(n=min(n, len(near)), random_state=seed)


def bin_row(rows: pd.DataFrame, centre: float, steps: int, workers: int | None) -> dict:
    structures = [Structure.from_str(cif, fmt="cif") for cif in rows["cif"]]
    results = list(relax_many(structures, steps=steps, workers=workers, label=f"relax {centre:g}"))
    chgnet = np.array([np.nan if r.error else r.formation_energy_per_atom for r in results])
    dft = rows["formation_energy_per_atom"].to_numpy(dtype=float)
    ok = np.isfinite(chgnet)
    out = {
        "centre": centre,
        "n": len(rows),
        "measured_n": int(ok.sum()),
        "relax_converged": float(np.mean([r.converged for r in results])),
        "dft_median": float(np.median(dft[ok])),
        "chgnet_median": float(np.median(chgnet[ok])),
        "mean_error": float(np.mean(chgnet[ok] - dft[ok])),
        "mae": float(np.mean(np.abs(chgnet[ok] - dft[ok]))),
        "material_ids": rows["material_id"].tolist(),
        "chgnet": [round(float(v), 4) for v in chgnet],
    }
    print(json.dumps({k: v for k, v in out.items() if not isinstance(v, list)}), flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--centres", default="-3.0,-0.5", help="DFT formation energies, eV/atom")
    parser.add_argument("--width", type=float, default=0.25, help="half-width of each bin")
    parser.add_argument("--n", type=int, default=100, help="crystals per bin")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--relax-steps", type=int, default=500)
    parser.add_argument("--workers", type=int, default=None, help="relaxation processes")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    if not TEST_SPLIT.is_file():
        raise SystemExit(f"MP-20 test split not found: {TEST_SPLIT}")
    frame = pd.read_csv(TEST_SPLIT)
    bins = [
        bin_row(
            crystals_near(frame, float(c), args.width, args.n, args.seed),
            float(c),
            args.relax_steps,
            args.workers,
        )
        for c in args.centres.split(",")
    ]
    record = {
        "measured_with": "CHGNet formation energy after CHGNet relaxation "
        f"(FIRE, up to {args.relax_steps} steps), as scripts/property_targets.py",
        "crystals": f"MP-20 test split, DFT formation energy within +-{args.width:g} eV/atom "
        "of each centre",
        "bins": bins,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "command": "python scripts/chgnet_calibration.py "
        + " ".join(shlex.quote(a) for a in sys.argv[1:]),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
