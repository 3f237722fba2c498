"""Reading crystal structures: CSVs of CIFs in the CDVAE layout, or folders of ``.cif`` files.

A *record* is a pair ``(id, cif_text)``. Readers yield records lazily and never parse the CIF, so
that parsing (the slow part) can run in worker processes; :func:`parse_cif` and
:func:`check_structure` turn one record into a validated pymatgen ``Structure``.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import json
import os
import shutil
import socket
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
from pymatgen.core import Structure
from pymatgen.io.cif import CifParser

from symmcd.errors import InputError, StructureError
from symmcd.symmetry.encoding import NUM_ELEMENTS

CIF_COLUMN = "cif"
ID_COLUMN = "material_id"
MAX_ATOMIC_NUMBER = NUM_ELEMENTS  # elements are indexed Z - 1 in 0..99

Record = tuple[str, str]


def is_csv(path: Path) -> bool:
    """True for ``.csv`` and ``.csv.gz`` files."""
    name = path.name.lower()
    return name.endswith(".csv") or name.endswith(".csv.gz")


def iter_csv_records(path: Path) -> Iterator[Record]:
    """Records of a CDVAE-layout CSV: column ``cif``, ids from ``material_id`` or the row number."""
    try:
        frame = pd.read_csv(path, dtype={ID_COLUMN: str})
    except (OSError, ValueError, pd.errors.ParserError) as error:
        raise InputError(f"cannot read CSV {path}: {error}") from None
    if CIF_COLUMN not in frame.columns:
        raise InputError(
            f"CSV {path} has no '{CIF_COLUMN}' column (columns: {list(frame.columns)})"
        )
    if ID_COLUMN in frame.columns:
        ids = frame[ID_COLUMN].astype(str)
    else:
        ids = pd.Series([f"{path.name.split('.')[0]}-{i}" for i in range(len(frame))])
    for record_id, cif in zip(ids, frame[CIF_COLUMN], strict=True):
        yield record_id, cif if isinstance(cif, str) else ""


def cif_files(folder: Path) -> list[Path]:
    """The ``.cif`` files of a folder (any case of the suffix), sorted by name."""
    return sorted(p for p in folder.iterdir() if p.suffix.lower() == ".cif" and p.is_file())


def iter_folder_records(path: Path) -> Iterator[Record]:
    """Records of every ``*.cif`` file in a folder (sorted by name; the id is the file stem)."""
    files = cif_files(path)
    if not files:
        raise InputError(f"folder {path} contains no .cif files")
    for file in files:
        yield file.stem, file.read_text(errors="replace")


def iter_records(source: Path | str) -> Iterator[Record]:
    """Records of a CSV (``.csv`` / ``.csv.gz``), a folder of CIFs, or a single ``.cif`` file."""
    source = Path(source)
    if not source.exists():
        raise InputError(f"input not found: {source}")
    if source.is_dir():
        return iter_folder_records(source)
    if is_csv(source):
        return iter_csv_records(source)
    if source.suffix.lower() == ".cif":
        return iter([(source.stem, source.read_text(errors="replace"))])
    raise InputError(f"unsupported input {source}: expected a .csv, .csv.gz, .cif or a folder")


def parse_cif(cif_text: str, name: str = "<cif>") -> Structure:
    """Parse one CIF into a pymatgen ``Structure``; ``StructureError`` naming ``name`` if broken."""
    if not cif_text or not cif_text.strip():
        raise StructureError(f"{name}: empty CIF")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parser = CifParser.from_str(cif_text)
            structure = parser.parse_structures(primitive=False, on_error="raise")[0]
    except Exception as error:  # pymatgen raises many kinds of errors on broken CIFs
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise StructureError(f"{name}: unreadable CIF ({message})") from None
    if len(structure) == 0:
        raise StructureError(f"{name}: CIF has no atoms")
    return structure


def check_structure(structure: Structure, name: str = "<structure>") -> Structure:
    """Refuse what symmcd cannot represent: disorder, vacancies, elements outside Z 1..100."""
    if not structure.is_ordered:
        raise StructureError(f"{name}: partial occupancy / disorder is not supported")
    for site in structure:
        specie = site.specie
        z = getattr(specie, "Z", None)
        if z is None or not 1 <= z <= MAX_ATOMIC_NUMBER:
            symbol = getattr(specie, "symbol", specie)
            raise StructureError(f"{name}: element {symbol} outside Z 1..{MAX_ATOMIC_NUMBER}")
    return structure


def read_structure(cif_text: str, name: str = "<cif>") -> Structure:
    """Parse and check one CIF (see :func:`parse_cif`, :func:`check_structure`)."""
    return check_structure(parse_cif(cif_text, name), name)


def check_writable_parent(path: Path) -> None:
    """InputError unless ``path`` can be created: its nearest existing parent must be a folder
    this process may write in (checked before any work, so a long run cannot fail at its end).
    Checked by creating and removing a probe file, so it holds for root, read-only mounts and
    ACLs alike (``os.access`` says yes to root everywhere)."""
    parent = path.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise InputError(f"out: cannot create {path}: {parent} is not a directory")
    if not can_write_in(parent):
        raise InputError(f"out: cannot create {path}: {parent} is not writable")


def make_folder(path: Path) -> Path:
    """Create the folder ``path`` (and its parents) or raise an InputError saying why not (a file
    in the way, no permission)."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InputError(f"out: cannot create folder {path}: {error.strerror or error}") from None
    return path


