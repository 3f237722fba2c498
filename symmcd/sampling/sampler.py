"""`sample` and `sample_to_dir`: symmetric crystals on demand, by space group and composition.

One run: validate the conditions, then chunk by chunk plan every crystal (space group, orbit
count or template), denoise the plans in batches, project and replicate them into Structures.
`symmcd.sampling.runs.sample_to_dir` writes a run to a folder, in shards and resumably.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from pymatgen.core import Structure
from tqdm.auto import tqdm

from symmcd.checkpoint import CONDITIONED_CHECKPOINT, DEFAULT_CHECKPOINT, load_checkpoint
from symmcd.errors import CheckpointError, InputError
from symmcd.sampling import conditions, loop, plan
from symmcd.sampling.config import COLLAPSE_DISTANCE, SamplingConfig, checked_int
from symmcd.sampling.guidance import GuidedDenoiser
from symmcd.sampling.unfold import AsymmetricUnits, unfold
from symmcd.sampling.writers import SampledCrystal
from symmcd.symmetry import tables


def load_model(checkpoint: str | Path | object | None, conditioned: bool = False):
    """A LoadedModel from a path (default: the shipped model, or with ``conditioned`` the shipped
    property-conditioned one) or passed through as is."""

    if checkpoint is not None and not isinstance(checkpoint, (str, Path)):
        loaded = checkpoint
    else:
        default = CONDITIONED_CHECKPOINT if conditioned else DEFAULT_CHECKPOINT
        path = Path(checkpoint) if checkpoint is not None else default
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
    seed: int | tuple[int, ...],
    targets: np.ndarray | None = None,
    loaded=None,
) -> list[plan.CrystalPlan]:
    """Plans of a free, formula or property-targeted run (targeted runs of a model that ships
    its label table draw group and size near the targets; see ``symmcd.sampling.plan``)."""
    rng = np.random.default_rng(seed)
    if formula_counts is not None:
        return plan.plan_formula(n, statistics, formula_counts, spacegroups, rng)
    table = getattr(loaded, "label_table", None)
    if targets is not None and table is not None:
        ranges = loaded.config.model.property_ranges
        near = plan.plan_near_targets(n, table, targets, ranges, spacegroups, rng)
        if near is not None:
            return near
    return plan.plan_free(n, statistics, spacegroups, rng)


def sample(
    n: int,
    config: SamplingConfig | None = None,
    checkpoint: str | Path | None = None,
    progress: bool = True,
    screen_scores: ScreenScores | None = None,
    **options,
) -> list[SampledCrystal]:
    """Generate n symmetric crystals; each is a full-cell Structure plus its metadata.

    Settings come from ``config`` (:class:`~symmcd.sampling.config.SamplingConfig`, which
    documents each) with keyword ``options`` replacing its fields, e.g.
    ``sample(100, spacegroups="Fm-3m", seed=1)``. Crystals that collapse or fail the symmetry
    check are redrawn with the same plan and fresh noise, up to ``max_attempts`` draws in all
    (formula runs switch a crystal that still fails after half of them to a fresh template;
    metadata ``attempts`` counts the draws); ``max_attempts=1`` keeps and flags every first
    draw, the published protocol. With ``screen`` K > 1, ``screen_scores`` ranks K x n
    candidates (:func:`screened`).

    The run is cut into chunks of ``batch_size`` crystals, each planned, denoised and redrawn
    from its own seed (``seed``, chunk index): chunk i is the same crystals whichever process
    makes it and whatever else runs, so a run split into shards or resumed after a stop gives
    the crystals of the unsplit run (:func:`symmcd.sampling.runs.sample_to_dir`).
    """
    n = checked_count(n)
    config = SamplingConfig.from_options(config, **options)
    if config.screen > 1:
        return screened(n, config, checkpoint, progress, screen_scores)
    if config.formula is not None:
        conditions.parse_formula(config.formula)  # a bad formula is refused before the model loads
    run = _Run(config, checkpoint)
    run.check_request()
    sizes = chunk_sizes(n, config.batch_size)
    with torch_threads(SAMPLING_THREADS), run.progress_bar(n, progress) as bar:
        return [c for index, size in enumerate(sizes) for c in run.chunk(index, size, bar)]


def chunk_sizes(n: int, chunk: int) -> list[int]:
    """The sizes of a run's chunks: ``chunk`` crystals each, the last one what is left."""
    return [min(chunk, n - start) for start in range(0, n, chunk)]


