"""Tests of JointDiffusion: training losses, the prior and strided reverse steps."""

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from symmcd.data.batch import CrystalBatch, fully_connected_edges, node_batch_index
from symmcd.diffusion.coords import wrapped_normal_score
from symmcd.diffusion.joint import DiffusionConfig, DiffusionState, JointDiffusion
from symmcd.errors import ConfigError, InputError
from symmcd.model.denoiser import Denoiser, DenoiserConfig, DenoiserOutput
from symmcd.symmetry.lattice import k_fixed_values_batch, k_masks

SPACEGROUPS = [1, 14, 62, 139, 166, 194, 225, 221]


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors: one thread is several times faster than two on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def site_symmetry_marginals() -> torch.Tensor:
    """Random per-group marginals with a third of the classes impossible (zero)."""
    marginals = torch.rand(230, 15, 13, generator=gen(100))
    marginals[marginals < 0.33] = 0.0
    marginals[..., 0] += 0.05
    return marginals / marginals.sum(-1, keepdim=True)


def make_diffusion(num_steps: int = 100, **kwargs) -> JointDiffusion:
    element_marginals = torch.rand(100, generator=gen(101))
    element_marginals[50:] = 0.0  # elements never seen
    return JointDiffusion(
        DiffusionConfig(num_steps=num_steps, **kwargs),
        element_marginals / element_marginals.sum(),
        site_symmetry_marginals(),
        torch.randn(6, generator=gen(102)) * 0.1,
        torch.rand(6, generator=gen(103)) + 0.5,
    )


def synthetic_batch(num_crystals: int = 16, seed: int = 0) -> CrystalBatch:
    """Crystals of 1-4 nodes in assorted space groups, raw k obeying the crystal system."""
    g = gen(seed)
    spacegroup = torch.tensor([SPACEGROUPS[i % len(SPACEGROUPS)] for i in range(num_crystals)])
    num_nodes = torch.randint(1, 5, (num_crystals,), generator=g)
    n = int(num_nodes.sum())
    mask = torch.as_tensor(k_masks(spacegroup.numpy()))
    fixed = torch.as_tensor(k_fixed_values_batch(spacegroup.numpy()), dtype=torch.float32)
    k = torch.where(mask, torch.randn(num_crystals, 6, generator=g) * 0.3, fixed)
    return CrystalBatch(
        spacegroup=spacegroup,
        sg_encoding=(torch.rand(num_crystals, 397, generator=g) < 0.1).float(),
        k=k,
        k_mask=mask,
        num_nodes=num_nodes,
        node_batch=node_batch_index(num_nodes),
        frac_coords=torch.rand(n, 3, generator=g),
        atom_types=torch.randint(0, 50, (n,), generator=g),
        site_symmetry=torch.randint(0, 13, (n, 15), generator=g),
        multiplicity=torch.ones(n, dtype=torch.long),
        edge_index=fully_connected_edges(num_nodes),
    )


def small_model(use_site_symmetry: bool = True) -> Denoiser:
    torch.manual_seed(0)
    config = DenoiserConfig(
        hidden_dim=64, num_layers=2, time_dim=16, num_frequencies=8,
        use_site_symmetry=use_site_symmetry,
    )  # fmt: skip
    return Denoiser(config)


def test_training_losses_keys_and_values():
    diffusion, batch = make_diffusion(), synthetic_batch()
    losses = diffusion.training_losses(small_model(), batch, gen(1))
    assert set(losses) == {"loss", "lattice", "coords", "elements", "site_symmetry"}
    assert all(math.isfinite(v.item()) for v in losses.values())
    cfg = diffusion.config
    weighted = (
        cfg.lattice_weight * losses["lattice"]
        + cfg.coord_weight * losses["coords"]
        + cfg.element_weight * losses["elements"]
        + cfg.site_symmetry_weight * losses["site_symmetry"]
    )
    assert losses["loss"].item() == pytest.approx(weighted.item())
    assert losses["site_symmetry"].item() > 0
    losses["loss"].backward()


def test_training_losses_without_site_symmetry():
    losses = make_diffusion().training_losses(
        small_model(False), synthetic_batch(), gen(1), use_site_symmetry=False
    )
    assert losses["site_symmetry"].item() == 0.0 and math.isfinite(losses["loss"].item())


def test_same_generator_gives_same_losses():
    diffusion, batch, model = make_diffusion(), synthetic_batch(), small_model()
    first = diffusion.training_losses(model, batch, gen(5))["loss"]
    assert diffusion.training_losses(model, batch, gen(5))["loss"].item() == first.item()


