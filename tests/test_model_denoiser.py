"""Tests of the denoiser network: shapes, symmetries of the inputs it sees, the baseline mode."""

from dataclasses import replace

import pytest
import torch

from symmcd.data.batch import fully_connected_edges, node_batch_index
from symmcd.errors import InputError
from symmcd.model.denoiser import (
    Denoiser,
    DenoiserConfig,
    NoisyCrystals,
    periodic_fourier_features,
)


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def inputs(num_nodes=(3, 1, 4), seed=0) -> tuple[NoisyCrystals, torch.Tensor]:
    """Random noisy crystals and their diffusion times."""
    g = torch.Generator().manual_seed(seed)
    num_nodes = torch.tensor(num_nodes)
    b, n = len(num_nodes), int(num_nodes.sum())
    time = torch.rand(b, generator=g)
    crystals = NoisyCrystals(
        k=torch.randn(b, 6, generator=g),
        frac_coords=torch.rand(n, 3, generator=g),
        atom_types=torch.randint(0, 100, (n,), generator=g),
        site_symmetry=torch.randint(0, 13, (n, 15), generator=g),
        sg_encoding=torch.rand(b, 397, generator=g),
        node_batch=node_batch_index(num_nodes),
        edge_index=fully_connected_edges(num_nodes),
        num_nodes=num_nodes,
    )
    return crystals, time


def model(**kwargs) -> Denoiser:
    torch.manual_seed(0)
    return Denoiser(DenoiserConfig(hidden_dim=32, num_layers=2, num_frequencies=4, **kwargs)).eval()


def test_output_shapes_and_finite():
    out = model()(*inputs())
    assert out.coord_score.shape == (8, 3)
    assert out.k_eps.shape == (3, 6)
    assert out.element_logits.shape == (8, 100)
    assert out.site_symmetry_logits.shape == (8, 15, 13)
    assert all(bool(torch.isfinite(x).all()) for x in vars(out).values())


def test_full_cell_baseline_has_no_site_symmetry_path():
    net = model(use_site_symmetry=False)
    assert not any("site" in name for name, _ in net.named_parameters())
    x, t = inputs()
    out = net(x, t)
    assert out.site_symmetry_logits is None
    assert torch.equal(net(replace(x, site_symmetry=None), t).coord_score, out.coord_score)


def test_outputs_depend_on_every_input():
    net, (x, t) = model(), inputs()
    reference = net(x, t)
    changed = replace(x, site_symmetry=(x.site_symmetry + 1) % 13)
    assert not torch.allclose(net(changed, t).element_logits, reference.element_logits)
    assert not torch.allclose(net(x, t * 0.5).k_eps, reference.k_eps)
    changed = replace(x, frac_coords=torch.remainder(x.frac_coords * 1.7, 1.0))
    assert not torch.allclose(net(changed, t).coord_score, reference.coord_score)


def test_invariant_to_periodic_images_but_sees_absolute_position():
    """Coordinates enter only through periodic functions; the origin matters (space groups)."""
    net, (x, t) = model(), inputs()
    reference = net(x, t)
    imaged = replace(x, frac_coords=x.frac_coords + torch.randint(-2, 3, (8, 3)))
    out = net(imaged, t)
    assert torch.allclose(out.coord_score, reference.coord_score, atol=1e-4)
    assert torch.allclose(out.k_eps, reference.k_eps, atol=1e-4)
    shifted = replace(x, frac_coords=torch.remainder(x.frac_coords + 0.37, 1.0))
    assert not torch.allclose(net(shifted, t).coord_score, reference.coord_score, atol=1e-4)
    single, t1 = inputs(num_nodes=(1,))
    moved = replace(single, frac_coords=torch.remainder(single.frac_coords + 0.25, 1.0))
    assert not torch.allclose(net(moved, t1).coord_score, net(single, t1).coord_score, atol=1e-4)


def test_equivariant_to_node_order_within_a_crystal():
    net, (x, t) = model(), inputs(num_nodes=(4, 3))
    permutation = torch.tensor([2, 0, 3, 1, 6, 4, 5])
    permuted = replace(
        x,
        frac_coords=x.frac_coords[permutation],
        atom_types=x.atom_types[permutation],
        site_symmetry=x.site_symmetry[permutation],
    )
    reference, out = net(x, t), net(permuted, t)
    assert torch.allclose(out.coord_score, reference.coord_score[permutation], atol=1e-5)
    assert torch.allclose(out.element_logits, reference.element_logits[permutation], atol=1e-5)
    assert torch.allclose(out.k_eps, reference.k_eps, atol=1e-5)


def test_crystals_do_not_see_each_other():
    net = model()
    x, t = inputs(num_nodes=(3, 1, 4))
    both = net(x, t)
    first = torch.tensor([3])
    alone = NoisyCrystals(
        k=x.k[:1],
        frac_coords=x.frac_coords[:3],
        atom_types=x.atom_types[:3],
        site_symmetry=x.site_symmetry[:3],
        sg_encoding=x.sg_encoding[:1],
        node_batch=node_batch_index(first),
        edge_index=fully_connected_edges(first),
        num_nodes=first,
    )
    assert torch.allclose(net(alone, t[:1]).coord_score, both.coord_score[:3], atol=1e-5)


def test_fourier_features_are_periodic():
    dx = torch.tensor([[0.1, -0.3, 0.45]])
    assert torch.allclose(
        periodic_fourier_features(dx, 5), periodic_fourier_features(dx + 1.0, 5), atol=1e-5
    )
    assert periodic_fourier_features(dx, 5).shape == (1, 30)


def test_bf16_autocast_runs_and_backpropagates():
    net, (x, t) = model(), inputs()
    net.train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = net(x, t)
    loss = sum(value.float().pow(2).mean() for value in vars(out).values())
    loss.backward()
    assert all(p.grad is not None for p in net.parameters() if p.requires_grad)


def test_missing_site_symmetry_is_an_input_error():
    with pytest.raises(InputError):
        x, t = inputs()
        model()(replace(x, site_symmetry=None), t)
