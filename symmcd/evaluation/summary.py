"""Per-crystal descriptors of a crystal set, computed in parallel and cached on disk.

One pass over the structures gives everything the metrics need: validity flags, detected space
group and Wyckoff template, density, number of elements, reduced formula and (optionally) the
CrystalNN / Magpie fingerprints. Two caches under ``~/.cache/symmcd/summaries/``: whole sets read
from files, keyed by the sha256 of their bytes (the reference and training sets load in one read),
and single crystals, in the crystal store (``store.py``), so sets that share crystals describe
each crystal once.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
from pymatgen.core import Structure
from tqdm import tqdm

from symmcd.evaluation.coverage import (
    COMP_FP_SIZE,
    STRUCT_FP_SIZE,
    composition_fingerprint,
    structure_fingerprint,
)
from symmcd.evaluation.store import (
    cache_dir,
    cached_file,
    crystal_key,
    crystal_store,
    missing_keys,
)
from symmcd.evaluation.templates import (
    field_spacegroup,
    spacegroup_and_template,
    template_to_string,
)
from symmcd.evaluation.validity import composition_is_valid, structure_is_valid
from symmcd.evaluation.workers import default_workers, ordered_map

SUMMARY_VERSION = "v2"  # v2: spacegroup_field


@dataclass
class CrystalSummary:
    """Descriptors, one entry per crystal; ``spacegroup == 0`` and ``template == ""`` when the
    structure is unreadable or symmetry detection failed. ``spacegroup`` is spglib's at symprec
    0.1 (templates, sg_match), ``spacegroup_field`` at pymatgen's defaults (SG JSD)."""

    struct_valid: np.ndarray
    comp_valid: np.ndarray
    spacegroup: np.ndarray
    spacegroup_field: np.ndarray  # at pymatgen's default tolerances (the field's SG JSD)
    template: np.ndarray
    density: np.ndarray
    num_elements: np.ndarray
    formula: np.ndarray
    struct_fp: np.ndarray
    comp_fp: np.ndarray

    @property
    def valid(self) -> np.ndarray:
        return self.struct_valid & self.comp_valid

    def __len__(self) -> int:
        return len(self.struct_valid)


def describe_crystal(structure: Structure | None, with_fingerprints: bool) -> dict:
    """All descriptors of one crystal (runs in a worker process)."""
    if structure is None:
        number, template = None, None
    else:
        number, template = spacegroup_and_template(structure)
    return {
        "struct_valid": structure_is_valid(structure),
        "comp_valid": composition_is_valid(structure.composition if structure else None),
        "spacegroup": number or 0,
        "spacegroup_field": field_spacegroup(structure) or 0,
        "template": template_to_string(template) if template else "",
        "density": float(structure.density) if structure is not None else np.nan,
        "num_elements": len(structure.composition.elements) if structure is not None else 0,
        "formula": structure.composition.reduced_formula if structure is not None else "",
        "struct_fp": structure_fingerprint(structure)
        if with_fingerprints
        else np.full(STRUCT_FP_SIZE, np.nan),
        "comp_fp": composition_fingerprint(structure.composition if structure else None)
        if with_fingerprints
        else np.full(COMP_FP_SIZE, np.nan),
    }


def _describe_fingerprinted(structure: Structure | None) -> dict:
    return describe_crystal(structure, True)


def _describe_plain(structure: Structure | None) -> dict:
    return describe_crystal(structure, False)


def iter_describe(
    structures: list[Structure | None],
    with_fingerprints: bool,
    workers: int | None = None,
    progress: bool = True,
    label: str = "describe",
) -> Iterator[dict]:
    """``describe_crystal`` of every structure, in parallel over ``workers`` processes, yielded
    in order as they are computed."""
    worker = _describe_fingerprinted if with_fingerprints else _describe_plain
    rows = ordered_map(worker, structures, workers or default_workers(), 4, 8)
    yield from tqdm(rows, total=len(structures), desc=label, disable=not progress, unit="crystal")


def describe_rows(
    structures: list[Structure | None],
    with_fingerprints: bool,
    workers: int | None = None,
    progress: bool = True,
    label: str = "describe",
) -> list[dict]:
    """``describe_crystal`` of every structure, in parallel over ``workers`` processes, in order."""
    return list(iter_describe(structures, with_fingerprints, workers, progress, label))