# distance of each structure's predicted property from the targets (lower is nearer; NaN: not
# predicted), from a predictor independent of the generator
ScreenScores = Callable[[list[Structure]], np.ndarray]


def screened(
    n: int,
    config: SamplingConfig,
    checkpoint: str | Path | None,
    progress: bool,
    screen_scores: ScreenScores | None,
) -> list[SampledCrystal]:
    """n crystals out of ``config.screen`` x n sampled toward the targets: those with the lowest
    ``screen_scores`` (unscored ones last), in the order they were drawn. Metadata
    ``screen_score`` keeps each one's score, ``screened_from`` the number of candidates."""
    if screen_scores is None:
        raise InputError(
            "screen: needs a predictor of the target property; `symmcd sample --screen` uses "
            "CDVAE's formation-energy model (from Python: screen_scores="
            "symmcd.evaluation.cdvae_property.target_distance(targets))"
        )
    total = n * config.screen
    if total > MAX_CRYSTALS_PER_RUN:
        raise InputError(
            f"screen: {n:,} crystals x {config.screen} candidates = {total:,} samples in one run "
            f"would not fit in memory; keep n x screen at most {MAX_CRYSTALS_PER_RUN:,}"
        )
    candidates = sample(total, replace(config, screen=1), checkpoint, progress)
    scores = np.asarray(screen_scores([c.structure for c in candidates]), dtype=float)
    if scores.shape != (total,):
        raise InputError(f"screen: {scores.shape} scores for {total} candidates")
    nearest = np.argsort(np.where(np.isfinite(scores), scores, np.inf), kind="stable")[:n]
    kept = []
    for index in sorted(nearest.tolist()):
        crystal = candidates[index]
        score = scores[index]
        crystal.metadata["screen_score"] = float(score) if np.isfinite(score) else None
        crystal.metadata["screened_from"] = total
        kept.append(crystal)
    return kept


# torch threads of the sampling arithmetic (network, noise processes, repulsion), whatever the
# caller set: MKL's float32 GEMMs of small batches and torch's chunked elementwise kernels round
# differently on 1 and 2 threads (network outputs differ by ~1e-5, which the reverse loop can
# grow to 0.02 Å), so results depend on no thread count. One thread is also the fastest where
# other jobs share the cores (docs/archive/outputs/busy_cores.out.txt); on an idle many-core
# machine it gives up torch's intra-op parallelism (not measured: the 2-core machine was loaded).
SAMPLING_THREADS = 1


# crystals `sample` returns at once, all held in memory (~20 kB each); `sample_to_dir` holds one
# chunk at a time and takes far more
MAX_CRYSTALS_PER_RUN = 200_000


def checked_count(n) -> int:
    """The number of crystals of one in-memory run: a positive integer up to
    MAX_CRYSTALS_PER_RUN."""
    n = checked_int("n", n, 1)
    if n > MAX_CRYSTALS_PER_RUN:
        raise InputError(
            f"n: {n:,} crystals in memory at once would not fit; sample at most "
            f"{MAX_CRYSTALS_PER_RUN:,} per call, or write them to a folder with sample_to_dir "
            "(symmcd sample), which holds one chunk at a time"
        )
    return n


def sample_formulas(
    formulas: Sequence[str],
    n: int,
    config: SamplingConfig | None = None,
    checkpoint: str | Path | None = None,
    progress: bool = True,
    **options,
) -> dict[str, list[SampledCrystal]]:
    """``n`` crystals of each formula, denoised together in full batches (many formulas in one
    call run far faster than one call each); settings as in :func:`sample`, whose ``formula``
    and ``elements`` must be unset. Keys are the formulas as given."""
    n = checked_int("n", n, 1)
    checked_count(n * max(len(formulas), 1))
    config = SamplingConfig.from_options(config, **options)
    if config.formula is not None or config.elements is not None:
        raise InputError("sample_formulas: give the formulas as its argument, not in config")
    run = _Run(config, checkpoint)
    plans: list[plan.CrystalPlan] = []
    counts_of_plan: list[dict[str, int] | None] = []
    for index, formula in enumerate(formulas):
        counts = conditions.parse_formula(formula)
        allowed_elements(run.statistics, None, counts)  # every element known to the model
        rng = np.random.default_rng((config.seed, index))
        plans += plan.plan_formula(n, run.statistics, counts, run.groups, rng)
        counts_of_plan += [counts] * n
    element_allowed = allowed_elements(run.statistics, None, None)
    with torch_threads(SAMPLING_THREADS):
        crystals = run.denoise(plans, counts_of_plan, element_allowed, progress)
    return {formula: crystals[i * n : (i + 1) * n] for i, formula in enumerate(formulas)}


