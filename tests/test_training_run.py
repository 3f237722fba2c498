"""End-to-end training on 64 MP-20 crystals: fit, resume, NaN stop, export, DDP."""

import csv
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from symmcd.checkpoint import FORMAT_VERSION, export_checkpoint, load_checkpoint
from symmcd.data.prepare import prepare_dataset
from symmcd.diffusion.joint import JointDiffusion
from symmcd.errors import CheckpointError, InputError
from symmcd.model.denoiser import Denoiser
from symmcd.training.module import NonFiniteLossError
from symmcd.training.train import LastCheckpoint, initial_model_weights, train

MP20 = Path(__file__).resolve().parents[1] / "symmcd" / "data" / "mp20"
NUM_TRAIN, NUM_VAL, TINY_BATCH = 64, 32, 16
STEPS_PER_EPOCH = NUM_TRAIN // TINY_BATCH


@pytest.fixture(scope="session")
def prepared(tmp_path_factory) -> Path:
    """A prepared folder with 64 train and 32 val crystals from the shipped MP-20."""
    root = tmp_path_factory.mktemp("mp20-small")
    pd.read_csv(MP20 / "train.csv.gz", nrows=NUM_TRAIN).to_csv(root / "train.csv", index=False)
    pd.read_csv(MP20 / "val.csv.gz", nrows=NUM_VAL).to_csv(root / "val.csv", index=False)
    sources = {"train": [root / "train.csv"], "val": [root / "val.csv"]}
    prepare_dataset(sources, root / "prepared", workers=1)
    return root / "prepared"


@pytest.fixture(scope="module")
def trained_run(prepared, tmp_path_factory) -> Path:
    """A 2-epoch tiny run (shared by the tests that only read it)."""
    out = tmp_path_factory.mktemp("run") / "tiny"
    train("tiny", out, data_dir=prepared, max_epochs=2)
    return out


def read_metrics(run: Path) -> list[dict[str, str]]:
    """Rows of every CSV log of the run (one ``version_*`` folder per start or resume)."""
    rows = []
    for path in sorted((run / "logs").glob("version_*/metrics.csv")):
        with open(path) as handle:
            rows += list(csv.DictReader(handle))
    return rows


