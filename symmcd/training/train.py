"""``train()``: one function from a config and a prepared data folder to ``model.pt``.

A run folder holds ``config.yaml``, ``last.ckpt`` (every epoch, and every
``checkpoint_every_minutes`` within long epochs), ``best.ckpt`` (lowest EMA validation loss),
CSV logs (TensorBoard too when installed) and the exported sampling checkpoint ``model.pt``.
``resume=True`` continues from ``last.ckpt``, so a killed run loses at most one epoch.
``init_from`` (config key, or ``symmcd train --init-from``) starts a new run from the weights of an
exported ``model.pt`` instead of random ones: fine-tuning the shipped model on your own data, or
teaching it property conditioning (``model.properties``, labels from ``symmcd.data.labels``).

Multi-process training (``devices=2, strategy="ddp"``) works on CPU (gloo) and GPU (nccl).
Lightning starts the extra processes by re-running the command line, so ``train()`` must be
reached from a script or ``symmcd train``; the re-run processes skip the
folder checks and writes that rank 0 already did.
"""

import os
import sys
import time
import warnings
from datetime import timedelta
from pathlib import Path
from typing import Any

import lightning as L
import torch
import yaml
from lightning.pytorch.callbacks import Callback, ModelCheckpoint, TQDMProgressBar
from lightning.pytorch.loggers import CSVLogger, Logger

from symmcd.checkpoint import export_checkpoint
from symmcd.config import (
    TrainConfig,
    flatten_keys,
    load_config,
    save_config,
    set_dotted,
)
from symmcd.data.io import make_folder
from symmcd.data.labels import label_table, property_ranges
from symmcd.data.prepare import resolve_data_dir
from symmcd.errors import InputError
from symmcd.training.module import (
    CrystalDataModule,
    SymmCDModule,
)

LAST_CHECKPOINT = "last.ckpt"
BEST_CHECKPOINT = "best.ckpt"
CONFIG_FILE = "config.yaml"
EXPORTED_MODEL = "model.pt"


def train(
    config: str | Path | TrainConfig,
    out_dir: Path,
    data_dir: Path | None = None,
    max_epochs: int | None = None,
    devices: int = 1,
    strategy: str = "auto",
    accelerator: str = "auto",
    resume: bool = False,
    overrides: dict[str, Any] | None = None,
    init_from: str | Path | None = None,
) -> Path:
    """Train a model and return the path of the exported best checkpoint (``out_dir/model.pt``).

    ``init_from`` (a model.pt, or "default" for the shipped model) overrides the config's
    ``init_from``; it applies to new runs only (a resumed run continues from its own weights).
    """
    out_dir = Path(out_dir)
    is_launched_copy = int(os.environ.get("LOCAL_RANK", "0")) > 0
    cfg = _resolve_config(config, out_dir, resume, overrides)
    if max_epochs is not None:
        cfg.max_epochs = max_epochs
    if init_from is not None:
        if resume:
            raise InputError("init_from starts a new run; a resumed run keeps its own weights")
        cfg.init_from = str(init_from)
    initial_weights = initial_model_weights(cfg) if cfg.init_from and not resume else None
    if not is_launched_copy:
        _check_run_folder(out_dir, resume)
        make_folder(out_dir)
        save_config(cfg, out_dir / CONFIG_FILE)
    data_dir = resolve_data_dir(data_dir, prepare_default=not is_launched_copy)
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    _silence_expected_warnings()

    data = CrystalDataModule(
        data_dir, cfg.representation, cfg.batch_size, cfg.num_workers, cfg.model.properties
    )
    table = None
    if cfg.model.properties:  # conditioning labels: ranges of the grid, table for sampling
        data.setup()
        if not cfg.model.property_ranges:
            cfg.model.property_ranges = tuple(property_ranges(data.train_set))
            if not is_launched_copy:
                save_config(cfg, out_dir / CONFIG_FILE)
        table = label_table(data.train_set)
    module = SymmCDModule.from_config(cfg, data.statistics(), table)
    if initial_weights is not None:
        load_initial_weights(module.model, initial_weights)
        load_initial_weights(module.ema.shadow, initial_weights)
    best_callback = ModelCheckpoint(
        dirpath=out_dir,
        filename=Path(BEST_CHECKPOINT).stem,
        monitor="val/loss",
        mode="min",
        save_top_k=1,
        save_on_train_epoch_end=False,
        auto_insert_metric_name=False,
        enable_version_counter=False,
    )
    interactive = sys.stderr.isatty()  # a progress bar for terminals, one line per epoch in logs
    trainer = L.Trainer(
        default_root_dir=out_dir,
        max_epochs=cfg.max_epochs,
        accelerator=accelerator,
        devices=devices,
        strategy=strategy,
        precision=cfg.precision,
        gradient_clip_val=cfg.grad_clip,
        check_val_every_n_epoch=cfg.check_val_every_n_epoch,
        limit_train_batches=cfg.limit_train_batches,
        limit_val_batches=cfg.limit_val_batches,
        callbacks=[
            LastCheckpoint(out_dir / LAST_CHECKPOINT, cfg.checkpoint_every_minutes),
            best_callback,
            TQDMProgressBar() if interactive else EpochLine(),
        ],
        enable_progress_bar=interactive,
        logger=_loggers(out_dir),
        log_every_n_steps=10,
        enable_model_summary=not is_launched_copy,
    )
    ckpt_path = out_dir / LAST_CHECKPOINT if resume else None
    trainer.fit(module, datamodule=data, ckpt_path=ckpt_path)

    exported = out_dir / EXPORTED_MODEL
    if trainer.is_global_zero:
        source = Path(best_callback.best_model_path or out_dir / LAST_CHECKPOINT)
        export_checkpoint(source, exported)
    trainer.strategy.barrier("symmcd-export")
    return exported


