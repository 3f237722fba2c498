"""Formation energy per atom predicted offline with CHGNet.

CHGNet (weights ship inside its wheel; nothing is downloaded) predicts the total energy per atom
on the MP2020-corrected scale of its MPtrj training data. The formation energy subtracts, per
element, the corrected energy per atom of the Materials Project ground-state entry of that
element (``data/elemental_refs.json``, Matbench Discovery's 2023-02-07 reference entries):
``E_form = E_CHGNet / atom - sum_i x_i mu_i``. Elements without a reference give NaN.
"""

from __future__ import annotations

import json
import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np
from pymatgen.core import Composition, Structure
from tqdm import tqdm

ELEMENTAL_REFS_PATH = Path(__file__).resolve().parent / "data" / "elemental_refs.json"
BATCH_SIZE = 16


@lru_cache(maxsize=1)
def elemental_references() -> dict[str, float]:
    """Element symbol -> reference energy per atom (eV)."""
    return json.loads(ELEMENTAL_REFS_PATH.read_text())


@lru_cache(maxsize=1)
def load_chgnet():
    """The pretrained CHGNet model shipped in the chgnet wheel, on CPU, quietly."""
    from chgnet.model import CHGNet

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return CHGNet.load(verbose=False, use_device="cpu")


def reference_energy_per_atom(composition: Composition) -> float:
    """Composition-weighted elemental reference energy per atom; NaN if an element is missing."""
    refs = elemental_references()
    fractions = composition.fractional_composition
    try:
        return float(sum(amount * refs[el.symbol] for el, amount in fractions.items()))
    except KeyError:
        return float("nan")


def predict_energy_per_atom(
    structures: list[Structure], batch_size: int = BATCH_SIZE, progress: bool = False
) -> np.ndarray:
    """CHGNet energy per atom (eV) for each structure; NaN where CHGNet fails."""
    model = load_chgnet()
    energies = np.full(len(structures), np.nan)
    starts = range(0, len(structures), batch_size)
    for start in tqdm(starts, desc="CHGNet", disable=not progress, unit="batch"):
        batch = structures[start : start + batch_size]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                predictions = model.predict_structure(batch, task="e", batch_size=batch_size)
                energies[start : start + len(batch)] = [float(p["e"]) for p in predictions]
            except Exception:  # noqa: BLE001 - retry one by one to isolate the failing crystal
                for offset, structure in enumerate(batch):
                    energies[start + offset] = _predict_one(model, structure)
    return energies


def _predict_one(model, structure: Structure) -> float:
    try:
        return float(model.predict_structure(structure, task="e")["e"])
    except Exception:  # noqa: BLE001 - unsupported element or graph failure
        return float("nan")


def formation_energy_from_energy(composition: Composition, energy_per_atom: float) -> float:
    """Formation energy per atom (eV) from a total energy per atom."""
    return float(energy_per_atom) - reference_energy_per_atom(composition)


def predict_formation_energy(
    structures: list[Structure], batch_size: int = BATCH_SIZE, progress: bool = False
) -> np.ndarray:
    """CHGNet formation energy per atom (eV) of each structure; NaN where unavailable."""
    energies = predict_energy_per_atom(structures, batch_size, progress)
    return np.array(
        [
            formation_energy_from_energy(s.composition, e)
            for s, e in zip(structures, energies, strict=True)
        ]
    )