def _stack(rows: list[dict]) -> CrystalSummary:
    columns = {}
    for spec in fields(CrystalSummary):
        values = [row[spec.name] for row in rows]
        columns[spec.name] = np.asarray(values) if values else np.zeros(0)
    columns["struct_valid"] = columns["struct_valid"].astype(bool)
    columns["comp_valid"] = columns["comp_valid"].astype(bool)
    columns["spacegroup"] = columns["spacegroup"].astype(int)
    columns["spacegroup_field"] = columns["spacegroup_field"].astype(int)
    columns["template"] = columns["template"].astype(str)
    columns["formula"] = columns["formula"].astype(str)
    if len(rows) == 0:
        columns["struct_fp"] = np.zeros((0, STRUCT_FP_SIZE))
        columns["comp_fp"] = np.zeros((0, COMP_FP_SIZE))
    return CrystalSummary(**columns)


def concatenate_summaries(parts: list[CrystalSummary]) -> CrystalSummary:
    """One summary of several sets, rows in order."""
    return CrystalSummary(
        **{
            spec.name: np.concatenate([getattr(part, spec.name) for part in parts])
            for spec in fields(CrystalSummary)
        }
    )


def cache_path(digest: str, with_fingerprints: bool) -> Path:
    kind = "fp" if with_fingerprints else "plain"
    return cache_dir() / "summaries" / f"{digest}-{kind}-{SUMMARY_VERSION}.npz"


def load_cached(path: Path) -> CrystalSummary | None:
    """The cached summary at ``path`` (or its shipped copy, ``store.cached_file``), or ``None``
    when absent or unreadable."""
    found = cached_file(path.relative_to(cache_dir()))
    if found is None:
        return None
    path = found
    try:
        with np.load(path, allow_pickle=False) as data:
            return CrystalSummary(**{spec.name: data[spec.name] for spec in fields(CrystalSummary)})
    except Exception:  # noqa: BLE001 - a corrupt cache is recomputed
        return None


def save_cached(path: Path, summary: CrystalSummary) -> None:
    """Write atomically (temp file + rename) so concurrent runs never read half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(f".{os.getpid()}.tmp.npz")
    np.savez_compressed(temporary, **{s.name: getattr(summary, s.name) for s in fields(summary)})
    os.replace(temporary, path)


def describe_kind(with_fingerprints: bool) -> str:
    """The crystal store's name for descriptor rows with or without fingerprints."""
    return f"describe-{'fp' if with_fingerprints else 'plain'}-{SUMMARY_VERSION}"


def describe_with_store(
    structures: list[Structure | None],
    with_fingerprints: bool,
    workers: int | None = None,
    progress: bool = True,
    label: str = "describe",
) -> CrystalSummary:
    """Descriptors of every structure, in order, computing only those of the crystals the
    crystal store lacks (each distinct crystal once, over ``workers`` processes) and storing
    them."""
    kind = describe_kind(with_fingerprints)
    keys = [crystal_key(s) if s is not None else None for s in structures]
    store = crystal_store()
    wanted = {k for k in keys if k is not None}
    known = store.get(wanted, kind)
    if not with_fingerprints:  # a fingerprinted row holds every plain descriptor too
        known = {**store.get(wanted - set(known), describe_kind(True)), **known}
    todo = missing_keys(keys, known)
    any_unreadable = None in keys
    jobs = [structures[i] for i in todo.values()] + ([None] if any_unreadable else [])
    rows = iter_describe(jobs, with_fingerprints, workers, progress, label)
    described = ((key, next(rows)) for key in todo)  # in order: the unreadable row comes last
    known.update(store.put_as_they_come(described, kind))  # a stopped run resumes from here
    unreadable_row = next(iter(list(rows)), None)  # the same for every unreadable one
    return _stack([known[key] if key is not None else unreadable_row for key in keys])


def summarize(
    structures: list[Structure | None],
    digest: str | None,
    with_fingerprints: bool,
    workers: int | None = None,
    progress: bool = True,
    label: str = "describe",
) -> CrystalSummary:
    """Descriptors of every structure: the whole set from the set cache (``digest``) when
    present, else its crystals from the crystal store, describing only the new ones."""
    path = cache_path(digest, with_fingerprints) if digest else None
    if path is not None:
        # a plain summary is also read from the set's fingerprinted one (it holds every column)
        for with_fp in (True,) if with_fingerprints else (False, True):
            cached = load_cached(cache_path(digest, with_fp))
            if cached is not None and len(cached) == len(structures):
                return cached
    summary = describe_with_store(structures, with_fingerprints, workers, progress, label)
    if path is not None:
        save_cached(path, summary)
    return summary
