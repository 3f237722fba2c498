"""Per-crystal results on disk, keyed by the crystal's content, so no crystal is worked on twice.

Structures parsed from CIFs (``stored_structures``), descriptors and fingerprints
(``summary.py``), formation energies (``stored_numbers``, for the distributions stage) and CHGNet
relaxations (``relax.py``) are stored crystal by crystal in one
SQLite file, ``~/.cache/symmcd/summaries/crystals.sqlite``: a set that shares crystals with one
evaluated before (the one-draw and the redrawing run of one seed, a folder grown by more samples)
only works on its new crystals, and a stopped evaluation resumes where it stopped. Each entry is
JSON under (crystal key, kind); the kind names what was computed and with which settings, so a
change of settings never reads stale rows.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
from pymatgen.core import Structure
from tqdm import tqdm

SHIPPED_CACHE = Path(__file__).resolve().parent / "data" / "cache"
STORE_NAME = "crystals.sqlite"
STORE_BATCH = 200  # crystals worked on between writes: at most this many are lost to a stop
_CHUNK = 500  # keys per SELECT (SQLite's limit on bound parameters is 32,766 by default)


def cache_dir() -> Path:
    """Where derived data (fingerprints, summaries, energies, the crystal store) is cached:
    ``$SYMMCD_CACHE`` or ``~/.cache/symmcd``."""
    return Path(os.environ.get("SYMMCD_CACHE", Path.home() / ".cache" / "symmcd"))


def cached_file(relative: str | Path) -> Path | None:
    """A derived file by its path inside the cache: the user's cached copy, else the copy
    shipped with the package for the default MP-20 files (``data/cache/``, made by
    ``python -m symmcd.evaluation.build_data --cache``), else None."""
    for root in (cache_dir(), SHIPPED_CACHE):
        if (root / relative).is_file():
            return root / relative
    return None


def crystal_key(structure: Structure) -> str:
    """Content key of one crystal: sha256 of its lattice, species and fractional coordinates, so
    the same crystal gets the same key whichever file it was read from."""
    digest = hashlib.sha256()
    digest.update(np.asarray(structure.lattice.matrix, dtype=np.float64).tobytes())
    digest.update(" ".join(site.species_string for site in structure).encode())
    digest.update(np.asarray(structure.frac_coords, dtype=np.float64).tobytes())
    return digest.hexdigest()


def missing_keys(keys: list[str | None], known: dict[str, dict]) -> dict[str, int]:
    """Each distinct key of ``keys`` absent from ``known`` (and not None), with the index of its
    first occurrence, in order: the crystals still to be worked on, each once."""
    missing: dict[str, int] = {}
    for index, key in enumerate(keys):
        if key is not None and key not in known and key not in missing:
            missing[key] = index
    return missing


class CrystalStore:
    """JSON entries keyed by (crystal key, kind) in one SQLite file. An unreadable file makes the
    store a no-op (with a warning): entries are then recomputed, never wrong."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._connect() as connection:
                connection.execute(
                    "CREATE TABLE IF NOT EXISTS entries "
                    "(key TEXT, kind TEXT, value TEXT, PRIMARY KEY (key, kind))"
                )
            self.usable = True
        except (OSError, sqlite3.Error) as error:
            self.usable = False
            warnings.warn(
                f"crystal cache {self.path} unusable ({error}); computing every crystal "
                "(delete the file to rebuild it)",
                stacklevel=2,
            )

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """A connection that commits on success and is always closed."""
        connection = sqlite3.connect(self.path, timeout=60)
        try:
            with connection:
                yield connection
        finally:
            connection.close()

    def get(self, keys: set[str], kind: str) -> dict[str, dict]:
        """The stored entries of ``kind`` among ``keys``."""
        if not self.usable or not keys:
            return {}
        wanted = sorted(keys)
        found: dict[str, dict] = {}
        try:
            with self._connect() as connection:
                for start in range(0, len(wanted), _CHUNK):
                    chunk = wanted[start : start + _CHUNK]
                    marks = ",".join("?" * len(chunk))
                    query = f"SELECT key, value FROM entries WHERE kind = ? AND key IN ({marks})"
                    for key, value in connection.execute(query, [kind, *chunk]):
                        found[key] = json.loads(value)
        except sqlite3.Error:
            return {}
        return found

    def put(self, entries: dict[str, dict], kind: str) -> None:
        """Store entries (JSON values, numpy arrays and scalars) by key, in one transaction; a
        failure (full disk, locked file) only costs a recomputation next time."""
        if not self.usable or not entries:
            return
        records = [
            (key, kind, json.dumps(value, default=_json_default)) for key, value in entries.items()
        ]
        with contextlib.suppress(sqlite3.Error), self._connect() as connection:
            connection.executemany("INSERT OR REPLACE INTO entries VALUES (?, ?, ?)", records)

    def put_as_they_come(
        self,
        pairs: Iterable[tuple[str, object]],
        kind: str,
        to_entry: Callable[[object], dict] | None = None,
    ) -> Iterator[tuple[str, object]]:
        """Pass each (key, value) of ``pairs`` on as it comes, storing its entry (the value, or
        ``to_entry(value)``) ``STORE_BATCH`` at a time and the rest at the end: a run stopped
        part-way keeps every batch it finished."""
        pending: dict[str, dict] = {}
        for key, value in pairs:
            pending[key] = value if to_entry is None else to_entry(value)
            if len(pending) == STORE_BATCH:
                self.put(pending, kind)
                pending = {}
            yield key, value
        self.put(pending, kind)


