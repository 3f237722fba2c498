"""Tests of structure prediction (`symmcd csp`): template retrieval, substitution, refinement,
ranking, and one-line errors."""

import numpy as np
import pandas as pd
import pytest
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Element, Lattice, Structure

from symmcd.cli import main
from symmcd.csp import csp_to_dir, predict_structures
from symmcd.csp.pipeline import pool_from_structures, ranking_key, units_of
from symmcd.csp.substitution import SubstitutionTable, element_roles
from symmcd.csp.templates import assign_elements, retrieve, shipped_pool
from symmcd.errors import InputError
from symmcd.sampling.sampler import refine_templates
from symmcd.symmetry.lattice import k_to_lattice
from symmcd.symmetry.tables import WP_LETTER

Z = {symbol: Element(symbol).Z - 1 for symbol in ("Li", "Na", "K", "Cs", "F", "Cl", "Br", "O")}


def rocksalt(a: str, b: str, length: float = 5.6) -> Structure:
    return Structure.from_spacegroup(225, Lattice.cubic(length), [a, b], [[0, 0, 0], [0.5] * 3])


def cesium_chloride(a: str, b: str, swap: bool = False) -> Structure:
    sites = [[0.5] * 3, [0, 0, 0]] if swap else [[0, 0, 0], [0.5] * 3]
    return Structure.from_spacegroup(221, Lattice.cubic(4.1), [a, b], sites)


@pytest.fixture(scope="module")
def small_pool(tmp_path_factory):
    folder = tmp_path_factory.mktemp("templates")
    crystals = {
        "rs_nacl": rocksalt("Na", "Cl"),
        "rs_kbr": rocksalt("K", "Br", 6.6),
        "rs_kcl": rocksalt("K", "Cl", 6.3),
        "cscl_cscl": cesium_chloride("Cs", "Cl"),
        "cscl_csbr": cesium_chloride("Cs", "Br", swap=True),
    }
    for name, structure in crystals.items():
        structure.to(filename=str(folder / f"{name}.cif"))
    return pool_from_structures(folder)


def test_retrieval_puts_the_query_on_the_likeliest_known_structure_type(small_pool):
    table = SubstitutionTable.from_pool(shipped_pool())
    found = retrieve({Z["Li"]: 1, Z["F"]: 1}, small_pool, table, limit=5)
    assert [t.spacegroup for t in found] == [225, 221]  # one template per prototype
    best = found[0]
    assert sorted(best.elements.tolist()) == sorted([Z["Li"], Z["F"]])
    assert best.material_id.startswith("rs_")
    # the cell shrinks for the smaller Li and F
    volume = abs(np.linalg.det(k_to_lattice(best.k)))
    assert volume < abs(np.linalg.det(k_to_lattice(small_pool.k[best.pool_index].astype(float))))


def test_origin_shifted_orbits_are_one_prototype(small_pool):
    letters = {
        small_pool.ids[i]: sorted(
            str(WP_LETTER[w]) for w in small_pool.orbit_wyckoff[small_pool.orbits(i)]
        )
        for i in range(len(small_pool))
    }
    assert letters["cscl_cscl"] == letters["cscl_csbr"] == ["a", "b"]
    keys = dict(zip(small_pool.ids.tolist(), small_pool.prototype, strict=True))
    assert keys["cscl_cscl"] == keys["cscl_csbr"]
    assert keys["rs_nacl"] == keys["rs_kbr"] != keys["cscl_cscl"]


def test_elements_are_assigned_by_count_and_likelihood():
    table = SubstitutionTable.from_pool(shipped_pool())
    mapping, _ = assign_elements({Z["Na"]: 2, Z["O"]: 1}, {Z["Li"]: 2, Z["O"]: 1}, table)
    assert mapping == {Z["Na"]: Z["Li"], Z["O"]: Z["O"]}
    # both counts 1: the anion goes to the anion's site
    mapping, _ = assign_elements({Z["Na"]: 1, Z["Cl"]: 1}, {Z["F"]: 1, Z["K"]: 1}, table)
    assert mapping == {Z["Na"]: Z["K"], Z["Cl"]: Z["F"]}
    assert assign_elements({Z["Na"]: 1, Z["Cl"]: 1}, {Z["Li"]: 2, Z["O"]: 1}, table) is None
    assert element_roles({Z["Na"]: 1, Z["Cl"]: 1}) == {(1, 0): Z["Na"], (1, 1): Z["Cl"]}


def test_learned_substitutions_are_chemical():
    table = SubstitutionTable.from_pool(shipped_pool())
    for element, likely, unlikely in (("Na", "K", "Br"), ("Cl", "Br", "Na"), ("O", "F", "Li")):
        row = table.log_prob[Z[element]]
        assert row[Z[likely]] > row[Z[unlikely]] + 1.0


def test_shipped_pool_holds_train_and_val_but_no_test_crystal():
    pool = shipped_pool()
    test_ids = set(
        pd.read_csv("symmcd/data/mp20/test.csv.gz", usecols=["material_id"])["material_id"]
    )
    assert len(pool) == 21_762
    assert not test_ids & set(pool.ids.tolist())


