"""Issue #35: the bad-input sweep (tests/bad_input_sweep.py, ~280 cases over every
subcommand, about a minute) finds no traceback, no hang and no silent success."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent / "bad_input_sweep.py"


def load_sweep():
    spec = importlib.util.spec_from_file_location("bad_input_sweep", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_classification():
    sweep = load_sweep()
    assert sweep.classify(2, "", "symmcd sample: error: x\n", None, False) == "clean"
    progress = (
        "sampling:  50%|#####     | 1/2 [00:00<00:00]\r"
        "sampling: 100%|##| 2/2 [00:01<00:00, 1.0it/s]\n"
    )
    assert sweep.classify(2, "", progress + "symmcd sample: error: x\n", None, False) == "clean"
    assert sweep.classify(2, "", "a\nb\n", None, False) == "other"
    assert sweep.classify(0, "", "", None, False) == "silent"
    assert sweep.classify(0, "", "", None, False, may_succeed=True) == "honoured"
    assert sweep.classify(None, "", "Traceback ...", "ValueError: x", False) == "traceback"
    assert sweep.classify(None, "", "", None, True) == "hang"


@pytest.mark.slow
def test_sweep_finds_no_traceback_hang_or_silent_success(tmp_path):
    table = load_sweep().sweep(out_json=tmp_path / "sweep.json")
    assert table["n"] >= 200
    bad = [row for row in table["cases"] if row["result"] in ("traceback", "hang", "silent")]
    assert [(row["case"], row["result"], row["exception"] or row["stderr"]) for row in bad] == []


@pytest.mark.parametrize("only", ["prepare", "info", "sample --seed", "sample --corrector"])
def test_sweep_sections_are_clean(only):
    table = load_sweep().sweep(only=only)
    assert table["n"] > 0
    assert [r["case"] for r in table["cases"] if r["result"] not in ("clean", "honoured")] == []
