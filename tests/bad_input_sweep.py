"""Bad-input sweep over every subcommand (issue #35: no traceback, no hang, no silent loss).

    python tests/bad_input_sweep.py [--out docs/results/bad_input_sweep.json] [--only PREFIX]

Each case calls ``symmcd.cli.main(argv)`` in this one process (stdout and stderr captured,
warnings recorded rather than printed) under a 60 s alarm, and is classified as
``clean`` (exit 2, one line on stderr, no traceback), ``traceback`` (an exception escaped, or a
traceback was printed), ``hang`` (the alarm fired), ``silent`` (exit 0 although the request
cannot be honoured) or ``other`` (another exit status, or a refusal of more than one line).
Prints the counts and the cases that are not clean; writes the table as JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import signal
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path

ALARM_SECONDS = 60
# tqdm progress bars (on stderr, updated with carriage returns) do not count as lines
PROGRESS = re.compile(r"\d+%\||/s\]\s*$|\r")
ROOT = Path(__file__).resolve().parents[1]

GOOD_CIF = """data_NaCl
_cell_length_a 5.64
_cell_length_b 5.64
_cell_length_c 5.64
_cell_angle_alpha 90
_cell_angle_beta 90
_cell_angle_gamma 90
_symmetry_space_group_name_H-M 'P 1'
loop_
_symmetry_equiv_pos_as_xyz
'x, y, z'
loop_
_atom_site_label
_atom_site_type_symbol
_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z
_atom_site_occupancy
Na1 Na 0 0 0 1
Na2 Na 0 0.5 0.5 1
Na3 Na 0.5 0 0.5 1
Na4 Na 0.5 0.5 0 1
Cl1 Cl 0.5 0.5 0.5 1
Cl2 Cl 0.5 0 0 1
Cl3 Cl 0 0.5 0 1
Cl4 Cl 0 0 0.5 1
"""
DISORDERED_CIF = GOOD_CIF.replace("Na1 Na 0 0 0 1", "Na1 Na 0 0 0 0.5")
UNKNOWN_ELEMENT_CIF = GOOD_CIF.replace("Cl1 Cl", "Xx1 Xx")
OVERLAP_CIF = GOOD_CIF.replace("Cl1 Cl 0.5 0.5 0.5", "Cl1 Cl 0.001 0 0")
ZERO_CELL_CIF = GOOD_CIF.replace("_cell_length_a 5.64", "_cell_length_a 0")
CORRUPT_CIF = "data_x\n_cell_length_a five\nloop_\n_atom_site_label\n%%%\n"
BINARY = bytes(range(256)) * 8


# odd but honourable requests: exit 0 is right for these ("honoured", not "silent")
MAY_SUCCEED = {
    "sample --top-k-spacegroups '1000'",  # every group the model saw, recorded as such
    "sample --elements 'Li,Li'",  # a repeated element
    "sample --formula 'He'",  # a noble gas the model saw in training
    "sample --formula 'Ne2'",
    "sample --formula Na in Ia-3d",  # Na16 (any number of formula units per cell)
    "sample --n given twice",  # argparse: the last one counts
    "csp formula 'H1000'",  # csp predicts per reduced formula: H2, recorded as such
}


class Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise Timeout


def make_fixtures(root: Path) -> dict[str, str]:
    """Files and folders the cases name (all under ``root``)."""
    f: dict[str, Path] = {}

    def folder(name: str, files: dict[str, str | bytes] | None = None) -> Path:
        path = root / name
        path.mkdir(parents=True, exist_ok=True)
        for file, text in (files or {}).items():
            target = path / file
            target.write_bytes(text if isinstance(text, bytes) else text.encode())
        return path

    def file(name: str, text: str | bytes) -> Path:
        path = root / name
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        return path

    f["good_dir"] = folder("good", {f"g{i}.cif": GOOD_CIF for i in range(3)})
    f["good_cif"] = f["good_dir"] / "g0.cif"
    f["empty_dir"] = folder("empty")
    f["txt_dir"] = folder("txtonly", {"a.txt": "hello"})
    f["corrupt_dir"] = folder("corrupt", {"a.cif": CORRUPT_CIF, "b.cif": BINARY})
    f["empty_cif_dir"] = folder("emptycif", {"a.cif": "", "b.cif": "\n"})
    f["disordered_dir"] = folder("disordered", {"a.cif": DISORDERED_CIF})
    f["unknown_dir"] = folder("unknownel", {"a.cif": UNKNOWN_ELEMENT_CIF})
    f["overlap_dir"] = folder("overlap", {"a.cif": OVERLAP_CIF})
    f["zerocell_dir"] = folder("zerocell", {"a.cif": ZERO_CELL_CIF})
    f["corrupt_cif"] = f["corrupt_dir"] / "a.cif"
    f["disordered_cif"] = f["disordered_dir"] / "a.cif"
    f["empty_file"] = file("empty.txt", "")
    f["binary_file"] = file("binary.bin", BINARY)
    f["plain_file"] = file("plain.txt", "not a folder\n")
    f["csv_nocif"] = file("nocif.csv", "material_id,formula\nm1,NaCl\n")
    f["csv_empty"] = file("empty.csv", "")
    f["csv_header"] = file("header.csv", "material_id,cif\n")
    f["csv_badcif"] = file("badcif.csv", 'material_id,cif\nm1,"garbage"\n')
    f["ckpt_empty"] = file("empty.pt", "")
    f["ckpt_binary"] = file("binary.pt", BINARY)
    f["ckpt_text"] = file("text.pt", "model weights\n")
    f["ckpt_zip"] = file("trunc.pt", b"PK\x03\x04" + BINARY[:100])
    f["yaml_bad"] = file("bad.yaml", "model: [unclosed\n")
    f["yaml_unknown"] = file("unknown.yaml", "no_such_key: 1\n")
    f["yaml_list"] = file("list.yaml", "- 1\n- 2\n")
    f["nonempty_out"] = folder("nonempty", {"keep.txt": "user data"})
    f["prepared_empty"] = folder("prepared_empty")
    f["bad_npz_dir"] = folder("badnpz", {"train.npz": BINARY})
    f["missing"] = root / "does_not_exist"
    f["under_file"] = f["plain_file"] / "below"
    f["run_empty"] = folder("run_empty")
    f["ckpt_dir"] = folder("ckpt_dir.pt")
    return {key: str(value) for key, value in f.items()}


def cases(f: dict[str, str], out) -> list[tuple[str, list[str]]]:
    """(name, argv) of every case; ``out(name)`` is a fresh output path."""
    c: list[tuple[str, list[str]]] = []

    def add(name: str, argv: list[str]) -> None:
        c.append((name, argv))

    fast = ["--steps", "2"]
    # --- sample: numbers
    for value in ("0", "-1", "abc", "1.5", "", "300000000", "1e3", "nan"):
        add(f"sample --n {value!r}", ["sample", "--n", value, *fast, "--out", out("s")])
    numbers = {
        "--steps": ("0", "-3", "100000", "x", "2.5"),
        "--batch-size": ("0", "-1", "x"),
        "--seed": ("-1", "x", "1e30", "99999999999999999999999"),
        "--max-attempts": ("0", "-2", "x", "1000"),
        "--corrector-steps": ("-1", "x", "1000000"),
        "--top-k-spacegroups": ("0", "-1", "1000"),
        "--min-distance": ("-1", "nan", "inf", "100", "x"),
        "--element-temperature": ("0", "-1", "nan", "inf", "1e9"),
        "--repulsion": ("-1", "nan", "inf", "1e9"),
        "--threads": ("0", "-1", "x"),
        "--workers": ("0", "-1", "x", "100000"),
        "--shard": ("0/4", "5/4", "1/0", "x", "1/", "/4", "1.5/2"),
        "--guidance": ("-1", "nan", "inf"),
    }
    for option, values in numbers.items():
        for value in values:
            argv = ["sample", "--n", "1", "--out", out("s"), option, value]
            if option != "--steps":
                argv += fast
            if option == "--guidance":
                argv += ["--target", "formation_energy_per_atom=-1"]
            add(f"sample {option} {value!r}", argv)
    # --- sample: symbols, elements, formulas, targets
    symbols = {
        "--spacegroups": (
            "231",
            "0",
            "-5",
            "Xx",
            "P99",
            "Fm-3q",
            ",",
            "225,,999",
            "P 1 2 3 4",
            "1.5",
        ),
        "--elements": (
            "Xx",
            "Li,Xx",
            "",
            ",",
            "li",
            "Og",
            "Uue",
            "Li,Li",
            "123",
            "H,He,Ne,Ar,Kr,Xe",
        ),
        "--formula": (
            "Xx2",
            "",
            "Li-1O",
            "Li0.5O",
            "()",
            "Li(O",
            "H1000",
            "Li999O999",
            "He",
            "Ne2",
            "Og1",
            "O0",
            "li2o",
            "NaCl)",
            "12",
            "Li2O extra",
        ),
        "--target": (
            "band_gap",
            "band_gap=x",
            "nope=1",
            "=1",
            "band_gap=nan",
            "band_gap=inf",
            "band_gap=1e9",
            "formation_energy_per_atom=-1e9",
        ),
    }
    for option, values in symbols.items():
        for value in values:
            add(
                f"sample {option} {value!r}",
                ["sample", "--n", "1", *fast, "--out", out("s"), option, value],
            )
    conflicts = {
        "--spacegroups + --top-k": ["--spacegroups", "225", "--top-k-spacegroups", "3"],
        "--formula vs --elements": ["--formula", "NaCl", "--elements", "Fe,O"],
        "--formula Na in Ia-3d": ["--formula", "Na1", "--spacegroups", "230"],
        "--formula Li7 in Fm-3m": ["--formula", "Li7", "--spacegroups", "225"],
        "--guidance without --target": ["--guidance", "2"],
        "--target with unconditioned --checkpoint": [
            "--target",
            "band_gap=1",
            "--checkpoint",
            str(ROOT / "symmcd/weights/default.pt"),
        ],
        "--precision 16": ["--precision", "16"],
        "--format xyz": ["--format", "xyz"],
        "--format ''": ["--format", ""],
        "--format cif,,bogus": ["--format", "cif,,bogus"],
        "unknown option": ["--bogus", "1"],
        "--n given twice": ["--n", "2"],
    }
    for name, extra in conflicts.items():
        add(f"sample {name}", ["sample", "--n", "1", *fast, "--out", out("s"), *extra])
    for name, path in (
        ("missing", f["missing"]),
        ("empty", f["ckpt_empty"]),
        ("binary", f["ckpt_binary"]),
        ("text", f["ckpt_text"]),
        ("truncated zip", f["ckpt_zip"]),
        ("a folder", f["ckpt_dir"]),
        ("a CIF", f["good_cif"]),
    ):
        add(
            f"sample --checkpoint {name}",
            ["sample", "--n", "1", *fast, "--out", out("s"), "--checkpoint", path],
        )
    for name, path in (
        ("non-empty", f["nonempty_out"]),
        ("a file", f["plain_file"]),
        ("under a file", f["under_file"]),
        ("empty name", ""),
        ("/proc", "/proc/symmcd_out"),
    ):
        add(f"sample --out {name}", ["sample", "--n", "1", *fast, "--out", path])
    add("sample no --out", ["sample", "--n", "1"])
    add("sample no --n", ["sample", "--out", out("s")])

    # --- csp
    for value in ("Xx2", "", "Li-1", "H1000", "()", "li2o", "Og", "Na0.5Cl"):
        add(f"csp formula {value!r}", ["csp", value, "--n", "1", *fast, "--out", out("c")])
    for option, value in (
        ("--n", "0"),
        ("--n", "-1"),
        ("--n", "x"),
        ("--steps", "0"),
        ("--refine-start", "-0.1"),
        ("--refine-start", "1.5"),
        ("--refine-start", "nan"),
        ("--workers", "0"),
        ("--threads", "0"),
        ("--seed", "-1"),
        ("--spacegroups", "999"),
        ("--spacegroups", "Xx"),
    ):
        add(
            f"csp {option} {value!r}",
            ["csp", "NaCl", "--n", "1", *fast, "--out", out("c"), option, value],
        )
    for name, path in (
        ("missing", f["missing"]),
        ("empty folder", f["empty_dir"]),
        ("corrupt CIFs", f["corrupt_dir"]),
        ("disordered CIF", f["disordered_cif"]),
        ("CSV without cif column", f["csv_nocif"]),
        ("empty file", f["empty_file"]),
        ("unknown element", f["unknown_dir"]),
    ):
        add(
            f"csp --templates {name}",
            ["csp", "NaCl", "--n", "1", *fast, "--out", out("c"), "--templates", path],
        )
    for name, path in (("missing", f["missing"]), ("binary", f["ckpt_binary"])):
        add(
            f"csp --checkpoint {name}",
            ["csp", "NaCl", "--n", "1", *fast, "--out", out("c"), "--checkpoint", path],
        )
    for name, path in (("non-empty", f["nonempty_out"]), ("under a file", f["under_file"])):
        add(f"csp --out {name}", ["csp", "NaCl", "--n", "1", *fast, "--out", path])
    add("csp no formula", ["csp", "--out", out("c")])

    # --- evaluate
    for name, path in (
        ("missing", f["missing"]),
        ("empty folder", f["empty_dir"]),
        ("txt only", f["txt_dir"]),
        ("corrupt CIFs", f["corrupt_dir"]),
        ("empty CIFs", f["empty_cif_dir"]),
        ("disordered", f["disordered_dir"]),
        ("unknown element", f["unknown_dir"]),
        ("CSV without cif", f["csv_nocif"]),
        ("empty CSV", f["csv_empty"]),
        ("header-only CSV", f["csv_header"]),
        ("CSV of garbage", f["csv_badcif"]),
        ("binary file", f["binary_file"]),
    ):
        add(f"evaluate samples {name}", ["evaluate", path, "--out", out("e"), "--no-coverage"])
    for option, value in (
        ("--relax", "-1"),
        ("--workers", "0"),
        ("--seed", "-1"),
        ("--relax", "x"),
        ("--reference", f["missing"]),
        ("--reference", f["csv_nocif"]),
        ("--reference", f["csv_empty"]),
        ("--train", f["missing"]),
        ("--train", f["csv_nocif"]),
        ("--reference", f["corrupt_dir"]),
    ):
        add(
            f"evaluate {option} {Path(value).name!r}",
            ["evaluate", f["good_dir"], "--out", out("e"), "--no-coverage", option, value],
        )
    for name, path in (
        ("non-empty", f["nonempty_out"]),
        ("under a file", f["under_file"]),
        ("a file", f["plain_file"]),
    ):
        add(f"evaluate --out {name}", ["evaluate", f["good_dir"], "--out", path])

    # --- relax
    for name, path in (
        ("missing", f["missing"]),
        ("empty folder", f["empty_dir"]),
        ("txt only", f["txt_dir"]),
        ("corrupt CIFs", f["corrupt_dir"]),
        ("empty CIFs", f["empty_cif_dir"]),
        ("disordered", f["disordered_dir"]),
        ("unknown element", f["unknown_dir"]),
        ("a file", f["plain_file"]),
    ):
        add(f"relax input {name}", ["relax", path, "--out", out("r")])
    for option, value in (
        ("--fmax", "0"),
        ("--fmax", "-1"),
        ("--fmax", "nan"),
        ("--fmax", "x"),
        ("--steps", "0"),
        ("--steps", "-1"),
        ("--time-limit", "-1"),
        ("--time-limit", "nan"),
        ("--workers", "0"),
        ("--workers", "-2"),
    ):
        add(f"relax {option} {value!r}", ["relax", f["good_dir"], "--out", out("r"), option, value])
    for name, path in (("non-empty", f["nonempty_out"]), ("under a file", f["under_file"])):
        add(f"relax --out {name}", ["relax", f["good_dir"], "--out", path])

    # --- prepare
    add("prepare nothing", ["prepare", "--out", out("p")])
    add("prepare --dataset bogus", ["prepare", "--dataset", "bogus", "--out", out("p")])
    add(
        "prepare --dataset + --train",
        ["prepare", "--dataset", "mp20", "--train", f["good_dir"], "--out", out("p")],
    )
    for name, path in (
        ("missing", f["missing"]),
        ("empty folder", f["empty_dir"]),
        ("txt only", f["txt_dir"]),
        ("corrupt CIFs", f["corrupt_dir"]),
        ("empty CIFs", f["empty_cif_dir"]),
        ("disordered", f["disordered_dir"]),
        ("unknown element", f["unknown_dir"]),
        ("overlapping atoms", f["overlap_dir"]),
        ("zero cell", f["zerocell_dir"]),
        ("CSV without cif", f["csv_nocif"]),
        ("empty CSV", f["csv_empty"]),
        ("header-only CSV", f["csv_header"]),
        ("CSV of garbage", f["csv_badcif"]),
        ("binary file", f["binary_file"]),
    ):
        add(f"prepare --train {name}", ["prepare", "--train", path, "--out", out("p")])
    add("prepare --val only", ["prepare", "--val", f["good_dir"], "--out", out("p")])
    add(
        "prepare --val missing",
        ["prepare", "--train", f["good_dir"], "--val", f["missing"], "--out", out("p")],
    )
    for value in ("0", "-1", "nan", "inf", "x"):
        add(
            f"prepare --symprec {value!r}",
            ["prepare", "--train", f["good_dir"], "--symprec", value, "--out", out("p")],
        )
    for value in ("0", "-1"):
        add(
            f"prepare --workers {value!r}",
            ["prepare", "--train", f["good_dir"], "--workers", value, "--out", out("p")],
        )
    add(
        "prepare --out under a file",
        ["prepare", "--train", f["good_dir"], "--out", f["under_file"]],
    )
    add("prepare --out a file", ["prepare", "--train", f["good_dir"], "--out", f["plain_file"]])

    # --- info
    for name, path in (
        ("missing", f["missing"]),
        ("empty folder", f["empty_dir"]),
        ("corrupt npz", f["bad_npz_dir"]),
        ("a CIF", f["good_cif"]),
        ("binary file", f["binary_file"]),
        ("empty file", f["empty_file"]),
    ):
        add(f"info {name}", ["info", path])

    # --- train (every case names --data, so nothing prepares MP-20)
    data = f["prepared_empty"]
    for name, extra in (
        ("--data missing", ["--data", f["missing"]]),
        ("--data empty", ["--data", data]),
        ("--data corrupt npz", ["--data", f["bad_npz_dir"]]),
        ("--data a file", ["--data", f["plain_file"]]),
        ("--config missing", ["--config", f["missing"], "--data", data]),
        ("--config bogus name", ["--config", "bogus", "--data", data]),
        ("--config broken YAML", ["--config", f["yaml_bad"], "--data", data]),
        ("--config unknown key", ["--config", f["yaml_unknown"], "--data", data]),
        ("--config a list", ["--config", f["yaml_list"], "--data", data]),
        ("--config binary", ["--config", f["binary_file"], "--data", data]),
        ("--set no equals", ["--set", "max_epochs", "--data", data]),
        ("--set unknown key", ["--set", "no.such=1", "--data", data]),
        ("--set bad value", ["--set", "model.hidden_dim=abc", "--data", data]),
        ("--set negative width", ["--set", "model.hidden_dim=-4", "--data", data]),
        ("--max-epochs 0", ["--max-epochs", "0", "--data", data]),
        ("--max-epochs -1", ["--max-epochs", "-1", "--data", data]),
        ("--devices 0", ["--devices", "0", "--data", data]),
        ("--devices -1", ["--devices", "-1", "--data", data]),
        ("--accelerator bogus", ["--accelerator", "bogus", "--data", data]),
        ("--strategy bogus", ["--strategy", "bogus", "--data", data]),
        ("--init-from missing", ["--init-from", f["missing"], "--data", data]),
        ("--init-from binary", ["--init-from", f["ckpt_binary"], "--data", data]),
        ("--resume without last.ckpt", ["--resume", "--data", data]),
    ):
        add(f"train {name}", ["train", "--out", out("t"), *extra])
    add("train --out under a file", ["train", "--out", f["under_file"], "--data", data])

    # --- property train / predict
    for name, extra in (
        ("--data missing", ["--data", f["missing"]]),
        ("--data empty", ["--data", data]),
        ("--data corrupt npz", ["--data", f["bad_npz_dir"]]),
        ("--epochs 0", ["--epochs", "0", "--data", data]),
        ("--epochs -1", ["--epochs", "-1", "--data", data]),
        ("--hidden-dim 0", ["--hidden-dim", "0", "--data", data]),
        ("--layers -1", ["--layers", "-1", "--data", data]),
        ("--batch-size 0", ["--batch-size", "0", "--data", data]),
        ("--lr 0", ["--lr", "0", "--data", data]),
        ("--lr nan", ["--lr", "nan", "--data", data]),
        ("--lr -1", ["--lr", "-1", "--data", data]),
        ("--threads -1", ["--threads", "-1", "--data", data]),
        ("--target unknown", ["--target", "no_such_column", "--data", data]),
        ("--representation bogus", ["--representation", "bogus", "--data", data]),
        ("--resume nothing", ["--resume", "--data", data]),
    ):
        add(f"property train {name}", ["property", "train", "--out", out("pt"), *extra])
    for name, model in (
        ("missing", f["missing"]),
        ("empty", f["ckpt_empty"]),
        ("binary", f["ckpt_binary"]),
        ("truncated zip", f["ckpt_zip"]),
        ("sampling checkpoint", str(ROOT / "symmcd/weights/default.pt")),
        ("a folder", f["ckpt_dir"]),
    ):
        add(
            f"property predict --model {name}",
            ["property", "predict", f["good_dir"], "--model", model, "--out", out("pp") + ".csv"],
        )
    add("property no action", ["property"])
    add("no command", [])
    add("unknown command", ["bogus"])
    return c


def classify(
    status, out: str, err: str, error: str | None, hung: bool, may_succeed: bool = False
) -> str:
    if hung:
        return "hang"
    if error is not None or "Traceback" in err or "Traceback" in out:
        return "traceback"
    if status == 0:
        return "honoured" if may_succeed else "silent"
    lines = [
        line for line in err.strip().splitlines() if line.strip() and not PROGRESS.search(line)
    ]
    if status == 2 and len(lines) == 1:
        return "clean"
    return "other"


def run_case(argv: list[str], may_succeed: bool = False) -> dict:
    from symmcd.cli import main

    out, err = io.StringIO(), io.StringIO()
    status, error, hung = None, None, False
    started = time.perf_counter()
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(ALARM_SECONDS)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            with warnings.catch_warnings(record=True):
                warnings.simplefilter("always")
                try:
                    status = main(argv)
                except SystemExit as exit_:
                    status = exit_.code if isinstance(exit_.code, int) else 2
    except Timeout:
        hung = True
    except Exception as exc:  # noqa: BLE001 - what the sweep is looking for
        error = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
        err.write(traceback.format_exc())
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    seconds = time.perf_counter() - started
    stderr = err.getvalue()
    return {
        "status": status,
        "result": classify(status, out.getvalue(), stderr, error, hung, may_succeed),
        "seconds": round(seconds, 2),
        "stderr": stderr.strip().splitlines()[-1][:300] if stderr.strip() else "",
        "stderr_lines": len(stderr.strip().splitlines()),
        "exception": error,
    }


@contextlib.contextmanager
def _restored(cache: str | None):
    """Put SYMMCD_CACHE back as it was after the sweep."""
    try:
        yield
    finally:
        if cache is None:
            os.environ.pop("SYMMCD_CACHE", None)
        else:
            os.environ["SYMMCD_CACHE"] = cache


def sweep(only: str | None = None, out_json: Path | None = None) -> dict:
    """Run every case; returns {"counts": ..., "cases": [...]} (and writes it to out_json)."""
    rows = []
    cache_before = os.environ.get("SYMMCD_CACHE")
    with tempfile.TemporaryDirectory(prefix="symmcd_sweep_") as tmp, _restored(cache_before):
        root = Path(tmp)
        os.environ["SYMMCD_CACHE"] = str(root / "cache")  # nothing reads or fills the user's
        fixtures = make_fixtures(root / "inputs")
        counter = iter(range(1_000_000))

        def fresh(prefix: str) -> str:
            return str(root / "outputs" / f"{prefix}{next(counter)}")

        (root / "outputs").mkdir()
        all_cases = cases(fixtures, fresh)
        for name, argv in all_cases:
            if only and not name.startswith(only):
                continue
            row = {
                "case": name,
                "argv": [portable(a, tmp) for a in argv],
                **run_case(argv, name in MAY_SUCCEED),
            }
            row["stderr"] = portable(row["stderr"], tmp)
            rows.append(row)
            mark = "" if row["result"] in ("clean", "honoured") else "  <--"
            print(f"{row['result']:<9} {row['seconds']:6.1f} s  {name}{mark}", flush=True)
    counts = {
        key: sum(r["result"] == key for r in rows)
        for key in ("clean", "honoured", "traceback", "hang", "silent", "other")
    }
    table = {"counts": counts, "n": len(rows), "alarm_seconds": ALARM_SECONDS, "cases": rows}
    if out_json is not None:
        out_json.parent.mkdir(parents=True, exist_ok=True)
        out_json.write_text(json.dumps(table, indent=1) + "\n")
    return table


def portable(text: str, tmp: str) -> str:
    """``text`` with this machine's temporary folder and checkout written as TMP and REPO."""
    return text.replace(tmp, "TMP").replace(str(ROOT), "REPO")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs/results/bad_input_sweep.json"))
    parser.add_argument("--only", help="run only the cases whose name starts with this")
    args = parser.parse_args()
    started = time.perf_counter()
    table = sweep(args.only, Path(args.out) if not args.only else None)
    print(f"\n{table['n']} cases in {time.perf_counter() - started:.0f} s: {table['counts']}")
    for row in table["cases"]:
        if row["result"] not in ("clean", "honoured"):
            print(
                f"- {row['result']}: {row['case']} (exit {row['status']}): "
                f"{row['exception'] or row['stderr']}"
            )
    sys.exit(0)


if __name__ == "__main__":
    main()
