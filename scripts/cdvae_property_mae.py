"""MAE of CDVAE's MP-20 formation-energy model (symmcd's plain-torch port) against the DFT
formation energies of the MP-20 test split, with the time per crystal of graph building and of
the network.

    python scripts/cdvae_property_mae.py --n 0   # every test crystal; writes --out
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from pymatgen.core import Structure

from symmcd.evaluation.cdvae_property import (
    load_cdvae_property_model,
    predict_graphs,
    try_build_crystal_graph,
)

TEST_CSV = Path(__file__).resolve().parents[2] / "shared" / "data" / "mp_20" / "test.csv"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=TEST_CSV)
    parser.add_argument("--n", type=int, default=200, help="first N rows (0 = all)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--save", type=Path, help="write predictions to this CSV")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).resolve().parents[1] / "docs/results/cdvae_property_mae.json",
        help="the summary as JSON",
    )
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    torch.set_num_threads(args.threads)
    table = pd.read_csv(args.csv, nrows=args.n or None)
    structures = [Structure.from_str(cif, fmt="cif") for cif in table["cif"]]
    dft = table["formation_energy_per_atom"].to_numpy(dtype=float)

    start = time.perf_counter()
    graphs = [try_build_crystal_graph(structure) for structure in structures]
    graph_time = time.perf_counter() - start
    load_cdvae_property_model()
    built = [k for k, graph in enumerate(graphs) if graph is not None]
    start = time.perf_counter()
    values = predict_graphs([graphs[k] for k in built])
    network_time = time.perf_counter() - start
    predicted = np.full(len(graphs), np.nan)
    predicted[built] = values

    ok = np.isfinite(predicted)
    errors = np.abs(predicted[ok] - dft[ok])
    print(f"{args.csv}: first {len(table)} crystals, {ok.sum()} predicted")
    print(f"MAE (eV/atom): {errors.mean():.4f}")
    print(f"median abs error (eV/atom): {np.median(errors):.4f}")
    print(f"mean signed error pred - DFT (eV/atom): {(predicted[ok] - dft[ok]).mean():+.4f}")
    print(f"max abs error (eV/atom): {errors.max():.3f}")
    print(f"graph building: {graph_time / len(table):.3f} s per crystal")
    print(
        f"network ({args.threads} threads, batches of 256): "
        f"{network_time / max(len(built), 1) * 1e3:.1f} ms per crystal"
    )
    summary = {
        "command": f"python scripts/cdvae_property_mae.py --n {args.n}"
        + (f" --threads {args.threads}" if args.threads != 2 else ""),
        "test_crystals": int(len(table)),
        "predicted": int(ok.sum()),
        "mae": round(float(errors.mean()), 4),
        "median_abs_error": round(float(np.median(errors)), 4),
        "mean_signed_error": round(float((predicted[ok] - dft[ok]).mean()), 4),
        "max_abs_error": round(float(errors.max()), 3),
        "seconds_per_crystal_graph": round(graph_time / len(table), 4),
        "seconds_per_crystal_network": round(network_time / max(len(built), 1), 4),
        "machine": f"{os.cpu_count()} cores, {args.threads} threads, torch {torch.__version__}",
    }
    args.out.write_text(json.dumps(summary, indent=1) + "\n")
    if args.save:
        table.assign(cdvae_pred=predicted).drop(columns="cif").to_csv(args.save, index=False)


if __name__ == "__main__":
    main()
