"""Training throughput and peak memory: asymmetric unit vs full cell at equal network size.

One training step = forward + loss (``JointDiffusion.training_losses``) + backward + gradient
clipping + AdamW + EMA update, on real MP-20 batches from a prepared cache (collated once up
front, so data loading is not timed). Every configuration runs in its own subprocess so that the
peak resident memory (``ru_maxrss``) is its own; on GPU the peak is
``torch.cuda.max_memory_allocated``.

    nice -n 10 python bench/train_throughput.py [--data DIR] [--seconds 12] [--threads 2]
        [--sizes 256x4x256,1024x8x64] [--precisions fp32,bf16]
        [--representations asymmetric_unit,full_cell] [--geometry off,on]

``--geometry on`` adds the denoiser's radial features of the replicated orbits
(``model.geometric_features``; asymmetric unit only), to measure what they cost.
Prints a markdown table and writes it to ``bench/train_throughput.out.txt`` (or ``--out``).
"""

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
OUT_FILE = HERE / "train_throughput.out.txt"
SIZES = [(256, 4, 256), (1024, 8, 64)]  # hidden, layers, batch size
REPRESENTATIONS = ["asymmetric_unit", "full_cell"]
PRECISIONS = ["fp32", "bf16"]
REFERENCE_CRYSTALS_PER_S = {(256, 4): 590.0, (1024, 8): 48.0}  # official code, 2 threads, fp32
SAMPLE_TRAIN, SAMPLE_VAL = 2048, 64


def prepared_data_dir(requested: Path | None) -> Path:
    """A prepared folder: the one given, the default MP-20 cache, or a 2,048-crystal sample."""
    from symmcd.data.prepare import DEFAULT_DATA_DIR

    for candidate in (requested, DEFAULT_DATA_DIR):
        if candidate is not None and (candidate / "train.npz").is_file():
            return candidate
    import pandas as pd

    from symmcd.data.prepare import prepare_dataset

    sample_dir = DEFAULT_DATA_DIR.parent / f"mp20-sample-{SAMPLE_TRAIN}"
    if (sample_dir / "prepared" / "train.npz").is_file():
        return sample_dir / "prepared"
    mp20 = Path(__file__).resolve().parents[1] / "symmcd" / "data" / "mp20"
    sample_dir.mkdir(parents=True, exist_ok=True)
    pd.read_csv(mp20 / "train.csv.gz", nrows=SAMPLE_TRAIN).to_csv(sample_dir / "train.csv")
    pd.read_csv(mp20 / "val.csv.gz", nrows=SAMPLE_VAL).to_csv(sample_dir / "val.csv")
    sources = {"train": [sample_dir / "train.csv"], "val": [sample_dir / "val.csv"]}
    prepare_dataset(sources, sample_dir / "prepared")
    return sample_dir / "prepared"


