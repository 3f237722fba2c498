"""`sample` and `sample_to_dir`: symmetric crystals on demand, by space group and composition.

One run: validate the conditions, plan every crystal (space group, orbit count or template),
denoise the plans in batches, project and replicate each batch into Structures, and (for
`sample_to_dir`) write CIF / extxyz / samples.jsonl into a staged folder.
"""

from __future__ import annotations

import contextlib
import functools
import json
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from symmcd.errors import CheckpointError, InputError
from symmcd.sampling import conditions, loop, plan, writers
from symmcd.sampling.unfold import COLLAPSE_DISTANCE, unfold
from symmcd.sampling.writers import SampledCrystal

DEFAULT_CHECKPOINT = Path(__file__).resolve().parents[1] / "models" / "default.pt"
MAX_MIN_DISTANCE = 3.0  # Angstrom; hardly any real crystal has all atoms further apart
ELEMENT_TEMPERATURE_RANGE = (0.05, 10.0)  # logits divided by this; 1 = as trained


def load_model(checkpoint: str | Path | object | None):
    """A LoadedModel from a path (default: the shipped model) or passed through as is."""
    from symmcd.training.checkpoint import load_checkpoint

    if checkpoint is not None and not isinstance(checkpoint, (str, Path)):
        loaded = checkpoint
    else:
        path = Path(checkpoint) if checkpoint is not None else DEFAULT_CHECKPOINT
        if checkpoint is None and not path.is_file():
            raise CheckpointError(
                f"no shipped model at {path}; pass checkpoint=PATH (--checkpoint PATH)"
            )
        loaded = load_checkpoint(path)
    representation = getattr(getattr(loaded, "config", None), "representation", None)
    if representation not in (None, "asymmetric_unit"):
        raise CheckpointError(
            f"checkpoint: a {representation} model cannot sample asymmetric units"
        )
    return loaded


def default_steps(loaded, steps: int | None) -> int | None:
    """The requested step count, else the checkpoint's `sampling_steps` (if it ships one), else
    None (all trained steps)."""
    if steps is not None:
        return steps
    shipped = getattr(loaded, "metadata", {}).get("sampling_steps")
    return int(shipped) if shipped else None


