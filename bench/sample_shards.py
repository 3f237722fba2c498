"""Split sampling: `symmcd sample --n N` in one process, over 2 worker processes, and as K
shards run one after another and merged (`--runs` picks among one,workers,shards); seconds and
crystals/s of each, and whether its CIFs are byte-identical to those of the first run. A run
stopped by SIGTERM and resumed: bench/stop_resume.py."""

import tempfile
from pathlib import Path

import harness


def main() -> None:
    flags = {"n": 2000, "seed": 0, "shards": 4, "runs": "one,workers,shards"}
    args = harness.parser(__file__, __doc__, **flags).parse_args()
    base = ["sample", "--n", str(args.n), "--seed", str(args.seed), "--threads", "1"]
    rows, first = [], None
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.runs.split(","):
            out = Path(tmp) / kind
            command = [*base, "--out", str(out)]
            label = {"one": "one process", "workers": "2 workers"}.get(kind, "")
            if kind == "shards":
                label = f"{args.shards} shards, merged"
                shards = [f"{i}/{args.shards}" for i in range(1, args.shards + 1)]
                seconds = sum(harness.cli_seconds(*command, "--shard", s) for s in shards)
            else:
                workers = "2" if kind == "workers" else "1"
                seconds = harness.cli_seconds(*command, "--workers", workers)
            same = "-" if first is None else harness.same_files(first, out, "cifs/*")
            first = first or out
            rows.append(f"{label} | {seconds:.1f} | {args.n / seconds:.2f} | {same}")
    header = "run | seconds | crystals / s | CIFs byte-identical to the first run"
    title = f"{args.n} crystals, seed {args.seed}"
    harness.report(args.out, title, header, rows, harness.machine())


if __name__ == "__main__":
    main()
