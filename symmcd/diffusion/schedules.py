"""Noise schedules shared by the diffusion processes.

Every table has ``num_steps + 1`` entries indexed by the integer timestep ``t`` in ``0..T``;
entry 0 is the clean data (no noise), so reverse steps between any ``t`` and ``t_prev < t`` can
look both ends up directly, which is what makes strided sampling exact.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from symmcd.errors import ConfigError

MAX_BETA = 0.999


def check_num_steps(num_steps: int) -> int:
    """Validate a number of diffusion steps (a positive integer)."""
    if not isinstance(num_steps, int) or isinstance(num_steps, bool) or num_steps < 1:
        raise ConfigError(f"num_steps must be a positive integer, got {num_steps!r}")
    return num_steps


def cosine_alpha_bars(num_steps: int, s: float = 0.008) -> Tensor:
    """Cumulative signal fractions ``abar_t`` of the cosine schedule (Nichol & Dhariwal), (T+1,).

    ``abar_0 = 1``; per-step betas are clipped at ``MAX_BETA`` so the last steps stay invertible.
    """
    check_num_steps(num_steps)
    if s <= 0:
        raise ConfigError(f"cosine_s must be positive, got {s}")
    steps = torch.arange(num_steps + 1, dtype=torch.float64)
    f = torch.cos((steps / num_steps + s) / (1 + s) * math.pi / 2) ** 2
    alpha_bars = f / f[0]
    betas = (1 - alpha_bars[1:] / alpha_bars[:-1]).clamp(0.0, MAX_BETA)
    alpha_bars = torch.cat([torch.ones(1, dtype=torch.float64), torch.cumprod(1 - betas, 0)])
    return alpha_bars.float()


def linear_alpha_bars(num_steps: int) -> Tensor:
    """``abar_t = 1 - t / T``: the kept fraction decays linearly to 0."""
    check_num_steps(num_steps)
    return 1 - torch.arange(num_steps + 1, dtype=torch.float32) / num_steps


def geometric_sigmas(num_steps: int, sigma_min: float, sigma_max: float) -> Tensor:
    """Noise scales ``sigma_t``, geometric from ``sigma_min`` (t=1) to ``sigma_max`` (t=T), (T+1,).

    ``sigma_0 = 0``: the clean data.
    """
    check_num_steps(num_steps)
    if not 0 < sigma_min <= sigma_max:
        raise ConfigError(f"need 0 < sigma_min <= sigma_max, got {sigma_min}, {sigma_max}")
    log_sigmas = torch.linspace(math.log(sigma_min), math.log(sigma_max), num_steps)
    if num_steps == 1:
        log_sigmas = torch.tensor([math.log(sigma_max)])
    return torch.cat([torch.zeros(1), log_sigmas.exp()])


def as_steps(t: Tensor | int, like: Tensor) -> Tensor:
    """Integer timesteps ``t`` (an int, a 0-d or a per-item tensor) as a ``(len(like),)`` long
    tensor on ``like``'s device."""
    if not torch.is_tensor(t):
        return torch.full((like.shape[0],), int(t), dtype=torch.long, device=like.device)
    t = t.to(device=like.device, dtype=torch.long)
    return t.expand(like.shape[0]) if t.ndim == 0 else t


def gather_at(table: Tensor, t: Tensor | int, like: Tensor) -> Tensor:
    """``table[t]`` for integer timesteps ``t`` (see :func:`as_steps`), one entry per item."""
    return table[as_steps(t, like).to(table.device)]
