"""Tests of the single noise processes: lattice DDPM, wrapped normal, marginal D3PM."""

import math

import pytest
import torch

from symmcd.diffusion.coords import (
    WrappedNormalDiffusion,
    wrapped_normal_log_density,
    wrapped_normal_score,
)
from symmcd.diffusion.discrete import MarginalD3PM
from symmcd.diffusion.lattice import LatticeDDPM
from symmcd.diffusion.schedules import cosine_alpha_bars, geometric_sigmas
from symmcd.errors import ConfigError, InputError

T = 100


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ---- schedules ---------------------------------------------------------------------------
def test_schedules_start_clean_and_are_monotone():
    alpha_bars = cosine_alpha_bars(T)
    sigmas = geometric_sigmas(T, 0.005, 0.5)
    assert alpha_bars[0] == 1 and alpha_bars[-1] < 1e-3
    assert bool((alpha_bars[1:] < alpha_bars[:-1]).all())
    assert sigmas[0] == 0 and sigmas[1] == pytest.approx(0.005) and sigmas[-1] == pytest.approx(0.5)
    with pytest.raises(ConfigError):
        cosine_alpha_bars(0)


# ---- lattice -----------------------------------------------------------------------------
def lattice_inputs(b: int = 64):
    k0 = torch.randn(b, 6, generator=gen(1))
    mask = torch.rand(b, 6, generator=gen(2)) < 0.5
    return k0, mask


def test_lattice_fixed_entries_never_move():
    process = LatticeDDPM(T)
    k0, mask = lattice_inputs()
    t = torch.randint(1, T + 1, (64,), generator=gen(3))
    k_t, eps = process.q_sample(k0, t, mask, generator=gen(4))
    assert torch.equal(k_t[~mask], k0[~mask]) and bool((eps[~mask] == 0).all())
    assert not torch.allclose(k_t[mask], k0[mask])
    eps_pred = torch.randn(64, 6, generator=gen(5))
    for t_prev in (0, 7, 50):  # strided and final steps
        k_prev = process.reverse_step(k_t, torch.full((64,), 80), t_prev, eps_pred, mask, gen(6))
        assert torch.equal(k_prev[~mask], k0[~mask]) and bool(torch.isfinite(k_prev).all())
    prior = process.sample_prior((64, 6), mask, k0, gen(7))
    assert torch.equal(prior[~mask], k0[~mask])


def test_lattice_loss_ignores_fixed_entries():
    k0, mask = lattice_inputs()
    eps = torch.randn(64, 6)
    pred = eps + 10.0 * (~mask)
    assert LatticeDDPM.loss(pred, eps, mask).item() == pytest.approx(0.0)


def test_lattice_true_eps_recovers_k0_and_strided_posterior_is_exact():
    process = LatticeDDPM(T)
    b = 20000
    k0 = torch.full((b, 6), 0.7)
    mask = torch.ones(b, 6, dtype=torch.bool)
    t, t_prev = 90, 30
    k_t, eps = process.q_sample(k0, torch.full((b,), t), mask, generator=gen(8))
    assert torch.allclose(process.reverse_step(k_t, t, 0, eps, mask, gen(9)), k0, atol=1e-3)
    # Marginalising the strided posterior over k_t must give q(k_prev | k0).
    k_prev = process.reverse_step(k_t, t, t_prev, eps, mask, gen(10))
    alpha_bar_prev = process.alpha_bars[t_prev]
    assert k_prev.mean().item() == pytest.approx(0.7 * alpha_bar_prev.sqrt().item(), abs=0.01)
    assert k_prev.var().item() == pytest.approx(1 - alpha_bar_prev.item(), rel=0.03)


# ---- coordinates -------------------------------------------------------------------------
@pytest.mark.parametrize("sigma", [0.01, 0.1, 0.5, 1.0])
def test_wrapped_normal_score_matches_finite_differences(sigma):
    x = torch.linspace(-0.6, 0.6, 41, dtype=torch.float64)
    h = 1e-5
    numeric = (
        wrapped_normal_log_density(x + h, sigma) - wrapped_normal_log_density(x - h, sigma)
    ) / (2 * h)
    assert torch.allclose(wrapped_normal_score(x, sigma), numeric, rtol=1e-4, atol=1e-4)


def test_wrapped_normal_density_integrates_to_one():
    x = torch.linspace(0, 1, 20001, dtype=torch.float64)
    density = wrapped_normal_log_density(x, 0.3).exp()
    assert torch.trapezoid(density, x).item() == pytest.approx(1.0, abs=1e-6)


def test_coordinate_targets_are_unit_scale_and_wrapped():
    process = WrappedNormalDiffusion(T)
    n = 30000
    x0 = torch.rand(n, 3, generator=gen(11))
    for t in (1, 50, T):
        x_t, target = process.q_sample(x0, torch.full((n,), t), gen(12))
        assert bool(((x_t >= 0) & (x_t < 1)).all())
        assert (target**2).mean().item() == pytest.approx(1.0, rel=0.05)


