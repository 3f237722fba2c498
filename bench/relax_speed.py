"""CHGNet relaxation speed: symmcd's one-backward calculator against CHGNet's `CHGNetCalculator`.
Both relax the first `--crystals` of `symmcd sample --seed 0` with `relax_structure` (FIRE on a
FrechetCellFilter, fmax 0.1, at most 500 steps) on one thread, one crystal at a time: only the
ASE calculator differs. Also counts the crystals both end in the same structure and energy."""

import tempfile
from functools import partial
from pathlib import Path
from typing import Any
from unittest import mock

import harness
import numpy as np
import torch
from chgnet.model.dynamics import CHGNetCalculator

from symmcd.evaluation import chgnet_calculator
from symmcd.evaluation.io import load_samples
from symmcd.evaluation.relax import RelaxResult, relax_structure
from symmcd.sampling.sampler import sample_to_dir


def relax_all(structures: list, calculator: Any) -> tuple[list[RelaxResult], float]:
    """Relax every structure with the given ASE calculator class; (results, wall seconds)."""
    with mock.patch.object(chgnet_calculator, "FastCHGNetCalculator", calculator):
        return harness.timed(lambda: [relax_structure(s, time_limit=None) for s in structures])


def same(a: RelaxResult, b: RelaxResult) -> bool:
    """Both relaxations ended in the same structure and energy, bit for bit."""
    if a.structure is None or b.structure is None:
        return a.error == b.error
    return bool(
        (a.energy_per_atom, a.steps) == (b.energy_per_atom, b.steps)
        and np.array_equal(a.structure.lattice.matrix, b.structure.lattice.matrix)
        and np.array_equal(a.structure.frac_coords, b.structure.frac_coords)
    )


def main() -> None:
    args = harness.parser(__file__, __doc__, crystals=20).parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        sample_to_dir(Path(tmp) / "s", n=args.crystals, seed=0, progress=False)
        structures = load_samples(Path(tmp) / "s").structures
    own, own_s = relax_all(structures, partial(CHGNetCalculator, use_device="cpu"))
    fast, fast_s = relax_all(structures, chgnet_calculator.FastCHGNetCalculator)
    n, steps = len(structures), sum(result.steps for result in fast)
    atoms = np.mean([len(structure) for structure in structures])
    timings = {"CHGNet's `CHGNetCalculator`": own_s, "symmcd `FastCHGNetCalculator`": fast_s}
    harness.report(
        args.out,
        f"CHGNet relaxation speed, {n} sampled crystals ({atoms:.1f} atoms on average, {steps} "
        f"FIRE steps in all), {harness.machine()}",
        "calculator | seconds | ms per step | crystals/min",
        [f"{k} | {s:.1f} | {1e3 * s / steps:.0f} | {60 * n / s:.1f}" for k, s in timings.items()],
        below=f"speed-up {own_s / fast_s:.2f}x; relaxed structures and energies identical bit "
        f"for bit: {sum(map(same, own, fast))} of {n}",
    )


if __name__ == "__main__":
    main()
