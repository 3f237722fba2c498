"""Energy above a reference convex hull built offline from MP-20.

Hull points: every MP-20 entry (train + val + test) carrying a DFT formation energy and an energy
above hull, placed at ``formation energy - e_above_hull`` (a point on the Materials Project hull
at that composition), plus every element at 0 eV/atom. A crystal's energy above this hull is
the distance to the lower convex hull of the points of its own chemical system (those whose
elements are a subset of its elements), found as a linear program (``hull_energy``).

How this differs from the full MP hull: MP-20 keeps only materials with <= 20 atoms per cell, so
phases of the full MP hull are missing. Every point used lies on the MP hull, so the reference
hull lies on or *above* the true one: energies above hull come out lower or equal, and the
``stable`` / ``metastable`` / S.U.N. rates are biased *upwards* (optimistic). Predicted energies
are CHGNet's, compared with DFT hull points, so CHGNet's errors enter the e_hull too.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
from pymatgen.core import Composition
from scipy.optimize import linprog

HULL_POINTS_PATH = Path(__file__).resolve().parent / "data" / "mp20_hull_points.csv.gz"
STABLE = 0.0
METASTABLE = 0.1  # eV/atom


@lru_cache(maxsize=1)
def hull_points() -> tuple[tuple[frozenset, Composition, float], ...]:
    """(element set, reduced composition, formation energy per atom) of every hull point."""
    frame = pd.read_csv(HULL_POINTS_PATH)
    points = []
    for formula, energy in zip(frame["formula"], frame["e_form_hull"], strict=True):
        composition = Composition(formula)
        points.append((frozenset(e.symbol for e in composition.elements), composition, energy))
    return tuple(points)


@lru_cache(maxsize=4096)
def system_points(chemical_system: frozenset) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    """(elements, atomic fractions [points, elements], formation energies per atom) of the hull
    points whose elements lie within ``chemical_system``, each element itself at 0 eV/atom."""
    elements = tuple(sorted(chemical_system))
    fractions = [np.eye(len(elements))]
    energies = [np.zeros(len(elements))]
    for point_elements, composition, energy in hull_points():
        if point_elements <= chemical_system:
            fractions.append(_fractions(composition, elements)[None])
            energies.append(np.array([energy]))
    return elements, np.concatenate(fractions), np.concatenate(energies)


def _fractions(composition: Composition, elements: tuple[str, ...]) -> np.ndarray:
    amounts = np.array([composition[element] for element in elements], dtype=float)
    return amounts / amounts.sum()


def hull_energy(composition: Composition) -> float:
    """Formation energy per atom of the reference hull at this composition: the lowest energy of
    any mixture of hull points with the same atomic fractions, a small linear program.

    This is the value pymatgen's ``PhaseDiagram`` interpolates, without building the hull's
    facets: their number explodes with the number of elements (a 14-element sample took
    minutes), while the linear program stays a fraction of a second."""
    elements, fractions, energies = system_points(frozenset(e.symbol for e in composition.elements))
    result = linprog(
        energies,
        A_eq=fractions.T,
        b_eq=_fractions(composition, elements),
        bounds=(0, None),
        method="highs",
    )
    if not result.success:  # cannot happen (the pure elements span every composition)
        raise RuntimeError(f"hull energy of {composition.formula}: {result.message}")
    return float(result.fun)


def energy_above_hull(composition: Composition, formation_energy_per_atom: float) -> float:
    """Energy above the reference hull (eV/atom; negative = below it); NaN if not computable."""
    if not np.isfinite(formation_energy_per_atom) or not composition.elements:
        return float("nan")
    return float(formation_energy_per_atom - hull_energy(composition))
