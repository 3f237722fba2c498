"""Sampling: symmetric crystals on demand, by space group and by composition."""

from symmcd.sampling.sampler import sample, sample_to_dir
from symmcd.sampling.writers import SampledCrystal

__all__ = ["SampledCrystal", "sample", "sample_to_dir"]
