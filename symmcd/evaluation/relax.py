"""CHGNet relaxation of crystals (positions and cell), with or without keeping their symmetry.

ASE FIRE on a ``FrechetCellFilter`` (positions + cell), stopping at ``fmax`` (eV/A) or ``steps``.
A relaxation whose cell volume changes more than 4-fold, or that runs past ``time_limit`` seconds,
is stopped and reported as failed (``error``), so one pathological crystal cannot hold up a run.
With ``keep_symmetry`` the ASE ``FixSymmetry`` constraint (symprec 0.1) symmetrises forces and
stress so the space group found at the start is kept. Results are kept per crystal in the crystal
store (``store.py``), so no crystal is relaxed twice with the same settings.
"""

from __future__ import annotations

import contextlib
import io
import json
import multiprocessing
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd
from pymatgen.core import Structure
from pymatgen.io.ase import AseAtomsAdaptor
from pymatgen.io.cif import CifWriter
from tqdm import tqdm

from symmcd.data.io import check_out_dir, staged_dir, unlock_out_dir
from symmcd.errors import InputError
from symmcd.evaluation.formation_energy import formation_energy_from_energy, load_chgnet
from symmcd.evaluation.io import parse_cifs, read_text_or_empty, unreadable_reasons
from symmcd.evaluation.store import crystal_key, crystal_store, missing_keys
from symmcd.evaluation.templates import SYMPREC, spacegroup_and_template
from symmcd.evaluation.workers import cluster_unordered, default_workers, worker_pool

DEFAULT_STEPS = 500
DEFAULT_FMAX = 0.1
MAX_VOLUME_CHANGE = 4.0  # a cell that grows or shrinks more than this has blown up: stop
DEFAULT_TIME_LIMIT = 600.0  # seconds per crystal; a typical MP-20-sized one takes ~12 s
# a pool that gives no result for this long (x the time limit, + seconds) has a hung worker
WATCHDOG_FACTOR = 1.5
WATCHDOG_GRACE = 120.0
SKIPPED_FILE = "skipped.csv"  # unreadable input CIFs: file, reason


class CellBlewUp(RuntimeError):
    """The cell grew or shrank far beyond any physical relaxation (CHGNet's graph of such a
    cell, and so each step, can grow without bound)."""


class RelaxationTimedOut(RuntimeError):
    """A relaxation ran past its wall-clock limit."""


@dataclass
class RelaxResult:
    """Outcome of one relaxation; energies in eV/atom."""

    structure: Structure | None
    energy_per_atom: float
    formation_energy_per_atom: float
    steps: int
    converged: bool
    spacegroup_before: int | None
    spacegroup_after: int | None
    seconds: float
    error: str = ""


def relax_structure(
    structure: Structure,
    keep_symmetry: bool = False,
    steps: int = DEFAULT_STEPS,
    fmax: float = DEFAULT_FMAX,
    time_limit: float | None = DEFAULT_TIME_LIMIT,
) -> RelaxResult:
    """Relax one crystal with CHGNet; failures (including a blown-up cell or running past
    ``time_limit`` seconds; None = no limit) are reported in ``error``, never raised."""
    from ase.constraints import FixSymmetry
    from ase.filters import FrechetCellFilter
    from ase.optimize import FIRE

    from symmcd.evaluation.chgnet_calculator import FastCHGNetCalculator

    start = time.perf_counter()
    before, _ = spacegroup_and_template(structure)
    try:
        atoms = AseAtomsAdaptor.get_atoms(structure)
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            atoms.calc = FastCHGNetCalculator(load_chgnet(), on_isolated_atoms="ignore")
            if keep_symmetry:
                atoms.set_constraint(FixSymmetry(atoms, symprec=SYMPREC))
            optimizer = FIRE(FrechetCellFilter(atoms), logfile=None)
            optimizer.attach(_volume_guard(atoms, atoms.get_volume()), interval=1)
            if time_limit is not None:
                optimizer.attach(_time_guard(time_limit), interval=1)
            converged = bool(optimizer.run(fmax=fmax, steps=steps))
            energy = float(atoms.get_potential_energy()) / len(atoms)
        atoms.set_constraint()
        relaxed = AseAtomsAdaptor.get_structure(atoms)
    except Exception as error:  # noqa: BLE001 - a crystal that cannot be relaxed is reported
        seconds = time.perf_counter() - start
        message = f"{type(error).__name__}: {error}".splitlines()[0]
        nan = float("nan")
        return RelaxResult(None, nan, nan, 0, False, before, None, seconds, message)
    after, _ = spacegroup_and_template(relaxed)
    return RelaxResult(
        structure=relaxed,
        energy_per_atom=energy,
        formation_energy_per_atom=formation_energy_from_energy(relaxed.composition, energy),
        steps=int(optimizer.nsteps),
        converged=converged,
        spacegroup_before=before,
        spacegroup_after=after,
        seconds=time.perf_counter() - start,
    )


