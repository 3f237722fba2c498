"""The batch type shared by the data pipeline, the denoiser and the sampler.

A batch holds ``B`` crystals with ``N`` nodes in total. In the asymmetric-unit representation a
node is one crystallographic orbit (one Wyckoff site); in the full-cell representation a node is
one atom of the conventional cell. Nodes of crystal ``b`` are contiguous and ``node_batch`` maps
each node to its crystal.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
from torch import Tensor


@dataclass
class CrystalBatch:
    """A padded-free batch of crystals; every field is a torch tensor (see DESIGN.md)."""

    spacegroup: Tensor  # (B,) long, 1..230
    sg_encoding: Tensor  # (B, 397) float
    k: Tensor  # (B, 6) float
    k_mask: Tensor  # (B, 6) bool, True = free entry
    num_nodes: Tensor  # (B,) long
    node_batch: Tensor  # (N,) long
    frac_coords: Tensor  # (N, 3) float in [0, 1)
    atom_types: Tensor  # (N,) long, Z - 1
    site_symmetry: Tensor  # (N, 15) long, classes 0..12
    multiplicity: Tensor  # (N,) long
    edge_index: Tensor  # (2, E) long
    properties: Tensor | None = None  # (B, P) float conditioning labels, NaN = unknown
    ids: list[str] | None = None

    @property
    def num_graphs(self) -> int:
        """Number of crystals in the batch."""
        return int(self.spacegroup.shape[0])

    def to(self, device: torch.device | str) -> CrystalBatch:
        """Return a copy with every tensor moved to ``device`` (ids are kept)."""
        moved = {
            f.name: getattr(self, f.name).to(device)
            for f in fields(self)
            if isinstance(getattr(self, f.name), Tensor)
        }
        return CrystalBatch(**moved, ids=self.ids)


def node_batch_index(num_nodes: Tensor) -> Tensor:
    """Crystal index of every node, ``(N,)``, for contiguous node blocks of sizes ``num_nodes``."""
    num_nodes = num_nodes.long()
    return torch.repeat_interleave(torch.arange(len(num_nodes), device=num_nodes.device), num_nodes)


def fully_connected_edges(num_nodes: Tensor) -> Tensor:
    """All ordered pairs ``(i, j)``, ``i != j``, of nodes within the same crystal, ``(2, E)``.

    Vectorised: crystal ``b`` with ``n`` nodes owns ``n * n`` consecutive pair slots; slot ``p``
    of that block is the pair ``(p // n, p % n)`` in local numbering. The diagonal is dropped,
    so a crystal with one node contributes no edge.
    """
    num_nodes = num_nodes.long()
    pairs_per_crystal = num_nodes * num_nodes
    num_pairs = int(pairs_per_crystal.sum())
    node_offset = torch.cumsum(num_nodes, 0) - num_nodes
    pair_offset = torch.cumsum(pairs_per_crystal, 0) - pairs_per_crystal
    n = torch.repeat_interleave(num_nodes, pairs_per_crystal, output_size=num_pairs)
    local_pair = torch.arange(num_pairs, device=num_nodes.device) - torch.repeat_interleave(
        pair_offset, pairs_per_crystal, output_size=num_pairs
    )
    src_local = torch.div(local_pair, n, rounding_mode="floor")
    dst_local = local_pair - src_local * n
    keep = src_local != dst_local
    base = torch.repeat_interleave(node_offset, pairs_per_crystal, output_size=num_pairs)
    return torch.stack([(base + src_local)[keep], (base + dst_local)[keep]])
