"""Issue #35, "no silent loss, no hang, no traceback": one rule for output folders (non-empty
refused without --overwrite, writability checked first, one run per folder), unreadable inputs
listed with their reason, plain checkpoint messages, argument errors before torch, POSCARs."""

import importlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
from cif_fixtures import BROKEN_CIF, DISORDERED_CIF
from pymatgen.core import Lattice, Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from symmcd import cli
from symmcd.checkpoint import read_torch_file
from symmcd.data import io as data_io
from symmcd.data.io import can_write_in, check_out_dir, lock_path, staged_dir
from symmcd.errors import CheckpointError, InputError
from symmcd.evaluation import relax as relax_module
from symmcd.evaluation.relax import RelaxResult, relax_dir
from symmcd.sampling import writers
from symmcd.sampling.writers import SampledCrystal, parse_formats, read_records, write_samples


def rock_salt(a: float = 5.64) -> Structure:
    return Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(a), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]
    )


def one_line_error(capsys, argv: list[str], *expected: str) -> str:
    assert cli.main(argv) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    lines = [line for line in lines if "%|" not in line]  # progress bars aside
    assert len(lines) == 1, lines
    for text in expected:
        assert text in lines[0], lines[0]
    return lines[0]


def non_empty(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "old.txt").write_text("old")
    return folder


# 1. one rule for output folders ------------------------------------------------------------


def test_evaluate_and_relax_refuse_a_non_empty_out_without_overwrite(tmp_path, capsys):
    (tmp_path / "cifs").mkdir()
    rock_salt().to(filename=str(tmp_path / "cifs" / "nacl.cif"), fmt="cif")
    out = non_empty(tmp_path / "out")
    for command in ("evaluate", "relax"):
        argv = [command, str(tmp_path / "cifs"), "--out", str(out)]
        one_line_error(capsys, argv, str(out), "is not empty", "--overwrite")
    assert sorted(p.name for p in out.iterdir()) == ["old.txt"]  # nothing mixed in
    assert not lock_path(out).exists()


def test_helpers_stay_importable_from_writers():
    assert writers.check_out_dir is check_out_dir and writers.staged_dir is staged_dir


# 2. one run owns an output folder ----------------------------------------------------------


def test_a_live_run_lock_refuses_a_second_run(tmp_path):
    out = tmp_path / "out"
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock_path(out).write_text(f"{other.pid}\n{os.uname().nodename}\n")
        with pytest.raises(InputError, match=rf"{out}.*PID {other.pid}"):
            check_out_dir(out, overwrite=True)
        with pytest.raises(InputError, match=f"PID {other.pid}"):
            with staged_dir(out):
                pass
    finally:
        other.kill()
        other.wait()
    assert not out.exists()


def test_property_train_refuses_a_run_folder_another_run_holds(tmp_path):
    from symmcd.property.train import PropertyConfig, train_property

    run = tmp_path / "run"
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock_path(run).write_text(f"{other.pid}\n{os.uname().nodename}\n")
        with pytest.raises(InputError, match=f"PID {other.pid}"):
            train_property(PropertyConfig(epochs=1), None, None, run)
    finally:
        other.kill()
        other.wait()


def test_a_stale_lock_of_a_dead_run_does_not_block(tmp_path):
    out = tmp_path / "out"
    finished = subprocess.run([sys.executable, "-c", "pass"], check=True)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    assert finished.returncode == 0
    lock_path(out).write_text(f"{dead.pid}\n{os.uname().nodename}\n")
    assert check_out_dir(out, overwrite=False) == out
    assert lock_path(out).read_text().split()[0] == str(os.getpid())  # taken over
    with staged_dir(out) as folder:
        (folder / "x.txt").write_text("x")
    assert (out / "x.txt").is_file()
    assert not lock_path(out).exists()  # given back once the folder is in place


def test_taking_over_a_dead_runs_lock_removes_the_staging_folder_it_left(tmp_path):
    out = tmp_path / "out[1]"  # a name with glob characters
    left = tmp_path / ".out[1].tmp-abc"
    left.mkdir()
    (left / "metrics.json").write_text("{}")
    other = tmp_path / ".other.tmp-abc"  # another folder's staging: not ours to remove
    other.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lock_path(out).write_text(f"{dead.pid}\n{os.uname().nodename}\n")
    check_out_dir(out, overwrite=False)
    assert not left.exists() and other.is_dir()
    data_io.unlock_out_dir(out)


SIGTERM_MIDWAY = """
import os, signal, sys
from symmcd import cli
from symmcd.data.io import staged_dir

def stopped(args):  # the evaluate command, stopped while it writes its staging folder
    with staged_dir(args.out):
        os.kill(os.getpid(), signal.SIGTERM)
        signal.pause()  # not reached: the signal raises at once

cli._cmd_evaluate = stopped
sys.exit(cli.main(sys.argv[1:]))
"""


