"""CHGNet as an ASE calculator that takes forces and stress from one backward pass.

CHGNet's own ``CHGNetCalculator`` differentiates the energy twice per step, once for the forces
and once more for the stress, each time through the whole network. Asking autograd for both
gradients in one call traverses the graph once: the same forces, stress and energy to the last
bit (``tests/test_evaluation_stability.py`` compares them), and whole relaxations run 1.4x faster
(``docs/archive/outputs/relax_speed.out.txt``).

It leans on two internals of CHGNet 0.4 (``BatchedGraph.from_graphs`` and ``CHGNet._compute``);
the relaxations' store key carries the CHGNet version, so a CHGNet upgrade never mixes results.
"""

from __future__ import annotations

import numpy as np
from ase.calculators.calculator import Calculator, all_changes
from pymatgen.io.ase import AseAtomsAdaptor

# CHGNet's unit conversion from eV/A^3 to GPa, as its model applies it
_EV_PER_A3_IN_GPA = 160.21766208


class FastCHGNetCalculator(Calculator):
    """Energy (eV), forces (eV/A) and stress (eV/A^3) of a pretrained CHGNet, equal to
    ``chgnet.model.dynamics.CHGNetCalculator``'s (default stress weight) bit for bit."""

    implemented_properties = ("energy", "free_energy", "forces", "stress")

    def __init__(self, model, on_isolated_atoms: str = "ignore", **kwargs) -> None:
        super().__init__(**kwargs)
        self.model = model
        self.model.graph_converter.set_isolated_atom_response(on_isolated_atoms)

    def calculate(self, atoms=None, properties=None, system_changes=all_changes) -> None:
        super().calculate(atoms, properties or ["energy"], system_changes)
        structure = AseAtomsAdaptor.get_structure(self.atoms)
        energy_per_atom, forces, stress_gpa = self.predict(structure)
        from ase import units

        self.results = {
            "energy": energy_per_atom * len(structure),
            "free_energy": energy_per_atom * len(structure),
            "forces": forces,
            "stress": stress_gpa * units.GPa,
        }

    def predict(self, structure) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(energy per atom in eV, forces [n, 3] in eV/A, stress [3, 3] in GPa) of one
        structure, computed as ``CHGNet.predict_graph`` computes them but differentiated once."""
        import torch
        from chgnet.model.model import BatchedGraph

        model = self.model
        if model.training:  # eval() walks every module: once, not at every step
            model.eval()
        graph = model.graph_converter(structure)
        comp_energy = 0 if model.composition_model is None else model.composition_model([graph])
        batched = BatchedGraph.from_graphs(
            [graph],
            bond_basis_expansion=model.bond_basis_expansion,
            angle_basis_expansion=model.angle_basis_expansion,
            compute_stress=True,
        )
        # _compute divides an intensive model's energy by the atom count in place; the
        # gradients must be taken of the extensive energy first, as CHGNet takes them
        intensive, model.is_intensive = model.is_intensive, False
        try:
            energy = model._compute(batched)["e"]
        finally:
            model.is_intensive = intensive
        # create_graph as CHGNet sets it: without it the backward kernels differ in the last bits
        force_grad, strain_grad = torch.autograd.grad(
            energy.sum(),
            [batched.atom_positions[0], batched.strains[0]],
            create_graph=True,
        )
        scale = 1 / batched.volumes * _EV_PER_A3_IN_GPA
        stress = strain_grad * scale[0]
        if intensive:
            energy = energy / batched.atom_owners.bincount()
        energy = energy + comp_energy
        return (
            energy[0].detach().cpu().numpy(),
            (-1 * force_grad).detach().cpu().numpy(),
            stress.detach().cpu().numpy(),
        )
