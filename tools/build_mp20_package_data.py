"""Build the MP-20 CSVs shipped in ``symmcd/data/mp20/`` from the CDVAE-layout source files.

Splits written (see ``symmcd/data/mp20/README.md``):

- ``train.csv.gz``: ``train_recovered.csv.gz`` (20,575 of the 27,136 train crystals, recovered
  from public copies; ``../shared/data/mp_20/README.md``) + ``val.csv`` minus the validation slice;
- ``val.csv.gz``: a fixed slice of ``VALIDATION_SIZE`` rows of ``val.csv``, chosen by sorting the
  material ids, permuting them with ``numpy.random.default_rng(VALIDATION_SEED)`` and taking the
  first ``VALIDATION_SIZE`` (so the choice does not depend on the row order of the source file);
- ``test.csv.gz``: ``test.csv``, every row, in its original order;
- ``properties.csv.gz``: the property labels (``LABEL_COLUMNS``) by ``material_id``: every train
  id of ``train_labels.csv.gz`` with a label (structure at hand or not) and every labelled val and
  test row (read by ``symmcd.data.labels``).

Only the columns the package uses are kept. Output is byte-reproducible (gzip mtime 0).

Usage: ``python tools/build_mp20_package_data.py [--source DIR] [--out DIR]``
"""

from __future__ import annotations

import argparse
import gzip
import io
from pathlib import Path

import numpy as np
import pandas as pd

VALIDATION_SIZE = 1000
VALIDATION_SEED = 20
KEPT_COLUMNS = [
    "material_id",
    "pretty_formula",
    "spacegroup.number",
    "formation_energy_per_atom",
    "e_above_hull",
    "cif",
]
LABEL_COLUMNS = ["material_id", "formation_energy_per_atom", "band_gap", "e_above_hull"]
DEFAULT_SOURCE = Path(__file__).resolve().parents[2] / "shared" / "data" / "mp_20"
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "symmcd" / "data" / "mp20"


TRAIN_FILE = "train_recovered.csv.gz"
LABEL_FILES = ("train_labels.csv.gz", "val.csv", "test.csv")


def keep_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """The subset of ``KEPT_COLUMNS`` present in ``frame``, in that order."""
    return frame[[c for c in KEPT_COLUMNS if c in frame.columns]].reset_index(drop=True)


def validation_ids(val_ids: pd.Series, size: int = VALIDATION_SIZE) -> set[str]:
    """The fixed validation slice: a seeded permutation of the sorted ids, first ``size``."""
    ordered = np.array(sorted(val_ids.astype(str)))
    permuted = np.random.default_rng(VALIDATION_SEED).permutation(len(ordered))
    return set(ordered[permuted[:size]].tolist())


def write_csv_gz(frame: pd.DataFrame, path: Path) -> int:
    """Write ``frame`` as a reproducible gzip CSV (no index, mtime 0); return its size in bytes."""
    text = frame.to_csv(index=False)
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, compresslevel=9, mtime=0) as gz:
        gz.write(text.encode())
    path.write_bytes(buffer.getvalue())
    return path.stat().st_size


def build(source: Path, out: Path) -> dict[str, int]:
    """Read the source CSVs, build the three splits, write them; return rows per split."""
    train = keep_columns(pd.read_csv(source / TRAIN_FILE))
    val = keep_columns(pd.read_csv(source / "val.csv"))
    test = keep_columns(pd.read_csv(source / "test.csv"))
    held_out = validation_ids(val["material_id"])
    is_held_out = val["material_id"].astype(str).isin(held_out)
    splits = {
        "train": pd.concat([train, val[~is_held_out]], ignore_index=True),
        "val": val[is_held_out].reset_index(drop=True),
        "test": test,
    }
    out.mkdir(parents=True, exist_ok=True)
    total = 0
    for name, frame in splits.items():
        size = write_csv_gz(frame, out / f"{name}.csv.gz")
        total += size
        print(f"{name}: {len(frame)} rows, {size / 1e6:.2f} MB")
    labels = pd.concat(
        [pd.read_csv(source / name, usecols=LABEL_COLUMNS) for name in LABEL_FILES],
        ignore_index=True,
    ).dropna(subset=LABEL_COLUMNS[1:], how="all")
    labels = labels.drop_duplicates("material_id", keep="first").reset_index(drop=True)
    size = write_csv_gz(labels, out / "properties.csv.gz")
    total += size
    print(f"properties: {len(labels)} labelled rows, {size / 1e6:.2f} MB")
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
