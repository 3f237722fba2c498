"""Seconds per formula of ``symmcd csp`` with the default (static CHGNet) ranking.

Times two things on this machine: the command as a user runs it, one formula per process
(``symmcd csp FORMULA --n 20``: start-up, model and CHGNet loading included), and
``predict_structures`` for each formula in one warm process. Appends a markdown table to
``bench/csp_speed.out.txt``.

    python bench/csp_speed.py [--formulas LiFePO4,NaCl,...] [--threads 2]
"""

from __future__ import annotations

import argparse
import datetime
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

OUT_PATH = Path(__file__).with_suffix(".out.txt")
FORMULAS = "LiFePO4,NaCl,KMgF3,CsPbI3,Li2O,MoS2,BaTiO3,Sr2RuO4,Cu2ZnSnS4,LaNiO3"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--formulas", default=FORMULAS)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--cold", type=int, default=3, help="formulas timed as separate commands")
    args = parser.parse_args()
    formulas = args.formulas.split(",")
    threads = [] if args.threads is None else ["--threads", str(args.threads)]
    cold = []
    for formula in formulas[: args.cold]:
        with tempfile.TemporaryDirectory() as tmp:
            started = time.perf_counter()
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "symmcd.cli",
                    "csp",
                    formula,
                    "--n",
                    "20",
                    "--out",
                    str(Path(tmp) / "out"),
                    *threads,
                ],
                check=True,
                capture_output=True,
            )
            cold.append((formula, time.perf_counter() - started))
    import torch

    from symmcd.csp import predict_structures

    if args.threads:
        torch.set_num_threads(args.threads)
    predict_structures(formulas[0], n=20, progress=False)  # loads the model, pool and CHGNet
    warm = []
    for formula in formulas:
        started = time.perf_counter()
        candidates = predict_structures(formula, n=20, progress=False)
        best = candidates[0]
        warm.append((formula, time.perf_counter() - started, best.stage, best.spacegroup))
    lines = [
        f"\n## {datetime.date.today()} csp speed, {os.cpu_count()} cores, torch threads "
        f"{torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f} at the end",
        "",
        "| formula | one command (s) | warm process (s) | best candidate |",
        "|---|---|---|---|",
    ]
    cold_by = dict(cold)
    for formula, seconds, stage, group in warm:
        c = cold_by.get(formula)
        shown = "" if c is None else f"{c:.1f}"
        lines.append(f"| {formula} | {shown} | {seconds:.1f} | {stage}, SG {group} |")
    mean_warm = sum(w[1] for w in warm) / len(warm)
    mean_cold = sum(c[1] for c in cold) / len(cold) if cold else float("nan")
    lines.append(f"\nmean: one command {mean_cold:.1f} s, warm {mean_warm:.1f} s per formula")
    text = "\n".join(lines) + "\n"
    print(text)
    with OUT_PATH.open("a") as handle:
        handle.write(text)


if __name__ == "__main__":
    main()
