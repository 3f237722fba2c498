"""Sampling: symmetric crystals on demand, by space group and by composition.

    from symmcd.sampling import sample, sample_to_dir
    crystals = sample(100, spacegroups=[225, 194], seed=0)          # list[SampledCrystal]
    sample_to_dir("out", 1000, formula="LiFePO4", formats="cif,extxyz")

Space groups are drawn from the training distribution (restricted to the requested groups;
uniform among requested groups the model never saw), orbit counts from that group's training
histogram; `formula` enumerates Wyckoff templates and clamps elements and site symmetry.
Orbits sharing a fixed point are separated; close atoms are kept and flagged (`collapsed`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from symmcd.sampling.runs import sample_to_dir
    from symmcd.sampling.sampler import sample
    from symmcd.sampling.writers import SampledCrystal

__all__ = ["SampledCrystal", "sample", "sample_to_dir"]


def __getattr__(name: str) -> Any:
    """Import the sampler (and torch) on first use, so that ``symmcd.sampling.config`` stays
    light to import (the CLI builds ``--help`` from it)."""
    if name == "sample":
        from symmcd.sampling.sampler import sample

        return sample
    if name == "sample_to_dir":
        from symmcd.sampling.runs import sample_to_dir

        return sample_to_dir
    if name == "SampledCrystal":
        from symmcd.sampling.writers import SampledCrystal

        return SampledCrystal
    raise AttributeError(f"module 'symmcd.sampling' has no attribute {name!r}")
