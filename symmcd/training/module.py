"""Lightning wiring: the training module (denoiser + diffusion + EMA) and the data module.

:class:`SymmCDModule` owns the :class:`Denoiser`, the :class:`JointDiffusion` that turns a clean
batch into noisy inputs and per-term losses, and an EMA copy of the denoiser. Training updates
the raw weights; validation and export use the EMA weights. Its hyperparameters are plain
dicts (config, dataset statistics and, for a property-conditioned model, the label table of
:func:`symmcd.data.labels.label_table`), so every checkpoint is self-describing.
"""

import math
import os
import platform
import time
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader

from symmcd.config import TrainConfig, plain_data
from symmcd.data.batch import CrystalBatch
from symmcd.data.dataset import AsymmetricUnitDataset, collate
from symmcd.data.labels import label_matrix, split_labels
from symmcd.data.prepare import STATISTICS_FILE, load_statistics, split_cache_path
from symmcd.data.statistics import DatasetStatistics
from symmcd.diffusion.joint import JointDiffusion
from symmcd.errors import SymmcdError
from symmcd.model.denoiser import Denoiser
from symmcd.training.ema import ExponentialMovingAverage

NAN_CHECKPOINT = "nan.ckpt"


class NonFiniteLossError(SymmcdError):
    """Training produced a NaN or infinite loss (the message names the batch)."""


