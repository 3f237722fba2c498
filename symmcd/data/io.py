"""Reading crystal structures: CSVs of CIFs in the CDVAE layout, or folders of ``.cif`` files.

A *record* is a pair ``(id, cif_text)``. Readers yield records lazily and never parse the CIF, so
that parsing (the slow part) can run in worker processes; :func:`parse_cif` and
:func:`check_structure` turn one record into a validated pymatgen ``Structure``.
"""

from __future__ import annotations

import json
import os
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
    this process may write in (checked before any work, so a long run cannot fail at its end)."""
    parent = path.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise InputError(f"out: cannot create {path}: {parent} is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"out: cannot create {path}: {parent} is not writable")


def check_writable_file(path: Path) -> None:
    """InputError unless ``path`` names a file this process can write: not an existing folder,
    and creatable (:func:`check_writable_parent`) or, if it exists, writable."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"out: {path} is a directory; give the path of a file to write")
    if path.exists() and not os.access(path, os.W_OK):
        raise InputError(f"out: cannot write {path}: the file is not writable")
    check_writable_parent(path)


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
