"""Property conditioning of the denoiser, trained for classifier-free guidance.

Each conditioning property (e.g. formation energy per atom) is a scalar per crystal. Its value is
expanded in Gaussian radial basis functions on the range seen in training (values outside it are
clamped to its ends) and embedded by a small MLP; a crystal without the label, or one whose label
was dropped for guidance training, gets the property's learned *null* embedding instead. The sum
over properties passes through a zero-initialised linear map, so a model fine-tuned with
conditioning starts from exactly the unconditional model's outputs.

Missing values are NaN: ``properties`` (B, P) holds one column per name of
``DenoiserConfig.properties``, and an all-NaN row is the unconditional model.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

NUM_BASIS = 32


def radial_basis(values: Tensor, low: Tensor, high: Tensor, num_basis: int = NUM_BASIS) -> Tensor:
    """(B,) values -> (B, num_basis) Gaussians centred on an even grid over [low, high]."""
    grid = torch.linspace(0.0, 1.0, num_basis, device=values.device, dtype=values.dtype)
    position = ((values - low) / (high - low)).clamp(0.0, 1.0)
    width = 1.0 / (num_basis - 1)
    return torch.exp(-0.5 * ((position[:, None] - grid[None]) / width) ** 2)


class PropertyConditioning(nn.Module):
    """``(B, P)`` property values (NaN = unknown) -> ``(B, hidden_dim)`` crystal-level input."""

    def __init__(self, ranges: list[tuple[float, float]], hidden_dim: int) -> None:
        super().__init__()
        if not ranges:
            raise ValueError("PropertyConditioning needs at least one property")
        bounds = torch.tensor(ranges, dtype=torch.float32)
        if bool((bounds[:, 1] <= bounds[:, 0]).any()):
            raise ValueError(f"property ranges must have low < high, got {ranges}")
        self.register_buffer("low", bounds[:, 0])
        self.register_buffer("high", bounds[:, 1])
        self.embed = nn.ModuleList(
            nn.Sequential(
                nn.Linear(NUM_BASIS, hidden_dim), nn.SiLU(), nn.Linear(hidden_dim, hidden_dim)
            )
            for _ in ranges
        )
        self.null = nn.Parameter(torch.zeros(len(ranges), hidden_dim))
        self.out = nn.Linear(hidden_dim, hidden_dim, bias=False)
        nn.init.zeros_(self.out.weight)

    @property
    def num_properties(self) -> int:
        return len(self.embed)

    def forward(self, properties: Tensor | None, num_graphs: int, dtype: torch.dtype) -> Tensor:
        if properties is None:  # unconditional: every label unknown
            properties = torch.full(
                (num_graphs, self.num_properties), float("nan"), device=self.low.device
            )
        if properties.shape != (num_graphs, self.num_properties):
            raise ValueError(
                f"properties must have shape ({num_graphs}, {self.num_properties}), "
                f"got {tuple(properties.shape)}"
            )
        total = 0.0
        for column, embed in enumerate(self.embed):
            values = properties[:, column].float()
            known = torch.isfinite(values)
            basis = radial_basis(
                torch.where(known, values, self.low[column]), self.low[column], self.high[column]
            )
            embedded = embed(basis.to(self.null.dtype))
            total = total + torch.where(known[:, None], embedded, self.null[column])
        return self.out(total).to(dtype)
