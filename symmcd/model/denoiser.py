"""The denoiser: non-equivariant message passing over each crystal's representative atoms.

Inputs are a batch of noisy crystals (:class:`NoisyCrystals`: lattice k-vector, fractional
coordinates, element and per-direction site-symmetry classes of each node, the space group, and
a conditioned model's property targets) plus the diffusion time. Every crystal is
a fully connected graph of its nodes. Edges carry Fourier features of the periodic coordinate
difference, so messages see relative positions on the torus without any lattice equivariance.
Nodes also carry Fourier features of their own coordinates: a space group fixes the origin, and
which Wyckoff position a representative sits on depends on where it is, not only on its
neighbours (a crystal of one orbit has no neighbours at all).

Outputs (:class:`DenoiserOutput`): the normalised coordinate score per node, the lattice noise
``eps``, element logits and per-direction site-symmetry logits (``None`` for the full-cell model).
Only plain torch ops are used (``index_select`` / ``index_add_``), no compiled extensions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from symmcd.errors import InputError
from symmcd.model.conditioning import PropertyConditioning
from symmcd.model.geometry import EDGE_GEOMETRY_DIM, NODE_GEOMETRY_DIM, OrbitGeometry


@dataclass
class DenoiserConfig:
    """Sizes of the denoiser; ``use_site_symmetry=False`` gives the full-cell baseline."""

    hidden_dim: int = 256
    num_layers: int = 4
    time_dim: int = 64
    num_frequencies: int = 32
    num_elements: int = 100
    num_site_classes: int = 13
    num_directions: int = 15
    sg_encoding_dim: int = 397
    use_site_symmetry: bool = True
    dropout: float = 0.0
    # radial features of the replicated orbits (symmcd.model.geometry): what collides
    geometric_features: bool = False
    # conditioning properties (symmcd.model.conditioning), e.g. ("formation_energy_per_atom",),
    # and the (low, high) range of each, which training fills in from the labels
    properties: tuple[str, ...] = ()
    property_ranges: tuple[tuple[float, float], ...] = ()


@dataclass(frozen=True)
class NoisyCrystals:
    """A batch of B noisy crystals (N nodes in all) as the denoiser sees them: its one input
    besides the diffusion time.

    ``properties`` is the conditioning of a conditioned model: (B, P) targets, NaN = no target
    (classifier-free guidance's unconditional call), None = all unconditional. ``spacegroup`` and
    the raw ``lattice`` are read only by a network with ``geometric_features``,
    ``site_symmetry`` only by one with site symmetry."""

    k: Tensor  # (B, 6) normalised lattice k-vector
    frac_coords: Tensor  # (N, 3)
    atom_types: Tensor  # (N,) long, Z - 1
    site_symmetry: Tensor | None  # (N, 15) long, one class per direction
    sg_encoding: Tensor  # (B, 397)
    node_batch: Tensor  # (N,) crystal of each node
    edge_index: Tensor  # (2, E) fully connected within each crystal
    num_nodes: Tensor  # (B,)
    spacegroup: Tensor | None = None  # (B,) 1..230
    lattice: Tensor | None = None  # (B, 3, 3) raw lattice of k
    properties: Tensor | None = None  # (B, P)


@dataclass
class DenoiserOutput:
    """Network predictions for one batch (see the module docstring)."""

    coord_score: Tensor  # (N, 3) normalised score of the wrapped normal
    k_eps: Tensor  # (B, 6) noise of the normalised lattice k-vector
    element_logits: Tensor  # (N, num_elements) logits of the clean element
    site_symmetry_logits: Tensor | None  # (N, 15, 13) logits of the clean classes, or None


def sinusoidal_embedding(time: Tensor, dim: int, max_period: float = 10000.0) -> Tensor:
    """Transformer-style embedding of ``time`` (B,) in [0, 1], scaled by 1000 like integer steps."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=time.device) / half)
    args = 1000.0 * time.float()[:, None] * freqs[None]
    return torch.cat([torch.sin(args), torch.cos(args)], dim=-1)


def periodic_fourier_features(dx: Tensor, num_frequencies: int) -> Tensor:
    """``sin, cos(2 pi f dx)`` for ``f = 1..num_frequencies`` of ``dx`` (E, 3) -> (E, 6F)."""
    freqs = torch.arange(1, num_frequencies + 1, device=dx.device, dtype=dx.dtype)
    args = 2 * math.pi * dx[..., None] * freqs  # (E, 3, F)
    return torch.cat([torch.sin(args), torch.cos(args)], dim=-1).flatten(1)


def mlp(in_dim: int, hidden_dim: int, out_dim: int) -> nn.Sequential:
    """Two-layer perceptron with SiLU."""
    return nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.SiLU(), nn.Linear(hidden_dim, out_dim))


