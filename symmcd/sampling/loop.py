"""The reverse diffusion loop over one batch of planned crystals.

Crystals of different sizes share one flat node tensor. Every step calls
``JointDiffusion.denoise_step``: ``corrector_steps`` Langevin corrector moves of the coordinates
(DiffCSP's predictor-corrector sampler; each move costs one more network call per step; the
sampler's default, ``SamplingConfig``, is none), then the predictor of all four chains. With
fewer steps than the model was trained with, the steps are evenly spaced integers from T down
to 0.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from symmcd.diffusion.joint import JointDiffusion
from symmcd.errors import InputError, SymmetryError
from symmcd.model.denoiser import NoisyCrystals
from symmcd.sampling.charge_balance import BELIEF_WINDOW
from symmcd.sampling.config import (
    DEFAULT_CORRECTOR_STEPS,
    DEFAULT_REPULSION,
    PRECISIONS,
    SamplingConfig,
)
from symmcd.sampling.plan import CrystalPlan
from symmcd.sampling.unfold import AsymmetricUnits
from symmcd.symmetry import tables


def timestep_pairs(trained_steps: int, steps: int | None) -> list[tuple[int, int]]:
    """(t, t_prev) pairs from T down to 0: all T steps, or `steps` evenly spaced ones."""
    if steps is None:
        steps = trained_steps
    if isinstance(steps, bool) or int(steps) != steps or not 1 <= steps <= trained_steps:
        raise InputError(f"steps: {steps!r} must be an integer in 1..{trained_steps}")
    times = np.unique(np.rint(np.linspace(0, trained_steps, int(steps) + 1)).astype(int))[::-1]
    return [(int(a), int(b)) for a, b in zip(times[:-1], times[1:], strict=True)]


def plan_tensors(plans: Sequence[CrystalPlan]) -> dict[str, torch.Tensor | None]:
    """Space groups, encodings, node counts and clamps (-1 = free) of a batch of plans."""
    spacegroup = torch.tensor([plan.spacegroup for plan in plans], dtype=torch.long)
    num_nodes = torch.tensor([plan.num_orbits for plan in plans], dtype=torch.long)
    templated = [plan.wyckoff_indices is not None for plan in plans]
    clamp_elements = clamp_site_symmetry = wyckoff_index = None
    if any(templated):
        elements, sites, positions = [], [], []
        for plan in plans:
            if plan.wyckoff_indices is None:
                elements.append(np.full(plan.num_orbits, -1))
                sites.append(np.full((plan.num_orbits, 15), -1))
                positions.append(np.full(plan.num_orbits, -1))
            else:
                global_index = np.asarray(plan.wyckoff_indices)
                elements.append(np.asarray(plan.atom_types))
                sites.append(tables.WP_SITE_SYMMETRY[global_index])
                positions.append(global_index)
        clamp_elements = torch.as_tensor(np.concatenate(elements), dtype=torch.long)
        clamp_site_symmetry = torch.as_tensor(np.concatenate(sites), dtype=torch.long)
        wyckoff_index = torch.as_tensor(np.concatenate(positions), dtype=torch.long)
    return {
        "spacegroup": spacegroup,
        "sg_encoding": torch.as_tensor(tables.SG_ENCODING[spacegroup.numpy() - 1]),
        "num_nodes": num_nodes,
        "clamp_elements": clamp_elements,
        "clamp_site_symmetry": clamp_site_symmetry,
        "wyckoff_index": wyckoff_index,
    }


_NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_has_native_bf16(cpuinfo: str | None = None) -> bool:
    """Whether this CPU computes in bfloat16 natively (AVX-512 BF16 or AMX; Linux only).

    Without those instructions bfloat16 is emulated and slower than float32.
    """
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return False
    flags = set()
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            flags.update(line.partition(":")[2].split())
    return any(flag in flags for flag in _NATIVE_BF16_FLAGS)


def resolve_precision(precision: str) -> str:
    """ "auto" -> "bf16" on CPUs with native bfloat16, else "32"; others are checked and kept."""
    if precision not in PRECISIONS:
        raise InputError(f"precision: {precision!r} must be one of {', '.join(PRECISIONS)}")
    if precision == "auto":
        return "bf16" if cpu_has_native_bf16() else "32"
    return precision


class Bfloat16Autocast(torch.nn.Module):
    """Runs a denoiser under CPU bfloat16 autocast and hands back float32 outputs.

    1.7x faster on 2 cores with AVX-512 BF16 (the default there, via "auto") at the cost of ~3
    significant digits in the network's predictions, which does not change sample quality
    measurably (README, "Sampling with the shipped model"); the diffusion arithmetic itself
    stays float32. The shipped model was trained in bf16-mixed precision.
    """

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    @property
    def config(self):
        """The wrapped denoiser's config (``call_model`` reads it)."""
        return self.model.config

    def forward(self, crystals: NoisyCrystals, time: torch.Tensor):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            output = self.model(crystals, time)
        as_float = {
            f.name: value.float() if isinstance(value, torch.Tensor) else value
            for f in dataclasses.fields(output)
            for value in [getattr(output, f.name)]
        }
        return dataclasses.replace(output, **as_float)


