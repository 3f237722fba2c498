"""Wrapped-normal (variance-exploding) diffusion on fractional coordinates, the torus [0, 1)^3.

``q(x_t | x_0)`` is a normal of scale ``sigma_t`` wrapped onto the unit interval. The network
predicts the score ``d/dx_t log q(x_t | x_0)`` divided by its root-mean-square at ``sigma_t``, an
O(1) quantity at every noise level; the table of those scales is computed once by quadrature.
"""

from __future__ import annotations

import functools
import math

import torch
from torch import Tensor, nn

from symmcd.diffusion.schedules import check_num_steps, gather_at, geometric_sigmas


def _image_offsets(n_images: int, like: Tensor) -> Tensor:
    return torch.arange(-n_images, n_images + 1, device=like.device, dtype=like.dtype)


def wrapped_normal_log_density(x: Tensor, sigma: Tensor | float, n_images: int = 10) -> Tensor:
    """``log sum_n N(x + n; 0, sigma^2)``, the wrapped normal log density at displacement ``x``."""
    sigma = torch.as_tensor(sigma, dtype=x.dtype, device=x.device)
    shifted = x[..., None] + _image_offsets(n_images, x)
    sigma_ = sigma[..., None] if sigma.ndim else sigma
    log_terms = -(shifted**2) / (2 * sigma_**2) - torch.log(sigma_) - 0.5 * math.log(2 * math.pi)
    return torch.logsumexp(log_terms, dim=-1)


def wrapped_normal_score(x: Tensor, sigma: Tensor | float, n_images: int = 10) -> Tensor:
    """``d/dx log`` of the wrapped normal at displacement ``x`` (periodic, odd in ``x``).

    Computed as a softmax-weighted average over periodic images, stable for small ``sigma``.
    """
    sigma = torch.as_tensor(sigma, dtype=x.dtype, device=x.device)
    shifted = x[..., None] + _image_offsets(n_images, x)
    sigma_ = sigma[..., None] if sigma.ndim else sigma
    weights = torch.softmax(-(shifted**2) / (2 * sigma_**2), dim=-1)
    return -(weights * shifted).sum(-1) / sigma**2


def score_mean_square(sigma: Tensor, num_points: int = 201, n_images: int = 5) -> Tensor:
    """``E[score^2]`` under the wrapped normal of each scale in ``sigma`` (S,), by quadrature.

    Trapezoidal rule in float64 over ``|x| <= min(0.5, 10 sigma)``, where the density lives; the
    integrand is smooth (and periodic where the window is the whole period), so 201 points
    agree with 2,001 to 1e-15 relative, in a sixth of the time.
    """
    sigma = torch.as_tensor(sigma, dtype=torch.float64).reshape(-1, 1)
    half_width = (10.0 * sigma).clamp(max=0.5)
    x = torch.linspace(-1.0, 1.0, num_points, dtype=torch.float64) * half_width
    density = wrapped_normal_log_density(x, sigma, n_images).exp()
    integrand = density * wrapped_normal_score(x, sigma, n_images) ** 2
    return torch.trapezoid(integrand, x, dim=-1) / torch.trapezoid(density, x, dim=-1)


@functools.lru_cache(maxsize=8)
def score_norm_table(num_steps: int, sigma_min: float, sigma_max: float) -> Tensor:
    """``sqrt(E[score^2])`` at every ``sigma_t`` (T+1,), entry 0 set to 1; cached per schedule."""
    sigmas = geometric_sigmas(num_steps, sigma_min, sigma_max)
    mean_squares = score_mean_square(sigmas[1:])
    return torch.cat([torch.ones(1, dtype=torch.float64), mean_squares.sqrt()]).float()


class WrappedNormalDiffusion(nn.Module):
    """VE diffusion on the torus with geometric ``sigma_t`` from ``sigma_min`` to ``sigma_max``."""

    def __init__(self, num_steps: int, sigma_min: float = 0.005, sigma_max: float = 0.5) -> None:
        super().__init__()
        self.num_steps = check_num_steps(num_steps)
        self.sigma_min = float(sigma_min)
        sigmas = geometric_sigmas(num_steps, sigma_min, sigma_max)
        score_norms = score_norm_table(num_steps, float(sigma_min), float(sigma_max)).clone()
        self.register_buffer("sigmas", sigmas, persistent=False)
        self.register_buffer("score_norms", score_norms, persistent=False)

    def _lookup(self, table: Tensor, t: Tensor | int, like: Tensor) -> Tensor:
        return gather_at(table, t, like).to(like.dtype)[:, None]

    def q_sample(
        self, x0: Tensor, t_node: Tensor, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        """Noise ``x0`` (N, 3) to steps ``t_node`` (N,); returns ``(x_t in [0, 1), target)``.

        ``target`` is the normalised score ``d/dx_t log q(x_t | x0) / rms(score)`` at ``sigma_t``.
        """
        sigma = self._lookup(self.sigmas, t_node, x0)
        noise = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
        displacement = sigma * noise
        x_t = torch.remainder(x0 + displacement, 1.0)
        target = wrapped_normal_score(displacement, sigma) / self._lookup(
            self.score_norms, t_node, x0
        )
        return x_t, target

    @staticmethod
    def loss(pred: Tensor, target: Tensor) -> Tensor:
        """Mean squared error of the normalised score."""
        return ((pred - target) ** 2).mean()

    def score(self, pred: Tensor, t_node: Tensor | int) -> Tensor:
        """The score implied by a normalised network prediction at step ``t``."""
        return pred * self._lookup(self.score_norms, t_node, pred)

    def predictor_step(
        self,
        x_t: Tensor,
        t_node: Tensor | int,
        t_prev_node: Tensor | int,
        pred: Tensor,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Ancestral VE step from ``sigma_t`` to ``sigma_prev`` (any ``t_prev < t``), wrapped mod 1.

        ``x_prev = x_t + (s_t^2 - s_prev^2) score + sqrt(s_prev^2 (s_t^2 - s_prev^2) / s_t^2) z``;
        at ``t_prev = 0`` this is the noise-free Tweedie denoiser.
        """
        sigma = self._lookup(self.sigmas, t_node, x_t)
        sigma_prev = self._lookup(self.sigmas, t_prev_node, x_t)
        step = sigma**2 - sigma_prev**2
        std = (sigma_prev**2 * step / sigma**2).clamp_min(0.0).sqrt()
        noise = torch.randn(x_t.shape, generator=generator, device=x_t.device, dtype=x_t.dtype)
        return torch.remainder(x_t + step * self.score(pred, t_node) + std * noise, 1.0)

    def corrector_step(
        self,
        x_t: Tensor,
        t_node: Tensor | int,
        pred: Tensor,
        step_lr: float = 1e-5,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """One Langevin step at ``sigma_t`` with step size ``step_lr (sigma_t / sigma_min)^2``."""
        sigma = self._lookup(self.sigmas, t_node, x_t)
        step = step_lr * (sigma / self.sigma_min) ** 2
        noise = torch.randn(x_t.shape, generator=generator, device=x_t.device, dtype=x_t.dtype)
        moved = x_t + step * self.score(pred, t_node) + (2 * step).sqrt() * noise
        return torch.remainder(moved, 1.0)

    def sample_prior(
        self, shape: tuple[int, ...], generator: torch.Generator | None = None, device=None
    ) -> Tensor:
        """Uniform coordinates on [0, 1), the limit of the wrapped normal for large sigma."""
        return torch.rand(shape, generator=generator, device=device)
