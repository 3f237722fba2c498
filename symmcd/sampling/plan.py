"""What each crystal of a sampling run will be: its space group, its number of orbits and, for a
formula, its Wyckoff template (one position and one element per orbit).

All draws use one numpy Generator seeded by the user's seed, so plans are reproducible.
- Space group: the training distribution (restricted to the user's groups and renormalised;
  uniform over them when the model never saw any of them).
- Without a formula: the number of orbits from that group's training histogram (pooled over all
  groups when the group has no data), at least 1.
- With a formula: only groups with at least one template are eligible; the template is drawn
  with weights proportional to how often the group had that many orbits in training, times the
  geometric mean of its positions' likelihood under the group's site-symmetry marginals.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pymatgen.core import Element

from symmcd.data.statistics import DatasetStatistics
from symmcd.errors import InputError
from symmcd.sampling import conditions
from symmcd.symmetry import tables


@dataclass(frozen=True)
class CrystalPlan:
    """One crystal to sample; `wyckoff_indices` / `atom_types` (Z - 1) are set for templates."""

    spacegroup: int
    num_orbits: int
    wyckoff_indices: tuple[int, ...] | None = None  # global Wyckoff indices, one per orbit
    atom_types: tuple[int, ...] | None = None


def plan_free(
    n: int,
    statistics: DatasetStatistics,
    spacegroups: Sequence[int] | None,
    rng: np.random.Generator,
) -> list[CrystalPlan]:
    """n plans with space group and orbit count drawn from the training statistics."""
    weights = conditions.spacegroup_weights(statistics.spacegroup_distribution(), spacegroups)
    drawn = rng.choice(np.arange(1, 231), size=n, p=weights)
    plans = []
    for spacegroup in drawn:
        sizes = statistics.num_orbits_distribution(int(spacegroup)).copy()
        sizes[0] = 0.0
        if sizes.sum() <= 0:
            sizes[1] = 1.0
        num_orbits = int(rng.choice(len(sizes), p=sizes / sizes.sum()))
        plans.append(CrystalPlan(int(spacegroup), num_orbits))
    return plans


def plan_formula(
    n: int,
    statistics: DatasetStatistics,
    counts: dict[str, int],
    spacegroups: Sequence[int] | None,
    rng: np.random.Generator,
) -> list[CrystalPlan]:
    """n plans whose templates hold the formula exactly (InputError when none can)."""
    candidates = spacegroups if spacegroups is not None else conditions.all_spacegroups()
    limits = (statistics.max_atoms, statistics.max_orbits)
    feasible = sorted(conditions.formula_templates(counts, candidates, *limits, max_templates=1))
    if not feasible:
        raise InputError(conditions.no_template_message(counts, spacegroups, statistics.max_atoms))
    weights = conditions.spacegroup_weights(statistics.spacegroup_distribution(), feasible)
    drawn = rng.choice(np.arange(1, 231), size=n, p=weights)
    found = conditions.formula_templates(counts, sorted(set(drawn.tolist())), *limits)
    site_marginals = statistics.site_symmetry_marginals()
    weights_by_group = {
        group: conditions.template_weights(
            templates,
            statistics.num_orbits_distribution(group),
            conditions.position_log_probabilities(site_marginals[group - 1], group_classes(group)),
        )
        for group, templates in found.items()
    }
    plans = []
    for spacegroup in drawn:
        templates, weights = found[int(spacegroup)], weights_by_group[int(spacegroup)]
        template = templates[int(rng.choice(len(templates), p=weights))]
        plans.append(template_plan(template))
    return plans


def group_classes(spacegroup: int) -> np.ndarray:
    """(num positions, 15) site-symmetry classes of a group's Wyckoff positions, local order."""
    first, last = tables.SG_FIRST_WYCKOFF[spacegroup - 1], tables.SG_FIRST_WYCKOFF[spacegroup]
    return tables.WP_SITE_SYMMETRY[first:last]


def template_plan(template: conditions.WyckoffTemplate) -> CrystalPlan:
    first = int(tables.SG_FIRST_WYCKOFF[template.spacegroup - 1])
    return CrystalPlan(
        spacegroup=template.spacegroup,
        num_orbits=template.num_orbits,
        wyckoff_indices=tuple(first + index for index in template.wyckoff_indices),
        atom_types=tuple(Element(symbol).Z - 1 for symbol in template.elements),
    )


def check_formula_elements(counts: dict[str, int], element_marginals: np.ndarray) -> None:
    """A formula may only use elements the model saw in training."""
    conditions.element_allowed_mask(tuple(counts), element_marginals, name="formula")