def test_refinement_keeps_group_sites_and_elements_and_varies_geometry(small_pool):
    table = SubstitutionTable.from_pool(shipped_pool())
    templates = retrieve({Z["Li"]: 1, Z["F"]: 1}, small_pool, table, limit=2)
    units = units_of(templates)
    wyckoff = np.concatenate([t.wyckoff for t in templates])
    first = refine_templates(units, wyckoff, start=0.3, steps=10, seed=0, progress=False)
    second = refine_templates(units, wyckoff, start=0.3, steps=10, seed=1, progress=False)
    for crystal, template in zip(first, templates, strict=True):
        assert crystal.metadata["spacegroup"] == template.spacegroup
        assert crystal.structure.composition.reduced_formula == "LiF"
        assert crystal.metadata["refined_from"] == 0.3
    volumes = [c.structure.volume for c in first + second]
    assert not np.allclose(volumes[:2], volumes[2:])
    with pytest.raises(InputError, match="start"):
        refine_templates(units, wyckoff, start=1.5, progress=False)


def test_candidates_have_the_formula_and_are_ranked():
    candidates = predict_structures("NaCl", n=4, steps=5, seed=1, progress=False)
    assert [c.rank for c in candidates] == [1, 2, 3, 4]
    keys = [ranking_key(c) for c in candidates]
    assert keys == sorted(keys)  # the pool has more than 4 AB structure types: one each
    assert len({c.template for c in candidates}) == 4
    assert all(np.isfinite(c.energy_per_atom) for c in candidates)
    for candidate in candidates:
        assert candidate.structure.composition.reduced_formula == "NaCl"
        assert candidate.stage in ("retrieved", "refined")
        assert candidate.template and candidate.prototype_rank >= 1
    matcher = StructureMatcher(stol=0.5, angle_tol=10, ltol=0.3)
    assert any(matcher.fit(c.structure, rocksalt("Na", "Cl")) for c in candidates)


def test_a_stoichiometry_without_templates_is_generated(small_pool):
    candidates = predict_structures(
        "Li2O", n=3, steps=5, seed=0, templates=small_pool, progress=False
    )
    assert len(candidates) == 3
    assert {c.stage for c in candidates} == {"generated"}
    assert all(c.structure.composition.reduced_formula == "Li2O" for c in candidates)


def test_csp_to_dir_writes_cifs_and_a_ranking(tmp_path, small_pool):
    out = tmp_path / "csp"
    table = csp_to_dir(out, ["NaCl", "MgO"], n=3, steps=5, progress=False)
    saved = pd.read_csv(out / "ranking.csv")
    assert len(saved) == len(table) == 6
    assert set(saved["formula"]) == {"NaCl", "MgO"}
    assert {"stage", "template", "substitution", "prototype_rank"} <= set(saved.columns)
    for row in saved.itertuples():
        structure = Structure.from_file(out / row.file)
        assert structure.composition.reduced_formula == row.formula
    assert (saved.groupby("formula")["rank"].diff().dropna() == 1).all()


def test_cli_csp_with_user_templates(tmp_path, small_pool):
    folder = tmp_path / "mine"
    folder.mkdir()
    rocksalt("Na", "Cl").to(filename=str(folder / "nacl.cif"))
    out = tmp_path / "out"
    assert (
        main(
            [
                "csp",
                "KBr",
                "--n",
                "2",
                "--steps",
                "4",
                "--templates",
                str(folder),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    saved = pd.read_csv(out / "ranking.csv")
    assert set(saved["template"]) == {"nacl"}
    assert set(saved["spacegroup"]) == {225}


@pytest.mark.parametrize(
    ("formula", "message"),
    [("Xx2O", "unknown element"), ("Li0.5O", "integer"), ("Li500O", "atoms")],
)
def test_bad_formulas_give_one_line_errors(tmp_path, capsys, formula, message):
    with pytest.raises(InputError, match=message):
        csp_to_dir(tmp_path / "bad", [formula], n=2, steps=2, progress=False)
    assert not (tmp_path / "bad").exists()
    assert main(["csp", formula, "--n", "2", "--steps", "2", "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_missing_templates_is_a_one_line_error(tmp_path, capsys):
    args = ["csp", "NaCl", "--templates", str(tmp_path / "none"), "--out", str(tmp_path / "o")]
    assert main(args) == 2
    assert "templates" in capsys.readouterr().err


def test_refinement_batches_are_bounded_by_image_pairs():
    from symmcd.sampling.sampler import MAX_IMAGE_PAIRS, bounded_batches

    assert bounded_batches(np.array([10, 10, 10]), 2) == [(0, 2), (2, 3)]
    big = MAX_IMAGE_PAIRS // 2 + 1
    assert bounded_batches(np.array([big, big, 5, MAX_IMAGE_PAIRS * 3]), 500) == [
        (0, 1),
        (1, 3),
        (3, 4),
    ]
    assert bounded_batches(np.zeros(0, dtype=int), 10) == []
