"""Tests of symmcd.evaluation on a handful of hand-made crystals."""

from __future__ import annotations

import importlib
import json

import numpy as np
import pandas as pd
import pytest
from pymatgen.core import Composition, Lattice, Structure
from scipy.spatial.distance import jensenshannon

from symmcd.errors import InputError
from symmcd.evaluation import evaluate
from symmcd.evaluation import store as store_module
from symmcd.evaluation import summary as summary_module
from symmcd.evaluation.coverage import (
    composition_fingerprint,
    coverage,
    scale_composition_fingerprints,
    structure_fingerprint,
)
from symmcd.evaluation.distributions import spacegroup_jsd, wasserstein
from symmcd.evaluation.io import load_samples
from symmcd.evaluation.novelty import novel_mask, unique_mask
from symmcd.evaluation.templates import spacegroup_and_template, template_statistics
from symmcd.evaluation.validity import (
    CLOSE_CONTACT_DISTANCE,
    composition_is_valid,
    structure_is_valid,
)

evaluate_module = importlib.import_module("symmcd.evaluation.evaluate")


def rock_salt(a: float = 5.64) -> Structure:
    return Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(a), ["Na", "Cl"], [[0, 0, 0], [0.5] * 3]
    )


def cesium_chloride() -> Structure:
    return Structure(Lattice.cubic(4.12), ["Cs", "Cl"], [[0, 0, 0], [0.5] * 3])


def silicon() -> Structure:
    return Structure.from_spacegroup("Fd-3m", Lattice.cubic(5.43), ["Si"], [[0, 0, 0]])


def magnesium_oxide() -> Structure:
    return Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(4.21), ["Mg", "O"], [[0, 0, 0], [0.5] * 3]
    )


def test_two_atoms_closer_than_half_angstrom_are_invalid():
    close = Structure(Lattice.cubic(5.0), ["Na", "Cl"], [[0, 0, 0], [0.06, 0, 0]])  # 0.3 A
    assert not structure_is_valid(close)
    assert structure_is_valid(rock_salt())


def test_atoms_under_one_angstrom_pass_the_field_test_but_not_the_close_contact_one():
    close = Structure(Lattice.cubic(5.0), ["Na", "Cl"], [[0, 0, 0], [0.16, 0, 0]])  # 0.8 A
    assert structure_is_valid(close)
    assert not structure_is_valid(close, min_distance=CLOSE_CONTACT_DISTANCE)
    assert structure_is_valid(rock_salt(), min_distance=CLOSE_CONTACT_DISTANCE)


def test_atom_too_close_to_its_own_periodic_image_is_invalid():
    thin = Structure(Lattice.orthorhombic(0.4, 5.0, 5.0), ["Fe"], [[0, 0, 0]])
    assert not structure_is_valid(thin)


def test_smact_composition_validity():
    assert composition_is_valid(Composition("NaCl"))
    assert not composition_is_valid(Composition("NaCl2"))
    assert composition_is_valid(Composition("Fe3Ni"))  # all metals: alloy
    assert composition_is_valid(Composition("Si8"))  # single element


