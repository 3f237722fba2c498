"""Crystal structure prediction: candidate structures of a composition, best first.

``predict_structures("LiFePO4", n=20)`` answers in three stages (``ranking.csv`` names each
candidate's stage and template):

1. *retrieved*: known crystals of the same stoichiometry from a template pool (the shipped MP-20
   train + val splits, or the user's CIFs), the query's elements substituted on their sites by
   learned substitution likelihoods (:mod:`symmcd.csp.templates`), one template per prototype;
2. *refined*: each template noised to ``refine_start`` x T and denoised by the network with its
   space group, site symmetries and elements held (``symmcd.sampling.refine_templates``);
3. *generated*: for a formula with no known structure of its stoichiometry in the pool,
   crystals of exactly that composition from the generative prior.

Every candidate is scored with CHGNet (the static energy, or with ``relax=True`` after a free
relaxation, whose structure then replaces it); duplicates are merged and the ``n`` lowest in
energy per atom are returned. ``csp_to_dir`` writes one CIF per candidate and the ranked table.
Energies come from CHGNet (a universal potential, not DFT); ``e_above_hull`` is against the
offline reference hull of ``symmcd.evaluation.hull`` (see its bias in docs/evaluation.md).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
from pymatgen.core import Composition, Element, Structure

from symmcd.csp.substitution import SubstitutionTable
from symmcd.csp.templates import Template, TemplatePool, retrieve, shipped_pool
from symmcd.errors import InputError
from symmcd.sampling import conditions, writers
from symmcd.sampling.config import SamplingConfig, checked_int
from symmcd.sampling.unfold import AsymmetricUnits, unfold
from symmcd.sampling.writers import SampledCrystal

# DiffCSP++ refines retrieved templates from 0.1 T; a fraction of the trained steps
REFINE_START = 0.1
# ranking key: CHGNet energy per atom + RANK_PRIOR x ln(prototype rank), eV/atom. Chosen on 275
# MP-20 train crystals held out of the pool (scripts/csp_benchmark.py --dataset mp20-tune, an
# earlier version of this pipeline): energy alone put a match first for 52.7 %, prototype
# likelihood alone 57.5 %, this key 57.8 %
RANK_PRIOR = 0.1
# draws per generated candidate (the prior, for formulas without a template): a collapsed one
# is kept and ranked by its energy rather than redrawn up to SamplingConfig.max_attempts times,
# which took most of the benchmark's time on large cells
GENERATED_ATTEMPTS = 2
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
    "stage",
    "template",
    "substitution",
    "prototype_rank",
    "relaxed",
    "relax_error",
]


@dataclass
class Candidate:
    """One predicted structure of a composition, its CHGNet energies (eV/atom) and origin."""

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
    index: int = 0  # order in which it was made (retrieved, refined, generated)
    cif: str = ""
    stage: str = "generated"  # retrieved, refined or generated
    template: str = ""  # material id of the template ("" for generated)
    substitution: str = ""  # e.g. "Na->Li, Cl->F"
    template_score: float = float("nan")  # log-likelihood of the template's prototype
    prototype_rank: int = 0  # 1 = the most likely prototype; 0 = generated


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
    """``n`` candidate structures of ``formula``, best first (see :func:`predict_many`)."""
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
    templates: str | Path | TemplatePool | None = None,
    refine_start: float = REFINE_START,
    generate: bool = True,
    retrieve: bool = True,
    all_candidates: bool = False,
    **options,
) -> dict[str, list[Candidate]]:
    """Up to ``n`` ranked candidates of each formula (keys: reduced formulas).

    Stages: (1) up to ``n`` templates retrieved from ``templates`` (default: the shipped MP-20
    train + val pool; a path to CIFs, a CSV of CIFs or a saved pool) by stoichiometry and
    substitution likelihood, one per prototype; (2) each refined once by the network from
    ``refine_start`` x T (0: no refinement); (3) for a formula with no template, ``n`` drawn
    from the generative prior (``generate``; every formula within the model's limits gets an
    answer). Then every candidate is scored with CHGNet (static energy, or with ``relax``
    after a free relaxation over ``workers`` processes), duplicates merged and the candidates
    ranked, lowest energy per atom first. ``options`` are sampling settings (``seed``,
    ``steps``, ...; see :class:`SamplingConfig`). ``retrieve=False`` leaves out the templates
    (the generative prior alone); ``all_candidates`` returns every candidate, not only the best
    ``n`` (merged duplicates last, with rank 0), as benchmarks need."""
    from symmcd.evaluation.formation_energy import predict_energy_per_atom

    reduced = check_formulas(formulas)
    n = checked_int("n", n, 1)
    config = SamplingConfig.from_options(config, **options)
    pool = resolve_pool(templates) if retrieve else None
    groups = frozenset(config.spacegroups or ())
    found = {f: stage_candidates(f, pool, n, groups) if pool else [] for f in reduced}
    if refine_start or generate:
        from symmcd.sampling.sampler import load_model

        checkpoint = load_model(checkpoint)  # once, for refinement and the generative stage
    if refine_start:
        add_refined(found, refine_start, config, checkpoint, progress)
    if generate:
        add_generated(found, n, config, checkpoint, progress)
    drafts = [d for formula in reduced for d in found[formula]]
    structures = [d.crystal.structure for d in drafts]
    errors = [""] * len(structures)
    if relax:
        from symmcd.evaluation.relax import relax_many

        results = list(relax_many(structures, workers=workers, progress=progress))
        energies = np.array([r.energy_per_atom for r in results])
        errors = [r.error for r in results]
        structures = [r.structure or s for r, s in zip(results, structures, strict=True)]
    else:
        energies = np.full(len(structures), np.inf)
        # collapsed candidates (atoms < 0.5 A apart) rank last unscored: their neighbour lists
        # can take CHGNet tens of GB
        sound = [i for i, d in enumerate(drafts) if not d.crystal.metadata.get("collapsed")]
        energies[sound] = predict_energy_per_atom([structures[i] for i in sound], progress=progress)
    ranked: dict[str, list[Candidate]] = {}
    start = 0
    for formula in reduced:
        count = len(found[formula])
        part = slice(start, start + count)
        start += count
        ranked[formula] = _ranked(
            formula, drafts[part], structures[part], energies[part], errors[part], relax
        )
        if not all_candidates:
            ranked[formula] = [c for c in ranked[formula] if 0 < c.rank <= n]
    return ranked


@dataclass
class Draft:
    """A candidate before scoring: the crystal and where it came from."""

    crystal: SampledCrystal
    stage: str  # "retrieved", "refined" or "generated"
    template: Template | None = None


def resolve_pool(templates) -> TemplatePool:
    """The template pool: the shipped one, a TemplatePool, a saved pool (.npz), or CIFs (a
    folder, one CIF file or a CSV with a ``cif`` column) prepared on the fly."""
    if templates is None:
        return shipped_pool()
    if isinstance(templates, TemplatePool):
        return templates
    path = Path(templates)
    if not path.exists():
        raise InputError(f"templates: {path} not found")
    if path.suffix == ".npz":
        return TemplatePool.load(path)
    return pool_from_structures(path)


def pool_from_structures(source: Path) -> TemplatePool:
    """A pool of the crystals in a folder of CIFs, a CIF file or a CSV of CIFs (each analysed
    by spglib as ``symmcd prepare`` does; unreadable ones are skipped and reported)."""
    import os

    from symmcd.data.dataset import CrystalCache
    from symmcd.data.io import iter_records
    from symmcd.data.prepare import prepare_rows

    rows = list(iter_records(source))
    if not rows:
        raise InputError(f"templates: no crystals found in {source}")
    kept, skipped = prepare_rows(rows, 0.1, min(2, os.cpu_count() or 1), desc="templates")
    if skipped:
        print(f"templates: skipped {len(skipped)} of {len(rows)} crystals (e.g. {skipped[0][1]})")
    if not kept:
        raise InputError(f"templates: none of the {len(rows)} crystals in {source} is usable")
    return TemplatePool.from_caches([CrystalCache.from_records(kept)], source=str(source))


def stage_candidates(
    formula: str, pool: TemplatePool, n: int, spacegroups: frozenset[int] = frozenset()
) -> list[Draft]:
    """The retrieved templates of a formula (of ``spacegroups`` only, if given), unfolded as
    they are (stage 1)."""
    counts = {Element(symbol).Z - 1: c for symbol, c in conditions.parse_formula(formula).items()}
    found = retrieve(
        counts,
        pool,
        substitution_table(),
        limit=n,
        spacegroups=spacegroups,
    )
    if not found:
        return []
    crystals = unfold(units_of(found), np.concatenate([t.wyckoff for t in found]))
    return [Draft(c, "retrieved", t) for c, t in zip(crystals, found, strict=True)]


def add_refined(found: dict[str, list[Draft]], start: float, config, checkpoint, progress) -> None:
    """One network refinement of every retrieved template (stage 2), all formulas batched."""
    from symmcd.sampling.sampler import refine_templates

    templates = [d.template for drafts in found.values() for d in drafts if d.template]
    if not templates:
        return
    crystals = iter(
        refine_templates(
            units_of(templates),
            np.concatenate([t.wyckoff for t in templates]),
            start=start,
            config=config,
            checkpoint=checkpoint,
            progress=progress,
        )
    )
    for drafts in found.values():
        retrieved = [d for d in drafts if d.template]
        refined = [(next(crystals), d.template) for d in retrieved]
        drafts += [Draft(c, "refined", t) for c, t in refined if c is not None]


def add_generated(found: dict[str, list[Draft]], n: int, config, checkpoint, progress) -> None:
    """``n`` candidates from the generative prior for each formula without a retrieved
    template (stage 3); InputError when no Wyckoff template of the model holds it."""
    from symmcd.sampling import plan
    from symmcd.sampling.sampler import load_model, sample_formulas

    short = {f: n for f, d in found.items() if not d}
    if not short:
        return
    statistics = load_model(checkpoint).statistics
    feasible = []
    for formula in short:
        try:
            plan.plan_formula(
                1, statistics, conditions.parse_formula(formula), None, np.random.default_rng(0)
            )
            feasible.append(formula)
        except InputError:
            if not found[formula]:
                raise
    config = replace(config, max_attempts=min(config.max_attempts, GENERATED_ATTEMPTS))
    for missing in sorted({short[f] for f in feasible}):
        group = [f for f in feasible if short[f] == missing]
        sampled = sample_formulas(group, missing, config, checkpoint=checkpoint, progress=progress)
        for formula in group:
            found[formula] += [Draft(c, "generated") for c in sampled[formula]]


def units_of(templates: Sequence[Template]) -> AsymmetricUnits:
    """Templates as a batch of asymmetric units (site symmetry from their Wyckoff positions)."""
    from symmcd.symmetry import tables

    wyckoff = np.concatenate([t.wyckoff for t in templates])
    return AsymmetricUnits(
        spacegroup=np.array([t.spacegroup for t in templates], dtype=np.int64),
        num_nodes=np.array([len(t.wyckoff) for t in templates], dtype=np.int64),
        k=np.stack([t.k for t in templates]).astype(float),
        atom_types=np.concatenate([t.elements for t in templates]),
        site_symmetry=tables.WP_SITE_SYMMETRY[wyckoff],
        frac_coords=np.concatenate([t.frac_coords for t in templates]),
    )


@functools.cache
def substitution_table() -> SubstitutionTable:
    """Substitution likelihoods learned from the shipped pool (also for a user's templates)."""
    return SubstitutionTable.from_pool(shipped_pool())


def _ranked(formula, drafts, structures, energies, errors, relax: bool) -> list[Candidate]:
    """The candidates of one formula with their energies: best :func:`ranking_key` first, one
    per template, then the other copies of each template; repeated structures (same group,
    Wyckoff sequence and energy within 1 meV/atom) last, with rank 0."""
    from symmcd.evaluation.formation_energy import formation_energy_from_energy
    from symmcd.evaluation.hull import energy_above_hull

    candidates = []
    for index, (draft, structure, energy, error) in enumerate(
        zip(drafts, structures, energies, errors, strict=True)
    ):
        crystal, template = draft.crystal, draft.template
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
                stage=draft.stage,
                template=template.material_id if template else "",
                substitution=template.substitution if template else "",
                template_score=template.score if template else float("nan"),
                prototype_rank=template.prototype_rank if template else 0,
            )
        )
    keys = [ranking_key(c) for c in candidates]
    first, second, duplicates, seen = [], [], [], set()
    for i in np.argsort(keys, kind="stable"):
        c = candidates[i]
        structure = (c.spacegroup, c.wyckoff, round(c.energy_per_atom, 3))
        if structure in seen and np.isfinite(c.energy_per_atom):
            duplicates.append(c)  # a refinement that returned its template, or twin draws
        elif c.template and ("template", c.template) in seen:
            second.append(c)  # the other copy of a template already ranked
        else:
            first.append(c)
        seen |= {structure, ("template", c.template)} if c.template else {structure}
    # one candidate per template first, so that the first n span n templates
    for rank, candidate in enumerate(first + second, start=1):
        candidate.rank = rank
    return first + second + duplicates


