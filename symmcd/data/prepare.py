"""``prepare``: CIFs -> asymmetric units -> one cache file per split + training statistics.

For every input row: parse the CIF, refuse disorder and unknown elements, find the asymmetric unit
(``AsymmetricUnit.from_structure``) and rebuild its conventional cell. Rows are processed in
parallel chunks; a bad row is skipped and reported (``<split>_skipped.csv``: id, reason), never
fatal. Output in ``out_dir``: ``<split>.npz`` (see ``symmcd.data.dataset`` for the format),
``<split>_skipped.csv``, ``statistics.json`` (from the train split) and ``prepare.json``
(a summary of the run).
"""

from __future__ import annotations

import csv
import json
import math
import multiprocessing
import os
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from functools import cache
from importlib import resources
from pathlib import Path

import numpy as np
from tqdm import tqdm

from symmcd.data.dataset import (
    CACHE_FORMAT_VERSION,
    CrystalCache,
    CrystalRecord,
    cache_version,
    load_cache,
    wrap_unit_interval,
)
from symmcd.data.io import Record, cif_files, iter_records, make_folder, read_structure
from symmcd.data.statistics import DatasetStatistics, compute_statistics
from symmcd.errors import InputError, StructureError, SymmcdError, SymmetryError
from symmcd.symmetry.asymmetric_unit import AsymmetricUnit
from symmcd.symmetry.tables import WP_LETTER, WP_MULTIPLICITY, WP_SITE_SYMMETRY, WP_SPACEGROUP

CHUNK_SIZE = 64
STATISTICS_FILE = "statistics.json"
SUMMARY_FILE = "prepare.json"
MP20_SPLITS = ("train", "val", "test")


@cache
def _global_wyckoff_lookup() -> dict[tuple[int, str], int]:
    """(space group, letter) -> global Wyckoff index."""
    return {
        (int(sg), str(letter)): g
        for g, (sg, letter) in enumerate(zip(WP_SPACEGROUP, WP_LETTER, strict=True))
    }


@cache
def _element_index(symbol: str) -> int:
    """Element symbol -> Z - 1."""
    from pymatgen.core import Element

    return Element(symbol).Z - 1


MIN_ATOM_DISTANCE = 0.5  # Å: sampling's collapse threshold; no MP-20 crystal comes closer


def crystal_record(record_id: str, cif_text: str, symprec: float = 0.1) -> CrystalRecord:
    """Prepare one crystal; raises ``SymmcdError`` subclasses on rows that cannot be used.

    The rebuilt conventional cell must have the input's reduced composition and as many atoms as
    the orbit multiplicities add up to, so that a faulty symmetry analysis skips the row rather
    than storing a wrong crystal.
    """
    structure = read_structure(cif_text, record_id)
    if len(structure) > 1 and not structure.is_valid(tol=MIN_ATOM_DISTANCE):
        raise StructureError(
            f"{record_id}: two atoms closer than {MIN_ATOM_DISTANCE} Å (overlapping sites)"
        )
    asu = AsymmetricUnit.from_structure(structure, symprec=symprec)
    lookup = _global_wyckoff_lookup()
    wyckoff = np.array([lookup[(int(asu.spacegroup), str(w))] for w in asu.wyckoff_letters])
    full_cell = asu.to_structure()
    if len(full_cell) != int(WP_MULTIPLICITY[wyckoff].sum()):
        raise SymmetryError(f"{record_id}: conventional cell size differs from the orbit sizes")
    if full_cell.composition.reduced_formula != structure.composition.reduced_formula:
        raise SymmetryError(
            f"{record_id}: asymmetric unit gives {full_cell.composition.reduced_formula}, "
            f"input is {structure.composition.reduced_formula}"
        )
    return CrystalRecord(
        id=record_id,
        spacegroup=int(asu.spacegroup),
        k=np.asarray(asu.k, dtype=np.float64),
        orbit_element=np.array([_element_index(str(s)) for s in asu.species], dtype=np.int64),
        orbit_frac_coords=wrap_unit_interval(np.asarray(asu.frac_coords, dtype=np.float64)),
        orbit_wyckoff=wyckoff,
        orbit_multiplicity=WP_MULTIPLICITY[wyckoff],
        orbit_site_symmetry=WP_SITE_SYMMETRY[wyckoff],
        atom_element=np.array(full_cell.atomic_numbers, dtype=np.int64) - 1,
        atom_frac_coords=wrap_unit_interval(np.asarray(full_cell.frac_coords, dtype=np.float64)),
    )


def _skip_reason(error: Exception, record_id: str) -> str:
    """One line: the message of a ``SymmcdError`` (without the id), else type and message."""
    lines = str(error).strip().splitlines()
    message = lines[0] if lines else ""
    if isinstance(error, SymmcdError):
        message = message.removeprefix(f"{record_id}: ")
        return message or type(error).__name__
    return f"{type(error).__name__}: {message}"[:300]


