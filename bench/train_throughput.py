"""Training throughput and peak memory: asymmetric unit against full cell at equal network size.
One step = forward + loss (`JointDiffusion.training_losses`) + backward + gradient clipping +
AdamW + EMA update, on real MP-20 batches collated up front (loading is not timed). Each
configuration runs in a fresh process, for its own peak memory, with passive OpenMP waiting so
that CPU time measures work on shared cores: 'dedicated' = crystals x threads / CPU seconds, the
rate on that many free cores (the ratios use it). `--geometry on` (or `off,on`) adds the
denoiser's radial orbit features (asymmetric unit only), to price them. Run under `nice -n 10`.
"""

import itertools
import multiprocessing
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

import harness
import torch

from symmcd.data.dataset import AsymmetricUnitDataset, collate
from symmcd.data.prepare import STATISTICS_FILE, load_statistics, resolve_data_dir
from symmcd.diffusion.joint import DiffusionConfig, JointDiffusion
from symmcd.model.denoiser import Denoiser, DenoiserConfig
from symmcd.training.ema import ExponentialMovingAverage

AU = "asymmetric_unit"
REFERENCE = {(256, 4): 590.0, (1024, 8): 48.0}  # official code here: crystals/s, 2 threads, fp32
FLAGS = {"data": "", "seconds": 6.0, "threads": 2, "sizes": "256x4x256,1024x8x64"}  # h x l x b
FLAGS |= {"precisions": "fp32,bf16", "representations": f"{AU},full_cell", "geometry": "off"}
KEYS = ("hidden", "layers", "batch_size", "precision", "representation", "geometry")
HEADER = "representation | geometry | hidden/layers | batch | precision | nodes/crystal | "
HEADER += "crystals/s wall | crystals/s dedicated | step ms | peak MB | AU vs reference | "
HEADER += "AU / full cell"
ROW = "{representation} | {geometry} | {hidden}/{layers} | {batch_size} | {precision} | "
ROW += "{nodes:.2f} | {wall:.0f} | {dedicated:.0f} | {step_ms:.0f} | {peak_mb:.0f} | {ref} | {cell}"


def measure(c: dict[str, Any]) -> dict[str, Any]:
    """Time training steps of configuration c in this process for c["seconds"] CPU seconds."""
    torch.set_num_threads(c["threads"])
    torch.manual_seed(0)
    cuda, au, size = torch.cuda.is_available(), c["representation"] == AU, c["batch_size"]
    device = torch.device("cuda" if cuda else "cpu")
    dataset = AsymmetricUnitDataset(Path(c["data"]) / "train.npz", c["representation"])
    order = torch.randperm(len(dataset)).tolist()
    starts = range(0, min(16, len(dataset) // size) * size, size)
    batches = [collate([dataset[i] for i in order[b : b + size]]).to(device) for b in starts]
    features = {"use_site_symmetry": au, "geometric_features": c["geometry"]}
    model = Denoiser(DenoiserConfig(c["hidden"], c["layers"], **features)).to(device)
    statistics = load_statistics(Path(c["data"]) / STATISTICS_FILE)
    diffusion = JointDiffusion.from_statistics(DiffusionConfig(), statistics).to(device)
    ema = ExponentialMovingAverage(model, decay=0.999)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    wall, cpu = [], []  # per step
    while len(wall) < 3 or sum(cpu) < c["seconds"]:
        started = time.perf_counter(), time.process_time()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=c["precision"] == "bf16"):
            batch = batches[len(wall) % len(batches)]
            loss = diffusion.training_losses(model, batch, use_site_symmetry=au)["loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
        optimizer.step()
        ema.update(model)
        if cuda:
            torch.cuda.synchronize()
        wall.append(time.perf_counter() - started[0])
        cpu.append(time.process_time() - started[1])
    wall, cpu, crystals = wall[1:], cpu[1:], (len(wall) - 1) * size  # less the warm-up step
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return c | {
        "nodes": sum(int(b.num_nodes.sum()) for b in batches) / (len(batches) * size),
        "step_ms": 1000 * sum(wall) / len(wall),
        "wall": crystals / sum(wall),
        "dedicated": crystals * c["threads"] / sum(cpu),
        "peak_mb": torch.cuda.max_memory_allocated() / 2**20 if cuda else rss,
        "device": torch.cuda.get_device_name() if cuda else "cpu",
    }


def in_fresh_process(config: dict[str, Any]) -> dict[str, Any]:
    """measure(config) in a process of its own, whose peak memory is the configuration's."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        row = pool.apply(measure, (config,))
    print(row, file=sys.stderr, flush=True)
    return row


def main() -> None:
    args = harness.parser(__file__, __doc__, **FLAGS).parse_args()
    torch.set_num_threads(args.threads)
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"  # the workers' idle threads sleep, not spin
    data = str(resolve_data_dir(args.data or None))  # default: the cache `symmcd train` uses
    sizes = [tuple(map(int, size.split("x"))) for size in args.sizes.split(",")]
    geometries = [geometry == "on" for geometry in args.geometry.split(",")]
    grid = itertools.product(sizes, args.precisions.split(","), args.representations.split(","))
    common = {"data": data, "seconds": args.seconds, "threads": args.threads}
    rows = [
        in_fresh_process(common | dict(zip(KEYS, (*size, p, r, g), strict=True)))
        for (size, p, r), g in itertools.product(grid, geometries)
        if r == AU or not g
    ]
    full = {(r["hidden"], r["precision"]): r for r in rows if r["representation"] != AU}
    cells = []
    for r in rows:
        au, other = r["representation"] == AU, full.get((r["hidden"], r["precision"]))
        reference = REFERENCE.get((r["hidden"], r["layers"])) if au else None
        ref = f"{r['dedicated'] / reference:.2f}x" if reference else ""
        cell = f"{r['dedicated'] / other['dedicated']:.1f}x" if au and other else ""
        geometry = "on" if r["geometry"] else "off"
        cells.append(ROW.format(**r | {"geometry": geometry}, ref=ref, cell=cell))
    harness.report(
        args.out,
        f"Training throughput, {rows[0]['device']}, {harness.machine()}",
        HEADER,
        cells,
        f"Data {data}. Step = forward + loss + backward + clip + AdamW + EMA; reference = the "
        "method's official code on this machine (590 crystals/s at 256/4, 48/s at 1024/8, fp32). "
        "'wall': what this run got; 'dedicated': the rate on free cores. Peak MB: max RSS (CPU) "
        "or max allocated (GPU) of the worker process.",
    )


if __name__ == "__main__":
    main()
