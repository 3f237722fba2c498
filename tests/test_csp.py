"""Tests of structure prediction (`symmcd csp`): exact formulas, ranking, one-line errors."""

import pandas as pd
import pytest
from pymatgen.core import Structure

from symmcd.cli import main
from symmcd.csp import csp_to_dir, predict_structures
from symmcd.errors import InputError


def test_candidates_have_the_formula_and_are_ranked_by_energy():
    candidates = predict_structures("NaCl", n=4, steps=5, seed=1, progress=False)
    assert len(candidates) == 4
    assert [c.rank for c in candidates] == [1, 2, 3, 4]
    energies = [c.energy_per_atom for c in candidates]
    assert energies == sorted(energies)
    assert sorted(c.index for c in candidates) == [0, 1, 2, 3]
    for candidate in candidates:
        assert candidate.structure.composition.reduced_formula == "NaCl"
        assert candidate.formula == "NaCl"


def test_csp_to_dir_writes_cifs_and_a_ranking(tmp_path):
    out = tmp_path / "csp"
    table = csp_to_dir(out, ["NaCl", "MgO"], n=3, steps=5, progress=False)
    saved = pd.read_csv(out / "ranking.csv")
    assert len(saved) == len(table) == 6
    assert set(saved["formula"]) == {"NaCl", "MgO"}
    for row in saved.itertuples():
        structure = Structure.from_file(out / row.file)
        assert structure.composition.reduced_formula == row.formula
    assert saved.groupby("formula")["energy_per_atom"].is_monotonic_increasing.all()


@pytest.mark.parametrize(
    ("formula", "message"),
    [("Xx2O", "unknown element"), ("Li0.5O", "integer"), ("Li500O", "template")],
)
def test_bad_formulas_give_one_line_errors(tmp_path, capsys, formula, message):
    with pytest.raises(InputError, match=message):
        csp_to_dir(tmp_path / "bad", [formula], n=2, steps=2, progress=False)
    assert not (tmp_path / "bad").exists()
    assert main(["csp", formula, "--n", "2", "--steps", "2", "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
