"""Writers: CIF / extxyz / samples.jsonl, staged output folders and out-dir errors."""

import json

import pytest
from ase.io import read as ase_read
from pymatgen.core import Lattice, Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from symmcd.errors import InputError
from symmcd.sampling.writers import (
    SampledCrystal,
    check_out_dir,
    parse_formats,
    read_records,
    staged_dir,
    write_samples,
)


def rock_salt() -> SampledCrystal:
    structure = Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]
    )
    return SampledCrystal(structure, {"spacegroup": 225, "formula": "NaCl", "num_sites": 8})


def test_writes_cif_extxyz_and_jsonl(tmp_path):
    out = tmp_path / "out"
    with staged_dir(out) as folder:
        write_samples(folder, [rock_salt(), rock_salt()], ("cif", "extxyz"))
    records = read_records(out)
    assert [r["file"] for r in records] == ["cifs/000000.cif", "cifs/000001.cif"]
    assert records[0]["spacegroup"] == 225
    back = Structure.from_file(out / records[1]["file"])
    assert len(back) == 8
    assert SpacegroupAnalyzer(back, symprec=0.1).get_space_group_number() == 225
    assert len(ase_read(out / records[0]["file"])) == 8
    frames = ase_read(out / "samples.extxyz", index=":")
    assert len(frames) == 2 and frames[1].info["spacegroup"] == 225
    assert not list(tmp_path.glob(".out.tmp-*"))


def test_error_inside_staging_leaves_nothing(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(RuntimeError):
        with staged_dir(out) as folder:
            (folder / "partial.txt").write_text("x")
            raise RuntimeError("boom")
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_out_dir_checks(tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(InputError, match="not empty"):
        check_out_dir(tmp_path / "full", overwrite=False)
    assert check_out_dir(tmp_path / "full", overwrite=True) == tmp_path / "full"
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="not a directory"):
        check_out_dir(tmp_path / "file", overwrite=True)
    (tmp_path / "empty").mkdir()
    check_out_dir(tmp_path / "empty", overwrite=False)


def test_overwrite_replaces_old_content(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("old")
    with staged_dir(out) as folder:
        write_samples(folder, [rock_salt()], ("cif",))
    assert not (out / "old.txt").exists()
    assert json.loads((out / "samples.jsonl").read_text())["formula"] == "NaCl"


def test_parse_formats():
    assert parse_formats("cif, extxyz") == ("cif", "extxyz")
    with pytest.raises(InputError, match="xyz"):
        parse_formats("xyz")
    with pytest.raises(InputError):
        parse_formats("")
