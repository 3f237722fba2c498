"""Export a training run's best checkpoint as the model shipped in the package.

Writes `symmcd/weights/default.pt` (half-precision weights, loaded back as float32) with the
default number of sampling steps recorded in its metadata, so `symmcd sample` uses it. By default
from the run's `best.ckpt` (lowest validation loss); `--ckpt last.ckpt` (or any checkpoint file
of the run) when the samples, not the loss, chose the epoch.

    python tools/ship_model.py RUN_DIR [--ckpt best.ckpt] [--steps 100] [--full-precision]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from symmcd.checkpoint import export_checkpoint, load_checkpoint

SHIPPED = Path(__file__).resolve().parents[1] / "symmcd" / "weights" / "default.pt"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--ckpt", default="best.ckpt", help="checkpoint file inside RUN_DIR")
    parser.add_argument("--steps", type=int, default=100, help="default sampling steps")
    parser.add_argument("--full-precision", action="store_true")
    parser.add_argument("--out", type=Path, default=SHIPPED)
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    export_checkpoint(args.run_dir / args.ckpt, args.out, half=not args.full_precision)
    payload = torch.load(args.out, weights_only=True)
    payload["metadata"]["sampling_steps"] = args.steps
    torch.save(payload, args.out)
    loaded = load_checkpoint(args.out)  # fails loudly if the file is not loadable
    size_mb = args.out.stat().st_size / 1e6
    print(f"wrote {args.out} ({size_mb:.1f} MB): {loaded.metadata}")


if __name__ == "__main__":
    main()
