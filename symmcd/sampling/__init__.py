"""Sampling: symmetric crystals on demand, by space group and by composition.

    from symmcd.sampling import sample, sample_to_dir
    crystals = sample(100, spacegroups=[225, 194], seed=0)          # list[SampledCrystal]
    sample_to_dir("out", 1000, formula="LiFePO4", formats="cif,extxyz")

Space groups are drawn from the training distribution (restricted to the requested groups;
uniform among requested groups the model never saw), orbit counts from that group's training
histogram; `formula` enumerates Wyckoff templates and clamps elements and site symmetry.
Orbits sharing a fixed point are separated; close atoms are kept and flagged (`collapsed`).
"""

from symmcd.sampling.sampler import sample, sample_to_dir
from symmcd.sampling.writers import SampledCrystal

__all__ = ["SampledCrystal", "sample", "sample_to_dir"]