def warmup_cosine_factor(step: int, warmup_steps: int, total_steps: int, floor: float) -> float:
    """Learning-rate multiplier: linear warm-up to 1, then cosine decay to ``floor``."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    decay_steps = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / decay_steps)
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def hardware_summary(trainer: "L.Trainer | None" = None) -> dict[str, Any]:
    """What the run trained on, for the checkpoint metadata."""
    summary: dict[str, Any] = {
        "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
    }
    if torch.cuda.is_available():
        summary["gpu"] = torch.cuda.get_device_name()
    if trainer is not None:
        summary["accelerator"] = type(trainer.accelerator).__name__
        summary["world_size"] = trainer.world_size
        summary["precision"] = str(trainer.precision)
    return summary


class SymmCDModule(L.LightningModule):
    """Denoiser + joint diffusion + EMA, trained with AdamW and a warm-up/cosine schedule."""

    def __init__(
        self,
        config: dict[str, Any],
        statistics: dict[str, Any],
        label_table: dict[str, Any] | None = None,
    ):
        super().__init__()
        hparams = {"config": plain_data(config), "statistics": plain_data(statistics)}
        if label_table is not None:
            hparams["label_table"] = plain_data(label_table)
        self.save_hyperparameters(hparams, logger=False)
        self.config = TrainConfig.from_dict(config)
        stats = DatasetStatistics.from_dict(statistics)
        self.model = Denoiser(self.config.model)
        self.diffusion = JointDiffusion.from_statistics(self.config.diffusion, stats)
        self.ema = ExponentialMovingAverage(self.model, decay=self.config.ema_decay)
        self.wall_seconds_before = 0.0
        self._fit_started = time.monotonic()

    @classmethod
    def from_config(
        cls,
        config: TrainConfig,
        statistics: DatasetStatistics,
        label_table: dict[str, Any] | None = None,
    ) -> "SymmCDModule":
        return cls(config.to_dict(), statistics.to_dict(), label_table)

    def training_step(self, batch: CrystalBatch, batch_idx: int) -> torch.Tensor:
        if batch.properties is not None:
            batch = replace(
                batch, properties=drop_labels(batch.properties, self.config.property_dropout)
            )
        losses = self.diffusion.training_losses(
            self.model, batch, use_site_symmetry=self.config.model.use_site_symmetry
        )
        self._stop_if_not_finite(losses["loss"], batch, batch_idx)
        self._log_losses("train", losses, batch.num_graphs)
        return losses["loss"]

    def on_train_batch_end(self, outputs: Any, batch: CrystalBatch, batch_idx: int) -> None:
        self.ema.update(self.model)

    def validation_step(self, batch: CrystalBatch, batch_idx: int) -> None:
        # Fixed noise per batch so validation losses of different epochs are comparable.
        generator = torch.Generator(device=self.device).manual_seed(self.config.seed + batch_idx)
        losses = self.diffusion.training_losses(
            self.ema.shadow,
            batch,
            generator=generator,
            use_site_symmetry=self.config.model.use_site_symmetry,
        )
        self._log_losses("val", losses, batch.num_graphs)

    def configure_optimizers(self) -> dict[str, Any]:
        cfg = self.config
        optimizer = torch.optim.AdamW(
            self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay
        )
        schedule = partial(
            warmup_cosine_factor,
            warmup_steps=cfg.warmup_steps,
            total_steps=int(self.trainer.estimated_stepping_batches),
            floor=cfg.lr_min / cfg.lr,
        )
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }

    def on_fit_start(self) -> None:
        self._fit_started = time.monotonic()

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        val_loss = self.trainer.callback_metrics.get("val/loss")
        checkpoint["symmcd"] = {
            "epochs": self.trainer.global_step / max(1, self.trainer.num_training_batches),
            "wall_seconds": self.wall_seconds_before + time.monotonic() - self._fit_started,
            "val_loss": None if val_loss is None else float(val_loss),
            "hardware": hardware_summary(self.trainer),
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.wall_seconds_before = float(checkpoint.get("symmcd", {}).get("wall_seconds", 0.0))

    def _log_losses(self, stage: str, losses: dict[str, torch.Tensor], batch_size: int) -> None:
        for name, value in losses.items():
            self.log(
                f"{stage}/{name}",
                value.detach(),
                batch_size=batch_size,
                prog_bar=name == "loss",
                on_step=stage == "train",
                on_epoch=True,
                sync_dist=True,
            )

    def _stop_if_not_finite(self, loss: torch.Tensor, batch: CrystalBatch, batch_idx: int) -> None:
        """Save a checkpoint and raise if any process saw a NaN/inf loss (all ranks agree)."""
        not_finite = not bool(torch.isfinite(loss.detach()).all())
        if not self.trainer.strategy.reduce_boolean_decision(not_finite, all=False):
            return
        path = Path(self.trainer.default_root_dir) / NAN_CHECKPOINT
        self.trainer.save_checkpoint(path, weights_only=False)
        where = f"epoch {self.current_epoch}, batch {batch_idx}"
        if not not_finite:
            where += " on another process"
        crystals = f", crystals {_id_list(batch.ids)}" if batch.ids and not_finite else ""
        raise NonFiniteLossError(
            f"training loss became {float(loss.detach())} at {where}{crystals}; "
            f"state before this step saved to {path}"
        )


def drop_labels(
    properties: torch.Tensor, fraction: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """``properties`` with each label replaced by NaN (the null label) with probability
    ``fraction``: the unconditional half of classifier-free guidance training."""
    if fraction <= 0:
        return properties
    drop = torch.rand(properties.shape, generator=generator, device=properties.device) < fraction
    return properties.masked_fill(drop, float("nan"))


def _id_list(ids: list[str], shown: int = 8) -> str:
    more = f" (+{len(ids) - shown} more)" if len(ids) > shown else ""
    return ", ".join(ids[:shown]) + more


class CrystalDataModule(L.LightningDataModule):
    """Train/val loaders over the caches of a prepared data folder."""

    def __init__(
        self,
        data_dir: Path,
        representation: str = "asymmetric_unit",
        batch_size: int = 256,
        num_workers: int = 0,
        properties: tuple[str, ...] = (),
    ):
        super().__init__()
        self.properties = tuple(properties)
        self.data_dir = Path(data_dir)
        self.representation = representation
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.train_set: AsymmetricUnitDataset | None = None
        self.val_set: AsymmetricUnitDataset | None = None

    def transfer_batch_to_device(self, batch: Any, device: torch.device, dataloader_idx: int):
        if isinstance(batch, CrystalBatch):
            return batch.to(device)
        return super().transfer_batch_to_device(batch, device, dataloader_idx)

    def statistics(self) -> DatasetStatistics:
        return load_statistics(Path(self.data_dir) / STATISTICS_FILE)

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is None:
            self.train_set = self._dataset("train")
            self.val_set = self._dataset("val")

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, shuffle=False)

    def _dataset(self, split: str) -> AsymmetricUnitDataset:
        dataset = AsymmetricUnitDataset(split_cache_path(self.data_dir, split), self.representation)
        if self.properties:
            labels = [split_labels(self.data_dir, split, name) for name in self.properties]
            dataset.attach_properties(label_matrix(dataset.cache.ids, labels))
        return dataset

    def _loader(self, dataset: AsymmetricUnitDataset | None, shuffle: bool) -> DataLoader:
        if dataset is None:
            raise RuntimeError("CrystalDataModule.setup() must run before asking for loaders")
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=shuffle,
            collate_fn=collate,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )
