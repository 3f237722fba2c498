"""What the benchmarks share: flags, timing, the machine line and the dated markdown section
each run appends to bench/NAME.out.txt (earlier sections stay)."""

import argparse
import contextlib
import datetime
import filecmp
import os
import platform
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

P, T = ParamSpec("P"), TypeVar("T")


def parser(script: str, doc: str | None, **flags: Any) -> argparse.ArgumentParser:
    """A parser whose help is the script's docstring, with --out (bench/NAME.out.txt) and one
    --flag per keyword, typed by its default (int where the default is None)."""
    kind = argparse.RawDescriptionHelpFormatter
    result = argparse.ArgumentParser(description=doc, formatter_class=kind)
    flags = {"out": Path(script).with_suffix(".out.txt"), **flags}
    for name, default in flags.items():
        kind = int if default is None else type(default)
        flag = "--" + name.replace("_", "-")
        result.add_argument(flag, type=kind, default=default, help="default: %(default)s")
    return result


def timed(run: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> tuple[T, float]:
    """What run(*args, **kwargs) returns and the wall seconds it took."""
    start = time.perf_counter()
    return run(*args, **kwargs), time.perf_counter() - start


def cli_seconds(*args: str, stop_after: float = 0.0) -> float:
    """Wall seconds of the command `symmcd ARGS` in a process of its own; with stop_after, it
    gets a SIGTERM after that many seconds (if still running) and must exit 143 or 0."""
    started, quiet = time.perf_counter(), subprocess.DEVNULL
    run = subprocess.Popen([sys.executable, "-m", "symmcd.cli", *args], stdout=quiet, stderr=quiet)
    with contextlib.suppress(subprocess.TimeoutExpired):
        run.wait(stop_after or None)
    run.send_signal(signal.SIGTERM)
    if run.wait() not in (0, 143 if stop_after else 0):
        raise SystemExit(f"symmcd {' '.join(args)} failed with status {run.returncode}")
    return time.perf_counter() - started


def same_files(a: Path, b: Path, *patterns: str) -> bool:
    """Whether the files under a and b that match the glob patterns have the same names and
    bytes."""
    found = {str(p.relative_to(r)) for r in (a, b) for pattern in patterns for p in r.glob(pattern)}
    return filecmp.cmpfiles(a, b, sorted(found), shallow=False)[0] == sorted(found)


def machine(load_before: float | None = None) -> str:
    """CPU, cores, torch version and threads (if torch is loaded) and the load average."""
    parts = [platform.processor() or platform.machine(), f"{os.cpu_count()} cores"]
    if torch := sys.modules.get("torch"):
        parts.append(f"torch {torch.__version__}, torch threads {torch.get_num_threads()}")
    before = "" if load_before is None else f" before {load_before:.1f}, after"
    return ", ".join(parts) + f"; load average{before} {os.getloadavg()[0]:.1f}"


def report(
    out: Path, title: str, header: str, rows: Iterable[str], above: str = "", below: str = ""
) -> None:
    """Print, and append to out, a section: today's date and the title, the text above, a
    markdown table (header and rows: cells joined by " | ") and the text below."""
    table = [f"| {header} |", "|" + "---|" * (header.count("|") + 1), *(f"| {r} |" for r in rows)]
    parts = [f"\n## {datetime.date.today()} {title}", above, "\n".join(table), below]
    text = "\n\n".join(part for part in parts if part) + "\n"
    print(text)
    with Path(out).open("a") as handle:
        handle.write(text)
