"""A sampling-time push that moves apart orbits whose replicated atoms nearly coincide.

Most first-draw failures are two orbits on one Wyckoff position placed at (nearly) one point:
their images coincide once the orbits are replicated. In the last denoising steps, this module
takes gradient steps on the representatives' fractional coordinates against the energy

    E = sum over pairs of orbits (i, j), images g of sum relu(d_min - |x_i - g x_j|_L)^2,

distances in Å under the current lattice (``symmcd.model.geometry``), each step a natural
gradient step (the metric's inverse turns the fractional gradient into a Cartesian move), so a
pair closer than ``d_min`` moves apart by a fraction of its overlap. An orbit's own images are
left alone: near a special position they coincide by design. It is a heuristic on the sampler,
not part of the trained model: on by default at 1.0 Å (``SamplingConfig.repulsion``; 0 turns it
off, as in the published protocol).
"""

from __future__ import annotations

from dataclasses import replace

import torch

from symmcd.diffusion.joint import DiffusionState
from symmcd.model.geometry import OrbitGeometry, k_to_lattices_torch

STEP_SIZE = 0.1  # per step a colliding pair separates by ~0.8x its overlap (two edges each)
LAST_FRACTION = 0.1  # the repulsion acts in the last 10 % of the denoising steps


def repel_orbits(
    state: DiffusionState,
    k_raw: torch.Tensor,
    geometry: OrbitGeometry,
    min_distance: float,
    steps: int = 1,
) -> DiffusionState:
    """``state`` with its coordinates moved ``steps`` times down the overlap energy."""
    if min_distance <= 0 or state.edge_index.shape[1] == 0:
        return state
    lattice = k_to_lattices_torch(k_raw)
    inverse_metric = torch.linalg.inv(lattice @ lattice.transpose(1, 2))[state.node_batch]
    coords = state.frac_coords.detach().float()
    for _ in range(steps):
        with torch.enable_grad():
            x = coords.clone().requires_grad_(True)
            d = geometry.image_distances(
                x, lattice, state.spacegroup, state.node_batch, state.edge_index
            )
            energy = torch.relu(min_distance - d.edge_dist).pow(2).sum()
            if not bool(energy > 0):
                break
            (gradient,) = torch.autograd.grad(energy, x)
        step = torch.einsum("ni,nij->nj", gradient, inverse_metric)
        coords = torch.remainder(coords - STEP_SIZE * step, 1.0)
    return replace(state, frac_coords=coords.to(state.frac_coords.dtype))