def with_precision(model: torch.nn.Module, precision: str) -> torch.nn.Module:
    """The model itself for "32", wrapped in bfloat16 autocast for "bf16" (see resolve_precision
    for "auto")."""
    return model if resolve_precision(precision) == "32" else Bfloat16Autocast(model)


@torch.no_grad()
def denoise_batch(
    model: torch.nn.Module,
    diffusion: JointDiffusion,
    plans: Sequence[CrystalPlan],
    schedule: Sequence[tuple[int, int]],
    generator: torch.Generator,
    element_allowed: torch.Tensor | None = None,
    on_step: Callable[[], None] | None = None,
    corrector_steps: int = DEFAULT_CORRECTOR_STEPS,
    element_temperature: float = SamplingConfig.element_temperature,
    repulsion: float = DEFAULT_REPULSION,
    properties: torch.Tensor | None = None,
) -> tuple[AsymmetricUnits, np.ndarray | None]:
    """Run the reverse process for `plans` (`corrector_steps` Langevin moves before each
    predictor step, element logits divided by `element_temperature`; with `repulsion` > 0 Å,
    orbits whose images come closer than that are pushed apart in the last steps,
    ``symmcd.sampling.repulsion``; ``properties`` (P,) are the targets of a conditioned model,
    NaN = none); returns the sampled asymmetric units and, for templated
    crystals, the global Wyckoff index each node must sit on (-1 = free)."""
    inputs = plan_tensors(plans)
    state = diffusion.prior(
        inputs["spacegroup"],
        inputs["sg_encoding"],
        inputs["num_nodes"],
        generator=generator,
        element_allowed=element_allowed,
    )
    units = reverse_process(
        model,
        diffusion,
        state,
        schedule,
        generator,
        element_allowed=element_allowed,
        clamp_elements=inputs["clamp_elements"],
        clamp_site_symmetry=inputs["clamp_site_symmetry"],
        on_step=on_step,
        corrector_steps=corrector_steps,
        element_temperature=element_temperature,
        repulsion=repulsion,
        properties=properties,
    )
    wyckoff_index = inputs["wyckoff_index"]
    return units, None if wyckoff_index is None else wyckoff_index.numpy()


def reverse_process(
    model: torch.nn.Module,
    diffusion: JointDiffusion,
    state,
    schedule: Sequence[tuple[int, int]],
    generator: torch.Generator,
    element_allowed: torch.Tensor | None = None,
    clamp_elements: torch.Tensor | None = None,
    clamp_site_symmetry: torch.Tensor | None = None,
    on_step: Callable[[], None] | None = None,
    corrector_steps: int = DEFAULT_CORRECTOR_STEPS,
    element_temperature: float = SamplingConfig.element_temperature,
    repulsion: float = DEFAULT_REPULSION,
    properties: torch.Tensor | None = None,
) -> AsymmetricUnits:
    """The reverse steps of ``schedule`` from ``state`` (the prior, or a noised template), then
    the sampled asymmetric units (see :func:`denoise_batch` for the settings)."""
    if properties is not None:
        targets = properties.to(state.k.device).float()[None].expand(len(state.num_nodes), -1)
        state = dataclasses.replace(state, properties=targets.contiguous())
    output = None
    geometry = None
    if repulsion > 0:
        from symmcd.model.geometry import OrbitGeometry
        from symmcd.sampling.repulsion import LAST_FRACTION, repel_orbits

        geometry = OrbitGeometry().to(state.frac_coords.device)
    allowed = diffusion.node_allowed(element_allowed, len(state.atom_types), state.k.device)
    belief, believed_steps = None, 0
    for t, t_prev in schedule:
        state, output = diffusion.denoise_step(
            model,
            state,
            t,
            t_prev,
            generator=generator,
            corrector_steps=corrector_steps,
            element_temperature=element_temperature,
            element_allowed=element_allowed,
            clamp_elements=clamp_elements,
            clamp_site_symmetry=clamp_site_symmetry,
        )
        if t <= BELIEF_WINDOW * diffusion.num_steps or t_prev == 0:
            probs = element_probs(output, allowed, clamp_elements, element_temperature)
            belief = probs if belief is None else belief + probs
            believed_steps += 1
        if geometry is not None and t_prev <= LAST_FRACTION * diffusion.num_steps:
            state = repel_orbits(state, diffusion.final_k(state), geometry, repulsion)
        if on_step is not None:
            on_step()
    k = diffusion.final_k(state)
    if not bool(torch.isfinite(k).all() & torch.isfinite(state.frac_coords).all()):
        raise SymmetryError("sampling produced non-finite lattice or coordinates: broken model?")
    return AsymmetricUnits(
        spacegroup=state.spacegroup.cpu().numpy().astype(np.int64),
        num_nodes=state.num_nodes.cpu().numpy().astype(np.int64),
        k=k.double().cpu().numpy(),
        atom_types=state.atom_types.cpu().numpy().astype(np.int64),
        site_symmetry=final_site_symmetry(output),
        frac_coords=state.frac_coords.double().cpu().numpy(),
        element_probs=(belief / believed_steps).double().cpu().numpy(),
    )


