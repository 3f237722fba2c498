"""Classifier-free guidance: one conditioned denoiser, called with and without its targets.

A network trained with randomly dropped labels (``TrainConfig.property_dropout``) is both the
conditional model ``c`` and the unconditional one ``u`` (labels NaN). With weight ``w`` the
sampler uses ``u + w (c - u)``: for the coordinate score and the lattice noise directly, and for
the element and site-symmetry chains on the log-probabilities of their predicted clean classes
(renormalised by the chains' softmax), as in guided discrete diffusion. ``w = 1`` is the
conditional model alone (one call per step); ``w > 1`` sharpens toward the target at two calls.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor, nn

from symmcd.model.denoiser import NoisyCrystals


def guided(unconditional: Tensor | None, conditional: Tensor | None, weight: float):
    """``u + w (c - u)`` (None stays None)."""
    if unconditional is None or conditional is None:
        return conditional
    return unconditional + weight * (conditional - unconditional)


def guided_logits(unconditional: Tensor | None, conditional: Tensor | None, weight: float):
    """Guidance on log-probabilities of class logits (None stays None)."""
    if unconditional is None or conditional is None:
        return conditional
    return guided(
        torch.log_softmax(unconditional.float(), dim=-1),
        torch.log_softmax(conditional.float(), dim=-1),
        weight,
    )


class GuidedDenoiser(nn.Module):
    """Wraps a conditioned denoiser; its ``properties`` input is the target (NaN = none)."""

    def __init__(self, model: nn.Module, weight: float) -> None:
        super().__init__()
        self.model = model
        self.weight = float(weight)

    @property
    def config(self):
        return self.model.config

    def forward(self, crystals: NoisyCrystals, time: Tensor):
        properties = crystals.properties
        if properties is None or self.weight == 1.0:
            return self.model(crystals, time)
        no_target = torch.full_like(properties, torch.nan)
        unconditional = self.model(dataclasses.replace(crystals, properties=no_target), time)
        if self.weight == 0.0:
            return unconditional
        conditional = self.model(crystals, time)
        w = self.weight
        return dataclasses.replace(
            conditional,
            coord_score=guided(unconditional.coord_score, conditional.coord_score, w),
            k_eps=guided(unconditional.k_eps, conditional.k_eps, w),
            element_logits=guided_logits(
                unconditional.element_logits, conditional.element_logits, w
            ),
            site_symmetry_logits=guided_logits(
                unconditional.site_symmetry_logits, conditional.site_symmetry_logits, w
            ),
        )
