"""Parsing and validation of sampling conditions, and Wyckoff-template enumeration."""

import numpy as np
import pytest

from symmcd.errors import InputError, SymmcdError
from symmcd.sampling.conditions import (
    check_formula_size,
    element_allowed_mask,
    no_template_message,
    parse_elements,
    parse_formula,
    parse_spacegroups,
    spacegroup_weights,
    top_k_spacegroups,
)
from symmcd.sampling.plan import plan_formula, position_log_probabilities, template_weights
from symmcd.symmetry.templates import (
    FEASIBILITY_STEPS,
    PositionSlot,
    enumerate_templates,
    formula_templates,
)


def test_parse_spacegroups_accepts_strings_ints_and_lists():
    assert parse_spacegroups("225, 194") == (225, 194)
    assert parse_spacegroups(62) == (62,)
    assert parse_spacegroups([1, "230", 1]) == (1, 230)
    assert parse_spacegroups(None) is None
    assert parse_spacegroups("Fm-3m,P6_3/mmc, p 63/m m c,Pnma") == (225, 194, 62)
    assert parse_spacegroups(["P-1", 2]) == (2,)


def test_parse_spacegroups_accepts_settings_short_and_old_symbols():
    # non-standard settings, setting suffixes, cubic symbols without the bar, pre-2002 glides
    assert parse_spacegroups("P2_1/n, R-3m:H, Fm3m") == (14, 166, 225)
    assert parse_spacegroups(["R-3m:R", "Fd-3m:1", "Fd-3m:2", "P4/nmm:2"]) == (166, 227, 129)
    assert parse_spacegroups("Pbnm,Cmca,P 1 21/n 1,P12_1/c1,I2/a,Pa3,Ia3d,R3:R") == (
        62, 64, 14, 15, 205, 230, 146,
    )  # fmt: skip
    assert parse_spacegroups("P-3,P3,P-1") == (147, 143, 2)  # bars kept where they matter


def test_every_setting_symbol_names_its_own_group():
    spglib = pytest.importorskip("spglib")
    from symmcd.symmetry.tables import SG_SYMBOL, spacegroup_number

    for number, symbol in enumerate(SG_SYMBOL, start=1):
        assert spacegroup_number(str(symbol)) == number
    for hall in range(1, 531):
        kind = spglib.get_spacegroup_type(hall)
        suffix = f":{kind.choice}" if kind.choice else ""
        assert spacegroup_number(kind.international_full) == kind.number, kind.international_full
        assert spacegroup_number(kind.international_short + suffix) == kind.number


@pytest.mark.parametrize(
    ("bad", "expected"),
    [("Fm3x", "unknown space-group symbol"), ("Fm-3m:H", "no setting 'H'"), ("R-3m:X", "H, R")],
)
def test_unknown_symbols_and_settings_are_one_line_errors(bad, expected):
    with pytest.raises(InputError, match="spacegroups") as error:
        parse_spacegroups(bad)
    assert expected in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize("bad", ["0", "231", "abc", [], "225,-1", 2.5])
def test_parse_spacegroups_rejects_bad_numbers(bad):
    with pytest.raises(InputError, match="spacegroups"):
        parse_spacegroups(bad)


def test_parse_elements_and_unknown_symbols():
    assert parse_elements("Li,Fe, P,O,Li") == ("Li", "Fe", "P", "O")
    with pytest.raises(InputError, match="Xx"):
        parse_elements("Li,Xx")
    with pytest.raises(InputError, match="Og"):  # Z = 118 is beyond the 100 modelled elements
        parse_elements(["Og"])


def test_element_mask_rejects_elements_the_model_never_saw():
    marginals = np.zeros(100)
    marginals[[2, 25, 14, 7]] = 0.25  # Li Fe P O
    mask = element_allowed_mask(("Li", "O"), marginals)
    assert mask.sum() == 2 and mask[2] and mask[7]
    with pytest.raises(InputError, match="never saw U"):
        element_allowed_mask(("Li", "U"), marginals)


def test_parse_formula_keeps_counts_and_validates():
    assert parse_formula("LiFePO4") == {"Li": 1, "Fe": 1, "P": 1, "O": 4}
    assert parse_formula("Na2Cl2") == {"Na": 2, "Cl": 2}  # never reduced silently
    assert parse_formula("Li100O100") == {"Li": 100, "O": 100}
    for bad in ["Li0.5O", "Xx2O", "", "((("]:
        with pytest.raises(InputError, match="formula"):
            parse_formula(bad)


