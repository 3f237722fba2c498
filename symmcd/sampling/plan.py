"""What each crystal of a sampling run will be: its space group, its number of orbits and, for a
formula, its Wyckoff template (one position and one element per orbit).

All draws use one numpy Generator seeded by the user's seed, so plans are reproducible.
- Space group: the training distribution (restricted to the user's groups and renormalised;
  uniform over them when the model never saw any of them).
- Without a formula: the number of orbits from that group's training histogram (pooled over all
  groups when the group has no data), at least 1.
- With property targets (a conditioned model): space group and orbit count together from the
  labelled training crystals, each weighted by a Gaussian kernel of its labels' distance from the
  targets (``plan_near_targets``), i.e. from p(group, size | property).
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
from symmcd.symmetry.templates import (
    FEASIBILITY_STEPS,
    WyckoffTemplate,
    formula_templates,
)


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
    """n plans whose templates hold the formula exactly (InputError when none can): a formula
    in lowest terms any whole number of times, one with a common factor (Li2O2) as the exact
    cell content (``symmetry.templates.formula_units``); never more atoms than the model's
    cells."""
    candidates = spacegroups if spacegroups is not None else conditions.all_spacegroups()
    limits = (statistics.max_atoms, statistics.max_orbits)
    conditions.check_formula_size(counts, *limits)
    feasible = sorted(
        formula_templates(counts, candidates, *limits, max_templates=1, max_steps=FEASIBILITY_STEPS)
    )
    if not feasible:
        raise InputError(conditions.no_template_message(counts, spacegroups, *limits))
    weights = conditions.spacegroup_weights(statistics.spacegroup_distribution(), feasible)
    drawn = rng.choice(np.arange(1, 231), size=n, p=weights)
    found = formula_templates(counts, sorted(set(drawn.tolist())), *limits)
    site_marginals = statistics.site_symmetry_marginals()
    weights_by_group = {
        group: template_weights(
            templates,
            statistics.num_orbits_distribution(group),
            position_log_probabilities(site_marginals[group - 1], group_classes(group)),
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


def template_plan(template: WyckoffTemplate) -> CrystalPlan:
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


KERNEL_FRACTION = 0.05  # kernel width per property, as a fraction of its label range


def plan_near_targets(
    n: int,
    label_table: dict,
    targets: np.ndarray,
    ranges: Sequence[Sequence[float]],
    spacegroups: Sequence[int] | None,
    rng: np.random.Generator,
) -> list[CrystalPlan] | None:
    """n plans copying the space group and orbit count of labelled training crystals drawn with
    weights ``prod_p exp(-(y_p - target_p)^2 / 2 h_p^2)`` over the targeted properties ``p``
    (``targets`` (P,), NaN = not targeted; ``h_p`` = ``KERNEL_FRACTION`` of the label range).
    None when no labelled crystal of the allowed groups carries the targeted labels."""
    values = np.array(
        [[np.nan if v is None else v for v in row] for row in label_table["values"]], dtype=float
    )
    groups = np.asarray(label_table["spacegroup"], dtype=int)
    sizes = np.asarray(label_table["num_orbits"], dtype=int)
    log_weight = np.zeros(len(groups))
    for column, target in enumerate(np.asarray(targets, dtype=float)):
        if np.isnan(target):
            continue
        low, high = ranges[column]
        width = KERNEL_FRACTION * (high - low)
        distance = (values[:, column] - target) / width
        log_weight += np.where(np.isfinite(distance), -0.5 * distance**2, -np.inf)
    if spacegroups is not None:
        log_weight[~np.isin(groups, list(spacegroups))] = -np.inf
    if not np.isfinite(log_weight).any():
        return None
    weights = np.exp(log_weight - log_weight.max())
    chosen = rng.choice(len(groups), size=n, p=weights / weights.sum())
    return [CrystalPlan(int(groups[i]), max(1, int(sizes[i]))) for i in chosen]


def template_weights(
    templates: Sequence[WyckoffTemplate],
    orbit_distribution: np.ndarray | None,
    position_log_prob: np.ndarray | None = None,
) -> np.ndarray:
    """Probabilities over a group's templates.

    Proportional to how often the training data had that many orbits in the group (uniform
    where the data says nothing), times the geometric mean over the template's orbits of
    exp(position_log_prob[position]) when given: templates made of positions the data uses
    often (e.g. general positions rather than only fixed points) are drawn more often.
    """
    sizes = np.array([template.num_orbits for template in templates])
    weights = np.ones(len(templates))
    if orbit_distribution is not None:
        dist = np.asarray(orbit_distribution, dtype=np.float64).reshape(-1)
        looked_up = np.where(sizes < dist.size, dist[np.minimum(sizes, dist.size - 1)], 0.0)
        if looked_up.sum() > 0:
            weights = looked_up
    if position_log_prob is not None:
        mean_log = np.array(
            [np.mean(position_log_prob[list(t.wyckoff_indices)]) for t in templates]
        )
        weights = weights * np.exp(mean_log - mean_log.max())
    return weights / weights.sum()


def position_log_probabilities(site_marginals: np.ndarray, site_classes: np.ndarray) -> np.ndarray:
    """Log-probability of each Wyckoff position of a group under the group's per-direction
    site-symmetry marginals (15, 13), directions taken as independent: (num positions,)."""
    probabilities = site_marginals[np.arange(site_classes.shape[1]), site_classes]
    return np.log(np.maximum(probabilities, 1e-12)).sum(axis=1)
