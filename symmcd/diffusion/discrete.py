"""D3PM with marginal transitions for categorical variables (elements, site-symmetry classes).

One step mixes the current class with a draw from the marginals ``m``:
``Q_t = alpha_t I + (1 - alpha_t) 1 m^T``, so ``Q_1 ... Q_t = abar_t I + (1 - abar_t) 1 m^T`` and
the chain converges to ``m``. Marginals are given per item as ``(M, C)`` rows so that each
site-symmetry direction can use the marginals of its own space group. Rows are renormalised
(a zero row becomes uniform), and zero entries are handled without NaN.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from symmcd.diffusion.schedules import (
    as_steps,
    check_num_steps,
    cosine_alpha_bars,
    gather_at,
    linear_alpha_bars,
)
from symmcd.errors import ConfigError, InputError

_TINY = 1e-30
SCHEDULES = ("cosine", "linear")


def normalise_marginals(marginals: Tensor, allowed: Tensor | None = None) -> Tensor:
    """Rows of ``marginals`` (M, C) as probabilities, restricted to ``allowed`` (M, C) if given.

    A row with no mass (left) becomes uniform over its allowed classes.
    """
    marginals = marginals.float().clamp_min(0.0)
    if allowed is None:
        allowed = torch.ones_like(marginals, dtype=torch.bool)
    marginals = marginals * allowed
    total = marginals.sum(-1, keepdim=True)
    uniform = allowed.float() / allowed.sum(-1, keepdim=True).clamp_min(1)
    return torch.where(total > 0, marginals / total.clamp_min(_TINY), uniform)


def check_allowed(allowed: Tensor | None) -> None:
    """Reject an ``allowed`` mask (M, C) with an item that allows no class."""
    if allowed is not None and not bool(allowed.any(-1).all()):
        raise InputError("allowed classes: every item needs at least one allowed class")


def sample_categorical(probs: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """One class per row of ``probs`` (M, C) (rows need not be normalised)."""
    if probs.shape[0] == 0:
        return torch.zeros(0, dtype=torch.long, device=probs.device)
    return torch.multinomial(probs.clamp_min(0.0), 1, generator=generator).squeeze(-1)


class MarginalD3PM(nn.Module):
    """Discrete diffusion over ``num_classes`` classes converging to per-item marginals."""

    def __init__(self, num_classes: int, num_steps: int, schedule: str = "cosine") -> None:
        super().__init__()
        self.num_classes = int(num_classes)
        self.num_steps = check_num_steps(num_steps)
        if schedule == "cosine":
            alpha_bars = cosine_alpha_bars(num_steps)
        elif schedule == "linear":
            alpha_bars = linear_alpha_bars(num_steps)
        else:
            raise ConfigError(f"unknown D3PM schedule {schedule!r}; use one of {SCHEDULES}")
        self.register_buffer("alpha_bars", alpha_bars, persistent=False)

    def _alpha_bar(self, t: Tensor | int, like: Tensor) -> Tensor:
        return gather_at(self.alpha_bars, t, like)[:, None]

    def transition_matrix(self, t: int, t_prev: int, marginals: Tensor) -> Tensor:
        """``Q_{t_prev -> t}`` (C, C) for one item's marginals (C,): row ``i`` is
        ``q(x_t | x_prev = i) = r onehot(i) + (1 - r) m`` with ``r = abar_t / abar_prev``."""
        m = normalise_marginals(marginals[None])[0]
        ratio = self.alpha_bars[t] / self.alpha_bars[t_prev]
        eye = torch.eye(self.num_classes, device=m.device)
        return ratio * eye + (1 - ratio) * m[None].expand(self.num_classes, -1)

    def q_probs(self, x0: Tensor, t: Tensor | int, marginals: Tensor) -> Tensor:
        """``q(x_t | x_0)`` (M, C) = ``abar_t onehot(x0) + (1 - abar_t) m``."""
        alpha_bar = self._alpha_bar(t, x0)
        onehot = F.one_hot(x0, self.num_classes).float()
        return alpha_bar * onehot + (1 - alpha_bar) * normalise_marginals(marginals)

    def q_sample(
        self,
        x0: Tensor,
        t: Tensor | int,
        marginals: Tensor,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Draw ``x_t ~ q(x_t | x_0)`` for classes ``x0`` (M,) at steps ``t`` (M,)."""
        return sample_categorical(self.q_probs(x0, t, marginals), generator)

    def posterior_probs(
        self,
        x_t: Tensor,
        x0_probs: Tensor,
        t: Tensor | int,
        t_prev: Tensor | int,
        marginals: Tensor,
    ) -> Tensor:
        """``p(x_prev | x_t) = sum_x0 q(x_prev | x_t, x0) p(x0)`` (M, C), rows summing to 1.

        With ``r = abar_t / abar_prev`` (the transition ``Q_{prev -> t}``) and
        ``w(x0) = p(x0) / q(x_t | x0)`` the sum is, for each class ``j``,
        ``q(x_t | x_prev=j) * (abar_prev w_j + (1 - abar_prev) m_j sum(w))``: O(M C), no (C, C).
        If the row has no mass (``x_t`` outside the support of ``p`` and ``m``) it falls back
        to ``q(x_prev | x0 ~ p)``.
        """
        m = normalise_marginals(marginals)
        x0_probs = x0_probs.float()
        alpha_bar = self._alpha_bar(t, x_t)
        alpha_bar_prev = self._alpha_bar(t_prev, x_t)
        ratio = alpha_bar / alpha_bar_prev.clamp_min(_TINY)
        onehot_t = F.one_hot(x_t, self.num_classes).float()
        m_at_x_t = m.gather(-1, x_t[:, None])
        likelihood = ratio * onehot_t + (1 - ratio) * m_at_x_t  # q(x_t | x_prev = j)
        evidence = alpha_bar * onehot_t + (1 - alpha_bar) * m_at_x_t  # q(x_t | x0 = j)
        weights = x0_probs / evidence.clamp_min(1e-12)
        prior_prev = alpha_bar_prev * weights + (1 - alpha_bar_prev) * m * weights.sum(
            -1, keepdim=True
        )
        unnormalised = likelihood * prior_prev
        total = unnormalised.sum(-1, keepdim=True)
        fallback = alpha_bar_prev * x0_probs + (1 - alpha_bar_prev) * m
        probs = torch.where(total > 1e-20, unnormalised / total.clamp_min(1e-20), fallback)
        return probs / probs.sum(-1, keepdim=True).clamp_min(_TINY)

    def loss(
        self,
        logits_x0: Tensor,
        x0: Tensor,
        x_t: Tensor,
        t: Tensor,
        marginals: Tensor,
        hybrid_weight: float = 0.0,
    ) -> Tensor:
        """Cross-entropy of the ``x0`` prediction, plus ``hybrid_weight`` times the variational
        KL ``KL(q(x_{t-1} | x_t, x0) || p(x_{t-1} | x_t))`` (both averaged over items)."""
        loss = F.cross_entropy(logits_x0.float(), x0)
        if hybrid_weight > 0:
            t_prev = t - 1
            onehot = F.one_hot(x0, self.num_classes).float()
            q_post = self.posterior_probs(x_t, onehot, t, t_prev, marginals)
            p_post = self.posterior_probs(
                x_t, torch.softmax(logits_x0.float(), -1), t, t_prev, marginals
            )
            kl = q_post * (q_post.clamp_min(1e-20).log() - p_post.clamp_min(1e-20).log())
            loss = loss + hybrid_weight * kl.sum(-1).mean()
        return loss

    def reverse_step(
        self,
        x_t: Tensor,
        t: Tensor | int,
        t_prev: Tensor | int,
        logits_x0: Tensor,
        marginals: Tensor,
        generator: torch.Generator | None = None,
        allowed: Tensor | None = None,
        final: str = "argmax",
    ) -> Tensor:
        """Draw ``x_{t_prev}`` for ``0 <= t_prev < t`` (strided steps are exact).

        ``allowed`` (M, C) bool restricts the chain: the ``x0`` prediction is masked and the
        marginals are renormalised on the allowed set. Where ``t_prev`` is 0 the step returns
        the most likely ``x0`` under the network (``final="argmax"``) or a draw from it
        (``final="sample"``), always inside ``allowed``.
        """
        if final not in ("argmax", "sample"):
            raise ConfigError(f"final must be 'argmax' or 'sample', got {final!r}")
        check_allowed(allowed)
        m = normalise_marginals(marginals, allowed)
        logits = logits_x0.float()
        if allowed is not None:
            logits = logits.masked_fill(~allowed, float("-inf"))
        x0_probs = torch.softmax(logits, -1)
        posterior = self.posterior_probs(x_t, x0_probs, t, t_prev, m)
        x_prev = sample_categorical(posterior, generator)
        x0_final = (
            x0_probs.argmax(-1) if final == "argmax" else sample_categorical(x0_probs, generator)
        )
        return torch.where(as_steps(t_prev, x_t) == 0, x0_final, x_prev)

    @staticmethod
    def sample_prior(
        marginals: Tensor,
        generator: torch.Generator | None = None,
        allowed: Tensor | None = None,
    ) -> Tensor:
        """Draw ``x_T`` from the (allowed-restricted) marginals (M, C)."""
        check_allowed(allowed)
        return sample_categorical(normalise_marginals(marginals, allowed), generator)
