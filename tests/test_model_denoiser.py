"""Tests of the denoiser network: shapes, symmetries of the inputs it sees, the baseline mode."""

import pytest
import torch

from symmcd.data.batch import fully_connected_edges, node_batch_index
from symmcd.errors import InputError
from symmcd.model.denoiser import Denoiser, DenoiserConfig, periodic_fourier_features


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def inputs(num_nodes=(3, 1, 4), seed=0) -> dict:
    g = torch.Generator().manual_seed(seed)
    num_nodes = torch.tensor(num_nodes)
    b, n = len(num_nodes), int(num_nodes.sum())
    return dict(
        time=torch.rand(b, generator=g),
        k_t=torch.randn(b, 6, generator=g),
        frac_coords_t=torch.rand(n, 3, generator=g),
        atom_types_t=torch.randint(0, 100, (n,), generator=g),
        site_symmetry_t=torch.randint(0, 13, (n, 15), generator=g),
        sg_encoding=torch.rand(b, 397, generator=g),
        node_batch=node_batch_index(num_nodes),
        edge_index=fully_connected_edges(num_nodes),
        num_nodes=num_nodes,
    )


def model(**kwargs) -> Denoiser:
    torch.manual_seed(0)
    return Denoiser(DenoiserConfig(hidden_dim=32, num_layers=2, num_frequencies=4, **kwargs)).eval()


def test_output_shapes_and_finite():
    out = model()(**inputs())
    assert out.coord_score.shape == (8, 3)
    assert out.k_eps.shape == (3, 6)
    assert out.element_logits.shape == (8, 100)
    assert out.site_symmetry_logits.shape == (8, 15, 13)
    assert all(bool(torch.isfinite(x).all()) for x in vars(out).values())


def test_full_cell_baseline_has_no_site_symmetry_path():
    net = model(use_site_symmetry=False)
    assert not any("site" in name for name, _ in net.named_parameters())
    x = inputs()
    out = net(**x)
    assert out.site_symmetry_logits is None
    x["site_symmetry_t"] = None
    assert torch.equal(net(**x).coord_score, out.coord_score)


def test_outputs_depend_on_every_input():
    net, x = model(), inputs()
    reference = net(**x)
    changed = dict(x, site_symmetry_t=(x["site_symmetry_t"] + 1) % 13)
    assert not torch.allclose(net(**changed).element_logits, reference.element_logits)
    changed = dict(x, time=x["time"] * 0.5)
    assert not torch.allclose(net(**changed).k_eps, reference.k_eps)
    changed = dict(x, frac_coords_t=torch.remainder(x["frac_coords_t"] * 1.7, 1.0))
    assert not torch.allclose(net(**changed).coord_score, reference.coord_score)


def test_invariant_to_periodic_images_but_sees_absolute_position():
    """Coordinates enter only through periodic functions; the origin matters (space groups)."""
    net, x = model(), inputs()
    reference = net(**x)
    imaged = dict(x, frac_coords_t=x["frac_coords_t"] + torch.randint(-2, 3, (8, 3)))
    out = net(**imaged)
    assert torch.allclose(out.coord_score, reference.coord_score, atol=1e-4)
    assert torch.allclose(out.k_eps, reference.k_eps, atol=1e-4)
    shifted = dict(x, frac_coords_t=torch.remainder(x["frac_coords_t"] + 0.37, 1.0))
    assert not torch.allclose(net(**shifted).coord_score, reference.coord_score, atol=1e-4)
    single = inputs(num_nodes=(1,))
    moved = dict(single, frac_coords_t=torch.remainder(single["frac_coords_t"] + 0.25, 1.0))
    assert not torch.allclose(net(**moved).coord_score, net(**single).coord_score, atol=1e-4)


def test_equivariant_to_node_order_within_a_crystal():
    net, x = model(), inputs(num_nodes=(4, 3))
    permutation = torch.tensor([2, 0, 3, 1, 6, 4, 5])
    permuted = dict(x)
    for key in ("frac_coords_t", "atom_types_t", "site_symmetry_t"):
        permuted[key] = x[key][permutation]
    reference, out = net(**x), net(**permuted)
    assert torch.allclose(out.coord_score, reference.coord_score[permutation], atol=1e-5)
    assert torch.allclose(out.element_logits, reference.element_logits[permutation], atol=1e-5)
    assert torch.allclose(out.k_eps, reference.k_eps, atol=1e-5)


def test_crystals_do_not_see_each_other():
    net = model()
    both = net(**inputs(num_nodes=(3, 1, 4)))
    x = inputs(num_nodes=(3, 1, 4))
    alone = {
        key: x[key][:3] if key in ("frac_coords_t", "atom_types_t", "site_symmetry_t") else x[key]
        for key in x
    }
    alone.update(
        time=x["time"][:1], k_t=x["k_t"][:1], sg_encoding=x["sg_encoding"][:1],
        node_batch=node_batch_index(torch.tensor([3])),
        edge_index=fully_connected_edges(torch.tensor([3])), num_nodes=torch.tensor([3]),
    )  # fmt: skip
    assert torch.allclose(net(**alone).coord_score, both.coord_score[:3], atol=1e-5)


def test_fourier_features_are_periodic():
    dx = torch.tensor([[0.1, -0.3, 0.45]])
    assert torch.allclose(
        periodic_fourier_features(dx, 5), periodic_fourier_features(dx + 1.0, 5), atol=1e-5
    )
    assert periodic_fourier_features(dx, 5).shape == (1, 30)


def test_bf16_autocast_runs_and_backpropagates():
    net, x = model(), inputs()
    net.train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = net(**x)
    loss = sum(value.float().pow(2).mean() for value in vars(out).values())
    loss.backward()
    assert all(p.grad is not None for p in net.parameters() if p.requires_grad)


def test_missing_site_symmetry_is_an_input_error():
    with pytest.raises(InputError):
        model()(**dict(inputs(), site_symmetry_t=None))
