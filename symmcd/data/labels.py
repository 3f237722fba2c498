"""Per-crystal property labels (formation energy, band gap, ...) joined onto prepared splits.

Labels live in CSVs with a ``material_id`` column (the crystal ids of the prepared caches) and one
column per property; empty cells mean "no label". The label files of a prepared split are the
CSVs it was prepared from, plus the shipped ``symmcd/data/mp20/properties.csv.gz`` for splits made
from the shipped MP-20 files (those carry the structures and the formation energy only; the band
gap is in the labels file). Used by the property predictor and by the conditioned generator.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from symmcd.errors import InputError

if TYPE_CHECKING:
    from symmcd.data.dataset import AsymmetricUnitDataset

SHIPPED_MP20_DIR = Path(__file__).resolve().parent / "mp20"
SHIPPED_LABELS = SHIPPED_MP20_DIR / "properties.csv.gz"


def split_sources(data_dir: Path) -> dict[str, list[Path]]:
    """Split name -> the CSVs a prepared folder was made from (its ``prepare.json``)."""
    summary_path = Path(data_dir) / "prepare.json"
    if not summary_path.is_file():
        raise InputError(f"{data_dir}: not a prepared folder (no prepare.json; run symmcd prepare)")
    splits = json.loads(summary_path.read_text())["splits"]
    return {name: [Path(p) for p in split["sources"]] for name, split in splits.items()}


def label_files(sources: list[Path]) -> list[Path]:
    """The existing CSVs among ``sources``, plus the shipped labels file when a source is one of
    the shipped MP-20 CSVs."""
    files = [Path(p) for p in sources if Path(p).is_file() and ".csv" in Path(p).name]
    shipped = any(Path(p).resolve().parent == SHIPPED_MP20_DIR for p in files)
    if shipped and SHIPPED_LABELS.is_file():
        files.append(SHIPPED_LABELS)
    return files


def load_labels(csv_paths: list[Path], column: str) -> dict[str, float]:
    """``material_id`` -> value of ``column`` over the rows of ``csv_paths`` that carry one.

    Files without the column are skipped; none having it is an InputError naming the files."""
    labels: dict[str, float] = {}
    found = False
    for path in csv_paths:
        header = pd.read_csv(path, nrows=0).columns
        if "material_id" not in header:
            raise InputError(f"{path}: needs a material_id column to join labels by crystal")
        if column not in header:
            continue
        found = True
        frame = pd.read_csv(path, usecols=["material_id", column]).dropna()
        ids, values = frame["material_id"].astype(str), frame[column].astype(float)
        labels.update(zip(ids, values, strict=True))
    if not found:
        names = ", ".join(str(p) for p in csv_paths) or "no label file"
        raise InputError(f"no column {column!r} in {names}")
    return labels


def split_labels(data_dir: Path, split: str, column: str) -> dict[str, float]:
    """The labels of ``column`` for one split of a prepared folder (see the module docstring)."""
    sources = split_sources(data_dir)
    if split not in sources:
        raise InputError(f"{data_dir}: no {split} split")
    return load_labels(label_files(sources[split]), column)


def label_matrix(ids: np.ndarray, labels: list[dict[str, float]]) -> np.ndarray:
    """(C, P) float32 values of P properties for crystals ``ids``; NaN where a crystal has none."""
    matrix = np.full((len(ids), len(labels)), np.nan, dtype=np.float32)
    for column, table in enumerate(labels):
        for row, key in enumerate(ids):
            value = table.get(str(key))
            if value is not None:
                matrix[row, column] = value
    return matrix


RANGE_QUANTILES = (0.001, 0.999)  # the conditioning grid spans these quantiles of the labels


def property_ranges(dataset: AsymmetricUnitDataset) -> list[tuple[float, float]]:
    """(low, high) of each conditioning property over a labelled training set."""
    if dataset.properties is None:
        raise InputError("property_ranges: the dataset carries no labels")
    ranges = []
    for column in dataset.properties.T.numpy():
        known = column[np.isfinite(column)]
        if len(known) < 2:
            raise InputError(f"{dataset.cache_path}: fewer than 2 labels of a property")
        low, high = np.quantile(known, RANGE_QUANTILES)
        if high <= low:
            low, high = float(known.min()), float(known.max()) + 1e-6
        ranges.append((round(float(low), 4), round(float(high), 4)))
    return ranges


def label_table(dataset: AsymmetricUnitDataset) -> dict[str, Any]:
    """Space group, orbit count and labels of every labelled training crystal: sampling draws
    the space group and size of a crystal with a property target from the crystals near it
    (``symmcd.sampling.plan.plan_near_targets``)."""
    if dataset.properties is None:
        raise InputError("label_table: the dataset carries no labels")
    values = dataset.properties.numpy()
    keep = np.isfinite(values).any(axis=1)
    num_orbits = np.diff(dataset.cache.orbit_offset)
    return {
        "spacegroup": dataset.cache.spacegroup[keep].astype(int).tolist(),
        "num_orbits": num_orbits[keep].astype(int).tolist(),
        "values": [[None if not np.isfinite(v) else float(v) for v in row] for row in values[keep]],
    }
