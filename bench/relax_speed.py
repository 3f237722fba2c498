"""CHGNet relaxation speed: symmcd's one-backward calculator vs CHGNet's own ``CHGNetCalculator``.

Both relax the same crystals with ``symmcd.evaluation.relax.relax_structure`` (FIRE on a
FrechetCellFilter, fmax 0.1, 500 steps at most) on one thread, one crystal at a time; only the
ASE calculator differs. The crystals are the first ``--crystals`` of ``symmcd sample --seed 0``
(the shipped model, default sampler). The script also checks that both runs end in the same
structures and energies, bit for bit, and says so in its output.
Writes a markdown table to bench/relax_speed.out.txt.

    python bench/relax_speed.py [--crystals 20]
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from symmcd.evaluation import chgnet_calculator
from symmcd.evaluation.io import load_samples
from symmcd.evaluation.relax import relax_structure
from symmcd.sampling.sampler import sample_to_dir

OUT_PATH = Path(__file__).with_suffix(".out.txt")


def chgnets_own(model, on_isolated_atoms: str):
    """CHGNet's calculator, built the way relax_structure builds its own."""
    from chgnet.model.dynamics import CHGNetCalculator

    return CHGNetCalculator(model=model, use_device="cpu", on_isolated_atoms=on_isolated_atoms)


def relax_all(structures, calculator_factory) -> tuple[list, float]:
    """Relax every structure with the given calculator; (results, wall seconds)."""
    fast = chgnet_calculator.FastCHGNetCalculator
    chgnet_calculator.FastCHGNetCalculator = calculator_factory
    try:
        start = time.perf_counter()
        results = [relax_structure(structure, time_limit=None) for structure in structures]
        return results, time.perf_counter() - start
    finally:
        chgnet_calculator.FastCHGNetCalculator = fast


def same(a, b) -> bool:
    """Both relaxations ended in the same structure and energy, bit for bit."""
    if a.structure is None or b.structure is None:
        return a.error == b.error
    return bool(
        a.energy_per_atom == b.energy_per_atom
        and a.steps == b.steps
        and np.array_equal(a.structure.lattice.matrix, b.structure.lattice.matrix)
        and np.array_equal(a.structure.frac_coords, b.structure.frac_coords)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crystals", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        sample_to_dir(Path(tmp) / "samples", n=args.crystals, seed=0, progress=False)
        structures = load_samples(Path(tmp) / "samples").structures
    own, own_seconds = relax_all(structures, chgnets_own)
    fast, fast_seconds = relax_all(structures, chgnet_calculator.FastCHGNetCalculator)
    steps = sum(result.steps for result in fast)
    identical = sum(same(a, b) for a, b in zip(own, fast, strict=True))
    atoms = np.mean([len(structure) for structure in structures])
    lines = [
        f"# CHGNet relaxation speed, {len(structures)} sampled crystals ({atoms:.1f} atoms on "
        f"average, {steps} FIRE steps in all), one thread, {platform.processor() or 'cpu'}",
        "",
        "| calculator | seconds | ms per step | crystals/min |",
        "|---|---|---|---|",
        f"| CHGNet's `CHGNetCalculator` | {own_seconds:.1f} | {1e3 * own_seconds / steps:.0f} "
        f"| {60 * len(structures) / own_seconds:.1f} |",
        f"| symmcd `FastCHGNetCalculator` | {fast_seconds:.1f} | "
        f"{1e3 * fast_seconds / steps:.0f} | {60 * len(structures) / fast_seconds:.1f} |",
        "",
        f"speed-up {own_seconds / fast_seconds:.2f}x; relaxed structures and energies identical "
        f"bit for bit: {identical} of {len(structures)}",
    ]
    OUT_PATH.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
