"""Training and evaluating a property regressor (plain torch: small data, one process).

A run folder holds ``model.pt`` (the lowest validation MAE so far, loadable with
``load_property_model``), ``last.pt`` (everything to resume after an interrupted epoch) and
``metrics.json`` (per-epoch losses, the best epoch, and the test MAE when a test split is given).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from symmcd.data.dataset import REPRESENTATIONS, collate
from symmcd.data.io import check_writable_parent, lock_out_dir, make_folder, unlock_out_dir
from symmcd.data.labels import label_files, load_labels, split_sources
from symmcd.errors import CheckpointError, InputError
from symmcd.model.denoiser import DenoiserConfig
from symmcd.property.data import PropertyDataset
from symmcd.property.model import PropertyModel, PropertyRegressor, load_property_model

LAST = "last.pt"
BEST = "model.pt"


@dataclass
class PropertyConfig:
    """What to fit and how; ``symmetry`` adds the site symmetries and the space group."""

    target: str = "formation_energy_per_atom"
    representation: str = "asymmetric_unit"
    symmetry: bool = True
    hidden_dim: int = 128
    num_layers: int = 3
    epochs: int = 40
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    seed: int = 0

    def __post_init__(self) -> None:
        if self.representation not in REPRESENTATIONS:
            raise InputError(
                f"representation {self.representation!r}: choose one of {REPRESENTATIONS}"
            )
        for name in ("hidden_dim", "num_layers", "epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise InputError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise InputError(f"lr must be > 0, got {self.lr}")


def _loader(dataset: PropertyDataset, batch_size: int, shuffle: bool, seed: int = 0) -> DataLoader:
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(
        dataset, batch_size=batch_size, shuffle=shuffle, collate_fn=collate, generator=generator
    )


def _k_statistics(dataset: PropertyDataset) -> tuple[torch.Tensor, torch.Tensor]:
    k = torch.from_numpy(dataset.cache.k[dataset.indices].astype(np.float32))
    return k.mean(0), k.std(0).clamp_min(1e-3)


@torch.no_grad()
def predict(model: PropertyModel, dataset: PropertyDataset, batch_size: int = 256) -> np.ndarray:
    """Predictions for every item of ``dataset``, in its order."""
    out = [model.predict_batch(batch) for batch in _loader(dataset, batch_size, shuffle=False)]
    return torch.cat(out).numpy().astype(np.float64)


def mean_absolute_error(model: PropertyModel, dataset: PropertyDataset) -> float:
    return float(np.mean(np.abs(predict(model, dataset) - dataset.targets)))


def train_property(
    config: PropertyConfig,
    train_set: PropertyDataset,
    val_set: PropertyDataset,
    out_dir: Path,
    resume: bool = False,
    test_set: PropertyDataset | None = None,
) -> dict:
    """Fit, keep the lowest-validation-MAE epoch in ``out_dir/model.pt``; returns metrics.json.
    One run owns ``out_dir`` while it trains (``OUT.lock``, see ``symmcd.data.io``): a second
    run on the same folder is refused naming the first one's PID."""
    out_dir = Path(out_dir)
    check_writable_parent(out_dir)
    lock_out_dir(out_dir)
    try:
        return _train_property(config, train_set, val_set, out_dir, resume, test_set)
    finally:
        unlock_out_dir(out_dir)


