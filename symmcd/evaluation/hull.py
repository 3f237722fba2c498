"""Energy above a reference convex hull built offline from MP-20.

Hull points: every MP-20 entry (train + val + test) carrying a DFT formation energy and an energy
above hull, placed at ``formation energy - e_above_hull`` (a point on the Materials Project hull
at that composition), plus every element at 0 eV/atom. A crystal's energy above this hull is
computed with pymatgen's ``PhaseDiagram`` over its own chemical system (the entries whose
elements are a subset of its elements).

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
from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram
from pymatgen.core import Composition, Element

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
def phase_diagram(chemical_system: frozenset) -> PhaseDiagram:
    """Phase diagram of the hull points whose elements lie within ``chemical_system``."""
    entries = [PDEntry(Composition({el: 1}), 0.0) for el in sorted(chemical_system)]
    for elements, composition, energy in hull_points():
        if elements <= chemical_system:
            entries.append(PDEntry(composition, energy * composition.num_atoms))
    return PhaseDiagram(entries, elements=[Element(el) for el in sorted(chemical_system)])


def energy_above_hull(composition: Composition, formation_energy_per_atom: float) -> float:
    """Energy above the reference hull (eV/atom; negative = below it); NaN if not computable."""
    if not np.isfinite(formation_energy_per_atom):
        return float("nan")
    system = frozenset(e.symbol for e in composition.elements)
    try:
        diagram = phase_diagram(system)
        reduced = composition.reduced_composition
        entry = PDEntry(reduced, formation_energy_per_atom * reduced.num_atoms)
        _, e_hull = diagram.get_decomp_and_e_above_hull(entry, allow_negative=True)
    except Exception:  # noqa: BLE001 - element outside the hull data or degenerate diagram
        return float("nan")
    return float(e_hull)