def _json_default(value):
    """JSON form of the numpy values in an entry (floats round-trip exactly)."""
    if isinstance(value, np.ndarray | np.generic):
        return value.tolist()
    raise TypeError(f"cannot store a {type(value).__name__}")


def stored_numbers(
    structures: Sequence[Structure],
    kind: str,
    compute: Callable[[list[Structure]], np.ndarray],
    progress: bool = False,
    label: str = "",
) -> np.ndarray:
    """One number per structure (a formation energy, say): read from the store where it holds
    one under ``kind``, the others computed by ``compute`` (each distinct crystal once,
    ``STORE_BATCH`` at a time) and stored as they come, so a stopped run loses one batch."""
    store = crystal_store()
    keys = [crystal_key(s) for s in structures]
    known = store.get(set(keys), kind)
    todo = missing_keys(keys, known)
    todo_keys = list(todo)

    def computed() -> Iterator[tuple[str, dict]]:
        for start in range(0, len(todo_keys), STORE_BATCH):
            batch = todo_keys[start : start + STORE_BATCH]
            values = compute([structures[todo[key]] for key in batch])
            yield from ((key, {"value": float(v)}) for key, v in zip(batch, values, strict=True))

    bar = tqdm(total=len(todo), desc=label, disable=not progress or not todo, unit="crystal")
    with bar:
        for key, entry in store.put_as_they_come(computed(), kind):
            known[key] = entry
            bar.update()
    return np.array([known[key]["value"] for key in keys], dtype=float)


def _structure_entry(structure: Structure | None) -> dict:
    return {"structure": None if structure is None else structure.as_dict()}


def structure_kind() -> str:
    """The crystal store's name for structures parsed from CIF texts (by this pymatgen)."""
    from pymatgen.core import __version__ as pymatgen_version

    return f"structure-from-cif-pymatgen{pymatgen_version}"


def stored_structures(
    texts: Sequence[str],
    parse: Callable[[list[str]], Iterable[Structure | None]],
    progress: bool = False,
    label: str = "read CIFs",
) -> list[Structure | None]:
    """The structure of each CIF text (None: unreadable), one object per entry, keyed in the
    store by the text's sha256: those it holds are read back, the others parsed by ``parse``
    (each distinct text once, in order) and stored ``STORE_BATCH`` at a time as they come."""
    store, kind = crystal_store(), structure_kind()
    keys = [hashlib.sha256(text.encode()).hexdigest() for text in texts]
    known = store.get(set(keys), kind)
    todo = missing_keys(keys, known)
    results = zip(todo, parse([texts[index] for index in todo.values()]), strict=True)
    stored = store.put_as_they_come(results, kind, to_entry=_structure_entry)
    shown = {"total": len(keys), "initial": len(keys) - len(todo), "unit": "CIF"}
    parsed: dict[str, Structure | None] = dict(
        tqdm(stored, desc=label, disable=not progress, **shown)
    )
    structures: list[Structure | None] = []
    for index, key in enumerate(keys):
        if todo.get(key) == index:  # parsed in this call
            structures.append(parsed[key])
            continue
        if key in known:
            entry = known[key]["structure"]
        else:  # a repeat of a text parsed in this call: an object of its own
            entry = parsed[key].as_dict() if parsed[key] is not None else None
        structures.append(None if entry is None else Structure.from_dict(entry))
    return structures


def crystal_store() -> CrystalStore:
    """The store under the cache folder (``$SYMMCD_CACHE`` or ``~/.cache/symmcd``)."""
    return CrystalStore(cache_dir() / "summaries" / STORE_NAME)