def test_composition_validity_equals_smact_and_stays_fast_on_many_elements():
    import time
    import warnings

    from smact.screening import smact_validity

    from symmcd.evaluation.io import DEFAULT_REFERENCE

    formulas = pd.read_csv(DEFAULT_REFERENCE, usecols=["pretty_formula"], nrows=400)
    formulas = sorted(set(formulas["pretty_formula"])) + ["Fe2O3", "NaCl2", "HeO", "CsAu", "LiXe"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for formula in formulas:
            reduced, _ = Composition(formula).get_integer_formula_and_factor()
            try:
                expected = smact_validity(
                    Composition(reduced), oxidation_states_set="smact14", include_alloys=True
                )
            except Exception:  # noqa: BLE001 - unknown to SMACT counts as invalid
                expected = False
            assert composition_is_valid(Composition(formula)) == bool(expected), formula
    # 19 elements: SMACT's exhaustive product of oxidation states would run for hours
    started = time.perf_counter()
    composition_is_valid(Composition("CaLaHfMgZrTaNbAl3Zn3GaCo6NiAgSIO5"))
    assert time.perf_counter() - started < 10


def smact2_validity(formula: str) -> bool:
    """A line-by-line port of SMACT 2.x's ``smact_validity`` as CDVAE / DiffCSP call it:
    elements in order of atomic number, counts reduced by their gcd, the exhaustive product of
    oxidation states, charge balance at exactly those counts, and the Pauling test with its
    ``TypeError`` (no electronegativity) read as a pass."""
    import itertools
    import warnings

    import smact

    composition = Composition(formula)
    symbols = sorted((e.symbol for e in composition), key=lambda s: Composition(s).elements[0].Z)
    counts = np.array([int(composition[s]) for s in symbols])
    counts = counts // np.gcd.reduce(counts)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        elements = [smact.Element(s) for s in symbols]
    electronegs = [e.pauling_eneg for e in elements]
    # He, Ne, Ar have none (None: SMACT 2.x's product raised on them; counted invalid here)
    ox_combos = [e.oxidation_states_smact14 or [] for e in elements]
    if len(set(symbols)) == 1:
        return True
    if all(s in smact.metals for s in symbols):
        return True

    def eneg_states_test(ox_states, enegs):
        for (ox1, eneg1), (ox2, eneg2) in itertools.combinations(
            list(zip(ox_states, enegs, strict=True)), 2
        ):
            if (ox1 > 0) and (ox2 < 0) and (eneg1 >= eneg2):
                return False
            elif (ox1 < 0) and (ox2 > 0) and (eneg1 <= eneg2):
                return False
        return True

    for ox_states in itertools.product(*ox_combos):
        if sum(o * c for o, c in zip(ox_states, counts, strict=True)) != 0:
            continue
        try:
            electroneg_ok = eneg_states_test(ox_states, electronegs)
        except TypeError:  # no electronegativity: SMACT 2.x assumed the test passes
            electroneg_ok = True
        if electroneg_ok:
            return True
    return False


def test_composition_validity_matches_smact2_where_electronegativity_is_missing():
    # Pm and Rn have oxidation states but no Pauling electronegativity; He, Ne, Ar neither.
    # In PmAuCl, pair (Cl, Pm) is visited after (Cl, Au); orders matter where a pair fails first.
    formulas = [
        "PmCl3", "PmO", "Pm2O3", "PmN", "NaPmO2", "LiPmF4", "PmAuCl", "PmBi", "CsPm",
        "PmFeO3", "Pm2Fe", "RnF2", "RnO3", "RnCl", "KRnF3", "HeO", "NeF", "ArCl2",
        "PmRnO", "SnPmS3", "CuPmO2", "PmH3", "PmHO", "PmSb", "AuPm", "NaCl", "Fe2O3",
    ]  # fmt: skip
    verdicts = {}
    for formula in formulas:
        expected = smact2_validity(formula)
        assert composition_is_valid(Composition(formula)) == expected, formula
        verdicts[formula] = expected
    # the cases that make the difference: SMACT 4 rejects these, SMACT 2.x accepted them
    assert verdicts["PmCl3"] and verdicts["Pm2O3"] and verdicts["RnF2"]
    assert not verdicts["HeO"] and not verdicts["NeF"]


def test_templates_of_rock_salt_and_diamond():
    assert spacegroup_and_template(rock_salt()) == (225, (225, ("a", "b")))
    assert spacegroup_and_template(silicon()) == (227, (227, ("a",)))


def test_field_spacegroup_is_pymatgens_default_detection():
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    from symmcd.evaluation.templates import field_spacegroup

    distorted = rock_salt().copy()
    distorted.translate_sites([0], [0.005, 0.0, 0.0])  # 0.03 Å: within 0.1, beyond 0.01
    for structure in (rock_salt(), silicon(), distorted):
        assert field_spacegroup(structure) == SpacegroupAnalyzer(structure).get_space_group_number()
    assert spacegroup_and_template(distorted)[0] == 225 != field_spacegroup(distorted)
    assert field_spacegroup(None) is None


def test_template_statistics_counts_and_share():
    samples = [(225, ("a", "b")), (225, ("a", "b")), (227, ("a",)), None]
    stats = template_statistics(samples, {(225, ("a", "b"))})
    assert stats == {"unique_templates": 2, "templates_in_train": 0.5, "new_templates": 1}


def test_sg_jsd_uses_the_natural_log_as_scipy_does_by_default():
    assert spacegroup_jsd([225, 225, 1], [1, 225, 225]) == pytest.approx(0.0, abs=1e-12)
    assert spacegroup_jsd([225], [1]) == pytest.approx(np.sqrt(np.log(2)))
    assert spacegroup_jsd([225], [1], base=2) == pytest.approx(1.0)
    p = [225, 225, 1, 62]
    q = [225, 1, 1, 14, 14]
    counts = [[n.count(g) / len(n) for g in range(1, 231)] for n in (p, q)]
    assert spacegroup_jsd(p, q) == pytest.approx(float(jensenshannon(*counts)))
    assert wasserstein(np.array([1.0, 2.0]), np.array([2.0, 1.0])) == pytest.approx(0.0)


def test_coverage_of_a_set_against_itself_is_one():
    crystals = [rock_salt(), cesium_chloride(), silicon(), magnesium_oxide()]
    struct = np.array([structure_fingerprint(s) for s in crystals])
    comp = scale_composition_fingerprints(
        np.array([composition_fingerprint(s.composition) for s in crystals])
    )
    assert np.isfinite(struct).all()
    assert coverage(struct, comp, struct, comp, num_samples=4) == (1.0, 1.0)
    # Precision divides by all samples: two extra (invalid, not fingerprinted) samples halve it.
    recall, precision = coverage(struct[:2], comp[:2], struct, comp, num_samples=4)
    assert precision == 0.5 and recall < 1.0


def test_unique_and_novel():
    crystals = [rock_salt(), rock_salt(5.7), silicon(), None]
    formulas = ["NaCl", "NaCl", "Si", ""]
    assert unique_mask(crystals, formulas).tolist() == [True, False, True, False]
    novel = novel_mask(crystals, formulas, [silicon()], ["Si"])
    assert novel.tolist() == [True, True, False, False]


def _write_samples(folder, structures, broken: int = 1) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    records = []
    for i, structure in enumerate(structures):
        name = f"s{i}.cif"
        structure.to(filename=str(folder / name), fmt="cif")
        number, _ = spacegroup_and_template(structure)
        records.append({"file": name, "spacegroup": number, "formula": structure.formula})
    for k in range(broken):
        name = f"broken{k}.cif"
        (folder / name).write_text("data_broken\n_cell_length_a nonsense\n")
        records.append({"file": name, "spacegroup": 225, "formula": "NaCl"})
    (folder / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))


