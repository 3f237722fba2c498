"""Sampling throughput: crystals per second for n crystals x steps, per `--runs`, on the one
torch thread `symmcd sample` samples on. Times the whole `sample` call: planning, the reverse
loop (the default sampler: one network call per step, no corrector moves), projection,
replication, Structure building and the redraws (up to `--max-attempts` draws per crystal); no
file writing. With `--target` (a conditioned `--checkpoint`) each run is also timed toward the
target: classifier-free guidance calls the network twice per untargeted call."""

import os
from pathlib import Path

import harness
import torch

from symmcd.checkpoint import DEFAULT_CHECKPOINT
from symmcd.cli import add_sampling_options
from symmcd.sampling import sample
from symmcd.sampling.config import SamplingConfig
from symmcd.sampling.loop import resolve_precision
from symmcd.sampling.sampler import SAMPLING_THREADS, load_model

ROOT = Path(__file__).resolve().parents[1]
ROW = "{} | {} | {} | {:.1f} | {:.2f} | {:.1f} | {:.2f}"
RUNS = "1000x1000,1000x100,10000x1000,10000x100"  # crystals x steps


def main() -> None:
    parser = harness.parser(__file__, __doc__, runs=RUNS, checkpoint=DEFAULT_CHECKPOINT)
    add_sampling_options(parser, ["batch_size", "precision", "max_attempts", "targets", "guidance"])
    args = parser.parse_args()
    torch.set_num_threads(SAMPLING_THREADS)
    loaded, precision = load_model(args.checkpoint), resolve_precision(args.precision)
    path = args.checkpoint.resolve()  # named relative to the repository, else by file name only
    name = path.relative_to(ROOT) if path.is_relative_to(ROOT) else f"RUN/{path.name}"
    sample(8, checkpoint=loaded, steps=2, progress=False)  # warm-up
    options = {"checkpoint": loaded, "progress": False, "batch_size": args.batch_size}
    options |= {"precision": precision, "max_attempts": args.max_attempts}
    load_before, rows = os.getloadavg()[0], []
    for n, steps in (map(int, run.split("x")) for run in args.runs.split(",")):
        steps = min(steps, loaded.diffusion.num_steps)
        for target in [None] + [args.targets] * bool(args.targets):
            guided = {"targets": target, "guidance": args.guidance if target else None}
            crystals, seconds = harness.timed(sample, n, steps=steps, **options, **guided)
            weight = crystals[0].metadata.get("guidance")
            label = f"{','.join(target)} (guidance {weight:g})" if target else "-"
            orbits = sum(crystal.metadata["num_orbits"] for crystal in crystals) / n
            rate, minutes = n / seconds, 10_000 * seconds / n / 60
            rows.append(ROW.format(n, steps, label, seconds, rate, minutes, orbits))
            print(rows[-1], flush=True)
    model, trained = loaded.config.model, loaded.diffusion.num_steps
    harness.report(
        args.out,
        f"runs {args.runs}: checkpoint {name}",
        "crystals | steps | target | seconds | crystals / s | min per 10,000 | orbits / crystal",
        rows,
        f"Model: hidden {model.hidden_dim}, {model.num_layers} layers, trained with {trained} "
        f"steps; {SamplingConfig().corrector_steps} corrector moves per step; up to "
        f"{args.max_attempts} draws per crystal; precision {precision}; batch size "
        f"{args.batch_size}; {harness.machine(load_before)}.",
    )


if __name__ == "__main__":
    main()