def test_spacegroup_weights_restrict_training_distribution():
    train = np.zeros(230)
    train[[224, 193, 61]] = [0.5, 0.3, 0.2]
    np.testing.assert_allclose(spacegroup_weights(train, None), train)
    restricted = spacegroup_weights(train, (225, 194))
    np.testing.assert_allclose(restricted[[224, 193]], [0.5 / 0.8, 0.3 / 0.8])
    unseen = spacegroup_weights(train, (1, 2))
    np.testing.assert_allclose(unseen[[0, 1]], [0.5, 0.5])
    assert top_k_spacegroups(train, 2) == (225, 194)
    assert top_k_spacegroups(train, 10) == (225, 194, 62)
    with pytest.raises(InputError):
        top_k_spacegroups(train, 0)


# Fm-3m (225) in pyxtal order: 192l, 96k, 96j, 48i, 48h, 48g, 32f, 24e, 24d, 8c, 4b, 4a
FM3M_SLOTS = [
    PositionSlot(i, m, fixed)
    for i, (m, fixed) in enumerate(
        [
            (192, False),
            (96, False),
            (96, False),
            (48, False),
            (48, False),
            (48, False),
            (32, False),
            (24, False),
            (24, True),
            (8, True),
            (4, True),
            (4, True),
        ]
    )
]


def test_rock_salt_template_is_4a_plus_4b():
    templates = enumerate_templates(225, FM3M_SLOTS, {"Na": 1, "Cl": 1}, 8, 4)
    z4 = [t for t in templates if t.z == 4]
    assert {(t.wyckoff_indices, t.elements) for t in z4} == {
        ((10, 11), ("Na", "Cl")),
        ((11, 10), ("Na", "Cl")),
    }
    assert all(t.z == 4 for t in templates)


def test_fixed_positions_hold_one_orbit_and_limits_apply():
    slots = [PositionSlot(0, 2, False), PositionSlot(1, 1, True)]
    templates = enumerate_templates(1, slots, {"A": 3}, 3, 5)
    assert {t.wyckoff_indices for t in templates} == {(0, 1)}
    assert enumerate_templates(1, slots, {"A": 3}, 2, 5) == []
    assert enumerate_templates(1, [PositionSlot(0, 1, False)], {"A": 3}, 3, 2) == []
    assert len(enumerate_templates(1, [PositionSlot(0, 1, False)], {"A": 1}, 50, 50, 7)) == 7


def test_template_weights_follow_orbit_counts():
    slots = [PositionSlot(0, 2, False), PositionSlot(1, 1, True), PositionSlot(2, 1, True)]
    templates = enumerate_templates(2, slots, {"A": 2}, 2, 4)
    weights = template_weights(templates, np.array([0.0, 1.0, 0.0]))
    for template, weight in zip(templates, weights, strict=True):
        assert weight == pytest.approx(1.0 if template.num_orbits == 1 else 0.0)


def test_error_message_names_formula_and_groups():
    message = no_template_message({"Li": 1, "Fe": 1, "P": 1, "O": 4}, (225,), 20)
    assert "225" in message and "LiFePO4" in message and "20 atoms" in message


@pytest.fixture
def tables():
    return pytest.importorskip("symmcd.symmetry.tables")


def test_nacl_in_fm3m_uses_4a_and_4b(tables):
    found = formula_templates({"Na": 1, "Cl": 1}, [225], max_atoms=8, max_orbits=20)
    letters = {
        tuple(
            sorted(tables.space_group(225).wyckoff_positions[i].letter for i in t.wyckoff_indices)
        )
        for t in found[225]
    }
    assert letters == {("a", "b")}


def test_lifepo4_in_pnma_has_a_template(tables):
    found = formula_templates({"Li": 1, "Fe": 1, "P": 1, "O": 4}, [62], max_atoms=28, max_orbits=20)
    assert found[62]
    assert all(sum(t.elements.count(el) for el in ("O",)) >= 1 for t in found[62])


def test_impossible_formula_has_no_template(tables):
    lifepo4 = {"Li": 1, "Fe": 1, "P": 1, "O": 4}
    assert formula_templates(lifepo4, [225, 229], max_atoms=20, max_orbits=20) == {}
    rock_salt_16 = formula_templates({"Na": 1, "Cl": 1}, [225], max_atoms=16, max_orbits=20)
    assert {t.z for t in rock_salt_16[225]} == {4, 8}  # 8c + (4a, 4b) holds Na8Cl8
    assert issubclass(InputError, SymmcdError)