def test_exit_on_sigterm_raises_inside_the_block_and_gives_the_handler_back():
    import signal

    from symmcd.signals import Terminated, exit_on_sigterm

    seen = []
    previous = signal.signal(signal.SIGTERM, lambda *_: seen.append("own handler"))
    try:
        with pytest.raises(Terminated) as stop, exit_on_sigterm():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # not reached: the handler raises as soon as the signal lands
        assert stop.value.code == 143 and seen == []
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.1)
        assert seen == ["own handler"]  # the handler in place before the block is back
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_a_sigterm_unwinds_the_command_and_says_how_to_go_on(tmp_path):
    """SIGTERM to a running command: exit 143, no staging folder or lock left, one line saying
    how the command goes on."""
    out = tmp_path / "ev"
    samples = tmp_path / "samples"
    samples.mkdir()
    argv = ["evaluate", str(samples), "--out", str(out)]
    done = subprocess.run(
        [sys.executable, "-c", SIGTERM_MIDWAY, *argv], capture_output=True, text=True
    )
    assert done.returncode == 143, done.stderr
    assert done.stderr.strip().splitlines() == [
        "symmcd evaluate: stopped by SIGTERM" + cli.RESUME_HINTS["evaluate"]
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["samples"]


def test_the_lock_is_held_from_the_check_to_the_end_and_given_back_on_error(tmp_path):
    out = tmp_path / "out"
    check_out_dir(out, overwrite=False)
    assert lock_path(out).read_text().split()[0] == str(os.getpid())
    check_out_dir(out, overwrite=False)  # the same run may check again
    with pytest.raises(RuntimeError):
        with staged_dir(out):
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


# 3. permissions before work ----------------------------------------------------------------


def test_the_writability_probe_does_not_trust_os_access():
    # root passes every os.access check; a read-only place must still be refused
    if Path("/proc").is_dir():
        assert not can_write_in(Path("/proc"))


def test_an_unwritable_out_is_refused_before_any_work(tmp_path, capsys, monkeypatch):
    out = tmp_path / "ro"
    out.mkdir()
    monkeypatch.setattr(data_io, "can_write_in", lambda folder: Path(folder) != out)
    argv = ["sample", "--n", "2", "--steps", "2", "--out", str(out)]
    one_line_error(capsys, argv, str(out), "not writable")
    assert not list(tmp_path.glob(".ro.tmp-*")) and not lock_path(out).exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_a_read_only_out_directory_is_refused(tmp_path, capsys):
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o555)
    try:
        argv = ["sample", "--n", "2", "--steps", "2", "--out", str(out)]
        one_line_error(capsys, argv, str(out), "not writable")
    finally:
        out.chmod(0o755)
    assert not list(tmp_path.glob(".ro.tmp-*"))


# 4. unreadable inputs are listed, none readable is refused ---------------------------------


def test_evaluate_and_relax_refuse_inputs_of_which_none_is_readable(tmp_path, capsys):
    (tmp_path / "cifs").mkdir()
    (tmp_path / "cifs" / "broken.cif").write_text(BROKEN_CIF)
    (tmp_path / "cifs" / "disordered.cif").write_text(DISORDERED_CIF)
    for command in ("evaluate", "relax"):
        out = tmp_path / f"out-{command}"
        argv = [command, str(tmp_path / "cifs"), "--out", str(out)]
        one_line_error(capsys, argv, "none of the 2", "broken.cif")
        assert not out.exists() and not lock_path(out).exists()


def fake_relax_many(monkeypatch, perturb: float = 0.0):
    """relax_many without CHGNet: every crystal comes back as it went in (shaken a little)."""

    def relax_many(structures, keep_symmetry=False, *args, **kwargs):
        for structure in structures:
            relaxed = structure.copy()
            if perturb:
                relaxed.perturb(perturb)
            number = SpacegroupAnalyzer(relaxed, symprec=0.1).get_space_group_number()
            yield RelaxResult(relaxed, -3.0, -2.0, 3, True, number, number, 0.1)

    monkeypatch.setattr(relax_module, "relax_many", relax_many)


def test_relax_lists_unreadable_inputs_with_their_reason(tmp_path, capsys, monkeypatch):
    fake_relax_many(monkeypatch)
    (tmp_path / "cifs").mkdir()
    rock_salt().to(filename=str(tmp_path / "cifs" / "a_nacl.cif"), fmt="cif")
    (tmp_path / "cifs" / "b_broken.cif").write_text(BROKEN_CIF)
    (tmp_path / "cifs" / "c_disordered.cif").write_text(DISORDERED_CIF)
    out = tmp_path / "out"
    assert cli.main(["relax", str(tmp_path / "cifs"), "--out", str(out), "--workers", "1"]) == 0
    printed = capsys.readouterr()
    assert "skipped 2 of 3" in printed.err and "skipped.csv" in printed.err
    assert json.loads(printed.out)["unreadable"] == 2
    skipped = pd.read_csv(out / "skipped.csv")
    assert skipped["file"].tolist() == ["b_broken.cif", "c_disordered.cif"]
    assert "unreadable CIF" in skipped["reason"][0]
    assert "disorder" in skipped["reason"][1]
    records = [json.loads(line) for line in (out / "relaxed.jsonl").read_text().splitlines()]
    assert [r.get("error", "") for r in records] == ["", "unreadable", "unreadable"]