# Network options a fine-tune may change: ``dropout`` holds no weights, and turning an additive
# option on adds zero-initialised modules, so the fine-tune starts from the source's outputs.
NO_WEIGHT_OPTIONS = ("dropout",)
ADDITIVE_OPTIONS = ("geometric_features", "properties", "property_ranges")


def initial_model_weights(config: TrainConfig) -> dict[str, torch.Tensor]:
    """The denoiser weights of ``config.init_from`` (an exported model.pt; ``"default"``: the
    shipped one), checked against the config's network sizes before anything is written."""
    from symmcd.checkpoint import DEFAULT_CHECKPOINT, load_checkpoint

    source = str(config.init_from)
    path = DEFAULT_CHECKPOINT if source == "default" else Path(source)
    loaded = load_checkpoint(path)
    ours, theirs = config.model.__dict__, loaded.config.model.__dict__
    different = [
        f"{key} {theirs[key]} != {ours[key]}"
        for key in ours
        if ours[key] != theirs[key]
        and key not in NO_WEIGHT_OPTIONS
        and not (key in ADDITIVE_OPTIONS and ours[key] and not theirs[key])
    ]
    if different:
        raise InputError(
            f"init_from: {path} has other network sizes than this config ({'; '.join(different)})"
        )
    return loaded.model.state_dict()


def load_initial_weights(model: torch.nn.Module, weights: dict[str, torch.Tensor]) -> None:
    """Load ``weights`` into ``model``; parameters only the new model has (added by an
    ``ADDITIVE_OPTIONS`` switch) keep their zero initialisation."""
    result = model.load_state_dict(weights, strict=False)
    if result.unexpected_keys:
        raise InputError(f"init_from: weights the model has no place for: {result.unexpected_keys}")
    added = ("geometry_proj", "node_geometry_proj", "conditioning.")
    stray = [key for key in result.missing_keys if not any(part in key for part in added)]
    if stray:
        raise InputError(f"init_from: the source model lacks {stray}")