def refine_templates(
    templates: AsymmetricUnits,
    wyckoff_index: np.ndarray,
    start: float = 0.1,
    config: SamplingConfig | None = None,
    checkpoint: str | Path | None = None,
    progress: bool = True,
    **options,
) -> list[SampledCrystal | None]:
    """Each template (space group, elements, Wyckoff positions ``wyckoff_index`` (N,) and its
    lattice and coordinates) noised to ``start`` x T and denoised by the network with the space
    group, elements and site symmetries held: a template's geometry repaired for its new elements
    and varied (a different seed gives a different crystal). Settings as in :func:`sample`; the
    steps keep the stride of a full run (``steps`` over T). Crystals that collapse or fail the
    symmetry check are kept and flagged (metadata), not redrawn. Templates with more orbits or
    atoms than the model's training cells are not refined: None in their place."""
    if not 0.0 < float(start) <= 1.0:
        raise InputError(f"start: {start!r} must lie in (0, 1] (a fraction of the trained steps)")
    config = SamplingConfig.from_options(config, **options)
    run = _Run(config, checkpoint)
    trained = run.loaded.diffusion.num_steps
    first = max(1, int(round(float(start) * trained)))
    schedule = loop.partial_schedule(
        trained, first, max(1, int(round(len(run.schedule) * first / trained)))
    )
    generator = torch.Generator().manual_seed(config.seed)
    bounds = np.concatenate([[0], np.cumsum(templates.num_nodes)])
    atoms = (
        np.add.reduceat(tables.WP_MULTIPLICITY[np.asarray(wyckoff_index)], bounds[:-1])
        if len(bounds) > 1
        else np.zeros(0)
    )
    fits = (np.asarray(templates.num_nodes) <= run.statistics.max_orbits) & (
        atoms <= run.statistics.max_atoms
    )
    if not fits.all():
        kept = np.flatnonzero(fits)
        node_mask = np.repeat(fits, templates.num_nodes)
        inner = (
            refine_templates(
                AsymmetricUnits(
                    spacegroup=np.asarray(templates.spacegroup)[kept],
                    num_nodes=np.asarray(templates.num_nodes)[kept],
                    k=np.asarray(templates.k)[kept],
                    atom_types=np.asarray(templates.atom_types)[node_mask],
                    site_symmetry=np.asarray(templates.site_symmetry)[node_mask],
                    frac_coords=np.asarray(templates.frac_coords)[node_mask],
                ),
                np.asarray(wyckoff_index)[node_mask],
                start,
                config,
                run.loaded,
                progress,
            )
            if len(kept)
            else []
        )
        out: list[SampledCrystal | None] = [None] * len(fits)
        for i, crystal in zip(kept, inner, strict=True):
            out[i] = crystal
        return out
    crystals: list[SampledCrystal] = []
    total = len(templates.num_nodes)
    bar = tqdm(
        total=total * len(schedule), disable=not progress, desc="refining", unit="crystal-step"
    )
    with bar, torch_threads(SAMPLING_THREADS):
        for begin, end in bounded_batches(templates.num_nodes * atoms, config.batch_size):
            nodes = slice(int(bounds[begin]), int(bounds[end]))
            part = AsymmetricUnits(
                spacegroup=np.asarray(templates.spacegroup[begin:end]),
                num_nodes=np.asarray(templates.num_nodes[begin:end]),
                k=np.asarray(templates.k[begin:end]),
                atom_types=np.asarray(templates.atom_types[nodes]),
                site_symmetry=np.asarray(templates.site_symmetry[nodes]),
                frac_coords=np.asarray(templates.frac_coords[nodes]),
            )
            units = loop.refine_batch(
                run.model,
                run.loaded.diffusion,
                part,
                np.asarray(wyckoff_index[nodes]),
                schedule,
                generator,
                on_step=functools.partial(bar.update, end - begin),
                corrector_steps=config.corrector_steps,
                repulsion=config.repulsion,
            )
            info = {"refined_from": round(first / trained, 4), "steps": len(schedule)}
            crystals += unfold(
                units, np.asarray(wyckoff_index[nodes]), [dict(info)] * (end - begin)
            )
    return crystals


# node-to-image pairs (orbits x atoms, summed over a batch) the repulsion holds at once: a batch
# of 500 large cubic templates (orbits of 48-192 atoms) needed over 20 GB
MAX_IMAGE_PAIRS = 100_000