def can_write_in(folder: Path) -> bool:
    """True when a file can be created (and removed) in ``folder``: tried with a probe file."""
    try:
        handle, probe = tempfile.mkstemp(prefix=".symmcd-probe-", dir=folder)
    except OSError:
        return False
    os.close(handle)
    try:
        os.unlink(probe)
    except OSError:
        return False
    return True


def check_writable_file(path: Path) -> None:
    """InputError unless ``path`` names a file this process can write: not an existing folder,
    and creatable (:func:`check_writable_parent`) or, if it exists, writable."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"out: {path} is a directory; give the path of a file to write")
    if path.exists() and not os.access(path, os.W_OK):
        raise InputError(f"out: cannot write {path}: the file is not writable")
    check_writable_parent(path)


# ---------------------------------------------------------------------------------------------
# Output folders: one rule for every command that writes a folder (sample, csp, evaluate,
# relax). An existing non-empty folder is refused without overwrite; writability is checked
# before any work; one run owns the folder (OUT.lock next to it, holding the owner's PID) from
# check_out_dir until staged_dir has put the result in place.

LOCK_SUFFIX = ".lock"
STALE_EMPTY_LOCK_SECONDS = 10.0  # a lock file still empty after this long lost its writer
_held_locks: set[Path] = set()  # lock files this process holds


def lock_path(out_dir: Path) -> Path:
    """The lock file of an output folder: ``OUT.lock`` next to it."""
    out_dir = Path(out_dir)
    return out_dir.with_name(out_dir.name + LOCK_SUFFIX)


def check_out_dir(out_dir: str | Path, overwrite: bool) -> Path:
    """The output folder as a Path, checked before any work: not a file, empty unless
    ``overwrite``, writable (and its parent, where the staging folder goes), and not being
    written by another run. Takes the folder's lock (:func:`lock_out_dir`) for this run;
    :func:`staged_dir` releases it (so does the end of the process)."""
    path = Path(out_dir)
    if path.exists() and not path.is_dir():
        raise InputError(f"out: {path} exists and is not a directory")
    if path.is_dir():
        if any(path.iterdir()) and not overwrite:
            raise InputError(
                f"out: {path} is not empty (pass --overwrite / overwrite=True to replace it)"
            )
        if not can_write_in(path):
            raise InputError(f"out: cannot write into {path}: the folder is not writable")
    check_writable_parent(path)
    lock_out_dir(path)
    return path


@contextlib.contextmanager
def staged_dir(out_dir: Path) -> Iterator[Path]:
    """A temporary folder next to out_dir that replaces it on success and vanishes on error.
    Holds out_dir's lock (taken here unless :func:`check_out_dir` took it) until the end."""
    out_dir = Path(out_dir)
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        lock_out_dir(out_dir)
        staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    except OSError as error:
        unlock_out_dir(out_dir)
        raise InputError(f"out: cannot create {out_dir}: {error.strerror or error}") from None
    try:
        try:
            yield staging
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        if out_dir.exists():
            shutil.rmtree(out_dir)
        staging.rename(out_dir)
    finally:
        unlock_out_dir(out_dir)