def lightning_ckpt(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def test_fit_writes_run_folder(trained_run):
    for name in ("config.yaml", "last.ckpt", "best.ckpt", "model.pt", "logs/version_0/metrics.csv"):
        assert (trained_run / name).is_file(), name
    last = lightning_ckpt(trained_run / "last.ckpt")
    assert last["global_step"] == 2 * STEPS_PER_EPOCH
    rows = read_metrics(trained_run)
    val_epochs = {int(r["epoch"]) for r in rows if r.get("val/loss")}
    assert val_epochs == {0, 1}
    terms = ("loss", "lattice", "coords", "elements", "site_symmetry")
    assert all(any(r.get(f"train/{t}_epoch") for r in rows) for t in terms)


def test_exported_model_uses_ema_weights_and_runs(trained_run, prepared):
    loaded = load_checkpoint(trained_run / "model.pt")
    assert isinstance(loaded.model, Denoiser) and not loaded.model.training
    assert isinstance(loaded.diffusion, JointDiffusion)
    assert loaded.statistics.num_crystals == NUM_TRAIN
    assert loaded.config.model.hidden_dim == 32
    meta = loaded.metadata
    assert meta["epochs"] == 2 and meta["global_step"] == 2 * STEPS_PER_EPOCH
    assert meta["val_loss"] > 0 and meta["wall_seconds"] > 0 and meta["hardware"]["cpu_count"]
    best = lightning_ckpt(trained_run / "best.ckpt")["state_dict"]
    for name, value in loaded.model.state_dict().items():
        assert torch.equal(value, best[f"ema.shadow.{name}"]), name
    assert any(
        not torch.equal(best[f"ema.shadow.{name}"], best[f"model.{name}"])
        for name in loaded.model.state_dict()
    ), "EMA weights should differ from the raw weights after training"

    from symmcd.data.dataset import AsymmetricUnitDataset, collate

    dataset = AsymmetricUnitDataset(prepared / "val.npz")
    batch = collate([dataset[i] for i in range(8)])
    with torch.no_grad():
        losses = loaded.diffusion.training_losses(loaded.model, batch)
    assert torch.isfinite(losses["loss"])


def test_model_pt_is_weights_only_safe(trained_run):
    payload = torch.load(trained_run / "model.pt", weights_only=True)
    assert payload["format_version"] == FORMAT_VERSION
    assert set(payload) >= {"state_dict", "config", "statistics", "metadata"}


def test_half_export_round_trip(trained_run, tmp_path):
    half_path = export_checkpoint(trained_run / "best.ckpt", tmp_path / "half.pt", half=True)
    full, half = load_checkpoint(trained_run / "model.pt"), load_checkpoint(half_path)
    assert half.metadata["half"] is True
    stored = [
        torch.load(p, weights_only=True)["state_dict"]
        for p in (trained_run / "model.pt", half_path)
    ]
    full_bytes, half_bytes = (sum(v.nbytes for v in s.values()) for s in stored)
    assert half_bytes == full_bytes // 2
    pairs = zip(full.model.state_dict().items(), half.model.state_dict().values(), strict=True)
    for (name, a), b in pairs:
        assert b.dtype == a.dtype
        torch.testing.assert_close(a, b, rtol=2e-3, atol=1e-4, msg=name)


def test_resume_continues_where_it_stopped(trained_run, prepared, tmp_path, capsys):
    run = tmp_path / "resumed"
    shutil.copytree(trained_run, run)
    (run / "model.pt").unlink()
    train("tiny", run, data_dir=prepared, max_epochs=3, resume=True)
    # stderr is not a terminal here: one line per epoch instead of a progress bar
    assert "epoch 2 | step " in capsys.readouterr().out
    last = lightning_ckpt(run / "last.ckpt")
    assert last["global_step"] == 3 * STEPS_PER_EPOCH
    val_epochs = sorted(int(r["epoch"]) for r in read_metrics(run) if r.get("val/loss"))
    assert val_epochs == [0, 1, 2]  # the first two from the first start, kept
    metadata = load_checkpoint(run / "model.pt").metadata
    assert metadata["global_step"] in (2 * STEPS_PER_EPOCH, 3 * STEPS_PER_EPOCH)  # best of 2 or 3


def test_fine_tuning_starts_from_the_given_weights(trained_run, prepared, tmp_path):
    from symmcd.config import load_config

    source = trained_run / "model.pt"
    weights = load_checkpoint(source).model.state_dict()
    config = load_config("tiny", {"init_from": str(source)})
    for name, value in initial_model_weights(config).items():
        assert torch.equal(value, weights[name]), name

    # one epoch at a vanishing learning rate: the exported EMA weights are the ones we started
    # from (a random start would differ by O(1))
    run = tmp_path / "tuned"
    overrides = {"lr": 1e-12, "lr_min": 0.0}
    train("tiny", run, data_dir=prepared, max_epochs=1, init_from=source, overrides=overrides)
    assert load_config(run / "config.yaml").init_from == str(source)
    for name, value in load_checkpoint(run / "model.pt").model.state_dict().items():
        torch.testing.assert_close(value, weights[name], rtol=0, atol=1e-6, msg=name)

    with pytest.raises(InputError, match="hidden_dim 32 != 48"):
        train(
            "tiny",
            tmp_path / "wide",
            data_dir=prepared,
            init_from=source,
            overrides={"model.hidden_dim": 48},
        )
    with pytest.raises(InputError, match="new run"):
        train("tiny", run, data_dir=prepared, resume=True, init_from=source)
    with pytest.raises(CheckpointError, match="not found"):
        train("tiny", tmp_path / "other", data_dir=prepared, init_from=tmp_path / "no.pt")
    assert not (tmp_path / "wide").exists() and not (tmp_path / "other").exists()


def test_fine_tuning_can_add_collision_features(trained_run, prepared, tmp_path):
    source = trained_run / "model.pt"
    weights = load_checkpoint(source).model.state_dict()
    run = tmp_path / "grown"
    overrides = {"lr": 1e-12, "lr_min": 0.0, "model.geometric_features": True}
    train("tiny", run, data_dir=prepared, max_epochs=1, init_from=source, overrides=overrides)
    grown = load_checkpoint(run / "model.pt")
    assert grown.config.model.geometric_features
    state = grown.model.state_dict()
    added = [name for name in state if name not in weights]
    assert added and all("geometry_proj" in name for name in added)
    for name in added:  # new inputs start at zero, so the grown model starts as the source
        assert float(state[name].abs().max()) < 1e-6, name
    for name, value in weights.items():
        torch.testing.assert_close(state[name], value, rtol=0, atol=1e-6, msg=name)
    # the other way round would drop trained weights: refused
    with pytest.raises(InputError, match="geometric_features True != False"):
        train("tiny", tmp_path / "shrunk", data_dir=prepared, init_from=run / "model.pt")


def test_run_folder_checks(trained_run, prepared, tmp_path):
    with pytest.raises(InputError, match="not empty"):
        train("tiny", trained_run, data_dir=prepared)
    with pytest.raises(InputError, match="cannot resume"):
        train("tiny", tmp_path / "fresh", data_dir=prepared, resume=True)
    with pytest.raises(InputError, match="data folder not found"):
        train("tiny", tmp_path / "other", data_dir=tmp_path / "missing")


def test_nan_loss_saves_checkpoint_and_names_batch(prepared, tmp_path, monkeypatch):
    original = JointDiffusion.training_losses
    calls = {"n": 0}

    def poisoned(self, model, batch, **kwargs):
        losses = original(self, model, batch, **kwargs)
        calls["n"] += model.training  # validation runs the EMA copy, in eval mode
        if model.training and calls["n"] >= 3:  # the third training batch: epoch 0, batch 2
            losses["loss"] = losses["loss"] * float("nan")
        return losses

    monkeypatch.setattr(JointDiffusion, "training_losses", poisoned)
    out = tmp_path / "nan"
    with pytest.raises(NonFiniteLossError, match=r"epoch 0, batch 2, crystals mp-") as info:
        train("tiny", out, data_dir=prepared, overrides={"check_val_every_n_epoch": 5})
    assert "nan.ckpt" in str(info.value)
    saved = lightning_ckpt(out / "nan.ckpt")
    assert saved["global_step"] == 2
    assert all(
        torch.isfinite(v).all() for v in saved["state_dict"].values() if v.is_floating_point()
    )


def test_last_checkpoint_saved_every_epoch_and_within_an_epoch(prepared, tmp_path, monkeypatch):
    saved_at_steps = []
    original = LastCheckpoint._save

    def spy(self, trainer):
        saved_at_steps.append(trainer.global_step)
        return original(self, trainer)

    monkeypatch.setattr(LastCheckpoint, "_save", spy)
    overrides = {"checkpoint_every_minutes": 1e-6, "check_val_every_n_epoch": 5}
    train("tiny", tmp_path / "timed", data_dir=prepared, max_epochs=2, overrides=overrides)
    assert 0 < min(saved_at_steps) < STEPS_PER_EPOCH  # a save before the first epoch ended
    assert STEPS_PER_EPOCH in saved_at_steps  # end of epoch 0, although no validation ran
    assert lightning_ckpt(tmp_path / "timed" / "last.ckpt")["global_step"] == 2 * STEPS_PER_EPOCH
    assert not list((tmp_path / "timed").glob("*.partial"))


def test_killed_run_resumes_losing_at_most_one_epoch(prepared, tmp_path):
    """SIGKILL a real `train` process mid-run, resume it, and check no finished epoch is lost."""
    out = tmp_path / "killed"
    command = [sys.executable, "-m", "symmcd.cli", "train", "--config", "tiny", "--out", str(out)]
    command += ["--data", str(prepared), "--set", "max_epochs=1000"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and process.poll() is None:
            if (out / "last.ckpt").is_file():
                if lightning_ckpt(out / "last.ckpt")["global_step"] >= 2 * STEPS_PER_EPOCH:
                    break
            time.sleep(0.5)
        assert process.poll() is None, "training ended before it could be killed"
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
    saved = lightning_ckpt(out / "last.ckpt")
    epochs_done = saved["global_step"] // STEPS_PER_EPOCH
    assert epochs_done >= 2
    resumed_to = saved["epoch"] + 2
    train("tiny", out, data_dir=prepared, max_epochs=resumed_to, resume=True)
    final = lightning_ckpt(out / "last.ckpt")
    # the resumed run continued from the saved step rather than from scratch
    assert final["global_step"] >= saved["global_step"] + STEPS_PER_EPOCH


def test_full_cell_baseline_trains(prepared, tmp_path):
    overrides = {"representation": "full_cell", "model.use_site_symmetry": False}
    path = train("tiny", tmp_path / "full", data_dir=prepared, max_epochs=1, overrides=overrides)
    loaded = load_checkpoint(path)
    assert loaded.config.representation == "full_cell"
    assert not hasattr(loaded.model, "site_symmetry_head")


def test_bad_checkpoints_raise_checkpoint_error(trained_run, tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="garbage.pt"):
        load_checkpoint(garbage)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes((trained_run / "model.pt").read_bytes()[:5000])
    with pytest.raises(CheckpointError, match="truncated.pt"):
        load_checkpoint(truncated)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    with pytest.raises(CheckpointError, match="not a symmcd model checkpoint"):
        load_checkpoint(foreign)
    future = tmp_path / "future.pt"
    payload = torch.load(trained_run / "model.pt", weights_only=True)
    torch.save({**payload, "format_version": FORMAT_VERSION + 1}, future)
    with pytest.raises(CheckpointError, match="format version"):
        load_checkpoint(future)
    with pytest.raises(CheckpointError, match="not a symmcd training checkpoint"):
        export_checkpoint(foreign, tmp_path / "out.pt")


@pytest.mark.slow  # about 35 s on 2 busy cores, mostly starting the second process
def test_ddp_two_cpu_processes(prepared, tmp_path):
    out = tmp_path / "ddp"
    command = [
        sys.executable, "-m", "symmcd.cli", "train", "--config", "tiny", "--out", str(out),
        "--data", str(prepared), "--devices", "2", "--strategy", "ddp",
        "--accelerator", "cpu", "--max-epochs", "1",
    ]  # fmt: skip
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    elapsed = time.perf_counter() - started
    assert result.returncode == 0, result.stderr[-3000:]
    last = lightning_ckpt(out / "last.ckpt")
    assert last["global_step"] == STEPS_PER_EPOCH // 2  # each process sees half the crystals
    assert load_checkpoint(out / "model.pt").metadata["hardware"]["world_size"] == 2
    print(f"DDP 2 x CPU, 1 epoch: {elapsed:.1f} s")
