"""The default sampler at scale: wall time, draws per crystal and what the crystals pass.

Runs ``symmcd sample`` (``sample_to_dir``) with the defaults of the shipped model, or the
settings given, and records: wall time and crystals/s, peak memory, draws per crystal (first
draws included: 1.0 = nothing redrawn), and from ``samples.jsonl`` the share whose spglib check
passed (``symmetry_ok``), that collapsed, and with all atoms at least 1 Å apart. Appends a JSON
record to ``--out`` (one line per run) and prints it. Time it on otherwise idle cores.

    python scripts/default_sampler.py --n 10000 --samples RUN/samples [--seed 0]
        [--threads 2] [--repulsion D] [--corrector-steps K] [--max-attempts 10]
        [--out docs/results/default_sampler.jsonl]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shlex
import sys
import time
from pathlib import Path

import torch

from symmcd.sampling import sample_to_dir
from symmcd.sampling.writers import read_records

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--samples", type=Path, required=True, help="output folder (new)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument(
        "--out", type=Path, default=ROOT / "docs" / "results" / "default_sampler.jsonl"
    )
    parser.add_argument("--repulsion", type=float, default=None)
    parser.add_argument("--corrector-steps", type=int, default=None)
    parser.add_argument("--max-attempts", type=int, default=None)
    args = parser.parse_args()
    options = {
        key: value
        for key, value in (
            ("repulsion", args.repulsion),
            ("corrector_steps", args.corrector_steps),
            ("max_attempts", args.max_attempts),
        )
        if value is not None
    }
    load_before = os.getloadavg()
    started = time.perf_counter()
    summary = sample_to_dir(
        args.samples,
        args.n,
        checkpoint=args.checkpoint,
        seed=args.seed,
        threads=args.threads,
        progress=False,
        **options,
    )
    wall = time.perf_counter() - started
    records = read_records(args.samples)
    n = len(records)
    record = {
        "command": "python scripts/default_sampler.py "
        + " ".join(shlex.quote(a) for a in sys.argv[1:]),
        "n": n,
        "wall_seconds": round(wall, 1),
        "crystals_per_s": round(n / wall, 2),
        "minutes_per_10000": round(wall / n * 10_000 / 60, 2),
        "draws_per_crystal": summary["draws_per_crystal"],
        "symmetry_ok": sum(r["symmetry_ok"] for r in records) / n,
        "collapsed": sum(bool(r["collapsed"]) for r in records) / n,
        "min_distance_at_least_1A": sum(r["min_distance"] >= 1.0 for r in records) / n,
        "conditions": summary["conditions"],
        "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("a") as handle:
        handle.write(json.dumps(record) + "\n")
    print(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
