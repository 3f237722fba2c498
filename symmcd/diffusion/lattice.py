"""DDPM (cosine schedule) on the lattice k-vector, with per-crystal fixed entries.

The process works on *normalised* k; normalisation lives in :mod:`symmcd.diffusion.joint`.
``mask`` is ``True`` for free entries. Fixed entries (set by the crystal system) are never noised
and never moved by a reverse step, so they come back exactly as they went in.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from symmcd.diffusion.schedules import check_num_steps, cosine_alpha_bars, gather_at


class LatticeDDPM(nn.Module):
    """Gaussian DDPM ``q(k_t | k_0) = N(sqrt(abar_t) k_0, (1 - abar_t) I)`` on the free entries."""

    def __init__(self, num_steps: int, cosine_s: float = 0.008) -> None:
        super().__init__()
        self.num_steps = check_num_steps(num_steps)
        self.register_buffer("alpha_bars", cosine_alpha_bars(num_steps, cosine_s), persistent=False)

    def _alpha_bar(self, t: Tensor | int, like: Tensor) -> Tensor:
        return gather_at(self.alpha_bars, t, like).to(like.dtype)[:, None]

    def q_sample(
        self,
        k0: Tensor,
        t: Tensor,
        mask: Tensor,
        noise: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Noise ``k0`` (B, 6) to step ``t`` (B,); returns ``(k_t, eps)`` with ``eps = 0`` and
        ``k_t = k0`` where ``mask`` is False."""
        if noise is None:
            noise = torch.randn(k0.shape, generator=generator, device=k0.device, dtype=k0.dtype)
        eps = torch.where(mask, noise, torch.zeros_like(noise))
        alpha_bar = self._alpha_bar(t, k0)
        k_t = alpha_bar.sqrt() * k0 + (1 - alpha_bar).sqrt() * eps
        return torch.where(mask, k_t, k0), eps

    @staticmethod
    def loss(eps_pred: Tensor, eps: Tensor, mask: Tensor) -> Tensor:
        """Mean squared error over the free entries (0 if no entry is free)."""
        mask = mask.to(eps_pred.dtype)
        return ((eps_pred - eps) ** 2 * mask).sum() / mask.sum().clamp_min(1.0)

    def predict_k0(self, k_t: Tensor, t: Tensor | int, eps_pred: Tensor) -> Tensor:
        """Clean k implied by a noise prediction: ``(k_t - sqrt(1 - abar) eps) / sqrt(abar)``."""
        alpha_bar = self._alpha_bar(t, k_t)
        return (k_t - (1 - alpha_bar).sqrt() * eps_pred) / alpha_bar.sqrt()

    def reverse_step(
        self,
        k_t: Tensor,
        t: Tensor | int,
        t_prev: Tensor | int,
        eps_pred: Tensor,
        mask: Tensor,
        generator: torch.Generator | None = None,
        clip_k0: float | None = None,
    ) -> Tensor:
        """Draw ``k_{t_prev}`` from the Gaussian posterior ``q(k_prev | k_t, k0_hat)``.

        Exact for any ``0 <= t_prev < t``: it uses ``alpha_{t|prev} = abar_t / abar_prev``. At
        ``t_prev = 0`` the posterior variance is 0 and the step returns the predicted ``k0``.
        ``clip_k0`` clamps the predicted ``k0`` to ``[-clip_k0, clip_k0]``: near ``t = T`` it
        divides by ``sqrt(abar_T)`` (tiny), so a poor ``eps`` would otherwise explode.
        """
        alpha_bar = self._alpha_bar(t, k_t)
        alpha_bar_prev = self._alpha_bar(t_prev, k_t)
        alpha_step = alpha_bar / alpha_bar_prev
        k0_hat = self.predict_k0(k_t, t, eps_pred)
        if clip_k0 is not None:
            k0_hat = k0_hat.clamp(-clip_k0, clip_k0)
        denom = (1 - alpha_bar).clamp_min(1e-12)
        mean = (
            alpha_bar_prev.sqrt() * (1 - alpha_step) / denom * k0_hat
            + alpha_step.sqrt() * (1 - alpha_bar_prev) / denom * k_t
        )
        variance = ((1 - alpha_bar_prev) / denom * (1 - alpha_step)).clamp_min(0.0)
        noise = torch.randn(k_t.shape, generator=generator, device=k_t.device, dtype=k_t.dtype)
        k_prev = mean + variance.sqrt() * noise
        return torch.where(mask, k_prev, k_t)

    @staticmethod
    def sample_prior(
        shape: tuple[int, ...] | torch.Size,
        mask: Tensor,
        fixed_values: Tensor,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """``N(0, I)`` on the free entries, ``fixed_values`` (normalised) on the others."""
        noise = torch.randn(
            tuple(shape), generator=generator, device=fixed_values.device, dtype=fixed_values.dtype
        )
        return torch.where(mask, noise, fixed_values)
