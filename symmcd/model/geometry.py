"""What collides: radial features of the replicated atoms of each orbit, for the denoiser.

The denoiser works on one representative per orbit, but a crystal is valid only if the *images*
of those representatives under the space group stay apart. Two orbits on one Wyckoff position
placed at (nearly) one point, or an orbit close to a more special position, look harmless in the
representatives' fractional coordinates and collapse once replicated. These features let the
network see it:

- per edge ``(src -> dst)``: the Cartesian distances, under the current lattice, from ``dst``'s
  representative to every image ``g(x_src)`` of ``src``'s representative (``g`` over all
  operations of the space group, centring included);
- per node: the same from a representative to its own images, the identity left out.

Each set of distances becomes a Gaussian expansion of its minimum and a soft histogram of image
counts (how many images sit near), plus, per edge, the unit vector to the nearest image weighted
by a Gaussian of its length. Differences are wrapped into ``[-0.5, 0.5)`` in fractional
coordinates before the lattice is applied: exact for every distance shorter than half the
shortest plane spacing, which covers every collision; longer distances may be overestimated.

The features are inputs, computed without gradient in float32 from the noisy state; the operation
table is built once from :mod:`symmcd.symmetry.tables`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from symmcd.symmetry.lattice import K_BASIS
from symmcd.symmetry.tables import GENERAL_OPS, SG_OP_OFFSET

MIN_DISTANCE_CENTRES = torch.linspace(0.0, 6.0, 16)  # Å, Gaussian expansion of the minimum
MIN_DISTANCE_WIDTH = 0.4
COUNT_CENTRES = torch.linspace(0.0, 3.5, 8)  # Å, soft histogram of image distances
COUNT_WIDTH = 0.25
DIRECTION_WIDTH = 1.5  # Å, envelope of the nearest-image direction
EDGE_GEOMETRY_DIM = len(MIN_DISTANCE_CENTRES) + len(COUNT_CENTRES) + 3
NODE_GEOMETRY_DIM = len(MIN_DISTANCE_CENTRES) + len(COUNT_CENTRES)


def k_to_lattices_torch(k: Tensor) -> Tensor:
    """Symmetric lattice matrices ``expm(sum_i k_i B_i)`` (B, 3, 3) of raw k-vectors (B, 6).

    The torch twin of :func:`symmcd.symmetry.lattice.k_to_lattices` (a test keeps them equal).
    """
    basis = torch.as_tensor(K_BASIS, dtype=torch.float32, device=k.device)
    return torch.linalg.matrix_exp(torch.einsum("bk,kij->bij", k.float(), basis))


def gaussian_expansion(values: Tensor, centres: Tensor, width: float) -> Tensor:
    """``exp(-(v - c)^2 / 2 w^2)`` for every centre: (...,) -> (..., len(centres))."""
    centres = centres.to(values.device)
    return torch.exp(-0.5 * ((values[..., None] - centres) / width) ** 2)


class ImageDistances(NamedTuple):
    """Distances to replicated atoms, flat over (pair, operation): entry ``r`` belongs to edge
    ``edge_row[r]`` (or node ``node_row[r]``); only the group's own operations appear."""

    edge_row: Tensor  # (P,)
    edge_dist: Tensor  # (P,) from dst to g(x_src), Å
    edge_vec: Tensor  # (P, 3) the Cartesian vectors behind them
    node_row: Tensor  # (Q,)
    node_dist: Tensor  # (Q,) from a node to its own images, identity excluded


def segment_min(values: Tensor, index: Tensor, size: int) -> Tensor:
    """Minimum of ``values`` per ``index`` group (``inf`` for empty groups)."""
    out = values.new_full((size,), float("inf"))
    return out.scatter_reduce(0, index, values, reduce="amin", include_self=True)


