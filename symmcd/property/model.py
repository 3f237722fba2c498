"""The property regressor and its saved form (``model.pt``: weights, sizes, normalisation)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from symmcd.checkpoint import read_torch_file
from symmcd.data.batch import CrystalBatch
from symmcd.errors import CheckpointError
from symmcd.model.denoiser import Denoiser, DenoiserConfig, NoisyCrystals, mlp

FORMAT = "symmcd-property-v1"


class PropertyRegressor(nn.Module):
    """One scalar per crystal from the denoiser's trunk at time 0 (its heads removed).

    ``symmetry=False`` hides the space-group encoding and the site symmetries (both zero), so the
    network sees only elements, fractional coordinates and the lattice.
    """

    def __init__(self, config: DenoiserConfig, symmetry: bool):
        super().__init__()
        self.symmetry = symmetry
        self.trunk = Denoiser(config)
        for name in Denoiser.HEADS:
            if hasattr(self.trunk, name):
                delattr(self.trunk, name)
        h = config.hidden_dim
        self.head = mlp(2 * h, h, 1)

    def forward(self, batch: CrystalBatch, k_normalised: Tensor) -> Tensor:
        """Normalised predictions ``(B,)``."""
        sg_encoding = batch.sg_encoding if self.symmetry else torch.zeros_like(batch.sg_encoding)
        time = torch.zeros(batch.num_graphs, dtype=k_normalised.dtype)
        crystals = NoisyCrystals(
            k=k_normalised,
            frac_coords=batch.frac_coords,
            atom_types=batch.atom_types,
            site_symmetry=batch.site_symmetry if self.symmetry else None,
            sg_encoding=sg_encoding,
            node_batch=batch.node_batch,
            edge_index=batch.edge_index,
            num_nodes=batch.num_nodes,
        )
        _, pooled, graph = self.trunk.encode(crystals, time)
        return self.head(torch.cat([pooled, graph], dim=-1)).squeeze(-1)


@dataclass
class PropertyModel:
    """A trained regressor with what it needs to read inputs and to give physical units."""

    regressor: PropertyRegressor
    target: str
    representation: str
    k_mean: Tensor  # (6,)
    k_std: Tensor  # (6,)
    target_mean: float
    target_std: float
    metadata: dict[str, Any]

    @torch.no_grad()
    def predict_batch(self, batch: CrystalBatch) -> Tensor:
        """Predictions in the target's units, ``(B,)``."""
        self.regressor.eval()
        k = (batch.k - self.k_mean) / self.k_std
        return self.regressor(batch, k) * self.target_std + self.target_mean

    def save(self, path: Path) -> Path:
        config = self.regressor.trunk.config
        torch.save(
            {
                "format": FORMAT,
                "state_dict": self.regressor.state_dict(),
                "denoiser_config": asdict(config),
                "symmetry": self.regressor.symmetry,
                "target": self.target,
                "representation": self.representation,
                "k_mean": self.k_mean,
                "k_std": self.k_std,
                "target_mean": self.target_mean,
                "target_std": self.target_std,
                "metadata": self.metadata,
            },
            path,
        )
        return path


def load_property_model(path: Path | str) -> PropertyModel:
    """A ``model.pt`` of ``symmcd property train``; CheckpointError if the file is not one."""
    path = Path(path)
    payload = read_torch_file(path, "property model")
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a symmcd property model (format {FORMAT} expected)")
    regressor = PropertyRegressor(DenoiserConfig(**payload["denoiser_config"]), payload["symmetry"])
    try:
        regressor.load_state_dict(payload["state_dict"])
    except RuntimeError as err:
        raise CheckpointError(f"{path}: weights do not fit the stored sizes: {err}") from None
    return PropertyModel(
        regressor=regressor,
        target=payload["target"],
        representation=payload["representation"],
        k_mean=payload["k_mean"],
        k_std=payload["k_std"],
        target_mean=float(payload["target_mean"]),
        target_std=float(payload["target_std"]),
        metadata=payload["metadata"],
    )
