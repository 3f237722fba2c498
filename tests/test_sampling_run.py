"""End-to-end sampling with a tiny randomly initialised model (no trained weights needed)."""

import dataclasses
import json

import numpy as np
import pytest
import torch
from pymatgen.core import Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from symmcd.checkpoint import LoadedModel
from symmcd.config import TrainConfig
from symmcd.data.statistics import DatasetStatistics
from symmcd.diffusion.joint import DiffusionConfig, JointDiffusion
from symmcd.errors import CheckpointError, InputError
from symmcd.model.denoiser import Denoiser, DenoiserConfig
from symmcd.sampling import sample, sample_to_dir
from symmcd.sampling.loop import cpu_has_native_bf16, resolve_precision, timestep_pairs
from symmcd.symmetry import tables

GROUPS = {225: 5, 62: 3, 194: 2, 14: 4, 2: 1}  # space group -> count in the toy "training set"
ELEMENTS = ["Li", "Na", "Fe", "P", "O", "Cl", "Si"]


def toy_statistics() -> DatasetStatistics:
    spacegroup_counts = np.zeros(230, dtype=np.int64)
    num_orbits = np.zeros((230, 7), dtype=np.int64)
    num_atoms = np.zeros((230, 9), dtype=np.int64)  # at most 8 atoms
    site = np.zeros((230, 15, 13), dtype=np.int64)
    for group, count in GROUPS.items():
        spacegroup_counts[group - 1] = count
        num_orbits[group - 1, 1:4] = 1
        num_atoms[group - 1, 8] = 1
        for wp in tables.space_group(group).wyckoff_positions:
            site[group - 1, np.arange(15), wp.site_symmetry] += 1
    element_counts = np.zeros(100, dtype=np.int64)
    for symbol in ELEMENTS:
        element_counts[[3, 11, 26, 15, 8, 17, 14][ELEMENTS.index(symbol)] - 1] = 5
    return DatasetStatistics(
        spacegroup_counts=spacegroup_counts,
        num_orbits_counts=num_orbits,
        num_atoms_counts=num_atoms,
        element_counts=element_counts,
        site_symmetry_counts=site,
        k_mean=np.array([0.0, 0.0, 0.0, 0.0, 0.0, 1.6]),
        k_std=np.array([0.05, 0.05, 0.05, 0.05, 0.05, 0.1]),
        num_crystals=sum(GROUPS.values()),
    )


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny graphs run fastest (and unaffected by other processes) on one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def toy_model() -> LoadedModel:
    torch.manual_seed(0)
    config = TrainConfig(
        model=DenoiserConfig(hidden_dim=16, num_layers=1, time_dim=8, num_frequencies=2),
        diffusion=DiffusionConfig(num_steps=20),
    )
    statistics = toy_statistics()
    model = Denoiser(config.model).eval()
    diffusion = JointDiffusion.from_statistics(config.diffusion, statistics)
    return LoadedModel(model, diffusion, statistics, config, {})


def test_same_seed_gives_identical_files(toy_model, tmp_path):
    kwargs = dict(checkpoint=toy_model, steps=5, batch_size=4, progress=False)
    sample_to_dir(tmp_path / "a", 6, seed=3, formats="cif,extxyz", **kwargs)
    sample_to_dir(tmp_path / "b", 6, seed=3, formats="cif,extxyz", **kwargs)
    sample_to_dir(tmp_path / "c", 6, seed=4, **kwargs)
    for name in ["samples.jsonl", "samples.extxyz", "cifs/000005.cif"]:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert (tmp_path / "a/samples.jsonl").read_bytes() != (
        tmp_path / "c/samples.jsonl"
    ).read_bytes()


def test_records_describe_symmetric_crystals(toy_model, tmp_path):
    summary = sample_to_dir(tmp_path / "out", 8, checkpoint=toy_model, steps=4, progress=False)
    assert summary["n"] == 8
    records = [
        json.loads(line)
        for line in (tmp_path / "out/samples.jsonl").read_text().split("\n")
        if line
    ]
    assert len(records) == 8
    for record in records:
        assert record["spacegroup"] in GROUPS
        assert record["wyckoff"].startswith(tables.SG_SYMBOL[record["spacegroup"] - 1] + ":")
        assert 1 <= record["num_orbits"] <= 3
        multiplicities = [
            int(site.split()[1][:-1]) for site in record["wyckoff"].split(": ")[1].split(", ")
        ]
        assert sum(multiplicities) == record["num_sites"]
        if not record["collapsed"]:  # a random model may put two orbits on one fixed point
            structure = Structure.from_file(tmp_path / "out" / record["file"])
            assert structure.composition.reduced_formula == record["formula"]
        assert record["symmetry_distance_max"] >= record["symmetry_distance_mean"] >= 0


