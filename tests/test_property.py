"""Property prediction: labels by id, the representations, fit, resume, predict, faults."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from symmcd.cli import main
from symmcd.data.prepare import prepare_dataset
from symmcd.errors import CheckpointError, InputError
from symmcd.property import (
    PropertyConfig,
    PropertyDataset,
    load_labels,
    load_property_model,
)
from symmcd.property.predict import predict_cifs
from symmcd.property.train import train_from_prepared

MP20 = Path(__file__).resolve().parents[1] / "symmcd" / "data" / "mp20"
TARGET = "formation_energy_per_atom"


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    """48 train (a third unlabelled), 16 val and 16 test crystals of the shipped MP-20."""
    root = tmp_path_factory.mktemp("property-data")
    train = pd.read_csv(MP20 / "train.csv.gz", nrows=48)
    train.loc[train.index % 3 == 0, TARGET] = np.nan
    train.to_csv(root / "train.csv", index=False)
    pd.read_csv(MP20 / "val.csv.gz", nrows=16).to_csv(root / "val.csv", index=False)
    pd.read_csv(MP20 / "test.csv.gz", nrows=16).to_csv(root / "test.csv", index=False)
    sources = {split: [root / f"{split}.csv"] for split in ("train", "val", "test")}
    prepare_dataset(sources, root / "prepared", workers=1)
    return root / "prepared"


def test_labels_join_by_id_and_skip_missing(prepared):
    labels = load_labels([prepared.parent / "train.csv"], TARGET)
    assert len(labels) == 32
    dataset = PropertyDataset(prepared / "train.npz", labels)
    assert len(dataset) == 32
    frame = pd.read_csv(prepared.parent / "train.csv").dropna(subset=[TARGET])
    first = frame.iloc[0]
    assert dataset.target_of[first["material_id"]] == pytest.approx(first[TARGET])


def test_full_cell_atoms_carry_their_orbits_site_symmetry(prepared):
    plain = PropertyDataset(prepared / "val.npz", None, "full_cell", site_symmetry=False)
    with_site = PropertyDataset(prepared / "val.npz", None, "full_cell", site_symmetry=True)
    orbits = PropertyDataset(prepared / "val.npz", None, "asymmetric_unit")
    cache = orbits.cache
    assert torch.all(plain[0]["site_symmetry"] == 0)
    atoms = with_site[0]["site_symmetry"]
    expected = np.repeat(
        cache.orbit_site_symmetry[cache.orbit_offset[0] : cache.orbit_offset[1]],
        cache.orbit_multiplicity[cache.orbit_offset[0] : cache.orbit_offset[1]],
        axis=0,
    )
    assert len(atoms) == len(with_site[0]["atom_types"]) > len(orbits[0]["atom_types"]) - 1
    assert np.array_equal(atoms.numpy(), expected)


@pytest.mark.parametrize(
    ("representation", "symmetry"),
    [("asymmetric_unit", True), ("asymmetric_unit", False), ("full_cell", True)],
)
def test_fit_beats_the_mean_on_its_training_crystals(prepared, tmp_path, representation, symmetry):
    config = PropertyConfig(
        representation=representation,
        symmetry=symmetry,
        hidden_dim=32,
        num_layers=2,
        epochs=40,
        batch_size=16,
        lr=3e-3,
    )
    metrics = train_from_prepared(config, prepared, tmp_path / "run")
    assert metrics["train_labels"] == 32 and metrics["test_labels"] == 16
    assert len(metrics["history"]) == 40 and np.isfinite(metrics["test_mae"])
    targets = np.array(list(load_labels([prepared.parent / "train.csv"], TARGET).values()))
    mean_predictor = np.mean(np.abs(targets - targets.mean())) / targets.std()  # normalised L1
    assert metrics["history"][-1]["train_l1_normalised"] < 0.7 * mean_predictor
    model = load_property_model(tmp_path / "run" / "model.pt")
    assert model.metadata["best_epoch"] == metrics["best_epoch"]
    assert model.representation == representation and model.regressor.symmetry == symmetry


def test_resume_continues_and_refuses_other_settings(prepared, tmp_path):
    config = PropertyConfig(hidden_dim=16, num_layers=1, epochs=2, batch_size=16)
    first = train_from_prepared(
        PropertyConfig(hidden_dim=16, num_layers=1, epochs=2, batch_size=16),
        prepared,
        tmp_path / "run",
    )
    assert len(first["history"]) == 2
    with pytest.raises(InputError, match="not empty"):
        train_from_prepared(config, prepared, tmp_path / "run")
    longer = PropertyConfig(hidden_dim=16, num_layers=1, epochs=2, batch_size=16, lr=5e-4)
    with pytest.raises(InputError, match="own settings"):
        train_from_prepared(longer, prepared, tmp_path / "run", resume=True)
    resumed = train_from_prepared(config, prepared, tmp_path / "run", resume=True)
    assert [row["epoch"] for row in resumed["history"]] == [0, 1]  # nothing left to do


def test_predict_cli_writes_rows_and_reports_unreadable(prepared, tmp_path, capsys):
    run = tmp_path / "run"
    config = PropertyConfig(hidden_dim=16, num_layers=1, epochs=1, batch_size=16)
    train_from_prepared(config, prepared, run)
    cifs = tmp_path / "cifs"
    cifs.mkdir()
    frame = pd.read_csv(prepared.parent / "test.csv")
    for _, row in frame.head(3).iterrows():
        (cifs / f"{row['material_id']}.cif").write_text(row["cif"])
    (cifs / "broken.cif").write_text("data_broken\n_cell_length_a 3\n")
    out = tmp_path / "pred.csv"
    assert (
        main(
            ["property", "predict", str(cifs), "--model", str(run / "model.pt"), "--out", str(out)]
        )
        == 0
    )
    printed = capsys.readouterr()
    # issue #35: no message points into the temporary folder, deleted before it is read
    assert "symmcd-property-" not in printed.out + printed.err
    assert "3 predictions and 1 skipped" in printed.out
    table = pd.read_csv(out)
    assert len(table) == 4
    assert table[TARGET].notna().sum() == 3
    assert table.loc[table[TARGET].isna(), "reason"].str.len().gt(0).all()
    direct = predict_cifs(run / "model.pt", cifs)
    assert np.allclose(direct[TARGET].dropna().to_numpy(), table[TARGET].dropna().to_numpy())


def test_corrupt_or_foreign_model_is_a_one_line_error(tmp_path, capsys):
    bad = tmp_path / "model.pt"
    bad.write_bytes(b"not a model")
    with pytest.raises(CheckpointError, match="cannot read property model"):
        load_property_model(bad)
    torch.save({"format": "something else"}, bad)
    with pytest.raises(CheckpointError, match="not a symmcd property model"):
        load_property_model(bad)
    code = main(
        [
            "property",
            "predict",
            str(tmp_path),
            "--model",
            str(bad),
            "--out",
            str(tmp_path / "p.csv"),
        ]
    )
    assert code == 2
    assert "error" in capsys.readouterr().err


def test_unknown_target_column_names_the_file(prepared, tmp_path):
    with pytest.raises(InputError, match="band_gap"):
        train_from_prepared(PropertyConfig(target="band_gap", epochs=1), prepared, tmp_path / "r")