def bounded_batches(pairs: np.ndarray, batch_size: int) -> list[tuple[int, int]]:
    """Consecutive (begin, end) batches of at most ``batch_size`` crystals whose ``pairs`` add
    up to at most MAX_IMAGE_PAIRS (a single larger crystal gets a batch of its own)."""
    batches, begin, load = [], 0, 0
    for i, cost in enumerate(np.asarray(pairs).tolist()):
        if i > begin and (i - begin >= batch_size or load + cost > MAX_IMAGE_PAIRS):
            batches.append((begin, i))
            begin, load = i, 0
        load += cost
    if begin < len(pairs):
        batches.append((begin, len(pairs)))
    return batches


class _Run:
    """The model, space groups and settings of one sampling call, and its batched loop."""

    def __init__(self, config: SamplingConfig, checkpoint) -> None:
        self.config = config
        self.precision = loop.resolve_precision(config.precision)  # validate before loading
        self.loaded = load_model(checkpoint, conditioned=config.targets is not None)
        self.model = loop.with_precision(self.loaded.model, self.precision)
        network = self.loaded.config.model
        self.targets = conditions.target_vector(
            config.targets, network.properties, network.property_ranges
        )
        if self.targets is not None:
            self.model = GuidedDenoiser(self.model, config.guidance)
        self.statistics = self.loaded.statistics
        self.groups = config.spacegroups
        if config.top_k_spacegroups is not None:
            self.groups = conditions.top_k_spacegroups(
                self.statistics.spacegroup_distribution(), config.top_k_spacegroups
            )
        self.schedule = loop.timestep_pairs(
            self.loaded.diffusion.num_steps, default_steps(self.loaded, config.steps)
        )
        # set by check_request (before the first chunk at the latest)
        self.counts: dict[str, int] | None = None
        self.element_allowed: torch.Tensor | None = None

    def check_request(self) -> None:
        """Refuse what no chunk could honour (unknown elements, a formula no template of the
        allowed groups holds) before any progress bar or folder: plan one crystal. Keeps the
        formula's counts and the allowed elements for the chunks."""
        config = self.config
        counts = conditions.parse_formula(config.formula) if config.formula is not None else None
        self.counts = counts
        self.element_allowed = allowed_elements(self.statistics, config.elements, counts)
        make_plans(
            1, self.statistics, self.groups, counts, (config.seed, 0), self.targets, self.loaded
        )

    def chunk(self, index: int, size: int, bar=None) -> list[SampledCrystal]:
        """Chunk ``index`` of a run: ``size`` crystals planned and denoised from the chunk's
        own seed (the run's seed and the index), so it does not depend on the other chunks."""
        if self.element_allowed is None:
            self.check_request()
        counts, seed = self.counts, (self.config.seed, index)
        plans = make_plans(
            size, self.statistics, self.groups, counts, seed, self.targets, self.loaded
        )
        return self.denoise(plans, [counts] * size, self.element_allowed, bar=bar, seed=seed)

    def progress_bar(self, crystals: int, progress: bool):
        """One bar over the crystal-steps of ``crystals`` crystals (redraws add to it)."""
        total = crystals * len(self.schedule)
        return tqdm(total=total, disable=not progress, desc="sampling", unit="crystal-step")

    def denoise(
        self,
        plans: list[plan.CrystalPlan],
        counts_of_plan: list[dict[str, int] | None],
        element_allowed: torch.Tensor,
        progress: bool = False,
        bar=None,
        seed: int | tuple[int, ...] | None = None,
    ) -> list[SampledCrystal]:
        """Every plan denoised in batches, then the failures redrawn (pooled over the plans so
        that redraws too run in full batches). The noise comes from ``seed`` (default the
        config's); progress goes to ``bar``, or a bar of its own with ``progress``."""
        config, schedule = self.config, self.schedule
        seed = config.seed if seed is None else seed
        settings = {
            "schedule": schedule,
            "generator": torch.Generator().manual_seed(torch_seed(seed)),
            "element_allowed": element_allowed,
            "config": config,
            "run_info": {
                "requested_spacegroups": list(self.groups or []),
                "steps": len(schedule),
                "corrector_steps": config.corrector_steps,
                "element_temperature": config.element_temperature,
                "repulsion": config.repulsion,
                "precision": self.precision,
                **(
                    {"targets": dict(config.targets), "guidance": config.guidance}
                    if config.targets
                    else {}
                ),
            },
            "properties": None if self.targets is None else torch.as_tensor(self.targets),
        }
        diffusion, batch_size = self.loaded.diffusion, config.batch_size
        crystals: list[SampledCrystal] = []
        own_bar = bar is None
        if own_bar:
            bar = self.progress_bar(len(plans), progress)
        try:
            for start in range(0, len(plans), batch_size):
                batch = plans[start : start + batch_size]
                crystals.extend(
                    denoise_and_unfold(self.model, diffusion, batch, **settings, bar=bar)
                )
            for attempt in range(2, config.max_attempts + 1):
                retry = [i for i, c in enumerate(crystals) if needs_redraw(c, config.min_distance)]
                if not retry:
                    break
                if attempt > (config.max_attempts + 1) // 2:
                    seeds = (seed,) if isinstance(seed, int) else tuple(seed)
                    self._replan(plans, counts_of_plan, retry, (*seeds, attempt))
                bar.total += len(retry) * len(schedule)
                bar.set_description(f"sampling (redraw {attempt - 1}: {len(retry)} crystals)")
                for start in range(0, len(retry), batch_size):
                    chunk = retry[start : start + batch_size]
                    again = denoise_and_unfold(
                        self.model, diffusion, [plans[i] for i in chunk], **settings, bar=bar
                    )
                    for i, crystal in zip(chunk, again, strict=True):
                        crystal.metadata["attempts"] = attempt
                        crystals[i] = crystal
            bar.set_description("sampling")
        finally:
            if own_bar:
                bar.close()
        return crystals

    def _replan(self, plans, counts_of_plan, retry: list[int], seed: tuple[int, ...]) -> None:
        """A formula crystal that keeps failing may have a template with no room for its
        orbits: give it a fresh template (free crystals keep their plan)."""
        by_formula: dict[tuple, list[int]] = {}
        for i in retry:
            if counts_of_plan[i] is not None:
                by_formula.setdefault(tuple(sorted(counts_of_plan[i].items())), []).append(i)
        rng = np.random.default_rng(seed)
        for key, indices in by_formula.items():
            fresh = plan.plan_formula(len(indices), self.statistics, dict(key), self.groups, rng)
            for i, new_plan in zip(indices, fresh, strict=True):
                plans[i] = new_plan


