"""Tests of SamplingConfig (one validated object for every sampling setting) and of the
sampler's repulsion of colliding orbits."""

import pytest
import torch
from pymatgen.core import Lattice, Structure

from symmcd.data.batch import fully_connected_edges, node_batch_index
from symmcd.diffusion.joint import DiffusionState
from symmcd.errors import InputError
from symmcd.model.geometry import OrbitGeometry
from symmcd.sampling.config import SamplingConfig
from symmcd.sampling.repulsion import repel_orbits
from symmcd.symmetry.asymmetric_unit import AsymmetricUnit


def test_config_normalises_and_records_its_values():
    config = SamplingConfig(spacegroups="Fm-3m, 194", elements="Li,O", seed=3)
    assert config.spacegroups == (225, 194) and config.elements == ("Li", "O")
    as_dict = config.to_dict()
    assert as_dict["spacegroups"] == [225, 194] and as_dict["repulsion"] == 1.0
    assert SamplingConfig.from_options(config, seed=4).seed == 4
    assert SamplingConfig.from_options(config, seed=4).spacegroups == (225, 194)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"spacegroups": "Fm3x"}, "spacegroups"),
        ({"spacegroups": 225, "top_k_spacegroups": 5}, "one, not both"),
        ({"formula": "LiFePO4", "elements": "Li"}, "one, not both"),
        ({"max_attempts": 0}, "max_attempts"),
        ({"max_attempts": 101}, "at most 100"),
        ({"min_distance": 0.1}, "min_distance"),
        ({"repulsion": -1.0}, "repulsion"),
        ({"precision": "16"}, "precision"),
        ({"charge_balanced": "yes"}, "charge_balanced"),
        ({"steps": 0}, "steps"),
        ({"batch_sise": 10}, "unknown sampling option"),
    ],
)
def test_config_rejects_bad_values_naming_them(options, message):
    with pytest.raises(InputError, match=message):
        SamplingConfig.from_options(None, **options)


def test_repulsion_separates_two_orbits_on_one_point():
    # two Cl orbits on 8c (x, x, x) of Fm-3m, 0.35 Å apart: after the push they are further
    structure = Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(6.0), ["Na", "Cl", "Cl"], [[0, 0, 0], [0.25] * 3, [0.284] * 3]
    )
    unit = AsymmetricUnit.from_structure(structure, symprec=0.001)
    num_nodes = torch.tensor([unit.num_orbits])
    k = torch.tensor(unit.k[None], dtype=torch.float32)
    state = DiffusionState(
        k=k,
        frac_coords=torch.tensor(unit.frac_coords, dtype=torch.float32),
        atom_types=torch.zeros(3, dtype=torch.long),
        site_symmetry=torch.zeros(3, 15, dtype=torch.long),
        spacegroup=torch.tensor([225]),
        sg_encoding=torch.zeros(1, 397),
        k_mask=torch.ones(1, 6, dtype=torch.bool),
        k_fixed=k,
        node_batch=node_batch_index(num_nodes),
        edge_index=fully_connected_edges(num_nodes),
        num_nodes=num_nodes,
    )
    geometry = OrbitGeometry()

    def closest(s: DiffusionState) -> float:
        d = geometry.image_distances(
            s.frac_coords, torch.eye(3)[None] * 6.0, s.spacegroup, s.node_batch, s.edge_index
        )
        return float(d.edge_dist.min())

    before = closest(state)
    after = closest(repel_orbits(state, k, geometry, min_distance=1.5, steps=5))
    assert before < 0.5 < 1.0 < after
    assert repel_orbits(state, k, geometry, min_distance=0.0) is state


def test_cli_states_the_sampler_defaults():
    """`symmcd sample --help` states the config's defaults (its options take them from the
    fields; test_cli_help checks the values themselves)."""
    from symmcd.cli import build_parser

    commands = build_parser()._subparsers._group_actions[0].choices
    text = " ".join(commands["sample"].format_help().split())
    defaults = SamplingConfig()
    assert f"D Å ({defaults.repulsion}; 0: off" in text
    assert f"step ({defaults.corrector_steps}; 0: predictor only" in text
    targeted = SamplingConfig(targets="band_gap=1.5")
    assert f"(default {targeted.guidance:g}; 1: the conditional model alone" in text


def test_targets_and_guidance_are_checked_and_recorded():
    chosen = SamplingConfig(targets="formation_energy_per_atom=-2.5", guidance=2)
    assert chosen.targets == (("formation_energy_per_atom", -2.5),)
    assert chosen.to_dict()["targets"] == {"formation_energy_per_atom": -2.5}
    assert chosen.guidance == 2.0
    with pytest.raises(InputError, match="guidance"):
        SamplingConfig(guidance=-1)
    with pytest.raises(InputError, match="NAME=VALUE"):
        SamplingConfig(targets="band_gap")


def test_guidance_without_a_target_is_refused():
    # issue #35: --guidance 2 without --target sampled unconditioned and recorded guidance 2.0
    for weight in (2, 2.0, 1, 0):
        with pytest.raises(InputError, match="guidance: .* there are none"):
            SamplingConfig(guidance=weight)
    assert SamplingConfig().guidance is None  # the default needs no target
    assert SamplingConfig().to_dict()["guidance"] is None
    targeted = SamplingConfig(targets="band_gap=1.5")
    assert (
        targeted.guidance == 2.0 and SamplingConfig(targets="band_gap=1", guidance=0).guidance == 0
    )
    untargeted = SamplingConfig.from_options(targeted, targets=None)  # drops the weight too
    assert untargeted.targets is None and untargeted.guidance is None
    with pytest.raises(InputError, match="guidance"):
        SamplingConfig.from_options(targeted, targets=None, guidance=3)
