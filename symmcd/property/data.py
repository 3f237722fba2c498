"""The dataset of labelled crystals (labels come from :mod:`symmcd.data.labels`)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from symmcd.data.dataset import AsymmetricUnitDataset
from symmcd.data.labels import load_labels  # noqa: F401 - re-exported
from symmcd.errors import InputError


class PropertyDataset(AsymmetricUnitDataset):
    """The labelled crystals of a prepared split; ``target_of`` maps an id to its label.

    ``representation="full_cell"`` with ``site_symmetry=True`` gives every atom the site symmetry
    of its orbit (the cache stores atoms orbit by orbit, checked here); without site symmetry
    every node carries class 1 (as the full-cell baseline of the generator does).
    """

    def __init__(
        self,
        cache_path: Path | str,
        labels: dict[str, float] | None,
        representation: str = "asymmetric_unit",
        site_symmetry: bool = True,
    ):
        super().__init__(cache_path, representation)
        if representation == "full_cell" and site_symmetry:
            self._nodes["site_symmetry"] = torch.from_numpy(self._atom_site_symmetry())
        ids = [str(i) for i in self.cache.ids]
        if labels is None:  # prediction: every crystal, no target
            self.indices = np.arange(len(ids))
            self.targets = np.full(len(ids), math.nan)
        else:
            self.indices = np.array([i for i, key in enumerate(ids) if key in labels], dtype=int)
            self.targets = np.array([labels[ids[i]] for i in self.indices], dtype=np.float64)
        if len(self.indices) == 0:
            what = "readable crystal" if labels is None else "crystal with a label"
            raise InputError(f"{cache_path}: no {what}")
        self.target_of = {ids[i]: float(t) for i, t in zip(self.indices, self.targets, strict=True)}

    def _atom_site_symmetry(self) -> np.ndarray:
        cache = self.cache
        owner_site = np.repeat(cache.orbit_site_symmetry, cache.orbit_multiplicity, axis=0)
        owner_element = np.repeat(cache.orbit_element, cache.orbit_multiplicity)
        if len(owner_element) != len(cache.atom_element) or np.any(
            owner_element != cache.atom_element
        ):
            raise InputError(f"{self.cache_path}: atoms are not stored orbit by orbit")
        return owner_site.astype(np.int64)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> dict:
        return super().__getitem__(int(self.indices[index]))