def test_coordinate_steps_are_finite_and_wrapped():
    process = WrappedNormalDiffusion(T)
    x_t = torch.rand(50, 3, generator=gen(13))
    pred = 3 * torch.randn(50, 3, generator=gen(14))
    t = torch.full((50,), 60)
    for x in (
        process.predictor_step(x_t, t, torch.full((50,), 20), pred, gen(15)),
        process.predictor_step(x_t, t, 0, pred, gen(15)),
        process.corrector_step(x_t, t, pred, generator=gen(16)),
    ):
        assert bool(torch.isfinite(x).all()) and bool(((x >= 0) & (x < 1)).all())


def test_coordinate_predictor_with_true_score_denoises():
    """At small noise Tweedie's step x + sigma^2 score moves x_t back to x0."""
    process = WrappedNormalDiffusion(T)
    x0 = torch.rand(200, 3, generator=gen(17))
    t = torch.full((200,), 10)
    x_t, target = process.q_sample(x0, t, gen(18))
    x_hat = process.predictor_step(x_t, t, 0, target, gen(19))
    error = torch.remainder(x_hat - x0 + 0.5, 1.0) - 0.5
    assert error.abs().max().item() < 1e-4


# ---- discrete ----------------------------------------------------------------------------
def marginals_with_zeros(c: int = 6, m: int = 1):
    marginals = torch.tensor([0.4, 0.0, 0.3, 0.2, 0.0, 0.1])[:c]
    return marginals.expand(m, c).clone()


def test_transition_matrices_are_stochastic_and_converge_to_marginals():
    process = MarginalD3PM(6, T)
    m = marginals_with_zeros()[0]
    product = torch.eye(6)
    for t in range(1, T + 1):
        step = process.transition_matrix(t, t - 1, m)
        assert torch.allclose(step.sum(-1), torch.ones(6)) and bool((step >= 0).all())
        product = product @ step
        if t in (1, 37, T):
            cumulative = process.q_probs(torch.arange(6), t, m.expand(6, 6))
            assert torch.allclose(product, cumulative, atol=1e-5)
    assert torch.allclose(product, m.expand(6, 6), atol=1e-3)


def test_posterior_sums_to_one_and_is_consistent_for_strided_steps():
    process = MarginalD3PM(6, T)
    m = marginals_with_zeros(m=6)
    x0 = torch.arange(6)
    for t, t_prev in ((T, 60), (40, 39), (25, 0)):
        q_prev = process.q_probs(x0, t_prev, m)  # (6 x0, 6)
        mixed = torch.zeros(6, 6)
        for x_t in range(6):
            x_t_items = torch.full((6,), x_t)
            post = process.posterior_probs(x_t_items, torch.eye(6), t, t_prev, m)
            assert torch.allclose(post.sum(-1), torch.ones(6)) and bool(torch.isfinite(post).all())
            mixed += process.q_probs(x0, t, m)[:, x_t : x_t + 1] * post
        assert torch.allclose(mixed, q_prev, atol=1e-5)


def test_reverse_chain_stays_inside_allowed_classes():
    process = MarginalD3PM(6, T)
    m = marginals_with_zeros(m=500)
    allowed = torch.zeros(500, 6, dtype=torch.bool)
    allowed[:, [0, 3]] = True
    allowed[:250, 5] = True
    x = process.sample_prior(m, gen(20), allowed)
    logits = torch.randn(500, 6, generator=gen(21)) * 5
    for t, t_prev in ((T, 70), (70, 30), (30, 1), (1, 0)):
        assert bool(allowed.gather(1, x[:, None]).all())
        x = process.reverse_step(x, t, t_prev, logits, m, gen(22), allowed=allowed)
    assert bool(allowed.gather(1, x[:, None]).all())
    with pytest.raises(InputError):
        process.sample_prior(m, gen(23), torch.zeros(500, 6, dtype=torch.bool))


def test_discrete_zero_marginals_give_no_nan_and_stay_in_support():
    process = MarginalD3PM(6, T)
    m = marginals_with_zeros(m=300)
    x = process.sample_prior(m, gen(24))
    assert not bool(((x == 1) | (x == 4)).any())
    logits = torch.zeros(300, 6)
    logits[:, 1] = 50.0  # the network insists on a class of zero marginal
    loss = process.loss(logits, torch.ones(300, dtype=torch.long), x, torch.full((300,), 5), m, 1.0)
    assert math.isfinite(loss.item())
    x_prev = process.reverse_step(x, 5, 4, logits, m, gen(25))
    assert bool(x_prev.ge(0).all()) and bool(x_prev.lt(6).all())
    assert int(process.reverse_step(x, 5, 0, logits, m, gen(26)).eq(1).sum()) == 300


def test_discrete_loss_is_cross_entropy_without_hybrid_term():
    process = MarginalD3PM(4, T)
    m = torch.full((3, 4), 0.25)
    logits = torch.randn(3, 4, generator=gen(27))
    x0 = torch.tensor([0, 2, 3])
    x_t = process.q_sample(x0, torch.full((3,), 50), m, gen(28))
    expected = torch.nn.functional.cross_entropy(logits, x0)
    assert process.loss(logits, x0, x_t, torch.full((3,), 50), m).item() == pytest.approx(
        expected.item()
    )
    assert process.loss(logits, x0, x_t, torch.full((3,), 50), m, 1.0) > expected
    with pytest.raises(ConfigError):
        MarginalD3PM(4, T, schedule="square")
