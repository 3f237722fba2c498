"""Training configuration: one dataclass, shipped YAML files, strict loading.

A config is a YAML mapping with two nested sections, ``model`` (:class:`DenoiserConfig`) and
``diffusion`` (:class:`DiffusionConfig`), plus the training fields of :class:`TrainConfig`.
Loading is strict: an unknown key or a value of the wrong type raises :class:`ConfigError` naming
the key and the file, so a typo never silently falls back to a default.
"""

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import yaml
from torch import nn

from symmcd.diffusion.joint import DiffusionConfig
from symmcd.errors import ConfigError
from symmcd.model.denoiser import DenoiserConfig

CONFIG_DIR = Path(__file__).resolve().parent / "configs"

Representation = Literal["asymmetric_unit", "full_cell"]
Precision = Literal["32", "bf16-mixed"]


@dataclass
class TrainConfig:
    """Everything that defines a training run (network, noise processes, optimisation)."""

    model: DenoiserConfig = field(default_factory=DenoiserConfig)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    representation: Representation = "asymmetric_unit"
    batch_size: int = 256
    lr: float = 1e-3
    lr_min: float = 1e-5  # floor of the cosine decay
    weight_decay: float = 0.0
    warmup_steps: int = 500
    max_epochs: int = 500
    grad_clip: float | None = 0.5
    ema_decay: float = 0.999
    precision: Precision = "32"
    num_workers: int = 0
    seed: int = 42
    check_val_every_n_epoch: int = 5
    limit_train_batches: int | float | None = None
    limit_val_batches: int | float | None = None
    num_threads: int | None = None
    checkpoint_every_minutes: float = 30.0  # also save last.ckpt this often within an epoch
    # a model.pt ("default": the shipped model) whose weights start the run (fine-tuning);
    # its network sizes must equal `model`
    init_from: str | None = None
    # with model.properties: the fraction of training labels replaced by the null label, so one
    # network learns the conditional and the unconditional model (classifier-free guidance)
    property_dropout: float = 0.2

    def __post_init__(self) -> None:
        _check_positive(
            self,
            [
                "batch_size",
                "lr",
                "max_epochs",
                "check_val_every_n_epoch",
                "checkpoint_every_minutes",
            ],
        )
        _check_non_negative(self, ["lr_min", "weight_decay", "warmup_steps", "num_workers"])
        if not 0.0 <= self.ema_decay < 1.0:
            raise ConfigError(f"config key 'ema_decay' must lie in [0, 1), got {self.ema_decay}")
        if self.lr_min > self.lr:
            raise ConfigError(f"config key 'lr_min' ({self.lr_min}) exceeds 'lr' ({self.lr})")
        if not 0.0 <= self.property_dropout < 1.0:
            raise ConfigError(
                f"config key 'property_dropout' must lie in [0, 1), got {self.property_dropout}"
            )
        names = self.model.properties
        if len(set(names)) != len(names):
            raise ConfigError(f"config key 'model.properties' repeats a name: {list(names)}")
        if self.model.property_ranges and len(self.model.property_ranges) != len(names):
            raise ConfigError(
                "config key 'model.property_ranges' needs one [low, high] per property "
                f"({len(names)}), got {len(self.model.property_ranges)}"
            )
        if names and self.representation != "asymmetric_unit":
            raise ConfigError("config key 'model.properties' needs representation asymmetric_unit")

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (lists, not tuples) that YAML, JSON and ``torch.load`` accept."""
        return plain_data(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> "TrainConfig":
        """Build a config from a nested dict, checking every key and type against the fields."""
        return _build_dataclass(cls, data, prefix="", source=source)


def available_configs() -> list[str]:
    """Names of the shipped configs (``symmcd/configs/*.yaml``)."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


def resolve_config_path(name_or_path: str | Path) -> Path:
    """A shipped config name (``cpu-small``) or a path to a YAML file."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        return path
    shipped = CONFIG_DIR / f"{name_or_path}.yaml"
    if not shipped.is_file():
        names = ", ".join(available_configs())
        raise ConfigError(f"unknown config '{name_or_path}' (shipped configs: {names})")
    return shipped


def load_config(name_or_path: str | Path, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Load a shipped or user config and apply ``overrides``.

    ``overrides`` maps dotted keys (``{"model.hidden_dim": 64}``) or nested dicts to values.
    """
    path = resolve_config_path(name_or_path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}".splitlines()[0]) from None
    except (UnicodeDecodeError, OSError) as exc:
        raise ConfigError(f"config file {path} is not a readable YAML text file ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping, got {type(data).__name__}")
    for key, value in flatten_keys(overrides or {}).items():
        set_dotted(data, key, value)
    return TrainConfig.from_dict(data, source=path.name)


def save_config(config: TrainConfig, path: Path) -> None:
    """Write ``config`` as YAML (loadable with :func:`load_config`)."""
    path.write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))


def flatten_keys(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"model": {"hidden_dim": 8}}`` -> ``{"model.hidden_dim": 8}``."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten_keys(value, prefix=f"{dotted}."))
        else:
            flat[dotted] = value
    return flat


def set_dotted(data: dict[str, Any], dotted_key: str, value: Any) -> None:
    """Set ``data["a"]["b"] = value`` for ``dotted_key == "a.b"``, creating sections."""
    *sections, last = dotted_key.split(".")
    node = data
    for section in sections:
        node = node.setdefault(section, {})
        if not isinstance(node, dict):
            raise ConfigError(f"config key '{section}' in override '{dotted_key}' is not a section")
    node[last] = value


def _build_dataclass(cls: type, data: Any, prefix: str, source: str) -> Any:
    section = prefix.rstrip(".") or "the top level"
    if not isinstance(data, dict):
        raise ConfigError(f"config key '{section}' in {source} must be a mapping")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"unknown config key '{prefix}{unknown[0]}' in {source}")
    values = {
        name: _coerce(value, hints[name], f"{prefix}{name}", source) for name, value in data.items()
    }
    try:
        return cls(**values)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"invalid config section '{section}' in {source}: {exc}") from None


def _coerce(value: Any, annotation: Any, key: str, source: str) -> Any:
    """Check ``value`` against ``annotation`` and return it in the annotated type."""
    if dataclasses.is_dataclass(annotation):
        return _build_dataclass(annotation, value, prefix=f"{key}.", source=source)
    converted = _convert(value, annotation)
    if converted is _MISMATCH:
        raise ConfigError(
            f"config key '{key}' in {source} must be {_type_name(annotation)}, got {value!r}"
        )
    return converted


_MISMATCH = object()


def _convert(value: Any, annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        for option in args:
            converted = _convert(value, option)
            if converted is not _MISMATCH:
                return converted
        return _MISMATCH
    if annotation is type(None):
        return None if value is None else _MISMATCH
    if origin is Literal:
        for option in args:
            if value == option or (isinstance(option, str) and str(value) == option):
                return option
        return _MISMATCH
    if annotation is bool:
        return value if isinstance(value, bool) else _MISMATCH
    if annotation is int:
        return value if isinstance(value, int) and not isinstance(value, bool) else _MISMATCH
    if annotation is float:
        return _to_float(value)
    if annotation is str:
        return value if isinstance(value, str) else _MISMATCH
    if origin in (tuple, list):
        return _convert_sequence(value, origin, args)
    if origin is dict or annotation is dict:
        return value if isinstance(value, dict) else _MISMATCH
    return value if isinstance(annotation, type) and isinstance(value, annotation) else _MISMATCH


def _to_float(value: Any) -> Any:
    if isinstance(value, bool):
        return _MISMATCH
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):  # YAML 1.1 reads "1e-3" as a string
        try:
            return float(value)
        except ValueError:
            return _MISMATCH
    return _MISMATCH


def _convert_sequence(value: Any, origin: type, args: tuple) -> Any:
    if not isinstance(value, (list, tuple)):
        return _MISMATCH
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        item_types = [args[0]] * len(value)
    elif origin is tuple and args:
        if len(args) != len(value):
            return _MISMATCH
        item_types = list(args)
    else:
        item_types = [args[0] if args else Any] * len(value)
    items = [_convert(item, item_type) for item, item_type in zip(value, item_types, strict=True)]
    if any(item is _MISMATCH for item in items):
        return _MISMATCH
    return origin(items)


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(annotation))
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(annotation))
    if annotation is type(None):
        return "null"
    return getattr(annotation, "__name__", str(annotation))


def plain_data(value: Any) -> Any:
    """``value`` as nested dicts and lists of Python scalars and strings: tuples become lists,
    numpy values and 0-d tensors Python numbers, paths strings (safe for YAML, JSON and
    ``torch.load(weights_only=True)``)."""
    if isinstance(value, dict):
        return {str(key): plain_data(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_data(item) for item in value]
    if isinstance(value, str):  # also str subclasses such as torch.__version__
        return str(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, torch.Tensor) and value.ndim == 0:
        return value.item()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, nn.Module):
        raise TypeError("a module cannot be stored in a checkpoint payload")
    return value


def _check_positive(config: TrainConfig, names: list[str]) -> None:
    for name in names:
        if getattr(config, name) <= 0:
            raise ConfigError(f"config key '{name}' must be positive, got {getattr(config, name)}")


def _check_non_negative(config: TrainConfig, names: list[str]) -> None:
    for name in names:
        if getattr(config, name) < 0:
            raise ConfigError(f"config key '{name}' must be >= 0, got {getattr(config, name)}")