def ranking_key(candidate: Candidate) -> float:
    """Lower is better: CHGNet energy per atom plus a prior for less likely prototypes
    (``RANK_PRIOR`` eV/atom per e-fold of prototype rank; generated candidates have none)."""
    if not np.isfinite(candidate.energy_per_atom):
        return np.inf
    prior = RANK_PRIOR * np.log(candidate.prototype_rank) if candidate.prototype_rank else 0.0
    return float(candidate.energy_per_atom + prior)


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
    templates: str | Path | TemplatePool | None = None,
    refine_start: float = REFINE_START,
    **options,
) -> pd.DataFrame:
    """Candidates of every formula written as ``OUT/<formula>/rank_01.cif ...`` with the ranked
    table ``OUT/ranking.csv`` (all formulas; also returned). Bad formulas and compositions no
    template can hold are refused before anything is written. ``templates`` and
    ``refine_start`` as in :func:`predict_many`."""
    reduced = check_formulas(formulas)
    config = SamplingConfig.from_options(config, **options)
    out = writers.check_out_dir(out_dir, overwrite)
    pool = resolve_pool(templates)
    started = time.perf_counter()
    rows = []
    found = predict_many(
        reduced, n, checkpoint, relax, workers, progress, config, pool, refine_start
    )
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
        "stage": candidate.stage,
        "template": candidate.template,
        "substitution": candidate.substitution,
        "prototype_rank": candidate.prototype_rank,
        "relaxed": candidate.relaxed,
        "relax_error": candidate.relax_error,
    }


def format_ranking(table: pd.DataFrame, top: int = 5) -> str:
    """The best ``top`` candidates of each formula as an aligned text table."""
    shown = table[table["rank"] <= top]
    columns = ["formula", "rank", "symbol", "wyckoff", "energy_per_atom", "stage", "template"]
    return shown[columns].to_string(index=False)