def test_template_weights_prefer_likely_positions():
    slots = [PositionSlot(0, 2, False), PositionSlot(1, 1, True), PositionSlot(2, 1, True)]
    templates = enumerate_templates(2, slots, {"A": 2}, 2, 4)  # (0,) and (1, 2)
    log_prob = np.log(np.array([0.8, 0.1, 0.1]))
    weights = template_weights(templates, None, log_prob)
    by_indices = {t.wyckoff_indices: w for t, w in zip(templates, weights, strict=True)}
    assert by_indices[(0,)] == pytest.approx(0.8 / 0.9)
    assert by_indices[(1, 2)] == pytest.approx(0.1 / 0.9)


def test_position_log_probabilities_multiply_directions():
    marginals = np.full((15, 13), 1 / 13)
    marginals[:, 0] = 0.5
    classes = np.zeros((2, 15), dtype=int)
    classes[1, 0] = 3
    log_p = position_log_probabilities(marginals, classes)
    assert log_p[0] == pytest.approx(15 * np.log(0.5))
    assert log_p[1] == pytest.approx(14 * np.log(0.5) + np.log(1 / 13))


def test_a_formula_with_a_common_factor_is_the_exact_cell(tables):
    # NaCl in lowest terms: any number of formula units; Na4Cl4 (and Na2Cl2): exactly that cell
    free = formula_templates({"Na": 1, "Cl": 1}, [225], max_atoms=16, max_orbits=20)
    assert {t.z for t in free[225]} == {4, 8}
    exact = formula_templates({"Na": 4, "Cl": 4}, [225], max_atoms=16, max_orbits=20)
    assert {t.z for t in exact[225]} == {1}
    assert all(len(t.elements) == 2 for t in exact[225])  # 4a + 4b: Na4Cl4, never Na8Cl8
    assert formula_templates({"Na": 2, "Cl": 2}, [225], max_atoms=16, max_orbits=20) == {}
    assert "exact cell" in no_template_message({"Na": 2, "Cl": 2}, (225,), 16, 20)


def test_formulas_beyond_the_model_limits_are_refused_at_once():
    with pytest.raises(InputError, match="200 atoms, more than this model's limit of 80") as err:
        check_formula_size({"Li": 100, "O": 100}, 80, 20)
    assert "LiO" in str(err.value)  # the way out: the composition in lowest terms
    with pytest.raises(InputError, match="81 atoms"):
        check_formula_size({"Li": 80, "O": 1}, 80, 20)
    with pytest.raises(InputError, match="3 elements"):
        check_formula_size({"Li": 1, "Fe": 1, "O": 1}, 80, 2)
    check_formula_size({"Li": 79, "O": 1}, 80, 20)


def synthetic_statistics(max_atoms: int = 80, max_orbits: int = 20):
    from symmcd.data.statistics import DatasetStatistics

    return DatasetStatistics(
        spacegroup_counts=np.ones(230),
        num_orbits_counts=np.ones((230, max_orbits + 1)),
        num_atoms_counts=np.ones((230, max_atoms + 1)),
        element_counts=np.ones(100),
        site_symmetry_counts=np.ones((230, 15, 13)),
        k_mean=np.zeros(6),
        k_std=np.ones(6),
        num_crystals=230,
    )


def test_formula_search_over_all_groups_is_bounded(tables):
    # Li79O took 17 s in group 10 alone and minutes over all groups (issue #35)
    import time

    started = time.perf_counter()
    found = formula_templates(
        {"Li": 79, "O": 1}, range(1, 231), 80, 20, max_templates=1, max_steps=FEASIBILITY_STEPS
    )
    plans = plan_formula(4, synthetic_statistics(), {"Li": 79, "O": 1}, None, rng())
    # contrived: elements competing for the same fixed points
    formula_templates({"Li": 7, "Na": 7, "K": 7, "Rb": 7, "O": 5}, range(1, 231), 80, 20, 1)
    assert time.perf_counter() - started < 10
    assert 10 not in found and found  # no template in P2/m, some elsewhere
    assert all(sum(tables.WP_MULTIPLICITY[list(p.wyckoff_indices)]) == 80 for p in plans)
    with pytest.raises(InputError, match="200 atoms"):
        plan_formula(1, synthetic_statistics(), {"Li": 100, "O": 100}, None, rng())


def rng():
    return np.random.default_rng(0)
