"""Writing sampled crystals: one CIF per crystal, optionally one POSCAR per crystal (`poscar/`)
and one extxyz file, and samples.jsonl.

Everything is written into a temporary sibling folder that is renamed onto the output folder at
the end, so an error never leaves a half-written output behind.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pymatgen.core import Structure
from pymatgen.io.cif import CifWriter

# the output-folder rules live in data.io (evaluation uses them too); re-exported here
from symmcd.data.io import check_out_dir as check_out_dir
from symmcd.data.io import read_jsonl
from symmcd.data.io import staged_dir as staged_dir
from symmcd.errors import InputError

FORMATS = ("cif", "extxyz", "poscar")
CIF_DIR = "cifs"
POSCAR_DIR = "poscar"
JSONL_NAME = "samples.jsonl"
EXTXYZ_NAME = "samples.extxyz"
CIF_SYMPREC = 0.1


@dataclass(frozen=True)
class Orbit:
    """One occupied Wyckoff position of a sampled crystal (its representative point)."""

    element: str
    letter: str
    multiplicity: int
    frac_coords: tuple[float, float, float]


@dataclass
class SampledCrystal:
    """One generated crystal: the full-cell structure, what is known about how it was made
    (`metadata`, written to samples.jsonl) and, when known, its space group and orbits (used to
    write an exact symmetric CIF without a symmetry search)."""

    structure: Structure
    metadata: dict = field(default_factory=dict)
    orbits: tuple[Orbit, ...] | None = None


def parse_formats(formats: str | Sequence[str]) -> tuple[str, ...]:
    """Output formats from "cif,extxyz" or a list; each must be one of FORMATS."""
    items = formats.split(",") if isinstance(formats, str) else list(formats)
    items = [str(item).strip().lower() for item in items if str(item).strip()]
    unknown = [item for item in items if item not in FORMATS]
    if unknown or not items:
        bad = ", ".join(unknown) if unknown else "(none)"
        raise InputError(f"format: unknown output format {bad}; choose from {', '.join(FORMATS)}")
    return tuple(dict.fromkeys(items))


def cif_text(crystal: SampledCrystal) -> str:
    """A symmetric CIF: from the sampled space group and orbits when known (exact and fast),
    else symmetrised by a symmetry search (symprec 0.1), else plain P1."""
    spacegroup = crystal.metadata.get("spacegroup")
    if crystal.orbits and spacegroup:
        return orbit_cif(crystal.structure, int(spacegroup), crystal.orbits)
    try:
        return str(CifWriter(crystal.structure, symprec=CIF_SYMPREC))
    except Exception:
        return str(CifWriter(crystal.structure))


@functools.cache
def symmetry_operations_xyz(spacegroup: int) -> tuple[str, ...]:
    """All operations of a group (centring included) as CIF 'x, y, z' strings."""
    from pymatgen.core.operations import SymmOp

    from symmcd.symmetry import tables

    general = int(tables.SG_FIRST_WYCKOFF[spacegroup - 1])
    ops = tables.ORBIT_OPS[tables.ORBIT_OFFSET[general] : tables.ORBIT_OFFSET[general + 1]]
    return tuple(
        SymmOp.from_rotation_and_translation(op[:, :3], op[:, 3]).as_xyz_str() for op in ops
    )


def orbit_cif(structure: Structure, spacegroup: int, orbits: Sequence[Orbit]) -> str:
    """CIF text with the group's operations and one atom site per orbit."""
    from symmcd.symmetry import tables

    (a, b, c), (alpha, beta, gamma) = structure.lattice.abc, structure.lattice.angles
    symbol = str(tables.SG_SYMBOL[spacegroup - 1])
    lines = [
        f"data_{structure.composition.reduced_formula}",
        f"_symmetry_space_group_name_H-M   '{symbol}'",
        f"_symmetry_Int_Tables_number   {spacegroup}",
        f"_space_group_IT_number   {spacegroup}",
        f"_cell_length_a   {a:.8f}",
        f"_cell_length_b   {b:.8f}",
        f"_cell_length_c   {c:.8f}",
        f"_cell_angle_alpha   {alpha:.8f}",
        f"_cell_angle_beta   {beta:.8f}",
        f"_cell_angle_gamma   {gamma:.8f}",
        f"_cell_volume   {structure.volume:.8f}",
        f"_chemical_formula_sum   '{structure.composition.formula}'",
        "loop_",
        " _symmetry_equiv_pos_site_id",
        " _symmetry_equiv_pos_as_xyz",
    ]
    lines += [f"  {i + 1}  '{op}'" for i, op in enumerate(symmetry_operations_xyz(spacegroup))]
    lines += [
        "loop_",
        " _atom_site_type_symbol",
        " _atom_site_label",
        " _atom_site_symmetry_multiplicity",
        " _atom_site_Wyckoff_symbol",
        " _atom_site_fract_x",
        " _atom_site_fract_y",
        " _atom_site_fract_z",
        " _atom_site_occupancy",
    ]
    for i, orbit in enumerate(orbits):
        x, y, z = orbit.frac_coords
        lines.append(
            f"  {orbit.element}  {orbit.element}{i}  {orbit.multiplicity}  {orbit.letter}  "
            f"{x:.8f}  {y:.8f}  {z:.8f}  1"
        )
    return "\n".join(lines) + "\n"


