"""Evaluation throughput on the Dask engine: `symmcd evaluate` of n sampled crystals (default
reference and training set, coverage on, no relaxation) in one process, then on a local Dask
cluster of 1 and of 2 workers; wall seconds, evaluated crystals/s and seconds per stage
(metrics.json), each run with an empty cache of its own, and whether the metrics (settings
aside) equal those of the first run."""

import json
import os
import tempfile
from pathlib import Path

import harness

RUNS = {
    "one process": ["--workers", "1"],
    "Dask, 1 worker": ["--cluster", "local", "--workers", "1"],
    "Dask, 2 workers": ["--cluster", "local", "--workers", "2"],
}
STAGES = ("samples", "distributions", "unique_novel")


def main() -> None:
    args = harness.parser(__file__, __doc__, n=1000, seed=1).parse_args()
    rows, first = [], None
    with tempfile.TemporaryDirectory() as tmp:
        samples = Path(tmp) / "samples"
        harness.cli_seconds("sample", f"--n={args.n}", f"--seed={args.seed}", f"--out={samples}")
        for index, (label, options) in enumerate(RUNS.items()):
            out, os.environ["SYMMCD_CACHE"] = Path(tmp) / f"eval{index}", f"{tmp}/cache{index}"
            seconds = harness.cli_seconds("evaluate", str(samples), f"--out={out}", *options)
            metrics = json.loads((out / "metrics.json").read_text())
            kept = {k: v for k, v in metrics.items() if "seconds" not in k and k != "workers"}
            first = first or kept
            stages = " | ".join(f"{metrics[f'seconds_{s}']:.1f}" for s in STAGES)
            rows.append(f"{label} | {seconds:.1f} | {args.n / seconds:.2f} | {stages} | ")
            rows[-1] += str(kept == first)
    header = "run | seconds | crystals / s | " + " | ".join(f"{s} s" for s in STAGES)
    header += " | metrics equal to one process"
    title = f"{args.n} crystals (seed {args.seed})"
    harness.report(args.out, title, header, rows, harness.machine())


if __name__ == "__main__":
    main()
