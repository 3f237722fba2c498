"""Bad input the README promises a one-line error for: each gives exit status 2 and a single
line naming the problem, before any long work starts."""

import time

import pytest
from cif_fixtures import UNKNOWN_ELEMENT_CIF

from symmcd.cli import main
from symmcd.evaluation.io import parse_cif_or_none


def one_line_error(capsys, argv: list[str], expected: str) -> None:
    started = time.perf_counter()
    assert main(argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert expected in lines[0]
    assert time.perf_counter() - started < 60  # refused up front, not after the work


def test_unknown_element_in_a_sample_is_unreadable_not_a_crash():
    assert parse_cif_or_none(UNKNOWN_ELEMENT_CIF) is None
    assert parse_cif_or_none(UNKNOWN_ELEMENT_CIF.replace("Xx", "Cl")) is not None


def test_evaluate_out_naming_a_file(tmp_path, capsys):
    (tmp_path / "samples").mkdir()
    (tmp_path / "samples" / "x.cif").write_text(UNKNOWN_ELEMENT_CIF)
    (tmp_path / "taken").write_text("")
    argv = ["evaluate", str(tmp_path / "samples"), "--out", str(tmp_path / "taken")]
    one_line_error(capsys, argv, "is not a directory")
    argv[-1] = str(tmp_path / "taken" / "below")
    one_line_error(capsys, argv, "is not a directory")


def test_sample_out_that_cannot_be_created(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    argv = ["sample", "--n", "2", "--steps", "2", "--out", str(tmp_path / "file" / "out")]
    one_line_error(capsys, argv, "cannot create")


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["sample", "--n", "200000000", "--out", "OUT"], "crystals in one folder would fill"),
        (["sample", "--n", "2", "--spacegroups", "Fm3x", "--out", "OUT"], "space-group symbol"),
        (["sample", "--n", "2", "--spacegroups", "231", "--out", "OUT"], "231"),
        (["sample", "--n", "2", "--elements", "Li,Qq", "--out", "OUT"], "Qq"),
        (["sample", "--n", "2", "--formula", "Li2Xx", "--out", "OUT"], "Xx"),
        (["sample", "--n", "2", "--repulsion", "9", "--out", "OUT"], "repulsion"),
        (["sample", "--n", "2", "--checkpoint", "missing.pt", "--out", "OUT"], "not found"),
        (["sample", "--n", "2", "--guidance", "2", "--out", "OUT"], "guidance: 2.0 weighs"),
        (["sample", "--n", "2", "--spacegroups", "Fm-3m:H", "--out", "OUT"], "no setting 'H'"),
        (["sample", "--n", "2", "--formula", "Li100O100", "--out", "OUT"], "cell of 200 atoms"),
        (["csp", "Li100O100", "--spacegroups", "P2_1/x", "--out", "OUT"], "P2_1/x"),
    ],
)
def test_bad_sampling_options(tmp_path, capsys, argv, expected):
    argv = [str(tmp_path / "out") if a == "OUT" else a for a in argv]
    one_line_error(capsys, argv, expected)
    assert not (tmp_path / "out").exists()


def test_property_predict_out_naming_a_directory(tmp_path, capsys):
    # issue #35: IsADirectoryError after predicting; now refused before the model is read
    (tmp_path / "cifs").mkdir()
    (tmp_path / "taken").mkdir()
    argv = ["property", "predict", str(tmp_path / "cifs"), "--model", "missing.pt"]
    one_line_error(capsys, [*argv, "--out", str(tmp_path / "taken")], "is a directory")