def _write_csv(path, structures) -> None:
    pd.DataFrame(
        {
            "material_id": [f"x-{i}" for i in range(len(structures))],
            "formation_energy_per_atom": [-1.0] * len(structures),
            "cif": [s.to(fmt="cif") for s in structures],
        }
    ).to_csv(path, index=False)


def test_unreadable_cif_counts_as_invalid_and_is_listed(tmp_path):
    _write_samples(tmp_path / "samples", [rock_salt()], broken=1)
    crystals = load_samples(tmp_path / "samples")
    assert len(crystals) == 2
    assert crystals.unreadable == ["broken0.cif"]


def test_parallel_reading_keeps_order_and_unreadable_entries(tmp_path, monkeypatch):
    from symmcd.evaluation import io, workers

    monkeypatch.setattr(io, "PARALLEL_PARSE_MIN", 2)
    pools = []
    real_pool = workers.worker_pool

    def counting_pool(workers, *args, **kwargs):
        pools.append(workers)
        return real_pool(workers, *args, **kwargs)

    monkeypatch.setattr(workers, "worker_pool", counting_pool)
    crystals = [rock_salt(5.0 + 0.1 * k) for k in range(5)] + [cesium_chloride(), silicon()]
    _write_samples(tmp_path / "samples", crystals, broken=2)
    serial = load_samples(tmp_path / "samples", workers=1)
    monkeypatch.setenv("SYMMCD_CACHE", str(tmp_path / "cache-parallel"))  # parse again
    parallel = load_samples(tmp_path / "samples", workers=2)
    assert parallel.names == serial.names
    assert parallel.unreadable == serial.unreadable == ["broken0.cif", "broken1.cif"]
    for a, b in zip(parallel.structures, serial.structures, strict=True):
        assert (a is None and b is None) or a == b
    assert [s.lattice.a for s in parallel.structures[:5]] == pytest.approx(
        [5.0 + 0.1 * k for k in range(5)]
    )
    _write_csv(tmp_path / "set.csv", crystals)
    monkeypatch.setenv("SYMMCD_CACHE", str(tmp_path / "cache-csv"))
    from_csv = load_samples(tmp_path / "set.csv", workers=2)
    assert [s.composition for s in from_csv.structures] == [c.composition for c in crystals]
    assert pools == [2, 2]  # the two parallel reads ran in a pool, the serial one did not


