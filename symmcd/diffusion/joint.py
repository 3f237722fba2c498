"""The four noise processes of SymmCD together: lattice, coordinates, elements, site symmetry.

:class:`JointDiffusion` holds the processes and the dataset statistics they need (marginals of
elements and of site-symmetry classes per space group, k mean/std) as buffers, so ``.to(device)``
moves everything. It turns a clean :class:`~symmcd.data.batch.CrystalBatch` into training
losses, and runs the reverse process on a :class:`DiffusionState` for the sampler. It never
looks inside the network: it only hands it :class:`NoisyCrystals` and a time, and reads its
:class:`DenoiserOutput`.

Timesteps are integers ``t`` in ``1..T`` per crystal; the network sees ``t / T``. The lattice
process works on normalised ``k_norm = (k - k_mean) / k_std``; fixed entries (crystal system)
never change, and :meth:`JointDiffusion.final_k` writes their exact raw values back.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from symmcd.diffusion.coords import WrappedNormalDiffusion
from symmcd.diffusion.discrete import MarginalD3PM, normalise_marginals
from symmcd.diffusion.lattice import LatticeDDPM
from symmcd.diffusion.schedules import as_steps, check_num_steps
from symmcd.errors import ConfigError, InputError
from symmcd.model.denoiser import NoisyCrystals
from symmcd.symmetry.encoding import NUM_DIRECTIONS, NUM_ELEMENTS, NUM_SITE_CLASSES

if TYPE_CHECKING:
    from symmcd.data.batch import CrystalBatch
    from symmcd.model.denoiser import DenoiserOutput

K0_CLIP = 6.0  # bound on the predicted clean normalised k during sampling, in standard deviations


@dataclass
class DiffusionConfig:
    """Schedules of the four processes and the weights of their losses."""

    num_steps: int = 1000
    sigma_min: float = 0.005
    sigma_max: float = 0.5
    cosine_s: float = 0.008
    lattice_weight: float = 5.0
    coord_weight: float = 1.0
    element_weight: float = 0.1
    site_symmetry_weight: float = 10.0
    d3pm_hybrid_weight: float = 0.0

    def __post_init__(self) -> None:
        check_num_steps(self.num_steps)
        for name in ("sigma_min", "sigma_max", "cosine_s"):
            check_number(name, getattr(self, name), positive=True)
        for name in ("lattice_weight", "coord_weight", "element_weight", "site_symmetry_weight"):
            check_number(name, getattr(self, name))
        check_number("d3pm_hybrid_weight", self.d3pm_hybrid_weight)
        if self.sigma_min > self.sigma_max:
            raise ConfigError(f"diffusion: sigma_min {self.sigma_min} exceeds {self.sigma_max}")


def check_number(name: str, value: Any, positive: bool = False) -> None:
    """Reject a config value that is not a non-negative (or positive) real number."""
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if not is_number or value < 0 or (positive and value == 0):
        kind = "positive" if positive else "non-negative"
        raise ConfigError(f"diffusion: {name} must be a {kind} number, got {value!r}")


@dataclass
class DiffusionState:
    """A batch of crystals part-way through the reverse process.

    ``k`` is the *normalised* lattice vector ``(k - k_mean) / k_std`` (use
    :meth:`JointDiffusion.final_k` for raw k). The fields from ``spacegroup`` on are fixed
    conditioning: ``k_fixed`` holds the raw values of the fixed k entries (anything where
    ``k_mask`` is True); ``properties`` (B, P) the property targets of a conditioned model
    (NaN or None = unconditional).
    """

    k: Tensor  # (B, 6) normalised
    frac_coords: Tensor  # (N, 3) in [0, 1)
    atom_types: Tensor  # (N,) long, Z - 1
    site_symmetry: Tensor  # (N, 15) long
    spacegroup: Tensor  # (B,) long, 1..230
    sg_encoding: Tensor  # (B, 397)
    k_mask: Tensor  # (B, 6) bool, True = free
    k_fixed: Tensor  # (B, 6) raw values of the fixed entries
    node_batch: Tensor  # (N,)
    edge_index: Tensor  # (2, E)
    num_nodes: Tensor  # (B,)
    properties: Tensor | None = None  # (B, P) or None


def call_model(
    model: nn.Module, time: Tensor, state: DiffusionState, k_raw: Tensor
) -> DenoiserOutput:
    """Run the denoiser on a state: the one place that turns a diffusion state into the
    network's input, :class:`~symmcd.model.denoiser.NoisyCrystals`.

    ``k_raw`` (B, 6) is the state's lattice in raw units (:meth:`JointDiffusion.final_k`); its
    lattice matrix is computed only for a network that looks at Cartesian geometry.
    """
    lattice = None
    if getattr(getattr(model, "config", None), "geometric_features", False):
        from symmcd.model.geometry import k_to_lattices_torch

        lattice = k_to_lattices_torch(k_raw)
    crystals = NoisyCrystals(
        k=state.k,
        frac_coords=state.frac_coords,
        atom_types=state.atom_types,
        site_symmetry=state.site_symmetry,
        sg_encoding=state.sg_encoding,
        node_batch=state.node_batch,
        edge_index=state.edge_index,
        num_nodes=state.num_nodes,
        spacegroup=state.spacegroup,
        lattice=lattice,
        properties=state.properties,
    )
    return model(crystals, time)


def clamp_chain(values: Tensor, clamp: Tensor | None) -> Tensor:
    """``values`` with the entries of ``clamp`` that are >= 0 written over them."""
    if clamp is None:
        return values
    clamp = clamp.to(values.device)
    return torch.where(clamp >= 0, clamp, values)


class JointDiffusion(nn.Module):
    """Lattice DDPM + wrapped-normal coordinates + D3PM on elements and site symmetry."""

    def __init__(
        self,
        config: DiffusionConfig,
        element_marginals: Tensor,
        site_symmetry_marginals: Tensor,
        k_mean: Tensor,
        k_std: Tensor,
    ) -> None:
        super().__init__()
        expected = {
            "element_marginals": (element_marginals, (NUM_ELEMENTS,)),
            "site_symmetry_marginals": (
                site_symmetry_marginals,
                (230, NUM_DIRECTIONS, NUM_SITE_CLASSES),
            ),
            "k_mean": (k_mean, (6,)),
            "k_std": (k_std, (6,)),
        }
        for name, (value, shape) in expected.items():
            value = torch.as_tensor(value, dtype=torch.float32)
            if tuple(value.shape) != shape:
                raise InputError(f"{name} must have shape {shape}, got {tuple(value.shape)}")
            if not bool(torch.isfinite(value).all()):
                raise InputError(f"{name} has non-finite values")
            self.register_buffer(name, value)
        self.k_std.clamp_(min=1e-6)
        self.config = config
        self.num_steps = config.num_steps
        self.lattice = LatticeDDPM(config.num_steps, config.cosine_s)
        self.coords = WrappedNormalDiffusion(config.num_steps, config.sigma_min, config.sigma_max)
        self.elements = MarginalD3PM(NUM_ELEMENTS, config.num_steps)
        self.site_symmetry = MarginalD3PM(NUM_SITE_CLASSES, config.num_steps)

    @classmethod
    def from_statistics(cls, config: DiffusionConfig, stats: Any) -> JointDiffusion:
        """Build from a :class:`~symmcd.data.statistics.DatasetStatistics`."""
        return cls(
            config,
            torch.as_tensor(stats.element_marginals(), dtype=torch.float32),
            torch.as_tensor(stats.site_symmetry_marginals(), dtype=torch.float32),
            torch.as_tensor(stats.k_mean, dtype=torch.float32),
            torch.as_tensor(stats.k_std, dtype=torch.float32),
        )

    # ---- helpers -------------------------------------------------------------------------
    def normalise_k(self, k: Tensor) -> Tensor:
        """Raw k (B, 6) -> normalised."""
        return (k - self.k_mean) / self.k_std

    def unnormalise_k(self, k_norm: Tensor) -> Tensor:
        """Normalised k (B, 6) -> raw."""
        return k_norm * self.k_std + self.k_mean

    def node_element_marginals(self, num_nodes: int) -> Tensor:
        """Element marginals repeated for each node, (N, 100)."""
        return self.element_marginals.expand(num_nodes, NUM_ELEMENTS)

    def node_site_symmetry_marginals(self, spacegroup: Tensor, node_batch: Tensor) -> Tensor:
        """Each node's space-group marginals, one row per (node, direction): (N * 15, 13)."""
        per_node = self.site_symmetry_marginals[spacegroup.long()[node_batch] - 1]
        return per_node.reshape(-1, NUM_SITE_CLASSES)

    def time_input(self, t: Tensor) -> Tensor:
        """Integer steps (B,) -> the network's float time t / T in [0, 1]."""
        return t.float() / self.num_steps

    # ---- training ------------------------------------------------------------------------
    def training_losses(
        self,
        model: nn.Module,
        batch: CrystalBatch,
        generator: torch.Generator | None = None,
        use_site_symmetry: bool = True,
    ) -> dict[str, Tensor]:
        """Corrupt ``batch`` at uniform random steps, call ``model``, and return the losses.

        Keys: ``loss`` (weighted sum), ``lattice``, ``coords``, ``elements``, ``site_symmetry``
        (cross-entropy averaged over nodes and the 15 directions; 0 when not used).
        """
        cfg = self.config
        device = batch.k.device
        num_graphs, num_nodes = batch.num_graphs, batch.atom_types.shape[0]
        t = torch.randint(1, self.num_steps + 1, (num_graphs,), generator=generator, device=device)
        t_node = t[batch.node_batch]

        k_mask = batch.k_mask.bool()
        k_t, eps = self.lattice.q_sample(
            self.normalise_k(batch.k.float()), t, k_mask, generator=generator
        )
        x_t, coord_target = self.coords.q_sample(batch.frac_coords.float(), t_node, generator)
        element_marginals = self.node_element_marginals(num_nodes)
        atom_types_t = self.elements.q_sample(
            batch.atom_types, t_node, element_marginals, generator
        )
        site_symmetry_t = batch.site_symmetry
        if use_site_symmetry:
            site_marginals = self.node_site_symmetry_marginals(batch.spacegroup, batch.node_batch)
            t_items = t_node.repeat_interleave(NUM_DIRECTIONS)
            site_symmetry_t = self.site_symmetry.q_sample(
                batch.site_symmetry.reshape(-1), t_items, site_marginals, generator
            ).view(num_nodes, NUM_DIRECTIONS)

        noisy = DiffusionState(
            k=k_t,
            frac_coords=x_t,
            atom_types=atom_types_t,
            site_symmetry=site_symmetry_t,
            spacegroup=batch.spacegroup,
            sg_encoding=batch.sg_encoding.float(),
            k_mask=k_mask,
            k_fixed=batch.k.float(),
            node_batch=batch.node_batch,
            edge_index=batch.edge_index,
            num_nodes=batch.num_nodes,
            properties=batch.properties,
        )
        out = call_model(model, self.time_input(t), noisy, self.final_k(noisy))
        losses = {
            "lattice": self.lattice.loss(out.k_eps.float(), eps, k_mask),
            "coords": self.coords.loss(out.coord_score.float(), coord_target),
            "elements": self.elements.loss(
                out.element_logits,
                batch.atom_types,
                atom_types_t,
                t_node,
                element_marginals,
                cfg.d3pm_hybrid_weight,
            ),
        }
        if use_site_symmetry and out.site_symmetry_logits is not None:
            losses["site_symmetry"] = self.site_symmetry.loss(
                out.site_symmetry_logits.reshape(-1, NUM_SITE_CLASSES),
                batch.site_symmetry.reshape(-1),
                site_symmetry_t.reshape(-1),
                t_items,
                site_marginals,
                cfg.d3pm_hybrid_weight,
            )
        else:
            losses["site_symmetry"] = torch.zeros((), device=device)
        losses["loss"] = (
            cfg.lattice_weight * losses["lattice"]
            + cfg.coord_weight * losses["coords"]
            + cfg.element_weight * losses["elements"]
            + cfg.site_symmetry_weight * losses["site_symmetry"]
        )
        return losses

    # ---- sampling ------------------------------------------------------------------------
    def _k_constraints(
        self, spacegroup: Tensor, k_mask: Tensor | None, k_fixed: Tensor | None
    ) -> tuple[Tensor, Tensor]:
        if (k_mask is None) != (k_fixed is None):
            raise InputError("prior: give both k_mask and k_fixed, or neither")
        if k_mask is None:  # look them up from the crystal system of each group
            from symmcd.symmetry.lattice import k_fixed_values_batch, k_masks

            groups = spacegroup.detach().cpu().numpy()
            k_mask = torch.as_tensor(k_masks(groups), dtype=torch.bool)
            k_fixed = torch.as_tensor(k_fixed_values_batch(groups), dtype=torch.float32)
        return k_mask.bool().to(spacegroup.device), k_fixed.float().to(spacegroup.device)

    def prior(
        self,
        spacegroup: Tensor,
        sg_encoding: Tensor,
        num_nodes: Tensor,
        generator: torch.Generator | None = None,
        element_allowed: Tensor | None = None,
        k_mask: Tensor | None = None,
        k_fixed: Tensor | None = None,
    ) -> DiffusionState:
        """Draw ``x_T`` for crystals of given space groups (B,) and node counts (B,).

        ``element_allowed`` is (100,) or (N, 100) bool. ``k_mask`` / ``k_fixed`` (B, 6) default
        to the crystal-system constraints of :mod:`symmcd.symmetry.lattice`. All tensors of the
        state are on this module's device, wherever the inputs were.
        """
        from symmcd.data.batch import fully_connected_edges, node_batch_index

        device = self.k_mean.device  # the state lives where the diffusion's buffers live
        spacegroup = spacegroup.long().to(device)
        if spacegroup.numel() and not bool(((spacegroup >= 1) & (spacegroup <= 230)).all()):
            raise InputError("prior: space groups must lie in 1..230")
        num_nodes = num_nodes.long().to(spacegroup.device)
        if num_nodes.shape != spacegroup.shape or bool((num_nodes < 1).any()):
            raise InputError("prior: num_nodes must give a positive count per space group")
        k_mask, k_fixed = self._k_constraints(spacegroup, k_mask, k_fixed)
        node_batch = node_batch_index(num_nodes)
        n = int(node_batch.shape[0])
        k = self.lattice.sample_prior(
            (len(spacegroup), 6), k_mask, self.normalise_k(k_fixed), generator
        )
        allowed = self.node_allowed(element_allowed, n, device)
        site_marginals = self.node_site_symmetry_marginals(spacegroup, node_batch)
        return DiffusionState(
            k=k,
            frac_coords=self.coords.sample_prior((n, 3), generator, device),
            atom_types=self.elements.sample_prior(
                self.node_element_marginals(n), generator, allowed
            ),
            site_symmetry=self.site_symmetry.sample_prior(site_marginals, generator).view(
                n, NUM_DIRECTIONS
            ),
            spacegroup=spacegroup,
            sg_encoding=sg_encoding.float().to(device),
            k_mask=k_mask,
            k_fixed=k_fixed,
            node_batch=node_batch,
            edge_index=fully_connected_edges(num_nodes),
            num_nodes=num_nodes,
        )

    @staticmethod
    def node_allowed(
        element_allowed: Tensor | None, num_nodes: int, device: torch.device
    ) -> Tensor | None:
        """``element_allowed`` (100,) or (N, 100) as an (N, 100) bool mask on ``device``."""
        if element_allowed is None:
            return None
        allowed = element_allowed.bool().to(device)
        if allowed.shape == (NUM_ELEMENTS,):
            allowed = allowed.expand(num_nodes, NUM_ELEMENTS)
        if allowed.shape != (num_nodes, NUM_ELEMENTS):
            raise InputError(
                f"element_allowed must have shape (100,) or ({num_nodes}, 100), "
                f"got {tuple(element_allowed.shape)}"
            )
        return allowed

    @torch.no_grad()
    def denoise_step(
        self,
        model: nn.Module,
        state: DiffusionState,
        t: int | Tensor,
        t_prev: int | Tensor,
        generator: torch.Generator | None = None,
        *,
        corrector_steps: int,
        element_allowed: Tensor | None = None,
        clamp_elements: Tensor | None = None,
        clamp_site_symmetry: Tensor | None = None,
        step_lr: float = 1e-5,
        clip_k0: float | None = K0_CLIP,
        element_temperature: float = 1.0,
    ) -> tuple[DiffusionState, DenoiserOutput]:
        """One reverse step from ``t`` to ``t_prev`` (ints or (B,) tensors, ``0 <= t_prev < t``).

        First ``corrector_steps`` Langevin moves of the coordinates at ``t`` (one network call
        each; no default here: the sampler's is ``SamplingConfig.corrector_steps``), then one
        network call whose output drives the predictor of every part. Entries of
        ``clamp_elements`` (N,) / ``clamp_site_symmetry`` (N, 15) that are >= 0 hold those chains
        at the given classes (also in the network input). Without site-symmetry logits (full-cell
        model) the site symmetry is left unchanged; otherwise it stays on classes its space group
        can have (non-zero marginal). Returns the new state and the model output
        used for the predictor (its ``element_logits`` etc. predict the clean crystal).
        ``clip_k0`` bounds the predicted clean normalised k (see :meth:`LatticeDDPM.reverse_step`).
        ``element_temperature`` divides the element logits before the element step (below 1
        sharpens the network's element prediction; 1 leaves it as trained).
        """
        num_graphs = state.k.shape[0]
        t_graph = as_steps(t, state.k)
        t_prev_graph = as_steps(t_prev, state.k)
        if bool((t_prev_graph < 0).any() | (t_prev_graph >= t_graph).any()):
            raise InputError("denoise_step: need 0 <= t_prev < t")
        if bool((t_graph > self.num_steps).any()):
            raise InputError(f"denoise_step: t must be at most {self.num_steps}")
        t_node, t_prev_node = t_graph[state.node_batch], t_prev_graph[state.node_batch]
        time = self.time_input(t_graph)
        state = replace(
            state,
            atom_types=clamp_chain(state.atom_types, clamp_elements),
            site_symmetry=clamp_chain(state.site_symmetry, clamp_site_symmetry),
        )

        for _ in range(corrector_steps):
            out = call_model(model, time, state, self.final_k(state))
            coords = self.coords.corrector_step(
                state.frac_coords, t_node, out.coord_score.float(), step_lr, generator
            )
            state = replace(state, frac_coords=coords)

        out = call_model(model, time, state, self.final_k(state))
        n, device = state.atom_types.shape[0], state.atom_types.device
        k = self.lattice.reverse_step(
            state.k, t_graph, t_prev_graph, out.k_eps.float(), state.k_mask, generator, clip_k0
        )
        coords = self.coords.predictor_step(
            state.frac_coords, t_node, t_prev_node, out.coord_score.float(), generator
        )
        atom_types = self.elements.reverse_step(
            state.atom_types,
            t_node,
            t_prev_node,
            out.element_logits / element_temperature,
            self.node_element_marginals(n),
            generator,
            allowed=self.node_allowed(element_allowed, n, device),
        )
        site_symmetry = state.site_symmetry
        if out.site_symmetry_logits is not None:
            site_marginals = self.node_site_symmetry_marginals(state.spacegroup, state.node_batch)
            site_symmetry = self.site_symmetry.reverse_step(
                state.site_symmetry.reshape(-1),
                t_node.repeat_interleave(NUM_DIRECTIONS),
                t_prev_node.repeat_interleave(NUM_DIRECTIONS),
                out.site_symmetry_logits.reshape(-1, NUM_SITE_CLASSES),
                site_marginals,
                generator,
                allowed=normalise_marginals(site_marginals) > 0,
            ).view(n, NUM_DIRECTIONS)
        assert k.shape[0] == num_graphs
        new_state = replace(
            state,
            k=k,
            frac_coords=coords,
            atom_types=clamp_chain(atom_types, clamp_elements),
            site_symmetry=clamp_chain(site_symmetry, clamp_site_symmetry),
        )
        return new_state, out

    def final_k(self, state: DiffusionState) -> Tensor:
        """Raw k (B, 6) of a state, with the fixed entries set exactly to ``k_fixed``."""
        return torch.where(state.k_mask, self.unnormalise_k(state.k), state.k_fixed)