def partial_schedule(trained_steps: int, start: int, steps: int) -> list[tuple[int, int]]:
    """(t, t_prev) pairs from ``start`` (1..T) down to 0 in at most ``steps`` evenly spaced
    integer steps."""
    if not 1 <= start <= trained_steps:
        raise InputError(f"start step {start} must lie in 1..{trained_steps}")
    times = np.unique(np.rint(np.linspace(0, start, min(steps, start) + 1)).astype(int))[::-1]
    return [(int(a), int(b)) for a, b in zip(times[:-1], times[1:], strict=True)]


@torch.no_grad()
def refine_batch(
    model: torch.nn.Module,
    diffusion: JointDiffusion,
    templates: AsymmetricUnits,
    wyckoff_index: np.ndarray,
    schedule: Sequence[tuple[int, int]],
    generator: torch.Generator,
    **settings,
) -> AsymmetricUnits:
    """Crystals of given templates (space group, elements and Wyckoff positions held fixed),
    their lattices and coordinates noised to the first step of ``schedule`` and denoised again:
    the template's geometry repaired and varied. ``settings`` as :func:`reverse_process`."""
    start = schedule[0][0]
    spacegroup = torch.as_tensor(templates.spacegroup, dtype=torch.long)
    num_nodes = torch.as_tensor(templates.num_nodes, dtype=torch.long)
    state = diffusion.prior(
        spacegroup,
        torch.as_tensor(tables.SG_ENCODING[templates.spacegroup - 1]),
        num_nodes,
        generator=generator,
    )
    t_graph = torch.full((len(num_nodes),), start, dtype=torch.long)
    k_clean = diffusion.normalise_k(torch.as_tensor(templates.k, dtype=torch.float32))
    k_t, _ = diffusion.lattice.q_sample(k_clean, t_graph, state.k_mask, generator=generator)
    coords, _ = diffusion.coords.q_sample(
        torch.as_tensor(templates.frac_coords, dtype=torch.float32),
        t_graph[state.node_batch],
        generator,
    )
    elements = torch.as_tensor(templates.atom_types, dtype=torch.long)
    sites = torch.as_tensor(tables.WP_SITE_SYMMETRY[wyckoff_index], dtype=torch.long)
    state = dataclasses.replace(
        state,
        k=torch.where(state.k_mask, k_t, state.k),
        frac_coords=coords,
        atom_types=elements,
        site_symmetry=sites,
    )
    return reverse_process(
        model,
        diffusion,
        state,
        schedule,
        generator,
        clamp_elements=elements,
        clamp_site_symmetry=sites,
        **settings,
    )


def element_probs(
    output,
    allowed: torch.Tensor | None,
    clamp_elements: torch.Tensor | None,
    element_temperature: float,
) -> torch.Tensor:
    """(N, 100) the network's clean-element distributions as the element step draws from them
    (temperature, allowed elements); clamped nodes are certain of their element."""
    logits = output.element_logits.float() / element_temperature
    if allowed is not None:
        logits = logits.masked_fill(~allowed, float("-inf"))
    probs = torch.softmax(logits, dim=-1)
    if clamp_elements is not None:
        clamped = clamp_elements >= 0
        certain = torch.nn.functional.one_hot(clamp_elements.clamp_min(0), probs.shape[-1])
        probs = torch.where(clamped[:, None], certain.to(probs.dtype), probs)
    return probs


def final_site_symmetry(output) -> np.ndarray:
    """(N, 15, 13) site-symmetry distributions for the projection: the network's last
    prediction of the clean classes (softmax of its logits; only asymmetric-unit models, which
    predict them, can sample)."""
    return torch.softmax(output.site_symmetry_logits.double(), dim=-1).cpu().numpy()