# 5. a pickled checkpoint is named as such --------------------------------------------------


def test_a_pickled_checkpoint_is_named_plainly(tmp_path):
    pickled = tmp_path / "pickled.pt"
    torch.save({"model": torch.nn.Linear(2, 2)}, pickled)
    with pytest.raises(CheckpointError) as caught:
        read_torch_file(pickled)
    message = str(caught.value)
    assert "pickled" in message and "weights_only" in message and str(pickled) in message
    assert "\x1b" not in message and "\n" not in message
    assert "corrupt" not in message and "add_safe_globals" not in message
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(pickled.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="corrupt or truncated") as caught:
        read_torch_file(truncated)
    assert "\x1b" not in str(caught.value) and "\n" not in str(caught.value)


# 6. property predict names its input, not its deleted temporary folder -------------------


def test_property_predict_of_unreadable_cifs_names_the_input(tmp_path, monkeypatch):
    predict_module = importlib.import_module("symmcd.property.predict")  # not the function

    monkeypatch.setattr(predict_module, "load_property_model", lambda path: None)
    (tmp_path / "cifs").mkdir()
    (tmp_path / "cifs" / "broken.cif").write_text(BROKEN_CIF)
    with pytest.raises(InputError) as caught:
        predict_module.predict_cifs(tmp_path / "model.pt", tmp_path / "cifs")
    message = str(caught.value)
    assert str(tmp_path / "cifs") in message and "broken" in message
    assert "symmcd-property-" not in message


# 7. relax --keep-symmetry writes the kept space group --------------------------------------


def test_relax_keep_symmetry_writes_cifs_in_the_kept_group(tmp_path, monkeypatch):
    fake_relax_many(monkeypatch, perturb=0.005)
    (tmp_path / "cifs").mkdir()
    rock_salt().to(filename=str(tmp_path / "cifs" / "nacl.cif"), fmt="cif")
    relax_dir(tmp_path / "cifs", tmp_path / "out", keep_symmetry=True, progress=False, workers=1)
    record = json.loads((tmp_path / "out" / "relaxed.jsonl").read_text())
    text = (tmp_path / "out" / "nacl.cif").read_text()
    assert record["spacegroup_after"] == 225
    assert "_symmetry_Int_Tables_number   225" in text
    written = Structure.from_str(text, fmt="cif")
    assert SpacegroupAnalyzer(written, symprec=0.01).get_space_group_number() == 225


# 8. argument errors before torch -----------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["sample", "--n", "-3", "--out", "OUT"], "--n: -3 must be a positive integer"),
        (["sample", "--n", "2", "--out", "OUT", "--bogus"], "unrecognized arguments: --bogus"),
        (["sample", "--n", "two", "--out", "OUT"], "invalid int value"),
        (["sample", "--n", "2", "--format", "xyz", "--out", "OUT"], "unknown output format xyz"),
        (["relax", "CIFS", "--out", "OUT", "--steps", "0"], "--steps: 0"),
        (["evaluate", "CIFS", "--out", "OUT", "--workers", "0"], "--workers: 0"),
    ],
)
def test_argument_errors_come_before_torch_is_imported(tmp_path, argv, expected):
    argv = [str(tmp_path / a) if a in ("OUT", "CIFS") else a for a in argv]
    code = (
        "import sys\n"
        "from symmcd.cli import main\n"
        "try:\n"
        f"    status = main({argv!r})\n"
        "except SystemExit as stop:\n"
        "    status = stop.code\n"
        "print('torch' in sys.modules, status)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.split() == ["False", "2"], done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], lines


# 9. POSCAR output --------------------------------------------------------------------------


def test_poscar_format_writes_one_poscar_per_crystal(tmp_path):
    assert parse_formats("cif,poscar") == ("cif", "poscar")
    assert cli.SAMPLE_FORMATS == writers.FORMATS
    crystals = [SampledCrystal(rock_salt(a), {"spacegroup": 225}) for a in (5.6, 5.7)]
    with staged_dir(tmp_path / "out") as folder:
        write_samples(folder, crystals, ("poscar",))
    records = read_records(tmp_path / "out")
    assert [r["poscar"] for r in records] == ["poscar/000000.vasp", "poscar/000001.vasp"]
    assert records[0]["file"] == "poscar/000000.vasp"  # no CIFs: the POSCAR is the file
    back = Structure.from_file(tmp_path / "out" / records[1]["poscar"])
    assert len(back) == 8 and back.lattice.a == pytest.approx(5.7)
    assert SpacegroupAnalyzer(back).get_space_group_number() == 225
    assert not (tmp_path / "out" / "cifs").exists()
