"""User conditions for sampling: space groups, element sets and formulas.

Parsing turns loose user input ("225,194", "Li,Fe,P,O", "LiFePO4") into validated values and
raises :class:`~symmcd.errors.InputError` naming the bad input. A formula is turned into Wyckoff
*templates*: choices of Wyckoff positions of one space group whose multiplicities add up to the
formula's element counts times z, with every orbit assigned one element.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from pymatgen.core import Composition, Element

from symmcd.errors import InputError
from symmcd.symmetry.encoding import NUM_ELEMENTS
from symmcd.symmetry.tables import NUM_SPACE_GROUPS as NUM_SPACEGROUPS
from symmcd.symmetry.tables import spacegroup_number

MAX_TEMPLATES_PER_GROUP = 1000
MAX_SEARCH_STEPS = 200_000  # partial templates visited per group (over all z)
# the same for a feasibility test (one template per group) over all 230 groups: realistic
# formulas find theirs within ~1,000 steps; contrived ones (Li7Na7K7Rb7O5) stay under a second
FEASIBILITY_STEPS = 50_000


# ---------------------------------------------------------------- space groups


def parse_spacegroups(
    spacegroups: int | str | Iterable[int | str] | None,
) -> tuple[int, ...] | None:
    """Space-group numbers from an int, "225,194", "Fm-3m,P6_3/mmc" or a list of numbers and
    symbols; each must name one of the 230 groups."""
    if spacegroups is None:
        return None
    if isinstance(spacegroups, (int, float, np.integer, np.floating)):
        items: list = [spacegroups]
    elif isinstance(spacegroups, str):
        items = [part.strip() for part in spacegroups.split(",") if part.strip()]
    else:
        items = list(spacegroups)
    if not items:
        raise InputError("spacegroups: empty list; give numbers in 1..230 or symbols, e.g. 225,194")
    numbers = []
    for item in items:
        if isinstance(item, (float, np.floating)) and item != int(item):
            raise InputError(f"spacegroups: {item!r} is not a space-group number (1..230)")
        if isinstance(item, (float, np.floating, np.integer)):
            item = int(item)
        if not isinstance(item, (int, str)) or isinstance(item, bool):
            raise InputError(f"spacegroups: {item!r} is not a space-group number (1..230)")
        try:
            numbers.append(spacegroup_number(item))
        except InputError as error:
            raise InputError(f"spacegroups: {error}") from None
    return tuple(dict.fromkeys(numbers))


def spacegroup_weights(
    training_distribution: np.ndarray, spacegroups: Sequence[int] | None
) -> np.ndarray:
    """Probabilities over groups 1..230 (index sg - 1) to draw space groups from.

    Without user groups: the training distribution. With user groups: the training distribution
    restricted to them and renormalised; if none of them was seen in training, uniform over them.
    """
    train = np.asarray(training_distribution, dtype=np.float64).reshape(-1)
    if train.shape != (NUM_SPACEGROUPS,):
        raise ValueError(
            f"training space-group distribution must have 230 entries, not {train.shape}"
        )
    if spacegroups is None:
        weights = train.copy()
    else:
        mask = np.zeros(NUM_SPACEGROUPS, dtype=bool)
        mask[np.asarray(spacegroups) - 1] = True
        weights = np.where(mask, train, 0.0)
        if weights.sum() <= 0:
            weights = mask.astype(np.float64)
    if weights.sum() <= 0:
        raise InputError("spacegroups: the model's training distribution is empty")
    return weights / weights.sum()


def top_k_spacegroups(training_distribution: np.ndarray, k: int) -> tuple[int, ...]:
    """The k most frequent space groups of the training distribution (ties by number)."""
    if int(k) != k or k < 1:
        raise InputError(f"top_k_spacegroups: {k!r} must be a positive integer")
    train = np.asarray(training_distribution, dtype=np.float64).reshape(-1)
    seen = int((train > 0).sum())
    order = np.lexsort((np.arange(train.size), -train))[: min(int(k), max(seen, 1))]
    return tuple(int(i) + 1 for i in order)


# ---------------------------------------------------------------- elements


def element_symbol(symbol: str) -> str:
    """A validated element symbol (Z in 1..100), e.g. 'Fe'; InputError otherwise."""
    clean = str(symbol).strip()
    if not Element.is_valid_symbol(clean) or Element(clean).Z > NUM_ELEMENTS:
        raise InputError(f"elements: unknown element symbol {symbol!r}")
    return clean


def parse_elements(elements: str | Iterable[str] | None) -> tuple[str, ...] | None:
    """Element symbols from "Li,Fe,P,O" or a list; duplicates dropped, order kept."""
    if elements is None:
        return None
    items = elements.replace(" ", "").split(",") if isinstance(elements, str) else list(elements)
    items = [item for item in items if str(item).strip()]
    if not items:
        raise InputError("elements: empty list; give symbols such as Li,Fe,P,O")
    unknown = [item for item in items if not _is_element(item)]
    if unknown:
        raise InputError(f"elements: unknown element symbol(s) {', '.join(map(str, unknown))}")
    return tuple(dict.fromkeys(str(item).strip() for item in items))


def _is_element(symbol: str) -> bool:
    try:
        element_symbol(symbol)
    except InputError:
        return False
    return True


def element_allowed_mask(
    symbols: Sequence[str], element_marginals: np.ndarray, name: str = "elements"
) -> np.ndarray:
    """Boolean (100,) mask over element indices Z - 1 allowing only `symbols`.

    Elements the model never generated in training (zero marginal) cannot be sampled: InputError.
    """
    marginals = np.asarray(element_marginals, dtype=np.float64).reshape(-1)
    mask = np.zeros(NUM_ELEMENTS, dtype=bool)
    unseen = []
    for symbol in symbols:
        index = Element(symbol).Z - 1
        if marginals[index] <= 0:
            unseen.append(symbol)
        mask[index] = True
    if unseen:
        raise InputError(f"{name}: the model never saw {', '.join(unseen)} in training")
    return mask


# ---------------------------------------------------------------- formulas


def parse_formula(formula: str) -> dict[str, int]:
    """Integer element counts as written, e.g. 'LiFePO4' -> {'Li': 1, 'Fe': 1, 'P': 1, 'O': 4},
    'Li2O2' -> {'Li': 2, 'O': 2} (never reduced: see :func:`formula_units` for what a cell may
    hold)."""
    text = str(formula).strip()
    try:
        composition = Composition(text)
    except Exception:
        raise InputError(f"formula: cannot parse {formula!r}") from None
    amounts = composition.get_el_amt_dict()
    if not amounts:
        raise InputError(f"formula: {formula!r} has no elements")
    unknown = [symbol for symbol in amounts if not _is_element(symbol)]
    if unknown:
        raise InputError(f"formula: unknown element symbol(s) {', '.join(unknown)} in {formula!r}")
    if any(abs(amount - round(amount)) > 1e-8 or amount <= 0 for amount in amounts.values()):
        raise InputError(f"formula: {formula!r} must have positive integer counts")
    return {symbol: int(round(amount)) for symbol, amount in amounts.items()}


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


def check_formula_size(counts: dict[str, int], max_atoms: int, max_orbits: int) -> None:
    """InputError, at once, for a formula no cell within the model's limits can hold: more atoms
    than `max_atoms` per cell, or more elements than `max_orbits` orbits."""
    atoms = sum(counts.values())
    name = formula_string(counts)
    if atoms > max_atoms:
        what = "a cell of" if is_exact_cell(counts) else "a formula unit of"
        hint = (
            f"; write the composition in lowest terms ({formula_string(reduced_counts(counts))}) "
            "to let the model choose the cell"
            if is_exact_cell(counts) and sum(reduced_counts(counts).values()) <= max_atoms
            else ""
        )
        raise InputError(
            f"formula: {name} is {what} {atoms} atoms, more than this model's limit of "
            f"{max_atoms} atoms per conventional cell{hint}"
        )
    if len(counts) > max_orbits:
        raise InputError(
            f"formula: {name} has {len(counts)} elements, more than this model's limit of "
            f"{max_orbits} orbits per crystal"
        )


def formula_string(counts: dict[str, int]) -> str:
    """A compact formula string like 'LiFePO4' (counts of 1 omitted), in the given order."""
    return "".join(f"{symbol}{count if count != 1 else ''}" for symbol, count in counts.items())


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


def no_template_message(
    counts: dict[str, int],
    spacegroups: Sequence[int] | None,
    max_atoms: int,
    max_orbits: int | None = None,
) -> str:
    """The one-line error for a formula that no Wyckoff template can hold."""
    if spacegroups is None:
        where = "any space group"
    else:
        where = "space groups " + ",".join(str(sg) for sg in spacegroups)
    orbits = f" and {max_orbits} orbits" if max_orbits is not None else ""
    cell = "as the exact cell content " if is_exact_cell(counts) else ""
    return (
        f"formula: no Wyckoff template in {where} can hold {formula_string(counts)} "
        f"{cell}within {max_atoms} atoms{orbits}"
    )


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


def all_spacegroups() -> tuple[int, ...]:
    return tuple(range(1, NUM_SPACEGROUPS + 1))


def parse_targets(
    targets: str | Sequence[str] | dict[str, float] | Sequence[tuple[str, float]] | None,
) -> tuple[tuple[str, float], ...] | None:
    """Property targets as ``((name, value), ...)``: from ``"band_gap=1.5"``, a list of such
    strings, a ``{name: value}`` dict or ``(name, value)`` pairs; InputError names a bad one."""
    if targets is None:
        return None
    if isinstance(targets, str):
        targets = [part for part in targets.split(",") if part.strip()]
    items = targets.items() if isinstance(targets, dict) else targets
    parsed: list[tuple[str, float]] = []
    for item in items:
        if isinstance(item, str):
            name, sep, text = item.partition("=")
            if not sep:
                raise InputError(f"target {item!r} must look like NAME=VALUE, e.g. band_gap=1.5")
            try:
                value = float(text)
            except ValueError:
                raise InputError(f"target {item!r}: {text.strip()!r} is not a number") from None
        elif isinstance(item, (tuple, list)) and len(item) == 2:
            name, value = item
        else:
            raise InputError(f"target {item!r} must be NAME=VALUE or a (name, value) pair")
        name = str(name).strip()
        number = (int, float, np.integer, np.floating)
        ok = isinstance(value, number) and not isinstance(value, bool)
        if not name or not ok or not np.isfinite(value):
            raise InputError(f"target {item!r} needs a property name and a finite number")
        if name in dict(parsed):
            raise InputError(f"target {name!r} is given twice")
        parsed.append((name, float(value)))
    return tuple(parsed) or None


def target_vector(
    targets: tuple[tuple[str, float], ...] | None,
    properties: Sequence[str],
    ranges: Sequence[Sequence[float]],
) -> np.ndarray | None:
    """(P,) float32 targets in the model's property order, NaN for the ones not targeted (None
    without targets). InputError when the model was not trained on a property, or a target lies
    outside the range of its training labels."""
    if targets is None:
        return None
    if not properties:
        raise InputError(
            "targets: this model was trained without property conditioning; sample with the "
            "shipped conditioned model (no --checkpoint) or train one with model.properties"
        )
    vector = np.full(len(properties), np.nan, dtype=np.float32)
    for name, value in targets:
        if name not in properties:
            known = ", ".join(properties)
            raise InputError(f"target {name!r}: this model conditions on {known} only")
        column = list(properties).index(name)
        low, high = ranges[column]
        if not low <= value <= high:
            raise InputError(
                f"target {name}={value:g} lies outside the range of the model's training labels "
                f"[{low:g}, {high:g}]"
            )
        vector[column] = value
    return vector
