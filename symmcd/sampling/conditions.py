"""User conditions for sampling: space groups, element sets, formulas and property targets.

Parsing turns loose user input ("225,194", "Li,Fe,P,O", "LiFePO4") into validated values and
raises :class:`~symmcd.errors.InputError` naming the bad input. The Wyckoff templates a formula
can take are enumerated in :mod:`symmcd.symmetry.templates`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from pymatgen.core import Composition, Element

from symmcd.errors import InputError
from symmcd.symmetry.encoding import NUM_ELEMENTS
from symmcd.symmetry.tables import NUM_SPACE_GROUPS as NUM_SPACEGROUPS
from symmcd.symmetry.tables import spacegroup_number
from symmcd.symmetry.templates import is_exact_cell, reduced_counts

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
