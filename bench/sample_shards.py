"""Split sampling: `symmcd sample --n N` in one process, over 2 worker processes, as K shards
run one after another and merged, and over 2 workers stopped by SIGTERM after `--stop-after` s
and resumed (`--runs` picks among one,workers,shards,stop); seconds and crystals/s of each,
and whether its CIFs are byte-identical to those of the first run."""

import filecmp
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import harness


def same_cifs(a: Path, b: Path) -> bool:
    names = sorted(p.name for p in (a / "cifs").iterdir())
    if names != sorted(p.name for p in (b / "cifs").iterdir()):
        return False
    return filecmp.cmpfiles(a / "cifs", b / "cifs", names, shallow=False)[0] == names


def stopped_and_resumed(command: list[str], stop_after: float) -> tuple[float, int]:
    """Wall seconds of `symmcd COMMAND` stopped by SIGTERM after stop_after s, then resumed;
    and the chunks it had kept at the stop."""
    started = time.perf_counter()
    run = subprocess.Popen(
        [sys.executable, "-m", "symmcd.cli", *command], stderr=subprocess.DEVNULL
    )
    time.sleep(stop_after)
    run.send_signal(signal.SIGTERM)
    run.wait()
    out = Path(command[command.index("--out") + 1])
    kept = len(list(out.with_name(out.name + ".partial").glob("chunk-*")))
    harness.cli_seconds(*command, "--resume")
    return time.perf_counter() - started, kept


def main() -> None:
    flags = {"n": 2000, "seed": 0, "shards": 4, "runs": "one,workers,shards", "stop_after": 60.0}
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
            elif kind == "stop":
                seconds, kept = stopped_and_resumed([*command, "--workers", "2"], args.stop_after)
                label = (
                    f"2 workers, SIGTERM after {args.stop_after:g} s ({kept} chunks kept), --resume"
                )
            else:
                seconds = harness.cli_seconds(
                    *command, "--workers", "2" if kind == "workers" else "1"
                )
            same = "-" if first is None else same_cifs(first, out)
            first = first or out
            rows.append(f"{label} | {seconds:.1f} | {args.n / seconds:.2f} | {same}")
    header = "run | seconds | crystals / s | CIFs byte-identical to the first run"
    harness.report(
        args.out, f"{args.n} crystals, seed {args.seed}", header, rows, harness.machine()
    )


if __name__ == "__main__":
    main()