@contextmanager
def _quiet_spglib() -> Iterator[None]:
    """Silence spglib's C-level warnings (they would interleave with the progress bar)."""
    previous = os.environ.get("SPGLIB_WARNING")
    os.environ["SPGLIB_WARNING"] = "OFF"
    try:
        yield
    finally:
        if previous is None:
            del os.environ["SPGLIB_WARNING"]
        else:
            os.environ["SPGLIB_WARNING"] = previous


def _prepare_chunk(args: tuple[list[Record], float]) -> list[tuple[str, CrystalRecord | None, str]]:
    """Worker: prepare a chunk of rows; each result is (id, record or None, skip reason)."""
    rows, symprec = args
    results = []
    with _quiet_spglib():
        for record_id, cif_text in rows:
            try:
                results.append((record_id, crystal_record(record_id, cif_text, symprec), ""))
            except Exception as error:  # any failure on one row skips that row only
                results.append((record_id, None, _skip_reason(error, record_id)))
    return results


def _chunks(rows: list[Record], size: int) -> Iterable[list[Record]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def prepare_rows(
    rows: list[Record], symprec: float, workers: int, desc: str = "prepare"
) -> tuple[list[CrystalRecord], list[tuple[str, str]]]:
    """Prepare rows in parallel; return kept records (input order) and (id, reason) skips."""
    kept: list[CrystalRecord] = []
    skipped: list[tuple[str, str]] = []
    tasks = [(chunk, symprec) for chunk in _chunks(rows, CHUNK_SIZE)]
    progress = tqdm(total=len(rows), desc=desc, unit="crystal", smoothing=0.05)
    if workers <= 1 or len(tasks) <= 1:
        results = map(_prepare_chunk, tasks)
        pool = None
    else:
        pool = multiprocessing.get_context().Pool(workers)
        results = pool.imap(_prepare_chunk, tasks)
    try:
        for chunk_results in results:
            for record_id, record, reason in chunk_results:
                if record is None:
                    skipped.append((record_id, reason))
                else:
                    kept.append(record)
            progress.update(len(chunk_results))
    finally:
        progress.close()
        if pool is not None:
            pool.close()
            pool.join()
    return kept, skipped


def _source_key(sources: list[Path], symprec: float) -> str:
    """Identifies the inputs of a split cache: every input file's path, size and modification
    time (for a folder, each of its ``.cif`` files), symprec and the cache format version."""
    described = []
    for source in sources:
        files = cif_files(source) if source.is_dir() else [source]
        for path in files:
            stat = path.stat()
            described.append([str(path.resolve()), stat.st_size, stat.st_mtime_ns])
    return json.dumps({"sources": described, "symprec": symprec, "version": CACHE_FORMAT_VERSION})


def _reusable_cache(path: Path, key: str) -> CrystalCache | None:
    """The existing cache at ``path`` when it is current and was built from the same inputs."""
    if not path.is_file() or cache_version(path) != CACHE_FORMAT_VERSION:
        return None
    with np.load(path, allow_pickle=False) as npz:
        stored_key = str(npz["source_key"]) if "source_key" in npz.files else ""
    return load_cache(path) if stored_key == key else None


def write_skipped(path: Path, skipped: list[tuple[str, str]]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "reason"])
        writer.writerows(skipped)


def _check_sources(sources: dict[str, list[Path]]) -> dict[str, list[Path]]:
    if not sources:
        raise InputError("no input given to prepare")
    checked = {}
    for split, paths in sources.items():
        if isinstance(paths, str | Path):
            paths = [paths]
        paths = [Path(p) for p in paths]
        for path in paths:
            if not path.exists():
                raise InputError(f"input for split '{split}' not found: {path}")
        checked[split] = paths
    return checked