def test_empty_folder_and_missing_reference_raise_input_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no samples"):
        load_samples(tmp_path / "empty")
    _write_samples(tmp_path / "samples", [rock_salt()], broken=0)
    with pytest.raises(InputError, match="reference file not found"):
        evaluate(tmp_path / "samples", tmp_path / "nope.csv", None, tmp_path / "out")


def _evaluate_against_themselves(tmp_path, monkeypatch, crystals, broken, **kwargs) -> dict:
    """Evaluate `crystals` (+ `broken` unreadable CIFs) with REF = crystals, TRAIN = [silicon]."""
    monkeypatch.setenv("SYMMCD_CACHE", str(tmp_path / "cache"))
    _write_samples(tmp_path / "samples", crystals, broken=broken)
    _write_csv(tmp_path / "ref.csv", crystals)
    _write_csv(tmp_path / "train.csv", [silicon()])
    return evaluate(
        tmp_path / "samples",
        tmp_path / "ref.csv",
        [tmp_path / "train.csv"],
        tmp_path / "out",
        workers=1,
        progress=False,
        **kwargs,
    )


def test_evaluate_end_to_end_writes_metrics_and_report(tmp_path, monkeypatch):
    crystals = [rock_salt(), cesium_chloride(), silicon(), magnesium_oxide()]
    out = tmp_path / "out"
    monkeypatch.setattr(evaluate_module, "WDIST_MAX_SAMPLES", 2)  # subsample 2 of the 4 valid
    metrics = _evaluate_against_themselves(tmp_path, monkeypatch, crystals, broken=1)
    assert metrics["n"] == 5
    assert metrics["valid"] == pytest.approx(4 / 5)  # the unreadable CIF stays in the denominator
    assert metrics["struct_valid_1A"] == pytest.approx(4 / 5)
    assert metrics["cov_recall"] == 1.0 and metrics["cov_precision"] == pytest.approx(4 / 5)
    assert metrics["sg_jsd"] == pytest.approx(0.0, abs=1e-12)
    assert metrics["sg_match"] == pytest.approx(4 / 5)
    assert metrics["new_templates"] == 2 and metrics["unique_templates"] == 3
    assert metrics["novel"] == pytest.approx(3 / 5)  # silicon is in train
    assert np.isfinite(metrics["wdist_formation_energy"])  # CDVAE's model
    assert np.isfinite(metrics["wdist_formation_energy_chgnet"])
    # every valid sample against the same four crystals: identical distributions; the
    # 2-crystal subsample cannot match four distinct densities
    assert metrics["wdist_density_all_valid"] == pytest.approx(0.0, abs=1e-12)
    assert metrics["wdist_num_elements_all_valid"] == pytest.approx(0.0, abs=1e-12)
    assert metrics["wdist_density"] > 0.1
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["valid"] == metrics["valid"]
    assert (out / "unreadable.txt").read_text().split() == ["broken0.cif"]
    skipped = pd.read_csv(out / "skipped.csv")  # issue #35: each unreadable input and why
    assert skipped["file"].tolist() == ["broken0.cif"]
    assert skipped["reason"].str.len().gt(0).all()
    assert pd.read_csv(out / "per_sample.csv")["struct_valid_1A"].tolist() == [True] * 4 + [False]
    for name in (
        "report.html",
        "spacegroups.png",
        "distributions.png",
        "templates.png",
        "examples.png",
    ):
        assert (out / name).stat().st_size > 1000
    assert "cov_recall" in (out / "report.html").read_text()


def test_evaluate_without_coverage_skips_the_fingerprints(tmp_path, monkeypatch):
    fingerprinted = []
    original = summary_module.describe_crystal

    def recording(structure, with_fingerprints):
        fingerprinted.append(with_fingerprints)
        return original(structure, with_fingerprints)

    monkeypatch.setattr(summary_module, "describe_crystal", recording)
    crystals = [rock_salt(), cesium_chloride(), silicon(), magnesium_oxide()]
    metrics = _evaluate_against_themselves(tmp_path, monkeypatch, crystals, 1, coverage=False)
    assert fingerprinted and not any(fingerprinted)
    assert metrics["cov_recall"] is None and metrics["cov_precision"] is None
    assert metrics["coverage"] is False
    assert metrics["valid"] == pytest.approx(4 / 5) and metrics["novel"] == pytest.approx(3 / 5)
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["cov_recall"] is None


