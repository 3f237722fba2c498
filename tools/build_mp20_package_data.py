"""Build the MP-20 CSVs shipped in ``symmcd/data/mp20/`` from the CDVAE-layout source files.

Splits written (see ``symmcd/data/mp20/README.md``), with only the columns the package uses:

- ``train.csv.gz``: ``train_recovered.csv.gz`` (20,575 of the 27,136 train crystals, recovered
  from public copies; ``../shared/data/mp_20/README.md``) + ``val.csv`` minus the validation slice;
- ``val.csv.gz``: ``VALIDATION_SIZE`` rows of ``val.csv``: the sorted material ids permuted by
  ``numpy.random.default_rng(VALIDATION_SEED)``, the first ones (independent of the row order);
- ``test.csv.gz``: ``test.csv``, every row, in its original order;
- ``properties.csv.gz``: ``LABEL_COLUMNS`` by ``material_id`` for every labelled id of
  ``train_labels.csv.gz`` (structure at hand or not), ``val.csv`` and ``test.csv``.

Output is byte-reproducible (gzip mtime 0).

Usage: ``python tools/build_mp20_package_data.py [--source DIR] [--out DIR]``
"""

import argparse
import gzip
import io
from pathlib import Path

import numpy as np
import pandas as pd

VALIDATION_SIZE = 1000
VALIDATION_SEED = 20
KEPT_COLUMNS = ["material_id", "pretty_formula", "spacegroup.number"]
KEPT_COLUMNS += ["formation_energy_per_atom", "e_above_hull", "cif"]
LABEL_COLUMNS = ["material_id", "formation_energy_per_atom", "band_gap", "e_above_hull"]
LABEL_FILES = ("train_labels.csv.gz", "val.csv", "test.csv")
DEFAULT_SOURCE = Path(__file__).resolve().parents[2] / "shared" / "data" / "mp_20"
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "symmcd" / "data" / "mp20"


def read_kept(path: Path) -> pd.DataFrame:
    """The columns of ``KEPT_COLUMNS`` present in the CSV at ``path``, in that order."""
    frame = pd.read_csv(path)
    return frame[[c for c in KEPT_COLUMNS if c in frame.columns]].reset_index(drop=True)


def build(source: Path, out: Path) -> dict[str, int]:
    """Build the three splits and the property labels, write them; return rows per split."""
    train, val, test = (
        read_kept(source / f) for f in ("train_recovered.csv.gz", "val.csv", "test.csv")
    )
    val_ids = val["material_id"].astype(str)
    ordered = np.array(sorted(val_ids))
    permuted = np.random.default_rng(VALIDATION_SEED).permutation(len(ordered))
    held_out = val_ids.isin(set(ordered[permuted[:VALIDATION_SIZE]].tolist()))
    splits = {
        "train": pd.concat([train, val[~held_out]], ignore_index=True),
        "val": val[held_out].reset_index(drop=True),
        "test": test,
    }
    labels = pd.concat(
        [pd.read_csv(source / name, usecols=LABEL_COLUMNS) for name in LABEL_FILES],
        ignore_index=True,
    ).dropna(subset=LABEL_COLUMNS[1:], how="all")
    labels = labels.drop_duplicates("material_id", keep="first").reset_index(drop=True)
    out.mkdir(parents=True, exist_ok=True)
    total = 0
    for name, frame in {**splits, "properties": labels}.items():
        buffer = io.BytesIO()
        with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, compresslevel=9, mtime=0) as gz:
            gz.write(frame.to_csv(index=False).encode())
        size = (out / f"{name}.csv.gz").write_bytes(buffer.getvalue())
        total += size
        rows = "labelled rows" if name == "properties" else "rows"
        print(f"{name}: {len(frame)} {rows}, {size / 1e6:.2f} MB")
    print(f"total: {total / 1e6:.2f} MB")
    return {name: len(frame) for name, frame in splits.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    build(args.source, args.out)


if __name__ == "__main__":
    main()