def test_spacegroup_and_element_conditions(toy_model):
    crystals = sample(
        6, checkpoint=toy_model, spacegroups="62", elements="Li,O", steps=3, progress=False
    )
    for crystal in crystals:
        assert crystal.metadata["spacegroup"] == 62
        assert set(crystal.structure.composition.chemical_system.split("-")) <= {"Li", "O"}
    top = sample(4, checkpoint=toy_model, top_k_spacegroups=1, steps=2, progress=False)
    assert {c.metadata["spacegroup"] for c in top} == {225}


def test_formula_conditioning_gives_exact_composition(toy_model):
    crystals = sample(
        4, checkpoint=toy_model, formula="NaCl", spacegroups=[225], steps=3, progress=False
    )
    for crystal in crystals:
        assert crystal.structure.composition.reduced_formula == "NaCl"
        assert crystal.metadata["wyckoff"] in ("Fm-3m: Na 4a, Cl 4b", "Fm-3m: Na 4b, Cl 4a")
        assert SpacegroupAnalyzer(crystal.structure, symprec=0.1).get_space_group_number() == 225


def test_bad_conditions_raise_one_line_errors(toy_model, tmp_path):
    cases = [
        (dict(spacegroups="231"), "231"),
        (dict(elements="Li,Qq"), "Qq"),
        (dict(elements="U"), "never saw U"),
        (dict(formula="LiFePO4", spacegroups=[225]), "no Wyckoff template"),
        (dict(steps=21), "steps"),
        (dict(spacegroups=[225], top_k_spacegroups=2), "not both"),
        (dict(precision="fp8"), "precision"),
        (dict(corrector_steps=-1), "corrector_steps"),
        (dict(min_distance=0.2), "min_distance"),
        (dict(min_distance=float("nan")), "min_distance"),
        (dict(element_temperature=0), "element_temperature"),
        (dict(element_temperature="hot"), "element_temperature"),
        (dict(charge_balanced="yes"), "charge_balanced"),
    ]
    for kwargs, fragment in cases:
        with pytest.raises(InputError, match=fragment) as info:
            sample(2, checkpoint=toy_model, progress=False, **kwargs)
        assert "\n" not in str(info.value)
    with pytest.raises(CheckpointError, match="not found"):
        sample(2, checkpoint=tmp_path / "missing.pt", progress=False)
    (tmp_path / "corrupt.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError):
        sample(2, checkpoint=tmp_path / "corrupt.pt", progress=False)
    (tmp_path / "full").mkdir()
    (tmp_path / "full/x").write_text("x")
    with pytest.raises(InputError, match="not empty"):
        sample_to_dir(tmp_path / "full", 2, checkpoint=toy_model, progress=False)


def test_strided_schedule():
    assert timestep_pairs(1000, 4) == [(1000, 750), (750, 500), (500, 250), (250, 0)]
    assert len(timestep_pairs(1000, None)) == 1000
    with pytest.raises(InputError):
        timestep_pairs(1000, 0)


def test_checkpoint_file_and_its_default_step_count(toy_model, tmp_path):
    from symmcd.checkpoint import CHECKPOINT_FORMAT, FORMAT_VERSION

    path = tmp_path / "model.pt"
    payload = {
        "format": CHECKPOINT_FORMAT,
        "format_version": FORMAT_VERSION,
        "state_dict": toy_model.model.state_dict(),
        "config": toy_model.config.to_dict(),
        "statistics": toy_model.statistics.to_dict(),
        "metadata": {"sampling_steps": 3},
    }
    torch.save(payload, path)
    crystals = sample(3, checkpoint=str(path), seed=1, progress=False)
    assert [c.metadata["steps"] for c in crystals] == [3, 3, 3]
    again = sample(3, checkpoint=toy_model, steps=3, seed=1, progress=False)
    assert [c.metadata["wyckoff"] for c in crystals] == [c.metadata["wyckoff"] for c in again]


class CountingModel(torch.nn.Module):
    """The toy denoiser, counting its forward calls."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model
        self.calls = 0

    def forward(self, crystals, time):
        self.calls += 1
        return self.model(crystals, time)


@pytest.mark.parametrize("corrector_steps", [0, 1, 2])
def test_corrector_steps_add_one_network_call_each(toy_model, corrector_steps):
    counting = CountingModel(toy_model.model)
    loaded = dataclasses.replace(toy_model, model=counting)
    crystals = sample(
        3,
        checkpoint=loaded,
        steps=4,
        precision="32",
        max_attempts=1,
        corrector_steps=corrector_steps,
        progress=False,
    )
    assert counting.calls == 4 * (1 + corrector_steps)
    assert {c.metadata["corrector_steps"] for c in crystals} == {corrector_steps}
    assert all(np.isfinite(c.structure.frac_coords).all() for c in crystals)


def test_bfloat16_autocast_samples_valid_crystals(toy_model):
    crystals = sample(3, checkpoint=toy_model, steps=3, precision="bf16", progress=False)
    assert len(crystals) == 3
    assert all(np.isfinite(c.structure.lattice.matrix).all() for c in crystals)
    assert {c.metadata["precision"] for c in crystals} == {"bf16"}


def test_auto_precision_follows_the_cpu_flags(toy_model):
    assert cpu_has_native_bf16("flags\t: fpu avx2 avx512f avx512_bf16 avx512_vnni\n")
    assert cpu_has_native_bf16("flags\t: fpu avx2 amx_bf16 amx_tile\n")
    assert not cpu_has_native_bf16("flags\t: fpu avx2 avx512f\nbugs\t: avx512_bf16\n")
    assert resolve_precision("32") == "32" and resolve_precision("bf16") == "bf16"
    expected = "bf16" if cpu_has_native_bf16() else "32"
    assert resolve_precision("auto") == expected
    crystals = sample(2, checkpoint=toy_model, steps=2, progress=False)
    assert {c.metadata["precision"] for c in crystals} == {expected}


@pytest.mark.parametrize("batch_size", [500, 7])  # 7: redraws pooled over several batches
def test_collapsed_crystals_can_be_redrawn(toy_model, batch_size):
    kwargs = dict(checkpoint=toy_model, steps=2, seed=0, progress=False, batch_size=batch_size)
    kept = sample(30, max_attempts=1, **kwargs)
    redrawn = sample(30, max_attempts=3, **kwargs)
    assert any(c.metadata["collapsed"] for c in kept)  # a random model collapses now and then
    assert any(c.metadata["attempts"] > 1 for c in redrawn)
    for before, after in zip(kept, redrawn, strict=True):
        assert 1 <= after.metadata["attempts"] <= 3
        bad = after.metadata["collapsed"] or not after.metadata["symmetry_ok"]
        if bad:  # only crystals out of attempts stay bad
            assert after.metadata["attempts"] == 3
        if not before.metadata["collapsed"] and before.metadata["symmetry_ok"]:  # same first draw
            assert after.metadata["attempts"] == 1
            assert after.metadata["wyckoff"] == before.metadata["wyckoff"]


def test_min_distance_redraws_crystals_with_close_atoms(toy_model):
    kwargs = dict(checkpoint=toy_model, steps=2, seed=0, progress=False)
    kept = sample(30, max_attempts=1, **kwargs)
    threshold = float(np.median([c.metadata["min_distance"] for c in kept]))
    assert threshold > 0.5
    strict = sample(30, max_attempts=4, min_distance=threshold, **kwargs)
    for before, after in zip(kept, strict, strict=True):
        if after.metadata["attempts"] < 4:  # passed: far enough apart and symmetric
            assert after.metadata["min_distance"] >= threshold
            assert after.metadata["symmetry_ok"]
        if before.metadata["min_distance"] < threshold:
            assert after.metadata["attempts"] > 1
    close = sum(c.metadata["min_distance"] < threshold for c in kept)
    assert sum(c.metadata["min_distance"] < threshold for c in strict) < close


def test_formula_redraws_switch_to_fresh_templates(toy_model):
    """A random network collapses often; late redraws of a formula run draw new templates and
    every crystal keeps the exact composition."""
    kwargs = dict(checkpoint=toy_model, formula="Li2O", steps=2, seed=0, progress=False)
    crystals = sample(24, max_attempts=4, **kwargs)
    assert any(c.metadata["attempts"] >= 3 for c in crystals)  # the re-planning path ran
    for crystal in crystals:
        assert crystal.structure.composition.reduced_formula == "Li2O"
    again = sample(24, max_attempts=4, **kwargs)
    assert [c.metadata["wyckoff"] for c in crystals] == [c.metadata["wyckoff"] for c in again]


def test_shipped_model_loads_and_samples_symmetric_crystals():
    """The model in the package (what `symmcd sample` uses by default) loads and works."""
    from symmcd.sampling.sampler import load_model

    loaded = load_model(None)
    assert loaded.metadata["sampling_steps"] == 100
    assert loaded.statistics.num_crystals == 20762
    crystals = sample(8, steps=20, seed=0, precision="32", progress=False)
    assert len({c.metadata["spacegroup"] for c in crystals}) > 1
    passed = [c.metadata["symmetry_ok"] and not c.metadata["collapsed"] for c in crystals]
    assert sum(passed) >= 7


def test_charge_balanced_redraws_compositions_that_fail_smact(toy_model):
    from symmcd.evaluation.validity import composition_is_valid

    # the filter alone: the argmax decoding leaves the unbalanced compositions it is to catch
    kwargs = dict(checkpoint=toy_model, steps=2, seed=0, progress=False, element_decoding="argmax")
    plain = sample(30, max_attempts=1, **kwargs)
    assert all("charge_balanced" not in c.metadata for c in plain)
    flagged = sample(30, max_attempts=1, charge_balanced=True, **kwargs)
    for before, after in zip(plain, flagged, strict=True):  # one draw: same crystals, flagged
        assert after.metadata["wyckoff"] == before.metadata["wyckoff"]
        balanced = composition_is_valid(after.structure.composition)
        assert after.metadata["charge_balanced"] == balanced
    unbalanced = sum(not c.metadata["charge_balanced"] for c in flagged)
    assert unbalanced > 0  # the toy model's random elements often fail SMACT
    redrawn = sample(30, max_attempts=6, charge_balanced=True, **kwargs)
    for crystal in redrawn:
        if crystal.metadata["attempts"] < 6:
            assert crystal.metadata["charge_balanced"]
    assert sum(not c.metadata["charge_balanced"] for c in redrawn) < unbalanced


def test_charge_balanced_decoding_changes_only_elements(toy_model):
    from symmcd.evaluation.validity import composition_is_valid

    kwargs = dict(checkpoint=toy_model, steps=2, seed=0, progress=False, max_attempts=1)
    argmax = sample(30, element_decoding="argmax", **kwargs)
    balanced = sample(30, element_decoding="charge-balanced", **kwargs)
    changed = 0
    for before, after in zip(argmax, balanced, strict=True):
        np.testing.assert_allclose(after.structure.frac_coords, before.structure.frac_coords)
        assert [o.letter for o in after.orbits] == [o.letter for o in before.orbits]
        if after.metadata["rebalanced_orbits"]:
            changed += 1
            assert composition_is_valid(after.structure.composition)
            assert not composition_is_valid(before.structure.composition)
        else:
            assert after.metadata["formula"] == before.metadata["formula"]
    assert changed > 0  # the toy model's elements often fail SMACT, and some can be mended


def test_threads_apply_to_the_run_only(toy_model, tmp_path, monkeypatch):
    import symmcd.sampling.runs as runs

    before = torch.get_num_threads()
    seen = []
    original = runs._make_chunks

    def spy(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return original(*args, **kwargs)

    monkeypatch.setattr(runs, "_make_chunks", spy)
    wanted = 1 if before > 1 else 2
    kwargs = dict(checkpoint=toy_model, steps=3, progress=False)
    summary = sample_to_dir(tmp_path / "a", 2, threads=wanted, **kwargs)
    assert seen == [wanted]
    assert summary["conditions"]["threads"] == wanted
    assert torch.get_num_threads() == before
    for bad in (0, -1, 1.5):
        with pytest.raises(InputError, match="threads"):
            sample_to_dir(tmp_path / f"bad{bad}", 2, threads=bad, **kwargs)
        assert not (tmp_path / f"bad{bad}").exists()


def test_cli_rejects_bad_thread_counts(tmp_path, capsys):
    from symmcd.cli import main

    status = main(["sample", "--n", "2", "--out", str(tmp_path / "s"), "--threads", "0"])
    assert status == 2
    assert "threads must be a positive integer, got 0" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()
