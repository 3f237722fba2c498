"""``SamplingConfig``: every setting of a sampling run, validated once.

The CLI, :func:`symmcd.sample`, :func:`symmcd.sampling.sample_to_dir`, the scripts and
``summary.json`` all pass this one object, so a setting is named, checked and documented here
only. Values are normalised on construction (``spacegroups="Fm-3m,194"`` becomes ``(225, 194)``)
and a bad one raises :class:`~symmcd.errors.InputError` naming it. Importing this module is
light (no torch, no pymatgen), so the CLI builds its options from these fields and defaults.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import numpy as np

from symmcd.errors import InputError

# the last element draw: the network's likeliest element per orbit, or the likeliest assignment
# whose cell composition passes SMACT's charge-neutrality test (symmcd.sampling.charge_balance)
ELEMENT_DECODINGS = ("argmax", "charge-balanced")
# one-draw comp. validity of the shipped model 82.10 -> 87.45 %, struct. validity unchanged
# (2,000 crystals; docs/results.md, "What each lever buys")
DEFAULT_ELEMENT_DECODING = "charge-balanced"
PRECISIONS = ("auto", "32", "bf16")  # network precision: auto = bf16 where the CPU has it
COLLAPSE_DISTANCE = 0.5  # Angstrom; closer atoms mean two orbits collapsed onto each other

MAX_MIN_DISTANCE = 3.0  # Angstrom; hardly any real crystal has all atoms further apart
MAX_REPULSION = 3.0  # Angstrom
MAX_SEED = 2**63 - 1  # torch.Generator.manual_seed takes a signed 64-bit integer
MAX_CORRECTOR_STEPS = 100  # network calls per step; a million ran for hours (bad-input sweep)
MAX_ATTEMPTS = 100  # draws per crystal; a crystal that fails 100 draws will not pass the next
MAX_SCREEN = 20  # candidates sampled per crystal kept by a property screen
# Angstrom: one-draw structural validity of the shipped model 85.1 % -> 96.9 % (docs/results.md)
DEFAULT_REPULSION = 1.0
# predictor only: with the repulsion, one corrector move per step bought nothing measurable
# (96.90 vs 96.40 % one-draw struct. valid, 2,000 crystals) at twice the network calls
DEFAULT_CORRECTOR_STEPS = 0
ELEMENT_TEMPERATURE_RANGE = (0.05, 10.0)  # logits divided by this; 1 = as trained
GUIDANCE_RANGE = (0.0, 10.0)  # classifier-free guidance weight; 1 = the conditional model
# 2 hits targets better than 1 (CHGNet E_form medians -1.57 / -0.21 vs -1.33 / -0.21 eV/atom at
# targets -3.0 / -0.5) for ~3 points of comp. validity; 3 is no better than 2 (-1.55 / -0.22 vs
# -1.65 / -0.24, 500-step relaxations): docs/results/property_targets_*.json
DEFAULT_GUIDANCE = 2.0
# Named settings, applied under any option given explicitly (`symmcd sample --preset NAME`,
# ``SamplingConfig.preset(NAME, ...)``): "default" is the fields' defaults; "published" is the
# protocol of the published SymmCD figures: one draw per crystal (collapsed or off-symmetry
# crystals count as failures), no repulsion, the network's likeliest element per orbit.
PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    "published": {"max_attempts": 1, "repulsion": 0.0, "element_decoding": "argmax"},
}


@dataclass(frozen=True)
class SamplingConfig:
    """What to sample and how.

    Conditions: ``spacegroups`` (numbers or symbols) or ``top_k_spacegroups`` (the K most
    common training groups) restrict the groups, drawn in proportion to the training
    distribution (symbols in any setting: ``"P2_1/n"``, ``"R-3m:H"``, ``"Fm3m"``); ``elements``
    restricts the element chains to a set; ``formula`` fixes the composition exactly through
    Wyckoff templates: a formula in lowest terms (``"LiFePO4"``) any whole number of times per
    cell, one whose counts share a factor (``"Li4O4"``) as the exact cell content; a formula
    beyond the model's cells (atoms, orbits) is refused.

    Sampler: ``steps`` denoising steps (default: the checkpoint's ``sampling_steps``), in
    batches of ``batch_size``, from ``seed``; ``precision`` "bf16", "32" or "auto" (bf16 where
    the CPU computes it natively); ``corrector_steps`` Langevin moves of the coordinates before
    each predictor step; ``element_temperature`` divides the element logits at every step;
    ``repulsion`` (Å, default 1.0; 0 = off, as in the published protocol) pushes apart orbits
    whose replicated atoms come closer than that in the last 10 % of the steps (a sampler
    heuristic, ``symmcd.sampling.repulsion``); ``element_decoding`` "charge-balanced" takes,
    for a crystal whose composition fails SMACT's charge-neutrality test, the likeliest elements
    of the network's last prediction that pass it (``symmcd.sampling.charge_balance``; "argmax",
    the published protocol, keeps the likeliest element per orbit).

    Redraws: up to ``max_attempts`` draws per crystal for those that collapse (< 0.5 Å), fail
    the symmetry check, have atoms closer than ``min_distance`` Å or, with
    ``charge_balanced``, fail SMACT's charge-neutrality test (1 = the published protocol).

    Properties (a model trained with ``model.properties``, such as the shipped conditioned
    model): ``targets`` such as ``"formation_energy_per_atom=-2.5"`` (or ``{name: value}``)
    condition the network, and each crystal's space group and size are drawn from training
    crystals near the targets; ``guidance`` weighs the conditional against the unconditional
    prediction (classifier-free guidance: 1 = the conditional model, one network call per step;
    above 1 pushes harder toward the target at two calls per step; 0 = unconditional; default
    ``DEFAULT_GUIDANCE`` with targets, None without: a guidance weight without targets is an
    error, since it would change nothing); ``screen`` K > 1 samples K times as many crystals and
    keeps those whose property, as a predictor independent of the generator predicts it, lies
    nearest the targets (``symmcd.sampling.sampler.screened``; the CLI screens formation-energy
    targets with CDVAE's model).
    """

    spacegroups: tuple[int, ...] | None = None
    top_k_spacegroups: int | None = None
    elements: tuple[str, ...] | None = None
    formula: str | None = None
    steps: int | None = None
    batch_size: int = 500
    seed: int = 0
    precision: str = "auto"
    max_attempts: int = 10
    corrector_steps: int = DEFAULT_CORRECTOR_STEPS
    min_distance: float = COLLAPSE_DISTANCE
    element_temperature: float = 1.0
    charge_balanced: bool = False
    element_decoding: str = DEFAULT_ELEMENT_DECODING
    repulsion: float = DEFAULT_REPULSION
    targets: tuple[tuple[str, float], ...] | None = None
    guidance: float | None = None  # DEFAULT_GUIDANCE when there are targets
    screen: int = 1  # candidates per crystal kept; > 1 needs targets

    def __post_init__(self) -> None:
        from symmcd.sampling import conditions  # pymatgen: only when a config is built

        groups = conditions.parse_spacegroups(self.spacegroups)
        elements = conditions.parse_elements(self.elements)
        if self.formula is not None:
            if not isinstance(self.formula, str):
                raise InputError(f"formula: {self.formula!r} must be a string such as LiFePO4")
            conditions.parse_formula(self.formula)
        if groups is not None and self.top_k_spacegroups is not None:
            raise InputError("spacegroups and top_k_spacegroups: give one, not both")
        if self.formula is not None and elements is not None:
            raise InputError("elements and formula: give one, not both")
        if self.top_k_spacegroups is not None:
            checked_int("top_k_spacegroups", self.top_k_spacegroups, 1)
        if self.steps is not None:
            checked_int("steps", self.steps, 1)
        if self.precision not in PRECISIONS:
            choices = ", ".join(PRECISIONS)
            raise InputError(f"precision: {self.precision!r} must be one of {choices}")
        if self.element_decoding not in ELEMENT_DECODINGS:
            choices = ", ".join(ELEMENT_DECODINGS)
            raise InputError(
                f"element_decoding: {self.element_decoding!r} must be one of {choices}"
            )
        if not isinstance(self.charge_balanced, bool):
            raise InputError(f"charge_balanced: {self.charge_balanced!r} must be True or False")
        normalised = {
            "spacegroups": groups,
            "elements": elements,
            "batch_size": checked_int("batch_size", self.batch_size, 1),
            "seed": checked_int("seed", self.seed, 0, MAX_SEED),
            "max_attempts": checked_int("max_attempts", self.max_attempts, 1, MAX_ATTEMPTS),
            "corrector_steps": checked_int(
                "corrector_steps", self.corrector_steps, 0, MAX_CORRECTOR_STEPS
            ),
            "min_distance": checked_float(
                "min_distance", self.min_distance, COLLAPSE_DISTANCE, MAX_MIN_DISTANCE, " (Å)"
            ),
            "element_temperature": checked_float(
                "element_temperature", self.element_temperature, *ELEMENT_TEMPERATURE_RANGE
            ),
            "repulsion": checked_float("repulsion", self.repulsion, 0.0, MAX_REPULSION, " (Å)"),
            "targets": conditions.parse_targets(self.targets),
        }
        normalised["guidance"] = checked_guidance(self.guidance, normalised["targets"])
        normalised["screen"] = checked_int("screen", self.screen, 1, MAX_SCREEN)
        if normalised["screen"] > 1 and not normalised["targets"]:
            raise InputError(
                f"screen: {self.screen!r} keeps the crystals nearest a property target, and there "
                "is none; add a target such as --target formation_energy_per_atom=-2.5 or leave "
                "screen out"
            )
        for name, value in normalised.items():
            object.__setattr__(self, name, value)

    @classmethod
    def from_options(cls, base: SamplingConfig | None = None, **options: Any) -> SamplingConfig:
        """``base`` (default settings if None) with ``options`` replacing its fields; an unknown
        option raises ``InputError`` naming it."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise InputError(f"unknown sampling option(s): {', '.join(unknown)}")
        if base is not None and "targets" in options and not options["targets"]:
            options.setdefault("guidance", None)  # the weight of targets that are dropped
        return replace(base, **options) if base is not None else cls(**options)

    @classmethod
    def preset(cls, name: str, **options: Any) -> SamplingConfig:
        """The named preset (``PRESETS``) with ``options`` replacing its values."""
        if name not in PRESETS:
            raise InputError(f"preset: {name!r} must be one of {', '.join(PRESETS)}")
        return cls.from_options(None, **{**PRESETS[name], **options})

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values (lists for tuples), as ``summary.json`` records them."""
        plain = {
            key: list(value) if isinstance(value, tuple) else value
            for key, value in asdict(self).items()
        }
        plain["targets"] = dict(self.targets) if self.targets else None
        return plain


def checked_guidance(guidance, targets) -> float | None:
    """The guidance weight of a run: DEFAULT_GUIDANCE when unset with targets, None when unset
    without; InputError for a weight given without targets (it would be recorded but do nothing)
    or outside GUIDANCE_RANGE."""
    if guidance is None:
        return DEFAULT_GUIDANCE if targets else None
    value = checked_float("guidance", guidance, *GUIDANCE_RANGE)
    if not targets:
        raise InputError(
            f"guidance: {guidance!r} weighs property targets, and there are none; add a target "
            "such as --target formation_energy_per_atom=-2.5 or leave guidance out"
        )
    return value


def checked_int(name: str, value, minimum: int, maximum: int | None = None) -> int:
    """`value` as an int, or an InputError naming `name` unless it is an integer >= minimum
    (and <= maximum, if given)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        kind = "positive" if minimum == 1 else "non-negative" if minimum == 0 else f">= {minimum}"
        raise InputError(f"{name}: {value!r} must be a {kind} integer")
    if maximum is not None and value > maximum:
        raise InputError(f"{name}: {value!r} must be at most {maximum}")
    return int(value)


def checked_float(name: str, value, low: float, high: float, unit: str = "") -> float:
    """`value` as a float, or an InputError naming `name` unless it is a number in [low, high]."""
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if not ok or not low <= value <= high:
        raise InputError(f"{name}: {value!r} must be a number{unit} in [{low}, {high}]")
    return float(value)