class OrbitGeometry(torch.nn.Module):
    """Computes the edge (E, ``EDGE_GEOMETRY_DIM``) and node (N, ``NODE_GEOMETRY_DIM``) features.

    Holds the operation table of all 230 groups as non-persistent buffers, so it follows
    ``.to(device)`` without entering checkpoints. Work is flat over (pair, operation of the
    pair's group): a triclinic pair costs one or two operations, not the 192 of Fm-3m.
    """

    def __init__(self) -> None:
        super().__init__()
        ops = torch.from_numpy(GENERAL_OPS.astype(np.float32))
        self.register_buffer("rotations", ops[..., :3].contiguous(), persistent=False)
        self.register_buffer("translations", ops[..., 3].contiguous(), persistent=False)
        offsets = torch.from_numpy(SG_OP_OFFSET.astype(np.int64))
        self.register_buffer("op_offset", offsets[:-1].contiguous(), persistent=False)
        self.register_buffer("op_count", (offsets[1:] - offsets[:-1]), persistent=False)

    def _operations(self, group_of_row: Tensor, skip_identity: bool) -> tuple[Tensor, Tensor]:
        """Flat (row, global operation index) pairs over every operation of each row's group."""
        counts = self.op_count[group_of_row] - int(skip_identity)
        rows = torch.repeat_interleave(torch.arange(len(counts), device=counts.device), counts)
        starts = torch.cumsum(counts, 0) - counts
        local = torch.arange(len(rows), device=rows.device) - starts[rows] + int(skip_identity)
        return rows, self.op_offset[group_of_row][rows] + local

    def image_distances(
        self,
        frac_coords: Tensor,
        lattice: Tensor,
        spacegroup: Tensor,
        node_batch: Tensor,
        edge_index: Tensor,
    ) -> ImageDistances:
        """Distances from each representative to the images of its neighbours and its own
        (differentiable in ``frac_coords``, which the sampler's repulsion uses)."""
        x = frac_coords.float()
        lattice = lattice.float()
        group = spacegroup.long() - 1  # (B,)
        src, dst = edge_index
        edge_graph = node_batch.index_select(0, dst)
        edge_row, op = self._operations(group[edge_graph], skip_identity=False)
        image = torch.einsum("pij,pj->pi", self.rotations[op], x[src[edge_row]])
        diff = image + self.translations[op] - x[dst[edge_row]]
        edge_vec, edge_dist = self._cartesian(diff, lattice[edge_graph[edge_row]])

        node_row, op = self._operations(group[node_batch], skip_identity=True)
        node_x = x[node_row]
        image = torch.einsum("pij,pj->pi", self.rotations[op], node_x)
        diff = image + self.translations[op] - node_x
        _, node_dist = self._cartesian(diff, lattice[node_batch[node_row]])
        return ImageDistances(edge_row, edge_dist, edge_vec, node_row, node_dist)

    @torch.no_grad()
    def forward(
        self,
        frac_coords: Tensor,
        lattice: Tensor,
        spacegroup: Tensor,
        node_batch: Tensor,
        edge_index: Tensor,
    ) -> tuple[Tensor, Tensor]:
        """``frac_coords`` (N, 3), ``lattice`` (B, 3, 3) rows = vectors, ``spacegroup`` (B,)."""
        with torch.autocast(device_type=frac_coords.device.type, enabled=False):
            d = self.image_distances(frac_coords, lattice, spacegroup, node_batch, edge_index)
            num_edges, num_nodes = edge_index.shape[1], frac_coords.shape[0]
            edge_min = segment_min(d.edge_dist, d.edge_row, num_edges)
            # the vector to the nearest image: the first entry of each edge at its minimum
            entry = torch.arange(len(d.edge_row), device=d.edge_row.device)
            at_min = d.edge_dist <= edge_min[d.edge_row]
            first = torch.full((num_edges,), len(entry), device=entry.device, dtype=entry.dtype)
            first = first.scatter_reduce(0, d.edge_row[at_min], entry[at_min], reduce="amin")
            vec = d.edge_vec[first.clamp_max(max(len(entry) - 1, 0))] if num_edges else d.edge_vec
            envelope = torch.exp(-0.5 * (edge_min / DIRECTION_WIDTH) ** 2)
            direction = vec / edge_min.clamp_min(1e-6)[:, None] * envelope[:, None]
            edge_features = torch.cat(
                [self._radial(d.edge_dist, d.edge_row, edge_min), direction], dim=-1
            )
            node_min = segment_min(d.node_dist, d.node_row, num_nodes)
            node_features = self._radial(d.node_dist, d.node_row, node_min)
        return edge_features, node_features

    @staticmethod
    def _cartesian(diff: Tensor, lattice: Tensor) -> tuple[Tensor, Tensor]:
        """Wrapped fractional differences (P, 3) -> Cartesian vectors and their lengths."""
        diff = diff - torch.round(diff)
        vectors = torch.einsum("pj,pji->pi", diff, lattice)
        return vectors, vectors.norm(dim=-1)

    @staticmethod
    def _radial(distances: Tensor, rows: Tensor, nearest: Tensor) -> Tensor:
        """Flat distances and their per-row minimum -> (rows, min expansion + log soft counts).

        Rows without any image (a P1 node has no image but itself) get zeros."""
        nearest = torch.where(torch.isfinite(nearest), nearest, torch.full_like(nearest, 1e3))
        near = distances < float(COUNT_CENTRES[-1]) + 4 * COUNT_WIDTH  # the others add ~0
        counts = nearest.new_zeros(len(nearest), len(COUNT_CENTRES))
        counts.index_add_(
            0, rows[near], gaussian_expansion(distances[near], COUNT_CENTRES, COUNT_WIDTH)
        )
        return torch.cat(
            [
                gaussian_expansion(nearest, MIN_DISTANCE_CENTRES, MIN_DISTANCE_WIDTH),
                torch.log1p(counts),
            ],
            dim=-1,
        )
