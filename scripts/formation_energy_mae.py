"""MAE of symmcd's offline formation-energy predictor (CHGNet - MP elemental references) against
the DFT formation energies of the MP-20 test split, on a seeded random subsample.

    nice python scripts/formation_energy_mae.py --n 500 | tee scripts/formation_energy_mae.out.txt
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

from symmcd.evaluation.formation_energy import predict_formation_energy
from symmcd.evaluation.io import DEFAULT_REFERENCE, read_csv_of_cifs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500, help="subsample size (0 = all 9,046)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    test = read_csv_of_cifs(DEFAULT_REFERENCE)
    rng = np.random.default_rng(args.seed)
    rows = np.arange(len(test)) if args.n <= 0 else np.sort(rng.choice(len(test), args.n, False))
    structures = [test.structures[i] for i in rows]
    dft = test.formation_energies[rows]
    wall, cpu = time.perf_counter(), time.process_time()
    predicted = predict_formation_energy(structures)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    ok = np.isfinite(predicted) & np.isfinite(dft)
    errors = np.abs(predicted[ok] - dft[ok])
    print(f"MP-20 test subsample: {len(rows)} of {len(test)} crystals (seed {args.seed})")
    print(f"predicted: {ok.sum()} (CHGNet failed or element without reference: {(~ok).sum()})")
    print(f"MAE formation energy (eV/atom): {errors.mean():.4f}")
    print(f"median abs error (eV/atom): {np.median(errors):.4f}")
    print(f"mean signed error pred - DFT (eV/atom): {(predicted[ok] - dft[ok]).mean():+.4f}")
    print(f"share with |error| > 0.25 eV/atom: {(errors > 0.25).mean():.3f}")
    print(f"time per crystal: {wall / len(rows):.3f} s wall, {cpu / len(rows):.3f} s CPU")


if __name__ == "__main__":
    main()