def measure(
    data_dir: Path,
    representation: str,
    hidden: int,
    layers: int,
    batch_size: int,
    precision: str,
    seconds: float,
    threads: int,
    geometry: bool = False,
) -> dict:
    """Time training steps of one configuration in this process; return the figures."""
    from symmcd.data.dataset import AsymmetricUnitDataset, collate
    from symmcd.data.prepare import STATISTICS_FILE, load_statistics
    from symmcd.diffusion.joint import DiffusionConfig, JointDiffusion
    from symmcd.model.denoiser import Denoiser, DenoiserConfig
    from symmcd.training.ema import ExponentialMovingAverage

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    use_site_symmetry = representation == "asymmetric_unit"
    dataset = AsymmetricUnitDataset(data_dir / "train.npz", representation)
    order = torch.randperm(len(dataset)).tolist()
    num_batches = min(16, len(dataset) // batch_size)
    batches = [
        collate([dataset[i] for i in order[b * batch_size : (b + 1) * batch_size]]).to(device)
        for b in range(num_batches)
    ]
    model_config = DenoiserConfig(
        hidden_dim=hidden,
        num_layers=layers,
        use_site_symmetry=use_site_symmetry,
        geometric_features=geometry,
    )
    model = Denoiser(model_config).to(device)
    diffusion = JointDiffusion.from_statistics(
        DiffusionConfig(), load_statistics(Path(data_dir) / STATISTICS_FILE)
    )
    diffusion.to(device)
    ema = ExponentialMovingAverage(model, decay=0.999)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step(batch) -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss = diffusion.training_losses(model, batch, use_site_symmetry=use_site_symmetry)
        optimizer.zero_grad(set_to_none=True)
        loss["loss"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
        optimizer.step()
        ema.update(model)

    def synchronize() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    wall, cpu = [], []  # per step
    while len(wall) < 3 or sum(cpu) < seconds:
        started_wall, started_cpu = time.perf_counter(), time.process_time()
        step(batches[len(wall) % len(batches)])
        synchronize()
        wall.append(time.perf_counter() - started_wall)
        cpu.append(time.process_time() - started_cpu)
    if len(wall) >= 3:  # drop the warm-up step (allocator, AdamW state) when there are enough
        wall, cpu = wall[1:], cpu[1:]
    steps, elapsed, cpu_seconds = len(wall), sum(wall), sum(cpu)
    nodes = sum(int(b.num_nodes.sum()) for b in batches) / (len(batches) * batch_size)
    if device.type == "cuda":
        peak_mb = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "representation": representation,
        "hidden": hidden,
        "layers": layers,
        "batch_size": batch_size,
        "precision": precision,
        "geometry": geometry,
        "nodes_per_crystal": nodes,
        "steps": steps,
        "step_ms": 1000 * elapsed / steps,
        "crystals_per_s": steps * batch_size / elapsed,
        # CPU time of all threads / thread count: the rate on `threads` dedicated cores
        "crystals_per_s_dedicated": steps * batch_size * threads / cpu_seconds,
        "peak_mb": peak_mb,
        "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
    }


def run_in_subprocess(args: argparse.Namespace, data_dir: Path, config: tuple) -> dict:
    command = [
        sys.executable,
        __file__,
        "--worker",
        json.dumps(list(config)),
        "--data",
        str(data_dir),
        "--seconds",
        str(args.seconds),
        "--threads",
        str(args.threads),
    ]
    # Passive OpenMP waiting: idle threads sleep instead of spinning, so CPU time measures work
    # even when the cores are shared with other jobs.
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    result = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    if result.returncode != 0:
        raise RuntimeError(f"{config} failed:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def markdown_table(rows: list[dict]) -> str:
    lines = [
        "| representation | geometry | hidden/layers | batch | precision | nodes/crystal "
        "| crystals/s wall | crystals/s dedicated | step ms | peak MB | AU vs reference "
        "| AU / full cell |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    by_key = {(r["representation"], r["hidden"], r["precision"]): r for r in rows}
    for r in rows:
        reference = REFERENCE_CRYSTALS_PER_S.get((r["hidden"], r["layers"]))
        full = by_key.get(("full_cell", r["hidden"], r["precision"]))
        speedup = versus = ""
        if r["representation"] == "asymmetric_unit":
            if reference:
                versus = f"{r['crystals_per_s_dedicated'] / reference:.2f}x"
            if full:
                ratio = r["crystals_per_s_dedicated"] / full["crystals_per_s_dedicated"]
                speedup = f"{ratio:.1f}x"
        lines.append(
            f"| {r['representation']} | {'on' if r.get('geometry') else 'off'} "
            f"| {r['hidden']}/{r['layers']} | {r['batch_size']} "
            f"| {r['precision']} | {r['nodes_per_crystal']:.2f} | {r['crystals_per_s']:.0f} "
            f"| {r['crystals_per_s_dedicated']:.0f} | {r['step_ms']:.0f} | {r['peak_mb']:.0f} "
            f"| {versus} | {speedup} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="prepared folder (default: MP-20 cache)")
    parser.add_argument("--seconds", type=float, default=6.0, help="CPU seconds per config")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--sizes",
        default=",".join(f"{h}x{n}x{b}" for h, n, b in SIZES),
        help="hidden x layers x batch, comma-separated",
    )
    parser.add_argument("--precisions", default=",".join(PRECISIONS))
    parser.add_argument("--representations", default=",".join(REPRESENTATIONS))
    parser.add_argument("--geometry", default="off", help="off, on or off,on")
    parser.add_argument("--out", type=Path, default=OUT_FILE)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        representation, hidden, layers, batch_size, precision, geometry = json.loads(args.worker)
        figures = measure(
            args.data,
            representation,
            hidden,
            layers,
            batch_size,
            precision,
            args.seconds,
            args.threads,
            geometry,
        )
        print(json.dumps(figures))
        return

    data_dir = prepared_data_dir(args.data)
    sizes = [tuple(int(v) for v in size.split("x")) for size in args.sizes.split(",")]
    geometries = [{"off": False, "on": True}[g] for g in args.geometry.split(",")]
    rows = []
    for hidden, layers, batch_size in sizes:
        for precision in args.precisions.split(","):
            for representation in args.representations.split(","):
                for geometry in geometries:
                    if geometry and representation != "asymmetric_unit":
                        continue
                    config = (representation, hidden, layers, batch_size, precision, geometry)
                    rows.append(run_in_subprocess(args, data_dir, config))
                    print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    header = (
        f"Training throughput, {rows[0]['device']} ({platform.processor() or platform.machine()}),"
        f" {args.threads} threads, torch {torch.__version__}, data {data_dir}.\n"
        "Step = forward + loss + backward + clip + AdamW + EMA; reference = the method's "
        "official code on this machine (590 crystals/s at 256/4, 48/s at 1024/8, fp32).\n"
        f"Measured under `nice` on a machine shared with other jobs (load average {load}): "
        "'wall' is what this run got; 'dedicated' = crystals x threads / process CPU seconds, "
        "the rate on that many free cores (ratios use it). Workers run with "
        "OMP_WAIT_POLICY=PASSIVE. Peak MB: CPU max RSS of the worker process.\n"
    )
    text = header + "\n" + markdown_table(rows) + "\n"
    print(text)
    args.out.write_text(text)


if __name__ == "__main__":
    main()
