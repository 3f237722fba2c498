"""Energy above a reference convex hull built offline from Materials Project entries.

Hull points (``data/mp_hull_points.csv.gz``, built by ``build_data.py``): every entry at hand that
carries a DFT formation energy and an energy above hull, from MP-20 (train at hand + val + test)
and MPTS-52 (val + test; cells up to 52 atoms, the same DFT energies), placed at
``formation energy - e_above_hull`` (a point on the Materials Project hull at that composition),
plus every element at 0 eV/atom. A crystal's energy above this hull is the distance to the lower
convex hull of the points of its own chemical system (those whose elements are a subset of its
elements), found as a linear program (:meth:`ReferenceHull.hull_energy`).

How this differs from the full MP hull: only a part of MP's entries is at hand, so phases of the
full hull are missing. Every point used lies on the MP hull, so the reference hull lies on or
*above* the true one: energies above hull come out lower or equal, and ``stable`` / ``metastable``
/ S.U.N. rates are biased *upwards*. The archived hull calibration (``docs/archive/checks.md``)
measured how much: the share of MP-20 test crystals that MP puts above its hull and that a hull
without them calls stable.
Predicted energies are CHGNet's, compared with DFT hull points, so CHGNet's errors enter too.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
from pymatgen.core import Composition
from scipy.optimize import linprog

HULL_POINTS_PATH = Path(__file__).resolve().parent / "data" / "mp_hull_points.csv.gz"
STABLE = 0.0
METASTABLE = 0.1  # eV/atom


class ReferenceHull:
    """A set of hull points (reduced formula, formation energy per atom) and the lower hull of
    each chemical system; elements always sit at 0 eV/atom."""

    def __init__(self, formulas: Iterable[str], energies: Iterable[float]) -> None:
        self.points = []
        for formula, energy in zip(formulas, energies, strict=True):
            composition = Composition(formula)
            elements = frozenset(e.symbol for e in composition.elements)
            self.points.append((elements, composition, float(energy)))
        self.system_points = lru_cache(maxsize=4096)(self._system_points)

    @classmethod
    def from_csv(cls, path: Path = HULL_POINTS_PATH, keep=None) -> ReferenceHull:
        """Points of a hull-point file (``keep``: an optional row filter on its DataFrame)."""
        frame = pd.read_csv(path)
        if keep is not None:
            frame = frame[keep(frame)]
        return cls(frame["formula"], frame["e_form_hull"])

    def __len__(self) -> int:
        return len(self.points)

    def _system_points(
        self, chemical_system: frozenset
    ) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
        """(elements, atomic fractions [points, elements], formation energies per atom) of the
        points whose elements lie within ``chemical_system``, each element itself at 0."""
        elements = tuple(sorted(chemical_system))
        fractions = [np.eye(len(elements))]
        energies = [np.zeros(len(elements))]
        for point_elements, composition, energy in self.points:
            if point_elements <= chemical_system:
                fractions.append(_fractions(composition, elements)[None])
                energies.append(np.array([energy]))
        return elements, np.concatenate(fractions), np.concatenate(energies)

    def hull_energy(self, composition: Composition) -> float:
        """Formation energy per atom of the hull at this composition: the lowest energy of any
        mixture of points with the same atomic fractions, a small linear program.

        This is the value pymatgen's ``PhaseDiagram`` interpolates, without building the hull's
        facets: their number explodes with the number of elements (a 14-element sample took
        minutes), while the linear program stays a fraction of a second."""
        chemical_system = frozenset(e.symbol for e in composition.elements)
        elements, fractions, energies = self.system_points(chemical_system)
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

    def energy_above_hull(self, composition: Composition, formation_energy: float) -> float:
        """Energy above the hull (eV/atom; negative = below it); NaN if not computable."""
        if not np.isfinite(formation_energy) or not composition.elements:
            return float("nan")
        return float(formation_energy - self.hull_energy(composition))


def _fractions(composition: Composition, elements: tuple[str, ...]) -> np.ndarray:
    amounts = np.array([composition[element] for element in elements], dtype=float)
    return amounts / amounts.sum()


@lru_cache(maxsize=1)
def default_hull() -> ReferenceHull:
    """The shipped reference hull (every point of ``data/mp_hull_points.csv.gz``)."""
    return ReferenceHull.from_csv()


def hull_energy(composition: Composition) -> float:
    """:meth:`ReferenceHull.hull_energy` of the shipped hull."""
    return default_hull().hull_energy(composition)


def energy_above_hull(composition: Composition, formation_energy_per_atom: float) -> float:
    """:meth:`ReferenceHull.energy_above_hull` of the shipped hull."""
    return default_hull().energy_above_hull(composition, formation_energy_per_atom)