def test_from_statistics_reads_attributes():
    stats = SimpleNamespace(
        element_marginals=lambda: np.full(100, 0.01),
        site_symmetry_marginals=lambda: np.full((230, 15, 13), 1 / 13),
        k_mean=np.zeros(6),
        k_std=np.ones(6),
    )
    diffusion = JointDiffusion.from_statistics(DiffusionConfig(num_steps=10), stats)
    assert diffusion.element_marginals.dtype == torch.float32
    assert "k_std" in dict(diffusion.named_buffers())
    with pytest.raises(InputError):
        JointDiffusion(
            DiffusionConfig(), torch.ones(99), torch.ones(230, 15, 13), *[torch.ones(6)] * 2
        )


def test_small_model_overfits_sixteen_crystals():
    """With the noise held fixed (same generator seed) the loss must fall at least tenfold."""
    diffusion, batch, model = make_diffusion(), synthetic_batch(16), small_model()
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    history = []
    for _ in range(250):
        loss = diffusion.training_losses(model, batch, gen(7))["loss"]
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        history.append(loss.item())
    assert history[-1] < history[0] / 10, (history[0], history[-1])


def run_reverse(diffusion, model, batch, steps, corrector_steps=1, **kwargs) -> DiffusionState:
    state = diffusion.prior(
        batch.spacegroup, batch.sg_encoding, batch.num_nodes, gen(11),
        element_allowed=kwargs.get("element_allowed"),
    )  # fmt: skip
    for t, t_prev in zip(steps[:-1], steps[1:], strict=True):
        state, out = diffusion.denoise_step(
            model, state, t, t_prev, gen(12 + t), corrector_steps=corrector_steps, **kwargs
        )
        assert out.coord_score.shape == state.frac_coords.shape
    return state


def test_prior_and_strided_reverse_loop_with_random_model():
    diffusion, batch, model = make_diffusion(), synthetic_batch(12, seed=3), small_model()
    model.eval()
    allowed = torch.zeros(100, dtype=torch.bool)
    allowed[[7, 25, 33]] = True
    state = run_reverse(diffusion, model, batch, [100, 70, 30, 5, 0], element_allowed=allowed)
    for value in (state.k, state.frac_coords):
        assert bool(torch.isfinite(value).all())
    assert bool(((state.frac_coords >= 0) & (state.frac_coords < 1)).all())
    assert bool(allowed[state.atom_types].all())
    k = diffusion.final_k(state)
    assert torch.equal(k[~batch.k_mask], batch.k[~batch.k_mask])  # fixed entries exact
    possible = diffusion.node_site_symmetry_marginals(state.spacegroup, state.node_batch) > 0
    assert bool(possible.gather(1, state.site_symmetry.reshape(-1, 1)).all())
    assert state.edge_index.shape[1] == int((batch.num_nodes * (batch.num_nodes - 1)).sum())


def test_low_element_temperature_follows_the_network_more_closely():
    """Dividing the element logits by a small temperature makes the intermediate element draws
    agree with the network's most likely element more often; temperature 1 changes nothing."""
    diffusion, batch, model = make_diffusion(), synthetic_batch(200, seed=6), small_model()
    model.eval()
    state = diffusion.prior(batch.spacegroup, batch.sg_encoding, batch.num_nodes, gen(1))

    def agreement(temperature: float) -> float:
        new_state, out = diffusion.denoise_step(
            model, state, 60, 30, gen(2), corrector_steps=0, element_temperature=temperature
        )
        return float((new_state.atom_types == out.element_logits.argmax(-1)).float().mean())

    default, _ = diffusion.denoise_step(model, state, 60, 30, gen(2), corrector_steps=0)
    same, _ = diffusion.denoise_step(
        model, state, 60, 30, gen(2), corrector_steps=0, element_temperature=1.0
    )
    assert torch.equal(default.atom_types, same.atom_types)
    assert agreement(0.05) > agreement(1.0) + 0.1


def test_clamped_chains_hold_their_values():
    diffusion, batch, model = make_diffusion(), synthetic_batch(6, seed=4), small_model()
    n = batch.atom_types.shape[0]
    clamp_elements = torch.full((n,), -1)
    clamp_elements[::2] = 3
    state = run_reverse(
        diffusion, model, batch, [100, 50, 0],
        clamp_elements=clamp_elements, clamp_site_symmetry=batch.site_symmetry,
        corrector_steps=0,
    )  # fmt: skip
    assert bool((state.atom_types[::2] == 3).all())
    assert torch.equal(state.site_symmetry, batch.site_symmetry)


