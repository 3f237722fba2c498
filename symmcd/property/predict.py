"""Predictions for CIFs: prepared like training data (asymmetric units), then the regressor."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd

from symmcd.data.prepare import prepare_dataset
from symmcd.errors import InputError
from symmcd.property.data import PropertyDataset
from symmcd.property.model import load_property_model
from symmcd.property.train import predict


def predict_cifs(model_path: Path, source: Path, symprec: float = 0.1) -> pd.DataFrame:
    """One row per readable crystal of ``source`` (a CSV of CIFs or a folder of CIF files):
    ``id``, the prediction in a column named after the target, and ``skipped`` rows with their
    reason (unreadable CIF, disorder, unknown element, failed symmetry analysis)."""
    model = load_property_model(model_path)
    with tempfile.TemporaryDirectory(prefix="symmcd-property-") as tmp:
        # quiet: prepare's report names files in tmp, which is deleted before anyone reads it
        summary = prepare_dataset(
            {"input": [Path(source)]}, Path(tmp), symprec=symprec, workers=1, verbose=False
        )
        if summary["splits"]["input"]["kept"] == 0:  # name the input, not the temporary cache
            raise InputError(no_readable_crystal(Path(source), Path(tmp) / "input_skipped.csv"))
        dataset = PropertyDataset(
            Path(tmp) / "input.npz",
            None,
            model.representation,
            site_symmetry=model.regressor.symmetry,
        )
        values = predict(model, dataset)
        frame = pd.DataFrame({"id": [str(i) for i in dataset.cache.ids], model.target: values})
        skipped = pd.read_csv(Path(tmp) / "input_skipped.csv")
    if len(skipped):  # columns id, reason; no prediction
        frame = pd.concat([frame, skipped], ignore_index=True)
    return frame


def no_readable_crystal(source: Path, skipped_csv: Path) -> str:
    """The message for an input of which no crystal could be prepared: the source, the count
    and the first skipped entry with its reason."""
    skipped = pd.read_csv(skipped_csv) if skipped_csv.is_file() else pd.DataFrame()
    if len(skipped) == 0:
        return f"{source}: no crystal to predict"
    first = skipped.iloc[0]
    return (
        f"{source}: none of the {len(skipped)} crystal(s) can be read (first: {first['id']}: "
        f"{first['reason']})"
    )