def checked_int(name: str, value, minimum: int) -> int:
    """`value` as an int, or an InputError naming `name` unless it is an integer >= minimum."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        kind = "positive" if minimum == 1 else "non-negative" if minimum == 0 else f">= {minimum}"
        raise InputError(f"{name}: {value!r} must be a {kind} integer")
    return int(value)


def positive_int(name: str, value) -> int:
    return checked_int(name, value, 1)


def checked_float(name: str, value, low: float, high: float, unit: str = "") -> float:
    """`value` as a float, or an InputError naming `name` unless it is a number in [low, high]."""
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if not ok or not low <= value <= high:
        raise InputError(f"{name}: {value!r} must be a number{unit} in [{low}, {high}]")
    return float(value)


def redraw_distance(value) -> float:
    """The min_distance argument, checked: a number in [COLLAPSE_DISTANCE, MAX_MIN_DISTANCE]."""
    return checked_float("min_distance", value, COLLAPSE_DISTANCE, MAX_MIN_DISTANCE, " of Angstrom")


def allowed_elements(
    statistics, symbols: Sequence[str] | None, counts: dict[str, int] | None
) -> torch.Tensor:
    """(100,) bool mask of the elements the chains may take: the user's set, else every element
    seen in training (InputError for requested elements the model never saw)."""
    if counts is not None:
        plan.check_formula_elements(counts, statistics.element_counts)
    if symbols is not None:
        return torch.as_tensor(conditions.element_allowed_mask(symbols, statistics.element_counts))
    return torch.as_tensor(statistics.element_counts > 0)


def make_plans(
    n: int,
    statistics,
    spacegroups: Sequence[int] | None,
    formula_counts: dict[str, int] | None,
    seed: int,
) -> list[plan.CrystalPlan]:
    rng = np.random.default_rng(seed)
    if formula_counts is not None:
        return plan.plan_formula(n, statistics, formula_counts, spacegroups, rng)
    return plan.plan_free(n, statistics, spacegroups, rng)


def sample(
    n: int,
    checkpoint: str | Path | None = None,
    spacegroups: int | str | Iterable[int] | None = None,
    top_k_spacegroups: int | None = None,
    elements: str | Iterable[str] | None = None,
    formula: str | None = None,
    steps: int | None = None,
    batch_size: int = 500,
    seed: int = 0,
    progress: bool = True,
    precision: str = "auto",
    max_attempts: int = 10,
    corrector_steps: int = 1,
    min_distance: float = COLLAPSE_DISTANCE,
    element_temperature: float = 1.0,
    charge_balanced: bool = False,
) -> list[SampledCrystal]:
    """Generate n symmetric crystals; each is a full-cell Structure plus its metadata.

    spacegroups / top_k_spacegroups restrict the space groups (drawn in proportion to the
    training distribution restricted to them, uniformly among groups the model never saw);
    elements restricts the element chains to a set; formula fixes the composition exactly
    through Wyckoff templates (elements and site symmetry clamped during denoising).
    steps defaults to the checkpoint's `sampling_steps` (else all trained steps); precision
    "bf16" runs the network under bfloat16 autocast, "32" in float32, and "auto" picks bf16 on
    CPUs that compute it natively (metadata `precision` says which ran). corrector_steps is the
    number of Langevin moves of the coordinates before each predictor step (each one more
    network call; 0 = predictor only). element_temperature divides the network's element logits
    at every step (below 1: the elements it finds most likely are picked more often; 1: as
    trained). charge_balanced also redraws crystals whose composition fails SMACT's
    charge-neutrality test (the field's compositional validity; metadata `charge_balanced`),
    a filter on the output, not something the network learnt. max_attempts > 1 re-draws crystals
    flagged `collapsed` or not `symmetry_ok`, and those with two atoms closer than min_distance
    (Angstrom; at least the collapse threshold 0.5), with the same plan and fresh noise, up to
    that many draws in all (formula runs switch a crystal that still fails after half of them
    to a fresh template); metadata `attempts` counts the draws. The default 10 makes (nearly)
    every output carry the symmetry it claims; max_attempts=1 keeps and flags every first draw
    (the published protocol, whose validity figures count such crystals as failures).
    """
    n = positive_int("n", n)
    batch_size = positive_int("batch_size", batch_size)
    max_attempts = positive_int("max_attempts", max_attempts)
    corrector_steps = checked_int("corrector_steps", corrector_steps, 0)
    min_distance = redraw_distance(min_distance)
    element_temperature = checked_float(
        "element_temperature", element_temperature, *ELEMENT_TEMPERATURE_RANGE
    )
    seed = checked_int("seed", seed, 0)
    if not isinstance(charge_balanced, bool):
        raise InputError(f"charge_balanced: {charge_balanced!r} must be True or False")
    groups = conditions.parse_spacegroups(spacegroups)
    symbols = conditions.parse_elements(elements)
    counts = conditions.parse_formula(formula) if formula is not None else None
    if groups is not None and top_k_spacegroups is not None:
        raise InputError("spacegroups and top_k_spacegroups: give one, not both")
    if counts is not None and symbols is not None:
        raise InputError("elements and formula: give one, not both")

    precision = loop.resolve_precision(precision)  # validate before loading
    loaded = load_model(checkpoint)
    model = loop.with_precision(loaded.model, precision)
    statistics = loaded.statistics
    if top_k_spacegroups is not None:
        groups = conditions.top_k_spacegroups(
            statistics.spacegroup_distribution(), top_k_spacegroups
        )
    element_allowed = allowed_elements(statistics, symbols, counts)
    schedule = loop.timestep_pairs(loaded.diffusion.num_steps, default_steps(loaded, steps))
    plans = make_plans(n, statistics, groups, counts, int(seed))

    settings = {
        "schedule": schedule,
        "generator": torch.Generator().manual_seed(int(seed)),
        "element_allowed": element_allowed,
        "corrector_steps": corrector_steps,
        "element_temperature": element_temperature,
        "charge_balanced": charge_balanced,
        "run_info": {
            "requested_spacegroups": list(groups or []),
            "steps": len(schedule),
            "corrector_steps": corrector_steps,
            "element_temperature": element_temperature,
            "precision": precision,
        },
    }
    crystals: list[SampledCrystal] = []
    bar = tqdm(total=n * len(schedule), disable=not progress, desc="sampling", unit="crystal-step")
    with bar:
        for start in range(0, n, batch_size):
            batch_plans = plans[start : start + batch_size]
            crystals.extend(
                denoise_and_unfold(model, loaded.diffusion, batch_plans, **settings, bar=bar)
            )
        # Redraws are pooled over the whole run so that they, too, run in full batches.
        for attempt in range(2, max_attempts + 1):
            retry = [i for i, c in enumerate(crystals) if needs_redraw(c, min_distance)]
            if not retry:
                break
            if counts is not None and attempt > (max_attempts + 1) // 2:
                # a template that keeps collapsing may have no room for its orbits: draw another
                rng = np.random.default_rng((int(seed), attempt))
                fresh = plan.plan_formula(len(retry), statistics, counts, groups, rng)
                for i, new_plan in zip(retry, fresh, strict=True):
                    plans[i] = new_plan
            bar.total += len(retry) * len(schedule)
            bar.set_description(f"sampling (redraw {attempt - 1}: {len(retry)} crystals)")
            for start in range(0, len(retry), batch_size):
                chunk = retry[start : start + batch_size]
                again = denoise_and_unfold(
                    model, loaded.diffusion, [plans[i] for i in chunk], **settings, bar=bar
                )
                for i, crystal in zip(chunk, again, strict=True):
                    crystal.metadata["attempts"] = attempt
                    crystals[i] = crystal
    return crystals


def needs_redraw(crystal: SampledCrystal, min_distance: float = COLLAPSE_DISTANCE) -> bool:
    """Collapsed crystals, crystals with atoms closer than min_distance, crystals whose atoms
    have more symmetry than the sampled group, and (where it was checked) those that are not
    charge-balanced."""
    meta = crystal.metadata
    too_close = meta["collapsed"] or meta["min_distance"] < min_distance
    unbalanced = meta.get("charge_balanced") is False
    return bool(too_close or not meta["symmetry_ok"] or unbalanced)


def denoise_and_unfold(
    model: torch.nn.Module,
    diffusion,
    plans: Sequence[plan.CrystalPlan],
    schedule: Sequence[tuple[int, int]],
    generator: torch.Generator,
    element_allowed: torch.Tensor,
    corrector_steps: int,
    element_temperature: float,
    charge_balanced: bool,
    run_info: dict,
    bar=None,
) -> list[SampledCrystal]:
    """Reverse diffusion for a batch of plans, then projection and replication (and, with
    ``charge_balanced``, SMACT's charge-neutrality test of each composition)."""
    units, fixed = loop.denoise_batch(
        model,
        diffusion,
        plans,
        schedule,
        generator,
        element_allowed=element_allowed,
        on_step=functools.partial(bar.update, len(plans)) if bar is not None else None,
        corrector_steps=corrector_steps,
        element_temperature=element_temperature,
    )
    metadata = [{**run_info, "attempts": 1} for _ in plans]
    crystals = unfold(units, fixed, metadata)
    if charge_balanced:
        from symmcd.evaluation.validity import composition_is_valid  # SMACT: imported on demand

        for crystal in crystals:
            crystal.metadata["charge_balanced"] = composition_is_valid(
                crystal.structure.composition
            )
    return crystals


def sample_to_dir(
    out_dir: str | Path,
    n: int,
    checkpoint: str | Path | None = None,
    spacegroups: int | str | Iterable[int] | None = None,
    top_k_spacegroups: int | None = None,
    elements: str | Iterable[str] | None = None,
    formula: str | None = None,
    steps: int | None = None,
    batch_size: int = 500,
    seed: int = 0,
    progress: bool = True,
    formats: str | Sequence[str] = ("cif",),
    overwrite: bool = False,
    precision: str = "auto",
    max_attempts: int = 10,
    corrector_steps: int = 1,
    min_distance: float = COLLAPSE_DISTANCE,
    element_temperature: float = 1.0,
    charge_balanced: bool = False,
    threads: int | None = None,
) -> dict:
    """Sample n crystals and write them to out_dir (cifs/, samples.jsonl, samples.extxyz,
    summary.json); returns the summary. Nothing is left behind on error.

    ``threads`` sets torch's CPU threads for the run (default: torch's, one per core); on cores
    other jobs keep busy, fewer threads than cores is faster (bench/sampling_speed.py)."""
    out = writers.check_out_dir(out_dir, overwrite)
    chosen_formats = writers.parse_formats(formats)
    started = time.perf_counter()
    with torch_threads(threads):
        crystals = sample(
            n,
            checkpoint=checkpoint,
            spacegroups=spacegroups,
            top_k_spacegroups=top_k_spacegroups,
            elements=elements,
            formula=formula,
            steps=steps,
            batch_size=batch_size,
            seed=seed,
            progress=progress,
            precision=precision,
            max_attempts=max_attempts,
            corrector_steps=corrector_steps,
            min_distance=min_distance,
            element_temperature=element_temperature,
            charge_balanced=charge_balanced,
        )
    sampled_seconds = time.perf_counter() - started
    with writers.staged_dir(out) as folder:
        writers.write_samples(folder, crystals, chosen_formats)
        summary = run_summary(crystals, sampled_seconds, time.perf_counter() - started)
        summary["conditions"] = {
            "spacegroups": list(conditions.parse_spacegroups(spacegroups) or []),
            "top_k_spacegroups": top_k_spacegroups,
            "elements": list(conditions.parse_elements(elements) or []),
            "formula": formula,
            "steps": crystals[0].metadata.get("steps") if crystals else steps,
            "batch_size": batch_size,
            "seed": seed,
            "precision": crystals[0].metadata["precision"] if crystals else precision,
            "max_attempts": max_attempts,
            "corrector_steps": corrector_steps,
            "min_distance": min_distance,
            "element_temperature": element_temperature,
            "charge_balanced": charge_balanced,
            "checkpoint": checkpoint_label(checkpoint),
            "threads": threads or torch.get_num_threads(),
        }
        summary["out_dir"] = str(out)
        (folder / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    if progress:
        print(
            f"sampled {summary['n']} crystals in {summary['seconds']:.1f} s "
            f"({summary['crystals_per_second']:.2f} crystals/s) -> {out}"
        )
    return summary


@contextlib.contextmanager
def torch_threads(threads: int | None):
    """Run the block with this many torch CPU threads (None: torch's setting), then restore."""
    if threads is None:
        yield
        return
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise InputError(f"threads must be a positive integer, got {threads!r}")
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def checkpoint_label(checkpoint) -> str:
    """How summary.json names the model: its path, 'default', or 'in-memory model'."""
    if checkpoint is None:
        return "default"
    return str(checkpoint) if isinstance(checkpoint, (str, Path)) else "in-memory model"


def run_summary(crystals: Sequence[SampledCrystal], sample_seconds: float, seconds: float) -> dict:
    """Counts and timings of a run."""
    n = len(crystals)
    return {
        "n": n,
        "seconds": round(seconds, 3),
        "sampling_seconds": round(sample_seconds, 3),
        "crystals_per_second": round(n / seconds, 4) if seconds > 0 else None,
        "collapsed": sum(bool(c.metadata.get("collapsed")) for c in crystals),
        "redrawn": sum(c.metadata.get("attempts", 1) > 1 for c in crystals),
        "spacegroups": len({c.metadata["spacegroup"] for c in crystals}),
    }
