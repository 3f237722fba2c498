import torch

from symmcd.data.batch import CrystalBatch, fully_connected_edges, node_batch_index


def test_edges_are_all_ordered_pairs_within_each_crystal():
    num_nodes = torch.tensor([2, 1, 3, 0, 4])
    edges = fully_connected_edges(num_nodes)
    assert edges.shape == (2, 2 * 1 + 0 + 3 * 2 + 0 + 4 * 3)
    crystal = node_batch_index(num_nodes)
    assert torch.equal(crystal[edges[0]], crystal[edges[1]])
    assert not torch.any(edges[0] == edges[1])
    expected = {(i, j) for i in range(10) for j in range(10) if i != j and crystal[i] == crystal[j]}
    assert set(map(tuple, edges.T.tolist())) == expected


def test_single_node_crystals_have_no_edges():
    assert fully_connected_edges(torch.tensor([1, 1, 1])).shape == (2, 0)
    assert fully_connected_edges(torch.tensor([], dtype=torch.long)).shape == (2, 0)


def test_crystal_batch_to_and_num_graphs():
    num_nodes = torch.tensor([2, 3])
    n = int(num_nodes.sum())
    batch = CrystalBatch(
        spacegroup=torch.tensor([1, 225]),
        sg_encoding=torch.zeros(2, 397),
        k=torch.zeros(2, 6),
        k_mask=torch.ones(2, 6, dtype=torch.bool),
        num_nodes=num_nodes,
        node_batch=node_batch_index(num_nodes),
        frac_coords=torch.rand(n, 3),
        atom_types=torch.zeros(n, dtype=torch.long),
        site_symmetry=torch.zeros(n, 15, dtype=torch.long),
        multiplicity=torch.ones(n, dtype=torch.long),
        edge_index=fully_connected_edges(num_nodes),
        ids=["a", "b"],
    )
    moved = batch.to("cpu")
    assert moved.num_graphs == 2
    assert moved.ids == ["a", "b"]
    assert torch.equal(moved.node_batch, torch.tensor([0, 0, 1, 1, 1]))
    assert moved.edge_index.shape == (2, 2 + 6)
