"""Tests of the reference hull, stability flags and CHGNet relaxation."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from pymatgen.core import Composition, Lattice, Structure

from symmcd.evaluation import relax_dir
from symmcd.evaluation.formation_energy import reference_energy_per_atom
from symmcd.evaluation.hull import energy_above_hull
from symmcd.evaluation.stability import stability_flags


def test_elements_sit_on_the_hull_at_zero():
    assert energy_above_hull(Composition("Fe"), 0.0) == pytest.approx(0.0, abs=1e-9)
    assert energy_above_hull(Composition("Fe"), 0.05) == pytest.approx(0.05)


def test_mp20_entry_on_hull_and_shifted_above_it():
    # GaTe (mp-10009) is on the MP hull at -0.5751 eV/atom.
    assert energy_above_hull(Composition("GaTe"), -0.5751) == pytest.approx(0.0, abs=1e-3)
    assert energy_above_hull(Composition("Ga2Te2"), -0.5) == pytest.approx(0.0751, abs=1e-3)
    assert energy_above_hull(Composition("GaTe"), float("nan")) != energy_above_hull(
        Composition("GaTe"), 0.0
    )


@pytest.mark.parametrize("formula", ["Li2O", "LiFeO2", "Fe3O4", "Li5Fe2O7", "FeO3", "LiFe"])
def test_hull_energy_is_pymatgens_phase_diagram_value(formula):
    from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram
    from pymatgen.core import Element

    from symmcd.evaluation.hull import default_hull, hull_energy

    elements, fractions, energies = default_hull().system_points(frozenset({"Li", "Fe", "O"}))
    assert len(energies) > 10  # the Li-Fe-O points of MP, not just the three elements
    entries = [
        PDEntry(Composition(dict(zip(elements, f, strict=True))), e)
        for f, e in zip(fractions, energies, strict=True)
    ]
    diagram = PhaseDiagram(entries, elements=[Element(el) for el in elements])
    composition = Composition(formula)
    expected = diagram.get_hull_energy_per_atom(composition)
    assert hull_energy(composition) == pytest.approx(expected, abs=1e-9)
    assert energy_above_hull(composition, expected + 0.05) == pytest.approx(0.05, abs=1e-9)


def test_energy_above_hull_of_many_elements_is_computed():
    # a 14-element sample: pymatgen's PhaseDiagram of its system ran for minutes
    composition = Composition("KBaZrNbTlInNiAgGe2MoPb2SeSO")
    e_hull = energy_above_hull(composition, -1.0)
    assert np.isfinite(e_hull) and e_hull > -1.0  # its hull lies below 0 eV/atom (oxides etc.)


def test_elemental_reference_is_composition_weighted():
    expected = (
        reference_energy_per_atom(Composition("Na")) + reference_energy_per_atom(Composition("Cl"))
    ) / 2
    assert reference_energy_per_atom(Composition("NaCl")) == pytest.approx(expected)
    assert np.isnan(reference_energy_per_atom(Composition("Og")))


def test_stability_flags_combine_hull_uniqueness_novelty_and_symmetry():
    e_hull = np.array([-0.01, 0.05, 0.2, np.nan, -0.1])
    unique = np.array([True, True, True, True, True])
    novel = np.array([True, True, True, True, False])
    after = np.array([1, 225, 225, 225, 225])
    flags = stability_flags(e_hull, unique, novel, after)
    assert flags["stable"].tolist() == [True, False, False, False, True]
    assert flags["metastable"].tolist() == [True, True, False, False, True]
    assert flags["sun"].tolist() == [True, False, False, False, False]
    assert flags["msun"].tolist() == [True, True, False, False, False]
    assert flags["ssun"].tolist() == [False, False, False, False, False]  # the stable one is P1


@pytest.mark.slow
def test_relax_dir_relaxes_rock_salt_keeping_symmetry(tmp_path):
    salt = Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(5.9), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]
    )
    (tmp_path / "in").mkdir()
    salt.to(filename=str(tmp_path / "in" / "nacl.cif"), fmt="cif")
    summary = relax_dir(tmp_path / "in", tmp_path / "out", keep_symmetry=True, progress=False)
    assert summary["relaxed"] == 1 and summary["converged"] == 1
    record = json.loads((tmp_path / "out" / "relaxed.jsonl").read_text())
    assert record["spacegroup_before"] == record["spacegroup_after"] == 225
    assert -2.5 < record["formation_energy_per_atom"] < -1.5  # DFT: about -2.1 eV/atom
    relaxed = Structure.from_file(tmp_path / "out" / "nacl.cif")
    assert 5.5 < relaxed.lattice.a < 5.85


@pytest.mark.slow
def test_relax_dir_in_parallel_keeps_order_and_counts_unreadable_files(tmp_path, monkeypatch):
    (tmp_path / "in").mkdir()
    for name, a in (("a_nacl", 5.9), ("c_nacl", 5.4)):
        salt = Structure.from_spacegroup(
            "Fm-3m", Lattice.cubic(a), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]
        )
        salt.to(filename=str(tmp_path / "in" / f"{name}.cif"), fmt="cif")
    (tmp_path / "in" / "b_broken.cif").write_text("data_broken\n_cell_length_a 1\n")
    serial = relax_dir(tmp_path / "in", tmp_path / "one", steps=5, progress=False, workers=1)
    monkeypatch.setenv("SYMMCD_CACHE", str(tmp_path / "other_cache"))  # relax again, in parallel
    parallel = relax_dir(tmp_path / "in", tmp_path / "two", steps=5, progress=False, workers=2)
    assert serial == {**parallel, "mean_seconds": serial["mean_seconds"]}
    assert parallel["n"] == 3 and parallel["relaxed"] == 2 and parallel["failed"] == 1
    one, two = (
        [json.loads(line) for line in (tmp_path / d / "relaxed.jsonl").read_text().splitlines()]
        for d in ("one", "two")
    )
    assert [r["file"] for r in two] == ["a_nacl.cif", "b_broken.cif", "c_nacl.cif"]
    assert two[1]["error"] == "unreadable"
    for a, b in ((one[0], two[0]), (one[2], two[2])):
        assert a["energy_per_atom"] == pytest.approx(b["energy_per_atom"], abs=1e-4)


def _salt(a: float) -> Structure:
    return Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(a), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]
    )


def test_relax_many_keeps_results_and_skips_crystals_relaxed_before(monkeypatch):
    from symmcd.evaluation import relax

    calls = []

    def fake_relaxation(job):
        structure, keep_symmetry, steps, fmax, time_limit = job
        calls.append(structure)
        error = "RelaxationTimedOut: ran past its limit" if structure.lattice.a > 6 else ""
        energy = -structure.lattice.a
        return relax.RelaxResult(structure.copy(), energy, energy, 3, True, 225, 225, 0.1, error)

    monkeypatch.setattr(relax, "_relax_job", fake_relaxation)
    small, large, slow = _salt(5.6), _salt(5.7), _salt(6.5)
    first = list(relax.relax_many([small, large, small, slow], workers=1, progress=False))
    assert calls == [small, large, slow]  # the repeated crystal is relaxed once
    assert [r.energy_per_atom for r in first] == [-5.6, -5.7, -5.6, -6.5]
    calls.clear()
    again = list(relax.relax_many([large, slow, small], workers=1, progress=False))
    assert calls == [slow]  # only the one stopped by the time limit is relaxed again
    assert [r.energy_per_atom for r in again] == [-5.7, -6.5, -5.6]
    assert again[0].structure == first[1].structure and again[0].steps == 3
    calls.clear()
    list(relax.relax_many([small], keep_symmetry=True, workers=1, progress=False))
    list(relax.relax_many([small], steps=10, workers=1, progress=False))
    assert calls == [small, small]  # other settings: relaxed anew


def test_stability_without_symmetric_relaxation_relaxes_once(tmp_path, monkeypatch):
    from symmcd.evaluation import relax
    from symmcd.evaluation.io import CrystalSet
    from symmcd.evaluation.stability import stability_metrics
    from symmcd.evaluation.summary import _stack, describe_rows

    modes = []

    def fake_relaxation(job):
        structure, keep_symmetry, *_ = job
        modes.append(keep_symmetry)
        return relax.RelaxResult(structure.copy(), -3.0, -3.0, 3, True, 225, 225, 0.1)

    monkeypatch.setattr(relax, "_relax_job", fake_relaxation)
    crystals = [_salt(5.6), _salt(5.7)]
    summary = _stack(describe_rows(crystals, False, 1, False))
    both = np.ones(2, dtype=bool)
    metrics, records = stability_metrics(
        CrystalSet(["a", "b"], crystals), summary, both, both, 2, 0, tmp_path, False, 1, False
    )
    assert modes == [False, False] and len(records) == 2
    assert metrics["n_relaxed"] == 2 and metrics["stable"] == 1.0  # far below the NaCl hull
    assert "stable_fixsym" not in metrics


def test_volume_guard_stops_a_cell_that_blows_up():
    from ase import Atoms

    from symmcd.evaluation.relax import CellBlewUp, _volume_guard

    atoms = Atoms("Na", cell=[3.0, 3.0, 3.0], pbc=True)
    check = _volume_guard(atoms, atoms.get_volume())
    check()  # unchanged: fine
    atoms.set_cell([3.0, 3.0, 9.0])  # 3x: still fine
    check()
    atoms.set_cell([3.0, 3.0, 13.0])  # > 4x
    with pytest.raises(CellBlewUp, match="fold"):
        check()


def test_time_guard_stops_a_relaxation_past_its_limit():
    from symmcd.evaluation.relax import RelaxationTimedOut, _time_guard

    now = [100.0]
    check = _time_guard(30.0, clock=lambda: now[0])
    now[0] = 129.0
    check()  # within the limit
    now[0] = 131.0
    with pytest.raises(RelaxationTimedOut, match="30 s limit"):
        check()


def test_relaxation_past_its_time_limit_is_reported_not_raised():
    from symmcd.evaluation.relax import relax_structure

    coords = [[0, 0, 0], [0.5, 0.5, 0.5]]
    nacl = Structure.from_spacegroup("Fm-3m", Lattice.cubic(6.5), ["Na", "Cl"], coords)
    result = relax_structure(nacl, time_limit=0.0)
    assert result.structure is None and "limit" in result.error


WORKER_POOL_SCRIPT = """
import time
from symmcd.evaluation.workers import worker_pool
with worker_pool(2, "spawn") as pool:
    pool.map_async(time.sleep, [60, 60], chunksize=1)  # busy workers, as in a relaxation
    print(" ".join(str(process.pid) for process in pool._pool), flush=True)
    time.sleep(120)
