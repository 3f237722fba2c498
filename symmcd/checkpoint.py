"""Self-contained sampling checkpoints (``model.pt``), below both training and sampling.

A Lightning training checkpoint holds optimiser state, loop counters and both the raw and the
EMA weights. :func:`export_checkpoint` distils it into what sampling needs: the EMA weights of
the denoiser, the config, the dataset statistics, a format version and training metadata. The
file holds plain dicts, lists, numbers, strings and tensors only, so it loads with
``torch.load(..., weights_only=True)`` and never runs pickled code.
"""

import io
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from symmcd.config import TrainConfig, plain_data
from symmcd.data.statistics import DatasetStatistics
from symmcd.diffusion.joint import JointDiffusion
from symmcd.errors import CheckpointError, SymmcdError
from symmcd.model.denoiser import Denoiser

DEFAULT_CHECKPOINT = Path(__file__).resolve().parent / "weights" / "default.pt"  # shipped model
# the shipped property-conditioned model: what sampling with targets uses by default
CONDITIONED_CHECKPOINT = DEFAULT_CHECKPOINT.with_name("conditioned.pt")
CHECKPOINT_FORMAT = "symmcd-model"
FORMAT_VERSION = 1
# torch's message when weights_only refuses a pickled object, and the class it names
WEIGHTS_ONLY_REFUSAL = "Weights only load failed"
UNSUPPORTED_GLOBAL = re.compile(r"Unsupported global: GLOBAL ([\w.]+)")
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
EMA_PREFIX = "ema.shadow."
RAW_PREFIX = "model."


@dataclass
class LoadedModel:
    """Everything sampling needs, restored from ``model.pt``."""

    model: Denoiser
    diffusion: JointDiffusion
    statistics: DatasetStatistics
    config: TrainConfig
    metadata: dict[str, Any]
    # conditioned models: space group, orbit count and labels of the labelled training crystals
    label_table: dict[str, Any] | None = None


def export_checkpoint(ckpt_path: Path, out_path: Path, half: bool = False) -> Path:
    """Write ``model.pt`` from a Lightning checkpoint of :class:`SymmCDModule`.

    Uses the EMA weights when present (raw weights otherwise). ``half=True`` stores floating
    tensors as float16 to halve the file; :func:`load_checkpoint` casts them back to float32.
    """
    ckpt_path, out_path = Path(ckpt_path), Path(out_path)
    lightning_ckpt = read_torch_file(ckpt_path)
    try:
        hparams = lightning_ckpt["hyper_parameters"]
        state_dict = lightning_ckpt["state_dict"]
        config, statistics = dict(hparams["config"]), dict(hparams["statistics"])
    except (KeyError, TypeError):
        raise CheckpointError(f"{ckpt_path} is not a symmcd training checkpoint") from None
    weights = _denoiser_weights(state_dict, ckpt_path)
    if half:
        weights = {k: v.half() if v.is_floating_point() else v for k, v in weights.items()}
    payload = {
        "format": CHECKPOINT_FORMAT,
        "format_version": FORMAT_VERSION,
        "state_dict": weights,
        "config": plain_data(config),
        "statistics": plain_data(statistics),
        "metadata": plain_data(_training_metadata(lightning_ckpt, ckpt_path, half)),
    }
    if hparams.get("label_table") is not None:
        payload["label_table"] = plain_data(dict(hparams["label_table"]))
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = out_path.with_name(out_path.name + ".tmp")
    torch.save(payload, tmp_path)
    tmp_path.replace(out_path)
    return out_path


def load_checkpoint(path: Path, device: str | torch.device = "cpu") -> LoadedModel:
    """Load ``model.pt`` into an eval-mode denoiser and its diffusion (raises CheckpointError)."""
    path = Path(path)
    payload = read_torch_file(path)
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a symmcd model checkpoint (missing format tag)")
    version = payload.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format version {version}; this symmcd reads {FORMAT_VERSION}"
        )
    try:
        config = TrainConfig.from_dict(payload["config"], source=str(path))
        statistics = DatasetStatistics.from_dict(payload["statistics"])
        model = Denoiser(config.model)
        model.load_state_dict(_as_float32(payload["state_dict"]))
        diffusion = JointDiffusion.from_statistics(config.diffusion, statistics)
    except (KeyError, TypeError, ValueError, RuntimeError, SymmcdError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(f"{path} does not match this symmcd version: {reason}") from None
    model.eval().to(device)
    diffusion.to(device)
    metadata = dict(payload.get("metadata", {}))
    return LoadedModel(model, diffusion, statistics, config, metadata, payload.get("label_table"))


def _as_float32(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.float() if v.is_floating_point() else v for k, v in weights.items()}


def read_torch_file(path: Path, what: str = "checkpoint") -> Any:
    """``torch.load`` with safe unpickling; every failure becomes a CheckpointError naming
    ``what`` the file was meant to be: a pickled object that safe loading refuses, or a file
    that is not a readable torch file (corrupt, truncated, foreign). Plain text, one line."""
    if not path.is_file():
        raise CheckpointError(f"{what} not found: {path}")
    try:
        return torch.load(io.BytesIO(path.read_bytes()), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for truncated or foreign files
        text = ANSI_ESCAPE.sub("", str(exc))
        if text.startswith(WEIGHTS_ONLY_REFUSAL):
            found = UNSUPPORTED_GLOBAL.search(text)
            holds = f" (it holds {found.group(1)})" if found else ""
            raise CheckpointError(
                f"cannot read {what} {path}: it is a pickled Python object{holds}, which safe "
                "loading (weights_only) refuses, since unpickling it could run arbitrary code; "
                "symmcd reads files of plain tensors and values only"
            ) from None
        detail = text.splitlines()[0].split(". ")[0].strip() if text else ""
        # unpickling junk yields bare numbers or opcodes as messages: say what it means instead
        reason = detail if len(detail) > 12 and not detail.isdigit() else type(exc).__name__
        raise CheckpointError(
            f"cannot read {what} {path}: not a readable torch file, corrupt or truncated ({reason})"
        ) from None


def _denoiser_weights(state_dict: dict[str, torch.Tensor], path: Path) -> dict[str, torch.Tensor]:
    """The EMA denoiser weights (or the raw ones) with their module prefix stripped."""
    for prefix in (EMA_PREFIX, RAW_PREFIX):
        weights = {k[len(prefix) :]: v for k, v in state_dict.items() if k.startswith(prefix)}
        if weights:
            return weights
    raise CheckpointError(f"{path} holds no denoiser weights")


def _training_metadata(lightning_ckpt: dict[str, Any], path: Path, half: bool) -> dict[str, Any]:
    run = dict(lightning_ckpt.get("symmcd", {}))
    return {
        "source_checkpoint": path.name,
        "epochs": float(run.get("epochs", lightning_ckpt.get("epoch", 0))),
        "global_step": int(lightning_ckpt.get("global_step", 0)),
        "wall_seconds": float(run.get("wall_seconds", math.nan)),
        "val_loss": run.get("val_loss"),
        "hardware": run.get("hardware", {}),
        "torch_version": torch.__version__,
        "half": half,
    }
