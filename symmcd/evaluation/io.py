"""Reading generated samples and reference data sets for evaluation.

Samples come as a folder written by ``symmcd sample`` (CIFs + ``samples.jsonl``), any folder of
``.cif`` files, or a CSV of CIFs in the CDVAE layout (column ``cif``). A CIF that cannot be read
stays in the set as ``None`` so that it counts as invalid instead of vanishing from denominators.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from pymatgen.core import Structure

from symmcd.data.io import read_jsonl, read_structure
from symmcd.errors import InputError, StructureError
from symmcd.evaluation.store import stored_structures
from symmcd.evaluation.workers import default_workers, ordered_map

PARALLEL_PARSE_MIN = 64  # fewer CIFs than this are parsed in-process (a pool costs ~0.1 s)

PACKAGE_DATA = Path(__file__).resolve().parent.parent / "data" / "mp20"
DEFAULT_REFERENCE = PACKAGE_DATA / "test.csv.gz"
DEFAULT_TRAIN = (PACKAGE_DATA / "train.csv.gz", PACKAGE_DATA / "val.csv.gz")


@dataclass
class CrystalSet:
    """Crystals in file order; ``structures[i] is None`` when entry ``i`` could not be parsed."""

    names: list[str]
    structures: list[Structure | None]
    requested_spacegroups: list[int | None] = field(default_factory=list)
    formation_energies: np.ndarray | None = None  # DFT eV/atom where the file carries them
    source: Path | None = None
    reasons: dict[str, str] = field(default_factory=dict)  # name -> why it is unreadable

    def __len__(self) -> int:
        return len(self.structures)

    @property
    def unreadable(self) -> list[str]:
        """Names of the entries whose structure could not be parsed."""
        return [n for n, s in zip(self.names, self.structures, strict=True) if s is None]

    def skipped_table(self) -> pd.DataFrame:
        """One row (file, reason) per unreadable entry, in file order."""
        names = self.unreadable
        reasons = [self.reasons.get(name, "unreadable CIF") for name in names]
        return pd.DataFrame({"file": names, "reason": reasons}, columns=["file", "reason"])


def unreadable_reasons(
    names: Sequence[str], texts: Sequence[str], structures: Sequence[Structure | None]
) -> dict[str, str]:
    """Why each entry that parsed to None is unreadable (the StructureError of
    ``read_structure``; re-parsed here, in-process: only the unreadable ones)."""
    reasons = {}
    for name, text, structure in zip(names, texts, structures, strict=True):
        if structure is None:
            reasons[name] = unreadable_reason(text)
    return reasons


def unreadable_reason(text: str) -> str:
    """The reason ``read_structure`` refuses a CIF text (without a name prefix)."""
    if not text:
        return "missing, unreadable or empty file"
    try:
        read_structure(text, "CIF")
    except StructureError as error:
        message = str(error)
        return message[len("CIF: ") :] if message.startswith("CIF: ") else message
    return "unreadable CIF"


def file_digest(paths: Path | list[Path]) -> str:
    """sha256 of the concatenated bytes of one or more files (cache key for derived data)."""
    digest = hashlib.sha256()
    for path in [paths] if isinstance(paths, Path) else paths:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def parse_cif_or_none(text: str) -> Structure | None:
    """Parse one CIF string as ``symmcd.data.io.read_structure`` does; ``None`` (unreadable:
    invalid in every metric) for a broken CIF, no atoms, disorder or an unknown element."""
    try:
        return read_structure(text)
    except StructureError:
        return None


def read_cif_file(path: Path) -> Structure | None:
    """Parse a CIF file; ``None`` when missing or unreadable."""
    return parse_cif_or_none(read_text_or_empty(path))


def read_text_or_empty(path: Path) -> str:
    """A file's text, or "" (which parses as unreadable) when it cannot be read."""
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def parse_cifs(
    texts: Sequence[str],
    workers: int | None = None,
    progress: bool = False,
    label: str = "read CIFs",
) -> list[Structure | None]:
    """``parse_cif_or_none`` of every text, in order, over ``workers`` processes (default: all
    cores).

    Why a pool: pymatgen expands a symmetrised CIF's orbits with its symmetry operations, tens of
    ms per generated crystal, minutes for a 10,000-crystal sample set on one core. Why the
    crystal store: reading a stored structure back is about 7 times faster than parsing it, so a
    stopped or repeated evaluation does not parse its CIFs again."""

    def parse(todo: list[str]) -> Iterator[Structure | None]:
        workers_used = workers or default_workers()
        return ordered_map(parse_cif_or_none, todo, workers_used, 16, PARALLEL_PARSE_MIN)

    return stored_structures(texts, parse, progress, label)


def read_csv_of_cifs(
    path: Path, workers: int | None = None, progress: bool = False, lazy: bool = False
) -> CrystalSet:
    """Read a CDVAE-layout CSV (column ``cif``; optional ``material_id``, formation energy);
    ``lazy`` parses each CIF only when its structure is first asked for."""
    if not path.is_file():
        raise InputError(f"reference/sample file not found: {path}")
    try:
        frame = pd.read_csv(path)
    except Exception as error:  # noqa: BLE001
        raise InputError(f"cannot read CSV {path}: {error}") from None
    if "cif" not in frame.columns:
        raise InputError(f"CSV {path} has no 'cif' column")
    if len(frame) == 0:
        raise InputError(f"CSV {path} has no rows")
    names = (
        frame["material_id"].astype(str).tolist()
        if "material_id" in frame.columns
        else [f"row{i}" for i in range(len(frame))]
    )
    energies = None
    if "formation_energy_per_atom" in frame.columns:
        energies = frame["formation_energy_per_atom"].to_numpy(dtype=float)
    texts = [str(text) for text in frame["cif"]]
    if lazy:
        structures = LazyStructures(texts)
    else:
        structures = parse_cifs(texts, workers, progress, f"read {path.name}")
    requested = [None] * len(frame)
    reasons = {} if lazy else unreadable_reasons(names, texts, structures)
    return CrystalSet(names, structures, requested, energies, path, reasons)