"""


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.is_file() and stat.read_text().split(") ")[1].startswith("Z"))


@pytest.mark.skipif(sys.platform != "linux", reason="uses /proc and POSIX signals")
def test_sigterm_to_the_parent_stops_the_pool_workers():
    """Killing an evaluation (SIGTERM) must not leave CHGNet workers running as orphans."""
    parent = subprocess.Popen(
        [sys.executable, "-c", WORKER_POOL_SCRIPT], stdout=subprocess.PIPE, text=True
    )
    workers = [int(pid) for pid in parent.stdout.readline().split()]
    assert len(workers) == 2 and all(process_alive(pid) for pid in workers)
    parent.send_signal(signal.SIGTERM)
    assert parent.wait(timeout=30) == 128 + signal.SIGTERM
    deadline = time.monotonic() + 10
    while any(process_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(process_alive(pid) for pid in workers)


def test_relaxation_order_extends_a_smaller_run():
    from symmcd.evaluation.stability import relaxation_order

    valid = np.arange(3, 500, 7)
    larger = relaxation_order(valid, 40, seed=0)
    assert len(set(larger.tolist())) == 40 and set(larger.tolist()) <= set(valid.tolist())
    np.testing.assert_array_equal(relaxation_order(valid, 15, seed=0), larger[:15])
    assert not np.array_equal(relaxation_order(valid, 15, seed=1), larger[:15])
    assert sorted(relaxation_order(valid, 1000, seed=0).tolist()) == valid.tolist()


def _sigterm_action() -> str:
    return "default" if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL else "python"


def test_pool_workers_die_on_sigterm_at_once():
    """The parent's SIGTERM handler is not inherited: with it, a worker could miss the signal
    while blocking on the task queue and hang Pool.terminate (seen in a 10,000-crystal run)."""
    from symmcd.evaluation.workers import worker_pool

    with worker_pool(2, "fork", initializer=lambda: None) as pool:
        assert _sigterm_action() == "python"  # the parent unwinds on SIGTERM
        assert pool.map(_sigterm_action_of_worker, range(4)) == ["default"] * 4
    assert _sigterm_action() == "default"


def _sigterm_action_of_worker(_: int) -> str:
    return _sigterm_action()


def _blas_threads_of_worker(_: int) -> set[int]:
    from threadpoolctl import threadpool_info

    return {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"}


def test_pool_workers_run_one_blas_thread():
    """Workers fill the cores; BLAS threads of their own made ASE's 3x3 cell-filter algebra
    (``expm_frechet``, ``logm``) 3-20x slower on a loaded 2-core machine."""
    from threadpoolctl import threadpool_limits

    from symmcd.evaluation.workers import worker_pool

    with threadpool_limits(2), worker_pool(2, "fork") as pool:  # what a forked worker inherits
        assert pool.map(_blas_threads_of_worker, range(4)) == [{1}] * 4


def _perturbed_crystals() -> list[Structure]:
    """Crystals off their minimum, so forces and stress are far from zero."""
    rng = np.random.default_rng(3)
    salt = _salt(5.3)
    salt.perturb(0.15, min_distance=0.05)
    ternary = Structure(
        Lattice.from_parameters(4.1, 4.6, 5.3, 84, 97, 101),
        ["Li", "Fe", "O", "O"],
        rng.uniform(size=(4, 3)) * 0.5 + [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]],
    )
    return [salt, ternary]


def test_fast_chgnet_calculator_equals_chgnets_own_bit_for_bit():
    from chgnet.model.dynamics import CHGNetCalculator
    from pymatgen.io.ase import AseAtomsAdaptor

    from symmcd.evaluation.chgnet_calculator import FastCHGNetCalculator
    from symmcd.evaluation.formation_energy import load_chgnet

    model = load_chgnet()
    for structure in _perturbed_crystals():
        results = []
        for calculator in (
            CHGNetCalculator(model=model, use_device="cpu", on_isolated_atoms="ignore"),
            FastCHGNetCalculator(model, on_isolated_atoms="ignore"),
        ):
            atoms = AseAtomsAdaptor.get_atoms(structure)
            atoms.calc = calculator
            results.append(
                (atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress(voigt=False))
            )
        (energy, forces, stress), (fast_energy, fast_forces, fast_stress) = results
        assert np.abs(forces).max() > 0.1 and np.abs(stress).max() > 1e-3  # far from a minimum
        assert fast_energy == energy
        assert np.array_equal(fast_forces, forces)
        assert np.array_equal(fast_stress, stress)


def _sleepy_relaxation(keyed):
    """A stand-in relaxation job: "hang" sleeps far past any watchdog, others return at once."""
    from symmcd.evaluation.relax import RelaxResult

    key, (structure, *_rest) = keyed
    if key == "hang":
        time.sleep(600)
    return key, RelaxResult(structure, -1.0, -0.5, 1, True, 225, 225, 0.0)


def test_watchdog_reports_a_hung_worker_and_carries_on():
    from symmcd.evaluation.relax import run_relax_jobs

    nacl = Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]
    )
    jobs = [(key, (nacl, False, 10, 0.1, None)) for key in ("a", "hang", "b", "c")]
    started = time.monotonic()
    # the watchdog leaves time for spawned workers to import torch on a loaded machine
    results = dict(run_relax_jobs(jobs, workers=2, watchdog=30.0, function=_sleepy_relaxation))
    assert set(results) == {"a", "hang", "b", "c"}
    assert "hung" in results["hang"].error and results["hang"].structure is None
    assert all(not results[key].error for key in ("a", "b", "c"))
    assert time.monotonic() - started < 200


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (from /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(") ", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return {p for p in found if process_alive(p)}


@pytest.mark.skipif(sys.platform != "linux", reason="uses /proc and POSIX signals")
@pytest.mark.parametrize(
    "signum", [signal.SIGTERM, pytest.param(signal.SIGINT, marks=pytest.mark.slow)]
)
def test_stopping_an_evaluation_during_relaxation_leaves_no_process(tmp_path, signum):
    """`symmcd evaluate --relax` stopped by SIGTERM (a scheduler's limit) or SIGINT (Ctrl-C)
    while its CHGNet workers relax: nothing of it may keep running."""
    samples = tmp_path / "samples"
    samples.mkdir()
    rows = []
    for i, a in enumerate((5.4, 5.6, 5.8, 6.0)):
        crystal = Structure.from_spacegroup(
            "Fm-3m", Lattice.cubic(a), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]
        )
        crystal.perturb(0.05)  # something to relax
        (samples / f"{i}.cif").write_text(crystal.to(fmt="cif"))
        rows.append({"material_id": f"r{i}", "cif": crystal.to(fmt="cif")})
    import pandas as pd

    reference = tmp_path / "ref.csv"
    pd.DataFrame(rows).to_csv(reference, index=False)
    command = [
        sys.executable, "-m", "symmcd.cli", "evaluate", str(samples), "--reference",
        str(reference), "--train", str(reference), "--out", str(tmp_path / "out"),
        "--relax", "4", "--workers", "2", "--no-coverage",
    ]  # fmt: skip
    env = {**os.environ, "SYMMCD_CACHE": str(tmp_path / "cache")}
    parent = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    workers: set[int] = set()
    while time.monotonic() < deadline and len(workers) < 2:  # wait for the relaxation pool
        time.sleep(0.5)
        workers = {
            p
            for p in descendants(parent.pid)
            if b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes()
        }
        assert parent.poll() is None, "evaluation ended before its relaxations started"
    assert len(workers) >= 2
    time.sleep(3)  # relaxing now
    everything = descendants(parent.pid)
    parent.send_signal(signum)
    parent.wait(timeout=60)
    deadline = time.monotonic() + 20
    while any(process_alive(p) for p in everything) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [p for p in everything if process_alive(p)]
