"""Issue #39: every committed result is a registered experiment (scripts/experiments.yaml), each
registered command runs a script that exists, and the results page is built from the registry."""

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results"


def tool(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def runner():
    return tool("run_experiment")


def test_every_result_file_is_registered_and_every_command_names_a_script():
    experiments = runner().registry()
    files = {entry["file"] for entry in experiments.values()}
    unregistered = sorted(p.name for p in RESULTS.iterdir() if p.name not in files)
    assert not unregistered, f"not in scripts/experiments.yaml: {unregistered}"
    sections = {"paper", "ablation", "csp", "targets", "checks"}
    for name, entry in experiments.items():
        assert entry["section"] in sections, name
        assert entry["label"].strip(), name
        scripts = re.findall(r"python (\S+\.py)", entry["command"])
        assert scripts and all((ROOT / s).is_file() for s in scripts), (name, scripts)


def test_runner_refuses_unknown_names_and_unfilled_placeholders(capsys, monkeypatch):
    module = runner()
    monkeypatch.setattr("sys.argv", ["run_experiment.py", "no_such_experiment"])
    assert module.main() == 2
    assert "unknown experiment 'no_such_experiment'" in capsys.readouterr().err
    monkeypatch.setattr("sys.argv", ["run_experiment.py", "paper_tables_all_repulsion1"])
    assert module.main() == 2
    assert "give --with for its placeholders" in capsys.readouterr().err
    argv = ["run_experiment.py", "paper_tables_all_repulsion1", "--with", "RUN=out", "--dry-run"]
    monkeypatch.setattr("sys.argv", argv)
    assert module.main() == 0
    assert "--out out " in capsys.readouterr().out


def test_results_pages_are_up_to_date_and_show_every_experiment():
    make_docs = tool("make_docs")
    shown = set()
    for page in make_docs.PAGES:
        text = page.read_text()
        assert make_docs.filled(text) == text, f"{page.name} is stale: python tools/make_docs.py"
        shown |= {m.group(2) for m in make_docs.BLOCK.finditer(text)}
    for name, entry in runner().registry().items():
        assert name in shown or entry["section"] in shown, name
    results = make_docs.PAGES[0].read_text()
    assert "n/a" not in results and "Not run yet" not in results


def test_a_block_without_a_renderer_is_refused():
    make_docs = tool("make_docs")
    with pytest.raises(SystemExit, match="no renderer for the block 'nonesuch'"):
        make_docs.filled("<!-- generated:nonesuch -->\nold\n<!-- /generated -->\n")
