"""Reading generated CIFs, which `symmcd evaluate` starts with: `symmcd.evaluation.io.parse_cifs`
(pymatgen, each symmetrised CIF's orbits expanded by its operations) on the first `--n` CIFs of
SAMPLE_DIR (a `symmcd sample` folder) in one process against `--workers` processes, and whether
both give equal structures."""

import os
from pathlib import Path

import harness

from symmcd.evaluation.io import PARALLEL_PARSE_MIN, parse_cifs, read_jsonl, read_text_or_empty


def main() -> None:
    parser = harness.parser(__file__, __doc__, n=2000, workers=2)
    parser.add_argument("samples", type=Path, metavar="SAMPLE_DIR")
    args = parser.parse_args()
    if args.n < PARALLEL_PARSE_MIN:
        parser.error(f"--n must be at least {PARALLEL_PARSE_MIN}: fewer CIFs are read in-process")
    index = args.samples / "samples.jsonl"  # the CIFs it lists, else all CIFs in the folder
    listed = [args.samples / r["file"] for r in read_jsonl(index)] if index.is_file() else None
    paths = (listed or sorted(args.samples.rglob("*.cif")))[: args.n]
    texts = [read_text_or_empty(path) for path in paths]
    load_before = os.getloadavg()[0]
    runs = [(w, *harness.timed(parse_cifs, texts, workers=w)) for w in (1, args.workers)]
    (_, one, base), (_, many, _) = runs
    harness.report(
        args.out,
        f"{len(texts)} CIFs of {args.samples.name}, {harness.machine(load_before)}",
        "processes | seconds | ms per CIF | speed-up",
        [f"{w} | {s:.1f} | {1e3 * s / len(texts):.1f} | {base / s:.2f}x" for w, _, s in runs],
        below=f"Same structures from both runs: {one == many}; "
        f"unreadable CIFs: {sum(s is None for s in one)}.",
    )


if __name__ == "__main__":
    main()