def zero_linear(in_dim: int, out_dim: int) -> nn.Linear:
    """A bias-free linear map that starts at zero: a new input added to a network leaves its
    output unchanged at first (so a model fine-tuned with it starts where it was)."""
    layer = nn.Linear(in_dim, out_dim, bias=False)
    nn.init.zeros_(layer.weight)
    return layer


def mean_over_index(values: Tensor, index: Tensor, size: int) -> Tensor:
    """Mean of rows of ``values`` grouped by ``index`` into ``size`` groups (empty groups: 0)."""
    total = values.new_zeros(size, values.shape[-1]).index_add_(0, index, values)
    count = torch.zeros(size, device=values.device, dtype=values.dtype)
    count.index_add_(0, index, torch.ones_like(index, dtype=values.dtype))
    return total / count.clamp_min(1.0)[:, None]


class MessagePassingLayer(nn.Module):
    """Pre-norm residual layer: mean of edge messages into each node, then an update MLP.

    A message is the one-hidden-layer MLP ``W_out SiLU(W_dst h_i + W_src h_j + W_e e_ij)``.
    Node projections are computed before gathering them onto edges, and ``W_out`` is applied
    after the (linear) mean, so the only per-edge matrix product is ``W_e e_ij``.
    """

    def __init__(
        self, hidden_dim: int, edge_dim: int, dropout: float, geometry_dim: int = 0
    ) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(hidden_dim)
        self.dst_proj = nn.Linear(hidden_dim, hidden_dim)
        self.src_proj = nn.Linear(hidden_dim, hidden_dim, bias=False)
        self.edge_proj = nn.Linear(edge_dim, hidden_dim, bias=False)
        self.geometry_proj = zero_linear(geometry_dim, hidden_dim) if geometry_dim else None
        self.message_out = nn.Linear(hidden_dim, hidden_dim)
        self.update = mlp(2 * hidden_dim, hidden_dim, hidden_dim)
        self.dropout = nn.Dropout(dropout)

    def forward(
        self,
        h: Tensor,
        edge_features: Tensor,
        edge_index: Tensor,
        edge_geometry: Tensor | None = None,
    ) -> Tensor:
        src, dst = edge_index
        x = self.norm(h)
        pre = (
            self.dst_proj(x).index_select(0, dst)
            + self.src_proj(x).index_select(0, src)
            + self.edge_proj(edge_features)
        )
        if self.geometry_proj is not None:
            pre = pre + self.geometry_proj(edge_geometry.to(pre.dtype))
        aggregated = self.message_out(mean_over_index(F.silu(pre), dst, h.shape[0]))
        return h + self.dropout(self.update(torch.cat([x, aggregated], dim=-1)))


