"""Uniqueness and novelty with pymatgen's StructureMatcher (default tolerances).

Comparisons are bucketed by reduced formula: two structures can only match when their reduced
formulas agree, so each sample is compared only with same-formula crystals.

* unique: a sample is unique when it matches no *earlier* sample (the first of each group of
  duplicates counts, so ``unique`` = number of distinct structures / number of samples);
* novel: a sample is novel when it matches no training crystal.
Unreadable samples are neither unique nor novel.
"""

from __future__ import annotations

import warnings
from collections import defaultdict

import numpy as np
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Structure
from tqdm import tqdm


def _matcher() -> StructureMatcher:
    return StructureMatcher()


def _fits(matcher: StructureMatcher, a: Structure, b: Structure) -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return bool(matcher.fit(a, b))
    except Exception:  # noqa: BLE001 - a failed comparison is not a match
        return False


def group_by_formula(formulas: list[str]) -> dict[str, list[int]]:
    """Indices of entries per reduced formula (empty formulas skipped)."""
    groups: dict[str, list[int]] = defaultdict(list)
    for index, formula in enumerate(formulas):
        if formula:
            groups[formula].append(index)
    return dict(groups)


def unique_mask(structures: list[Structure | None], formulas: list[str]) -> np.ndarray:
    """True for each sample matching no earlier sample (first representative of its class)."""
    matcher = _matcher()
    mask = np.zeros(len(structures), dtype=bool)
    for indices in group_by_formula(formulas).values():
        representatives: list[Structure] = []
        for index in indices:
            structure = structures[index]
            if structure is None:
                continue
            if not any(_fits(matcher, structure, other) for other in representatives):
                representatives.append(structure)
                mask[index] = True
    return mask


def novel_mask(
    structures: list[Structure | None],
    formulas: list[str],
    train_structures: list[Structure | None],
    train_formulas: list[str],
    progress: bool = False,
) -> np.ndarray:
    """True for each sample matching no training crystal of the same reduced formula."""
    matcher = _matcher()
    train_groups = group_by_formula(train_formulas)
    mask = np.zeros(len(structures), dtype=bool)
    for index in tqdm(range(len(structures)), desc="novelty", disable=not progress):
        structure = structures[index]
        if structure is None:
            continue
        candidates = (train_structures[i] for i in train_groups.get(formulas[index], []))
        mask[index] = not any(_fits(matcher, structure, c) for c in candidates if c is not None)
    return mask
