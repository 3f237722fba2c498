"""`symmcd sample --n 100` beside one busy-loop process: the default thread count against
`--threads 1` and `--threads 2` (target: the default within 1.3x of the best).

    python bench/busy_cores.py [--n 100] [--out bench/busy_cores.out.txt]

Appends a table to the output. Other jobs on the machine add to the one busy loop; the load
average before and after is recorded.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BUSY = "while True: pass"


def run_sample(n: int, threads: int | None, folder: Path) -> tuple[float, int]:
    """Wall seconds of one `symmcd sample` process and the threads its summary records."""
    out = folder / f"threads_{threads or 'default'}"
    command = [sys.executable, "-m", "symmcd.cli", "sample", "--n", str(n), "--seed", "0"]
    command += ["--out", str(out)] + (["--threads", str(threads)] if threads else [])
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    seconds = time.perf_counter() - started
    summary = json.loads((out / "summary.json").read_text())
    return seconds, summary["conditions"]["threads"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--out", default=str(Path(__file__).with_name("busy_cores.out.txt")))
    args = parser.parse_args()
    busy = subprocess.Popen([sys.executable, "-c", BUSY])
    rows = []
    try:
        time.sleep(2.0)
        load_before = os.getloadavg()[0]
        with tempfile.TemporaryDirectory() as tmp:
            for threads in (None, 1, 2):
                seconds, used = run_sample(args.n, threads, Path(tmp))
                rows.append((threads, used, seconds))
                print(f"threads {threads or 'default'} ({used}): {seconds:.1f} s", flush=True)
        load_after = os.getloadavg()[0]
    finally:
        busy.kill()
        busy.wait()
    best = min(seconds for _, _, seconds in rows)
    lines = [
        "",
        f"## {datetime.date.today()} `symmcd sample --n {args.n} --seed 0` beside one busy loop",
        "",
        f"{os.cpu_count()} cores; load average before {load_before:.1f}, after {load_after:.1f} "
        "(the busy loop plus any other jobs). Wall seconds of the whole process.",
        "",
        "| --threads | threads used | seconds | / best |",
        "|---|---|---|---|",
    ]
    for threads, used, seconds in rows:
        lines.append(f"| {threads or 'default'} | {used} | {seconds:.1f} | {seconds / best:.2f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    with open(args.out, "a") as handle:
        handle.write(text)


if __name__ == "__main__":
    main()