def _resolve_config(
    config: str | Path | TrainConfig,
    out_dir: Path,
    resume: bool,
    overrides: dict[str, Any] | None,
) -> TrainConfig:
    """On resume the run's own ``config.yaml`` wins, so the continued run is the same run."""
    if resume and (out_dir / CONFIG_FILE).is_file():
        return load_config(out_dir / CONFIG_FILE, overrides)
    if isinstance(config, TrainConfig):
        if overrides:
            return TrainConfig.from_dict(_merged(config.to_dict(), overrides), source="overrides")
        return TrainConfig.from_dict(config.to_dict(), source="config")
    return load_config(config, overrides)


def _merged(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    for key, value in flatten_keys(overrides).items():
        set_dotted(base, key, value)
    return base


def _silence_expected_warnings() -> None:
    """Lightning warnings about states that are deliberate here."""
    warnings.filterwarnings("ignore", message=r"Found \d+ module\(s\) in eval mode")  # EMA copy
    warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")
    warnings.filterwarnings("ignore", message=r"The number of training batches .* logging interval")


def _check_run_folder(out_dir: Path, resume: bool) -> None:
    if resume:
        if not (out_dir / LAST_CHECKPOINT).is_file():
            raise InputError(f"cannot resume: no {LAST_CHECKPOINT} in {out_dir}")
    elif out_dir.exists() and any(out_dir.iterdir()):
        raise InputError(
            f"run folder {out_dir} is not empty: pass --resume to continue it, or use a new folder"
        )


class EpochLine(Callback):
    """One line per epoch on stdout, for runs logged to a file (where a progress bar would
    write a line per step)."""

    def __init__(self) -> None:
        self.started = time.monotonic()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        parts = [f"epoch {trainer.current_epoch}", f"step {trainer.global_step}"]
        for key in ("train/loss_epoch", "val/loss"):
            value = trainer.callback_metrics.get(key)
            if value is not None:
                parts.append(f"{key} {float(value):.4f}")
        parts.append(f"{time.monotonic() - self.started:.0f} s")
        print(" | ".join(parts), flush=True)


class LastCheckpoint(Callback):
    """Write ``last.ckpt`` after every training epoch and every ``minutes`` within an epoch.

    Lightning's ``ModelCheckpoint(save_last=True)`` writes ``last`` only when it also saved a
    monitored checkpoint in that step, which with validation every few epochs would lose several
    epochs on a kill. The file is written beside and then renamed over the old one, so a kill
    during the write never leaves a truncated ``last.ckpt``.
    """

    def __init__(self, path: Path, minutes: float) -> None:
        self.path = path
        self.interval = timedelta(minutes=minutes).total_seconds()
        self._last_save = time.monotonic()

    def _save(self, trainer: L.Trainer) -> None:
        partial = self.path.with_name(self.path.name + ".partial")
        trainer.save_checkpoint(partial, weights_only=False)  # optimizer state too, to resume
        if trainer.is_global_zero:
            os.replace(partial, self.path)
        trainer.strategy.barrier("symmcd-last-checkpoint")
        self._last_save = time.monotonic()

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        due = time.monotonic() - self._last_save >= self.interval
        # every rank must agree, or the barrier in _save would hang under DDP
        if trainer.strategy.reduce_boolean_decision(due, all=False):
            self._save(trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, *args: Any) -> None:
        self._save(trainer)


def _loggers(out_dir: Path) -> list[Logger]:
    loggers: list[Logger] = [CSVLogger(out_dir, name="logs")]  # logs/version_N per start
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        return loggers
    from lightning.pytorch.loggers import TensorBoardLogger

    loggers.append(TensorBoardLogger(out_dir, name="tensorboard"))
    return loggers


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """``["model.hidden_dim=512", ...]`` -> ``{"model.hidden_dim": 512}`` (values read as YAML)."""
    overrides = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise InputError(f"override {pair!r} must look like key=value")
        overrides[key.strip()] = yaml.safe_load(value)
    return overrides
