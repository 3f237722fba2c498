"""`symmcd sample --n N --seed 0` beside one busy-loop process, with the default thread count,
`--threads 1` and `--threads 2`: sampling must not crawl when other jobs share the cores
(target: the default within 1.3x of the best). Wall seconds of the whole process."""

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import harness


def main() -> None:
    args = harness.parser(__file__, __doc__, n=100).parse_args()
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    rows = []
    try:
        time.sleep(2.0)
        load_before = os.getloadavg()[0]
        with tempfile.TemporaryDirectory() as tmp:
            for threads in (None, 1, 2):
                out, flag = f"--out={tmp}/{threads}", [f"--threads={threads}"] * bool(threads)
                seconds = harness.cli_seconds("sample", f"--n={args.n}", "--seed=0", out, *flag)
                summary = json.loads(Path(tmp, str(threads), "summary.json").read_text())
                rows.append((threads or "default", summary["conditions"]["threads"], seconds))
        machine = harness.machine(load_before)
    finally:
        busy.kill()
        busy.wait()
    best = min(seconds for *_, seconds in rows)
    harness.report(
        args.out,
        f"`symmcd sample --n {args.n} --seed 0` beside one busy loop",
        "--threads | threads used | seconds | / best",
        [f"{threads} | {used} | {s:.1f} | {s / best:.2f}" for threads, used, s in rows],
        f"{machine} (the busy loop plus any other jobs). Wall seconds of the whole process.",
    )


if __name__ == "__main__":
    main()