def _volume_guard(atoms, start_volume: float):
    """An optimizer observer that stops a relaxation whose cell volume left
    [start / MAX_VOLUME_CHANGE, start * MAX_VOLUME_CHANGE]."""

    def check() -> None:
        ratio = atoms.get_volume() / start_volume
        if not 1 / MAX_VOLUME_CHANGE <= ratio <= MAX_VOLUME_CHANGE:
            raise CellBlewUp(f"cell volume changed {ratio:.3g}-fold during relaxation")

    return check


def _time_guard(limit_seconds: float, clock=time.perf_counter):
    """An optimizer observer that stops a relaxation once ``limit_seconds`` have passed since
    the guard was made (checked between steps)."""
    deadline = clock() + limit_seconds

    def check() -> None:
        if clock() > deadline:
            raise RelaxationTimedOut(f"relaxation ran past its {limit_seconds:g} s limit")

    return check


def _one_thread() -> None:
    import torch

    torch.set_num_threads(1)


def _relax_job(job: tuple[Structure, bool, int, float, float | None]) -> RelaxResult:
    return relax_structure(*job)


def _keyed_relax_job(
    keyed: tuple[str, tuple[Structure, bool, int, float, float | None]],
) -> tuple[str, RelaxResult]:
    key, job = keyed
    return key, _relax_job(job)


def relax_kind(keep_symmetry: bool, steps: int, fmax: float) -> str:
    """The crystal store's name for a relaxation with these settings (and this CHGNet)."""
    from chgnet import __version__ as chgnet_version

    mode = "fixsym" if keep_symmetry else "free"
    return f"relax-{mode}-{steps}-{fmax:g}-chgnet{chgnet_version}"


def _stored(result: RelaxResult) -> dict:
    """A result as a JSON-ready store entry (the relaxed structure as pymatgen's dict)."""
    entry = {k: v for k, v in asdict(result).items() if k != "structure"}
    entry["structure"] = result.structure.as_dict() if result.structure is not None else None
    return entry


def _from_stored(entry: dict) -> RelaxResult:
    fields = dict(entry)
    structure = fields.pop("structure")
    return RelaxResult(structure=Structure.from_dict(structure) if structure else None, **fields)


