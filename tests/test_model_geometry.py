"""Tests of the denoiser's collision features: image distances against pymatgen, the lattice
twin of the numpy code, and the zero start that lets a trained model take them on."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
from pymatgen.core import Lattice, Structure

from symmcd.data.batch import fully_connected_edges, node_batch_index
from symmcd.errors import InputError
from symmcd.model.denoiser import Denoiser, DenoiserConfig
from symmcd.model.geometry import (
    EDGE_GEOMETRY_DIM,
    NODE_GEOMETRY_DIM,
    OrbitGeometry,
    k_to_lattices_torch,
)
from symmcd.symmetry.asymmetric_unit import AsymmetricUnit
from symmcd.symmetry.lattice import k_to_lattices
from symmcd.symmetry.wyckoff import replicate
from tests.test_model_denoiser import inputs

MP20_TEST = "symmcd/data/mp20/test.csv.gz"


def geometry_inputs(units: list[AsymmetricUnit]) -> dict:
    num_nodes = torch.tensor([u.num_orbits for u in units])
    return dict(
        frac_coords=torch.tensor(
            np.concatenate([u.frac_coords for u in units]), dtype=torch.float32
        ),
        lattice=k_to_lattices_torch(
            torch.tensor(np.stack([u.k for u in units]), dtype=torch.float32)
        ),
        spacegroup=torch.tensor([u.spacegroup for u in units]),
        node_batch=node_batch_index(num_nodes),
        edge_index=fully_connected_edges(num_nodes),
    )


def test_k_to_lattice_matches_numpy():
    k = np.random.default_rng(0).normal(0, 0.5, (20, 6))
    torch_lattice = k_to_lattices_torch(torch.tensor(k, dtype=torch.float32)).numpy()
    assert np.allclose(torch_lattice, k_to_lattices(k), rtol=1e-5, atol=1e-5)


def test_rock_salt_distances():
    structure = Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]
    )
    unit = AsymmetricUnit.from_structure(structure)
    d = OrbitGeometry().image_distances(**geometry_inputs([unit]))
    for e in range(2):
        assert float(d.edge_dist[d.edge_row == e].min()) == pytest.approx(2.82, abs=1e-4)
    own = d.node_dist[d.node_row == 0]
    # 4a has site symmetry m-3m (48 operations): 47 images coincide with the atom itself
    assert len(own) == 191 and int((own < 1e-4).sum()) == 47
    distinct = own[own > 1e-4]
    assert float(distinct.min()) == pytest.approx(5.64 / 2**0.5, abs=1e-4)


def test_image_distances_match_pymatgen_on_mp20():
    rows = pd.read_csv(MP20_TEST, nrows=40)
    units = [AsymmetricUnit.from_structure(Structure.from_str(c, fmt="cif")) for c in rows.cif]
    batch = geometry_inputs(units)
    d = OrbitGeometry().image_distances(**batch)
    src, dst = batch["edge_index"]
    offsets = np.concatenate([[0], np.cumsum([u.num_orbits for u in units])])
    checked = 0
    for e in range(src.shape[0]):
        b = int(batch["node_batch"][dst[e]])
        unit, i, j = units[b], int(dst[e]) - offsets[b], int(src[e]) - offsets[b]
        lattice = Lattice(unit.lattice_matrix)
        images, _ = replicate(unit.global_wyckoff_indices[[j]], unit.frac_coords[[j]])
        exact = lattice.get_all_distances(unit.frac_coords[[i]], images).min()
        # wrapping in fractional coordinates is exact below half the shortest plane spacing
        half_spacing = 0.5 / np.linalg.norm(lattice.inv_matrix, axis=0).max()
        ours = float(d.edge_dist[d.edge_row == e].min())
        assert ours >= exact - 1e-3
        if exact < half_spacing:
            assert ours == pytest.approx(exact, abs=1e-3)
            checked += 1
    assert checked > 100
    for n, (b, unit) in enumerate((b, u) for b, u in enumerate(units) for _ in range(u.num_orbits)):
        i = n - offsets[b]
        own = d.node_dist[d.node_row == n]
        order = len(own) + 1  # the identity is left out
        assert int((own < 1e-3).sum()) + 1 == order // unit.multiplicities[i]


def test_coinciding_orbits_are_seen():
    # two Cl orbits on 8c (x, x, x) of Fm-3m at nearly the same x collide after replication
    structure = Structure.from_spacegroup(
        "Fm-3m",
        Lattice.cubic(6.0),
        ["Na", "Cl", "Cl"],
        [[0, 0, 0], [0.25, 0.25, 0.25], [0.3, 0.3, 0.3]],
    )
    unit = AsymmetricUnit.from_structure(structure, symprec=0.01)
    assert unit.num_orbits == 3
    features, _ = OrbitGeometry()(**geometry_inputs([unit]))
    assert features.shape == (6, EDGE_GEOMETRY_DIM)
    d = OrbitGeometry().image_distances(**geometry_inputs([unit]))
    assert float(d.edge_dist.min()) < 0.6 * 3**0.5
    nearest = features[:, :16].argmax(dim=1)  # the Gaussian of the minimum peaks below 1 Å
    assert int(nearest.min()) <= 2


def test_geometry_starts_at_zero_and_needs_its_inputs():
    x, t = inputs()
    plain = Denoiser(DenoiserConfig(hidden_dim=32, num_layers=2, num_frequencies=4))
    torch.manual_seed(0)
    grown = Denoiser(
        DenoiserConfig(hidden_dim=32, num_layers=2, num_frequencies=4, geometric_features=True)
    )
    missing = grown.load_state_dict(plain.state_dict(), strict=False).missing_keys
    assert missing and all("geometry_proj" in key for key in missing)
    with pytest.raises(InputError, match="lattice"):
        grown(x, t)
    spacegroup = torch.tensor([225, 1, 62])
    with_geometry = replace(
        x, spacegroup=spacegroup, lattice=k_to_lattices_torch(torch.zeros(3, 6)) * 5
    )
    out = grown(with_geometry, t)
    ref = plain(x, t)
    assert torch.allclose(out.coord_score, ref.coord_score, atol=1e-6)
    grown.node_geometry_proj.weight.data.normal_()
    out = grown(with_geometry, t)
    assert not torch.allclose(out.coord_score, ref.coord_score, atol=1e-3)
    assert NODE_GEOMETRY_DIM == grown.node_geometry_proj.in_features