def prepare_dataset(
    sources: dict[str, list[Path]],
    out_dir: Path,
    symprec: float = 0.1,
    workers: int | None = None,
    overwrite: bool = False,
    verbose: bool = True,
    refuse_empty: bool = False,
) -> dict:
    """Prepare every split of ``sources`` (split name -> CSVs / CIF folders) into ``out_dir``.

    A split whose cache is current (same format version, inputs and symprec) is reused unless
    ``overwrite``. Returns the summary also written to ``out_dir/prepare.json``. ``verbose``
    prints what was kept and skipped and where (off for a temporary ``out_dir``, whose paths
    would point at files that are gone by the time the user reads them). ``refuse_empty``
    (the CLI's setting) raises an InputError naming the first reason when a split keeps no
    crystal, instead of writing an empty cache.
    """
    say = print if verbose else _quiet
    sources = _check_sources(sources)
    if not 0 < symprec < math.inf:
        raise InputError(f"symprec must be a positive number (Å), got {symprec}")
    out_dir = make_folder(Path(out_dir))
    workers = workers or os.cpu_count() or 1
    summary: dict = {"format_version": CACHE_FORMAT_VERSION, "symprec": symprec, "splits": {}}
    caches: dict[str, CrystalCache] = {}
    for split, paths in sources.items():
        started = time.perf_counter()
        cache_path = out_dir / f"{split}.npz"
        skipped_path = out_dir / f"{split}_skipped.csv"
        key = _source_key(paths, symprec)
        existing = None if overwrite else _reusable_cache(cache_path, key)
        if existing is not None:
            caches[split] = existing
            num_skipped = _count_rows(skipped_path)
            say(f"{split}: reusing {cache_path} ({len(existing)} crystals)")
        else:
            rows = [row for path in paths for row in iter_records(path)]
            kept, skipped = prepare_rows(rows, symprec, workers, desc=split)
            if refuse_empty and not kept:
                write_skipped(skipped_path, skipped)
                raise InputError(_nothing_kept(split, paths, skipped, skipped_path))
            caches[split] = CrystalCache.from_records(kept, symprec=symprec, source_key=key)
            caches[split].save(cache_path)
            write_skipped(skipped_path, skipped)
            num_skipped = len(skipped)
            say(f"{split}: kept {len(kept)}, skipped {num_skipped} (see {skipped_path})")
        summary["splits"][split] = {
            "sources": [str(p) for p in paths],
            "cache": str(cache_path),
            "kept": len(caches[split]),
            "skipped": num_skipped,
            "skipped_report": str(skipped_path),
            "seconds": round(time.perf_counter() - started, 2),
        }
    if "train" in caches and len(caches["train"]) > 0:
        statistics = compute_statistics(caches["train"].records())
        save_statistics(statistics, out_dir / STATISTICS_FILE)
        summary["statistics"] = str(out_dir / STATISTICS_FILE)
    else:
        say("no non-empty train split: statistics.json not written")
    (out_dir / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n")
    splits = summary["splits"].values()
    say(
        f"prepared {sum(s['kept'] for s in splits)} crystals, "
        f"skipped {sum(s['skipped'] for s in splits)} ("
        + ", ".join(
            f"{name}: {s['kept']} kept / {s['skipped']} skipped"
            for name, s in summary["splits"].items()
        )
        + f") in {out_dir}"
    )
    return summary


def _nothing_kept(split: str, paths: list[Path], skipped, skipped_path: Path) -> str:
    """The refusal of a split none of whose inputs could be prepared."""
    where = ", ".join(str(p) for p in paths)
    if not skipped:
        return f"split '{split}': no crystals in {where}; nothing prepared"
    first_id, reason = skipped[0]
    return (
        f"split '{split}': none of the {len(skipped)} crystal(s) in {where} could be prepared "
        f"(first: {first_id}: {reason}); every reason in {skipped_path}"
    )


def _quiet(*_args, **_kwargs) -> None:
    """``print`` that prints nothing."""


def _count_rows(skipped_path: Path) -> int:
    if not skipped_path.is_file():
        return 0
    with skipped_path.open() as handle:
        return max(sum(1 for _ in handle) - 1, 0)


def save_statistics(statistics: DatasetStatistics, path: Path) -> Path:
    path.write_text(json.dumps(statistics.to_dict()) + "\n")
    return path


def load_statistics(path: Path | str) -> DatasetStatistics:
    """Read ``statistics.json`` written by ``prepare``."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"statistics file not found: {path} (run `symmcd prepare` first)")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise InputError(f"statistics file {path} is not valid JSON ({error})") from None
    return DatasetStatistics.from_dict(data)


def split_cache_path(data_dir: Path, split: str) -> Path:
    """The cache file of one split in a prepared data folder."""
    path = Path(data_dir) / f"{split}.npz"
    if not path.is_file():
        raise InputError(f"no {split} cache {path.name} in {data_dir}: run `symmcd prepare` first")
    return path


DEFAULT_DATA_DIR = Path.home() / ".cache" / "symmcd" / "mp20"


def resolve_data_dir(data_dir: Path | None, prepare_default: bool = True) -> Path:
    """``data_dir`` if it is a folder; without one, the shipped MP-20 prepared once into
    ``DEFAULT_DATA_DIR`` (``prepare_default=False``: only its path, for launched copies)."""
    if data_dir is not None:
        data_dir = Path(data_dir)
        if not data_dir.is_dir():
            raise InputError(f"data folder not found: {data_dir}")
        return data_dir
    if prepare_default and not (DEFAULT_DATA_DIR / STATISTICS_FILE).is_file():
        prepare_mp20(DEFAULT_DATA_DIR)
    return DEFAULT_DATA_DIR


def mp20_sources() -> dict[str, list[Path]]:
    """The MP-20 splits shipped with the package (see ``symmcd/data/mp20/README.md``)."""
    folder = Path(str(resources.files("symmcd.data") / "mp20"))
    return {split: [folder / f"{split}.csv.gz"] for split in MP20_SPLITS}


def prepare_mp20(
    out_dir: Path,
    symprec: float = 0.1,
    workers: int | None = None,
    overwrite: bool = False,
    splits: tuple[str, ...] = MP20_SPLITS,
) -> dict:
    """``prepare_dataset`` on the shipped MP-20 splits."""
    unknown = set(splits) - set(MP20_SPLITS)
    if unknown:
        raise InputError(f"unknown MP-20 split(s) {sorted(unknown)}; choose from {MP20_SPLITS}")
    sources = {split: paths for split, paths in mp20_sources().items() if split in splits}
    return prepare_dataset(sources, out_dir, symprec=symprec, workers=workers, overwrite=overwrite)