def relax_many(
    structures: Sequence[Structure],
    keep_symmetry: bool = False,
    steps: int = DEFAULT_STEPS,
    fmax: float = DEFAULT_FMAX,
    workers: int | None = None,
    progress: bool = True,
    label: str = "relax",
    time_limit: float | None = DEFAULT_TIME_LIMIT,
) -> Iterator[RelaxResult]:
    """Relax structures in order, over ``workers`` processes (default: all cores).

    Each result is kept in the crystal store as soon as it is done, and crystals relaxed before
    with the same settings are not relaxed again: a stopped run resumes where it stopped.
    (Relaxations stopped by ``time_limit`` are not kept: whether they finish depends on the
    machine's load.)
    Each worker runs CHGNet on one thread: on a few cores, separate crystals in parallel go
    faster than one crystal on several threads. Workers are spawned, not forked, because the
    parent may already hold an initialised torch thread pool.
    """
    kind = relax_kind(keep_symmetry, steps, fmax)
    store = crystal_store()
    keys = [crystal_key(structure) for structure in structures]
    stored = store.get(set(keys), kind)
    jobs = [
        (key, (structures[i], keep_symmetry, steps, fmax, time_limit))
        for key, i in missing_keys(keys, stored).items()
    ]
    workers = min(workers or default_workers(), max(len(jobs), 1))
    watchdog = None if time_limit is None else WATCHDOG_FACTOR * time_limit + WATCHDOG_GRACE
    computed = run_relax_jobs(jobs, workers, watchdog)
    fresh: dict[str, RelaxResult] = {}
    bar = tqdm(total=len(structures), desc=label, disable=not progress, unit="crystal")
    with bar, contextlib.closing(computed):
        for key in keys:
            if key in stored:
                result = _from_stored(stored[key])
            else:
                while key not in fresh:
                    done_key, done = next(computed)
                    fresh[done_key] = done
                    if not done.error.startswith(RelaxationTimedOut.__name__):
                        store.put({done_key: _stored(done)}, kind)
                result = fresh[key]
            yield result
            bar.update()


def run_relax_jobs(
    jobs: list[tuple[str, tuple]],
    workers: int,
    watchdog: float | None,
    function: Callable[[tuple[str, tuple]], tuple[str, RelaxResult]] | None = None,
) -> Iterator[tuple[str, RelaxResult]]:
    """(key, result) of every job as they finish: in this process for one worker, else over a
    spawned pool watched by a watchdog.

    The per-crystal time limit is checked between optimiser steps, so a worker stuck inside
    one CHGNet call would hold the run forever. When no result arrives for ``watchdog`` seconds,
    the jobs that were running (the first ``workers`` unfinished ones: tasks are handed out in
    order) are reported as timed out (``RelaxationTimedOut``, so not stored and retried by a
    later run), the pool is terminated and a fresh one takes the rest. ``function`` (default:
    relax with CHGNet) maps a keyed job to its keyed result."""
    function = function or _keyed_relax_job
    on_cluster = cluster_unordered(function, jobs)  # relax_structure's own time limit holds
    if on_cluster is not None:
        yield from on_cluster
        return
    if workers <= 1:
        yield from map(function, jobs)
        return
    remaining = list(jobs)
    while remaining:
        with worker_pool(workers, "spawn", initializer=_one_thread) as pool:
            results = pool.imap_unordered(function, remaining)
            try:
                while remaining:
                    key, result = results.next(timeout=watchdog)
                    remaining = [job for job in remaining if job[0] != key]
                    yield key, result
            except multiprocessing.TimeoutError:
                stuck, remaining = remaining[:workers], remaining[workers:]
                for key, (structure, *_rest) in stuck:
                    yield key, _hung_result(structure, watchdog)


def _hung_result(structure: Structure, watchdog: float | None) -> RelaxResult:
    message = f"{RelaxationTimedOut.__name__}: worker gave no result in {watchdog:.0f} s (hung)"
    nan = float("nan")
    before, _ = spacegroup_and_template(structure)
    return RelaxResult(None, nan, nan, 0, False, before, None, float(watchdog or 0), message)


def result_record(name: str, result: RelaxResult, keep_symmetry: bool) -> dict:
    """JSON-ready record of a relaxation (the structure itself is written as a CIF)."""
    record = {"file": name, "keep_symmetry": keep_symmetry}
    record.update({k: v for k, v in asdict(result).items() if k != "structure"})
    return record


