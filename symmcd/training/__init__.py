"""Training: configs, the Lightning module, EMA, checkpoints and ``train()``."""

from symmcd.training.checkpoint import LoadedModel, export_checkpoint, load_checkpoint
from symmcd.training.config import TrainConfig, load_config

__all__ = ["LoadedModel", "TrainConfig", "export_checkpoint", "load_checkpoint", "load_config"]