def _counting_describe(monkeypatch) -> list:
    """Make ``describe_crystal`` record each crystal it describes; returns the record."""
    calls: list = []
    original = summary_module.describe_crystal

    def counting(structure, with_fingerprints):
        calls.append(structure)
        return original(structure, with_fingerprints)

    monkeypatch.setattr(summary_module, "describe_crystal", counting)
    return calls


def _assert_same_summary(left, right) -> None:
    for name in ("struct_valid", "comp_valid", "spacegroup", "template", "formula", "struct_fp"):
        np.testing.assert_array_equal(getattr(left, name), getattr(right, name))
    np.testing.assert_array_equal(left.comp_fp, right.comp_fp)
    np.testing.assert_array_equal(left.density, right.density)


def test_crystal_store_describes_each_new_crystal_once(tmp_path, monkeypatch):
    monkeypatch.setenv("SYMMCD_CACHE", str(tmp_path / "cache"))
    calls = _counting_describe(monkeypatch)
    summary_module.summarize([rock_salt(), silicon()], None, True, workers=1, progress=False)
    assert len(calls) == 2
    calls.clear()
    crystals = [silicon(), rock_salt(), cesium_chloride(), cesium_chloride(), None]
    stored = summary_module.summarize(crystals, None, True, workers=1, progress=False)
    assert len(calls) == 2  # CsCl once (twice in the set) and the unreadable entry
    fresh = summary_module._stack(summary_module.describe_rows(crystals, True, 1, False))
    _assert_same_summary(stored, fresh)
    assert stored.spacegroup.tolist() == [227, 225, 221, 221, 0]
    calls.clear()
    moved = rock_salt()
    moved.translate_sites([0], [0.01, 0, 0])  # another crystal: described again
    summary_module.summarize([moved, rock_salt()], None, True, workers=1, progress=False)
    assert calls == [moved]


def test_plain_summary_reuses_fingerprinted_rows(tmp_path, monkeypatch):
    monkeypatch.setenv("SYMMCD_CACHE", str(tmp_path / "cache"))
    calls = _counting_describe(monkeypatch)
    with_fp = summary_module.summarize([rock_salt()], None, True, workers=1, progress=False)
    plain = summary_module.summarize([silicon(), rock_salt()], None, False, 1, False)
    assert len(calls) == 2  # rock salt's fingerprinted row served the plain request
    assert plain.spacegroup.tolist() == [227, 225]
    assert plain.formula[1] == with_fp.formula[0] and plain.density[1] == with_fp.density[0]
    calls.clear()
    summary_module.summarize([silicon()], None, True, workers=1, progress=False)
    assert len(calls) == 1  # a plain row cannot serve a fingerprinted request