def torch_seed(seed: int | tuple[int, ...]) -> int:
    """A torch generator seed: the seed itself, or one drawn from a tuple of them (numpy's
    SeedSequence, so (seed, chunk) pairs give unrelated streams)."""
    if isinstance(seed, int):
        return seed
    return int(np.random.SeedSequence(list(seed)).generate_state(1, np.uint64)[0] >> 1)


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
    config: SamplingConfig,
    run_info: dict,
    properties: torch.Tensor | None = None,
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
        corrector_steps=config.corrector_steps,
        element_temperature=config.element_temperature,
        repulsion=config.repulsion,
        properties=properties,
    )
    metadata = [{**run_info, "attempts": 1} for _ in plans]
    crystals = unfold(units, fixed, metadata, element_decoding=config.element_decoding)
    if config.charge_balanced:
        from symmcd.chemistry import composition_is_valid  # SMACT: imported on demand

        for crystal in crystals:
            crystal.metadata["charge_balanced"] = composition_is_valid(
                crystal.structure.composition
            )
    return crystals


@contextlib.contextmanager
def torch_threads(threads: int | None):
    """Run the block with this many torch CPU threads (None: :func:`default_threads`), then
    restore; yields the count used."""
    if threads is None:
        threads = default_threads()
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise InputError(f"threads must be a positive integer, got {threads!r}")
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield threads
    finally:
        torch.set_num_threads(before)


def default_threads(cores: int | None = None, load: float | None = None) -> int:
    """The default thread count: the cores this process may use less those other processes keep
    busy (the 1-minute load average, rounded), at least 1. torch's own default, one thread per
    core, spin-waits on cores other jobs hold: 70 s against 3.8 s on one thread for 20 crystals
    with one of two cores busy (docs/archive/outputs/busy_cores.out.txt)."""
    if cores is None:
        affinity = getattr(os, "sched_getaffinity", None)
        cores = len(affinity(0)) if affinity is not None else (os.cpu_count() or 1)
    if load is None:
        try:
            load = os.getloadavg()[0]
        except (AttributeError, OSError):  # not on this platform
            load = 0.0
    return max(1, min(cores, int(cores - load + 0.5)))
