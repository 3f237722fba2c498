"""COV-R / COV-P coverage (CDVAE) from CrystalNN structure and Magpie composition fingerprints.

Structure fingerprint: CrystalNN site fingerprint (matminer ``ops`` preset, 61 values) averaged
over the sites of the cell. Composition fingerprint: matminer Magpie ``ElementProperty`` (132
values), standardised with CDVAE's fixed per-feature means and standard deviations (shipped, with
their source, in ``data/magpie_scaler_cdvae.json``; NaN -> 0 after scaling), which CDVAE's,
DiffCSP's and SymmCD's evaluation code all use. A sample or reference crystal is "covered" when
another set has a crystal within 0.4 (structure) AND 10 (composition) Euclidean distance. As in
CDVAE's and DiffCSP's code, every crystal with fingerprints enters (validity does not filter).
"""

from __future__ import annotations

import json
import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np
from pymatgen.core import Composition, Structure
from scipy.spatial.distance import cdist

STRUCT_CUTOFF = 0.4
COMP_CUTOFF = 10.0
STRUCT_FP_SIZE = 61
COMP_FP_SIZE = 132
SCALER_PATH = Path(__file__).resolve().parent / "data" / "magpie_scaler_cdvae.json"


@lru_cache(maxsize=1)
def _crystalnn_featurizer():
    from matminer.featurizers.site.fingerprint import CrystalNNFingerprint

    return CrystalNNFingerprint.from_preset("ops")


@lru_cache(maxsize=1)
def _magpie_featurizer():
    from matminer.featurizers.composition.composite import ElementProperty

    return ElementProperty.from_preset("magpie", impute_nan=False)


def structure_fingerprint(structure: Structure | None) -> np.ndarray:
    """Site-averaged CrystalNN fingerprint (61,); all-NaN when it cannot be computed."""
    if structure is None:
        return np.full(STRUCT_FP_SIZE, np.nan)
    featurizer = _crystalnn_featurizer()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sites = [featurizer.featurize(structure, i) for i in range(len(structure))]
        return np.asarray(sites, dtype=float).mean(axis=0)
    except Exception:  # noqa: BLE001 - CrystalNN fails on pathological cells
        return np.full(STRUCT_FP_SIZE, np.nan)


def composition_fingerprint(composition: Composition | None) -> np.ndarray:
    """Raw (unscaled) Magpie composition fingerprint (132,); all-NaN when unavailable."""
    if composition is None:
        return np.full(COMP_FP_SIZE, np.nan)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return np.asarray(_magpie_featurizer().featurize(composition), dtype=float)
    except Exception:  # noqa: BLE001
        return np.full(COMP_FP_SIZE, np.nan)


@lru_cache(maxsize=1)
def composition_scaler() -> tuple[np.ndarray, np.ndarray]:
    """(means, stds) of the raw Magpie features: CDVAE's published constants."""
    data = json.loads(SCALER_PATH.read_text())
    return np.asarray(data["means"], dtype=float), np.asarray(data["stds"], dtype=float)


def scale_composition_fingerprints(raw: np.ndarray) -> np.ndarray:
    """Standardise raw Magpie fingerprints; NaN features become 0 (CDVAE's replace_nan_token)."""
    means, stds = composition_scaler()
    safe_stds = np.where(stds > 0, stds, 1.0)
    scaled = (np.asarray(raw, dtype=float) - means) / safe_stds
    return np.nan_to_num(scaled, nan=0.0, posinf=0.0, neginf=0.0)


def fingerprint_usable(struct_fps: np.ndarray, comp_fps: np.ndarray) -> np.ndarray:
    """Rows whose fingerprints could be computed (CDVAE drops the others). Magpie features may
    be NaN for exotic elements (scaled to 0), so only an all-NaN composition row is unusable."""
    return np.isfinite(struct_fps).all(axis=1) & np.isfinite(comp_fps).any(axis=1)


def nearest_distances(
    a: np.ndarray, b: np.ndarray, chunk: int = 2048
) -> tuple[np.ndarray, np.ndarray]:
    """Distance from each row of ``a`` to its nearest row of ``b`` and vice versa (chunked)."""
    a_to_b = np.full(len(a), np.inf)
    b_to_a = np.full(len(b), np.inf)
    for start in range(0, len(a), chunk):
        block = cdist(a[start : start + chunk], b)
        a_to_b[start : start + chunk] = block.min(axis=1)
        b_to_a = np.minimum(b_to_a, block.min(axis=0))
    return a_to_b, b_to_a


def coverage(
    sample_struct_fps: np.ndarray,
    sample_comp_fps: np.ndarray,
    ref_struct_fps: np.ndarray,
    ref_comp_fps: np.ndarray,
    num_samples: int,
    struct_cutoff: float = STRUCT_CUTOFF,
    comp_cutoff: float = COMP_CUTOFF,
) -> tuple[float, float]:
    """(COV-R, COV-P) from the fingerprints of samples and reference crystals.

    As in CDVAE's code, a reference crystal is recalled when its nearest sample in structure
    space is within ``struct_cutoff`` and its nearest sample in composition space is within
    ``comp_cutoff`` (the two nearest samples may differ); precision is the mirror image. COV-R is
    a share of the reference; COV-P divides by ``num_samples``, the whole sample set, so invalid
    samples count as uncovered.
    """
    if len(ref_struct_fps) == 0 or num_samples == 0:
        return float("nan"), float("nan")
    if len(sample_struct_fps) == 0:
        return 0.0, 0.0
    struct_to_ref, struct_to_sample = nearest_distances(sample_struct_fps, ref_struct_fps)
    comp_to_ref, comp_to_sample = nearest_distances(sample_comp_fps, ref_comp_fps)
    recalled = (struct_to_sample <= struct_cutoff) & (comp_to_sample <= comp_cutoff)
    precise = (struct_to_ref <= struct_cutoff) & (comp_to_ref <= comp_cutoff)
    return float(recalled.mean()), float(precise.sum() / num_samples)
