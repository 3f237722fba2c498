"""Run one registered experiment and stamp where and from what code its result came.

    python tools/run_experiment.py NAME [--with RUN=~/.cache/symmcd/results/x] [--dry-run]
    python tools/run_experiment.py --list

NAME is an entry of scripts/experiments.yaml (the stem of its file in docs/results/). Its
placeholders (RUN, PREP, ...: folders outside the repository) take ``--with`` values; a command
still holding one is refused. The JSON result gains ``provenance``: registry name, commit (and
whether the tree had changes), machine, load average before and after, and wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
REGISTRY = ROOT / "scripts" / "experiments.yaml"
RESULTS = ROOT / "docs" / "results"
PLACEHOLDERS = re.compile(r"\b(RUN|PREP|BAND_GAP_RUN|LABEL)\b|\[")


def registry() -> dict[str, dict]:
    """The registered experiments, in file order, each with its result ``file``."""
    entries = yaml.safe_load(REGISTRY.read_text())
    return {name: {"file": f"{name}.json", **entry} for name, entry in entries.items()}


def code_version() -> str:
    """The commit, with "+changes" when the code differs from it (result files aside)."""

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout

    commit = git("rev-parse", "--short", "HEAD").strip() or "unknown"
    changed = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":!docs/results")
    return commit + ("+changes" if changed else "")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", nargs="?")
    parser.add_argument("--list", action="store_true", help="print the registered experiments")
    parser.add_argument("--dry-run", action="store_true", help="print the command only")
    parser.add_argument(
        "--with",
        dest="values",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="replace a placeholder of the command, e.g. RUN=~/.cache/symmcd/results/all",
    )
    args = parser.parse_args()
    experiments = registry()
    if args.list or not args.name:
        for name, entry in experiments.items():
            print(f"{name}: {entry['command']}")
        return 0
    if args.name not in experiments:
        print(f"run_experiment: unknown experiment {args.name!r} (see --list)", file=sys.stderr)
        return 2
    command = experiments[args.name]["command"]
    for value in args.values:
        placeholder, _, replacement = value.partition("=")
        command = re.sub(rf"\b{re.escape(placeholder)}\b", replacement, command)
    if args.dry_run:
        print(command)
        return 0
    if PLACEHOLDERS.search(command):
        print(
            f"run_experiment: {args.name}: give --with for its placeholders: {command}",
            file=sys.stderr,
        )
        return 2
    load_before, started, version = os.getloadavg()[0], time.perf_counter(), code_version()
    code = subprocess.run(command, shell=True, cwd=ROOT).returncode
    result = RESULTS / experiments[args.name]["file"]
    if code == 0 and result.suffix == ".json" and result.is_file():
        record = json.loads(result.read_text())
        record["provenance"] = {
            "experiment": args.name,
            "code_version": version,  # as the command started: edits made while it ran aside
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
            "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
            "wall_seconds": round(time.perf_counter() - started, 1),
        }
        result.write_text(json.dumps(record, indent=1) + "\n")
    return code


if __name__ == "__main__":
    sys.exit(main())