def lock_out_dir(out_dir: Path) -> Path:
    """Take ``OUT.lock`` (created with O_EXCL, holding this PID and host) for this process.
    Already ours: nothing to do. Held by a live process: InputError naming the folder and the
    PID. Left by a process that is gone: taken over, so a killed run never blocks a rerun."""
    out_dir = Path(out_dir)
    lock = lock_path(out_dir).absolute()
    if lock in _held_locks and _lock_owner(lock) == (os.getpid(), socket.gethostname()):
        return lock
    lock.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(5):
        try:
            handle = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            owner = _lock_owner(lock)
            if owner == (os.getpid(), socket.gethostname()):
                break  # left by this process (an earlier run that stopped before writing)
            if _owner_alive(lock, owner):
                raise InputError(_in_use_message(out_dir, lock, owner)) from None
            with contextlib.suppress(FileNotFoundError):
                lock.unlink()  # stale: its run is gone
            remove_staging_left(out_dir)
            continue
        except OSError as error:
            raise InputError(f"out: cannot create {lock}: {error.strerror or error}") from None
        with os.fdopen(handle, "w") as file:
            file.write(f"{os.getpid()}\n{socket.gethostname()}\n")
        break
    else:
        raise InputError(f"out: cannot take the lock {lock} of {out_dir}; remove it and retry")
    if not _held_locks:  # registering twice is harmless: the second call finds nothing
        atexit.unregister(_release_all_locks)
        atexit.register(_release_all_locks)
    _held_locks.add(lock)
    return lock


def remove_staging_left(out_dir: Path) -> None:
    """Remove the staging folders (:func:`staged_dir`) a killed run left next to ``out_dir``:
    called when its stale lock is taken over, so no live run can own them."""
    out_dir = Path(out_dir)
    for staging in out_dir.parent.glob(f".{glob.escape(out_dir.name)}.tmp-*"):
        if staging.is_dir():
            shutil.rmtree(staging, ignore_errors=True)


def unlock_out_dir(out_dir: Path) -> None:
    """Give back ``OUT.lock`` if this process holds it."""
    lock = lock_path(Path(out_dir)).absolute()
    if lock in _held_locks:
        _held_locks.discard(lock)
        if _lock_owner(lock) == (os.getpid(), socket.gethostname()):
            with contextlib.suppress(OSError):
                lock.unlink()


def _release_all_locks() -> None:
    for lock in list(_held_locks):
        unlock_out_dir(lock.with_name(lock.name[: -len(LOCK_SUFFIX)]))


def _lock_owner(lock: Path) -> tuple[int, str] | None:
    """(PID, host) written in a lock file; None when missing, empty or unreadable."""
    try:
        lines = lock.read_text().split()
        return int(lines[0]), lines[1] if len(lines) > 1 else socket.gethostname()
    except (OSError, ValueError, IndexError):
        return None


def _owner_alive(lock: Path, owner: tuple[int, str] | None) -> bool:
    if owner is None:  # being written right now, or junk: stale once old enough
        try:
            age = time.time() - lock.stat().st_mtime
        except OSError:
            return False
        return age < STALE_EMPTY_LOCK_SECONDS
    pid, host = owner
    if host != socket.gethostname():
        return True  # another machine's process: cannot tell, so respect it
    return pid_alive(pid)


def pid_alive(pid: int) -> bool:
    """True when process ``pid`` exists on this machine (and is not a zombie)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's live process
    except OSError:
        return False
    try:  # a finished child nobody has waited for still answers kill(pid, 0)
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _in_use_message(out_dir: Path, lock: Path, owner: tuple[int, str] | None) -> str:
    if owner is None:
        who = "another symmcd run (starting now)"
    elif owner[1] != socket.gethostname():
        who = f"another symmcd run (PID {owner[0]} on {owner[1]})"
    else:
        who = f"another symmcd run (PID {owner[0]})"
    return (
        f"out: {out_dir} is being written by {who}; wait for it to finish or choose another "
        f"folder (if that run is gone, remove {lock})"
    )


def read_jsonl(path: Path) -> list[dict]:
    """The records of a JSON-lines file; ``InputError`` naming the first bad line."""
    records = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            raise InputError(f"{path}: line {number} is not valid JSON") from None
    return records