def _train_property(
    config: PropertyConfig,
    train_set: PropertyDataset,
    val_set: PropertyDataset,
    out_dir: Path,
    resume: bool,
    test_set: PropertyDataset | None,
) -> dict:
    if resume and not (out_dir / LAST).is_file():
        raise InputError(f"cannot resume: no {LAST} in {out_dir}")
    if not resume and out_dir.exists() and any(out_dir.iterdir()):
        raise InputError(f"run folder {out_dir} is not empty: pass --resume or use a new folder")
    make_folder(out_dir)
    torch.manual_seed(config.seed)

    denoiser_config = DenoiserConfig(
        hidden_dim=config.hidden_dim,
        num_layers=config.num_layers,
        use_site_symmetry=config.symmetry,
    )
    regressor = PropertyRegressor(denoiser_config, config.symmetry)
    k_mean, k_std = _k_statistics(train_set)
    model = PropertyModel(
        regressor=regressor,
        target=config.target,
        representation=config.representation,
        k_mean=k_mean,
        k_std=k_std,
        target_mean=float(train_set.targets.mean()),
        target_std=float(train_set.targets.std()),
        metadata={
            "config": asdict(config),
            "train_labels": len(train_set),
            "val_labels": len(val_set),
            "parameters": sum(p.numel() for p in regressor.parameters()),
        },
    )
    optimizer = torch.optim.AdamW(
        regressor.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    steps_per_epoch = math.ceil(len(train_set) / config.batch_size)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=config.lr, total_steps=config.epochs * steps_per_epoch, pct_start=0.05
    )
    history: list[dict] = []
    best = math.inf
    start_epoch = 0
    if resume:
        state = _read_last(out_dir / LAST)
        if state["config"] != asdict(config):
            raise InputError(f"{out_dir}: resume with the run's own settings {state['config']}")
        regressor.load_state_dict(state["regressor"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        history, best, start_epoch = state["history"], state["best"], state["epoch"] + 1

    for epoch in range(start_epoch, config.epochs):
        started = time.time()
        regressor.train()
        losses = []
        batches = _loader(train_set, config.batch_size, shuffle=True, seed=config.seed + epoch)
        for batch in tqdm(batches, desc=f"epoch {epoch}", leave=False, unit="batch"):
            target = (batch_targets(batch, train_set) - model.target_mean) / model.target_std
            pred = regressor(batch, (batch.k - k_mean) / k_std)
            loss = torch.nn.functional.l1_loss(pred, target)
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(regressor.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            losses.append(loss.item())
        val_mae = mean_absolute_error(model, val_set)
        row = {
            "epoch": epoch,
            "train_l1_normalised": float(np.mean(losses)),
            "val_mae": val_mae,
            "seconds": round(time.time() - started, 1),
        }
        history.append(row)
        print(
            f"epoch {epoch} | train L1 (normalised) {row['train_l1_normalised']:.4f} | "
            f"val MAE {val_mae:.4f} | {row['seconds']} s",
            flush=True,
        )
        if val_mae < best:
            best = val_mae
            model.metadata["best_epoch"] = epoch
            model.save(out_dir / BEST)
        torch.save(
            {
                "config": asdict(config),
                "regressor": regressor.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "history": history,
                "best": best,
                "epoch": epoch,
            },
            out_dir / LAST,
        )

    metrics = {
        "config": asdict(config),
        "train_labels": len(train_set),
        "val_labels": len(val_set),
        "history": history,
        "best_val_mae": best,
    }
    best_model = load_property_model(out_dir / BEST)
    metrics["best_epoch"] = best_model.metadata.get("best_epoch")
    metrics["parameters"] = best_model.metadata["parameters"]
    if test_set is not None:
        metrics["test_labels"] = len(test_set)
        metrics["test_mae"] = mean_absolute_error(best_model, test_set)
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


def batch_targets(batch, dataset: PropertyDataset) -> torch.Tensor:
    """The targets of a batch's crystals, by id (collate keeps ids, not extra fields)."""
    return torch.tensor([dataset.target_of[i] for i in batch.ids], dtype=torch.float32)


def _read_last(path: Path) -> dict:
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:
        reason = err.__class__.__name__
        raise CheckpointError(f"{path}: unreadable ({reason}); start a new run") from None


def train_from_prepared(
    config: PropertyConfig, data_dir: Path, out_dir: Path, resume: bool = False
) -> dict:
    """Train on the labelled crystals of ``data_dir``'s train split, choose the epoch on its val
    split, and report the MAE on its test split when it has one. Labels are the ``config.target``
    column of the CSVs each split was prepared from (and the shipped labels file for the shipped
    MP-20 splits, :func:`symmcd.data.labels.label_files`)."""
    sources = split_sources(data_dir)
    for split in ("train", "val"):
        if split not in sources:
            raise InputError(f"{data_dir}: no {split} split")
    sets = {}
    for split, paths in sources.items():
        if split not in ("train", "val", "test"):
            continue
        labels = load_labels(label_files(paths), config.target)
        sets[split] = PropertyDataset(
            Path(data_dir) / f"{split}.npz", labels, config.representation, config.symmetry
        )
    return train_property(
        config, sets["train"], sets["val"], out_dir, resume=resume, test_set=sets.get("test")
    )
