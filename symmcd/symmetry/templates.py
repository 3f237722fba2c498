"""Wyckoff templates of a composition: pure crystallography, no sampling.

A *template* is a choice of Wyckoff positions of one space group whose multiplicities add up to
a formula's element counts times z, with every orbit assigned one element. Formula sampling
(``symmcd.sampling.plan``) draws from them; ``symmcd.sampling.conditions`` parses the formula.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

MAX_TEMPLATES_PER_GROUP = 1000
MAX_SEARCH_STEPS = 200_000  # partial templates visited per group (over all z)
# the same for a feasibility test (one template per group) over all 230 groups: realistic
# formulas find theirs within ~1,000 steps; contrived ones (Li7Na7K7Rb7O5) stay under a second
FEASIBILITY_STEPS = 50_000


def reduced_counts(counts: dict[str, int]) -> dict[str, int]:
    """The counts divided by their greatest common divisor (Li2O2 -> LiO)."""
    divisor = int(functools.reduce(np.gcd, counts.values()))
    return {symbol: count // divisor for symbol, count in counts.items()}


def is_exact_cell(counts: dict[str, int]) -> bool:
    """Whether a formula names a whole cell: its counts share a factor (Li2O2, Li100O100).
    Such a formula is the exact content of the cell; one in lowest terms (LiFePO4) is a
    composition that a cell may hold any whole number of times."""
    return reduced_counts(counts) != counts


def formula_units(counts: dict[str, int], max_atoms: int) -> range:
    """The multiples z of `counts` a cell of at most `max_atoms` atoms may hold: 1..max for a
    formula in lowest terms, only 1 for an exact cell (:func:`is_exact_cell`)."""
    per_formula = sum(counts.values())
    if per_formula <= 0:
        return range(0)
    if is_exact_cell(counts):
        return range(1, 2) if per_formula <= max_atoms else range(0)
    return range(1, max_atoms // per_formula + 1)


@dataclass(frozen=True)
class WyckoffTemplate:
    """One asymmetric-unit layout: a Wyckoff position (index within the group) per orbit + its
    element. Orbits are sorted by element then position index."""

    spacegroup: int
    wyckoff_indices: tuple[int, ...]
    elements: tuple[str, ...]
    z: int

    @property
    def num_orbits(self) -> int:
        return len(self.wyckoff_indices)


@dataclass(frozen=True)
class PositionSlot:
    """What template enumeration needs of a Wyckoff position: multiplicity and whether it is a
    fixed point (dof 0, so at most one orbit can sit on it)."""

    index: int
    multiplicity: int
    fixed: bool


def enumerate_templates(
    spacegroup: int,
    slots: Sequence[PositionSlot],
    counts: dict[str, int],
    max_atoms: int,
    max_orbits: int,
    max_templates: int = MAX_TEMPLATES_PER_GROUP,
    max_steps: int = MAX_SEARCH_STEPS,
) -> list[WyckoffTemplate]:
    """Wyckoff templates of a group holding `counts` times z atoms (z in :func:`formula_units`).

    A template uses at most `max_orbits` orbits and each fixed position at most once.
    Enumeration stops after `max_templates` templates (a depth-first order that visits general
    positions first) or `max_steps` partial templates visited over all z, whichever comes first;
    branches that cannot be completed (an element count that the remaining positions cannot
    make within the orbits left) are pruned before they are visited.
    """
    symbols = list(counts)
    ordered = sorted(slots, key=lambda slot: slot.index)
    found: list[WyckoffTemplate] = []
    budget = _Budget(max_steps)
    for z in formula_units(counts, max_atoms):
        targets = [counts[symbol] * z for symbol in symbols]
        choices = _fill_elements(ordered, targets, max_orbits, max_templates - len(found), budget)
        for choice in choices:
            indices, elements = [], []
            for symbol, positions in zip(symbols, choice, strict=True):
                indices.extend(positions)
                elements.extend([symbol] * len(positions))
            found.append(WyckoffTemplate(spacegroup, tuple(indices), tuple(elements), z))
        if len(found) >= max_templates or budget.spent:
            break
    return found


class _Budget:
    """A count of partial templates visited; `spent` once `limit` is reached."""

    def __init__(self, limit: int) -> None:
        self.limit, self.used = int(limit), 0

    @property
    def spent(self) -> bool:
        return self.used >= self.limit

    def take(self) -> bool:
        """Count one visit; False (visit refused) once the budget is spent."""
        self.used += 1
        return self.used <= self.limit


_UNREACHABLE = 1 << 30


def _fewest_orbits(slots: Sequence[PositionSlot], max_target: int) -> list[list[int]]:
    """fewest[start][t]: the fewest orbits on slots[start:] whose multiplicities sum to t (each
    fixed slot at most once), _UNREACHABLE if none; a dynamic programme over (start, t)."""
    fewest = [[_UNREACHABLE] * (max_target + 1) for _ in range(len(slots) + 1)]
    fewest[len(slots)][0] = 0
    for start in range(len(slots) - 1, -1, -1):
        row, below, m = fewest[start], fewest[start + 1], slots[start].multiplicity
        for t in range(max_target + 1):
            best = below[t]
            if m <= t:
                best = min(best, 1 + (below if slots[start].fixed else row)[t - m])
            row[t] = best
    return fewest


def _fill_elements(
    slots: Sequence[PositionSlot],
    targets: Sequence[int],
    max_orbits: int,
    limit: int,
    budget: _Budget | None = None,
) -> Iterator[tuple[tuple[int, ...], ...]]:
    """Yield per element a multiset of position indices whose multiplicities sum to its target.

    At most `limit` choices are yielded. Each element is given only the orbits that the later
    elements can spare (their fewest possible orbits reserved), and a branch whose remaining
    count the remaining positions cannot make within its orbits is cut (:func:`_fewest_orbits`,
    which ignores the fixed positions used by earlier elements, so it never cuts a template);
    a state (element, fixed positions used, orbits left) once found to lead nowhere is not
    searched again; `budget` bounds the partial choices visited.
    """
    budget = budget if budget is not None else _Budget(MAX_SEARCH_STEPS)
    if limit <= 0 or not targets:
        return
    fewest = _fewest_orbits(slots, max(targets))
    # reserve[e]: the fewest orbits elements e, e+1, ... need
    reserve = [0] * (len(targets) + 1)
    for element in range(len(targets) - 1, -1, -1):
        reserve[element] = reserve[element + 1] + fewest[0][targets[element]]
    if reserve[0] > max_orbits:
        return
    fixed_slots = {slot.index for slot in slots if slot.fixed}

    def multisets(
        target: int, used_fixed: frozenset[int], orbits_left: int, start: int
    ) -> Iterator[tuple[int, ...]]:
        if target == 0:
            yield ()
            return
        if fewest[start][target] > orbits_left or not budget.take():
            return
        for offset in range(start, len(slots)):
            slot = slots[offset]
            if slot.multiplicity > target or (slot.fixed and slot.index in used_fixed):
                continue
            next_start = offset + 1 if slot.fixed else offset
            for rest in multisets(
                target - slot.multiplicity, used_fixed, orbits_left - 1, next_start
            ):
                yield (slot.index, *rest)

    dead_ends: set[tuple[int, frozenset[int], int]] = set()  # states known to yield nothing

    def fill(element: int, used_fixed: frozenset[int], orbits_left: int) -> Iterator[tuple]:
        if element == len(targets):
            yield ()
            return
        state = (element, used_fixed, orbits_left)
        if state in dead_ends:
            return
        spare = orbits_left - reserve[element + 1]
        found = False
        for positions in multisets(targets[element], used_fixed, spare, 0):
            if budget.spent:
                return
            fixed_here = frozenset(i for i in positions if i in fixed_slots)
            for rest in fill(element + 1, used_fixed | fixed_here, orbits_left - len(positions)):
                found = True
                yield (positions, *rest)
        if not found and not budget.spent:
            dead_ends.add(state)

    for produced, choice in enumerate(fill(0, frozenset(), max_orbits)):
        yield choice
        if produced + 1 >= limit:
            return


def group_slots(spacegroup: int) -> tuple[PositionSlot, ...]:
    """The Wyckoff positions of a group as template-enumeration slots (from symmcd.symmetry)."""
    from symmcd.symmetry.tables import space_group

    return tuple(
        PositionSlot(index, int(wp.multiplicity), int(wp.dof) == 0)
        for index, wp in enumerate(space_group(spacegroup).wyckoff_positions)
    )


@functools.lru_cache(maxsize=4096)
def _cached_templates(
    spacegroup: int,
    counts: tuple[tuple[str, int], ...],
    max_atoms: int,
    max_orbits: int,
    max_templates: int,
    max_steps: int,
) -> tuple[WyckoffTemplate, ...]:
    slots = group_slots(spacegroup)
    found = enumerate_templates(
        spacegroup, slots, dict(counts), max_atoms, max_orbits, max_templates, max_steps
    )
    return tuple(found)


def formula_templates(
    counts: dict[str, int],
    spacegroups: Iterable[int],
    max_atoms: int,
    max_orbits: int,
    max_templates: int = MAX_TEMPLATES_PER_GROUP,
    max_steps: int = MAX_SEARCH_STEPS,
) -> dict[int, tuple[WyckoffTemplate, ...]]:
    """Templates per space group for a formula (groups without any template are left out).

    Results are cached; `max_templates=1, max_steps=FEASIBILITY_STEPS` is a fast feasibility
    test (a group it finds feasible has templates under the default, larger budget too).
    """
    key = tuple(counts.items())
    limits = (int(max_atoms), int(max_orbits), int(max_templates), int(max_steps))
    result = {}
    for spacegroup in spacegroups:
        templates = _cached_templates(int(spacegroup), key, *limits)
        if templates:
            result[int(spacegroup)] = templates
    return result
