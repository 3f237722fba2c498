"""Crystal structure prediction: candidate structures of a given composition, ranked by energy.

``predict_structures("LiFePO4", n=20)`` samples ``n`` crystals of exactly that composition
(``SamplingConfig.formula``: Wyckoff templates that hold the formula, elements and site
symmetries clamped while the rest is denoised), scores each with CHGNet (the static energy of
the sampled cell, or with ``relax=True`` the energy after a free CHGNet relaxation, whose
structure then replaces the sample) and returns them lowest energy per atom first.
``csp_to_dir`` does it for several formulas and writes one CIF per candidate and a ranked table.

Energies come from CHGNet (a universal potential, not DFT); ``e_above_hull`` is against the
offline reference hull of ``symmcd.evaluation.hull`` (see its bias in docs/evaluation.md).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from pymatgen.core import Composition, Structure

from symmcd.errors import InputError
from symmcd.sampling import conditions, writers
from symmcd.sampling.config import SamplingConfig, checked_int

RANKING_FILE = "ranking.csv"
RANKING_COLUMNS = [
    "formula",
    "rank",
    "file",
    "spacegroup",
    "symbol",
    "wyckoff",
    "energy_per_atom",
    "formation_energy_per_atom",
    "e_above_hull",
    "relaxed",
    "relax_error",
]


@dataclass
class Candidate:
    """One predicted structure of a composition and its CHGNet energies (eV/atom)."""

    formula: str
    structure: Structure
    spacegroup: int
    wyckoff: str
    energy_per_atom: float
    formation_energy_per_atom: float
    e_above_hull: float
    relaxed: bool
    relax_error: str = ""
    rank: int = 0  # 1 = lowest energy per atom
    index: int = 0  # order in which it was sampled (index 0 is an unranked first draw)
    cif: str = ""


def check_formulas(formulas: str | Sequence[str]) -> list[str]:
    """Reduced formulas of the requests, or an InputError naming the first bad one."""
    if isinstance(formulas, str):
        formulas = [formulas]
    if not formulas:
        raise InputError("csp: give at least one formula, e.g. LiFePO4")
    reduced = []
    for formula in formulas:
        counts = conditions.parse_formula(formula)
        reduced.append(Composition(conditions.formula_string(counts)).reduced_formula)
    return list(dict.fromkeys(reduced))


def predict_structures(formula: str, n: int = 20, **settings) -> list[Candidate]:
    """``n`` candidate structures of ``formula``, lowest CHGNet energy per atom first.

    ``settings`` are those of :func:`predict_many`: ``checkpoint``, ``relax`` (relax every
    candidate freely with CHGNet before ranking, about 10 s a crystal on one core, over
    ``workers`` processes), ``progress``, ``config`` and sampling options as in
    :func:`symmcd.sample` (e.g. ``spacegroups=[62, 194]``, ``seed``)."""
    (reduced,) = check_formulas([formula])
    return predict_many([reduced], n, **settings)[reduced]


def predict_many(
    formulas: Sequence[str],
    n: int = 20,
    checkpoint: str | Path | None = None,
    relax: bool = False,
    workers: int | None = None,
    progress: bool = True,
    config: SamplingConfig | None = None,
    **options,
) -> dict[str, list[Candidate]]:
    """:func:`predict_structures` of several formulas at once (sampled in shared batches, which
    is much faster than one formula at a time); keys are the reduced formulas."""
    from symmcd.evaluation.formation_energy import predict_energy_per_atom
    from symmcd.sampling.sampler import sample_formulas

    reduced = check_formulas(formulas)
    n = checked_int("n", n, 1)
    config = SamplingConfig.from_options(config, **options)
    sampled = sample_formulas(reduced, n, config, checkpoint=checkpoint, progress=progress)
    crystals = [crystal for formula in reduced for crystal in sampled[formula]]
    structures = [crystal.structure for crystal in crystals]
    errors = [""] * len(structures)
    if relax:
        from symmcd.evaluation.relax import relax_many

        results = list(relax_many(structures, workers=workers, progress=progress))
        energies = np.array([r.energy_per_atom for r in results])
        errors = [r.error for r in results]
        structures = [r.structure or s for r, s in zip(results, structures, strict=True)]
    else:
        energies = predict_energy_per_atom(structures, progress=progress)
    found = {}
    for k, formula in enumerate(reduced):
        part = slice(k * n, (k + 1) * n)
        found[formula] = _ranked(
            formula,
            crystals[part],
            structures[part],
            energies[part],
            errors[part],
            relax,
        )
    return found


def _ranked(formula, crystals, structures, energies, errors, relax: bool) -> list[Candidate]:
    """Candidates of one formula with their energies, lowest energy per atom first."""
    from symmcd.evaluation.formation_energy import formation_energy_from_energy
    from symmcd.evaluation.hull import energy_above_hull

    candidates = []
    for index, (crystal, structure, energy, error) in enumerate(
        zip(crystals, structures, energies, errors, strict=True)
    ):
        formation = formation_energy_from_energy(structure.composition, energy)
        candidates.append(
            Candidate(
                formula=formula,
                structure=structure,
                spacegroup=int(crystal.metadata["spacegroup"]),
                wyckoff=str(crystal.metadata["wyckoff"]),
                energy_per_atom=float(energy),
                formation_energy_per_atom=formation,
                e_above_hull=energy_above_hull(structure.composition, formation),
                relaxed=relax and not error,
                relax_error=error,
                index=index,
                cif=writers.cif_text(crystal) if not relax else relaxed_cif(structure),
            )
        )
    keys = [c.energy_per_atom if np.isfinite(c.energy_per_atom) else np.inf for c in candidates]
    ranked = [candidates[i] for i in np.argsort(keys, kind="stable")]
    for rank, candidate in enumerate(ranked, start=1):
        candidate.rank = rank
    return ranked


def csp_to_dir(
    out_dir: str | Path,
    formulas: str | Sequence[str],
    n: int = 20,
    checkpoint: str | Path | None = None,
    relax: bool = False,
    overwrite: bool = False,
    workers: int | None = None,
    progress: bool = True,
    config: SamplingConfig | None = None,
    **options,
) -> pd.DataFrame:
    """Candidates of every formula written as ``OUT/<formula>/rank_01.cif ...`` with the ranked
    table ``OUT/ranking.csv`` (all formulas; also returned). Bad formulas and compositions no
    template can hold are refused before anything is written."""
    reduced = check_formulas(formulas)
    config = SamplingConfig.from_options(config, **options)
    out = writers.check_out_dir(out_dir, overwrite)
    started = time.perf_counter()
    rows = []
    found = predict_many(reduced, n, checkpoint, relax, workers, progress, config)
    with writers.staged_dir(out) as folder:
        for formula, candidates in found.items():
            (folder / formula).mkdir()
            for candidate in candidates:
                name = f"{formula}/rank_{candidate.rank:02d}.cif"
                (folder / name).write_text(candidate.cif)
                rows.append(ranking_row(candidate, name))
        table = pd.DataFrame(rows, columns=RANKING_COLUMNS)
        table.to_csv(folder / RANKING_FILE, index=False)
    if progress:
        print(format_ranking(table))
        print(
            f"{len(table)} candidates of {len(reduced)} formula(s) in "
            f"{time.perf_counter() - started:.1f} s -> {out}"
        )
    return table


def relaxed_cif(structure: Structure) -> str:
    """A relaxed candidate as a symmetrised CIF (spglib at symprec 0.1; P1 if that fails)."""
    from pymatgen.io.cif import CifWriter

    try:
        return str(CifWriter(structure, symprec=0.1))
    except Exception:  # noqa: BLE001 - spglib cannot symmetrise every relaxed cell
        return str(CifWriter(structure))


def ranking_row(candidate: Candidate, file: str) -> dict:
    from symmcd.symmetry.tables import SG_SYMBOL

    return {
        "formula": candidate.formula,
        "rank": candidate.rank,
        "file": file,
        "spacegroup": candidate.spacegroup,
        "symbol": str(SG_SYMBOL[candidate.spacegroup - 1]),
        "wyckoff": candidate.wyckoff,
        "energy_per_atom": round(candidate.energy_per_atom, 5),
        "formation_energy_per_atom": round(candidate.formation_energy_per_atom, 5),
        "e_above_hull": round(candidate.e_above_hull, 5),
        "relaxed": candidate.relaxed,
        "relax_error": candidate.relax_error,
    }


def format_ranking(table: pd.DataFrame, top: int = 5) -> str:
    """The best ``top`` candidates of each formula as an aligned text table."""
    shown = table[table["rank"] <= top]
    columns = ["formula", "rank", "symbol", "wyckoff", "energy_per_atom", "e_above_hull"]
    return shown[columns].to_string(index=False)
