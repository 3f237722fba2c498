"""Split sampling: `symmcd sample --n N` in one process, as K shards run one after another and
merged, and over 2 worker processes; seconds and crystals/s of each, and whether the CIFs of
the split runs are byte-identical to those of the unsplit one."""

import filecmp
import tempfile
from pathlib import Path

import harness


def same_cifs(a: Path, b: Path) -> bool:
    names = sorted(p.name for p in (a / "cifs").iterdir())
    if names != sorted(p.name for p in (b / "cifs").iterdir()):
        return False
    return filecmp.cmpfiles(a / "cifs", b / "cifs", names, shallow=False)[0] == names


def main() -> None:
    args = harness.parser(__file__, __doc__, n=2000, seed=0, shards=4).parse_args()
    base = ["sample", "--n", str(args.n), "--seed", str(args.seed), "--threads", "1"]
    with tempfile.TemporaryDirectory() as tmp:
        runs = {"one process": Path(tmp) / "one", "2 workers": Path(tmp) / "two"}
        runs[f"{args.shards} shards, merged"] = Path(tmp) / "shards"
        rows = []
        for label, out in runs.items():
            if label.endswith("merged"):
                shards = [f"{i}/{args.shards}" for i in range(1, args.shards + 1)]
                seconds = sum(
                    harness.cli_seconds(*base, "--out", str(out), "--shard", s) for s in shards
                )
            else:
                workers = "2" if label == "2 workers" else "1"
                seconds = harness.cli_seconds(*base, "--out", str(out), "--workers", workers)
            same = "-" if label == "one process" else same_cifs(runs["one process"], out)
            rows.append(f"{label} | {seconds:.1f} | {args.n / seconds:.2f} | {same}")
    header = "run | seconds | crystals / s | CIFs byte-identical to one process"
    harness.report(
        args.out, f"{args.n} crystals, seed {args.seed}", header, rows, harness.machine()
    )


if __name__ == "__main__":
    main()
