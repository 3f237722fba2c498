"""Noise processes: DDPM on the lattice, wrapped normal on coordinates, D3PM on classes."""

from symmcd.diffusion.coords import WrappedNormalDiffusion
from symmcd.diffusion.discrete import MarginalD3PM
from symmcd.diffusion.joint import DiffusionConfig, DiffusionState, JointDiffusion
from symmcd.diffusion.lattice import LatticeDDPM

__all__ = [
    "DiffusionConfig",
    "DiffusionState",
    "JointDiffusion",
    "LatticeDDPM",
    "MarginalD3PM",
    "WrappedNormalDiffusion",
]
