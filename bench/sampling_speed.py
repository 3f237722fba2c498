"""Sampling throughput on this machine's CPU cores: crystals per second for n crystals x steps.

The full run times 1,000 and 10,000 crystals at 1,000 and 100 steps; `--quick` times 200
crystals at 100 and 20 steps instead (and says so). Times cover the whole `sample` call:
planning, the reverse loop (the default sampler's network calls: one per step, with no
corrector moves; two with a --target), projection, replication, Structure building and the
default redraws (up to `--max-attempts` draws per crystal, as `symmcd sample` does); no file
writing.

    python bench/sampling_speed.py [--quick] [--checkpoint PATH | --random-init cpu-small]
        [--threads 2] [--batch-size 500] [--max-attempts 10] [--runs 1000x100,...]
        [--target formation_energy_per_atom=-3 --guidance 2]

With `--target` (a conditioned checkpoint) every run is timed twice, without and with the target:
classifier-free guidance calls the network twice per call the untargeted sampler makes.

With `--random-init CONFIG` the network has random weights of that training config and the
statistics come from the first 500 MP-20 validation crystals: the speed is that of a trained
model of the same size (weights do not change the cost), which allows timing before a model is
shipped. Appends a markdown table to bench/sampling_speed.out.txt.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import time
import warnings
from pathlib import Path

import pandas as pd
import torch

from symmcd.cli import add_sampling_options
from symmcd.sampling import sample
from symmcd.sampling.config import SamplingConfig
from symmcd.sampling.loop import resolve_precision
from symmcd.sampling.sampler import load_model

OUT_PATH = Path(__file__).with_suffix(".out.txt")
MP20_VAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "mp_20" / "val.csv"
FULL_RUNS = ((1000, 1000), (1000, 100), (10000, 1000), (10000, 100))
QUICK_RUNS = ((200, 100), (200, 20))


def random_model(config_name: str, num_crystals: int = 500):
    """A randomly initialised LoadedModel with statistics from MP-20 validation crystals."""
    from symmcd.checkpoint import LoadedModel
    from symmcd.config import load_config
    from symmcd.data.prepare import crystal_record
    from symmcd.data.statistics import compute_statistics
    from symmcd.diffusion.joint import JointDiffusion
    from symmcd.model.denoiser import Denoiser

    config = load_config(config_name)
    rows = pd.read_csv(MP20_VAL, nrows=num_crystals, usecols=["material_id", "cif"])
    records = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for row in rows.itertuples():
            try:
                records.append(crystal_record(row.material_id, row.cif))
            except Exception:
                continue
    statistics = compute_statistics(records)
    torch.manual_seed(0)
    model = Denoiser(config.model).eval()
    diffusion = JointDiffusion.from_statistics(config.diffusion, statistics)
    return LoadedModel(model, diffusion, statistics, config, {"random_init": config_name})


def run_label(args: argparse.Namespace) -> str:
    return "custom" if args.runs else "quick" if args.quick else "full"


def checkpoint_label(checkpoint: str | None) -> str:
    """The checkpoint as the output names it: relative to the repository, or only its file name
    (a run folder outside the repository is a machine path)."""
    if checkpoint is None:
        return "symmcd/weights/default.pt"
    path = Path(checkpoint).resolve()
    root = Path(__file__).resolve().parents[1]
    return str(path.relative_to(root)) if path.is_relative_to(root) else f"RUN/{path.name}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--random-init", default=None, metavar="CONFIG")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", default=None, help="override, e.g. '1000x100,500x50'")
    add_sampling_options(
        parser, ["batch_size", "precision", "max_attempts", "targets", "guidance"]
    )  # with --target, every run is also timed toward the target
    args = parser.parse_args()
    args.precision = resolve_precision(args.precision)

    torch.set_num_threads(args.threads)
    if args.random_init:
        loaded = random_model(args.random_init)
        source = f"random weights, config {args.random_init}"
    else:
        loaded = load_model(args.checkpoint)
        source = f"checkpoint {checkpoint_label(args.checkpoint)}"
    model_config = loaded.config.model
    runs = QUICK_RUNS if args.quick else FULL_RUNS
    if args.runs:
        runs = tuple(tuple(int(x) for x in run.split("x")) for run in args.runs.split(","))

    sample(8, checkpoint=loaded, steps=2, progress=False)  # warm-up
    load_before = os.getloadavg()[0]
    targets = [None] + ([args.targets] if args.targets else [])
    rows = []
    for n, steps in runs:
        steps = min(steps, loaded.diffusion.num_steps)
        for target in targets:
            start = time.perf_counter()
            crystals = sample(
                n,
                checkpoint=loaded,
                steps=steps,
                batch_size=args.batch_size,
                progress=False,
                precision=args.precision,
                max_attempts=args.max_attempts,
                targets=target,
                guidance=args.guidance if target else None,
            )
            seconds = time.perf_counter() - start
            orbits = sum(c.metadata["num_orbits"] for c in crystals) / len(crystals)
            weight = crystals[0].metadata.get("guidance")
            label = "-" if target is None else f"{','.join(target)} (guidance {weight:g})"

            rows.append((n, steps, label, seconds, n / seconds, 10_000 * seconds / n / 60, orbits))
            print(
                f"{n} crystals x {steps} steps, target {label}: {seconds:.1f} s "
                f"({n / seconds:.2f} crystals/s)"
            )

    lines = [
        f"## {datetime.date.today()} {run_label(args)} run: {source}",
        "",
        f"Model: hidden {model_config.hidden_dim}, {model_config.num_layers} layers, trained "
        f"with {loaded.diffusion.num_steps} steps; {SamplingConfig().corrector_steps} corrector "
        f"moves per step; up to "
        f"{args.max_attempts} draws per crystal; precision "
        f"{args.precision}; batch size "
        f"{args.batch_size}; torch {torch.__version__}, {args.threads} threads on "
        f"{platform.machine()} (shared 2-core machine; load average before the runs "
        f"{load_before:.1f}, after {os.getloadavg()[0]:.1f}).",
        "",
        "| crystals | steps | target | seconds | crystals / s | min per 10,000 | orbits / "
        "crystal |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {n} | {s} | {g} | {t:.1f} | {r:.2f} | {m:.1f} | {o:.2f} |"
        for n, s, g, t, r, m, o in rows
    ]
    text = "\n".join(lines) + "\n\n"
    with open(OUT_PATH, "a") as handle:
        handle.write(text)
    print(text)


if __name__ == "__main__":
    main()