def cif_name(index: int) -> str:
    return f"{CIF_DIR}/{index:06d}.cif"


def poscar_name(index: int) -> str:
    return f"{POSCAR_DIR}/{index:06d}.vasp"


def write_samples(
    folder: Path, crystals: Sequence[SampledCrystal], formats: Sequence[str], first_index: int = 0
) -> list[dict]:
    """Write the crystals into folder; returns the JSONL records (also written). A record's
    ``file`` is its CIF when CIFs are written, else its POSCAR, else its extxyz frame
    (``samples.extxyz@INDEX``); ``poscar`` names its POSCAR when POSCARs are written. Indices
    (and file names) count from ``first_index``: a chunk of a run is named as in the run."""
    records = []
    for fmt, subfolder in (("cif", CIF_DIR), ("poscar", POSCAR_DIR)):
        if fmt in formats:
            (folder / subfolder).mkdir(exist_ok=True)
    for index, crystal in enumerate(crystals, start=first_index):
        record = {"index": index}
        if "cif" in formats:
            name = cif_name(index)
            (folder / name).write_text(cif_text(crystal))
            record["file"] = name
        if "poscar" in formats:
            name = poscar_name(index)
            (folder / name).write_text(poscar_text(crystal))
            record.setdefault("file", name)
            record["poscar"] = name
        record.setdefault("file", f"{EXTXYZ_NAME}@{index}")
        record.update(crystal.metadata)
        records.append(record)
    with open(folder / JSONL_NAME, "w") as handle:
        for record in records:
            handle.write(json.dumps(record, sort_keys=False) + "\n")
    if "extxyz" in formats:
        write_extxyz(folder / EXTXYZ_NAME, crystals, first_index)
    return records


def poscar_text(crystal: SampledCrystal) -> str:
    """The crystal's full cell as a VASP POSCAR (pymatgen's writer; the comment line names the
    formula and, when known, the space group)."""
    from pymatgen.io.vasp import Poscar

    comment = crystal.structure.composition.reduced_formula
    if crystal.metadata.get("spacegroup"):
        comment += f" spacegroup {int(crystal.metadata['spacegroup'])}"
    return Poscar(crystal.structure, comment=comment).get_str(significant_figures=8)


def write_extxyz(path: Path, crystals: Sequence[SampledCrystal], first_index: int = 0) -> None:
    """All crystals in one extended-XYZ file (periodic cells, one frame per crystal)."""
    from ase.io import write
    from pymatgen.io.ase import AseAtomsAdaptor

    frames = []
    for index, crystal in enumerate(crystals, start=first_index):
        atoms = AseAtomsAdaptor.get_atoms(crystal.structure)
        atoms.info = {"index": index, "spacegroup": int(crystal.metadata.get("spacegroup", 0))}
        frames.append(atoms)
    write(str(path), frames, format="extxyz")


def read_records(out_dir: str | Path) -> list[dict]:
    """The samples.jsonl records of an output folder."""
    path = Path(out_dir) / JSONL_NAME
    if not path.is_file():
        raise InputError(f"samples: {path} does not exist")
    return read_jsonl(path)