def test_stopped_describe_keeps_what_it_computed(tmp_path, monkeypatch):
    """Descriptors reach the crystal store in batches, so a run stopped part-way resumes."""
    monkeypatch.setenv("SYMMCD_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(store_module, "STORE_BATCH", 2)
    original = summary_module.describe_crystal
    crystals = [rock_salt(), silicon(), cesium_chloride(), None]

    def stopping(structure, with_fingerprints):
        if structure is crystals[2]:
            raise KeyboardInterrupt
        return original(structure, with_fingerprints)

    monkeypatch.setattr(summary_module, "describe_crystal", stopping)
    with pytest.raises(KeyboardInterrupt):
        summary_module.summarize(crystals, None, False, workers=1, progress=False)
    monkeypatch.setattr(summary_module, "describe_crystal", original)
    calls = _counting_describe(monkeypatch)
    summary = summary_module.summarize(crystals, None, False, workers=1, progress=False)
    assert calls == [crystals[2], None]  # the first batch (NaCl, Si) came from the store
    assert summary.spacegroup.tolist() == [225, 227, 221, 0]


def test_parsed_cifs_are_stored_so_a_second_read_parses_none(tmp_path, monkeypatch):
    """A stopped or repeated evaluation reads its structures back from the crystal store
    (keyed by the CIF text) instead of parsing the CIFs again; the same structures, one object
    per entry, unreadable ones still unreadable."""
    from symmcd.evaluation import io

    crystals = [rock_salt(), silicon(), rock_salt(), cesium_chloride()]
    _write_samples(tmp_path / "samples", crystals, broken=1)
    first = load_samples(tmp_path / "samples", workers=1)
    parsed = []
    monkeypatch.setattr(io, "parse_cif_or_none", lambda text: parsed.append(text))
    again = load_samples(tmp_path / "samples", workers=1)
    assert parsed == []  # every structure came from the store
    assert again.names == first.names and again.unreadable == first.unreadable
    assert again.structures == first.structures
    assert again.structures[0] is not again.structures[2]  # the repeated NaCl: two objects
    assert [store_module.crystal_key(s) for s in again.structures if s is not None] == [
        store_module.crystal_key(s) for s in first.structures if s is not None
    ]


def test_stored_numbers_compute_each_new_crystal_once_and_keep_finished_batches(
    tmp_path, monkeypatch
):
    """Formation energies of the distributions stage go through the crystal store: a second
    set that shares crystals computes only its new ones, and a stop keeps finished batches."""
    monkeypatch.setenv("SYMMCD_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(store_module, "STORE_BATCH", 2)
    calls = []

    def density(batch):
        calls.append([s.composition.reduced_formula for s in batch])
        if any(s.composition.reduced_formula == "CsCl" for s in batch) and len(calls) < 3:
            raise KeyboardInterrupt  # stopped in the second batch
        return np.array([s.density for s in batch])

    crystals = [rock_salt(), silicon(), cesium_chloride(), rock_salt(), magnesium_oxide()]
    with pytest.raises(KeyboardInterrupt):
        store_module.stored_numbers(crystals, "density-test", density)
    values = store_module.stored_numbers(crystals, "density-test", density)
    assert calls == [["NaCl", "Si"], ["CsCl", "MgO"], ["CsCl", "MgO"]]  # NaCl once, batch 1 kept
    np.testing.assert_array_equal(values, [s.density for s in crystals])
    assert store_module.stored_numbers(crystals[::-1], "density-test", density).tolist() == (
        values[::-1].tolist()
    )
    assert len(calls) == 3  # all from the store
    nan = store_module.stored_numbers([silicon()], "nan-test", lambda b: np.full(len(b), np.nan))
    assert np.isnan(nan).all()


def test_corrupt_crystal_store_is_recomputed_with_a_warning(tmp_path, monkeypatch):
    monkeypatch.setenv("SYMMCD_CACHE", str(tmp_path / "cache"))
    store = summary_module.crystal_store().path
    store.write_bytes(b"not a database" * 100)
    calls = _counting_describe(monkeypatch)
    with pytest.warns(UserWarning, match="crystal cache .* unusable"):
        result = summary_module.summarize([rock_salt()], None, False, workers=1, progress=False)
    assert len(calls) == 1 and result.spacegroup.tolist() == [225]


@pytest.mark.slow
def test_evaluate_with_relaxation_reports_stability(tmp_path, monkeypatch):
    crystals = [rock_salt(), magnesium_oxide()]
    metrics = _evaluate_against_themselves(tmp_path, monkeypatch, crystals, broken=0, relax=2)
    assert metrics["n_relaxed"] == 2
    for key in ("stable", "metastable", "sun", "msun", "ssun", "stable_fixsym"):
        assert 0.0 <= metrics[key] <= 1.0
    assert metrics["metastable"] >= metrics["stable"] >= metrics["sun"] >= metrics["ssun"]
    records = (tmp_path / "out" / "relaxed" / "relaxed.jsonl").read_text().splitlines()
    assert len(records) == 4  # two crystals, free and symmetric


def test_report_headline_shows_symmetric_sun_beside_sun():
    """Issue #36: S.U.N. restricted to non-P1 crystals sits beside S.U.N. in the report."""
    from symmcd.evaluation.report import headline_table

    relaxed = headline_table(
        {
            "struct_valid": 0.9632,
            "sg_jsd": 0.0837,
            "stable": 0.22,
            "sun": 0.2,
            "ssun": 0.19,
            "n_relaxed": 100,
        }
    )
    assert relaxed.index("S.U.N.</th>") < relaxed.index("S.U.N., not P1")
    assert "19.00 %" in relaxed and "96.32 %" in relaxed and "0.0837" in relaxed
    assert "100 relaxed" in relaxed
    unrelaxed = headline_table({"struct_valid": 0.9, "cov_recall": None})
    assert "S.U.N." not in unrelaxed and "n/a" in unrelaxed