class Denoiser(nn.Module):
    """Predicts the clean crystal (or its noise) from a noisy asymmetric unit (or full cell)."""

    HEADS = ("coord_head", "element_head", "lattice_head", "site_symmetry_head")  # not in encode

    def __init__(self, config: DenoiserConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or DenoiserConfig()
        h = config.hidden_dim
        self.element_embedding = nn.Embedding(config.num_elements, h)
        if config.use_site_symmetry:
            self.site_embedding = nn.Embedding(config.num_site_classes, config.time_dim)
            self.site_mix = nn.Linear(config.num_directions * config.time_dim, h)
        self.time_mlp = mlp(config.time_dim, h, h)
        self.spacegroup_mlp = mlp(config.sg_encoding_dim, h, h)
        self.lattice_mlp = mlp(6, h, h)
        self.graph_mix = nn.Linear(3 * h, h)
        if config.properties:
            if len(config.property_ranges) != len(config.properties):
                raise InputError(
                    f"denoiser: properties {list(config.properties)} need one (low, high) range "
                    f"each in property_ranges, got {list(config.property_ranges)}"
                )
            self.conditioning = PropertyConditioning(list(config.property_ranges), h)
        edge_dim = 6 * config.num_frequencies
        self.position_proj = nn.Linear(edge_dim, h)
        geometry_dim = 0
        if config.geometric_features:
            self.geometry = OrbitGeometry()
            self.node_geometry_proj = zero_linear(NODE_GEOMETRY_DIM, h)
            geometry_dim = EDGE_GEOMETRY_DIM
        self.layers = nn.ModuleList(
            MessagePassingLayer(h, edge_dim, config.dropout, geometry_dim)
            for _ in range(config.num_layers)
        )
        self.final_norm = nn.LayerNorm(h)
        self.coord_head = mlp(h, h, 3)
        self.element_head = mlp(h, h, config.num_elements)
        self.lattice_head = mlp(2 * h, h, 6)
        if config.use_site_symmetry:
            num_outputs = config.num_directions * config.num_site_classes
            self.site_symmetry_head = mlp(h, h, num_outputs)

    def encode(self, crystals: NoisyCrystals, time: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Node states ``(N, h)``, their mean per crystal ``(B, h)`` and the crystal-level
        embedding of time, space group, lattice and conditioning ``(B, h)``: what the heads
        read. ``time`` (B,) in [0, 1]."""
        cfg = self.config
        if cfg.use_site_symmetry and crystals.site_symmetry is None:
            raise InputError("denoiser: site_symmetry is required when use_site_symmetry=True")
        if cfg.geometric_features and (crystals.spacegroup is None or crystals.lattice is None):
            raise InputError("denoiser: spacegroup and lattice are required with geometry")
        k_t, frac_coords_t, node_batch = crystals.k, crystals.frac_coords, crystals.node_batch
        edge_index = crystals.edge_index
        num_graphs = k_t.shape[0]
        graph = torch.cat(
            [
                self.time_mlp(sinusoidal_embedding(time, cfg.time_dim).to(k_t.dtype)),
                self.spacegroup_mlp(crystals.sg_encoding.to(k_t.dtype)),
                self.lattice_mlp(k_t),
            ],
            dim=-1,
        )
        graph = self.graph_mix(graph)  # (B, h)
        if cfg.properties:
            graph = graph + self.conditioning(crystals.properties, num_graphs, graph.dtype)
        h = (
            self.element_embedding(crystals.atom_types)
            + self.position_proj(periodic_fourier_features(frac_coords_t, cfg.num_frequencies))
            + graph.index_select(0, node_batch)
        )
        if cfg.use_site_symmetry:
            site = self.site_embedding(crystals.site_symmetry).flatten(1)  # (N, 15 * time_dim)
            h = h + self.site_mix(site)

        edge_geometry = None
        if cfg.geometric_features:
            edge_geometry, node_geometry = self.geometry(
                frac_coords_t, crystals.lattice, crystals.spacegroup, node_batch, edge_index
            )
            h = h + self.node_geometry_proj(node_geometry.to(h.dtype))

        src, dst = edge_index
        dx = frac_coords_t.index_select(0, src) - frac_coords_t.index_select(0, dst)
        dx = dx - torch.round(dx)  # periodic difference in [-0.5, 0.5]
        edge_features = periodic_fourier_features(dx, cfg.num_frequencies)
        for layer in self.layers:
            h = layer(h, edge_features, edge_index, edge_geometry)
        h = self.final_norm(h)

        pooled = mean_over_index(h, node_batch, num_graphs)
        return h, pooled, graph

    def forward(self, crystals: NoisyCrystals, time: Tensor) -> DenoiserOutput:
        """The denoising targets of a batch of noisy crystals at diffusion time ``time``."""
        cfg = self.config
        h, pooled, graph = self.encode(crystals, time)
        site_logits = None
        if cfg.use_site_symmetry:
            site_logits = self.site_symmetry_head(h).view(
                -1, cfg.num_directions, cfg.num_site_classes
            )
        return DenoiserOutput(
            coord_score=self.coord_head(h),
            k_eps=self.lattice_head(torch.cat([pooled, graph], dim=-1)),
            element_logits=self.element_head(h),
            site_symmetry_logits=site_logits,
        )
