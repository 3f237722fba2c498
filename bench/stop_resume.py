"""A long run stopped and resumed: `symmcd sample --n N --workers 2`, then `symmcd evaluate` of
those crystals on a local Dask cluster of 2 workers (`--coverage 0`: without fingerprints), each
once straight through and once stopped by SIGTERM after `--stop-sample` / `--stop-evaluate` s and
run again (sample with `--resume`). Each evaluation starts from an empty cache of its own. Per
run: seconds, the work kept at the stop (chunks; crystals in the crystal store), the seconds the
stop cost against the straight run, and whether the output is the straight run's, byte for byte
(CIFs and samples.jsonl; metrics.json without its timings, and per_sample.csv)."""

import json
import os
import sqlite3
import tempfile
from pathlib import Path

import harness


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
        tmp = Path(tmp)
        sample = ["sample", "--n", str(args.n), "--seed", str(args.seed), "--workers", "2"]
        straight = harness.cli_seconds(*sample, "--out", str(tmp / "a"))
        stop = args.stop_sample
        first = harness.cli_seconds(*sample, "--out", str(tmp / "b"), stop_after=stop)
        kept = len(list(tmp.glob("b.partial/chunk-*")))
        second = harness.cli_seconds(*sample, "--out", str(tmp / "b"), "--resume")
        same = harness.same_files(tmp / "a", tmp / "b", "samples.jsonl", "cifs/*")
        rows = [f"sample | {straight:.1f} | {stop:g} s: {kept} chunks | {first + second:.1f} | "]
        rows[-1] += f"{first + second - straight:+.1f} | {same}"
        evaluate = ["evaluate", str(tmp / "a"), "--cluster", "local", "--workers", "2"]
        evaluate += [] if args.coverage else ["--no-coverage"]
        runs = {}
        for name, stop in (("ea", 0.0), ("eb", args.stop_evaluate)):
            os.environ["SYMMCD_CACHE"] = str(tmp / f"cache-{name}")
            runs[name] = [harness.cli_seconds(*evaluate, f"--out={tmp / name}", stop_after=stop)]
            if stop:
                kept = stored(tmp / f"cache-{name}")
                runs[name].append(harness.cli_seconds(*evaluate, f"--out={tmp / name}"))
        same = metrics(tmp / "ea") == metrics(tmp / "eb")
        same = same and harness.same_files(tmp / "ea", tmp / "eb", "per_sample.csv")
        straight, both = runs["ea"][0], sum(runs["eb"])
        rows.append(f"evaluate | {straight:.1f} | {stop:g} s: {kept} crystals | {both:.1f} | ")
        rows[-1] += f"{both - straight:+.1f} | {same}"
    header = "command | straight s | stopped after: kept | stopped + resumed s | lost s | same"
    title = f"{args.n} crystals, seed {args.seed}, coverage {'on' if args.coverage else 'off'}"
    harness.report(args.out, title, header, rows, harness.machine())


if __name__ == "__main__":
    main()