def read_sample_folder(
    folder: Path, workers: int | None = None, progress: bool = False
) -> CrystalSet:
    """Read a ``symmcd sample`` folder (uses ``samples.jsonl`` when present) or a folder of CIFs."""
    index = folder / "samples.jsonl"
    if index.is_file():
        records = read_jsonl(index)
        names = [str(r.get("file", f"entry{i}")) for i, r in enumerate(records)]
        requested = [_as_int_or_none(r.get("spacegroup")) for r in records]
    else:
        files = sorted(p for p in folder.rglob("*.cif") if p.is_file())
        names = [str(p.relative_to(folder)) for p in files]
        requested = [None] * len(names)
    if not names:
        raise InputError(f"no samples found in {folder} (no samples.jsonl entries, no .cif files)")
    texts = [read_text_or_empty(folder / name) for name in names]
    structures = parse_cifs(texts, workers, progress, f"read {folder.name}")
    reasons = unreadable_reasons(names, texts, structures)
    return CrystalSet(names, structures, requested, None, folder, reasons)


def _as_int_or_none(value: object) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def load_samples(path: Path, workers: int | None = None, progress: bool = False) -> CrystalSet:
    """Read samples from a folder or a CSV of CIFs (parsed over ``workers`` processes); raise
    ``InputError`` when there are none."""
    path = Path(path)
    if path.is_dir():
        return read_sample_folder(path, workers, progress)
    if path.is_file() and path.name.endswith((".csv", ".csv.gz")):
        return read_csv_of_cifs(path, workers, progress)
    if path.is_file() and path.suffix == ".cif":
        text = read_text_or_empty(path)
        structures = [parse_cif_or_none(text)]
        reasons = unreadable_reasons([path.name], [text], structures)
        return CrystalSet([path.name], structures, [None], None, path, reasons)
    raise InputError(f"samples not found or not a folder/CSV/CIF: {path}")


def load_reference(
    path: Path, workers: int | None = None, progress: bool = False, lazy: bool = False
) -> CrystalSet:
    """Read a reference set (CSV of CIFs or a sample folder); raise ``InputError`` when missing.
    ``lazy`` (CSV only) defers parsing: when its descriptors are cached, few structures are
    ever needed."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"reference file not found: {path}")
    if lazy and path.is_file() and path.name.endswith((".csv", ".csv.gz")):
        return read_csv_of_cifs(path, workers, progress, lazy=True)
    reference = load_samples(path, workers, progress)
    if all(structure is None for structure in reference.structures):
        first = reference.unreadable[0] if reference.unreadable else None
        why = f" (first: {first}: {reference.reasons.get(first, 'unreadable')})" if first else ""
        raise InputError(
            f"reference {path}: none of its {len(reference)} crystal(s) can be read{why}"
        )
    return reference


def load_cif_texts(paths: list[Path]) -> list[str]:
    """CIF texts of several CSV files / folders in order, without parsing them (cheap)."""
    texts: list[str] = []
    for path in map(Path, paths):
        if not path.exists():
            raise InputError(f"training file not found: {path}")
        if path.is_dir():
            index = path / "samples.jsonl"
            files = (
                [path / r["file"] for r in read_jsonl(index) if "file" in r]
                if index.is_file()
                else sorted(p for p in path.rglob("*.cif") if p.is_file())
            )
            texts += [p.read_text(errors="replace") if p.is_file() else "" for p in files]
        else:
            try:
                frame = pd.read_csv(path, usecols=["cif"])
            except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as error:
                # EmptyDataError is a ValueError; a missing cif column raises ValueError
                message = str(error).splitlines()[0] if str(error) else type(error).__name__
                raise InputError(
                    f"training file {path}: not a CSV with a cif column ({message})"
                ) from None
            texts += [str(t) for t in frame["cif"]]
    return texts


class LazyStructures:
    """A sequence of structures parsed from CIF texts on first access (novelty needs only the
    few training crystals that share a formula with a sample)."""

    def __init__(self, texts: list[str]) -> None:
        self._texts = texts
        self._parsed: dict[int, Structure | None] = {}

    def __len__(self) -> int:
        return len(self._texts)

    def __getitem__(self, index: int) -> Structure | None:
        if index not in self._parsed:
            self._parsed[index] = parse_cif_or_none(self._texts[index])
        return self._parsed[index]


def write_subsample_csv(source: Path, n: int, seed: int, folder: Path) -> Path:
    """A seeded random subsample of ``n`` rows of a CSV of CIFs, written to ``folder`` (rows in
    original order, so the same arguments give the same bytes and hit the same caches)."""
    frame = pd.read_csv(source)
    if n <= 0 or n >= len(frame):
        return Path(source)
    rows = np.sort(np.random.default_rng(seed).choice(len(frame), n, replace=False))
    path = Path(folder) / f"{Path(source).name.split('.')[0]}_subsample_{n}_seed{seed}.csv"
    frame.iloc[rows].to_csv(path, index=False)
    return path
