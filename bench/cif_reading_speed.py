"""Reading generated CIFs for evaluation: one process against a pool of worker processes.

``symmcd evaluate`` starts by parsing every sample CIF (and the reference CSV) with pymatgen,
which expands each symmetrised CIF's orbits with its symmetry operations. This times
``symmcd.evaluation.io.parse_cifs`` on the first ``--n`` CIFs of a sample folder with one
process and with ``--workers`` processes, checks that both give equal structures, and appends a
markdown table to bench/cif_reading_speed.out.txt.

    python bench/cif_reading_speed.py SAMPLE_DIR [--n 2000] [--workers 2]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import time
from pathlib import Path

from symmcd.evaluation.io import PARALLEL_PARSE_MIN, parse_cifs, read_jsonl, read_text_or_empty

OUT_PATH = Path(__file__).with_suffix(".out.txt")


def sample_texts(folder: Path, n: int) -> list[str]:
    """Texts of the first n CIFs listed in the folder's samples.jsonl (or found in it)."""
    index = folder / "samples.jsonl"
    if index.is_file():
        paths = [folder / r["file"] for r in read_jsonl(index)[:n]]
    else:
        paths = sorted(folder.rglob("*.cif"))[:n]
    return [read_text_or_empty(path) for path in paths]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("samples", type=Path, help="folder written by `symmcd sample`")
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    if args.n < PARALLEL_PARSE_MIN:
        parser.error(f"--n must be at least {PARALLEL_PARSE_MIN}: fewer CIFs are read in-process")
    texts = sample_texts(args.samples, args.n)
    load_before = os.getloadavg()[0]
    rows, results = [], []
    for workers in (1, args.workers):
        start = time.perf_counter()
        results.append(parse_cifs(texts, workers=workers))
        seconds = time.perf_counter() - start
        rows.append((workers, seconds, 1000 * seconds / len(texts)))
        print(f"{workers} worker(s): {seconds:.1f} s ({rows[-1][2]:.1f} ms per CIF)")
    equal = all(a == b for a, b in zip(*results, strict=True))
    lines = [
        f"## {datetime.date.today()}: {len(texts)} CIFs of {args.samples.name}, "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores "
        f"(load average before {load_before:.1f}, after {os.getloadavg()[0]:.1f})",
        "",
        "| processes | seconds | ms per CIF | speed-up |",
        "|---|---|---|---|",
    ]
    for workers, seconds, per_cif in rows:
        lines.append(f"| {workers} | {seconds:.1f} | {per_cif:.1f} | {rows[0][1] / seconds:.2f}x |")
    unreadable = sum(s is None for s in results[0])
    lines += ["", f"Same structures from both runs: {equal}; unreadable CIFs: {unreadable}.", ""]
    with OUT_PATH.open("a") as handle:
        handle.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