def relax_dir(
    cif_dir: Path,
    out_dir: Path,
    keep_symmetry: bool = False,
    steps: int = DEFAULT_STEPS,
    fmax: float = DEFAULT_FMAX,
    progress: bool = True,
    workers: int | None = None,
    time_limit: float | None = DEFAULT_TIME_LIMIT,
    overwrite: bool = False,
) -> dict:
    """Relax every CIF of ``cif_dir`` into ``out_dir`` (same names) + ``relaxed.jsonl``, over
    ``workers`` processes (default: all cores), each crystal within ``time_limit`` seconds.
    With ``keep_symmetry`` the CIFs are written in the kept space group (symmetrised at the
    tolerance of the constraint), else in P1.

    ``out_dir`` follows the rule of every output folder (``symmcd.data.io.check_out_dir``): a
    non-empty one needs ``overwrite``; it is written in full or not at all. CIFs that cannot be
    read are listed with their reason in ``skipped.csv``; none readable is an InputError.
    Returns a summary: counts of crystals, unreadable, converged and failed ones, mean steps and
    seconds.
    """
    cif_dir = Path(cif_dir)
    if not cif_dir.is_dir():
        raise InputError(f"not a folder of CIFs: {cif_dir}")
    files = sorted(p for p in cif_dir.rglob("*.cif") if p.is_file())
    if not files:
        raise InputError(f"no .cif files in {cif_dir}")
    out = check_out_dir(out_dir, overwrite)
    try:
        names = [str(path.relative_to(cif_dir)) for path in files]
        texts = [read_text_or_empty(path) for path in files]
        structures = parse_cifs(texts, workers, progress)
        reasons = unreadable_reasons(names, texts, structures)
        if len(reasons) == len(names):
            first = names[0]
            raise InputError(
                f"none of the {len(names)} CIF(s) in {cif_dir} can be read (first: {first}: "
                f"{reasons[first]}); nothing to relax"
            )
    except BaseException:
        unlock_out_dir(out)
        raise
    readable = [i for i, structure in enumerate(structures) if structure is not None]
    records: list[dict] = [
        {
            "file": name,
            "keep_symmetry": keep_symmetry,
            "error": "unreadable",
            "reason": reasons[name],
        }
        if name in reasons
        else {}
        for name in names
    ]
    with staged_dir(out) as folder:
        results = relax_many(
            [structures[i] for i in readable],
            keep_symmetry,
            steps,
            fmax,
            workers,
            progress,
            time_limit=time_limit,
        )
        for i, result in zip(readable, results, strict=True):
            if result.structure is not None:
                target = folder / names[i]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(relaxed_cif(result.structure, keep_symmetry))
            records[i] = result_record(names[i], result, keep_symmetry)
        with open(folder / "relaxed.jsonl", "w") as handle:
            for record in records:
                handle.write(json.dumps(record) + "\n")
        skipped = pd.DataFrame(
            {"file": list(reasons), "reason": list(reasons.values())}, columns=["file", "reason"]
        )
        skipped.to_csv(folder / SKIPPED_FILE, index=False)
    return {**summarize_relaxations(records), "unreadable": len(reasons)}


def relaxed_cif(structure: Structure, keep_symmetry: bool) -> str:
    """A relaxed crystal as CIF text: symmetrised in the kept space group (spglib at SYMPREC,
    the tolerance of the FixSymmetry constraint and of ``spacegroup_after``) when the symmetry
    was kept, else P1 (or whenever symmetrising fails)."""
    if keep_symmetry:
        try:
            return str(CifWriter(structure, symprec=SYMPREC))
        except Exception:  # noqa: BLE001 - spglib cannot symmetrise every cell
            pass
    return str(CifWriter(structure))


def summarize_relaxations(records: list[dict]) -> dict:
    """Counts and means over relaxation records."""
    done = [r for r in records if not r.get("error")]
    return {
        "n": len(records),
        "relaxed": len(done),
        "failed": len(records) - len(done),
        "converged": sum(bool(r["converged"]) for r in done),
        "mean_steps": sum(r["steps"] for r in done) / len(done) if done else float("nan"),
        "mean_seconds": sum(r["seconds"] for r in done) / len(done) if done else float("nan"),
    }