def test_full_cell_model_leaves_site_symmetry_alone():
    diffusion, batch, model = make_diffusion(), synthetic_batch(5, seed=5), small_model(False)
    state = diffusion.prior(batch.spacegroup, batch.sg_encoding, batch.num_nodes, gen(1))
    new_state, out = diffusion.denoise_step(model, state, 100, 0, gen(2), corrector_steps=0)
    assert out.site_symmetry_logits is None
    assert torch.equal(new_state.site_symmetry, state.site_symmetry)


def test_bad_inputs_raise_input_errors():
    diffusion, batch, model = make_diffusion(), synthetic_batch(3), small_model()
    state = diffusion.prior(batch.spacegroup, batch.sg_encoding, batch.num_nodes, gen(1))
    with pytest.raises(InputError):
        diffusion.denoise_step(model, state, 10, 10, gen(2), corrector_steps=0)
    with pytest.raises(InputError):
        diffusion.prior(torch.tensor([231]), batch.sg_encoding[:1], torch.tensor([2]), gen(1))
    with pytest.raises(InputError):
        diffusion.prior(
            batch.spacegroup, batch.sg_encoding, batch.num_nodes, gen(1),
            element_allowed=torch.zeros(100, dtype=torch.bool),
        )  # fmt: skip


class OracleDenoiser(torch.nn.Module):
    """Returns the exact noise, score and classes of one known clean batch."""

    def __init__(self, diffusion: JointDiffusion, batch: CrystalBatch) -> None:
        super().__init__()
        self.diffusion, self.batch = diffusion, batch

    def forward(self, crystals, time):
        d, batch = self.diffusion, self.batch
        k_t, frac_coords_t = crystals.k, crystals.frac_coords
        t = torch.round(time * d.num_steps).long()
        t_node = t[batch.node_batch]
        alpha_bar = d.lattice.alpha_bars[t][:, None]
        k_eps = (k_t - alpha_bar.sqrt() * d.normalise_k(batch.k)) / (1 - alpha_bar).sqrt()
        sigma = d.coords.sigmas[t_node][:, None]
        displacement = torch.remainder(frac_coords_t - batch.frac_coords + 0.5, 1.0) - 0.5
        score = wrapped_normal_score(displacement, sigma) / d.coords.score_norms[t_node][:, None]
        return DenoiserOutput(
            coord_score=score,
            k_eps=k_eps,
            element_logits=30.0 * torch.nn.functional.one_hot(batch.atom_types, 100).float(),
            site_symmetry_logits=30.0
            * torch.nn.functional.one_hot(batch.site_symmetry, 13).float(),
        )


@pytest.mark.parametrize("steps", [[100, 0], [100, 60, 20, 3, 0], list(range(100, -1, -1))])
def test_oracle_denoiser_recovers_the_clean_crystal(steps):
    """With exact predictions, full and strided reverse chains end on the clean crystal."""
    diffusion = make_diffusion()
    batch = synthetic_batch(8, seed=6)
    batch.site_symmetry = torch.zeros_like(batch.site_symmetry)  # class 1: always possible
    state = run_reverse(diffusion, OracleDenoiser(diffusion, batch), batch, steps)
    # one step from T divides float32 errors by sqrt(abar_T) ~ 5e-5, hence the tolerance
    assert torch.allclose(diffusion.final_k(state), batch.k, atol=1e-3)
    error = torch.remainder(state.frac_coords - batch.frac_coords + 0.5, 1.0) - 0.5
    if len(steps) > 2:  # one jump from sigma_max = 0.5 cannot locate a point on the torus
        assert error.abs().max().item() < 1e-3
    assert torch.equal(state.atom_types, batch.atom_types)
    assert torch.equal(state.site_symmetry, batch.site_symmetry)


@pytest.mark.parametrize(
    "bad", [{"num_steps": 0}, {"sigma_min": 0.0}, {"sigma_min": 0.6}, {"coord_weight": -1.0},
            {"lattice_weight": "5"}, {"cosine_s": True}],
)  # fmt: skip
def test_diffusion_config_rejects_bad_values(bad):
    with pytest.raises(ConfigError):
        DiffusionConfig(**bad)
