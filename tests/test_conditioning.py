"""Property conditioning: labels, the network input, guidance, targeted plans, train -> sample."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from symmcd.checkpoint import load_checkpoint
from symmcd.cli import main
from symmcd.config import load_config
from symmcd.data.labels import SHIPPED_LABELS, label_files, label_matrix, load_labels
from symmcd.data.prepare import prepare_dataset
from symmcd.errors import ConfigError, InputError
from symmcd.evaluation.io import read_csv_of_cifs
from symmcd.model.conditioning import PropertyConditioning
from symmcd.model.denoiser import DenoiserOutput
from symmcd.sampling import sample
from symmcd.sampling.conditions import parse_targets, target_vector
from symmcd.sampling.guidance import GuidedDenoiser
from symmcd.sampling.plan import plan_near_targets
from symmcd.training.module import drop_labels
from symmcd.training.train import train
from tests.test_model_denoiser import inputs

MP20 = Path(__file__).resolve().parents[1] / "symmcd" / "data" / "mp20"
FORM = "formation_energy_per_atom"


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    """48 train crystals (a third unlabelled) and 16 val crystals of the shipped MP-20; the band
    gap sits in a separate labels file, as in the shipped data."""
    root = tmp_path_factory.mktemp("conditioned-data")
    train_rows = pd.read_csv(MP20 / "train.csv.gz", nrows=48)
    train_rows.loc[train_rows.index % 3 == 0, FORM] = np.nan
    train_rows.to_csv(root / "train.csv", index=False)
    pd.read_csv(MP20 / "val.csv.gz", nrows=16).to_csv(root / "val.csv", index=False)
    sources = {split: [root / f"{split}.csv"] for split in ("train", "val")}
    prepare_dataset(sources, root / "prepared", workers=1)
    return root / "prepared"


@pytest.fixture(scope="module")
def conditioned_run(prepared, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("conditioned") / "run"
    train("tiny", out, data_dir=prepared, max_epochs=1, overrides={"model.properties": [FORM]})
    return out


def test_labels_skip_files_without_the_column_and_name_them_when_none_has_it(prepared, tmp_path):
    csv = prepared.parent / "train.csv"
    assert len(load_labels([csv], FORM)) == 32
    bare = tmp_path / "bare.csv"
    pd.DataFrame({"material_id": ["a"], "other": [1.0]}).to_csv(bare, index=False)
    assert len(load_labels([bare, csv], FORM)) == 32
    with pytest.raises(InputError, match="no column 'band_gap'.*bare.csv"):
        load_labels([bare], "band_gap")
    nameless = tmp_path / "nameless.csv"
    pd.DataFrame({"id": ["a"], FORM: [1.0]}).to_csv(nameless, index=False)
    with pytest.raises(InputError, match="material_id"):
        load_labels([nameless], FORM)


def test_shipped_labels_file_joins_the_shipped_splits():
    assert label_files([MP20 / "train.csv.gz"]) == [MP20 / "train.csv.gz", SHIPPED_LABELS]
    gaps = load_labels(label_files([MP20 / "val.csv.gz"]), "band_gap")
    val_ids = pd.read_csv(MP20 / "val.csv.gz", usecols=["material_id"])["material_id"]
    assert all(str(i) in gaps for i in val_ids)
    matrix = label_matrix(np.array(["mp-absent", str(val_ids[0])]), [gaps])
    assert np.isnan(matrix[0, 0]) and matrix[1, 0] == pytest.approx(gaps[str(val_ids[0])])


def test_conditioning_starts_at_zero_and_unknown_labels_share_the_null_embedding():
    layer = PropertyConditioning([(-4.0, 0.0), (0.0, 8.0)], hidden_dim=8)
    values = torch.tensor([[-3.0, 1.0], [float("nan"), 2.0]])
    assert torch.all(layer(values, 2, torch.float32) == 0)  # zero-initialised output map
    torch.nn.init.normal_(layer.out.weight)
    torch.nn.init.normal_(layer.null)
    out = layer(values, 2, torch.float32)
    assert not torch.allclose(out[0], out[1])
    unknown = layer(None, 2, torch.float32)
    torch.testing.assert_close(unknown[0], unknown[1])
    clamped = layer(torch.tensor([[-9.0, 1.0], [-4.0, 1.0]]), 2, torch.float32)
    torch.testing.assert_close(clamped[0], clamped[1])  # outside the range: its end
    with pytest.raises(ValueError, match="shape"):
        layer(values[:, :1], 2, torch.float32)


def test_config_checks_the_conditioning_keys():
    with pytest.raises(ConfigError, match="repeats"):
        load_config("tiny", {"model.properties": [FORM, FORM]})
    with pytest.raises(ConfigError, match="one \\[low, high\\]"):
        load_config("tiny", {"model.properties": [FORM], "model.property_ranges": [[0, 1]] * 2})
    with pytest.raises(ConfigError, match="property_dropout"):
        load_config("tiny", {"property_dropout": 1.0})


def test_label_dropout_replaces_labels_by_the_null_label():
    labels = torch.zeros(2000, 1)
    dropped = drop_labels(labels, 0.25, torch.Generator().manual_seed(0))
    assert 0.2 < float(torch.isnan(dropped).float().mean()) < 0.3
    assert torch.equal(drop_labels(labels, 0.0), labels)


def test_targets_parse_and_match_the_model():
    assert parse_targets("band_gap=1.5") == (("band_gap", 1.5),)
    assert parse_targets([f"{FORM}=-2", "band_gap=0"]) == ((FORM, -2.0), ("band_gap", 0.0))
    assert parse_targets({FORM: -1}) == ((FORM, -1.0),)
    for bad, message in [
        ("band_gap", "NAME=VALUE"),
        ("band_gap=x", "not a number"),
        ("a=1,a=2", "twice"),
        ("=1", "name"),
        ("b=nan", "finite"),
    ]:
        with pytest.raises(InputError, match=message):
            parse_targets(bad)
    vector = target_vector(((FORM, -2.0),), ("band_gap", FORM), ((0, 8), (-4, 0)))
    assert np.isnan(vector[0]) and vector[1] == -2.0
    with pytest.raises(InputError, match="conditions on band_gap only"):
        target_vector(((FORM, -2.0),), ("band_gap",), ((0, 8),))
    with pytest.raises(InputError, match="outside the range"):
        target_vector(((FORM, -6.0),), (FORM,), ((-4, 0),))
    with pytest.raises(InputError, match="without property conditioning"):
        target_vector(((FORM, -2.0),), (), ())


def test_targeted_plans_copy_group_and_size_of_crystals_near_the_target():
    table = {
        "spacegroup": [225] * 50 + [62] * 50,
        "num_orbits": [2] * 50 + [5] * 50,
        "values": [[-3.0]] * 50 + [[-0.5]] * 50,
    }
    rng = np.random.default_rng(0)
    plans = plan_near_targets(200, table, np.array([-3.0]), [(-4.0, 0.0)], None, rng)
    assert {(p.spacegroup, p.num_orbits) for p in plans} == {(225, 2)}
    plans = plan_near_targets(200, table, np.array([-0.6]), [(-4.0, 0.0)], None, rng)
    assert {p.spacegroup for p in plans} == {62}
    restricted = plan_near_targets(20, table, np.array([-3.0]), [(-4.0, 0.0)], [62], rng)
    assert {p.spacegroup for p in restricted} == {62}
    assert plan_near_targets(5, table, np.array([-3.0]), [(-4.0, 0.0)], [1], rng) is None


class _Toy(torch.nn.Module):
    """Outputs that depend on whether the target is known: 1 with it, 0 without."""

    config = None

    def forward(self, crystals, time):
        known = torch.isfinite(crystals.properties).float()[:, :1]
        logits = torch.cat([known, torch.zeros_like(known)], dim=-1)
        return DenoiserOutput(known.expand(-1, 3), known.expand(-1, 6), logits, None)


def test_guidance_extrapolates_from_the_unconditional_prediction():
    crystals, time = inputs(num_nodes=(2,))
    crystals = replace(crystals, properties=torch.tensor([[-2.0]]))
    cond = GuidedDenoiser(_Toy(), 1.0)(crystals, time)
    uncond = GuidedDenoiser(_Toy(), 0.0)(crystals, time)
    assert float(cond.coord_score[0, 0]) == 1.0 and float(uncond.coord_score[0, 0]) == 0.0
    pushed = GuidedDenoiser(_Toy(), 3.0)(crystals, time)
    assert float(pushed.k_eps[0, 0]) == pytest.approx(3.0)
    log_c = torch.log_softmax(torch.tensor([1.0, 0.0]), -1)
    log_u = torch.log_softmax(torch.tensor([0.0, 0.0]), -1)
    torch.testing.assert_close(pushed.element_logits[0], log_u + 3 * (log_c - log_u))
    assert pushed.site_symmetry_logits is None


def test_conditioned_run_ships_ranges_and_label_table_and_samples_toward_targets(
    conditioned_run, tmp_path, capsys
):
    loaded = load_checkpoint(conditioned_run / "model.pt")
    network = loaded.config.model
    assert network.properties == (FORM,)
    low, high = network.property_ranges[0]
    assert -5 < low < high < 1
    assert len(loaded.label_table["spacegroup"]) == 32  # the labelled training crystals
    crystals = sample(
        4,
        checkpoint=conditioned_run / "model.pt",
        steps=3,
        targets={FORM: (low + high) / 2},
        guidance=2.0,
        progress=False,
        max_attempts=1,
    )
    assert len(crystals) == 4
    assert crystals[0].metadata["targets"] == {FORM: pytest.approx((low + high) / 2)}
    assert crystals[0].metadata["guidance"] == 2.0
    table = set(loaded.label_table["spacegroup"])
    assert {c.metadata["spacegroup"] for c in crystals} <= table
    code = main(
        [
            "sample",
            "--n",
            "2",
            "--out",
            str(tmp_path / "s"),
            "--steps",
            "2",
            "--checkpoint",
            str(conditioned_run / "model.pt"),
            "--target",
            "band_gap=1",
        ]
    )
    assert code != 0 and "conditions on formation_energy_per_atom only" in capsys.readouterr().err


def test_screen_keeps_the_candidates_nearest_the_target_in_drawn_order(conditioned_run):
    """--screen K: K x n candidates, the n with the lowest scores kept in the order drawn; the
    scores see every candidate once."""
    options = dict(
        checkpoint=conditioned_run / "model.pt",
        steps=2,
        targets={FORM: -1.0},
        progress=False,
        max_attempts=1,
    )
    candidates = sample(6, **options)
    seen = []

    def by_orbits(structures):  # fewest sites nearest: a stand-in predictor
        seen.append(len(structures))
        return np.array([len(s) + 0.01 * i for i, s in enumerate(structures)], dtype=float)

    kept = sample(2, screen=3, screen_scores=by_orbits, **options)
    assert seen == [6]
    sizes = np.array([len(c.structure) + 0.01 * i for i, c in enumerate(candidates)])
    chosen = sorted(np.argsort(sizes, kind="stable")[:2].tolist())
    assert [c.structure for c in kept] == [candidates[i].structure for i in chosen]
    assert [c.metadata["screen_score"] for c in kept] == pytest.approx(sizes[chosen].tolist())
    assert all(c.metadata["screened_from"] == 6 for c in kept)
    with pytest.raises(InputError, match="screen: needs a predictor"):
        sample(2, screen=3, **options)
    with pytest.raises(InputError, match="screen: 100,000 crystals x 3 candidates"):
        sample(100_000, screen=3, screen_scores=by_orbits, **options)


def test_screen_needs_a_target_and_a_predictor_of_it():
    from symmcd.evaluation.cdvae_property import target_distance
    from symmcd.sampling.config import MAX_SCREEN, SamplingConfig

    with pytest.raises(InputError, match="screen: 3 keeps the crystals nearest a property target"):
        SamplingConfig(screen=3)
    with pytest.raises(InputError, match="screen"):
        SamplingConfig(screen=MAX_SCREEN + 1, targets={FORM: -1.0})
    with pytest.raises(InputError, match="no predictor of band_gap"):
        target_distance({"band_gap": 2.0})
    distances = target_distance({FORM: -1.0})
    crystals = read_csv_of_cifs(MP20 / "val.csv.gz", lazy=True).structures
    structures = [crystals[0], crystals[1]]
    labels = pd.read_csv(MP20 / "val.csv.gz", nrows=2)[FORM].to_numpy()
    assert np.abs(distances(structures) - np.abs(labels + 1.0)).max() < 0.3


def test_unconditional_model_grows_conditioning_without_changing_its_outputs(
    conditioned_run, prepared, tmp_path
):
    source_run = tmp_path / "plain"
    train("tiny", source_run, data_dir=prepared, max_epochs=1)
    source = load_checkpoint(source_run / "model.pt").model.state_dict()
    grown_run = tmp_path / "grown"
    overrides = {"lr": 1e-12, "lr_min": 0.0, "model.properties": [FORM]}
    train(
        "tiny",
        grown_run,
        data_dir=prepared,
        max_epochs=1,
        overrides=overrides,
        init_from=source_run / "model.pt",
    )
    state = load_checkpoint(grown_run / "model.pt").model.state_dict()
    added = [name for name in state if name not in source]
    assert added and all(name.startswith("conditioning.") for name in added)
    assert float(state["conditioning.out.weight"].abs().max()) < 1e-6
    for name, value in source.items():
        torch.testing.assert_close(state[name], value, rtol=0, atol=1e-6, msg=name)
