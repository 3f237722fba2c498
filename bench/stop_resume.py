"""A long run stopped and resumed: `symmcd sample --n N --workers 2`, then `symmcd evaluate` of
those crystals on a local Dask cluster of 2 workers (`--coverage 0`: without fingerprints), each
once straight through and once stopped by SIGTERM after `--stop-sample` / `--stop-evaluate` s and
run again (sample with `--resume`). Each evaluation starts from an empty cache of its own. Per
run: seconds, the work kept at the stop (chunks; crystals in the crystal store), the seconds the
stop cost against the straight run, and whether the output is the straight run's, byte for byte
(CIFs and samples.jsonl; metrics.json without its timings, and per_sample.csv)."""

import filecmp
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import harness


def seconds(args: list[str], env: dict, stop_after: float = 0.0) -> float:
    """Wall seconds of `symmcd ARGS`, stopped by SIGTERM after stop_after s when given."""
    started = time.perf_counter()
    command = [sys.executable, "-m", "symmcd.cli", *args]
    run = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if stop_after:
        time.sleep(stop_after)
        run.send_signal(signal.SIGTERM)
    if run.wait() not in (0, 143 if stop_after else 0):
        raise SystemExit(f"symmcd {' '.join(args)} failed")
    return time.perf_counter() - started


def same_files(a: Path, b: Path, names: list[str]) -> bool:
    names = [n for n in names if (a / n).is_file() or (b / n).is_file()]
    return filecmp.cmpfiles(a, b, names, shallow=False)[0] == names


def metrics(folder: Path) -> dict:
    found = json.loads((folder / "metrics.json").read_text())
    return {k: v for k, v in found.items() if not k.startswith("seconds")}


def stored(cache: Path) -> int:
    with sqlite3.connect(cache / "summaries" / "crystals.sqlite") as db:
        return db.execute("SELECT COUNT(*) FROM entries WHERE kind LIKE 'describe%'").fetchone()[0]


def main() -> None:
    flags = {"n": 20000, "seed": 0, "stop_sample": 300.0, "stop_evaluate": 120.0, "coverage": 0}
    args = harness.parser(__file__, __doc__, **flags).parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp, env = Path(tmp), dict(os.environ)
        sample = ["sample", "--n", str(args.n), "--seed", str(args.seed), "--workers", "2"]
        straight = seconds([*sample, "--out", str(tmp / "a")], env)
        stop = args.stop_sample
        first = seconds([*sample, "--out", str(tmp / "b")], env, stop)
        kept = len(list(tmp.glob("b.partial/chunk-*")))
        second = seconds([*sample, "--out", str(tmp / "b"), "--resume"], env)
        cifs = sorted(p.name for p in (tmp / "a" / "cifs").iterdir())
        same = same_files(tmp / "a", tmp / "b", ["samples.jsonl"]) and (
            same_files(tmp / "a" / "cifs", tmp / "b" / "cifs", cifs)
        )
        rows = [f"sample | {straight:.1f} | {stop:g} s: {kept} chunks | {first + second:.1f} | "]
        rows[-1] += f"{first + second - straight:+.1f} | {same}"
        evaluate = ["evaluate", str(tmp / "a"), "--cluster", "local", "--workers", "2"]
        evaluate += [] if args.coverage else ["--no-coverage"]
        runs = {}
        for name, stop in (("ea", 0.0), ("eb", args.stop_evaluate)):
            env["SYMMCD_CACHE"] = str(tmp / f"cache-{name}")
            runs[name] = [seconds([*evaluate, "--out", str(tmp / name)], env, stop)]
            if stop:
                kept = stored(tmp / f"cache-{name}")
                runs[name].append(seconds([*evaluate, "--out", str(tmp / name)], env))
        same = metrics(tmp / "ea") == metrics(tmp / "eb")
        same = same and same_files(tmp / "ea", tmp / "eb", ["per_sample.csv"])
        straight, both = runs["ea"][0], sum(runs["eb"])
        rows.append(f"evaluate | {straight:.1f} | {stop:g} s: {kept} crystals | {both:.1f} | ")
        rows[-1] += f"{both - straight:+.1f} | {same}"
    header = "command | straight s | stopped after: kept | stopped + resumed s | lost s | same"
    title = f"{args.n} crystals, seed {args.seed}, coverage {'on' if args.coverage else 'off'}"
    harness.report(args.out, title, header, rows, harness.machine())


if __name__ == "__main__":
    main()
